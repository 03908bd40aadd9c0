import { defineConfig } from "tsup";

// ESM (and CJS) for Deno (`import "@smtpkit/deno"` resolves through node_modules); src/ stays importable
// as TypeScript (its relative imports carry the .ts extension, as Deno wants).
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  external: [/^node:/],
  treeshake: true,
});
