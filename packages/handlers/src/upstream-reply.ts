/**
 * The client side's reply reader: bytes from an upstream SMTP server in, whole replies out.
 * Lines end at LF (a CR before it is dropped); a reply is its `NNN-` lines and the final `NNN `
 * line. Every line and every reply has a limit, so a server that never ends a line or a reply
 * cannot make this side hold unbounded input.
 */
import { parseReply, type Reply } from "@smtpkit/core";

export interface ReplyReaderLimits {
  /** Bytes per reply line, CRLF included. RFC 5321 §4.5.3.1.5 says 512; default 2048. */
  readonly maxLineLength?: number;
  /** Lines per reply (an EHLO reply is one line per extension). Default 128. */
  readonly maxLines?: number;
}

/** The upstream broke the reply syntax or a limit; the connection cannot go on. */
export class UpstreamProtocolError extends Error {
  readonly code = "EPROTOCOL";
}

const LF = 0x0a;
const CR = 0x0d;
const UTF8 = new TextDecoder("utf-8");

export class ReplyReader {
  readonly #maxLineLength: number;
  readonly #maxLines: number;
  /** The partial line: chunks not yet ended by LF. */
  #partial: Uint8Array[] = [];
  #partialLength = 0;
  /** The lines of the reply being read (all but its last). */
  #lines: string[] = [];
  #failed: UpstreamProtocolError | null = null;

  constructor(limits: ReplyReaderLimits = {}) {
    this.#maxLineLength = limits.maxLineLength ?? 2048;
    this.#maxLines = limits.maxLines ?? 128;
  }

  /** The complete replies in `data`; throws `UpstreamProtocolError` (and keeps throwing) on bad input. */
  push(data: Uint8Array): Reply[] {
    if (this.#failed) throw this.#failed;
    const out: Reply[] = [];
    let start = 0;
    while (start < data.length) {
      const lf = data.indexOf(LF, start);
      const end = lf === -1 ? data.length : lf;
      const length = this.#partialLength + (end - start) + (lf === -1 ? 0 : 1);
      if (length > this.#maxLineLength) return this.#fail("reply line too long");
      if (lf === -1) {
        this.#partial.push(data.subarray(start));
        this.#partialLength += data.length - start;
        break;
      }
      const line = this.#takeLine(data.subarray(start, lf));
      start = lf + 1;
      const reply = this.#line(line);
      if (reply) out.push(reply);
    }
    return out;
  }

  /** True when part of a reply has been read but not its end. */
  get pending(): boolean {
    return this.#partialLength > 0 || this.#lines.length > 0;
  }

  #takeLine(tail: Uint8Array): string {
    let bytes = tail;
    if (this.#partial.length > 0) {
      bytes = new Uint8Array(this.#partialLength + tail.length);
      let offset = 0;
      for (const part of this.#partial) {
        bytes.set(part, offset);
        offset += part.length;
      }
      bytes.set(tail, offset);
      this.#partial = [];
      this.#partialLength = 0;
    }
    const length =
      bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
    return UTF8.decode(bytes.subarray(0, length));
  }

  #line(line: string): Reply | null {
    const match = /^([2-5]\d\d)([ -]|$)/.exec(line);
    if (!match) return this.#fail(`not a reply line: ${JSON.stringify(line.slice(0, 80))}`);
    if (this.#lines.length > 0 && !this.#lines[0]?.startsWith(match[1] as string)) {
      return this.#fail("reply lines with different codes");
    }
    this.#lines.push(line);
    if (match[2] === "-") {
      if (this.#lines.length >= this.#maxLines) return this.#fail("too many reply lines");
      return null;
    }
    const text = this.#lines.join("\n");
    this.#lines = [];
    const reply = parseReply(text);
    if (!reply) return this.#fail("unparsable reply");
    return reply;
  }

  #fail(why: string): never {
    this.#failed = new UpstreamProtocolError(`Upstream protocol error: ${why}`);
    throw this.#failed;
  }
}
