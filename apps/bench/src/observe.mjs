// Observability cost: scenario A (smtp-source -c -d -s 20 -l 1024, 20 sessions of 1 KB messages,
// no pipelining) against smtpkit without an observer and with each of @smtpkit/observability's
// subscribers (src/servers/smtpkit-observed.mjs):
//
//   smtpkit                no observer
//   smtpkit-logs           JSON lines at info level (pino, in 4 KiB writes: logDestination(), the CLI's --log-format json)
//   smtpkit-logs-sync      the same, one write per line (pino.destination())
//   smtpkit-metrics        prom-client counters and histograms
//   smtpkit-logs-metrics   both
//   smtpkit-busy3          the control: an observer that only keeps the CPU busy 3 µs per message
//
//   npm run bench:observe -w @smtpkit/bench [-- --rounds=N --seconds=S --out=PATH]
//                                           [--baseline=PATH]
//
// --baseline=PATH adds "smtpkit-baseline": a server module like src/servers/smtpkit.mjs that
// imports another build of @smtpkit/node and core (e.g. the commit before the observer), to see
// what the observer hooks cost when no observer is set.
//
// It runs src/run.mjs (fresh server per round, warm-up, servers interleaved within each round)
// with these servers only, then compares each variant with the no-observer server two ways:
// the best round of each (as the main bench reports), and paired: the ratio of the two within
// each round, whose median is what the target is judged on. Rounds of a few seconds on a shared
// machine drift by more than the effect measured; a ratio within one round cancels the drift.
// Then it runs src/observe-inprocess.mjs: the CPU the observer itself adds per message, without
// the kernel. The target: each subscriber costs less than 10 % of throughput.

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
const VARIANTS = ["logs", "logs-sync", "metrics", "logs-metrics", "busy3"];
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
    `--rounds=${args.rounds ?? 9}`,
    `--seconds=${args.seconds ?? 1.25}`,
    `--out=${OUT}`,
  ],
  { stdio: ["ignore", "ignore", "inherit"] },
);
if (run.status !== 0) process.exit(run.status ?? 1);

const { results } = JSON.parse(readFileSync(OUT, "utf8"));
const base = results.smtpkit?.a;
if (!base?.msgsPerSec) throw new Error("no figure for smtpkit without an observer");

const median = (values) => {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length === 0 ? null : v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
};
/** Median over rounds of variant / base within the same round (`key` of each round). */
const paired = (variant, key) =>
  median(
    (variant.rounds ?? [])
      .map((r, i) => [r, base.rounds?.[i]])
      .filter(([r, b]) => r && b && !r.failed && !b.failed && r[key] && b[key])
      .map(([r, b]) => r[key] / b[key] - 1),
  );
const pct = (x) => (x === null ? "-" : `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`);

const rows = [
  [
    "",
    "msgs/s (best)",
    "vs none",
    "CPU/msg (median)",
    "vs none",
    "paired msgs/s",
    "paired CPU",
    "target",
  ],
];
let missed = 0;
for (const name of SERVERS) {
  const a = results[name]?.a;
  if (!a?.msgsPerSec) {
    rows.push([name, a?.failed ?? "no figure", "", "", "", "", "", ""]);
    missed++;
    continue;
  }
  const isBase = name === "smtpkit";
  const rate = a.msgsPerSec / base.msgsPerSec - 1;
  const cpu = a.cpuUsPerMsgMedian / base.cpuUsPerMsgMedian - 1;
  const pairedRate = isBase ? null : paired(a, "msgsPerSec");
  const pairedCpu = isBase ? null : paired(a, "cpuUsPerMsg");
  // The baseline is another build without an observer: its row shows what the hooks cost unused.
  const ok =
    isBase || name === "smtpkit-baseline" || name === "smtpkit-busy3"
      ? ""
      : pairedRate !== null && -pairedRate < TARGET
        ? "ok (< 10 %)"
        : "MISSED";
  if (ok === "MISSED") missed++;
  rows.push([
    name,
    a.msgsPerSec.toFixed(0),
    isBase ? "" : pct(rate),
    `${a.cpuUsPerMsgMedian.toFixed(0)} µs`,
    isBase ? "" : pct(cpu),
    isBase ? "" : pct(pairedRate),
    isBase ? "" : pct(pairedCpu),
    ok,
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
const line = (r) => `| ${r.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
const rounds = base.rounds?.length ?? 0;
let out = `\nobservability cost, scenario A (smtp-source -c -d -s 20 -l 1024), ${rounds} rounds; paired = median over rounds of the change within a round:\n`;
out += `${line(rows[0])}\n| ${widths.map((w) => "-".repeat(w)).join(" | ")} |\n`;
for (const r of rows.slice(1)) out += `${line(r)}\n`;
out += `wrote ${OUT}${missed ? `; ${missed} below target or failed` : ""}\n`;
process.stdout.write(out);

// What the observer itself costs, without TCP: steadier, and it says where the time goes.
const inProcess = spawnSync(
  process.execPath,
  [join(HERE, "observe-inprocess.mjs"), `--scenario-cpu=${base.cpuUsPerMsgMedian.toFixed(1)}`],
  { stdio: ["ignore", "inherit", "inherit"] },
);
if (inProcess.status !== 0) process.exit(inProcess.status ?? 1);
