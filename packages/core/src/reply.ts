/**
 * SMTP replies: one value type, one formatter, one parser. Every byte of every reply the engine
 * sends goes through `formatReply`, so multi-line framing and enhanced codes live in one place.
 */

/** An SMTP reply: a three-digit code, an optional RFC 3463 enhanced code, one or more text lines. */
export interface Reply {
  readonly code: number;
  /** `"2.1.0"`; `undefined` lets the engine fill in a default when ENHANCEDSTATUSCODES is on. */
  readonly enhanced?: string | undefined;
  readonly lines: readonly string[];
}

/** What callers may pass wherever a reply is expected: a `Reply` or aiosmtpd's `"250 OK"` form. */
export type ReplyLike = Reply | string;

const ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3}$/;
const CRLF_OR_LF = /\r?\n/;

export function reply(code: number, text: string | readonly string[], enhanced?: string): Reply {
  return { code, enhanced, lines: typeof text === "string" ? [text] : [...text] };
}

/**
 * Parses aiosmtpd-style reply strings: `"250 OK"`, `"550 5.1.1 No such user"`, or multi-line
 * `"250-first\r\n250 last"`. An enhanced code in the text is recognised and kept separate.
 * Returns `null` for anything that is not a reply (no three-digit code in 200..599).
 */
export function parseReply(text: string): Reply | null {
  const rawLines = text.replace(/\r?\n$/, "").split(CRLF_OR_LF);
  let code = 0;
  let enhanced: string | undefined;
  const lines: string[] = [];
  for (const [i, raw] of rawLines.entries()) {
    const match = /^([2-5]\d\d)(?:([- ])(.*))?$/s.exec(raw);
    if (!match) return null;
    const lineCode = Number(match[1]);
    if (i === 0) code = lineCode;
    else if (lineCode !== code) return null;
    let body = match[3] ?? "";
    const first = body.split(" ", 1)[0] ?? "";
    if (ENHANCED_CODE.test(first) && first[0] === String(code)[0]) {
      if (i === 0) enhanced = first;
      body = body.slice(first.length + 1);
    }
    lines.push(body);
  }
  return { code, enhanced, lines };
}

/** Accepts either reply form; throws `TypeError` for a malformed string (a caller bug). */
export function toReply(value: ReplyLike): Reply {
  if (typeof value !== "string") {
    const candidate = value as Partial<Reply> | null;
    const valid =
      typeof candidate === "object" &&
      candidate !== null &&
      Number.isInteger(candidate.code) &&
      (candidate.code as number) >= 200 &&
      (candidate.code as number) <= 599 &&
      Array.isArray(candidate.lines) &&
      candidate.lines.every((line) => typeof line === "string");
    if (!valid) throw new TypeError(`Not an SMTP reply: ${String(value)}`);
    return value;
  }
  const parsed = parseReply(value);
  if (!parsed) throw new TypeError(`Not an SMTP reply: ${JSON.stringify(value)}`);
  return parsed;
}

/**
 * Formats a reply for the wire, the only place replies become text: multi-line framing, and the
 * enhanced code (when the reply has one) on every line, as RFC 2034 asks.
 */
export function formatReply(value: Reply): string {
  const prefix = value.enhanced ? `${value.enhanced} ` : "";
  const lines = value.lines.length > 0 ? value.lines : [""];
  let out = "";
  for (let i = 0; i < lines.length; i++) {
    // A line that itself contains CR or LF would let a hook inject a reply: keep it on one line.
    const text = printable((lines[i] ?? "").replace(/[\r\n]+/g, " "));
    const separator = i === lines.length - 1 ? " " : "-";
    out += `${value.code}${separator}${prefix}${text}\r\n`;
  }
  return out;
}

/**
 * Reply text is printable: RFC 5321 §4.2 allows printable US-ASCII and HT (and UTF-8 under
 * SMTPUTF8), but replies echo what the client sent (`Could not VRFY <arg>`, an unknown verb).
 * Every control character (C0 but HT, DEL, C1) becomes a readable escape, `\x1b`, so no control
 * byte from a client (or a hook) reaches the wire, a terminal or a log. This is the only place.
 */
export function printable(text: string): string {
  let out: string | null = null;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 0x20 && c < 0x7f) || c === 9 || c > 0x9f) continue;
    out = `${out ?? ""}${text.slice(from, i)}\\x${c.toString(16).padStart(2, "0")}`;
    from = i + 1;
  }
  return out === null ? text : out + text.slice(from);
}

/** The default enhanced code for a reply without one: the class digit plus the context's detail. */
export function defaultEnhancedCode(code: number, context: EnhancedContext): string {
  const cls = Math.floor(code / 100);
  if (cls === 2) {
    if (context === "mail") return "2.1.0";
    if (context === "rcpt") return "2.1.5";
    if (context === "data") return "2.0.0";
    return "2.0.0";
  }
  if (cls === 3) return "";
  if (context === "mail") return `${cls}.1.0`;
  if (context === "rcpt") return `${cls}.1.1`;
  if (code === 552) return `${cls}.3.4`;
  if (code === 421) return "4.4.2";
  return `${cls}.0.0`;
}

export type EnhancedContext = "mail" | "rcpt" | "data" | "other";
