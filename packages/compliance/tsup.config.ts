import { rmSync } from "node:fs";
import { defineConfig, type Options } from "tsup";

// One entry per runtime glue: `.` is runtime-neutral (web globals only); `./node`, `./deno` and
// `./bun` hold the tiny per-runtime socket, process and test-runner glue.
const entries = ["index", "node", "deno", "bun"];
const common: Options = {
  format: ["esm", "cjs"],
  target: "es2022",
  platform: "neutral",
  external: ["bun:test"],
  // import.meta.url (where the client scripts are) in the CJS build too.
  shims: true,
  treeshake: true,
};

// The JavaScript is built together (it may share chunks); the declarations once per entry, so
// each .d.ts is self-contained (Deno maps a shared `./types-<hash>.js` declaration chunk to its
// .d.ts only with --unstable-sloppy-imports).
export default defineConfig(() => {
  rmSync("dist", { recursive: true, force: true });
  return [
    { ...common, entry: entries.map((name) => `src/${name}.ts`), sourcemap: true },
    ...entries.map((name) => ({ ...common, entry: [`src/${name}.ts`], dts: { only: true } })),
  ];
});
