import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    // End-to-end tests spawn the built CLI and real SMTP clients.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
