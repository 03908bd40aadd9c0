import { defineConfig } from "tsup";

// ESM for Bun; Bun itself prefers src/ (the "bun" export condition), which it runs as is.
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  treeshake: true,
});
