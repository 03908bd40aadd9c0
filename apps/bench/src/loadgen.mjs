// Load generator: raw `node:net` sockets speaking SMTP, with RFC 2920 PIPELINING when the server
// offers it. Runs as a child process of run.mjs (fork, IPC) so it has its own core and event loop.
//
//   argv[2] = JSON config: { mode, port, sessions, size, warmupMs, durationMs, ... }
//
// Modes:
//   persistent  each session: connect, EHLO, then many transactions
//               [RSET MAIL RCPT DATA] -> 354 -> [body . RSET MAIL RCPT DATA] -> ...
//               (the body is the first "command" of the next group, RFC 2920 §3.1)
//   perconn     each iteration: connect, EHLO, [MAIL RCPT DATA] -> 354 -> [body . QUIT], close
//   single      one session, one message (size-limit check): records the final reply
//   idle        open `connections` sockets, EHLO each (or only read the greeting), hold them
//               until the parent says "close"
//
// Only 127.0.0.1; every loop is bounded by a deadline (and by maxMessages).

import * as net from "node:net";

const cfg = JSON.parse(process.argv[2] ?? "{}");
const HOST = "127.0.0.1";
const now = () => performance.now();
const post = (message) => {
  if (process.send) process.send(message);
  else process.stdout.write(`${JSON.stringify(message)}\n`);
};

/** A message of exactly `size` octets (CRLF lines, no line starting with "."), without the final dot. */
function makeMessage(size) {
  const head =
    "From: <sender@bench.example>\r\nTo: <rcpt@bench.example>\r\nSubject: smtpkit bench\r\n" +
    "Message-ID: <bench@bench.example>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n";
  const line = `${"abcdefghijklmnopqrstuvwxyz0123456789".repeat(3).slice(0, 76)}\r\n`; // 78 octets
  const buf = Buffer.allocUnsafe(size);
  let off = buf.write(head, 0, "latin1");
  while (off + line.length <= size) off += buf.write(line, off, "latin1");
  // Pad the rest with one shorter line ending in CRLF (or bare filler if < 2 octets remain).
  const rest = size - off;
  if (rest >= 2) {
    buf.fill(0x78, off, size - 2);
    buf.write("\r\n", size - 2, "latin1");
  } else if (rest > 0) {
    // Move the last CRLF: lengthen the previous line by `rest` octets.
    buf.copyWithin(off - 2 + rest, off - 2, off);
    buf.fill(0x78, off - 2, off - 2 + rest);
  }
  return buf;
}

class Client {
  /** @type {net.Socket} */
  socket;
  partial = "";
  lines = [];
  /** Completed replies not yet consumed: { code, lines }. */
  replies = [];
  waiter = null;
  closed = false;
  error = null;

  static open(port) {
    return new Promise((resolve, reject) => {
      const c = new Client();
      const socket = net.connect({ host: HOST, port, noDelay: true });
      c.socket = socket;
      const onError = (e) => reject(e);
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        socket.on("error", (e) => {
          c.error = e;
        });
        resolve(c);
      });
      socket.on("data", (d) => c.onData(d));
      socket.on("close", () => {
        c.closed = true;
        const w = c.waiter;
        c.waiter = null;
        w?.reject(c.error ?? new Error(`connection closed (${c.replies.length} replies pending)`));
      });
    });
  }

  onData(chunk) {
    let s = this.partial + chunk.toString("latin1");
    let start = 0;
    for (;;) {
      const eol = s.indexOf("\r\n", start);
      if (eol < 0) break;
      const line = s.slice(start, eol);
      start = eol + 2;
      this.lines.push(line);
      if (line.length < 4 || line.charCodeAt(3) !== 45 /* - */) {
        this.replies.push({ code: Number(line.slice(0, 3)), lines: this.lines });
        this.lines = [];
      }
    }
    this.partial = start === 0 ? s : s.slice(start);
    s = "";
    const w = this.waiter;
    if (w && this.replies.length >= w.n) {
      this.waiter = null;
      w.resolve(this.replies.splice(0, w.n));
    }
  }

  /** Resolves with the next `n` replies. */
  expect(n) {
    if (this.replies.length >= n) return Promise.resolve(this.replies.splice(0, n));
    if (this.closed) return Promise.reject(this.error ?? new Error("connection closed"));
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
    });
  }

  write(data) {
    return this.socket.write(data);
  }
}

const GROUP_FULL =
  "RSET\r\nMAIL FROM:<sender@bench.example>\r\nRCPT TO:<rcpt@bench.example>\r\nDATA\r\n";
const GROUP_NO_RSET =
  "MAIL FROM:<sender@bench.example>\r\nRCPT TO:<rcpt@bench.example>\r\nDATA\r\n";
const STEPS_FULL = GROUP_FULL.split(/(?<=\r\n)/);
const STEPS_NO_RSET = GROUP_NO_RSET.split(/(?<=\r\n)/);

class Unexpected extends Error {}

function check(replies, codes, what) {
  for (let i = 0; i < codes.length; i++) {
    if (replies[i]?.code !== codes[i]) {
      throw new Unexpected(
        `${what}: expected ${codes.join(",")}, got ${replies.map((r) => r.lines.join(" | ")).join(" / ")}`,
      );
    }
  }
}

/** Sends a group of commands, pipelined when allowed, else one at a time; returns all replies. */
async function sendGroup(c, pipelining, steps) {
  if (pipelining) {
    c.write(steps.join(""));
    return c.expect(steps.length);
  }
  const out = [];
  for (const step of steps) {
    c.write(step);
    out.push(...(await c.expect(1)));
  }
  return out;
}

async function hello(c) {
  check(await c.expect(1), [220], "greeting");
  c.write("EHLO loadgen.bench.example\r\n");
  const [ehlo] = await c.expect(1);
  check([ehlo], [250], "EHLO");
  const pipelining =
    cfg.pipelining !== false && ehlo.lines.some((l) => /^250[ -]PIPELINING\b/i.test(l));
  return pipelining;
}

// ------------------------------------------------------------------------------------------------

const stats = {
  windowMessages: 0,
  windowBytes: 0,
  totalMessages: 0,
  rejected: {},
  errors: [],
  latencies: [],
  sessionsPipelining: 0,
  connections: 0,
};
let tStart = 0;
let tEnd = 0;
let tHardStop = 0;

function record(code, size, latency) {
  const t = now();
  if (code === 250) {
    stats.totalMessages++;
    if (t >= tStart && t <= tEnd) {
      stats.windowMessages++;
      stats.windowBytes += size;
      if (stats.latencies.length < 200_000) stats.latencies.push(latency);
    }
  } else {
    stats.rejected[code] = (stats.rejected[code] ?? 0) + 1;
  }
}

function noteError(e) {
  if (stats.errors.length < 20) stats.errors.push(String(e?.message ?? e));
}

const maxMessages = cfg.maxMessages ?? 10_000_000;
let started = 0;
const more = () => now() < tEnd && started < maxMessages && now() < tHardStop;

async function persistentSession(message) {
  const c = await Client.open(cfg.port);
  stats.connections++;
  try {
    const pipelining = await hello(c);
    if (pipelining) stats.sessionsPipelining++;
    const body = Buffer.concat([message, Buffer.from(".\r\n")]);
    const bodyAndGroup = Buffer.concat([body, Buffer.from(GROUP_FULL)]);
    let replies = await sendGroup(c, pipelining, STEPS_FULL);
    check(replies, [250, 250, 250, 354], "RSET/MAIL/RCPT/DATA");
    for (;;) {
      started++;
      const t0 = now();
      const chain = pipelining && cfg.chain !== false && more();
      if (chain) {
        c.write(bodyAndGroup);
        replies = await c.expect(5);
        record(replies[0].code, message.length, now() - t0);
        check(replies.slice(1), [250, 250, 250, 354], "RSET/MAIL/RCPT/DATA");
        continue;
      }
      c.write(body);
      replies = await c.expect(1);
      record(replies[0].code, message.length, now() - t0);
      if (!more()) break;
      replies = await sendGroup(c, pipelining, STEPS_FULL);
      check(replies, [250, 250, 250, 354], "RSET/MAIL/RCPT/DATA");
    }
    c.write("QUIT\r\n");
    await c.expect(1);
  } finally {
    c.socket.end();
  }
}

async function perConnectionLoop(message) {
  const body = Buffer.concat([message, Buffer.from(".\r\n")]);
  const bodyQuit = Buffer.concat([body, Buffer.from("QUIT\r\n")]);
  while (more()) {
    started++;
    const t0 = now();
    const c = await Client.open(cfg.port);
    stats.connections++;
    try {
      const pipelining = await hello(c);
      if (pipelining) stats.sessionsPipelining++;
      const replies = await sendGroup(c, pipelining, STEPS_NO_RSET);
      check(replies, [250, 250, 354], "MAIL/RCPT/DATA");
      if (pipelining) {
        c.write(bodyQuit);
        const r = await c.expect(2);
        record(r[0].code, message.length, now() - t0);
      } else {
        c.write(body);
        const r = await c.expect(1);
        record(r[0].code, message.length, now() - t0);
        c.write("QUIT\r\n");
        await c.expect(1);
      }
    } finally {
      c.socket.end();
    }
  }
}

async function throughput(kind) {
  const message = makeMessage(cfg.size);
  const t0 = now();
  tStart = t0 + cfg.warmupMs;
  tEnd = tStart + cfg.durationMs;
  tHardStop = tEnd + (cfg.graceMs ?? 30_000);
  const startTimer = setTimeout(() => {
    post({ phase: "windowStart", cpu: process.cpuUsage() });
    stats.cpuAtStart = process.cpuUsage();
  }, cfg.warmupMs);
  const endTimer = setTimeout(() => {
    stats.cpuInWindow = process.cpuUsage(stats.cpuAtStart);
    post({ phase: "windowEnd" });
  }, cfg.warmupMs + cfg.durationMs);
  const run = kind === "persistent" ? persistentSession : perConnectionLoop;
  const sessions = [];
  for (let i = 0; i < cfg.sessions; i++) {
    sessions.push(
      (async () => {
        // A failed session is restarted while the window is open (counts as an error).
        while (more()) {
          try {
            await run(message);
            if (kind === "persistent") return;
          } catch (e) {
            noteError(e);
            if (e instanceof Unexpected) return;
            await new Promise((r) => setTimeout(r, 10));
          }
        }
      })(),
    );
  }
  await Promise.all(sessions);
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  const windowSec = cfg.durationMs / 1000;
  const lat = stats.latencies.sort((a, b) => a - b);
  const pct = (p) =>
    lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null;
  return {
    mode: kind,
    sessions: cfg.sessions,
    size: cfg.size,
    windowSec,
    messages: stats.windowMessages,
    msgsPerSec: stats.windowMessages / windowSec,
    mbPerSec: stats.windowBytes / 1048576 / windowSec,
    totalMessages: stats.totalMessages,
    connections: stats.connections,
    sessionsPipelining: stats.sessionsPipelining,
    rejected: stats.rejected,
    errors: stats.errors,
    latencyMs: { p50: pct(0.5), p99: pct(0.99) },
    loadgenCpuPct: stats.cpuInWindow
      ? ((stats.cpuInWindow.user + stats.cpuInWindow.system) / 1000 / cfg.durationMs) * 100
      : null,
    elapsedMs: now() - t0,
  };
}

async function single() {
  // One message of cfg.size octets (e.g. above the server's limit): which reply, how long.
  const message = makeMessage(cfg.size);
  const c = await Client.open(cfg.port);
  const t0 = now();
  const timer = setTimeout(() => c.socket.destroy(new Error("timeout")), cfg.timeoutMs ?? 20_000);
  try {
    const pipelining = await hello(c);
    const replies = await sendGroup(c, pipelining, STEPS_NO_RSET);
    check(replies, [250, 250, 354], "MAIL/RCPT/DATA");
    c.write(message);
    c.write(".\r\n");
    const [r] = await c.expect(1);
    c.write("QUIT\r\n");
    await c.expect(1).catch(() => undefined);
    return { size: cfg.size, reply: r.lines.join(" | "), code: r.code, ms: now() - t0 };
  } catch (e) {
    return {
      size: cfg.size,
      reply: null,
      code: null,
      error: String(e?.message ?? e),
      ms: now() - t0,
    };
  } finally {
    clearTimeout(timer);
    c.socket.destroy();
  }
}

function waitFor(cmd) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m?.cmd === cmd) {
        process.off("message", on);
        resolve(m);
      }
    };
    process.on("message", on);
  });
}

async function pool(count, concurrency, task) {
  let next = 0;
  const workers = [];
  for (let w = 0; w < Math.min(concurrency, count); w++) {
    workers.push(
      (async () => {
        while (next < count) {
          const i = next++;
          await task(i);
        }
      })(),
    );
  }
  await Promise.all(workers);
}

async function idle() {
  const ehlo = cfg.ehlo !== false;
  const deadline = now() + (cfg.timeoutMs ?? 60_000);
  const openOne = async () => {
    const c = await Client.open(cfg.port);
    check(await c.expect(1), [220], "greeting");
    if (ehlo) {
      c.write("EHLO idle.bench.example\r\n");
      check(await c.expect(1), [250], "EHLO");
    }
    return c;
  };
  // Warm-up: a few full sessions so lazy initialisation is not counted per connection.
  await pool(cfg.warmConnections ?? 50, 10, async () => {
    try {
      const c = await openOne();
      c.socket.destroy();
    } catch (e) {
      noteError(e);
    }
  });
  post({ phase: "warm" });
  await waitFor("open");
  const open = [];
  let failed = 0;
  const t0 = now();
  await pool(cfg.connections, cfg.openConcurrency ?? 100, async () => {
    if (now() > deadline) {
      failed++;
      return;
    }
    try {
      open.push(await openOne());
    } catch (e) {
      failed++;
      noteError(e);
    }
  });
  post({ phase: "opened", opened: open.length, failed, ms: now() - t0, errors: stats.errors });
  await waitFor("close");
  const stillOpen = open.filter((c) => !c.closed).length;
  for (const c of open) c.socket.destroy();
  return { opened: open.length, failed, stillOpenAtEnd: stillOpen, errors: stats.errors };
}

async function main() {
  let result;
  switch (cfg.mode) {
    case "persistent":
    case "perconn":
      result = await throughput(cfg.mode);
      break;
    case "single":
      result = await single();
      break;
    case "idle":
      result = await idle();
      break;
    default:
      throw new Error(`unknown mode ${cfg.mode}`);
  }
  post({ phase: "result", result });
  // Let the IPC message flush, then exit even if sockets linger.
  setTimeout(() => process.exit(0), 50);
}

main().catch((e) => {
  post({ phase: "result", result: { fatal: String(e?.stack ?? e) } });
  setTimeout(() => process.exit(1), 50);
});
