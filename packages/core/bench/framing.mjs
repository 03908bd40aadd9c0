// DATA framing benchmark for @smtpkit/core: `npm run bench` (= `node bench/framing.mjs`) after a build.
//
// Measures, in one run:
//   (a) engine DATA framing throughput (1 KB and 10 MB messages of 78-octet lines, some dot-stuffed,
//       fed in 64 KiB chunks like socket reads; body bytes counted from bodyChunk events);
//   (b) a bare Buffer.indexOf("\r\n") line scan of the same bytes (the floor any framer must pay);
//   (c) the ratio engine / bare (target >= 0.5);
//   (d) a full transaction (EHLO, MAIL, RCPT, DATA 1 KB, QUIT; default accept()) in us and tx/s;
//   (e) lineEndings "normalize" and "reject" framing throughput for the 10 MB message.
// Figures are the best of N timed runs after warm-up runs. MB = 10^6 bytes.
//
// Env: SMTPKIT_DIST=/path/to/dist benches another build of the engine (e.g. a patched one);
//      BENCH_QUICK=1 runs fewer repetitions (a smoke test of the script itself).
import os from "node:os";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

const distUrl = process.env.SMTPKIT_DIST
  ? pathToFileURL(`${process.env.SMTPKIT_DIST.replace(/\/$/, "")}/`)
  : new URL("../dist/", import.meta.url);
const { ServerConnection } = await import(new URL("index.js", distUrl).href);

const QUICK = process.env.BENCH_QUICK === "1";
const CHUNK = 64 * 1024;
const LINE = 78; // octets per line including CRLF
const DOT_EVERY = 16; // every 16th line starts with "." (stuffed to ".." on the wire)

// -------------------------------------------------------------------------------------------------
// Test data.

/** A body of 78-octet text lines; returns the wire form (stuffed, with the terminator) and the plain body. */
function buildMessage(targetBytes, dotEvery = DOT_EVERY) {
  const alphabet =
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:-=+/ the quick brown fox";
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % alphabet.length;
  };
  const wire = [];
  const plain = [];
  let size = 0;
  for (let i = 0; size < targetBytes; i++) {
    let line = "";
    for (let c = 0; c < LINE - 2; c++) line += alphabet[next()];
    if (i % dotEvery === 5 % dotEvery) line = `.${line.slice(1)}`;
    else if (line[0] === ".") line = `x${line.slice(1)}`;
    plain.push(`${line}\r\n`);
    wire.push(line[0] === "." ? `.${line}\r\n` : `${line}\r\n`);
    size += LINE;
  }
  const wireBytes = Buffer.from(`${wire.join("")}.\r\n`, "latin1");
  const plainLength = plain.join("").length;
  const chunks = [];
  for (let i = 0; i < wireBytes.length; i += CHUNK) chunks.push(wireBytes.subarray(i, i + CHUNK));
  return { wire: wireBytes, chunks, plainLength, lines: plain.length };
}

const PREAMBLE = Buffer.from(
  "EHLO bench.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n",
);
/** The default decision; `respond()` on builds from before the typed decisions (SMTPKIT_DIST). */
const decide = (conn) => (conn.accept ? conn.accept() : conn.respond());
const AWAITS = new Set(["hello", "mail", "rcpt", "bodyEnd", "quit", "rset", "noop", "vrfy"]);

/** A connection that has just accepted DATA (the setup is not timed). */
function connectionInData(options) {
  const conn = new ServerConnection(options);
  conn.receiveData(PREAMBLE);
  for (;;) {
    const event = conn.nextEvent();
    if (event.type === "dataStart") break;
    if (AWAITS.has(event.type)) decide(conn);
    else throw new Error(`setup: unexpected ${event.type}`);
  }
  conn.dataToSend();
  return conn;
}

/** Feeds the body chunks; returns body octets seen in bodyChunk events and the bodyEnd event (or null). */
function frame(conn, chunks) {
  let out = 0;
  for (const chunk of chunks) {
    conn.receiveData(chunk);
    for (;;) {
      const event = conn.nextEvent();
      if (event.type === "bodyChunk") {
        out += event.data.length;
      } else if (event.type === "needData") {
        break;
      } else if (event.type === "bodyEnd") {
        return { out, end: event };
      } else {
        throw new Error(`framing: unexpected ${event.type}`);
      }
    }
  }
  return { out, end: null };
}

/** Bare baseline: every CRLF via Buffer.indexOf("\r\n"), plus a terminator check after each one. */
function bareScan(chunks) {
  let lines = 0;
  for (const buf of chunks) {
    let pos = 0;
    for (;;) {
      const i = buf.indexOf("\r\n", pos);
      if (i === -1) break;
      lines++;
      if (buf[i + 2] === 46 && buf[i + 3] === 13 && buf[i + 4] === 10)
        return { lines, terminated: true };
      pos = i + 2;
    }
  }
  return { lines, terminated: false };
}

/** Informational: the same scan with a Buffer needle (no string conversion per call). */
const CRLF = Buffer.from("\r\n");
function bareBufferNeedleScan(chunks) {
  let lines = 0;
  for (const buf of chunks) {
    let pos = 0;
    for (;;) {
      const i = buf.indexOf(CRLF, pos);
      if (i === -1) break;
      lines++;
      if (buf[i + 2] === 46 && buf[i + 3] === 13 && buf[i + 4] === 10)
        return { lines, terminated: true };
      pos = i + 2;
    }
  }
  return { lines, terminated: false };
}

/** Informational: the engine framer's per-line primitive, `chunk.indexOf(LF, pos)` (memchr on a Node Buffer). */
function bareLfScan(chunks) {
  let lines = 0;
  for (const buf of chunks) {
    let pos = 0;
    for (;;) {
      const i = buf.indexOf(10, pos);
      if (i === -1) break;
      lines++;
      if (buf[i + 1] === 46 && buf[i + 2] === 13 && buf[i + 3] === 10 && buf[i - 1] === 13)
        return { lines, terminated: true };
      pos = i + 1;
    }
  }
  return { lines, terminated: false };
}

// -------------------------------------------------------------------------------------------------
// Timing.

/** Best (minimum) seconds of `runs` timed calls after `warmup` calls; `prepare` runs untimed before each. */
function best({ warmup, runs, prepare = () => undefined, run }) {
  let min = Number.POSITIVE_INFINITY;
  let last;
  for (let i = 0; i < warmup + runs; i++) {
    const input = prepare();
    const start = performance.now();
    last = run(input);
    const seconds = (performance.now() - start) / 1000;
    if (i >= warmup && seconds < min) min = seconds;
  }
  return { seconds: min, last };
}

const mbps = (bytes, seconds) => bytes / seconds / 1e6;

const small = buildMessage(1024);
const large = buildMessage(10 * 1024 * 1024);
const BATCH = QUICK ? 200 : 2000; // 1 KB messages per timed batch
const REPS = QUICK ? { warmup: 1, runs: 2 } : { warmup: 5, runs: 15 };

/** Engine framing of the 10 MB message with `options`; checks the result. */
function engineLarge(options = {}, message = large, chunks = message.chunks) {
  const result = best({
    ...REPS,
    prepare: () => connectionInData(options),
    run: (conn) => frame(conn, chunks),
  });
  const { out, end } = result.last;
  // Body octets out per second; `inMbps` counts wire octets in (meaningful even when the body is wrong).
  return {
    mbps: mbps(out, result.seconds),
    inMbps: mbps(large.wire.length, result.seconds),
    seconds: result.seconds,
    out,
    end,
  };
}

/** Engine framing of BATCH 1 KB messages, each arriving as one read (a fresh connection each). */
function engineSmall() {
  const result = best({
    ...REPS,
    prepare: () => Array.from({ length: BATCH }, () => connectionInData({})),
    run: (conns) => {
      let out = 0;
      let ends = 0;
      for (const conn of conns) {
        const r = frame(conn, small.chunks);
        out += r.out;
        if (r.end) ends++;
      }
      return { out, ends };
    },
  });
  return {
    mbps: mbps(result.last.out, result.seconds),
    out: result.last.out,
    ends: result.last.ends,
  };
}

function bareSmall(scan) {
  const result = best({
    ...REPS,
    run: () => {
      let ok = 0;
      for (let i = 0; i < BATCH; i++) if (scan(small.chunks).terminated) ok++;
      return ok;
    },
  });
  return { mbps: mbps(small.wire.length * BATCH, result.seconds), ok: result.last === BATCH };
}

function bareLarge(scan, message = large) {
  const result = best({ ...REPS, run: () => scan(message.chunks) });
  return { mbps: mbps(message.wire.length, result.seconds), ok: result.last.terminated };
}

// (d) A whole transaction as a pipelining client sends it: EHLO; MAIL+RCPT+DATA; body; QUIT.
const TX_READS = [
  Buffer.from("EHLO client.example\r\n"),
  Buffer.from("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n"),
  small.wire,
  Buffer.from("QUIT\r\n"),
];
function transaction(Connection = ServerConnection, reads = TX_READS) {
  const conn = new Connection();
  let sent = conn.dataToSend().length;
  for (const read of reads) {
    conn.receiveData(read);
    for (;;) {
      const event = conn.nextEvent();
      if (event.type === "needData" || event.type === "closed") break;
      if (AWAITS.has(event.type)) decide(conn);
    }
    sent += conn.dataToSend().length;
  }
  return sent;
}

// (d2) The same transaction as a client without PIPELINING sends it: one command per read, each
// answered and its output taken before the next (the per-command round cost).
const ROUND_READS = [
  Buffer.from("EHLO client.example\r\n"),
  Buffer.from("MAIL FROM:<alice@example.org>\r\n"),
  Buffer.from("RCPT TO:<bob@example.net>\r\n"),
  Buffer.from("DATA\r\n"),
  small.wire,
  Buffer.from("RSET\r\n"),
  Buffer.from("NOOP\r\n"),
  Buffer.from("QUIT\r\n"),
];
const rounds = () => transaction(ServerConnection, ROUND_READS);

// SMTPKIT_BASELINE=/path/to/dist: (d) and (d2) for that build too, interleaved in this process.
const Baseline = process.env.SMTPKIT_BASELINE
  ? (
      await import(
        new URL("index.js", pathToFileURL(`${process.env.SMTPKIT_BASELINE.replace(/\/$/, "")}/`))
          .href
      )
    ).ServerConnection
  : null;

// -------------------------------------------------------------------------------------------------
// Run.

const started = performance.now();
const cpus = os.cpus();
console.log("smtpkit core DATA framing benchmark");
console.log(`node ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.arch()}`);
console.log(
  `cpu: ${cpus[0]?.model ?? "unknown"} x${cpus.length}${cpus[0]?.speed ? ` @ ${cpus[0].speed} MHz` : ""}`,
);
console.log(`engine: ${new URL("index.js", distUrl).pathname}`);
console.log(
  `data: 1 KB = ${small.wire.length} wire octets (${small.lines} lines), ` +
    `10 MB = ${large.wire.length} wire octets (${large.lines} lines, ${large.chunks.length} reads of 64 KiB), ` +
    `1 line in ${DOT_EVERY} dot-stuffed; best of ${REPS.runs} after ${REPS.warmup} warm-up${QUICK ? " (QUICK)" : ""}`,
);
console.log("");

const problems = [];
const rows = [];
const row = (label, value, note = "") => rows.push([label, value, note]);

// (a) + (b) + (c)
const e1 = engineSmall();
if (e1.ends !== BATCH || e1.out !== small.plainLength * BATCH)
  problems.push("1 KB: engine body size or bodyEnd count is wrong");
const b1 = bareSmall(bareScan);
const l1 = bareSmall(bareLfScan);
const n1 = bareSmall(bareBufferNeedleScan);
if (!b1.ok || !l1.ok || !n1.ok) problems.push("1 KB: baseline did not find the terminator");

const e10 = engineLarge();
if (!e10.end || e10.end.error !== null || e10.out !== large.plainLength)
  problems.push("10 MB allow: wrong body size or no bodyEnd");
const b10 = bareLarge(bareScan);
const l10 = bareLarge(bareLfScan);
const n10 = bareLarge(bareBufferNeedleScan);
if (!b10.ok || !l10.ok || !n10.ok) problems.push("10 MB: baseline did not find the terminator");

row(
  "(a) engine framing, 1 KB messages",
  `${e1.mbps.toFixed(0)} MB/s`,
  `${BATCH} messages per batch, one read each`,
);
row(
  "(a) engine framing, 10 MB message",
  `${e10.mbps.toFixed(0)} MB/s`,
  `${(e10.seconds * 1000).toFixed(2)} ms per message`,
);
// Deno, Bun and web streams hand out plain Uint8Arrays: then the engine's per-line indexOf is V8's
// TypedArray.prototype.indexOf rather than Node's memchr-backed Buffer.prototype.indexOf.
const plainChunks = large.chunks.map((chunk) => new Uint8Array(chunk));
const u10 = engineLarge({}, large, plainChunks);
if (!u10.end || u10.out !== large.plainLength)
  problems.push("10 MB Uint8Array: wrong body size or no bodyEnd");
row(
  "    (info) engine, 10 MB, plain Uint8Array reads",
  `${u10.mbps.toFixed(0)} MB/s`,
  "as Deno/Bun/web streams deliver them",
);
// Worst case for the framer: every line dot-stuffed, so every line becomes its own bodyChunk event.
const allDots = buildMessage(10 * 1024 * 1024, 1);
const d10 = engineLarge({}, allDots);
if (!d10.end || d10.out !== allDots.plainLength)
  problems.push("10 MB all-dots: wrong body size or no bodyEnd");
const bd10 = bareLarge(bareScan, allDots);
row(
  "    (info) engine, 10 MB, every line dot-stuffed",
  `${d10.mbps.toFixed(0)} MB/s`,
  `bare "\\r\\n" scan ${bd10.mbps.toFixed(0)} MB/s, ratio ${(d10.mbps / bd10.mbps).toFixed(2)}x`,
);
row('(b) bare Buffer.indexOf("\\r\\n"), 1 KB', `${b1.mbps.toFixed(0)} MB/s`);
row('(b) bare Buffer.indexOf("\\r\\n"), 10 MB', `${b10.mbps.toFixed(0)} MB/s`);
row(
  "    (info) bare Buffer.indexOf(CRLF buffer), 1 KB",
  `${n1.mbps.toFixed(0)} MB/s`,
  "same scan, Buffer needle",
);
row("    (info) bare Buffer.indexOf(CRLF buffer), 10 MB", `${n10.mbps.toFixed(0)} MB/s`);
row(
  "    (info) bare indexOf(LF), 1 KB",
  `${l1.mbps.toFixed(0)} MB/s`,
  "the engine's per-line primitive, same Buffers",
);
row("    (info) bare indexOf(LF), 10 MB", `${l10.mbps.toFixed(0)} MB/s`);
const r1 = e1.mbps / b1.mbps;
const r10 = e10.mbps / b10.mbps;
row(
  "(c) ratio engine / bare, 1 KB",
  `${r1.toFixed(2)}x`,
  r1 >= 0.5 ? "target >= 0.5: met" : "target >= 0.5: MISSED",
);
row(
  "(c) ratio engine / bare, 10 MB",
  `${r10.toFixed(2)}x`,
  r10 >= 0.5 ? "target >= 0.5: met" : "target >= 0.5: MISSED",
);
row(
  "    (info) ratio engine / bare LF scan, 1 KB",
  `${(e1.mbps / l1.mbps).toFixed(2)}x`,
  "against the fastest bare primitive",
);
row("    (info) ratio engine / bare LF scan, 10 MB", `${(e10.mbps / l10.mbps).toFixed(2)}x`);

// (d)
const expectedSent = transaction();
const TX = QUICK ? 500 : 5000;
const tx = best({
  ...REPS,
  run: () => {
    let sent = 0;
    for (let i = 0; i < TX; i++) sent += transaction();
    return sent;
  },
});
if (tx.last !== expectedSent * TX) problems.push("transaction: reply bytes differ between runs");
const usPerTx = (tx.seconds / TX) * 1e6;
row(
  "(d) full transaction (EHLO..QUIT, 1 KB)",
  `${usPerTx.toFixed(2)} us/tx`,
  `${Math.round(1 / (tx.seconds / TX)).toLocaleString("en-US")} tx/s, ${TX} per batch`,
);

// (d2) and the baseline
const r = best({
  ...REPS,
  run: () => {
    let sent = 0;
    for (let i = 0; i < TX; i++) sent += rounds();
    return sent;
  },
});
row(
  "(d2) per-command rounds (8 reads, 1 KB)",
  `${((r.seconds / TX) * 1e6).toFixed(2)} us/tx`,
  `${((r.seconds / TX / ROUND_READS.length) * 1e9).toFixed(0)} ns per round`,
);
if (Baseline) {
  // Interleaved: each timed run alternates the two builds, so machine noise hits both alike.
  const both = { base: [Infinity, Infinity], mine: [Infinity, Infinity] };
  for (let run = 0; run < REPS.warmup + REPS.runs; run++) {
    for (const [key, Connection] of [
      ["base", Baseline],
      ["mine", ServerConnection],
    ]) {
      for (const [slot, reads] of [TX_READS, ROUND_READS].entries()) {
        const t0 = performance.now();
        for (let i = 0; i < TX; i++) transaction(Connection, reads);
        const seconds = (performance.now() - t0) / 1000;
        if (run >= REPS.warmup) both[key][slot] = Math.min(both[key][slot], seconds);
      }
    }
  }
  const us = (seconds) => `${((seconds / TX) * 1e6).toFixed(2)} us/tx`;
  row("    (baseline) full transaction", us(both.base[0]), `this build: ${us(both.mine[0])}`);
  row("    (baseline) per-command rounds", us(both.base[1]), `this build: ${us(both.mine[1])}`);
}

// (e)
for (const lineEndings of ["normalize", "reject"]) {
  const e = engineLarge({ lineEndings });
  const correct = e.end !== null && e.end.error === null && e.out === large.plainLength;
  let value = `${e.mbps.toFixed(0)} MB/s`;
  let note = `vs allow ${(e.mbps / e10.mbps).toFixed(2)}x`;
  if (!correct) {
    // The body is wrong, so "body octets out" means nothing: show wire octets consumed per second.
    value = `${e.inMbps.toFixed(0)} MB/s in`;
    note = e.end
      ? `WRONG RESULT: bodyEnd error=${e.end.error}, ${e.out} octets out (want ${large.plainLength})`
      : `BROKEN: no bodyEnd (terminator never found), ${e.out} of ${large.plainLength} body octets out`;
    problems.push(
      `lineEndings "${lineEndings}": ${e.end ? "wrong body" : "terminator not found (see DataReader.feed)"}`,
    );
  }
  row(`(e) engine framing, 10 MB, lineEndings "${lineEndings}"`, value, note);
}

const width = Math.max(...rows.map(([label]) => label.length));
const valueWidth = Math.max(...rows.map(([, value]) => value.length));
for (const [label, value, note] of rows) {
  console.log(`${label.padEnd(width)}  ${value.padStart(valueWidth)}  ${note}`);
}
console.log("");
for (const problem of problems) console.log(`PROBLEM: ${problem}`);
console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
