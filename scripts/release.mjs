#!/usr/bin/env node
// The release: `npm run release` versions nothing (run `npm run version-packages` first), checks
// every publishable package's tarball, then publishes with changesets.
// `npm run release -- --dry-run` (or `npm run release:dry-run`) changes nothing here: it copies the
// repository (with the fresh builds) into a temporary directory, applies the pending changesets
// there (`changeset version`), then runs `npm publish --dry-run` for each publishable package.
// Both fail, naming the package, when a tarball would lack a file its package.json points at
// (dist/ not built, or not in "files").
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { manifestProblems, missingFromPack, publishableWorkspaces, root } from "./workspaces.mjs";

const dryRun = process.argv.includes("--dry-run");
const sh = (command, args, cwd, capture = false) =>
  execFileSync(command, args, {
    cwd,
    encoding: "utf8",
    stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit",
  });

sh("npx", ["turbo", "run", "build", "--output-logs=errors-only"], root);

let base = root;
if (dryRun) {
  base = mkdtempSync(join(tmpdir(), "smtpkit-release-"));
  const files = sh(
    "git",
    ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    root,
    true,
  )
    .split("\0")
    .filter((file) => file && existsSync(join(root, file)));
  for (const file of files) {
    mkdirSync(dirname(join(base, file)), { recursive: true });
    cpSync(join(root, file), join(base, file));
  }
  for (const workspace of publishableWorkspaces()) {
    const dist = join(workspace.path, "dist");
    if (existsSync(dist)) cpSync(dist, join(base, workspace.dir, "dist"), { recursive: true });
  }
  symlinkSync(join(root, "node_modules"), join(base, "node_modules"));
  console.log(`release dry run in ${base}`);
  sh(
    process.execPath,
    [join(root, "node_modules", "@changesets", "cli", "bin.js"), "version"],
    base,
  );
}

const problems = [];
const plan = [];
for (const workspace of publishableWorkspaces(base)) {
  const { name, version } = workspace.manifest;
  problems.push(...manifestProblems(workspace));
  const [packed] = JSON.parse(sh("npm", ["pack", "--dry-run", "--json"], workspace.path, true));
  problems.push(
    ...missingFromPack(
      workspace,
      packed.files.map((f) => f.path),
    ),
  );
  plan.push(`${name}@${version}: ${packed.files.length} files, ${packed.size} bytes packed`);
}
if (problems.length > 0) {
  console.error(`release: not publishing; fix these first:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}

if (dryRun) {
  for (const workspace of publishableWorkspaces(base)) {
    sh("npm", ["publish", "--dry-run", "--access", "public", "--tag", "latest"], workspace.path);
  }
  console.log(`\nrelease dry run: would publish\n  ${plan.join("\n  ")}`);
  rmSync(base, { recursive: true, force: true });
} else {
  sh(
    process.execPath,
    [join(root, "node_modules", "@changesets", "cli", "bin.js"), "publish"],
    root,
  );
}
