// Runs the same scenarios against the smtpkit server on Node, Deno and Bun and prints a table.
//
//   node bench/run.mjs [node|deno|bun ...]     (default: all three; BENCH_SECONDS=5 per scenario)
//
// The server (bench/server.mjs, a streaming sink) runs under the runtime measured; the load
// generator (bench/loadgen.mjs) always runs under Node, so only the server side changes. Needs
// the adapters built (`npm run build`). Only 127.0.0.1; every scenario stops at its deadline.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = (name) => fileURLToPath(new URL(name, import.meta.url));
const bin = (name) => {
  const local = here(`../../../node_modules/.bin/${name}`);
  return existsSync(local) ? local : name;
};
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const runtimes = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["node", "deno", "bun"];
const scenarios = [
  { name: "1 KB messages, 20 sessions", unit: "msg/s", sessions: 20, size: 1024 },
  { name: "5 MB messages, 1 session", unit: "MB/s", sessions: 1, size: 5 * 1024 * 1024 },
  {
    name: "5 MB messages, 1 session, STARTTLS",
    unit: "MB/s",
    sessions: 1,
    size: 5 * 1024 * 1024,
    starttls: true,
  },
];

const pem = execFileSync(
  "openssl",
  [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "-",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
  ],
  { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
);
const tls = {
  key: /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(pem)[0],
  cert: /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(pem)[0],
};

function command(runtime, config) {
  const server = here("server.mjs");
  if (runtime === "deno") {
    const flags = ["--allow-net=127.0.0.1", "--allow-read", "--allow-env", "--allow-sys=hostname"];
    return [bin("deno"), ["run", ...flags, server, config]];
  }
  if (runtime === "bun") return [bin("bun"), [server, config]];
  return [process.execPath, [server, config]];
}

async function startServer(runtime) {
  const [cmd, args] = command(runtime, JSON.stringify({ tls }));
  const child = spawn(cmd, args, {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
  });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`${runtime} server exited (${code})`)));
  });
  return { child, port: JSON.parse(line).port };
}

function loadgen(config) {
  const out = execFileSync(process.execPath, [here("loadgen.mjs"), JSON.stringify(config)], {
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").at(-1));
}

const results = {};
for (const runtime of runtimes) {
  const { child, port } = await startServer(runtime);
  results[runtime] = [];
  for (const s of scenarios) {
    const r = loadgen({ port, sessions: s.sessions, size: s.size, seconds, starttls: s.starttls });
    const value = s.unit === "msg/s" ? r.messages / r.seconds : r.octets / r.seconds / 1e6;
    results[runtime].push(value);
    console.error(`${runtime}: ${s.name}: ${value.toFixed(1)} ${s.unit} (${r.messages} messages)`);
  }
  child.stdin.end();
  await new Promise((resolve) => child.once("exit", resolve));
}

const versions = {
  node: process.versions.node,
  deno: runtimes.includes("deno")
    ? execFileSync(bin("deno"), ["--version"], { encoding: "utf8" }).split(/\s+/)[1]
    : "",
  bun: runtimes.includes("bun")
    ? execFileSync(bin("bun"), ["--version"], { encoding: "utf8" }).trim()
    : "",
};
console.log(
  `\n| scenario (${seconds} s each, load from Node) | ${runtimes.map((r) => `${r} ${versions[r]}`).join(" | ")} |`,
);
console.log(`| --- | ${runtimes.map(() => "---:").join(" | ")} |`);
scenarios.forEach((s, i) => {
  const cells = runtimes.map(
    (r) => `${results[r][i].toFixed(s.unit === "msg/s" ? 0 : 1)} ${s.unit}`,
  );
  console.log(`| ${s.name} | ${cells.join(" | ")} |`);
});
