import { rmSync } from "node:fs";
import { defineConfig, type Options } from "tsup";

const entries = { index: "src/index.ts", "server/index": "src/server/index.ts" };
const common: Options = {
  format: ["esm", "cjs"],
  target: "es2022",
  platform: "neutral",
  treeshake: true,
};

// The JavaScript of both entries is built together (ESM may share chunks). The declarations are
// built once per entry, so each .d.ts is self-contained: a shared, hashed declaration chunk
// (`./server-connection-<hash>.js`) is something Deno can only map to its .d.ts with
// --unstable-sloppy-imports.
export default defineConfig(() => {
  rmSync("dist", { recursive: true, force: true });
  return [
    { ...common, entry: entries, sourcemap: true },
    ...Object.entries(entries).map(([name, file]) => ({
      ...common,
      entry: { [name]: file },
      dts: { only: true },
    })),
  ];
});
