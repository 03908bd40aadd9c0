import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // npm pack + npm install of every package (building better-sqlite3 from source for
    // smtpkit-inbox), then Node, tsc, Deno and Bun runs.
    testTimeout: 120_000,
    hookTimeout: 900_000,
  },
});
