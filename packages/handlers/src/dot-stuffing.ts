/**
 * A message body as DATA sends it (RFC 5321 §4.5.2), on a stream: every line ending becomes CRLF
 * (a bare LF gets its CR; a bare CR is kept, as received), a line that starts with `.` gets a
 * second one, and `end()` closes with CRLF `.` CRLF (after a CRLF of its own when the body does not
 * end with one). Chunks with nothing to change pass through without a copy.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Uint8Array.of(CR, LF);
const DOT_BYTE = Uint8Array.of(DOT);
const END = Uint8Array.of(DOT, CR, LF);
const CRLF_END = Uint8Array.of(CR, LF, DOT, CR, LF);

export class DotStuffer {
  /** The next byte starts a line. */
  #lineStart = true;
  /** The last byte written was a CR. */
  #afterCr = false;
  #empty = true;

  /** `chunk` encoded: the original where nothing changes, else its parts. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length === 0) return [];
    this.#empty = false;
    const out: Uint8Array[] = [];
    let from = 0;
    let changed = false;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (this.#lineStart && byte === DOT) {
        if (i > from) out.push(chunk.subarray(from, i));
        out.push(DOT_BYTE);
        from = i;
        changed = true;
      } else if (byte === LF && !this.#afterCr) {
        if (i > from) out.push(chunk.subarray(from, i));
        out.push(CRLF);
        from = i + 1;
        changed = true;
      }
      this.#lineStart = byte === LF;
      this.#afterCr = byte === CR;
    }
    if (!changed) return [chunk];
    if (from < chunk.length) out.push(chunk.subarray(from));
    return out;
  }

  /** The end of the body: the terminating line, preceded by a CRLF when the body needs one. */
  end(): Uint8Array {
    return this.#lineStart || this.#empty ? END : CRLF_END;
  }
}
