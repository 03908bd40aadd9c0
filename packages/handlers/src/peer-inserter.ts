/**
 * aiosmtpd's `Proxy` insertion of `X-Peer: <peer host>`, on a stream: the line goes just before
 * the first empty line, with that line's ending; when there is no empty line, before the last
 * line, with CRLF (and at the start of an empty message). Lines end at CRLF, CR or LF, as Python's
 * `bytes.splitlines()`. Until the insertion point, one line is held back; after it, chunks pass
 * through untouched.
 */

const CR = 0x0d;
const LF = 0x0a;
const ENCODER = new TextEncoder();

export class PeerInserter {
  readonly #text: string;
  #done = false;
  /** The current line (not emitted yet): partial, or complete but possibly the last one. */
  #line: Uint8Array[] = [];
  #lineComplete = false;
  /** The current line ends with a CR whose LF may be in the next chunk. */
  #crPending = false;
  /** An empty line began with a CR at the end of the previous chunk. */
  #emptyCr = false;

  /** `host` is the peer's address (aiosmtpd: `session.peer[0]`). */
  constructor(host: string) {
    this.#text = `X-Peer: ${host.replace(/[\r\n]+/g, " ")}`;
  }

  #field(ending: string): Uint8Array {
    return ENCODER.encode(`${this.#text}${ending}`);
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#done) return chunk.length > 0 ? [chunk] : [];
    const out: Uint8Array[] = [];
    let i = 0;
    if (this.#emptyCr && chunk.length > 0) {
      this.#emptyCr = false;
      this.#done = true;
      out.push(this.#field(chunk[0] === LF ? "\r\n" : "\r"), Uint8Array.of(CR), chunk);
      return out;
    }
    while (i < chunk.length) {
      if (this.#crPending) {
        this.#crPending = false;
        if (chunk[i] === LF) {
          this.#line.push(Uint8Array.of(LF));
          i++;
        }
        this.#lineComplete = true;
        continue;
      }
      if (this.#lineComplete) {
        // More bytes follow, so the held line is not the last one.
        out.push(...this.#line);
        this.#line = [];
        this.#lineComplete = false;
        continue;
      }
      if (this.#line.length === 0) {
        const first = chunk[i];
        if (first === LF || first === CR) {
          if (first === CR && i + 1 === chunk.length) {
            this.#emptyCr = true;
            return out;
          }
          const ending = first === LF ? "\n" : chunk[i + 1] === LF ? "\r\n" : "\r";
          this.#done = true;
          out.push(this.#field(ending), chunk.subarray(i));
          return out;
        }
      }
      const end = lineEnd(chunk, i);
      if (end === -1) {
        this.#line.push(chunk.slice(i));
        break;
      }
      if (chunk[end] === LF) {
        this.#line.push(chunk.slice(i, end + 1));
        this.#lineComplete = true;
        i = end + 1;
      } else if (end + 1 < chunk.length) {
        const next = chunk[end + 1] === LF ? end + 2 : end + 1;
        this.#line.push(chunk.slice(i, next));
        this.#lineComplete = true;
        i = next;
      } else {
        this.#line.push(chunk.slice(i));
        this.#crPending = true;
        break;
      }
    }
    return out;
  }

  end(): Uint8Array[] {
    if (this.#done) return [];
    this.#done = true;
    if (this.#emptyCr) return [this.#field("\r"), Uint8Array.of(CR)];
    const line = this.#line;
    this.#line = [];
    // No empty line: before the last line (which may be partial), or alone in an empty message.
    return [this.#field("\r\n"), ...line];
  }
}

function lineEnd(chunk: Uint8Array, from: number): number {
  const lf = chunk.indexOf(LF, from);
  const cr = chunk.indexOf(CR, from);
  if (cr === -1) return lf;
  if (lf === -1) return cr;
  return Math.min(cr, lf);
}
