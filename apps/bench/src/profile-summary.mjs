// Summarises a V8 .cpuprofile (node --cpu-prof) or a sampling .heapprofile (run.mjs --alloc-prof):
// self and inclusive ("total") time or allocated bytes per function, with file:line, so the hot
// spots of the smtpkit server can be named precisely.
//
//   node src/profile-summary.mjs profiles/smtpkit-s1-1.cpuprofile [--top=30] [--filter=smtpkit]
//   node src/profile-summary.mjs profiles/smtpkit-s1-2.heapprofile

import { readFileSync } from "node:fs";

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error("usage: node src/profile-summary.mjs FILE.cpuprofile [--top=N] [--filter=TEXT]");
  process.exit(2);
}
const opts = Object.fromEntries(rest.map((a) => a.replace(/^--/, "").split("=")));
const top = Number(opts.top ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8"));
const nodes = new Map();
const parent = new Map();
/** Self value per node id: microseconds (CPU profile) or bytes allocated (heap profile). */
const selfUs = new Map();
let totalUs = 0;
const heap = Boolean(profile.head);
if (heap) {
  // Sampling heap profile: a tree under `head`, samples = { size, nodeId }.
  const walk = (n, up) => {
    nodes.set(n.id, n);
    if (up !== undefined) parent.set(n.id, up);
    for (const c of n.children ?? []) walk(c, n.id);
  };
  walk(profile.head, undefined);
  for (const sample of profile.samples ?? []) {
    totalUs += sample.size;
    selfUs.set(sample.nodeId, (selfUs.get(sample.nodeId) ?? 0) + sample.size);
  }
} else {
  for (const n of profile.nodes) nodes.set(n.id, n);
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Sample durations: timeDeltas[i + 1] is the time until the next sample.
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    totalUs += dt;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
}
const unit = heap ? "KB" : "ms";

const short = (url) =>
  url.replace(/^file:\/\/.*?\/(packages|apps|node_modules)\//, "$1/").replace(/^node:/, "node:");
const keyOf = (n) => {
  const f = n.callFrame;
  const name = f.functionName || "(anonymous)";
  return f.url ? `${name}  ${short(f.url)}:${f.lineNumber + 1}` : name;
};

const self = new Map();
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const n = nodes.get(id);
  const k = keyOf(n);
  self.set(k, (self.get(k) ?? 0) + us);
  // Inclusive: every distinct function on the stack gets the sample once.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const key = keyOf(nodes.get(cur));
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}

const pct = (us) => `${((us / totalUs) * 100).toFixed(1).padStart(5)}%`;
const filter = opts.filter ? (k) => k.includes(opts.filter) : () => true;
const print = (title, map) => {
  console.log(`\n${title}`);
  [...map]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([k, us]) => {
      const v = heap ? us / 1024 : us / 1000;
      console.log(`${pct(us)}  ${v.toFixed(0).padStart(7)} ${unit}  ${k}`);
    });
};
console.log(
  heap
    ? `${file}: ${(totalUs / 1048576).toFixed(1)} MiB allocated (sampled)`
    : `${file}: ${(totalUs / 1000).toFixed(0)} ms sampled`,
);
print(heap ? "self (allocated here)" : "self time", self);
print(heap ? "inclusive" : "inclusive time", inclusive);
