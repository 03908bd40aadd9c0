// The observability cost without the kernel: the core's SMTP class over an in-memory transport
// that hands it smtp-source's dialog of scenario A one command per read (EHLO, then per message
// MAIL, RCPT, DATA, the 1 KB body and its dot; each read a turn of the event loop), replies
// dropped. Every variant runs many short
// repetitions interleaved (none, logs, metrics, ... none, logs, ...) and the least CPU time per
// message of each is kept: on a machine shared with other work that is the figure least
// disturbed. "vs none" compares with this base, which has no TCP in it; the share of scenario A's
// CPU per message over TCP (--scenario-cpu, given by observe.mjs) is what the observer's own work
// adds to a server's. Over TCP on a small machine the measured difference can be larger: the
// control variant of observe.mjs (3 µs of busy loop per message) shows by how much.
//
//   node src/observe-inprocess.mjs [--reps=N] [--messages=N] [--baseline-core=PATH] [--scenario-cpu=µs]
//
// --baseline-core=PATH: the server entry (dist/server/index.js) of another @smtpkit/core build,
// run as "baseline" (e.g. the commit before the observer hooks).

import { pathToFileURL } from "node:url";
import { logDestination, observe, promMetrics } from "@smtpkit/observability";
import { pino } from "pino";
import { Registry } from "prom-client";

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = a.match(/^--([^=]+)(?:=(.*))?$/);
    return m ? [m[1], m[2] ?? true] : [a, true];
  }),
);
const REPS = Number(args.reps ?? 40);
const MESSAGES = Number(args.messages ?? 200);
const { SMTP } = await import("@smtpkit/core/server");
const Baseline = args["baseline-core"]
  ? (await import(pathToFileURL(String(args["baseline-core"])).href)).SMTP
  : null;

const encoder = new TextEncoder();
const body = `${"X".repeat(78)}\r\n`.repeat(13);
const chunks = [encoder.encode("EHLO bench.example\r\n")];
for (let i = 0; i < MESSAGES; i++) {
  chunks.push(
    encoder.encode("MAIL FROM:<foo@bench.example>\r\n"),
    encoder.encode("RCPT TO:<foo@bench.example>\r\n"),
    encoder.encode("DATA\r\n"),
    encoder.encode(`From: <foo@bench.example>\r\nSubject: bench\r\n\r\n${body}.\r\n`),
  );
}
chunks.push(encoder.encode("QUIT\r\n"));

/** smtp-source's side of one session: the next command on each read. */
class ScriptTransport {
  peer = { address: "127.0.0.1", port: 40000, family: "IPv4" };
  local = { address: "127.0.0.1", port: 25 };
  tls = null;
  #next = 0;
  /** Each read a turn of the event loop, as from a socket (pino's buffered writes happen there). */
  read() {
    const chunk = this.#next < chunks.length ? chunks[this.#next++] : null;
    return new Promise((resolve) => setImmediate(resolve, chunk));
  }
  async write() {}
  async close() {}
  destroy() {}
  async startTls() {
    throw new Error("no TLS here");
  }
}

const handler = {
  async handleDATAStream(_server, _session, _envelope, stream) {
    for await (const _chunk of stream);
  },
};

// As the CLI writes: in writes of 4 KiB.
const devNull = logDestination({ dest: "/dev/null" });
const logger = pino({ level: "info" }, devNull);
const logsSync = pino({ level: "info" }, pino.destination({ dest: "/dev/null", sync: true }));
const metrics = promMetrics(new Registry());
const VARIANTS = {
  none: { smtp: SMTP, options: {} },
  ...(Baseline && { baseline: { smtp: Baseline, options: {} } }),
  logs: { smtp: SMTP, options: { observer: observe({ logger, channels: false }) } },
  "logs-sync": {
    smtp: SMTP,
    options: { observer: observe({ logger: logsSync, channels: false }) },
  },
  metrics: { smtp: SMTP, options: { observer: observe({ metrics, channels: false }) } },
  "logs-metrics": {
    smtp: SMTP,
    options: { observer: observe({ logger, metrics, channels: false }) },
  },
  channels: { smtp: SMTP, options: { observer: observe() } },
};

async function once({ smtp: Smtp, options }) {
  const start = process.cpuUsage();
  await new Smtp(handler, { hostname: "bench.smtpkit.example", ...options }).run(
    new ScriptTransport(),
  );
  const used = process.cpuUsage(start);
  return (used.user + used.system) / MESSAGES;
}

const best = Object.fromEntries(Object.keys(VARIANTS).map((name) => [name, Infinity]));
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, variant] of Object.entries(VARIANTS)) {
    const us = await once(variant);
    if (rep >= 3 && us < best[name]) best[name] = us; // the first reps warm the JIT
  }
}
// Scenario A's server CPU per message over TCP (observe.mjs passes its figure): the share of it
// an observer's own work is.
const scenarioCpu = args["scenario-cpu"] ? Number(args["scenario-cpu"]) : null;
const pct = (x) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`;
const rows = Object.entries(best).map(([name, us]) => {
  const added = us - best.none;
  const vsNone = name === "none" ? "" : pct(added / best.none);
  const share = name === "none" || scenarioCpu === null ? "" : pct(added / scenarioCpu);
  return `| ${name.padEnd(12)} | ${us.toFixed(1).padStart(6)} µs | ${(name === "none" ? "" : `${added >= 0 ? "+" : ""}${added.toFixed(1)} µs`).padStart(9)} | ${vsNone.padStart(8)} |${scenarioCpu === null ? "" : ` ${share.padStart(13)} |`}`;
});
const shareHead = scenarioCpu === null ? "" : ` ${`of ${scenarioCpu} µs`.padStart(13)} |`;
const shareRule = scenarioCpu === null ? "" : ` ${"-".repeat(13)} |`;
process.stdout.write(
  `\nobservability cost in-process (SMTP class, scenario A's dialog, ${MESSAGES} messages per session, least of ${REPS - 3} reps), CPU per message${scenarioCpu === null ? "" : `; last column: the added CPU as a share of scenario A's ${scenarioCpu} µs per message over TCP`}:\n` +
    `| ${"observer".padEnd(12)} | ${"CPU".padStart(9)} | ${"added".padStart(9)} | ${"vs none".padStart(8)} |${shareHead}\n` +
    `| ${"-".repeat(12)} | ${"-".repeat(9)} | ${"-".repeat(9)} | ${"-".repeat(8)} |${shareRule}\n${rows.join("\n")}\n`,
);
devNull.flushSync();
