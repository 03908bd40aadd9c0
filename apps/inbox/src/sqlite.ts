import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";

/** The SQLite API the store uses: better-sqlite3's, which Bun's `bun:sqlite` shares. */
export type SqliteDatabase = BetterSqlite3.Database;

const require = createRequire(import.meta.url);

/**
 * Opens a database with better-sqlite3 on Node, and with the built-in `bun:sqlite` on Bun (where
 * native addons built for Node do not load). Both take the same calls the store makes: prepare,
 * run/get/all, exec, transaction, function, close.
 */
export function openDatabase(path: string): SqliteDatabase {
  if (process.versions.bun) {
    const { Database } = require("bun:sqlite") as {
      Database: new (path: string, options: { strict: boolean }) => unknown;
    };
    // strict: named parameters bind from keys without their `@` (as better-sqlite3 does).
    return new Database(path, { strict: true }) as SqliteDatabase;
  }
  const Database = require("better-sqlite3") as typeof BetterSqlite3;
  return new Database(path);
}
