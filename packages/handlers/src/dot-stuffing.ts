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
    const length = chunk.length;
    if (length === 0) return [];
    this.#empty = false;
    const out: Uint8Array[] = [];
    let from = 0;
    let changed = false;
    if (this.#lineStart && chunk[0] === DOT) {
      out.push(DOT_BYTE);
      changed = true;
    }
    // Only the bytes around each LF matter: indexOf finds them without a loop over every byte.
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, lf + 1)) {
      const afterCr = lf > 0 ? chunk[lf - 1] === CR : this.#afterCr;
      if (!afterCr) {
        if (lf > from) out.push(chunk.subarray(from, lf));
        out.push(CRLF);
        from = lf + 1;
        changed = true;
      }
      if (lf + 1 < length && chunk[lf + 1] === DOT) {
        if (lf + 1 > from) out.push(chunk.subarray(from, lf + 1));
        out.push(DOT_BYTE);
        from = lf + 1;
        changed = true;
      }
    }
    const last = chunk[length - 1];
    this.#lineStart = last === LF;
    this.#afterCr = last === CR;
    if (!changed) return [chunk];
    if (from < length) out.push(chunk.subarray(from));
    return out;
  }

  /** The end of the body: the terminating line, preceded by a CRLF when the body needs one. */
  end(): Uint8Array {
    return this.#lineStart || this.#empty ? END : CRLF_END;
  }
}
