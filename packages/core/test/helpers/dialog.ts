/**
 * A test driver for the sans-IO engine, in the spirit of h11's test helpers: feed client bytes
 * (optionally split into chunks of given sizes), answer every event that awaits a decision with a
 * policy callback, and collect the server's output and the events. Adjacent `bodyChunk` events are
 * merged, so assertions never depend on how the input was chunked.
 *
 * Data is fed only when the engine asks for it (`needData`), as a transport with backpressure would.
 */

import { ServerConnection } from "../../src/engine/connection.js";
import type { SmtpEvent } from "../../src/events.js";
import type { ConnectionOptions } from "../../src/options.js";

export const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** Bytes from a string whose code points are all < 256 (a Python bytes literal). */
export function bin(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 255) throw new RangeError(`bin(): code point ${code} at ${i} is not a byte`);
    out[i] = code;
  }
  return out;
}

/** The reverse of `bin`: one character per byte. */
export function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x2000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x2000));
  }
  return text;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** What one step of a dialog does. Strings are sent as bytes (code points < 256 only). */
export type Part =
  | string
  | Uint8Array
  /** The TLS handshake after STARTTLS finished: calls `tlsEstablished()`. */
  | { readonly tls: true; readonly accepted?: boolean }
  /** The client closed its side: `receiveData(empty)`. */
  | { readonly eof: true }
  /** Anything else done to the connection between inputs (e.g. `closeConnection()`). */
  | { readonly act: (conn: ServerConnection) => void };

/**
 * Answers an event that awaits a decision: it calls accept()/challenge()/completeAuth()/runBuiltin(),
 * or returns "defer" to leave the event pending (the driver stops until `resume()`).
 */
export type Policy = (event: SmtpEvent, conn: ServerConnection, dialog: Dialog) => void | "defer";

/** A policy that answers nothing: every awaiting event is left pending. */
export const deferAll: Policy = () => "defer";

/** `\0user\0password` (RFC 4616 PLAIN) is the one credential the default policy accepts. */
export const GOOD_PLAIN = "\0user\0password";
export const GOOD_PLAIN_B64 = btoa(GOOD_PLAIN);

/**
 * The default policy: `accept()` (the engine's default behaviour, aiosmtpd's "no hook"), the
 * built-in for replaced commands, and for AUTH a PLAIN check of `GOOD_PLAIN` (an empty challenge
 * when there is no initial response).
 */
export const defaultPolicy: Policy = (event, conn) => {
  switch (event.type) {
    case "auth":
      if (event.initialResponse === null) conn.challenge("");
      else conn.completeAuth(latin1(event.initialResponse) === GOOD_PLAIN);
      return;
    case "authResponse":
      conn.completeAuth(latin1(event.response) === GOOD_PLAIN);
      return;
    case "command":
      if (event.builtin) conn.runBuiltin();
      else conn.accept();
      return;
    default:
      conn.accept();
  }
};

/** Policy from a table of per-event-type answers; types missing from it get the default policy. */
export function policy(table: { readonly [K in SmtpEvent["type"]]?: Policy }): Policy {
  return (event, conn, dialog) => {
    const answer = table[event.type];
    return answer ? answer(event, conn, dialog) : defaultPolicy(event, conn, dialog);
  };
}

/** Whether the engine's documentation says this event leaves the connection awaiting a reply. */
export function awaitsReply(event: SmtpEvent): boolean {
  switch (event.type) {
    case "proxyHeader":
    case "hello":
    case "mail":
    case "rcpt":
    case "rset":
    case "noop":
    case "quit":
    case "vrfy":
    case "auth":
    case "authResponse":
    case "command":
    case "xclient":
    case "xforward":
      return true;
    case "bodyEnd":
      return event.error === null;
    default:
      return false;
  }
}

export interface DialogOptions {
  readonly options?: ConnectionOptions | undefined;
  /** Chunk sizes for byte parts, used in turn (cycled); default: each part in one chunk. */
  readonly chunks?: number | readonly number[] | undefined;
  readonly policy?: Policy | undefined;
  /** Upper bound on `nextEvent()` calls before the driver declares the engine stuck. */
  readonly maxSteps?: number | undefined;
}

/** Why the driver stopped: the engine wants input, is paused for TLS, closed, or an answer was deferred. */
export type DrainStatus = "needData" | "paused" | "closed" | "deferred";

/** One connection under test. */
export class Dialog {
  readonly conn: ServerConnection;
  /** Every event except needData/paused, in order, as returned (bodyChunk not merged). */
  readonly rawEvents: SmtpEvent[] = [];
  /** Decoded server output so far. */
  output = "";
  /** Number of `nextEvent()` calls so far. */
  steps = 0;
  /** Largest `bufferedBytes` seen right after a `receiveData()`. */
  maxBuffered = 0;
  /** Largest chunk handed to `receiveData()`. */
  maxChunk = 0;
  status: DrainStatus = "needData";
  private readonly policy: Policy;
  private readonly sizes: readonly number[] | null;
  private sizeIndex = 0;
  private readonly maxSteps: number;
  /** Raw output chunks, as dataToSend() returned them. */
  readonly outputBytes: Uint8Array[] = [];

  constructor(options: DialogOptions = {}) {
    this.conn = new ServerConnection(options.options ?? {});
    this.policy = options.policy ?? defaultPolicy;
    const chunks = options.chunks;
    this.sizes = chunks === undefined ? null : typeof chunks === "number" ? [chunks] : chunks;
    if (this.sizes?.some((size) => !(size >= 1))) throw new RangeError("chunk sizes must be >= 1");
    this.maxSteps = options.maxSteps ?? 1_000_000;
    this.drain();
  }

  /** Feeds one part and runs the engine until it needs data, pauses or closes; returns new output. */
  send(part: Part): string {
    const before = this.output.length;
    if (typeof part === "string" || part instanceof Uint8Array) {
      const bytes = typeof part === "string" ? bin(part) : part;
      let at = 0;
      while (at < bytes.length) {
        if (this.status === "closed") break;
        if (this.status === "deferred")
          throw new Error("send() while an answer is deferred: call resume()");
        const size = this.nextSize(bytes.length - at);
        // A fresh copy per chunk: the engine may keep views into it.
        this.feed(bytes.slice(at, at + size));
        at += size;
      }
    } else if ("tls" in part) {
      this.conn.tlsEstablished(part.accepted === undefined ? {} : { accepted: part.accepted });
      this.drain();
    } else if ("eof" in part) {
      this.conn.receiveData(new Uint8Array(0));
      this.drain();
    } else {
      part.act(this.conn);
      this.drain();
    }
    return this.output.slice(before);
  }

  /** Continues after a deferred answer was given by the test; returns new output. */
  resume(): string {
    const before = this.output.length;
    this.drain();
    return this.output.slice(before);
  }

  /** Sends text lines, each with CRLF, in one part. */
  lines(...lines: string[]): string {
    return this.send(lines.map((line) => `${line}\r\n`).join(""));
  }

  /** Events with adjacent bodyChunk events merged into one (a copy). */
  get events(): SmtpEvent[] {
    return mergeBodyChunks(this.rawEvents);
  }

  /** The merged body bytes of every message, in order (one entry per bodyEnd). */
  get bodies(): string[] {
    const bodies: string[] = [];
    let current: Uint8Array[] = [];
    for (const event of this.rawEvents) {
      if (event.type === "bodyChunk") current.push(event.data);
      if (event.type === "bodyEnd") {
        bodies.push(latin1(concat(current)));
        current = [];
      }
    }
    return bodies;
  }

  /** Output as reply lines without CRLF. */
  get replyLines(): string[] {
    return splitLines(this.output);
  }

  get closedReason(): string | null {
    const last = this.rawEvents[this.rawEvents.length - 1];
    return last?.type === "closed" ? last.reason : null;
  }

  private nextSize(left: number): number {
    if (!this.sizes) return left;
    const size = this.sizes[this.sizeIndex % this.sizes.length] ?? left;
    this.sizeIndex++;
    return Math.min(size, left);
  }

  private feed(chunk: Uint8Array): void {
    this.conn.receiveData(chunk);
    this.maxChunk = Math.max(this.maxChunk, chunk.length);
    this.maxBuffered = Math.max(this.maxBuffered, this.conn.bufferedBytes);
    this.drain();
  }

  private drain(): void {
    for (;;) {
      if (++this.steps > this.maxSteps)
        throw new Error(`engine did not settle within ${this.maxSteps} steps`);
      const event = this.conn.nextEvent();
      if (event.type === "needData" || event.type === "paused") {
        this.status = event.type;
        break;
      }
      this.rawEvents.push(event);
      if (event.type === "closed") {
        this.status = "closed";
        break;
      }
      if (awaitsReply(event)) {
        if (this.conn.phase !== "reply") {
          throw new Error(
            `${event.type} is documented to await a reply, but the phase is ${this.conn.phase}`,
          );
        }
        // A policy that neither answers nor defers makes the next nextEvent() throw LocalProtocolError.
        if (this.policy(event, this.conn, this) === "defer") {
          this.status = "deferred";
          break;
        }
      }
      this.collect();
    }
    this.collect();
  }

  private collect(): void {
    const bytes = this.conn.dataToSend();
    if (bytes.length > 0) {
      this.outputBytes.push(bytes);
      this.output += DECODER.decode(bytes);
    }
  }
}

/** Runs a whole dialog: parts in order, then returns the driver for inspection. */
export function dialog(parts: Part | readonly Part[], options: DialogOptions = {}): Dialog {
  const d = new Dialog(options);
  const list: readonly Part[] = Array.isArray(parts) ? parts : [parts as Part];
  for (const part of list) {
    if (d.status === "closed" && (typeof part === "string" || part instanceof Uint8Array)) break;
    d.send(part);
  }
  return d;
}

export function mergeBodyChunks(events: readonly SmtpEvent[]): SmtpEvent[] {
  const merged: SmtpEvent[] = [];
  let pending: Uint8Array[] = [];
  const flush = () => {
    if (pending.length > 0) merged.push({ type: "bodyChunk", data: concat(pending) });
    pending = [];
  };
  for (const event of events) {
    if (event.type === "bodyChunk") {
      if (event.data.length > 0) pending.push(event.data);
      continue;
    }
    flush();
    merged.push(event);
  }
  flush();
  return merged;
}

export function splitLines(output: string): string[] {
  if (output === "") return [];
  const lines = output.split("\r\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** The reply codes (first line of each reply) in an output string. */
export function replyCodes(output: string): number[] {
  return splitLines(output)
    .filter((line) => /^\d{3} /.test(line))
    .map((line) => Number(line.slice(0, 3)));
}

// -------------------------------------------------------------------------------------------------
// Golden transcripts.
//
// Format of test/golden/*.smtp files:
//
//   # comment                  ignored, as are blank lines
//   === title                  starts a section (one connection); everything below belongs to it
//   @options {json}            ConnectionOptions (before the first section: defaults for the file)
//   @modes enhanced plain      modes to run (default both): "plain" adds
//                              extensions.enhancedStatusCodes = false
//   @policy name               a named policy (see GOLDEN_POLICIES in golden.test.ts)
//   C: text                    the client sends text + CRLF
//   B: text                    the client sends raw bytes, no CRLF added; escapes \r \n \t \\ \xHH,
//                              and {{N*text}} repeats text N times
//   S: line                    the server sends line + CRLF; a "[x.y.z] " part is sent only in
//                              enhanced mode
//   S(enhanced): line          a server line sent only in enhanced mode
//   S(plain): line             a server line sent only in plain mode
//   !tls                       the TLS handshake completes (tlsEstablished())
//   !tls-refused               ... but the program refuses it (tlsEstablished({ accepted: false }))
//   !eof                       the client closes its side
//   !closed reason             the engine has closed the session, for this reason
//
// Server lines are checked after each action (C:, B:, !tls, !eof) against the lines that follow
// it, so a transcript pins both the text and the moment of every reply.

export type Mode = "enhanced" | "plain";

export type GoldenStep =
  | { readonly kind: "send"; readonly bytes: Uint8Array; readonly source: string }
  | { readonly kind: "tls"; readonly accepted: boolean }
  | { readonly kind: "eof" }
  | { readonly kind: "closed"; readonly reason: string }
  | {
      readonly kind: "server";
      readonly line: string;
      readonly modes: readonly Mode[];
      readonly source: string;
    };

export interface GoldenSection {
  readonly file: string;
  readonly title: string;
  readonly options: ConnectionOptions;
  readonly modes: readonly Mode[];
  readonly policy: string | null;
  readonly steps: readonly GoldenStep[];
}

export function unescapeBytes(text: string): Uint8Array {
  const expanded = text.replace(/\{\{(\d+)\*(.*?)\}\}/g, (_m, count: string, unit: string) =>
    unit.repeat(Number(count)),
  );
  const out: number[] = [];
  for (let i = 0; i < expanded.length; i++) {
    const c = expanded[i] as string;
    if (c !== "\\") {
      const code = expanded.charCodeAt(i);
      if (code > 255) throw new RangeError(`non-byte character in B: line: ${c}`);
      out.push(code);
      continue;
    }
    const next = expanded[++i];
    if (next === "r") out.push(13);
    else if (next === "n") out.push(10);
    else if (next === "t") out.push(9);
    else if (next === "\\") out.push(92);
    else if (next === "x") {
      out.push(Number.parseInt(expanded.slice(i + 1, i + 3), 16));
      i += 2;
    } else throw new SyntaxError(`bad escape \\${next}`);
  }
  return Uint8Array.from(out);
}

export function parseGolden(file: string, text: string): GoldenSection[] {
  const sections: GoldenSection[] = [];
  let fileOptions: ConnectionOptions = {};
  let current: {
    title: string;
    options: ConnectionOptions;
    modes: Mode[];
    policy: string | null;
    steps: GoldenStep[];
  } | null = null;
  const flush = () => {
    if (current) sections.push({ file, ...current });
  };
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const where = `${file}:${index + 1}`;
    if (raw.trim() === "" || raw.startsWith("#")) continue;
    if (raw.startsWith("=== ")) {
      flush();
      current = {
        title: raw.slice(4).trim(),
        options: fileOptions,
        modes: ["enhanced", "plain"],
        policy: null,
        steps: [],
      };
      continue;
    }
    if (raw.startsWith("@options ")) {
      const options = JSON.parse(raw.slice(9)) as ConnectionOptions;
      if (current) current.options = mergeOptions(current.options, options);
      else fileOptions = mergeOptions(fileOptions, options);
      continue;
    }
    if (!current) throw new SyntaxError(`${where}: line outside a section: ${raw}`);
    if (raw.startsWith("@modes ")) {
      current.modes = raw.slice(7).trim().split(/\s+/) as Mode[];
    } else if (raw.startsWith("@policy ")) {
      current.policy = raw.slice(8).trim();
    } else if (raw.startsWith("C: ") || raw === "C:") {
      current.steps.push({ kind: "send", bytes: bin(`${raw.slice(3)}\r\n`), source: where });
    } else if (raw.startsWith("B: ")) {
      current.steps.push({ kind: "send", bytes: unescapeBytes(raw.slice(3)), source: where });
    } else if (raw === "!tls" || raw === "!tls-refused") {
      current.steps.push({ kind: "tls", accepted: raw === "!tls" });
    } else if (raw === "!eof") {
      current.steps.push({ kind: "eof" });
    } else if (raw.startsWith("!closed")) {
      current.steps.push({ kind: "closed", reason: raw.slice(7).trim() });
    } else {
      const match = /^S(?:\((enhanced|plain)\))?: (.*)$/.exec(raw);
      if (!match) throw new SyntaxError(`${where}: cannot read line: ${raw}`);
      const modes: Mode[] = match[1] ? [match[1] as Mode] : ["enhanced", "plain"];
      current.steps.push({ kind: "server", line: match[2] as string, modes, source: where });
    }
  }
  flush();
  return sections;
}

export function mergeOptions(base: ConnectionOptions, extra: ConnectionOptions): ConnectionOptions {
  return {
    ...base,
    ...extra,
    ...(base.extensions || extra.extensions
      ? { extensions: { ...base.extensions, ...extra.extensions } }
      : {}),
    ...(base.auth || extra.auth
      ? { auth: { ...base.auth, ...extra.auth } as NonNullable<ConnectionOptions["auth"]> }
      : {}),
  };
}

export function optionsFor(section: GoldenSection, mode: Mode): ConnectionOptions {
  return mode === "plain"
    ? mergeOptions(section.options, { extensions: { enhancedStatusCodes: false } })
    : section.options;
}

/** The expected server line in a mode: `[x.y.z] ` kept (without brackets) or dropped. */
export function expectedLine(line: string, mode: Mode): string {
  return line.replace(/\[([245]\.\d{1,3}\.\d{1,3})\] /, mode === "enhanced" ? "$1 " : "");
}

export interface StepCheck {
  readonly after: string;
  readonly expected: string;
  readonly actual: string;
}

/**
 * Runs a section one action at a time. Returns, for every action, the output expected after it and
 * the output actually produced, plus close-reason checks as pseudo outputs.
 */
export function runGoldenStepwise(
  section: GoldenSection,
  mode: Mode,
  policyFn?: Policy,
): StepCheck[] {
  const d = new Dialog({
    options: optionsFor(section, mode),
    ...(policyFn ? { policy: policyFn } : {}),
  });
  const checks: StepCheck[] = [];
  let after = "connect";
  let actual = d.output;
  let expected = "";
  const flush = () => {
    checks.push({ after, expected, actual });
    expected = "";
  };
  for (const step of section.steps) {
    switch (step.kind) {
      case "server":
        if (step.modes.includes(mode)) expected += `${expectedLine(step.line, mode)}\r\n`;
        break;
      case "closed":
        checks.push({
          after: `${after} (close reason)`,
          expected: step.reason,
          actual: d.closedReason ?? "(open)",
        });
        break;
      case "send":
        flush();
        after = `${step.source} ${JSON.stringify(latin1(step.bytes).slice(0, 60))}`;
        actual = d.status === "closed" ? "(connection closed)" : d.send(step.bytes);
        break;
      case "tls":
        flush();
        after = step.accepted ? "!tls" : "!tls-refused";
        actual = d.send({ tls: true, accepted: step.accepted });
        break;
      case "eof":
        flush();
        after = "!eof";
        actual = d.send({ eof: true });
        break;
    }
  }
  flush();
  return checks;
}

/** The client's bytes of a section as segments separated by the TLS/EOF markers. */
export function goldenParts(section: GoldenSection): Part[] {
  const parts: Part[] = [];
  let bytes: Uint8Array[] = [];
  const flush = () => {
    if (bytes.length > 0) parts.push(concat(bytes));
    bytes = [];
  };
  for (const step of section.steps) {
    if (step.kind === "send") bytes.push(step.bytes);
    else if (step.kind === "tls") {
      flush();
      parts.push({ tls: true, accepted: step.accepted });
    } else if (step.kind === "eof") {
      flush();
      parts.push({ eof: true });
    }
  }
  flush();
  return parts;
}

/** All expected output of a section in a mode. */
export function goldenOutput(section: GoldenSection, mode: Mode): string {
  let out = "";
  for (const step of section.steps) {
    if (step.kind === "server" && step.modes.includes(mode))
      out += `${expectedLine(step.line, mode)}\r\n`;
  }
  return out;
}

/** The last close reason a section asserts, or null when it ends open. */
export function goldenCloseReason(section: GoldenSection): string | null {
  let reason: string | null = null;
  for (const step of section.steps) if (step.kind === "closed") reason = step.reason;
  return reason;
}

/**
 * Runs client lines through a connection one at a time and returns the C:/S: transcript, the
 * format of the golden files (handy to read a dialog, and for inline transcript assertions).
 */
export function transcript(clientLines: readonly string[], options: DialogOptions = {}): string {
  const d = new Dialog(options);
  let text = prefixed("S: ", d.output);
  for (const line of clientLines) {
    if (d.status === "closed") break;
    text += `C: ${line}\n`;
    text += prefixed("S: ", d.send(`${line}\r\n`));
  }
  return text;
}

function prefixed(prefix: string, output: string): string {
  return splitLines(output)
    .map((line) => `${prefix}${line}\n`)
    .join("");
}
