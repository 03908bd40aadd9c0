/**
 * Frames a DATA body (RFC 5321 §4.1.4, §4.5.2): finds the end of data, removes transparency dots,
 * applies the line-length and size limits and the bare CR / bare LF policy, and hands body bytes out
 * as views into the received chunks.
 *
 * Security rules (SMTP smuggling, CVE-2023-51764 / CVE-2024-27305 class): a line ends only at CRLF,
 * and the only end of data is `.` CRLF at the start of a line, i.e. CRLF `.` CRLF. Bare CR and bare
 * LF never start a line, so `\n.\r\n`, `\r\n.\n`, `\n.\n` and `\r.\r` are body bytes.
 */

/** What to do with a CR not followed by LF, or an LF not preceded by CR, inside a body. */
export type LineEndingPolicy = "allow" | "normalize" | "reject";

/** Why a body was refused; the engine answers after the terminating dot (aiosmtpd's delayed reply). */
export type DataError = "lineTooLong" | "tooMuchData" | "bareLineEnding";

export interface DataReaderLimits {
  /** Maximum body size in octets (raw, with CRLFs and stuffing dots); 0 = none. */
  readonly maxSize: number;
  /** Maximum line length in octets including CRLF, before unstuffing; 0 = none. */
  readonly maxLineLength: number;
  readonly lineEndings: LineEndingPolicy;
}

const CR = 13;
const LF = 10;
const DOT = 46;
// Held or inserted line-ending bytes are fresh arrays each time: body chunks are handed out as
// mutable memory, and a consumer editing one must not affect another connection.
const crBytes = () => new Uint8Array([CR]);
const lfBytes = () => new Uint8Array([LF]);
const crlfBytes = () => new Uint8Array([CR, LF]);

enum At {
  /** Just after CRLF (or at the start of the body). */
  LineStart = 0,
  /** A line-start dot was seen and dropped. */
  Dot = 1,
  /** A line-start dot and CR were seen; the CR is held until we know it is not the terminator. */
  DotCr = 2,
  InLine = 3,
}

export class DataReader {
  private at = At.LineStart;
  private lineLength = 0;
  /** Whether the last byte seen (in any chunk) was a CR that belongs to the body. */
  private previousCr = false;
  /** Raw octets counted against the size limit. */
  size = 0;
  error: DataError | null = null;
  /** The size limit was crossed in the current line (reported when the line ends). */
  private overSize = false;
  done = false;
  /** Position of the next CR in the current chunk, cached so CR searches stay linear. */
  private nextCr = -1;

  constructor(private readonly limits: DataReaderLimits) {}

  /**
   * Consumes bytes from `chunk`, appending body views to `out`. Returns how many bytes were used:
   * all of them, or fewer when the end of data was found (the rest belongs to the next command).
   */
  feed(chunk: Uint8Array, out: Uint8Array[]): number {
    const n = chunk.length;
    const strict = this.limits.lineEndings !== "allow";
    let pos = 0;
    let segmentStart = 0;
    this.nextCr = -1;
    const emit = (end: number): void => {
      if (end > segmentStart && this.error === null && !this.overSize) {
        out.push(chunk.subarray(segmentStart, end));
      }
    };

    while (pos < n) {
      if (this.at === At.LineStart) {
        if (chunk[pos] === DOT) {
          emit(pos);
          this.at = At.Dot;
          // The dot is counted (line and size) once we know it is not the terminator.
          this.lineLength = 0;
          pos++;
          segmentStart = pos;
          continue;
        }
        this.at = At.InLine;
        this.lineLength = 0;
      } else if (this.at === At.Dot) {
        if (chunk[pos] === CR) {
          this.at = At.DotCr;
          pos++;
          segmentStart = pos;
          continue;
        }
        this.count(1);
        this.at = At.InLine;
      } else if (this.at === At.DotCr) {
        if (chunk[pos] === LF) {
          // CRLF . CRLF: the preceding CRLF is body, the dot line is not counted.
          this.done = true;
          return pos + 1;
        }
        // The held CR was a body byte of a dot-stuffed line.
        this.count(2);
        if (this.error === null && !this.overSize) out.push(crBytes());
        this.previousCr = true;
        this.at = At.InLine;
      }

      // In a line. A CR held over from the previous chunk (or the DotCr case) that is not
      // followed by LF is a bare CR.
      if (this.previousCr && pos < n && chunk[pos] !== LF && strict) {
        this.bareLineEnding(out, lfBytes);
        this.previousCr = false;
      }

      const lf = chunk.indexOf(LF, pos);
      const end = lf === -1 ? n : lf + 1;
      if (strict) {
        // Bare CRs inside [pos, end - 1): a CR whose next byte is in this segment and is not LF.
        for (;;) {
          if (this.nextCr < pos) {
            const found = chunk.indexOf(CR, pos);
            this.nextCr = found === -1 ? n : found;
          }
          const cr = this.nextCr;
          // Stop at the CR of this line's own CRLF (or past the segment): nothing bare is left.
          if (cr >= end - 1 || (lf !== -1 && cr === lf - 1)) break;
          if (chunk[cr + 1] !== LF) {
            this.count(cr + 1 - pos);
            emit(cr + 1);
            segmentStart = cr + 1;
            this.bareLineEnding(out, lfBytes);
          } else {
            this.count(cr + 1 - pos);
          }
          pos = cr + 1;
        }
      }
      this.count(end - pos);
      if (lf === -1) {
        this.previousCr = chunk[n - 1] === CR;
        pos = n;
        break;
      }
      const crlf = lf > pos ? chunk[lf - 1] === CR : this.previousCr;
      this.previousCr = false;
      pos = end;
      if (crlf) {
        this.lineEnded();
        this.at = At.LineStart;
      } else if (strict) {
        // A bare LF: in normalize mode it becomes CRLF; it never starts a new line.
        emit(lf);
        segmentStart = end;
        this.bareLineEnding(out, crlfBytes);
      }
    }
    emit(pos);
    return n;
  }

  private count(octets: number): void {
    // aiosmtpd's order: a line is too long from its 1002nd octet, even before its CRLF; the size
    // is judged when a line ends. Bytes past the size limit are dropped at once either way.
    const { maxLineLength, maxSize } = this.limits;
    this.lineLength += octets;
    this.size += octets;
    if (maxLineLength > 0 && this.lineLength > maxLineLength) this.fail("lineTooLong");
    if (maxSize > 0 && this.size > maxSize) this.overSize = true;
  }

  /** A CRLF ended a line: a size crossing in it now counts. */
  private lineEnded(): void {
    if (this.overSize) this.fail("tooMuchData");
  }

  private bareLineEnding(out: Uint8Array[], replacement: () => Uint8Array): void {
    if (this.limits.lineEndings === "reject") this.fail("bareLineEnding");
    else if (this.error === null && !this.overSize) out.push(replacement());
  }

  /** The first limit crossed wins, as in aiosmtpd; the rest of the body is discarded. */
  private fail(error: DataError): void {
    if (this.error === null) this.error = error;
  }
}
