// smtpkit server benchmark. The yardstick is Postfix: its smtp-source is the load and its smtp-sink
// the reference server, next to smtpkit, Nodemailer's smtp-server, a bare node:net sink (the "Node
// floor") and, when it can be built offline, go-smtp.
//
//   npm run bench -w @smtpkit/bench [-- options]
//
// Every server runs in its own child process, started fresh for every scenario and round, so CPU
// and memory figures (utime+stime from /proc/PID/stat, VmRSS sampled every 50 ms, the kernel's
// VmHWM) belong to that server and that scenario only.
//
// Scenarios A-D run smtp-source (no pipelining) against every server: A 20 sessions x 1 KB (-d),
// B one message per connection, C 1,000 recipients per message, D 4 sessions x 5 MB. E is memory
// per idle connection. S1 (pipelined, src/loadgen.mjs) and the 33 MB limit check come after.
//
// Options:
//   --only=smtp-sink,smtpkit,smtp-server,node-floor,go-smtp,aiosmtpd,bare-net
//                      servers to run (default: all available except bare-net)
//   --scenarios=a,b,c,d,idle,s1,limit[,s1np,s2,s3]  scenarios (default: a,b,c,d,idle,s1,limit;
//                      "e" is an alias of "idle")
//   --rounds=N         rounds, servers interleaved; the best round is shown, with the median CPU
//                      per message (others only slow a round down: the machine is shared). Default 3
//                      for A-D, at most 2 for S1/S1b/S2/S3
//   --seconds=S        target length of one smtp-source run in A-D (default 1.25); -m is chosen
//                      from the server's rate in a short warm-up run before it
//   --duration=MS      measured window of the load-generator scenarios (default 2500; 5 MB: +1000)
//   --warmup=MS        unmeasured ramp-up before each window (default 800)
//   --connections=N    idle connections (default 2000)
//   --cpu-prof         run the Node servers with --cpu-prof (profiles in apps/bench/profiles/;
//                      summarise with src/profile-summary.mjs)
//   --priority=N       os.setPriority() of the server and load-generator processes (e.g. -5 on a
//                      machine shared with other work; needs root for N < 0). Default: unchanged
//   --server-flags="--max-semi-space-size=1 ..."  extra node flags for the Node servers
//   --alloc-prof       sampling allocation profile of the smtpkit server during each measured
//                      window of S1-S3 (profiles/smtpkit-<scenario>-<n>.heapprofile; summarise
//                      with src/profile-summary.mjs)
//   --heap-snapshot    write a heap snapshot of the smtpkit server with the idle connections open
//   --out=PATH         results file (default apps/bench/results.json)
//   --extra-server=NAME=PATH[,NAME=PATH]  also run a Node server module of your own (same IPC protocol as
//                      src/servers/*.mjs), e.g. smtpkit built from a patched copy

import { execFileSync, fork, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
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
const SMTP_SINK_PATHS = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"];
/** Debian's golang-github-emersion-go-smtp-dev (and go-sasl) install their sources here. */
const GOCODE = "/usr/share/gocode";
const GO_SINK_SRC = join(HERE, "servers/go-smtp");
const CACHE = join(APP, ".cache");
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
  rounds: Number(args.rounds ?? 3),
  seconds: Number(args.seconds ?? 1.25),
  connections: Number(args.connections ?? 2000),
  scenarios: new Set(
    String(args.scenarios ?? "a,b,c,d,idle,s1,limit")
      .toLowerCase()
      .split(",")
      .map((k) => (k === "e" ? "idle" : k)),
  ),
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

function executable(paths) {
  for (const p of paths) {
    try {
      execFileSync("test", ["-x", p]);
      return p;
    } catch {}
  }
  return null;
}

/**
 * Builds src/servers/go-smtp/main.go with Debian's Go and go-smtp sources, offline (GOPATH mode,
 * GOPROXY=off), into apps/bench/.cache/. Returns { path, version } or { skip: reason }.
 */
function buildGoSmtp() {
  let goVersion;
  try {
    goVersion = execFileSync("go", ["version"], { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return { skip: "no `go` on PATH (Debian package golang-go)" };
  }
  const pkgDir = join(GOCODE, "src/github.com/emersion/go-smtp");
  if (!existsSync(pkgDir))
    return { skip: `${pkgDir} missing (Debian package golang-github-emersion-go-smtp-dev)` };
  const out = join(CACHE, "go-smtp-sink");
  const src = join(GO_SINK_SRC, "main.go");
  const version = debVersion("golang-github-emersion-go-smtp-dev");
  if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs)
    return { path: out, version, go: goVersion };
  mkdirSync(CACHE, { recursive: true });
  try {
    execFileSync("go", ["build", "-o", out, "."], {
      cwd: GO_SINK_SRC,
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        ...process.env,
        GOPATH: GOCODE,
        GO111MODULE: "off",
        GOPROXY: "off",
        GOFLAGS: "",
        GOTOOLCHAIN: "local",
        GOCACHE: join(CACHE, "go-build"),
      },
    });
  } catch (e) {
    const err = String(e.stderr ?? e.message)
      .trim()
      .split("\n")
      .slice(-3)
      .join(" | ");
    return { skip: `go build failed: ${err}` };
  }
  return { path: out, version, go: goVersion };
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
  "node-floor": join(HERE, "servers/node-floor.mjs"),
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
  if (name === "smtp-sink") return startSmtpSink();
  if (name === "go-smtp") return startGoSmtp();
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
    stats: async () => (await request({ cmd: "stats" }, "stats"))?.stats ?? null,
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
    stats: async () => null,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A program that is not Node: stopped with SIGTERM, then SIGKILL. */
function externalServer(name, child, port, stats = async () => null) {
  const exited = new Promise((res) => child.once("exit", res));
  return {
    name,
    pid: child.pid,
    port,
    node: false,
    request: async () => null,
    stats,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Postfix's smtp-sink: `-m 4096` (its default of 256 simultaneous connections would queue the idle
 * scenario's), `-u nobody` when run as root (it refuses to run as root without -u), backlog 1024.
 * No `-c`: its running counters cost it a terminal write per message; smtp-source's exit status
 * and its own counter tell whether every message was accepted.
 */
async function startSmtpSink() {
  const port = await freePort();
  const argv = [
    ...(process.getuid?.() === 0 ? ["-u", "nobody"] : []),
    "-m",
    "4096",
    "-h",
    "bench.smtp-sink.example",
    `127.0.0.1:${port}`,
    "1024",
  ];
  const child = spawn(executable(SMTP_SINK_PATHS), argv, {
    stdio: ["ignore", "ignore", "inherit"],
  });
  prioritise(child.pid);
  const server = externalServer("smtp-sink", child, port);
  if (!(await waitForGreeting(port, 15_000))) {
    await server.stop();
    throw new Error("smtp-sink did not start");
  }
  return server;
}

/** go-smtp (src/servers/go-smtp/main.go): prints "ready PORT"; answers "stats" on stdin with JSON. */
async function startGoSmtp() {
  const child = spawn(goBinary, ["0"], { stdio: ["pipe", "pipe", "inherit"] });
  prioritise(child.pid);
  let buffered = "";
  const lineWaiters = [];
  child.stdout.setEncoding("utf8").on("data", (d) => {
    buffered += d;
    for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lineWaiters.shift()?.(line);
    }
  });
  const nextLine = (ms) =>
    new Promise((res) => {
      const timer = setTimeout(() => res(null), ms);
      lineWaiters.push((line) => {
        clearTimeout(timer);
        res(line);
      });
    });
  const first = await nextLine(15_000);
  const port = Number(first?.match(/^ready (\d+)/)?.[1]);
  const stats = async () => {
    if (child.exitCode !== null) return null;
    const answer = nextLine(5000);
    child.stdin.write("stats\n");
    try {
      return JSON.parse((await answer) ?? "null");
    } catch {
      return null;
    }
  };
  const server = externalServer("go-smtp", child, port, stats);
  if (!port) {
    await server.stop();
    throw new Error(`go-smtp did not start (${first})`);
  }
  return server;
}

/** Set by main() when the go-smtp sink was built. */
let goBinary = null;

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
    const stats = await server.stats();
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

// ------------------------------------------------------------------------------------------------
// Scenarios A-D: Postfix's smtp-source as the load (it never pipelines).

/**
 * smtp-source flags: -c running counter (its last value = messages whose DATA got a 250), -d keep
 * the connection for the next message (without it: one message per connection), -s parallel
 * sessions, -r recipients per message, -l payload bytes (after its From/To/Date/Message-Id
 * headers), -m messages in total, -M the HELO name and the addresses' domain.
 * `guess` (msgs/s) sizes round 1's warm-up; `min` is the smallest -m.
 */
const SOURCE_SCENARIOS = {
  a: {
    title: "A  20 sessions x 1 KB",
    argv: ["-d", "-s", "20", "-l", "1024"],
    sessions: 20,
    rcpts: 1,
    size: 1024,
    guess: 5000,
    min: 100,
  },
  b: {
    title: "B  1 msg/connection x 20",
    argv: ["-s", "20", "-l", "1024"],
    sessions: 20,
    rcpts: 1,
    size: 1024,
    guess: 500,
    min: 40,
  },
  c: {
    title: "C  1000 rcpts/msg x 20",
    argv: ["-d", "-s", "20", "-r", "1000", "-l", "1024"],
    sessions: 20,
    rcpts: 1000,
    size: 1024,
    guess: 20,
    min: 20,
  },
  d: {
    title: "D  4 sessions x 5 MB",
    argv: ["-d", "-s", "4", "-l", String(5 * MiB)],
    sessions: 4,
    rcpts: 1,
    size: 5 * MiB,
    guess: 20,
    min: 4,
    mb: true,
  },
};

/** smtp-source's headers (From, To, Date, Message-Id) plus the CRLF after its payload. */
const SOURCE_OVERHEAD_MAX = 400;

/** Runs smtp-source once; wall clock from spawn to exit, server CPU from /proc around it. */
function runSmtpSource(path, server, sc, messages) {
  const argv = ["-c", ...sc.argv, "-m", String(messages), "-M", "bench.example"];
  argv.push(`127.0.0.1:${server.port}`);
  return new Promise((res) => {
    const cpu0 = cpuMsOf(server.pid);
    const sys0 = systemBusyMs();
    const t0 = performance.now();
    const child = spawn(path, argv, { stdio: ["ignore", "pipe", "pipe"] });
    prioritise(child.pid);
    let tail = "";
    let err = "";
    child.stdout.setEncoding("latin1").on("data", (d) => {
      tail = (tail + d).slice(-64);
    });
    child.stderr.on("data", (d) => {
      if (err.length < 2000) err += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code, signal) => {
      const ms = performance.now() - t0;
      const cpu = cpuMsOf(server.pid) - cpu0;
      const sys = systemBusyMs() - sys0;
      clearTimeout(timer);
      const counted = Number(
        tail
          .trim()
          .split(/[\r\n]+/)
          .pop(),
      );
      res({
        argv: argv.join(" "),
        code,
        signal,
        ms,
        serverCpuMs: cpu,
        counted: Number.isFinite(counted) ? counted : null,
        // Everything but the server: smtp-source itself and whatever else runs (200% = 2 cores).
        otherCpuPct: Math.max(0, ((sys - cpu) / ms) * 100),
        stderr: err.trim().split("\n").slice(-3).join(" | "),
      });
    });
  });
}

const clampCount = (sc, v) => {
  const n = Math.max(sc.min, Math.min(200_000, Math.round(v)));
  return Math.ceil(n / Math.min(sc.sessions, n)) * Math.min(sc.sessions, n);
};

/**
 * One round of a smtp-source scenario on a fresh server: a short warm-up run (JIT, and the rate
 * that sizes -m), then the measured run of about `opt.seconds`. `rate` is the best msgs/s of an
 * earlier round, if any.
 */
async function sourceScenario(name, path, key, rate) {
  const sc = SOURCE_SCENARIOS[key];
  return withServer(name, key, async (server) => {
    const warmCount = clampCount(sc, (rate ?? sc.guess) * 0.3);
    const warm = await runSmtpSource(path, server, sc, warmCount);
    if (warm.code !== 0)
      throw new Error(
        `warm-up: smtp-source exited with ${warm.code ?? warm.signal}: ${warm.stderr}`,
      );
    const warmRate = warmCount / (warm.ms / 1000);
    // A warm server is faster than its warm-up run was (JIT): aim a little higher.
    const messages = clampCount(sc, Math.max(rate ?? 0, warmRate * 1.25) * opt.seconds);
    const r = await runSmtpSource(path, server, sc, messages);
    const seconds = r.ms / 1000;
    const errors = [];
    if (r.code !== 0) errors.push(`smtp-source exited with ${r.code ?? r.signal}: ${r.stderr}`);
    if (r.counted !== messages) errors.push(`smtp-source counted ${r.counted} of ${messages}`);
    const stats = await server.stats();
    const expected = warmCount + messages;
    if (stats) {
      if (stats.messages !== expected)
        errors.push(`server counted ${stats.messages} messages, smtp-source sent ${expected}`);
      if (stats.recipients != null && stats.recipients !== expected * sc.rcpts)
        errors.push(
          `server counted ${stats.recipients} recipients, expected ${expected * sc.rcpts}`,
        );
      // go-smtp's reader (net/textproto's DotReader) turns CRLF into LF: 1 byte fewer per line.
      const low = name === "go-smtp" ? sc.size * 0.98 : sc.size + 2;
      const per = stats.messages ? stats.bytes / stats.messages : 0;
      if (stats.messages && (per < low || per > sc.size + SOURCE_OVERHEAD_MAX))
        errors.push(
          `server counted ${per.toFixed(0)} body bytes per message, sent ${sc.size} + headers`,
        );
    }
    const out = {
      argv: r.argv,
      warmupMessages: warmCount,
      messages,
      seconds,
      msgsPerSec: messages / seconds,
      mbPerSec: sc.mb ? (messages * sc.size) / MiB / seconds : undefined,
      cpuUsPerMsg: (r.serverCpuMs * 1000) / messages,
      serverCpuPct: (r.serverCpuMs / r.ms) * 100,
      otherCpuPct: r.otherCpuPct,
      counted: r.counted,
      serverCounts: stats,
    };
    if (errors.length) return { ...out, failed: errors.join("; ") };
    return out;
  });
}

// ------------------------------------------------------------------------------------------------
// Main.

async function main() {
  const t0 = performance.now();
  const aiosmtpdVersion = hasAiosmtpd();
  const smtpSource = executable(SMTP_SOURCE_PATHS);
  const smtpSink = executable(SMTP_SINK_PATHS);
  const go = buildGoSmtp();
  goBinary = go.path ?? null;
  const servers = [];
  if (smtpSink) servers.push("smtp-sink");
  servers.push("smtpkit", "smtp-server", "node-floor");
  if (goBinary) servers.push("go-smtp");
  if (aiosmtpdVersion) servers.push("aiosmtpd");
  if (opt.only?.has("smtpkit-buffered")) servers.push("smtpkit-buffered");
  if (opt.only?.has("bare-net")) servers.push("bare-net");
  for (const spec of args["extra-server"] ? String(args["extra-server"]).split(",") : []) {
    const [extraName, extraPath] = spec.split("=");
    NODE_SERVERS[extraName] = resolve(extraPath);
    servers.push(extraName);
  }
  const selected = servers.filter((s) => !opt.only || opt.only.has(s));
  // Which servers take part where: aiosmtpd (Python, ~20x slower) only in S1, limit and idle;
  // the node:net sinks have no size limit and no PIPELINING; bare-net only greets (idle only);
  // go-smtp is in the load generator's scenarios only when asked for (--only), to keep the run short.
  const inSource = selected.filter((s) => s !== "aiosmtpd" && s !== "bare-net");
  const inLoadgen = selected.filter(
    (s) => s !== "node-floor" && s !== "bare-net" && (s !== "go-smtp" || opt.only?.has(s)),
  );
  const inLimit = selected.filter((s) => !["smtp-sink", "node-floor", "bare-net"].includes(s));
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
      postfix: debVersion("postfix"),
      "smtp-source": smtpSource,
      "smtp-sink": smtpSink,
      "go-smtp": go.path ? `${go.version ?? "?"} (${go.go})` : null,
    },
    skipped: {
      ...(smtpSource ? {} : { "smtp-source": "not found (Debian package postfix): A-D skipped" }),
      ...(smtpSink ? {} : { "smtp-sink": "not found (Debian package postfix)" }),
      ...(go.skip ? { "go-smtp": go.skip } : {}),
      ...(aiosmtpdVersion ? {} : { aiosmtpd: "not importable by /usr/bin/python3" }),
    },
    options: {
      seconds: opt.seconds,
      durationMs: opt.durationMs,
      warmupMs: opt.warmupMs,
      connections: opt.connections,
      rounds: opt.rounds,
      serverFlags: opt.serverFlags,
      priority: opt.priority,
      sizeLimit: SIZE_LIMIT,
    },
  };
  log(`smtpkit bench: ${selected.join(", ")}`);
  for (const [what, why] of Object.entries(env.skipped)) log(`${what} skipped: ${why}`);

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
  const sc = opt.scenarios;

  // A-D: smtp-source against every server, `rounds` interleaved rounds.
  for (const key of Object.keys(SOURCE_SCENARIOS)) {
    if (!sc.has(key) || !smtpSource) continue;
    const all = Object.fromEntries(inSource.map((s) => [s, []]));
    for (let round = 1; round <= opt.rounds; round++)
      for (const s of inSource) {
        const ok = all[s].filter((r) => !r.failed);
        const rate = ok.length ? Math.max(...ok.map((r) => r.msgsPerSec)) : undefined;
        all[s].push(
          await step(`${s} ${SOURCE_SCENARIOS[key].title} round ${round}`, () =>
            sourceScenario(s, smtpSource, key, rate),
          ),
        );
      }
    for (const s of inSource) results[s][key] = bestOf(all[s]);
  }

  // E: memory per idle connection.
  if (sc.has("idle"))
    for (const s of selected)
      results[s].idle = await step(`${s} idle (${opt.connections} connections)`, () =>
        idleScenario(s),
      );

  // The load generator's scenarios (S1 pipelined, S1b, S2, S3), at most 2 rounds.
  const base = { warmupMs: opt.warmupMs, durationMs: opt.durationMs };
  const loadRounds = Math.min(opt.rounds, 2);
  const throughputs = [
    ["s1", "20 sessions x 1 KB, pipelined", { mode: "persistent", sessions: 20, size: 1024 }],
    [
      "s1np",
      "20 sessions x 1 KB, no pipelining",
      { mode: "persistent", sessions: 20, size: 1024, pipelining: false },
    ],
    ["s2", "1 msg/connection", { mode: "perconn", sessions: 20, size: 1024 }],
    [
      "s3",
      "4 sessions x 5 MB",
      { mode: "persistent", sessions: 4, size: 5 * MiB, durationMs: opt.durationMs + 1000 },
    ],
  ];
  for (const [key, title, cfg] of throughputs) {
    if (!sc.has(key)) continue;
    const all = Object.fromEntries(inLoadgen.map((s) => [s, []]));
    for (let round = 1; round <= loadRounds; round++)
      for (const s of inLoadgen)
        all[s].push(
          await step(`${s} ${key} (${title})${loadRounds > 1 ? ` round ${round}` : ""}`, () =>
            throughputScenario(s, key, { ...base, ...cfg }),
          ),
        );
    for (const s of inLoadgen) results[s][key] = bestOf(all[s]);
  }
  if (sc.has("limit"))
    for (const s of inLimit)
      results[s].limit = await step(`${s} limit (33 MB message)`, () => limitScenario(s));

  env.totalSeconds = (performance.now() - t0) / 1000;
  const targets = evaluateTargets(results);
  const report = { env, results, targets };
  mkdirSync(dirname(opt.out), { recursive: true });
  writeFileSync(opt.out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(renderTable(report));
  log(`\nwrote ${opt.out} (${env.totalSeconds.toFixed(0)} s)`);
}

/** The installed version of a Debian package, or null. */
function debVersion(pkg) {
  try {
    return execFileSync("dpkg-query", ["-W", "-f", `\${Version}`, pkg], {
      stdio: ["ignore", "pipe", "ignore"],
    }).toString();
  } catch {
    return null;
  }
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
  if (r.argv)
    return `${r.mbPerSec != null ? `${r.mbPerSec.toFixed(1)} MB/s` : `${r.msgsPerSec.toFixed(0)} msgs/s`} (-m ${r.messages} in ${r.seconds.toFixed(2)} s), ${fmt(r.cpuUsPerMsg, 0)} us CPU/msg, others ${fmt(r.otherCpuPct, 0)}%${r.failed ? `; FAILED ${r.failed}` : ""}`;
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
  const sink = results["smtp-sink"] ?? {};
  const n = results["smtp-server"] ?? {};
  const out = [];
  const add = (scenario, name, value, goal, pass, detail) =>
    out.push({ scenario, name, value, goal, pass, detail });
  // The yardstick: Postfix's smtp-sink under smtp-source.
  const ratio = (key, field, goal, min, detail) => {
    const a = k[key]?.[field];
    const b = sink[key]?.[field];
    if (!a || !b || k[key]?.failed || sink[key]?.failed) return;
    const r = a / b;
    add(
      key,
      `${SOURCE_SCENARIOS[key].title}: ${field === "mbPerSec" ? "MB/s" : "msgs/s"} vs smtp-sink`,
      `${r.toFixed(2)}x`,
      `>= ${min}x`,
      goal(r),
      detail,
    );
  };
  ratio("a", "msgsPerSec", (r) => r >= 0.9, 0.9);
  if (k.a?.cpuUsPerMsgMedian != null && !k.a.failed) {
    const v = k.a.cpuUsPerMsgMedian;
    add(
      "a",
      `${SOURCE_SCENARIOS.a.title}: server CPU per message`,
      `${v.toFixed(0)} us`,
      "<= 40 us",
      v <= 40,
      sink.a?.cpuUsPerMsgMedian != null
        ? `smtp-sink ${sink.a.cpuUsPerMsgMedian.toFixed(0)} us`
        : undefined,
    );
  }
  ratio("b", "msgsPerSec", (r) => r >= 0.9, 0.9);
  ratio("c", "msgsPerSec", (r) => r >= 0.9, 0.9);
  const enforced = k.limit ? k.limit.code === 552 : null;
  ratio(
    "d",
    "mbPerSec",
    (r) => r >= 4 && enforced !== false,
    4,
    enforced === null
      ? "size limit set (dataSizeLimit 33554432), 33 MB check not run"
      : `33 MB message: smtpkit ${k.limit.code ?? k.limit.error}`,
  );
  if (k.idle?.kbPerConnRaw != null) {
    const v = k.idle.kbPerConnGc ?? k.idle.kbPerConnRaw;
    add(
      "idle",
      "E  memory per idle connection",
      `${v.toFixed(1)} KB (no forced GC: ${k.idle.kbPerConnRaw.toFixed(1)} KB)`,
      "<= 8 KB",
      v <= 8,
      ["smtp-sink", "node-floor", "bare-net"]
        .filter((s) => results[s]?.idle?.kbPerConnRaw != null)
        .map(
          (s) =>
            `${s} ${(results[s].idle.kbPerConnGc ?? results[s].idle.kbPerConnRaw).toFixed(1)} KB`,
        )
        .join(", ") || undefined,
    );
  }
  // Secondary: the load generator's scenarios against smtp-server.
  if (k.s1?.msgsPerSec && n.s1?.msgsPerSec) {
    const r = k.s1.msgsPerSec / n.s1.msgsPerSec;
    add("s1", "S1 pipelined msgs/s vs smtp-server", `${r.toFixed(2)}x`, ">= 1.3x", r >= 1.3);
  }
  if (k.s2?.msgsPerSec && n.s2?.msgsPerSec) {
    const r = k.s2.msgsPerSec / n.s2.msgsPerSec;
    add("s2", "S2 msgs/s vs smtp-server", `${r.toFixed(2)}x`, ">= 1.3x", r >= 1.3);
  }
  if (k.s3?.mbPerSec && n.s3?.mbPerSec) {
    const r = k.s3.mbPerSec / n.s3.mbPerSec;
    const both = k.limit?.code === 552 && n.limit?.code === 552;
    add(
      "s3",
      "S3 5 MB MB/s vs smtp-server",
      `${r.toFixed(2)}x`,
      "> 1x, limit enforced",
      r > 1 && (both || !k.limit),
    );
  }
  if (k.s3?.hwm && k.s1?.hwm) {
    add(
      "s3",
      "smtpkit peak RSS 5 MB vs 1 KB",
      `${mb(k.s3.hwm)} vs ${mb(k.s1.hwm)}`,
      "5 MB <= 1 KB",
      k.s3.hwm <= k.s1.hwm,
    );
  }
  if (k.limit) {
    add(
      "limit",
      "33 MB message rejected",
      String(k.limit.code ?? k.limit.error),
      "552",
      k.limit.code === 552,
    );
  }
  return out;
}

const fmt = (v, d = 1) => (v == null || Number.isNaN(v) ? "-" : v.toFixed(d));
const mb = (bytes) => (bytes == null ? "-" : `${(bytes / MiB).toFixed(1)} MiB`);
const mark = (t) => (t ? `${t.goal.replace(" us", "")} ${t.pass ? "✓" : "✗"}` : "");

/** Lays out rows ([label, ...cells] or null for a rule) under `header`, right-aligned cells. */
function grid(header, rows) {
  const width = (c) => [...String(c)].length;
  const widths = header.map((h, i) =>
    Math.max(width(h), ...rows.filter(Boolean).map((r) => width(r[i] ?? ""))),
  );
  const pad = (c, w, left) => {
    const text = String(c ?? "");
    const fill = " ".repeat(Math.max(0, w - width(text)));
    return left ? text + fill : fill + text;
  };
  const line = (cells) =>
    cells
      .map((c, i) => pad(c, widths[i], i === 0))
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  let out = `${line(header)}\n${rule}\n`;
  for (const r of rows) out += r ? `${line(r)}\n` : `${rule}\n`;
  return out;
}

function renderTable({ env, results, targets }) {
  const target = (scenario, match) =>
    targets.find((t) => t.scenario === scenario && (!match || t.name.includes(match)));
  let out = `\nsmtpkit server benchmark  ${env.date}  node ${env.node}  ${env.cpus}  load ${env.loadavgAtStart?.join(" ")}\n`;
  out += `smtpkit ${env.smtpkitCommit ?? "?"} (+ working tree), postfix ${env.versions.postfix ?? "n/a"}, smtp-server ${env.versions["smtp-server"]}, go-smtp ${env.versions["go-smtp"] ?? "n/a"}, aiosmtpd ${env.versions.aiosmtpd ?? "n/a"}\n`;
  for (const [what, why] of Object.entries(env.skipped ?? {})) out += `skipped ${what}: ${why}\n`;

  // Table 1: smtp-source against every server.
  const keys = Object.keys(SOURCE_SCENARIOS).filter((key) =>
    Object.values(results).some((r) => r[key]),
  );
  const hasIdle = Object.values(results).some((r) => r.idle);
  const names = Object.keys(results).filter(
    (s) => keys.some((key) => results[s][key]) || results[s].idle,
  );
  if (names.length) {
    const rows = [];
    const row = (label, f, t = "") =>
      rows.push([label, ...names.map((s) => f(results[s] ?? {}) ?? "-"), t]);
    for (const key of keys) {
      const sc = SOURCE_SCENARIOS[key];
      const unit = sc.mb ? "mbPerSec" : "msgsPerSec";
      const value = (r) =>
        r[key]?.failed && !r[key]?.rounds ? "failed" : fmt(r[key]?.[unit], sc.mb ? 0 : 0);
      if (rows.length) rows.push(null);
      row(`${sc.title}: ${sc.mb ? "MB/s" : "msgs/s"}`, value);
      row(
        "   x smtp-sink",
        (r) => {
          const base = results["smtp-sink"]?.[key]?.[unit];
          return r[key]?.[unit] && base ? `${(r[key][unit] / base).toFixed(2)}x` : null;
        },
        mark(target(key, "vs smtp-sink")),
      );
      row(
        "   server CPU us/msg (median)",
        (r) => fmt(r[key]?.cpuUsPerMsgMedian, r[key]?.cpuUsPerMsgMedian >= 1000 ? 0 : 1),
        mark(target(key, "CPU")),
      );
      row("   -m / seconds (best round)", (r) =>
        r[key]?.messages ? `${r[key].messages} / ${r[key].seconds.toFixed(2)}` : null,
      );
    }
    if (hasIdle) {
      if (rows.length) rows.push(null);
      row(
        `E  ${opt.connections} idle conns after EHLO: KB/conn`,
        (r) =>
          r.idle?.kbPerConnGc != null ? fmt(r.idle.kbPerConnGc, 1) : fmt(r.idle?.kbPerConnRaw, 1),
        mark(target("idle")),
      );
      row("   KB/conn without forced GC", (r) => fmt(r.idle?.kbPerConnRaw, 1));
      row("   JS heap used / total / external KB/conn", (r) =>
        r.idle?.heapKbPerConn != null
          ? `${fmt(r.idle.heapKbPerConn, 1)} / ${fmt(r.idle.heapTotalKbPerConn, 1)} / ${fmt(r.idle.externalKbPerConn, 1)}`
          : null,
      );
      row("   RSS before -> after, MiB", (r) =>
        r.idle?.baseRss || r.idle?.loadRss
          ? `${fmt(r.idle.baseRss / MiB, 0)} -> ${fmt(r.idle.loadRss / MiB, 0)}`
          : null,
      );
      row("   connections open / failed", (r) =>
        r.idle ? `${r.idle.opened ?? "-"} / ${r.idle.failed ?? "-"}` : null,
      );
    }
    out += `\nPostfix yardstick: smtp-source (no pipelining) against each server; best of ${opt.rounds} round(s), CPU = median\n\n`;
    out += grid(["", ...names, "smtpkit target"], rows);
  }

  // Table 2: the load generator (pipelined S1, S1b, S2, S3) and the size limit.
  const legacy = Object.keys(results).filter((s) =>
    ["s1", "s1np", "s2", "s3", "limit"].some((key) => results[s][key]),
  );
  if (legacy.length) {
    const rows = [];
    const row = (label, f) => {
      const cells = legacy.map((s) => f(results[s] ?? {}) ?? "-");
      if (cells.some((c) => c !== "-")) rows.push([label, ...cells]);
    };
    const sep = () => {
      if (rows.length && rows[rows.length - 1] !== null) rows.push(null);
    };
    row("S1 20 sessions x 1 KB, pipelined: msgs/s", (r) => fmt(r.s1?.msgsPerSec, 0));
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
      r.s3?.hwm && r.s1?.hwm
        ? `${r.s3.hwm >= r.s1.hwm ? "+" : ""}${mb(r.s3.hwm - r.s1.hwm)}`
        : null,
    );
    row("Size limit: 33 MB message reply", (r) =>
      r.limit
        ? r.limit.code
          ? `${r.limit.code} (${fmt(r.limit.ms / 1000, 2)} s)`
          : `error ${r.limit.error}`
        : null,
    );
    row("   peak RSS (VmHWM)", (r) => mb(r.limit?.hwm));
    if (rows[rows.length - 1] === null) rows.pop();
    out += `\nLoad generator (src/loadgen.mjs, PIPELINING when offered): window ${opt.durationMs} ms after ${opt.warmupMs} ms warm-up, best of ${Math.min(opt.rounds, 2)} round(s)\n\n`;
    out += grid(["", ...legacy], rows);
  }

  const problems = [];
  for (const s of Object.keys(results)) {
    for (const [k, v] of Object.entries(results[s] ?? {})) {
      if (v?.failed) problems.push(`${s} ${k}: ${v.failed}`);
      for (const [i, r] of (v?.rounds ?? []).entries())
        if (r?.failed && r !== v) problems.push(`${s} ${k} round ${i + 1}: ${r.failed}`);
      if (v?.errors?.length)
        problems.push(`${s} ${k}: ${v.errors.length} error(s), e.g. ${v.errors[0]}`);
      if (v?.rejected && Object.keys(v.rejected).length)
        problems.push(`${s} ${k}: rejected ${JSON.stringify(v.rejected)}`);
      if (v?.server && v.totalMessages != null && v.server.messages !== v.totalMessages)
        problems.push(
          `${s} ${k}: server counted ${v.server.messages} messages, load generator ${v.totalMessages}`,
        );
      // go-smtp's reader turns CRLF into LF, so its byte count is lower: not a problem.
      if (
        v?.server &&
        v.totalMessages &&
        s !== "go-smtp" &&
        v.server.bytes !== v.server.messages * v.size
      )
        problems.push(
          `${s} ${k}: server counted ${v.server.bytes} body bytes, expected ${v.server.messages * v.size}`,
        );
    }
  }
  const notes = [
    "A-D: wall clock from smtp-source's start to its exit; -m is sized from a warm-up run on the same server process. CPU us/msg: the server's utime+stime over the measured run / messages.",
    "smtp-source sends HELO and one command at a time (it has no PIPELINING); smtp-sink, smtpkit and go-smtp would pipeline with a client that does.",
    "smtp-server waits 100 ms before its greeting (early-talker check, not configurable): B is bound by that.",
    "node-floor: a bare node:net sink (greets, answers every line, scans for CRLF.CRLF): what Node costs before any SMTP logic.",
    "MB/s = MiB of payload per second. Peak RSS: the server process's VmHWM (max over rounds).",
  ];
  out += `\nnotes:\n${notes.map((n) => `  - ${n}`).join("\n")}\n`;
  if (problems.length) out += `\nproblems:\n${problems.map((p) => `  - ${p}`).join("\n")}\n`;
  if (targets.length) {
    out += "\ntargets (smtpkit):\n";
    for (const t of targets)
      out += `  ${t.pass ? "✓" : "✗"} ${t.name}: ${t.value} (goal ${t.goal})${t.detail ? `; ${t.detail}` : ""}\n`;
  }
  return out;
}

main().catch((e) => {
  log(e?.stack ?? String(e));
  process.exit(1);
});
