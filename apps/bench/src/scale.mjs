// Scaling-out benchmark, with Postfix's smtp-source as the load (no pipelining):
//
//   W: the smtpkit CLI with `-c Sink` as one process and with `--workers 2`: msgs/s and server CPU
//      per message (primary + workers), 20 sessions x 1 KB messages.
//   J: the JetStream handler (a real nats-server with JetStream, file store) next to Sink and
//      Mailbox (fsynced Maildir), 1 KB messages (20 sessions) and 5 MB messages (4 sessions).
//      Skipped with a note when nats-server is not installed.
//
//   npm run bench:scale -w @smtpkit/bench [-- --rounds=N --messages=N --out=PATH]
//
// Every server is started fresh per measurement; the best of N rounds (default 3) is reported.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
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
const ROUNDS = Number(args.rounds ?? 3);
const SMALL_MESSAGES = Number(args.messages ?? 4000);
const OUT = resolve(String(args.out ?? join(APP, "results-scale.json")));

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

/** The processes below `pid` (the cluster's workers). */
function childrenOf(pid) {
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "latin1");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {}
  }
  return out;
}

const treeCpu = (pid) => [pid, ...childrenOf(pid)].reduce((sum, p) => sum + (cpuMsOf(p) ?? 0), 0);

/** Starts the CLI and resolves once its listening line is out. */
async function startCli(cliArgs) {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, "-n", "-l", `127.0.0.1:${port}`, ...cliArgs], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`CLI did not start: ${err}`)), 20_000);
    child.stderr.on("data", (d) => {
      err += d;
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        done();
      }
    });
    child.once("exit", (code) => fail(new Error(`CLI exited ${code}: ${err}`)));
  });
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

/** One smtp-source run: `-s sessions -l bytes -m messages`; resolves with its wall time. */
function smtpSource(port, { sessions, bytes, messages }) {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn(
      SMTP_SOURCE,
      [
        "-d",
        "-s",
        String(sessions),
        "-l",
        String(bytes),
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

/** Best of ROUNDS: msgs/s, MB/s and the median server CPU per message. */
async function measure(label, cliArgs, load) {
  const rates = [];
  const cpus = [];
  for (let round = 0; round < ROUNDS; round++) {
    const server = await startCli(cliArgs);
    try {
      await smtpSource(server.port, { ...load, messages: Math.min(load.messages, 40) }); // warm-up
      const cpuBefore = treeCpu(server.pid);
      const ms = await smtpSource(server.port, load);
      const cpu = treeCpu(server.pid) - cpuBefore;
      rates.push((load.messages * 1000) / ms);
      cpus.push((cpu * 1000) / load.messages);
    } finally {
      await server.stop();
    }
  }
  cpus.sort((a, b) => a - b);
  const best = Math.max(...rates);
  const result = {
    label,
    msgsPerSecond: Math.round(best),
    mbPerSecond: Math.round(((best * load.bytes) / 1_048_576) * 10) / 10,
    cpuMicrosPerMessage: Math.round(cpus[Math.floor(cpus.length / 2)]),
  };
  console.log(
    `${label.padEnd(34)} ${String(result.msgsPerSecond).padStart(7)} msgs/s ${String(result.mbPerSecond).padStart(7)} MB/s  ${String(result.cpuMicrosPerMessage).padStart(6)} µs CPU/msg`,
  );
  return result;
}

async function startNats() {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), "bench-nats-"));
  const child = spawn(
    "nats-server",
    ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`nats-server did not start: ${err}`)), 15_000);
    child.stderr.on("data", (d) => {
      err += d;
      if (err.includes("Server is ready")) {
        clearTimeout(timer);
        done();
      }
    });
  });
  child.stderr.resume();
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      await new Promise((done) => {
        child.once("exit", done);
        child.kill("SIGTERM");
      });
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

if (!SMTP_SOURCE) {
  console.log("skip: smtp-source not installed (Debian package postfix)");
  process.exit(process.env.CI ? 1 : 0);
}
if (!existsSync(CLI)) {
  console.log("build first: npm run build (apps/smtpd/dist/cli.js is missing)");
  process.exit(1);
}

const small = { sessions: 20, bytes: 1024, messages: SMALL_MESSAGES };
const large = { sessions: 4, bytes: 5 * 1_048_576, messages: 40 };
const results = {
  cores: availableParallelism(),
  date: new Date().toISOString(),
  workers: [],
  jetstream: [],
};

console.log(
  `W: workers, Sink, smtp-source -d -s 20 -l 1024 -m ${SMALL_MESSAGES} (${results.cores} cores)`,
);
results.workers.push(await measure("1 process", ["-c", "Sink"], small));
results.workers.push(await measure("--workers 2", ["--workers", "2", "-c", "Sink"], small));

const natsInstalled = spawnSync("nats-server", ["--version"]).status === 0;
if (!natsInstalled) {
  console.log("J: skip: nats-server not installed (apt-get install nats-server)");
} else {
  const maildir = mkdtempSync(join(tmpdir(), "bench-maildir-"));
  const nats = await startNats();
  try {
    for (const [name, load] of [
      ["1 KB", small],
      ["5 MB", large],
    ]) {
      console.log(`J: ${name} messages, ${load.sessions} sessions`);
      for (const [label, handler] of [
        ["Sink", ["-c", "Sink"]],
        ["Mailbox (fsync)", ["-c", "Mailbox", maildir]],
        ["JetStream", ["-c", "JetStream", nats.url, "bench.mail"]],
      ]) {
        results.jetstream.push({
          size: name,
          ...(await measure(`${label}, ${name}`, handler, load)),
        });
        rmSync(join(maildir, "new"), { recursive: true, force: true });
      }
    }
  } finally {
    await nats.stop();
    rmSync(maildir, { recursive: true, force: true });
  }
}
writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
console.log(`results in ${OUT}`);
