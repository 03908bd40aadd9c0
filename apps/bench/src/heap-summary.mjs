// Summarises a V8 .heapsnapshot: objects grouped by constructor / kind, with count and shallow
// size, sorted by size. With N idle connections open, the groups whose count is a multiple of N
// show what one connection costs (`--per=2000` prints bytes per connection).
//
//   node src/heap-summary.mjs profiles/smtpkit-idle-2000.heapsnapshot [--per=2000] [--top=40]

import { readFileSync } from "node:fs";

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error("usage: node src/heap-summary.mjs FILE.heapsnapshot [--per=N] [--top=N]");
  process.exit(2);
}
const opts = Object.fromEntries(rest.map((a) => a.replace(/^--/, "").split("=")));
const per = Number(opts.per ?? 0);
const top = Number(opts.top ?? 40);
const snap = JSON.parse(readFileSync(file, "utf8"));
const meta = snap.snapshot.meta;
const fields = meta.node_fields;
const types = meta.node_types[0];
const F = fields.length;
const iType = fields.indexOf("type");
const iName = fields.indexOf("name");
const iSize = fields.indexOf("self_size");
const nodes = snap.nodes;
const strings = snap.strings;

const groups = new Map();
let total = 0;
for (let i = 0; i < nodes.length; i += F) {
  const type = types[nodes[i + iType]];
  let name = strings[nodes[i + iName]];
  const size = nodes[i + iSize];
  total += size;
  if (type === "string" || type === "concatenated string" || type === "sliced string")
    name = "(string)";
  else if (type === "code") name = "(code)";
  else if (type === "hidden" || type === "array" || type === "object shape")
    name = `(${type}) ${name.slice(0, 40)}`;
  else if (type === "closure") name = `(closure) ${name.slice(0, 40)}`;
  else name = `${type === "object" ? "" : `(${type}) `}${name.slice(0, 60)}`;
  const g = groups.get(name) ?? { count: 0, size: 0 };
  g.count++;
  g.size += size;
  groups.set(name, g);
}

console.log(`${file}: ${(total / 1048576).toFixed(1)} MiB in ${nodes.length / F} nodes`);
console.log(
  `${"size".padStart(10)} ${"count".padStart(8)}${per ? `${"B/conn".padStart(9)}${"n/conn".padStart(8)}` : ""}  group`,
);
[...groups]
  .sort((a, b) => b[1].size - a[1].size)
  .slice(0, top)
  .forEach(([name, g]) => {
    const perCols = per
      ? `${(g.size / per).toFixed(0).padStart(9)}${(g.count / per).toFixed(1).padStart(8)}`
      : "";
    console.log(`${String(g.size).padStart(10)} ${String(g.count).padStart(8)}${perCols}  ${name}`);
  });
