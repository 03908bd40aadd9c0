import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    // Real clients (swaks, curl, python3, nodemailer), the built CLI and aiosmtpd run as processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
