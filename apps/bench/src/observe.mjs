// Observability cost: scenario A (smtp-source -c -d -s 20 -l 1024, 20 sessions of 1 KB messages,
// no pipelining) against smtpkit without an observer and with each of @smtpkit/observability's
// subscribers (src/servers/smtpkit-observed.mjs):
//
//   smtpkit                no observer
//   smtpkit-logs           JSON lines at info level (pino, buffered destination) to /dev/null
//   smtpkit-logs-sync      the same, one write per line (the CLI's --log-format json)
//   smtpkit-metrics        prom-client counters and histograms
//   smtpkit-logs-metrics   both
//
//   npm run bench:observe -w @smtpkit/bench [-- --rounds=N --seconds=S --out=PATH]
//                                           [--baseline=PATH]
//
// --baseline=PATH adds "smtpkit-baseline": a server module like src/servers/smtpkit.mjs that
// imports another build of @smtpkit/node and core (e.g. the commit before the observer), to see
// what the observer hooks cost when no observer is set.
//
// It runs src/run.mjs (same method: fresh server per round, warm-up, best round, median CPU) with
// these servers only, then prints msgs/s and server CPU per message beside the no-observer run.
// The target: each subscriber costs less than 10 % of throughput.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const APP = resolve(HERE, "..");
const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = a.match(/^--([^=]+)(?:=(.*))?$/);
    return m ? [m[1], m[2] ?? true] : [a, true];
  }),
);
const OUT = resolve(String(args.out ?? join(APP, "results-observe.json")));
const VARIANTS = ["logs", "logs-sync", "metrics", "logs-metrics"];
const EXTRA = VARIANTS.map((v) => [`smtpkit-${v}`, join(HERE, "servers", `smtpkit-${v}.mjs`)]);
if (args.baseline) EXTRA.unshift(["smtpkit-baseline", resolve(String(args.baseline))]);
const SERVERS = ["smtpkit", ...EXTRA.map(([name]) => name)];
const TARGET = 0.1;

if (!["/usr/sbin/smtp-source", "/usr/bin/smtp-source"].some(existsSync)) {
  process.stdout.write("\nobservability cost: skipped (no smtp-source: Debian package postfix)\n");
  process.exit(0);
}

const run = spawnSync(
  process.execPath,
  [
    join(HERE, "run.mjs"),
    "--scenarios=a",
    `--only=${SERVERS.join(",")}`,
    `--extra-server=${EXTRA.map(([name, path]) => `${name}=${path}`).join(",")}`,
    `--rounds=${args.rounds ?? 5}`,
    `--seconds=${args.seconds ?? 1.25}`,
    `--out=${OUT}`,
  ],
  { stdio: ["ignore", "ignore", "inherit"] },
);
if (run.status !== 0) process.exit(run.status ?? 1);

const { results } = JSON.parse(readFileSync(OUT, "utf8"));
const base = results.smtpkit?.a;
if (!base?.msgsPerSec) throw new Error("no figure for smtpkit without an observer");
const rows = [["", "msgs/s", "vs none", "server CPU per message", "vs none", "target"]];
let missed = 0;
for (const name of SERVERS) {
  const a = results[name]?.a;
  if (!a?.msgsPerSec) {
    rows.push([name, a?.failed ?? "no figure", "", "", "", ""]);
    missed++;
    continue;
  }
  const rate = a.msgsPerSec / base.msgsPerSec - 1;
  const cpu = a.cpuUsPerMsg / base.cpuUsPerMsg - 1;
  const pct = (x) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`;
  // The baseline is another build without an observer: its row shows what the hooks cost unused.
  const ok =
    name === "smtpkit" || name === "smtpkit-baseline"
      ? ""
      : -rate < TARGET
        ? "ok (< 10 %)"
        : "MISSED";
  if (ok === "MISSED") missed++;
  rows.push([
    name,
    a.msgsPerSec.toFixed(0),
    name === "smtpkit" ? "" : pct(rate),
    `${a.cpuUsPerMsg.toFixed(0)} µs`,
    name === "smtpkit" ? "" : pct(cpu),
    ok,
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
const line = (r) => `| ${r.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
let out = "\nobservability cost, scenario A (smtp-source -c -d -s 20 -l 1024), best round:\n";
out += `${line(rows[0])}\n| ${widths.map((w) => "-".repeat(w)).join(" | ")} |\n`;
for (const r of rows.slice(1)) out += `${line(r)}\n`;
out += `wrote ${OUT}${missed ? `; ${missed} below target or failed` : ""}\n`;
process.stdout.write(out);
