import { defineConfig } from "tsup";

// One entry per runtime glue: `.` is runtime-neutral (web globals only); `./node`, `./deno` and
// `./bun` hold the tiny per-runtime socket, process and test-runner glue.
export default defineConfig({
  entry: ["src/index.ts", "src/node.ts", "src/deno.ts", "src/bun.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2022",
  platform: "neutral",
  external: ["bun:test"],
  treeshake: true,
});
