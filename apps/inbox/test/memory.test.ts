// A small version of the bench's memory check (bench/inbox-bench.mjs does 1 000 × 1 MiB): the
// server's resident memory does not grow with what it stores, because bodies go to SQLite in
// chunks as they arrive. The server is the command, in its own process, with a database file.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { afterAll, describe, expect, it } from "vitest";

const BIN = new URL("../bin/smtpkit-inbox.mjs", import.meta.url).pathname;
const MIB = 1024 * 1024;
const linux = existsSync("/proc/self/status");

function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

describe.runIf(linux)(
  `memory while storing 1 MiB messages${linux ? "" : " [skip: needs /proc]"}`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), "smtpkit-inbox-memory-"));
    let child: ChildProcess | undefined;
    afterAll(() => {
      child?.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    });

    it("50 messages of 1 MiB leave the server's RSS about where it was", {
      timeout: 240_000,
    }, async () => {
      child = spawn(
        process.execPath,
        [BIN, "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", join(dir, "m.sqlite")],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      let output = "";
      child.stdout?.on("data", (d) => {
        output += d;
      });
      const deadline = Date.now() + 20_000;
      while (!/HTTP: http:\/\/\S+/.test(output)) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`not started: ${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const port = Number(/SMTP: smtp:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
      const httpUrl = /HTTP: (http:\/\/\S+)/.exec(output)?.[1] as string;
      const line = `${"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/".repeat(2).slice(0, 76)}\r\n`;
      const raw = Buffer.from(
        `Subject: big\r\nFrom: a@example.com\r\nTo: b@example.com\r\n\r\n${line.repeat(Math.floor(MIB / line.length))}`,
      );
      const transport = nodemailer.createTransport({
        host: "127.0.0.1",
        port,
        secure: false,
        ignoreTLS: true,
        pool: true,
        maxConnections: 2,
      });
      const send = (n: number) =>
        Promise.all(
          Array.from({ length: n }, () =>
            transport.sendMail({ envelope: { from: "a@example.com", to: ["b@example.com"] }, raw }),
          ),
        );
      await send(10); // warm-up: the heap, SQLite's cache, the socket buffers
      const pid = child.pid as number;
      const before = rss(pid);
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss(pid));
      }, 20);
      await send(50);
      clearInterval(sampler);
      const after = rss(pid);
      transport.close();
      const listing = (await (await fetch(`${httpUrl}/api/v1/messages?limit=1`)).json()) as {
        total: number;
        messages: { Size: number }[];
      };
      expect(listing.total).toBe(60);
      expect(listing.messages[0]?.Size).toBe(raw.length);
      // 50 MiB went through; keeping even half of it would cross this line.
      expect(
        after - before,
        `RSS ${before / MIB} → ${after / MIB} MiB (peak ${peak / MIB})`,
      ).toBeLessThan(25 * MIB);
      expect(peak - before).toBeLessThan(40 * MIB);
    });
  },
);
