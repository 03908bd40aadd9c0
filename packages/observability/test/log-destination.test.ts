import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { logDestination } from "../src/index.js";

const work = mkdtempSync(join(tmpdir(), "smtpkit-log-destination-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const read = (path: string) => readFileSync(path, "utf8");
const parsed = (path: string) =>
  read(path)
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as { msg: string; n?: number });

describe("logDestination: pino's lines in writes of 4 KiB", () => {
  it("holds lines until 4 KiB wait, then writes them at once, in order", () => {
    const path = join(work, "size.log");
    const destination = logDestination({ dest: path, intervalMs: 0 });
    const log = pino({ level: "info" }, destination);
    log.info({ n: 0 }, "first");
    expect(read(path)).toBe(""); // held
    let n = 1;
    while (read(path) === "") log.info({ n: n++ }, "x".repeat(100));
    const written = parsed(path);
    // Written when 4096 characters were waiting: the lines so far, none lost, none reordered.
    expect(written.length).toBe(n);
    expect(written.map((line) => line.n)).toEqual([...Array(n).keys()]);
    expect(read(path).length).toBeGreaterThanOrEqual(4096);
    expect(read(path).length).toBeLessThan(4096 + 300);
    destination.end();
  });

  it("writes what is held every intervalMs, and on flushSync", async () => {
    const path = join(work, "timer.log");
    const destination = logDestination({ dest: path, intervalMs: 50 });
    const log = pino({ level: "info" }, destination);
    log.info("quiet server");
    expect(read(path)).toBe("");
    const deadline = Date.now() + 5000;
    while (read(path) === "" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(parsed(path).map((line) => line.msg)).toEqual(["quiet server"]);
    log.info("at exit");
    destination.flushSync();
    expect(parsed(path).map((line) => line.msg)).toEqual(["quiet server", "at exit"]);
    destination.end();
  });

  it("logger.flush(callback) writes the held lines, then calls back", async () => {
    const path = join(work, "flush.log");
    const destination = logDestination({ dest: path, intervalMs: 0 });
    const log = pino({ level: "info" }, destination);
    log.info("held");
    await new Promise<void>((resolve, reject) =>
      log.flush((error) => (error ? reject(error) : resolve())),
    );
    expect(parsed(path).map((line) => line.msg)).toEqual(["held"]);
    destination.end();
  });

  it("refuses a size that is not a count", () => {
    expect(() => logDestination({ dest: join(work, "bad.log"), bytes: -1 })).toThrow(RangeError);
  });
});
