import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  treeshake: true,
  // Keep `node:fs` etc. as written (Deno resolves `node:` specifiers; bare `fs` needs a flag there).
  removeNodeProtocol: false,
  external: [/^node:/],
});
