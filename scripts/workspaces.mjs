// The publishable workspaces, discovered: every package.json under packages/* and apps/* that is not
// private. Shared by the package test, the README test and the release dry run, so a new package is
// covered by all three as soon as it exists.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(fileURLToPath(new URL("..", import.meta.url)));

/** Every workspace under packages/* and apps/*: `{ dir, path, manifest }`, private ones included. */
export function allWorkspaces(from = root) {
  const found = [];
  for (const group of ["packages", "apps"]) {
    const base = join(from, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const file = join(base, name, "package.json");
      if (!existsSync(file)) continue;
      found.push({
        dir: `${group}/${name}`,
        path: join(base, name),
        manifest: JSON.parse(readFileSync(file, "utf8")),
      });
    }
  }
  return found;
}

export function publishableWorkspaces(from = root) {
  return allWorkspaces(from).filter((w) => !w.manifest.private);
}

/** Every file an export condition or bin points at, e.g. "./dist/index.js" → "dist/index.js". */
export function referencedFiles(manifest) {
  const files = new Set();
  const walk = (value) => {
    if (typeof value === "string") files.add(value.replace(/^\.\//, ""));
    else if (value && typeof value === "object") for (const v of Object.values(value)) walk(v);
  };
  walk(manifest.exports);
  for (const key of ["main", "module", "types"]) walk(manifest[key]);
  walk(typeof manifest.bin === "string" ? manifest.bin : manifest.bin);
  return [...files].filter((f) => !f.includes("*"));
}

/** The export subpaths of a package and what runs them: "./bun" is Bun's, "./deno" Deno's, TypeScript-only ones neither Node's. */
export function exportEntries(manifest) {
  if (!manifest.exports && !manifest.main) return []; // a command only (bin)
  const exports = manifest.exports ?? { ".": manifest.main };
  return Object.entries(typeof exports === "string" ? { ".": exports } : exports).map(
    ([subpath, target]) => {
      const targets = referencedFiles({ exports: target });
      const runtime =
        subpath === "./bun"
          ? "bun"
          : subpath === "./deno"
            ? "deno"
            : targets.every((t) => t.endsWith(".ts"))
              ? "source"
              : "any";
      const specifier = subpath === "." ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
      return { subpath, specifier, runtime, targets };
    },
  );
}

/**
 * What a publishable package lacks, one line each, naming the package: the checks every package
 * must pass before it is published.
 */
export function manifestProblems(workspace) {
  const { dir, path, manifest: m } = workspace;
  const problems = [];
  const lack = (what) => problems.push(`${m.name} (${dir}): ${what}`);
  if (!m.version) lack('no "version"');
  if (!m.description) lack('no "description"');
  if (m.license !== "MIT") lack(`"license" is ${JSON.stringify(m.license)}, not "MIT"`);
  if (!Array.isArray(m.files) || m.files.length === 0)
    lack('no "files" list (npm would pack the whole directory)');
  if (!m.exports && !m.bin) lack('neither "exports" nor "bin"');
  if (!m.engines || Object.keys(m.engines).length === 0) lack('no "engines"');
  if (m.repository?.directory !== dir) lack(`"repository.directory" should be "${dir}"`);
  if (!m.repository?.url) lack('no "repository.url"');
  if (m.exports && m.sideEffects === undefined)
    lack('no "sideEffects" (false when importing it does nothing)');
  if (!existsSync(join(path, "README.md"))) lack("no README.md");
  const license = join(path, "LICENSE");
  if (!existsSync(license)) lack("no LICENSE (copy the root LICENSE into the package)");
  else if (readFileSync(license, "utf8") !== readFileSync(join(root, "LICENSE"), "utf8"))
    lack("LICENSE differs from the root LICENSE");
  for (const entry of exportEntries(m)) {
    if (entry.runtime === "source") continue;
    const target = m.exports?.[entry.subpath];
    if (typeof target !== "object" || !target.import || !target.require)
      lack(
        `export "${entry.subpath}" needs "import" and "require" conditions (ESM + CJS, built by tsup)`,
      );
    else if (
      !JSON.stringify(target.import).includes(".d.ts") ||
      !JSON.stringify(target.require).includes(".d.cts")
    )
      lack(
        `export "${entry.subpath}" needs "types" under both "import" (.d.ts) and "require" (.d.cts)`,
      );
  }
  return problems;
}

/** Referenced files (exports, bin, main) that a packed file list lacks. */
export function missingFromPack(workspace, packedPaths) {
  const packed = new Set(packedPaths);
  return referencedFiles(workspace.manifest)
    .filter((file) => !packed.has(file))
    .map(
      (file) =>
        `${workspace.manifest.name} (${workspace.dir}): "${file}" is referenced by package.json but not in the package (not built, or not in "files")`,
    );
}
