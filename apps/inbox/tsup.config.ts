import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/cli.ts"],
  format: ["esm"],
  sourcemap: true,
  clean: true,
  target: "node20",
  platform: "node",
  // Dependencies stay imports (better-sqlite3 is a native addon), not bundled copies.
  external: [/^@smtpkit\//, /^@hono\//, "hono", "better-sqlite3", "commander", "postal-mime"],
});
