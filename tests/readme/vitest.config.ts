import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each example runs as its own process (Node, Deno, Bun or vitest), one at a time: most of them
    // listen on the port the README shows (8025).
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
