#!/usr/bin/env node
// The `smtpkit-inbox` command. Committed (unlike dist/) so that npm links it even before the first build.
try {
  await import("../dist/cli.js");
} catch (error) {
  // dist/cli.js, or a workspace package's dist/ it imports, does not exist yet.
  const missing = error?.code === "ERR_MODULE_NOT_FOUND" && /[\\/]dist[\\/]/.test(error.message);
  if (!missing) throw error;
  process.stderr.write(
    'smtpkit-inbox: not built yet; run "npm run build" (or npm run inbox) first\n',
  );
  process.exitCode = 2;
}
