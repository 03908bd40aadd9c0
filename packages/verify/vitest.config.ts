import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    // Generous: CI runs every package's tests at once on two cores, next to real clients.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
