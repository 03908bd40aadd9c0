/**
 * Command and AUTH line framing: finding the LF (in linear time for a trickling client), over-long
 * lines (skipped up to their LF, answered once), splitting verb and argument as aiosmtpd does,
 * the per-verb command size limits and the per-verb call limits.
 */
import { DEFAULT_CALL_LIMIT, type ResolvedOptions } from "../options.js";
import type { ByteQueue } from "../syntax/byte-queue.js";
import { type CatalogueReply, REPLIES } from "./replies.js";

/** RFC 4954 §4: AUTH command and response lines may be 12288 octets. */
export const AUTH_LINE_LIMIT = 12288;
/** Room for the CRLF after the longest allowed line. */
const CRLF_LENGTH = 2;
const LF = 10;
const CR = 13;
const AUTH_PREFIX = [97, 117, 116, 104, 32]; // "auth "

/** What `read()` found: a line, an over-long (AUTH) line, or nothing yet (`null`). */
export const LONG_LINE = 1;
export const LONG_AUTH_LINE = 2;
export type LineRead = Uint8Array | typeof LONG_LINE | typeof LONG_AUTH_LINE | null;

const UTF8 = new TextDecoder("utf-8", { fatal: true });

export class LineReader {
  /** While an over-long line is skipped up to its LF: whether it was an AUTH line. */
  private skipping: boolean | null = null;
  /** Leading buffered bytes already searched for the LF of the current line. */
  private scanned = 0;
  private callsLeft: Map<string, number> | null = null;
  /** The last split line: its verb (upper case), its argument, its length without CRLF. */
  verb = "";
  argument: string | null = null;
  lineLength = 0;

  constructor(
    private readonly input: ByteQueue,
    private readonly options: ResolvedOptions,
  ) {}

  /** Forgets the line in progress (the input was discarded). */
  reset(): void {
    this.skipping = null;
    this.scanned = 0;
  }

  /** The next line without its line ending; an AUTH response line when `authResponse`. */
  read(authResponse: boolean, extended: boolean): LineRead {
    const input = this.input;
    if (this.skipping !== null) {
      // Drop the rest of an over-long line up to its LF, then report it once.
      const end = input.indexOf(LF, input.length);
      if (end === -1) {
        input.skip(input.length);
        return null;
      }
      input.skip(end + 1);
      const wasAuth = this.skipping;
      this.skipping = null;
      return wasAuth ? LONG_AUTH_LINE : LONG_LINE;
    }
    const isAuth = authResponse || this.startsWithAuth();
    const limit = isAuth
      ? AUTH_LINE_LIMIT + CRLF_LENGTH
      : Math.max(this.options.lineLengthLimit, this.maxCommandSize("MAIL", extended) + CRLF_LENGTH);
    // Resume the LF search where the last one stopped: a client trickling one byte at a time
    // must not make each line cost quadratic time.
    const lf = input.indexOf(LF, limit, this.scanned);
    if (lf === -1) {
      this.scanned = Math.min(input.length, limit);
      if (input.length < limit) return null;
      this.scanned = 0;
      this.skipping = isAuth;
      return this.read(authResponse, extended);
    }
    this.scanned = 0;
    const raw = input.take(lf + 1);
    let end = raw.length;
    while (end > 0 && (raw[end - 1] === LF || raw[end - 1] === CR)) end--;
    return raw.subarray(0, end);
  }

  /**
   * Splits a command line into `verb` and `argument` as aiosmtpd does: the verb is everything up
   * to the first space; the argument is `null` when nothing follows that space, else the rest
   * with ASCII white space stripped at both ends (possibly ""), so `QUIT ` is `QUIT`. Returns
   * the reply for a line that cannot be a command, else `null`.
   */
  split(line: Uint8Array): CatalogueReply | null {
    this.lineLength = line.length;
    this.verb = "";
    if (line.length === 0) return REPLIES.badSyntax;
    const space = line.indexOf(32);
    const verbEnd = space === -1 ? line.length : space;
    for (let i = 0; i < verbEnd; i++) if ((line[i] as number) > 127) return REPLIES.badSyntax;
    this.verb = asciiString(line, 0, verbEnd).toUpperCase();
    this.argument = null;
    if (space === -1 || space === line.length - 1) return null;
    let start = space + 1;
    let end = line.length;
    while (start < end && isAsciiSpace(line[start] as number)) start++;
    while (end > start && isAsciiSpace(line[end - 1] as number)) end--;
    const decoded = this.decodeArgument(line.subarray(start, end));
    if (decoded === null) return this.options.smtpUtf8 ? REPLIES.badUtf8 : REPLIES.strictAscii;
    this.argument = decoded;
    return null;
  }

  private decodeArgument(bytes: Uint8Array): string | null {
    if (this.options.smtpUtf8) {
      try {
        return UTF8.decode(bytes);
      } catch {
        return null;
      }
    }
    for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) > 127) return null;
    return asciiString(bytes, 0, bytes.length);
  }

  /** Per-verb command size limit, computed per connection (aiosmtpd's grew with every EHLO). */
  maxCommandSize(verb: string, extended: boolean): number {
    if (verb === "AUTH") return AUTH_LINE_LIMIT;
    const o = this.options;
    let limit = o.commandSizeLimit;
    if (verb === "MAIL" && extended) {
      if (o.size && o.dataSizeLimit > 0) limit += 26;
      if (o.smtpUtf8) limit += 10;
      if (o.dsn) limit += 100 + 26;
      if (o.requireTlsParam) limit += 11;
    }
    if (verb === "RCPT" && extended && o.dsn) limit += 500 + 32;
    return limit;
  }

  /** aiosmtpd's per-verb `command_call_limit`; unknown verbs count too. False when used up. */
  takeCall(verb: string): boolean {
    const limits = this.options.commandCallLimit;
    if (limits === null) return true;
    this.callsLeft ??= new Map();
    let left = this.callsLeft.get(verb);
    if (left === undefined) {
      left =
        typeof limits === "number" ? limits : (limits[verb] ?? limits["*"] ?? DEFAULT_CALL_LIMIT);
    }
    if (left <= 0) return false;
    this.callsLeft.set(verb, left - 1);
    return true;
  }

  private startsWithAuth(): boolean {
    const head = this.input.head();
    if (head.length >= AUTH_PREFIX.length) {
      // `| 0x20` folds ASCII letters to lower case and leaves the space as it is.
      return (
        ((head[0] as number) | 0x20) === 97 &&
        ((head[1] as number) | 0x20) === 117 &&
        ((head[2] as number) | 0x20) === 116 &&
        ((head[3] as number) | 0x20) === 104 &&
        head[4] === 32
      );
    }
    for (let i = 0; i < AUTH_PREFIX.length; i++) {
      // `| 0x20` folds ASCII letters to lower case and leaves the space as it is.
      if ((this.input.byteAt(i) | 0x20) !== AUTH_PREFIX[i]) return false;
    }
    return true;
  }
}

/** Python's `bytes.strip()` white space: space, HT, LF, VT, FF, CR. */
function isAsciiSpace(byte: number): boolean {
  return byte === 32 || (byte >= 9 && byte <= 13);
}

/** Decodes bytes already checked to be ASCII (or where non-ASCII is rejected later anyway). */
export function asciiString(bytes: Uint8Array, start: number, end: number): string {
  // One call instead of a string built per character (command lines are at most ~12 KB, well
  // under the argument-count limit of `apply`).
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}
