// Proxy throughput benchmark for @smtpkit/handlers: `node bench/proxy.mjs` after a build.
//
// An upstream smtpkit sink (a streaming handler that counts the body) runs in its own process.
// Postfix's smtp-source sends the same load to it directly, and through the Proxy (its own
// process) in each mode: transparent (the default: upstream session at MAIL, one upstream
// connection per client session) and atData (Nodemailer's client, one upstream connection per
// message). Printed per scenario: msgs/s, and the proxy's CPU per message (utime+stime from
// /proc). A last row streams one 20 MB message through the transparent Proxy with a raw client
// that honours backpressure and prints the proxy's RSS growth (VmHWM, the kernel's peak).
//
// Env: BENCH_QUICK=1 sends fewer messages (a smoke test of the script itself).
import { fork, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);
const QUICK = process.env.BENCH_QUICK === "1";
const SMTP_SOURCE = ["/usr/sbin/smtp-source", "/usr/bin/smtp-source"].find((p) => existsSync(p));
const MB = 1024 * 1024;

if (process.argv[2] === "--server") await server(process.argv[3], process.argv[4]);
else await main();

// -------------------------------------------------------------------------------------------------
// Server processes.

async function server(kind, upstreamPort) {
  const { serve } = await import("@smtpkit/node");
  const { SmtpProxy } = await import(new URL("../dist/index.js", import.meta.url).href);
  const sink = {
    async handleDATAStream(_server, _session, _envelope, body) {
      for await (const _chunk of body);
      return "250 2.0.0 Ok";
    },
  };
  const handler =
    kind === "sink" ? sink : new SmtpProxy("127.0.0.1", Number(upstreamPort), { mode: kind });
  const smtp = await serve(handler, {
    host: "127.0.0.1",
    port: 0,
    dataSizeLimit: 0,
    maxConnections: 10_000,
  });
  process.send({ port: smtp.port });
  process.on("message", (m) => {
    if (m === "stop") smtp.close({ timeout: 1000 }).then(() => process.exit(0));
  });
}

function start(kind, upstreamPort = "") {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ["--server", kind, String(upstreamPort)], { stdio: "inherit" });
    child.once("message", (m) => resolve({ child, port: m.port }));
    child.once("error", reject);
  });
}

function stop(child) {
  return new Promise((resolve) => {
    child.once("exit", resolve);
    child.send("stop");
  });
}

/** utime + stime of a process, in milliseconds. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function peakRss(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m[1]) * 1024;
}

// -------------------------------------------------------------------------------------------------
// Load.

function smtpSource(port, flags) {
  const started = performance.now();
  const result = spawnSync(SMTP_SOURCE, [...flags, `127.0.0.1:${port}`], { encoding: "utf8" });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`smtp-source failed: ${result.stderr}`);
  return seconds;
}

/** One message of `size` bytes over a raw socket, written no faster than the server reads. */
function rawMessage(port, size) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let buffer = "";
    const replies = [];
    let wake = null;
    socket.setEncoding("latin1");
    socket.on("data", (d) => {
      buffer += d;
      for (;;) {
        const m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(buffer);
        if (!m) break;
        replies.push(m[0].trim());
        buffer = buffer.slice(m[0].length);
      }
      wake?.();
    });
    socket.on("error", reject);
    const reply = async () => {
      while (replies.length === 0) await new Promise((r) => (wake = r));
      return replies.shift();
    };
    const write = (data) =>
      new Promise((r) => (socket.write(data) ? r() : socket.once("drain", r)));
    (async () => {
      await reply();
      for (const line of [
        "EHLO bench.example",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
      ]) {
        await write(`${line}\r\n`);
        await reply();
      }
      const block = `${"0123456789abcdef".repeat(4)}\r\n`.repeat(1024);
      await write("Subject: big\r\n\r\n");
      for (let sent = 0; sent < size; sent += block.length) await write(block);
      await write(".\r\n");
      const final = await reply();
      socket.end("QUIT\r\n");
      resolve(final);
    })().catch(reject);
  });
}

// -------------------------------------------------------------------------------------------------

async function main() {
  if (!SMTP_SOURCE) {
    console.log("skip: smtp-source not installed (Debian package postfix)");
    return;
  }
  const upstream = await start("sink");
  const scenarios = [
    ["20 sessions x 1 KB", ["-d", "-s", "20", "-l", "1024"], QUICK ? 1000 : 8000],
    [
      "20 sessions x 1 KB, 10 recipients",
      ["-d", "-s", "20", "-l", "1024", "-r", "10"],
      QUICK ? 500 : 4000,
    ],
    ["one message per connection", ["-s", "20", "-l", "1024"], QUICK ? 500 : 3000],
  ];
  const rows = [];
  for (const [name, flags, messages] of scenarios) {
    for (const target of ["direct", "transparent", "atData"]) {
      const proxy = target === "direct" ? null : await start(target, upstream.port);
      const port = proxy ? proxy.port : upstream.port;
      const pid = proxy ? proxy.child.pid : upstream.child.pid;
      smtpSource(port, [...flags, "-m", "200"]); // warm-up
      const cpuBefore = cpuMs(pid);
      const seconds = smtpSource(port, [...flags, "-m", String(messages)]);
      const cpu = cpuMs(pid) - cpuBefore;
      rows.push({
        scenario: name,
        target,
        "msgs/s": Math.round(messages / seconds),
        "CPU µs/msg (proxy, or the sink when direct)": Math.round((cpu * 1000) / messages),
      });
      if (proxy) await stop(proxy.child);
    }
  }
  console.table(rows);

  const directStart = performance.now();
  await rawMessage(upstream.port, 20 * MB);
  const direct = (performance.now() - directStart) / 1000;
  console.log(`20 MB straight to the sink: ${(20 / direct).toFixed(0)} MB/s`);
  const proxy = await start("transparent", upstream.port);
  await rawMessage(proxy.port, MB);
  const before = peakRss(proxy.child.pid);
  const started = performance.now();
  const final = await rawMessage(proxy.port, 20 * MB);
  const seconds = (performance.now() - started) / 1000;
  const after = peakRss(proxy.child.pid);
  console.log(
    `20 MB through the transparent Proxy: ${final}; ${(20 / seconds).toFixed(0)} MB/s; proxy peak RSS ${(before / MB).toFixed(1)} → ${(after / MB).toFixed(1)} MiB (+${((after - before) / MB).toFixed(1)})`,
  );
  await stop(proxy.child);
  await stop(upstream.child);
}
