import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // npm pack + npm install of every package, then Node, tsc, Deno and Bun runs.
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
