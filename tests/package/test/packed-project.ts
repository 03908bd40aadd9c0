// A fresh project outside the workspace with every publishable package installed from its tarball:
// what a user gets from `npm install @smtpkit/...`, with no workspace links.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// A plain .mjs module, shared with the README test and the release dry run.
import * as workspaces from "../../../scripts/workspaces.mjs";

export interface Workspace {
  dir: string;
  path: string;
  manifest: Record<string, unknown> & {
    name: string;
    version: string;
    bin?: unknown;
    exports?: unknown;
  };
}
export interface ExportEntry {
  subpath: string;
  specifier: string;
  runtime: "any" | "deno" | "bun" | "source";
  targets: string[];
}
export const root: string = workspaces.root;
export const publishable: Workspace[] = workspaces.publishableWorkspaces();
export const manifestProblems: (w: Workspace) => string[] = workspaces.manifestProblems;
export const missingFromPack: (w: Workspace, paths: string[]) => string[] =
  workspaces.missingFromPack;
export const exportEntries = workspaces.exportEntries as (
  m: Workspace["manifest"],
) => ExportEntry[];

export interface PackedProject {
  dir: string;
  /** Packed file paths per package name (as `npm pack --json` lists them). */
  files: Map<string, string[]>;
}

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", args, {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, npm_config_update_notifier: "false" },
  });

export function packAndInstall(): PackedProject {
  const dir = mkdtempSync(join(tmpdir(), "smtpkit-packed-"));
  const tarballs = join(dir, "tarballs");
  mkdirSync(tarballs);
  const packed = JSON.parse(
    npm(
      [
        "pack",
        "--json",
        "--pack-destination",
        tarballs,
        ...publishable.flatMap((w) => ["-w", w.dir]),
      ],
      root,
    ),
  ) as { name: string; files: { path: string }[] }[];
  const files = new Map(packed.map((p) => [p.name, p.files.map((f) => f.path)]));
  writeFileSync(
    join(dir, "package.json"),
    `${JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)}\n`,
  );
  // Third-party dependencies come from the npm cache (they were installed by `npm ci` already).
  npm(
    [
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      ...readdirSync(tarballs).map((t) => `./tarballs/${t}`),
    ],
    dir,
  );
  return { dir, files };
}
