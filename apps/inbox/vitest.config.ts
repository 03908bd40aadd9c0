import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    // Real SMTP clients, real HTTP, a real browser.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
