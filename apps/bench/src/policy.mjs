// The connection policy's cost (@smtpkit/policy through the CLI's flags), with Postfix's
// smtp-source as the load (no pipelining), against the smtpkit CLI with `-c Sink`:
//
//   P1: one message per connection (smtp-source -s 20 -l 1024): the per-connection cost
//       (handleCONNECT / handleCLOSE: a slot and a connection-rate hit) plus one MAIL and RCPT.
//   P0: the policy's own work, in this process: the composed hooks called directly (handleCONNECT,
//       handleMAIL, handleRCPT, handleCLOSE per connection) with the memory store, minus the same
//       loop over hooks that do nothing. Steadier than P1/P2 on a machine shared with other work.
//   P2: 20 sessions x many messages (smtp-source -d -s 20 -l 1024): the per-message cost
//       (MAIL and RCPT rate hits).
//
// Each runs without the policy, with a handler whose same hooks do nothing (what calling them
// costs the server), with every limit on (limits high enough that nothing is refused)
// in memory, and the same with --redis (a real redis-server; skipped when it is not installed).
// Rounds interleave the variants; reported: the best msgs/s and the median server CPU per message
// (the CLI process only; redis-server's own CPU is given apart), and paired: the median over
// rounds of each variant's change against "no policy" in the same round (a shared machine drifts
// between rounds by more than the effect measured; within a round the drift cancels).
//
//   npm run bench:policy -w @smtpkit/bench [-- --rounds=N --messages=N --out=PATH]

import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compose } from "@smtpkit/node";
import { limits } from "@smtpkit/policy";
import { cpuMsOf } from "./proc.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const APP = resolve(HERE, "..");
const CLI = resolve(APP, "../smtpd/dist/cli.js");
const SMTP_SOURCE = ["/usr/sbin/smtp-source", "/usr/bin/smtp-source"].find(existsSync);

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = a.match(/^--([^=]+)(?:=(.*))?$/);
    return m ? [m[1], m[2] ?? true] : [a, true];
  }),
);
const ROUNDS = Number(args.rounds ?? 7);
const MESSAGES = Number(args.messages ?? 6000);
const OUT = resolve(String(args.out ?? join(APP, "results-policy.json")));

// Every limit on, none reached: the cost of checking, not of refusing.
const LIMITS = [
  "--max-connections-per-ip",
  "1000",
  "--rate-limit-connections",
  "100000000/1",
  "--rate-limit-messages",
  "100000000/1",
  "--rate-limit-recipients",
  "100000000/1",
  "--max-auth-failures",
  "5/1",
];

function freePort() {
  return new Promise((done, fail) => {
    const server = net.createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

function waitFor(child, pattern, what) {
  let out = "";
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${what} did not start: ${out}`)), 20_000);
    const onData = (d) => {
      out += d;
      if (pattern.test(out)) {
        clearTimeout(timer);
        done();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => fail(new Error(`${what} exited ${code}: ${out}`)));
  });
}

async function startCli(cliArgs) {
  const port = await freePort();
  const handler = cliArgs[0] === "-c" ? [] : ["-c", "Sink"];
  const child = spawn(
    process.execPath,
    [CLI, "-n", "-l", `127.0.0.1:${port}`, ...handler, ...cliArgs],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  await waitFor(child, /listening on/, "the CLI");
  child.stderr.resume();
  return {
    port,
    pid: child.pid,
    stop: () =>
      new Promise((done) => {
        child.once("exit", done);
        child.kill("SIGTERM");
      }),
  };
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await waitFor(child, /Ready to accept connections/, "redis-server");
  child.stdout.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () =>
      new Promise((done) => {
        child.once("exit", done);
        child.kill("SIGTERM");
      }),
  };
}

function smtpSource(port, { perConnection, messages }) {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn(
      SMTP_SOURCE,
      [
        ...(perConnection ? [] : ["-d"]),
        "-s",
        "20",
        "-l",
        "1024",
        "-m",
        String(messages),
        `127.0.0.1:${port}`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.once("exit", (code) => {
      if (code !== 0) fail(new Error(`smtp-source exited ${code}: ${err}`));
      else done(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

/** One round of one variant: msgs/s, server CPU µs per message, redis-server CPU µs per message. */
async function once(cliArgs, load, redis) {
  const server = await startCli(cliArgs);
  try {
    await smtpSource(server.port, { ...load, messages: 200 }); // warm-up
    const cpuBefore = cpuMsOf(server.pid);
    const redisBefore = redis ? cpuMsOf(redis.pid) : 0;
    const ms = await smtpSource(server.port, load);
    const cpu = cpuMsOf(server.pid) - cpuBefore;
    const redisCpu = redis ? cpuMsOf(redis.pid) - redisBefore : 0;
    return {
      rate: (load.messages * 1000) / ms,
      cpu: (cpu * 1000) / load.messages,
      redisCpu: (redisCpu * 1000) / load.messages,
    };
  } finally {
    await server.stop();
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** Every limit on, none reached, in memory: what P0 and P0b measure. */
const P0_LIMITS = {
  connections: { perIp: 1000, perNetwork: 1000, rate: { limit: 1e9, windowMs: 60_000 } },
  messages: { perConnection: 1000, rate: { limit: 1e9, windowMs: 60_000 } },
  recipients: { perConnection: 1000, rate: { limit: 1e9, windowMs: 60_000 } },
  authFailures: { limit: 5, windowMs: 60_000 },
};

/** P0: µs per connection with one message and one recipient, hooks called directly. */
async function hookCost(handler, connections) {
  const server = { options: {}, hostname: "bench.example" };
  // CPU time, not wall time: on a shared machine the wall clock mostly measures the others.
  const started = process.cpuUsage();
  for (let i = 0; i < connections; i++) {
    const session = {
      id: `s${i}`,
      peer: { address: `127.0.0.${i & 255}`, port: 40000, family: "IPv4" },
      authenticated: null,
    };
    server.session = session;
    await handler.handleCONNECT(server, session);
    await handler.handleMAIL(server, session, {}, "a@example.com", []);
    await handler.handleRCPT(server, session, {}, "b@example.com", []);
    await handler.handleCLOSE(server, session, "quit");
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / connections;
}

async function p0() {
  const noop = compose({
    handleCONNECT() {},
    handleCLOSE() {},
    handleMAIL() {},
    handleRCPT() {},
  });
  const policy = compose(limits(P0_LIMITS));
  const runs = { noop: [], policy: [] };
  for (let round = 0; round < 7; round++) {
    runs.noop.push(await hookCost(noop, 100_000));
    runs.policy.push(await hookCost(policy, 100_000));
  }
  const best = (values) => Math.min(...values);
  const row = {
    emptyHooksMicros: Math.round(best(runs.noop) * 100) / 100,
    policyMicros: Math.round(best(runs.policy) * 100) / 100,
  };
  row.policyOwnMicros = Math.round((row.policyMicros - row.emptyHooksMicros) * 100) / 100;
  console.log(
    `P0: the policy's own work per connection (+1 message, 1 recipient), memory store, 256 addresses: ${row.policyOwnMicros} µs (hooks ${row.policyMicros} µs, empty hooks ${row.emptyHooksMicros} µs)`,
  );
  return row;
}

if (!SMTP_SOURCE) {
  console.log("skip: smtp-source not installed (Debian package postfix)");
  process.exit(process.env.CI ? 1 : 0);
}
if (!existsSync(CLI)) {
  console.log("build first: npm run build (apps/smtpd/dist/cli.js is missing)");
  process.exit(1);
}
const redisInstalled = spawnSync("redis-server", ["--version"]).status === 0;
const redis = redisInstalled ? await startRedis() : null;
if (!redis)
  console.log("Redis variant: skip: redis-server not installed (apt-get install redis-server)");

const variants = [
  ["no policy", []],
  // The same hooks doing nothing: the server's cost of calling them, apart from the policy's work.
  ["empty hooks", ["-c", join(HERE, "servers/noop-hooks.mjs")]],
  ["limits, memory store", LIMITS],
  ...(redis ? [["limits, Redis store", [...LIMITS, "--redis", redis.url]]] : []),
];
const results = {
  date: new Date().toISOString(),
  rounds: ROUNDS,
  messages: MESSAGES,
  scenarios: [],
};
results.p0 = await p0();
if (args.only === "p0") {
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  await redis?.stop();
  process.exit(0);
}
try {
  for (const [name, load] of [
    ["P1: one message per connection (-s 20 -l 1024)", { perConnection: true, messages: MESSAGES }],
    [
      "P2: 20 sessions, many messages each (-d -s 20 -l 1024)",
      { perConnection: false, messages: MESSAGES },
    ],
  ]) {
    console.log(name);
    const samples = new Map(variants.map(([label]) => [label, []]));
    for (let round = 0; round < ROUNDS; round++)
      for (const [label, cliArgs] of variants)
        samples.get(label).push(await once(cliArgs, load, label.includes("Redis") ? redis : null));
    const rows = variants.map(([label]) => {
      const runs = samples.get(label);
      return {
        label,
        msgsPerSecond: Math.round(Math.max(...runs.map((r) => r.rate))),
        cpuMicrosPerMessage: Math.round(median(runs.map((r) => r.cpu))),
        redisCpuMicrosPerMessage: Math.round(median(runs.map((r) => r.redisCpu))),
      };
    });
    const base = rows[0];
    const baseRuns = samples.get(base.label);
    /** Median over rounds of the change against "no policy" within the same round. */
    const paired = (runs, key) =>
      Math.round(median(runs.map((r, i) => r[key] / baseRuns[i][key] - 1)) * 1000) / 10;
    const sign = (x) => `${x >= 0 ? "+" : ""}${x}%`;
    for (const row of rows) {
      const runs = samples.get(row.label);
      row.cpuOverheadPercent =
        Math.round(
          ((row.cpuMicrosPerMessage - base.cpuMicrosPerMessage) / base.cpuMicrosPerMessage) * 1000,
        ) / 10;
      row.throughputChangePercent =
        Math.round(((row.msgsPerSecond - base.msgsPerSecond) / base.msgsPerSecond) * 1000) / 10;
      row.pairedThroughputChangePercent = paired(runs, "rate");
      row.pairedCpuOverheadPercent = paired(runs, "cpu");
      console.log(
        `  ${row.label.padEnd(22)} ${String(row.msgsPerSecond).padStart(6)} msgs/s (${sign(row.throughputChangePercent)})  ${String(row.cpuMicrosPerMessage).padStart(5)} µs CPU/msg (${sign(row.cpuOverheadPercent)})  paired: msgs/s ${sign(row.pairedThroughputChangePercent)}, CPU ${sign(row.pairedCpuOverheadPercent)}${row.redisCpuMicrosPerMessage ? `  redis-server ${row.redisCpuMicrosPerMessage} µs/msg` : ""}`,
      );
    }
    results.scenarios.push({ name, rows });
    if (name.startsWith("P1") && results.p0) {
      const share = (results.p0.policyOwnMicros / base.cpuMicrosPerMessage) * 100;
      console.log(
        `  the policy's own work (P0, ${results.p0.policyOwnMicros} µs) is ${share.toFixed(1)}% of a P1 connection's ${base.cpuMicrosPerMessage} µs CPU`,
      );
    }
  }
} finally {
  await redis?.stop();
}
writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
console.log(`results in ${OUT}`);
