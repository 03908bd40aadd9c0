#!/usr/bin/env node
// The inbox under load, on this machine, in one run (`npm run bench` in apps/inbox, or at the root):
//   1. N messages of 1 MiB (default 1000) over SMTP into SQLite on disk: messages/s stored, and
//      the server's RSS before, at its peak and after (memory stays flat: bodies are streamed
//      into chunks, never held whole).
//   2. 10 000 small messages, then how long the API takes to list them (the UI's first page,
//      the last page, a search, a wait).
// The server is the built command (dist/cli.js) in its own process; the clients are Nodemailer.
// Options: --large N (1 MiB messages), --small N (small messages), --connections N.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import nodemailer from "nodemailer";

const { values } = parseArgs({
  options: {
    large: { type: "string", default: "1000" },
    small: { type: "string", default: "10000" },
    connections: { type: "string", default: "4" },
  },
});
const LARGE = Number(values.large);
const SMALL = Number(values.small);
const CONNECTIONS = Number(values.connections);
const MIB = 1024 * 1024;
const BIN = new URL("../bin/smtpkit-inbox.mjs", import.meta.url).pathname;

/** The server process's resident set, in bytes (Linux). */
function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}
const mb = (bytes) => `${(bytes / MIB).toFixed(1)} MiB`;

async function startServer(db) {
  const child = spawn(
    process.execPath,
    [BIN, "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", db, "--size", String(64 * MIB)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  child.stdout.on("data", (d) => {
    output += d;
  });
  const deadline = Date.now() + 30_000;
  while (!/HTTP: http:\/\/\S+/.test(output)) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`the server did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    child,
    smtpPort: Number(/SMTP: smtp:\/\/127\.0\.0\.1:(\d+)/.exec(output)[1]),
    httpUrl: /HTTP: (http:\/\/\S+)/.exec(output)[1],
  };
}

async function stopServer(child) {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** A message of about `size` bytes: headers and base64-like lines, as an attachment would be. */
function rawMessage(index, size) {
  const head = `From: bench@example.com\r\nTo: inbox+bench@example.com\r\nSubject: bench message ${index}\r\nMessage-ID: <bench-${index}@example.com>\r\nContent-Type: text/plain\r\n\r\n`;
  const line = `${"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".repeat(2).slice(0, 76)}\r\n`;
  const lines = Math.max(1, Math.floor((size - head.length) / line.length));
  return Buffer.from(head + line.repeat(lines));
}

/** Sends `count` messages over `connections` parallel SMTP sessions; `make(i)` gives each one. */
async function sendAll(port, count, connections, make) {
  let next = 0;
  const worker = async () => {
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 1,
      maxMessages: Infinity,
    });
    try {
      for (let i = next++; i < count; i = next++) {
        await transport.sendMail({
          envelope: { from: "bench@example.com", to: ["inbox+bench@example.com"] },
          raw: make(i),
        });
      }
    } finally {
      transport.close();
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, count) }, worker));
}

async function timed(fn, rounds = 5) {
  const times = [];
  let result;
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    result = await fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], result };
}

const dir = mkdtempSync(join(tmpdir(), "smtpkit-inbox-bench-"));
const results = [];
try {
  // 1. Large messages into SQLite on disk.
  {
    const db = join(dir, "large.sqlite");
    const server = await startServer(db);
    const body = rawMessage(0, MIB);
    const warmup = Math.min(100, LARGE);
    await sendAll(server.smtpPort, warmup, CONNECTIONS, () => body);
    const before = rss(server.child.pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss(server.child.pid));
    }, 50);
    const started = performance.now();
    await sendAll(server.smtpPort, LARGE, CONNECTIONS, () => body);
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const after = rss(server.child.pid);
    const listing = await (await fetch(`${server.httpUrl}/api/v1/messages?limit=1`)).json();
    await stopServer(server.child);
    results.push(
      [
        "1 MiB messages stored (SQLite file, fsync before 250)",
        `${LARGE} in ${seconds.toFixed(1)} s: ${(LARGE / seconds).toFixed(1)} msgs/s, ${((LARGE * body.length) / MIB / seconds).toFixed(1)} MiB/s`,
      ],
      [
        "server RSS: after warm-up / peak / after",
        `${mb(before)} / ${mb(peak)} / ${mb(after)} (growth ${mb(after - before)}, peak ${mb(peak - before)} above)`,
      ],
      [
        "messages in the database / file size",
        `${listing.total} / ${mb(statSync(db).size + (statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0))}`,
      ],
    );
    if (listing.total !== LARGE + warmup)
      throw new Error(`expected ${LARGE + warmup} messages, the API lists ${listing.total}`);
  }

  // 2. Listing 10 000 messages.
  {
    const db = join(dir, "small.sqlite");
    const server = await startServer(db);
    const started = performance.now();
    await sendAll(server.smtpPort, SMALL, CONNECTIONS * 2, (i) =>
      Buffer.from(
        `From: "Sender ${i % 97}" <sender${i % 97}@example.com>\r\nTo: user${i % 13}@example.com\r\nSubject: message ${i} about topic ${i % 50}\r\n\r\nHello, this is message ${i}.\r\n`,
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const get = (path) => fetch(`${server.httpUrl}${path}`).then((r) => r.json());
    const first = await timed(() => get("/api/v1/messages?limit=50"));
    const last = await timed(() => get(`/api/v1/messages?start=${SMALL - 50}&limit=50`));
    const search = await timed(() => get("/api/v1/search?query=topic%2042"));
    const byTo = await timed(() => get("/api/v1/messages?to=user7@example.com&limit=50"));
    const wait = await timed(() =>
      get("/api/v1/wait?subject=message%200%20about%20topic%200&timeout=1000"),
    );
    const page = await timed(() => fetch(`${server.httpUrl}/`).then((r) => r.text()));
    await stopServer(server.child);
    if (first.result.total !== SMALL)
      throw new Error(`expected ${SMALL} messages, got ${first.result.total}`);
    results.push(
      [
        `${SMALL} small messages stored`,
        `${seconds.toFixed(1)} s: ${(SMALL / seconds).toFixed(0)} msgs/s`,
      ],
      [`API list, first page of 50 (with totals) of ${SMALL}`, `${first.ms.toFixed(1)} ms`],
      ["API list, last page", `${last.ms.toFixed(1)} ms`],
      [`search "topic 42" (${search.result.messages_count} matches)`, `${search.ms.toFixed(1)} ms`],
      [
        `list to=user7@example.com (${byTo.result.messages_count} messages)`,
        `${byTo.ms.toFixed(1)} ms`,
      ],
      ["wait for a message already there", `${wait.ms.toFixed(1)} ms`],
      ["UI page", `${page.ms.toFixed(1)} ms`],
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log("\nsmtpkit-inbox bench");
const width = Math.max(...results.map(([k]) => k.length));
for (const [key, value] of results) console.log(`  ${key.padEnd(width)}  ${value}`);
