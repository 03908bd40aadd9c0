import { defineConfig } from "tsup";

// ESM and CJS for Node-style consumers; Bun itself prefers src/ (the "bun" export condition).
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  treeshake: true,
});
