import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/cli.ts"],
  format: ["esm"],
  sourcemap: true,
  clean: true,
  target: "node20",
  platform: "node",
  // The workspace libraries and commander stay imports (dependencies), not bundled copies.
  external: [/^@smtpkit\//, "commander"],
});
