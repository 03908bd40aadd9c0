/**
 * Adding header fields at the end of a message's header section, as Python's `email` package does
 * for aiosmtpd's `Message.prepare_message()` (`message["X-Peer"] = ...` appends a field, and the
 * generator writes the fields, an empty line, then the body). Works on a stream: only the first
 * bytes of the line being classified are ever held back.
 *
 * The header section ends where Python's (compat32) feed parser ends it: at the first empty line
 * (consumed as the separator), or at the first line that is not a header field (a field name
 * followed by `:`, a continuation line starting with a space or tab, or a `From ` line), which
 * then starts the body; Python's generator puts an empty line before it, and so does this.
 * `From ` lines in the header section (mbox's envelope line) are dropped, as Python drops them.
 */

import { concatBytes } from "@smtpkit/core";

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const COLON = 0x3a;
const FROM_SPACE = [0x46, 0x72, 0x6f, 0x6d, 0x20]; // "From "
/** A field name longer than this is taken for a body line (bounds what is held back). */
const MAX_NAME = 64 * 1024;

const ENCODER = new TextEncoder();

export type LineEnding = "\r\n" | "\n" | "\r";

/**
 * The header lines to add: `fields` with the message's own line ending (that of its first line,
 * CRLF when there is none), each value kept on one line.
 */
export function headerLines(fields: readonly (readonly [string, string])[], ending: LineEnding) {
  let text = "";
  for (const [name, value] of fields) text += `${name}: ${value.replace(/[\r\n]+/g, " ")}${ending}`;
  return ENCODER.encode(text);
}

type LineState = "start" | "header" | "cr";

/** Streaming insertion of header fields: `push()` each chunk, then `end()`. */
export class HeaderInserter {
  readonly #fields: readonly (readonly [string, string])[];
  #inHeaders = true;
  #state: LineState = "start";
  /** Bytes of the current line (not yet classified) from earlier chunks. */
  #held: Uint8Array[] = [];
  /** How many bytes of the current line have been examined. */
  #examined = 0;
  #fromPrefix = true;
  #ending: LineEnding | null = null;
  #sawHeader = false;
  /** Inside a `From ` line, which is dropped. */
  #skipping = false;

  /** Fields to put before the message (trace fields: `Received:`), not yet written. */
  #lead: Uint8Array | null;

  /**
   * `fields` go at the end of the header section; `prepend` fields before the first line (the
   * trace fields' place), with CRLF, the line ending SMTP carries messages with.
   */
  constructor(
    fields: readonly (readonly [string, string])[],
    prepend: readonly (readonly [string, string])[] = [],
  ) {
    this.#fields = fields;
    this.#lead = prepend.length > 0 ? headerLines(prepend, "\r\n") : null;
    // Only prepending: the header section need not be looked at.
    if (fields.length === 0 && prepend.length > 0) this.#inHeaders = false;
  }

  /** Whether the fields have been inserted (the header section is over). */
  get done(): boolean {
    return !this.#inHeaders && this.#lead === null;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const lead = this.#lead;
    if (lead === null) return this.#push(chunk);
    this.#lead = null;
    return [lead, ...this.#push(chunk)];
  }

  #push(chunk: Uint8Array): Uint8Array[] {
    if (!this.#inHeaders || chunk.length === 0) return chunk.length === 0 ? [] : [chunk];
    const out: Uint8Array[] = [];
    /** Start of the bytes of this chunk not yet emitted. */
    let emitFrom = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === "cr") {
        if (chunk[i] === LF) {
          this.#noteEnding("\r\n");
          i++;
        } else {
          this.#noteEnding("\r");
        }
        this.#state = "start";
        if (this.#skipping) {
          emitFrom = i;
          this.#skipping = false;
        }
        continue;
      }
      if (this.#state === "header") {
        const next = findLineEnd(chunk, i);
        if (next === -1) {
          i = chunk.length;
          if (this.#skipping) emitFrom = i;
          break;
        }
        if (chunk[next] === LF) {
          this.#noteEnding("\n");
          i = next + 1;
          this.#state = "start";
        } else if (next + 1 < chunk.length) {
          this.#noteEnding(chunk[next + 1] === LF ? "\r\n" : "\r");
          i = chunk[next + 1] === LF ? next + 2 : next + 1;
          this.#state = "start";
        } else {
          i = next + 1;
          this.#state = "cr";
        }
        if (this.#skipping) {
          emitFrom = i;
          if (this.#state === "start") this.#skipping = false;
        }
        continue;
      }
      // At the start of a line (or inside its still unclassified first bytes).
      if (this.#examined === 0 && this.#held.length === 0 && i > emitFrom) {
        out.push(chunk.subarray(emitFrom, i));
        emitFrom = i;
      }
      const kind = this.#classify(chunk, i);
      if (kind === "more") {
        // The whole rest of the chunk belongs to the unclassified line: hold it back.
        this.#held.push(chunk.slice(emitFrom));
        return out;
      }
      const lineEnd = kind.at;
      if (kind.type === "header" || kind.type === "from") {
        if (kind.type === "from") {
          // Python keeps a `From ` line out of the header fields (the first as the "unix from",
          // later ones as defects) and its generator does not write it back: drop it.
          this.#skipping = true;
          emitFrom = lineEnd;
        } else {
          this.#sawHeader = true;
          out.push(...this.#held);
        }
        this.#held = [];
        this.#examined = 0;
        this.#fromPrefix = true;
        this.#state = "header";
        i = lineEnd;
        continue;
      }
      // The header section ends before this line.
      if (this.#ending === null && kind.type === "empty") {
        this.#ending = chunk[lineEnd] === LF ? "\n" : "\r\n";
      }
      out.push(this.#insertion(kind.type === "body"));
      out.push(...this.#held);
      this.#held = [];
      this.#inHeaders = false;
      out.push(chunk.subarray(emitFrom));
      return out;
    }
    if (this.#held.length === 0 && emitFrom < chunk.length) out.push(chunk.subarray(emitFrom));
    return out;
  }

  /** The end of the message: inserts the fields if the header section never ended. */
  end(): Uint8Array[] {
    const lead = this.#lead;
    this.#lead = null;
    return lead === null ? this.#end() : [lead, ...this.#end()];
  }

  #end(): Uint8Array[] {
    if (!this.#inHeaders) return [];
    this.#inHeaders = false;
    const out: Uint8Array[] = [];
    if (this.#state === "cr") this.#noteEnding("\r");
    if (this.#state === "header" && !this.#skipping) {
      // A last header line without a line ending: end it first.
      out.push(ENCODER.encode(this.#lineEnding()));
      out.push(this.#insertion(true));
    } else if (this.#held.length > 0) {
      // A last, unterminated line that never showed itself to be a header field: the body.
      out.push(this.#insertion(true), ...this.#held);
    } else {
      out.push(this.#insertion(true));
    }
    this.#held = [];
    return out;
  }

  #lineEnding(): LineEnding {
    return this.#ending ?? "\r\n";
  }

  #noteEnding(ending: LineEnding): void {
    if (this.#ending === null && this.#sawHeader) this.#ending = ending;
  }

  #insertion(withSeparator: boolean): Uint8Array {
    const ending = this.#lineEnding();
    const lines = headerLines(this.#fields, ending);
    if (!withSeparator) return lines;
    const separator = ENCODER.encode(ending);
    const out = new Uint8Array(lines.length + separator.length);
    out.set(lines);
    out.set(separator, lines.length);
    return out;
  }

  /**
   * Examines the bytes of the current line from `chunk[i]` on: a header field line (and where
   * its classification stopped), an empty line, a body line, or "more" when the chunk ended first.
   */
  #classify(
    chunk: Uint8Array,
    i: number,
  ): "more" | { type: "header" | "from" | "empty" | "body"; at: number } {
    for (let j = i; j < chunk.length; j++) {
      const byte = chunk[j] as number;
      const k = this.#examined++;
      if (k === 0) {
        if (byte === CR || byte === LF) return { type: "empty", at: j };
        if (byte === SP || byte === TAB) return { type: "header", at: j + 1 };
      }
      if (this.#fromPrefix && k < FROM_SPACE.length) {
        if (byte !== FROM_SPACE[k]) this.#fromPrefix = false;
        else if (k === FROM_SPACE.length - 1) return { type: "from", at: j + 1 };
      }
      if (byte === COLON) return { type: "header", at: j + 1 };
      // Field-name characters: printable US-ASCII except the colon.
      if (byte < 0x21 || byte > 0x7e || this.#examined > MAX_NAME) return { type: "body", at: j };
    }
    return "more";
  }
}

function findLineEnd(chunk: Uint8Array, from: number): number {
  const lf = chunk.indexOf(LF, from);
  const cr = chunk.indexOf(CR, from);
  if (cr === -1) return lf;
  if (lf === -1) return cr;
  return Math.min(cr, lf);
}

/** `HeaderInserter` over a whole message at once. */
export function insertHeaders(
  content: Uint8Array,
  fields: readonly (readonly [string, string])[],
  prepend: readonly (readonly [string, string])[] = [],
): Uint8Array {
  const inserter = new HeaderInserter(fields, prepend);
  return concatBytes([...inserter.push(content), ...inserter.end()]);
}
