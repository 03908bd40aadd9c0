// smtpkit server benchmark (issue 3, "Benchmark"): smtpkit vs Nodemailer's smtp-server vs aiosmtpd.
//
//   npm run bench -w @smtpkit/bench [-- options]
//
// Every server runs in its own child process, started fresh for every scenario, so memory figures
// (VmRSS sampled every 50 ms, and the kernel's VmHWM) belong to that server and that scenario only.
// The load generator (src/loadgen.mjs) is another child process with raw node:net sockets.
// Postfix's smtp-source, when installed, is run as a second opinion on scenarios 1 and 2.
//
// Options:
//   --only=smtpkit,smtp-server,aiosmtpd,bare-net   servers to run (default: all available)
//   --scenarios=s1,s1np,s2,s3,limit,idle,smtp-source  scenarios (default: all)
//   --duration=MS      measured window of the throughput scenarios (default 2500; 5 MB: +1000)
//   --warmup=MS        unmeasured ramp-up before each window (default 800)
//   --rounds=N         rounds of s1, s2 and s3, servers interleaved; the best round is shown
//                      (others only slow a round down: the machine is shared), default 2
//   --connections=N    idle connections (default 2000)
//   --cpu-prof         run the Node servers with --cpu-prof (profiles in apps/bench/profiles/;
//                      summarise with src/profile-summary.mjs)
//   --priority=N       os.setPriority() of the server and load-generator processes (e.g. -5 on a
//                      machine shared with other work; needs root for N < 0). Default: unchanged
//   --server-flags="--max-semi-space-size=1 ..."  extra node flags for the Node servers
//   --alloc-prof       sampling allocation profile of the smtpkit server during each measured
//                      window (profiles/smtpkit-<scenario>-<n>.heapprofile; summarise with
//                      src/profile-summary.mjs)
//   --heap-snapshot    write a heap snapshot of the smtpkit server with the idle connections open
//   --out=PATH         results file (default apps/bench/results.json)
//   --extra-server=NAME=PATH[,NAME=PATH]  also run a Node server module of your own (same IPC protocol as
//                      src/servers/*.mjs), e.g. smtpkit built from a patched copy

import { execFileSync, fork, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { cpus, loadavg, setPriority, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuMsOf, memoryOf, openFilesLimit, startSampler, systemBusyMs } from "./proc.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const APP = resolve(HERE, "..");
const REPO = resolve(APP, "../..");
const PYTHON = "/usr/bin/python3";
const SMTP_SOURCE_PATHS = ["/usr/sbin/smtp-source", "/usr/bin/smtp-source"];
const SIZE_LIMIT = 33_554_432;
const MiB = 1_048_576;

// ------------------------------------------------------------------------------------------------
// Options and file-descriptor limit.

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = a.match(/^--([^=]+)(?:=(.*))?$/);
    return m ? [m[1], m[2] ?? true] : [a, true];
  }),
);
const opt = {
  durationMs: Number(args.duration ?? 2500),
  warmupMs: Number(args.warmup ?? 800),
  rounds: Number(args.rounds ?? 2),
  connections: Number(args.connections ?? 2000),
  scenarios: new Set(String(args.scenarios ?? "s1,s1np,s2,s3,limit,idle,smtp-source").split(",")),
  only: args.only ? new Set(String(args.only).split(",")) : null,
  cpuProf: Boolean(args["cpu-prof"]),
  heapSnapshot: Boolean(args["heap-snapshot"]),
  allocProf: Boolean(args["alloc-prof"]),
  priority: args.priority !== undefined ? Number(args.priority) : null,
  serverFlags: args["server-flags"]
    ? String(args["server-flags"]).split(/\s+/).filter(Boolean)
    : [],
  out: args.out ? resolve(String(args.out)) : join(APP, "results.json"),
};

// 2,000 client sockets + 2,000 server sockets need more than the usual 1024 descriptors. Node
// cannot call setrlimit, so re-run under a shell that raises the soft limit (children inherit it).
const needFds = opt.connections + 500;
const limits = openFilesLimit();
if (limits && limits.soft < needFds && !process.env.SMTPKIT_BENCH_REEXEC) {
  const target = Math.min(Math.max(needFds, 8192), limits.hard);
  if (target > limits.soft) {
    const r = spawnSync(
      "/bin/sh",
      ["-c", `ulimit -n ${target} && exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)],
      { stdio: "inherit", env: { ...process.env, SMTPKIT_BENCH_REEXEC: "1" } },
    );
    process.exit(r.status ?? 1);
  }
}

// ------------------------------------------------------------------------------------------------
// Helpers.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`${a.join(" ")}\n`);

function freePort() {
  return new Promise((resolvePort, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolvePort(port));
    });
  });
}

/** Resolves once something on `port` sends a line starting with 220 (deadline `ms`). */
async function waitForGreeting(port, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((res) => {
      const s = net.connect({ host: "127.0.0.1", port });
      const timer = setTimeout(() => {
        s.destroy();
        res(false);
      }, 1000);
      s.once("data", (d) => {
        clearTimeout(timer);
        s.end("QUIT\r\n");
        res(d.toString("latin1").startsWith("220"));
      });
      s.once("error", () => {
        clearTimeout(timer);
        res(false);
      });
    });
    if (ok) return true;
    await sleep(100);
  }
  return false;
}

function hasAiosmtpd() {
  try {
    return (
      execFileSync(PYTHON, ["-c", "import aiosmtpd; print(aiosmtpd.__version__)"], {
        stdio: ["ignore", "pipe", "ignore"],
      })
        .toString()
        .trim() || "?"
    );
  } catch {
    return null;
  }
}

function smtpSourcePath() {
  for (const p of SMTP_SOURCE_PATHS) {
    try {
      execFileSync("test", ["-x", p]);
      return p;
    } catch {}
  }
  return null;
}

function versionOf(pkgJson) {
  try {
    return JSON.parse(readFileSync(pkgJson, "utf8")).version;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------------------------------------
// Servers: each one a child process.

const NODE_SERVERS = {
  smtpkit: join(HERE, "servers/smtpkit.mjs"),
  "smtp-server": join(HERE, "servers/smtp-server.mjs"),
  "bare-net": join(HERE, "servers/bare-net.mjs"),
  // Diagnostic only (--only=smtpkit-buffered): handleDATA instead of handleDATAStream.
  "smtpkit-buffered": join(HERE, "servers/smtpkit-buffered.mjs"),
};

let profileCounter = 0;

function prioritise(pid) {
  if (opt.priority === null || !pid) return;
  try {
    setPriority(pid, opt.priority);
  } catch (e) {
    log(`setPriority(${opt.priority}) failed: ${e.message}`);
    opt.priority = null;
  }
}

/**
 * Starts a server child; resolves with { name, pid, port, request(cmd), stop() }. Retries twice:
 * the workspace packages may be mid-rebuild (tsup cleans dist/) when a round starts.
 */
async function startServer(name, options = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(name, options);
    } catch (e) {
      if (attempt >= 3) throw e;
      log(`  ${name} did not start (${e.message}); retrying in 3 s`);
      await sleep(3000);
    }
  }
}

async function startServerOnce(name, { label = "" } = {}) {
  if (name === "aiosmtpd") return startAiosmtpd();
  const execArgv = ["--expose-gc", ...opt.serverFlags];
  if (opt.cpuProf && name !== "bare-net") {
    const dir = join(APP, "profiles");
    mkdirSync(dir, { recursive: true });
    execArgv.push(
      "--cpu-prof",
      `--cpu-prof-dir=${dir}`,
      `--cpu-prof-name=${name}-${label || "run"}-${++profileCounter}.cpuprofile`,
    );
  }
  const child = fork(NODE_SERVERS[name], [], {
    cwd: APP,
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  prioritise(child.pid);
  const port = await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name} did not start`)), 15_000);
    child.once("message", (m) => {
      clearTimeout(timer);
      if (m?.ready) res(m.port);
      else rej(new Error(`${name}: unexpected ${JSON.stringify(m)}`));
    });
    child.once("exit", (code) => rej(new Error(`${name} exited with ${code}`)));
  });
  const request = (message, key) =>
    new Promise((res) => {
      const timer = setTimeout(() => res(null), 30_000);
      const on = (m) => {
        if (m && key in m) {
          clearTimeout(timer);
          child.off("message", on);
          res(m);
        }
      };
      child.on("message", on);
      child.send(message);
    });
  const exited = new Promise((res) => child.once("exit", res));
  return {
    name,
    pid: child.pid,
    port,
    node: true,
    request,
    async stop() {
      if (child.exitCode === null) child.send({ cmd: "stop" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function startAiosmtpd() {
  const port = await freePort();
  const child = spawn(
    PYTHON,
    // -s: aiosmtpd's CLI has no size limit unless given one (its SMTP class default is 32 MiB).
    [
      "-m",
      "aiosmtpd",
      "-n",
      "-l",
      `127.0.0.1:${port}`,
      "-s",
      String(SIZE_LIMIT),
      "-c",
      "aiosmtpd.handlers.Sink",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  prioritise(child.pid);
  const exited = new Promise((res) => child.once("exit", res));
  if (!(await waitForGreeting(port, 15_000))) {
    child.kill("SIGKILL");
    throw new Error("aiosmtpd did not start");
  }
  return {
    name: "aiosmtpd",
    pid: child.pid,
    port,
    node: false,
    request: async () => null,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Load generator runs.

/** Runs loadgen.mjs with `cfg`; samples the server's CPU at the window edges. */
function runLoad(server, cfg, onMessage, label = cfg.mode) {
  return new Promise((res, rej) => {
    const child = fork(join(HERE, "loadgen.mjs"), [JSON.stringify({ ...cfg, port: server.port })], {
      cwd: APP,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    prioritise(child.pid);
    let result = null;
    let allocDone = null;
    const cpu = {};
    const hardTimer = setTimeout(
      () => {
        child.kill("SIGKILL");
        rej(new Error(`load generator timed out (${cfg.mode})`));
      },
      (cfg.warmupMs ?? 0) + (cfg.durationMs ?? 0) + 90_000,
    );
    child.on("message", async (m) => {
      if (m.phase === "windowStart") {
        if (opt.allocProf && server.node && server.name !== "bare-net")
          server.request({ cmd: "allocStart" }, "allocStarted");
        cpu.start = cpuMsOf(server.pid);
        cpu.lgStart = cpuMsOf(child.pid);
        cpu.sysStart = systemBusyMs();
      } else if (m.phase === "windowEnd") {
        cpu.end = cpuMsOf(server.pid);
        cpu.lgEnd = cpuMsOf(child.pid);
        cpu.sysEnd = systemBusyMs();
        if (opt.allocProf && server.node && server.name !== "bare-net") {
          const dir = join(APP, "profiles");
          mkdirSync(dir, { recursive: true });
          const path = join(dir, `${server.name}-${label}-${++profileCounter}.heapprofile`);
          allocDone = server.request({ cmd: "allocStop", path }, "allocStopped");
        }
      } else if (m.phase === "result") result = m.result;
      else await onMessage?.(m, child);
    });
    child.on("exit", async (code) => {
      clearTimeout(hardTimer);
      await allocDone;
      if (!result) return rej(new Error(`load generator exited with ${code} and no result`));
      if (result.fatal) return rej(new Error(result.fatal));
      if (cpu.start != null && cpu.end != null && cfg.durationMs) {
        result.serverCpuPct = ((cpu.end - cpu.start) / cfg.durationMs) * 100;
        // Everything else on the machine (other sessions' builds and tests): 200% = both cores.
        const other = cpu.sysEnd - cpu.sysStart - (cpu.end - cpu.start) - (cpu.lgEnd - cpu.lgStart);
        result.otherCpuPct = Math.max(0, (other / cfg.durationMs) * 100);
      }
      res(result);
    });
  });
}

async function withServer(name, label, fn) {
  const server = await startServer(name, { label });
  const sampler = startSampler(server.pid, 50);
  try {
    const out = await fn(server);
    const mem = sampler.stop();
    const stats = server.node ? (await server.request({ cmd: "stats" }, "stats"))?.stats : null;
    return { ...out, peakRss: mem.peakRss, hwm: mem.hwm, server: stats };
  } finally {
    sampler.stop();
    await server.stop();
  }
}

async function throughputScenario(name, label, cfg) {
  return withServer(name, label, async (server) => {
    const r = await runLoad(server, cfg, undefined, label);
    if (r.serverCpuPct != null && r.messages > 0) {
      // Server CPU time per accepted message, in microseconds: less sensitive than msgs/s to
      // what else runs on the machine.
      r.cpuUsPerMsg = ((r.serverCpuPct / 100) * r.windowSec * 1e6) / r.messages;
    }
    return r;
  });
}

async function limitScenario(name) {
  return withServer(name, "limit", async (server) =>
    runLoad(server, { mode: "single", size: SIZE_LIMIT + MiB, timeoutMs: 30_000 }),
  );
}

/** Memory per idle connection: RSS after N connections (EHLO done) minus RSS before, / N. */
async function idleScenario(name) {
  const server = await startServer(name, { label: "idle" });
  const n = opt.connections;
  const m = {};
  const rssNow = async () => {
    // Median of 5 reads 20 ms apart.
    const v = [];
    for (let i = 0; i < 5; i++) {
      v.push(memoryOf(server.pid)?.rss ?? 0);
      await sleep(20);
    }
    return v.sort((a, b) => a - b)[2];
  };
  const gc = async () => (server.node ? server.request({ cmd: "gc" }, "gcDone") : null);
  try {
    const result = await runLoad(
      server,
      { mode: "idle", connections: n, ehlo: name !== "bare-net", timeoutMs: 60_000 },
      async (msg, child) => {
        if (msg.phase === "warm") {
          await sleep(300);
          m.baseRaw = await rssNow();
          const g = await gc();
          m.baseGc = await rssNow();
          m.baseHeap = g?.memory?.heapUsed ?? null;
          m.baseHeapTotal = g?.memory?.heapTotal ?? null;
          m.baseSpaces = g?.spaces ?? null;
          m.baseExternal = g ? g.memory.external + g.memory.arrayBuffers : null;
          child.send({ cmd: "open" });
        } else if (msg.phase === "opened") {
          m.opened = msg.opened;
          m.failed = msg.failed;
          m.openMs = msg.ms;
          if (msg.errors?.length) m.errors = msg.errors;
          await sleep(1000);
          m.loadRaw = await rssNow();
          const g = await gc();
          m.loadGc = await rssNow();
          m.loadHeap = g?.memory?.heapUsed ?? null;
          m.loadHeapTotal = g?.memory?.heapTotal ?? null;
          m.loadSpaces = g?.spaces ?? null;
          m.loadExternal = g ? g.memory.external + g.memory.arrayBuffers : null;
          if (opt.heapSnapshot && name === "smtpkit") {
            const dir = join(APP, "profiles");
            mkdirSync(dir, { recursive: true });
            const r = await server.request(
              { cmd: "heapSnapshot", path: join(dir, `smtpkit-idle-${n}.heapsnapshot`) },
              "heapSnapshot",
            );
            m.heapSnapshot = r?.heapSnapshot ?? null;
          }
          child.send({ cmd: "close" });
        }
      },
    );
    const k = m.opened || n;
    return {
      connections: n,
      opened: m.opened,
      failed: m.failed,
      openMs: m.openMs,
      errors: m.errors ?? result.errors,
      baseRss: m.baseGc,
      loadRss: m.loadGc,
      kbPerConnRaw: (m.loadRaw - m.baseRaw) / k / 1024,
      kbPerConnGc: server.node ? (m.loadGc - m.baseGc) / k / 1024 : null,
      heapKbPerConn: m.loadHeap != null ? (m.loadHeap - m.baseHeap) / k / 1024 : null,
      heapTotalKbPerConn:
        m.loadHeapTotal != null ? (m.loadHeapTotal - m.baseHeapTotal) / k / 1024 : null,
      externalKbPerConn:
        m.loadExternal != null ? (m.loadExternal - m.baseExternal) / k / 1024 : null,
      heapSnapshot: m.heapSnapshot,
      // V8 heap spaces (size = committed, used) before and after, to tell retained objects from
      // a young generation that grew while the connections were being opened.
      heapSpaces:
        m.baseSpaces && m.loadSpaces
          ? Object.fromEntries(
              Object.keys(m.loadSpaces).map((name) => [
                name,
                {
                  sizeKbPerConn:
                    (m.loadSpaces[name].size - (m.baseSpaces[name]?.size ?? 0)) / k / 1024,
                  usedKbPerConn:
                    (m.loadSpaces[name].used - (m.baseSpaces[name]?.used ?? 0)) / k / 1024,
                },
              ]),
            )
          : null,
    };
  } finally {
    await server.stop();
  }
}

/** Postfix smtp-source (no pipelining): `messages` 1 KB messages over 20 sessions, timed. */
async function smtpSourceScenario(name, path, rates) {
  return withServer(name, "smtp-source", async (server) => {
    const out = {};
    for (const [key, keep, rate] of [
      ["s1", true, rates.s1],
      ["s2", false, rates.s2],
    ]) {
      const messages = Math.max(500, Math.min(20_000, Math.round((rate ?? 1000) * 2)));
      const argv = ["-s", "20", "-m", String(messages), "-l", "1024", "-M", "bench.example"];
      if (keep) argv.unshift("-d");
      argv.push(`127.0.0.1:${server.port}`);
      const t0 = performance.now();
      const r = await new Promise((res) => {
        const child = spawn(path, argv, { stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        child.stderr.on("data", (d) => {
          if (err.length < 2000) err += d;
        });
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        child.on("exit", (code, signal) => {
          clearTimeout(timer);
          res({ code, signal, err: err.trim().split("\n").slice(-3).join(" | ") });
        });
      });
      const sec = (performance.now() - t0) / 1000;
      out[key] = {
        messages,
        seconds: sec,
        msgsPerSec: r.code === 0 ? messages / sec : null,
        exit: r.code ?? r.signal,
        ...(r.code === 0 ? {} : { stderr: r.err }),
      };
    }
    return out;
  });
}

// ------------------------------------------------------------------------------------------------
// Main.

async function main() {
  const t0 = performance.now();
  const aiosmtpdVersion = hasAiosmtpd();
  const smtpSource = smtpSourcePath();
  const servers = ["smtpkit", "smtp-server"];
  if (aiosmtpdVersion) servers.push("aiosmtpd");
  if (opt.only?.has("smtpkit-buffered")) servers.push("smtpkit-buffered");
  for (const spec of args["extra-server"] ? String(args["extra-server"]).split(",") : []) {
    const [extraName, extraPath] = spec.split("=");
    NODE_SERVERS[extraName] = resolve(extraPath);
    servers.push(extraName);
  }
  const selected = servers.filter((s) => !opt.only || opt.only.has(s));
  const withBare = !opt.only || opt.only.has("bare-net");
  const gitRev = (() => {
    try {
      return execFileSync("git", ["-C", REPO, "rev-parse", "--short", "HEAD"]).toString().trim();
    } catch {
      return null;
    }
  })();
  const env = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? "?"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadavgAtStart: loadavg().map((v) => Number(v.toFixed(2))),
    openFiles: openFilesLimit(),
    smtpkitCommit: gitRev,
    versions: {
      "@smtpkit/node": versionOf(join(REPO, "packages/node/package.json")),
      "smtp-server": versionOf(join(REPO, "node_modules/smtp-server/package.json")),
      aiosmtpd: aiosmtpdVersion,
      "smtp-source": smtpSource,
    },
    options: {
      durationMs: opt.durationMs,
      warmupMs: opt.warmupMs,
      connections: opt.connections,
      rounds: opt.rounds,
      serverFlags: opt.serverFlags,
      priority: opt.priority,
      sizeLimit: SIZE_LIMIT,
    },
  };
  log(`smtpkit bench: ${selected.join(", ")}${withBare ? " (+ bare-net for idle)" : ""}`);
  if (!aiosmtpdVersion) log("aiosmtpd not importable by /usr/bin/python3: skipped");
  if (!smtpSource) log("smtp-source not found: skipped");

  const results = {};
  for (const s of selected) results[s] = {};
  const step = async (label, fn) => {
    const t = performance.now();
    try {
      const r = await fn();
      log(`  ${label}: ${brief(r)} (${((performance.now() - t) / 1000).toFixed(1)} s)`);
      return r;
    } catch (e) {
      log(`  ${label}: FAILED ${e?.message ?? e}`);
      return { failed: String(e?.message ?? e) };
    }
  };
  const base = { warmupMs: opt.warmupMs, durationMs: opt.durationMs };
  const sc = opt.scenarios;
  // Scenario by scenario, the servers one after the other (fresh process each time), in
  // `rounds` interleaved rounds.
  const throughputs = [
    ["s1", "20 sessions x 1 KB", { mode: "persistent", sessions: 20, size: 1024 }, opt.rounds],
    [
      "s1np",
      "20 sessions x 1 KB, no pipelining",
      { mode: "persistent", sessions: 20, size: 1024, pipelining: false },
      opt.rounds,
    ],
    ["s2", "1 msg/connection", { mode: "perconn", sessions: 20, size: 1024 }, opt.rounds],
    [
      "s3",
      "4 sessions x 5 MB",
      { mode: "persistent", sessions: 4, size: 5 * MiB, durationMs: opt.durationMs + 1000 },
      opt.rounds,
    ],
  ];
  for (const [key, title, cfg, rounds] of throughputs) {
    if (!sc.has(key)) continue;
    const all = Object.fromEntries(selected.map((s) => [s, []]));
    for (let round = 1; round <= rounds; round++)
      for (const s of selected)
        all[s].push(
          await step(`${s} ${key} (${title})${rounds > 1 ? ` round ${round}` : ""}`, () =>
            throughputScenario(s, key, { ...base, ...cfg }),
          ),
        );
    for (const s of selected) results[s][key] = bestOf(all[s]);
  }
  if (sc.has("limit"))
    for (const s of selected)
      results[s].limit = await step(`${s} limit (33 MB message)`, () => limitScenario(s));
  if (sc.has("idle")) {
    const idleServers = withBare ? [...selected, "bare-net"] : selected;
    for (const s of idleServers) {
      results[s] ??= {};
      results[s].idle = await step(`${s} idle (${opt.connections} connections)`, () =>
        idleScenario(s),
      );
    }
  }
  if (sc.has("smtp-source") && smtpSource)
    for (const s of selected)
      results[s].smtpSource = await step(`${s} smtp-source`, () =>
        smtpSourceScenario(s, smtpSource, {
          s1: results[s].s1?.msgsPerSec,
          s2: results[s].s2?.msgsPerSec,
        }),
      );

  env.totalSeconds = (performance.now() - t0) / 1000;
  const targets = evaluateTargets(results);
  const report = { env, results, targets };
  mkdirSync(dirname(opt.out), { recursive: true });
  writeFileSync(opt.out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(renderTable(report));
  log(`\nwrote ${opt.out} (${env.totalSeconds.toFixed(0)} s)`);
}

function median(values) {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The round with the highest throughput; memory figures are the maximum over all rounds. */
function bestOf(rounds) {
  const ok = rounds.filter((r) => !r.failed);
  if (ok.length === 0) return rounds[0];
  const best = ok.reduce((a, b) => (b.msgsPerSec > a.msgsPerSec ? b : a));
  return {
    ...best,
    hwm: Math.max(...ok.map((r) => r.hwm ?? 0)),
    peakRss: Math.max(...ok.map((r) => r.peakRss ?? 0)),
    cpuUsPerMsgMedian: median(ok.map((r) => r.cpuUsPerMsg).filter((v) => v != null)),
    rounds: rounds.map((r) =>
      r.failed
        ? r
        : {
            msgsPerSec: r.msgsPerSec,
            cpuUsPerMsg: r.cpuUsPerMsg,
            mbPerSec: r.mbPerSec,
            hwm: r.hwm,
            serverCpuPct: r.serverCpuPct,
            otherCpuPct: r.otherCpuPct,
          },
    ),
  };
}

function brief(r) {
  if (r.msgsPerSec != null && r.size === 1024)
    return `${r.msgsPerSec.toFixed(0)} msgs/s, peak ${mb(r.hwm)}, server CPU ${fmt(r.serverCpuPct, 0)}%, others ${fmt(r.otherCpuPct, 0)}%`;
  if (r.mbPerSec != null)
    return `${r.mbPerSec.toFixed(1)} MB/s, peak ${mb(r.hwm)}, server CPU ${fmt(r.serverCpuPct, 0)}%, others ${fmt(r.otherCpuPct, 0)}%`;
  if (r.code !== undefined) return `reply ${r.reply ?? r.error}`;
  if (r.kbPerConnRaw != null)
    return `${r.kbPerConnRaw.toFixed(1)} KB/conn${r.kbPerConnGc != null ? ` (after GC ${r.kbPerConnGc.toFixed(1)})` : ""}, ${r.opened} open`;
  if (r.s1) return `s1 ${fmt(r.s1.msgsPerSec, 0)} msgs/s, s2 ${fmt(r.s2?.msgsPerSec, 0)} msgs/s`;
  return JSON.stringify(r).slice(0, 200);
}

// ------------------------------------------------------------------------------------------------
// Targets and the table.

function evaluateTargets(results) {
  const k = results.smtpkit ?? {};
  const n = results["smtp-server"] ?? {};
  const out = [];
  const add = (name, value, goal, pass, detail) => out.push({ name, value, goal, pass, detail });
  if (k.s1?.msgsPerSec && n.s1?.msgsPerSec) {
    const r = k.s1.msgsPerSec / n.s1.msgsPerSec;
    add("s1 msgs/s vs smtp-server", `${r.toFixed(2)}x`, ">= 1.3x", r >= 1.3);
  }
  if (k.s2?.msgsPerSec && n.s2?.msgsPerSec) {
    const r = k.s2.msgsPerSec / n.s2.msgsPerSec;
    add("s2 msgs/s vs smtp-server", `${r.toFixed(2)}x`, ">= 1.3x", r >= 1.3);
  }
  if (k.s3?.mbPerSec && n.s3?.mbPerSec) {
    const r = k.s3.mbPerSec / n.s3.mbPerSec;
    const enforced = k.limit?.code === 552 && n.limit?.code === 552;
    add(
      "5 MB MB/s vs smtp-server",
      `${r.toFixed(2)}x`,
      "> 1x, limit enforced",
      r > 1 && (enforced || !k.limit),
      k.limit ? `33 MB message: smtpkit ${k.limit.code}, smtp-server ${n.limit?.code}` : undefined,
    );
  }
  if (k.s3?.hwm && k.s1?.hwm) {
    add(
      "smtpkit peak RSS 5 MB vs 1 KB",
      `${mb(k.s3.hwm)} vs ${mb(k.s1.hwm)}`,
      "5 MB <= 1 KB",
      k.s3.hwm <= k.s1.hwm,
    );
  }
  if (k.idle?.kbPerConnRaw != null) {
    const v = k.idle.kbPerConnGc ?? k.idle.kbPerConnRaw;
    add(
      "smtpkit memory per idle connection",
      `${v.toFixed(1)} KB (no forced GC: ${k.idle.kbPerConnRaw.toFixed(1)} KB)`,
      "<= 8 KB",
      v <= 8,
      results["bare-net"]?.idle?.kbPerConnGc != null
        ? `bare net server: ${results["bare-net"].idle.kbPerConnGc.toFixed(1)} KB`
        : undefined,
    );
  }
  return out;
}

const fmt = (v, d = 1) => (v == null || Number.isNaN(v) ? "-" : v.toFixed(d));
const mb = (bytes) => (bytes == null ? "-" : `${(bytes / MiB).toFixed(1)} MiB`);

function renderTable({ env, results, targets }) {
  const names = Object.keys(results);
  const rows = [];
  const row = (label, f) => rows.push([label, ...names.map((s) => f(results[s] ?? {}) ?? "-")]);
  const sep = () => rows.push(null);
  row("S1 20 sessions x 1 KB: msgs/s", (r) => fmt(r.s1?.msgsPerSec, 0));
  row("   p50 / p99 latency ms", (r) =>
    r.s1?.latencyMs ? `${fmt(r.s1.latencyMs.p50, 2)} / ${fmt(r.s1.latencyMs.p99, 2)}` : null,
  );
  row("   server CPU % / CPU us per msg (median)", (r) =>
    r.s1?.serverCpuPct != null
      ? `${fmt(r.s1.serverCpuPct, 0)} / ${fmt(r.s1.cpuUsPerMsgMedian, 0)}`
      : null,
  );
  row("   loadgen / other processes CPU %", (r) =>
    r.s1 ? `${fmt(r.s1.loadgenCpuPct, 0)} / ${fmt(r.s1.otherCpuPct, 0)}` : null,
  );
  row("   peak RSS (VmHWM)", (r) => mb(r.s1?.hwm));
  row("S1b same without PIPELINING: msgs/s", (r) => fmt(r.s1np?.msgsPerSec, 0));
  row("   server CPU % / CPU us per msg (median)", (r) =>
    r.s1np?.serverCpuPct != null
      ? `${fmt(r.s1np.serverCpuPct, 0)} / ${fmt(r.s1np.cpuUsPerMsgMedian, 0)}`
      : null,
  );
  sep();
  row("S2 1 msg/connection x 20: msgs/s", (r) => fmt(r.s2?.msgsPerSec, 0));
  row("   server CPU % / CPU us per msg (median)", (r) =>
    r.s2?.serverCpuPct != null
      ? `${fmt(r.s2.serverCpuPct, 0)} / ${fmt(r.s2.cpuUsPerMsgMedian, 0)}`
      : null,
  );
  row("   loadgen / other processes CPU %", (r) =>
    r.s2 ? `${fmt(r.s2.loadgenCpuPct, 0)} / ${fmt(r.s2.otherCpuPct, 0)}` : null,
  );
  row("   peak RSS (VmHWM)", (r) => mb(r.s2?.hwm));
  sep();
  row("S3 4 sessions x 5 MB: MB/s", (r) => fmt(r.s3?.mbPerSec, 1));
  row("   msgs/s", (r) => fmt(r.s3?.msgsPerSec, 1));
  row("   server / loadgen / other CPU %", (r) =>
    r.s3
      ? `${fmt(r.s3.serverCpuPct, 0)} / ${fmt(r.s3.loadgenCpuPct, 0)} / ${fmt(r.s3.otherCpuPct, 0)}`
      : null,
  );
  row("   peak RSS (VmHWM)", (r) => mb(r.s3?.hwm));
  row("   peak RSS 5 MB - peak RSS 1 KB", (r) =>
    r.s3?.hwm && r.s1?.hwm ? `${r.s3.hwm >= r.s1.hwm ? "+" : ""}${mb(r.s3.hwm - r.s1.hwm)}` : null,
  );
  row("Size limit: 33 MB message reply", (r) =>
    r.limit
      ? r.limit.code
        ? `${r.limit.code} (${fmt(r.limit.ms / 1000, 2)} s)`
        : `error ${r.limit.error}`
      : null,
  );
  row("   peak RSS (VmHWM)", (r) => mb(r.limit?.hwm));
  sep();
  row(`S4 ${opt.connections} idle conns: KB/conn`, (r) =>
    r.idle?.kbPerConnGc != null ? fmt(r.idle.kbPerConnGc, 1) : fmt(r.idle?.kbPerConnRaw, 1),
  );
  row("   KB/conn without forced GC", (r) => fmt(r.idle?.kbPerConnRaw, 1));
  row("   JS heap used / heap total / external KB/conn", (r) =>
    r.idle?.heapKbPerConn != null
      ? `${fmt(r.idle.heapKbPerConn, 1)} / ${fmt(r.idle.heapTotalKbPerConn, 1)} / ${fmt(r.idle.externalKbPerConn, 1)}`
      : null,
  );
  row("   RSS before -> after", (r) =>
    r.idle?.baseRss ? `${mb(r.idle.baseRss)} -> ${mb(r.idle.loadRss)}` : null,
  );
  row("   connections open / failed", (r) =>
    r.idle ? `${r.idle.opened ?? "-"} / ${r.idle.failed ?? "-"}` : null,
  );
  if (names.some((s) => results[s]?.smtpSource)) {
    sep();
    row("smtp-source S1 (-d, no pipelining) msgs/s", (r) => fmt(r.smtpSource?.s1?.msgsPerSec, 0));
    row("smtp-source S2 (1 msg/conn) msgs/s", (r) => fmt(r.smtpSource?.s2?.msgsPerSec, 0));
  }
  const header = ["", ...names];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.filter(Boolean).map((r) => String(r[i]).length)),
  );
  const line = (cells) =>
    cells
      .map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i])))
      .join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  let out = `\nsmtpkit server benchmark  ${env.date}  node ${env.node}  ${env.cpus}  load ${env.loadavgAtStart?.join(" ")}\n`;
  out += `smtp-server ${env.versions["smtp-server"]}, aiosmtpd ${env.versions.aiosmtpd ?? "n/a"}, smtpkit ${env.smtpkitCommit ?? "?"} (+ working tree); window ${opt.durationMs} ms after ${opt.warmupMs} ms warm-up, best of ${opt.rounds} round(s)\n\n`;
  out += `${line(header)}\n${rule}\n`;
  for (const r of rows) out += r ? `${line(r)}\n` : `${rule}\n`;
  const problems = [];
  for (const s of names) {
    for (const [k, v] of Object.entries(results[s] ?? {})) {
      if (v?.failed) problems.push(`${s} ${k}: ${v.failed}`);
      if (v?.errors?.length)
        problems.push(`${s} ${k}: ${v.errors.length} error(s), e.g. ${v.errors[0]}`);
      if (v?.rejected && Object.keys(v.rejected).length)
        problems.push(`${s} ${k}: rejected ${JSON.stringify(v.rejected)}`);
      if (v?.server && v.totalMessages != null && v.server.messages !== v.totalMessages)
        problems.push(
          `${s} ${k}: server counted ${v.server.messages} messages, load generator ${v.totalMessages}`,
        );
      if (v?.server && v.totalMessages && v.server.bytes !== v.server.messages * v.size)
        problems.push(
          `${s} ${k}: server counted ${v.server.bytes} body bytes, expected ${v.server.messages * v.size}`,
        );
    }
  }
  const notes = [
    "msgs/s and MB/s: messages whose 250 arrived inside the window; peak RSS: the server process's VmHWM (max over rounds).",
    "aiosmtpd does not advertise PIPELINING, so the load generator talks to it one command at a time.",
    "smtp-server waits 100 ms before its greeting (early-talker check, not configurable): S2 is bound by that.",
    "other processes CPU %: the rest of the machine during the window (200% = both cores busy).",
  ];
  out += `\nnotes:\n${notes.map((n) => `  - ${n}`).join("\n")}\n`;
  if (problems.length) out += `\nproblems:\n${problems.map((p) => `  - ${p}`).join("\n")}\n`;
  if (targets.length) {
    out += "\ntargets (smtpkit):\n";
    for (const t of targets)
      out += `  [${t.pass ? "PASS" : "MISS"}] ${t.name}: ${t.value} (goal ${t.goal})${t.detail ? `; ${t.detail}` : ""}\n`;
  }
  return out;
}

main().catch((e) => {
  log(e?.stack ?? String(e));
  process.exit(1);
});
