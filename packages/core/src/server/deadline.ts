/**
 * How long a client may take, Postfix's way (`smtpd_per_record_deadline`, `smtpd_min_data_rate`):
 *
 * - a command line must arrive whole within `timeout` seconds of the wait for it starting: bytes
 *   that trickle in do not restart the clock, so a client sending one byte a second cannot hold
 *   a connection for ever;
 * - a message body starts with `dataTimeout` seconds of credit; every chunk received adds its size
 *   divided by `minDataRate` (bytes per second), never beyond `dataTimeout`, and the time spent
 *   waiting is taken off. A client faster than the minimum rate is never cut off, a slower one is.
 *
 * Waiting for the handler never counts: the clock only runs while the server waits for the client.
 * One timer serves the whole session; it is re-armed only when it fires early or a shorter wait
 * begins, so a busy session costs no timer churn.
 */
import type { SmtpOptions } from "./smtp-options.js";

const DEFAULT_TIMEOUT_SECONDS = 300;
/** RFC 5321 §4.5.3.2.5: 3 minutes for each data block. */
const DEFAULT_DATA_TIMEOUT_SECONDS = 180;
/** Postfix's `smtpd_min_data_rate` default, bytes per second. */
const DEFAULT_MIN_DATA_RATE = 500;

export class Deadline {
  /** When the current wait must end, in ms since the epoch; 0 when not waiting. */
  #at = 0;
  /** The deadline of the command line or body in progress, kept across reads of a part of it. */
  #recordAt = 0;
  #inBody = false;
  #timer: unknown = null;
  #timerAt = 0;
  #stopped = false;

  constructor(private readonly expire: () => void) {}

  /**
   * The server is about to wait for the client in this engine phase: a body, the PROXY header, or
   * a command line (or AUTH answer), of which `partial` says part is already buffered.
   */
  wait(phase: string, o: SmtpOptions, partial: boolean): void {
    if (phase === "data" || phase === "bdat") {
      this.waitForBody(o.dataTimeout ?? DEFAULT_DATA_TIMEOUT_SECONDS);
    } else if (phase === "proxy") {
      this.waitFor(o.proxyProtocolTimeout ?? DEFAULT_TIMEOUT_SECONDS);
    } else {
      this.waitForCommand(o.timeout ?? DEFAULT_TIMEOUT_SECONDS, partial);
    }
  }

  /**
   * The server is about to wait for a command line. `partial` means part of the line is already
   * buffered: its deadline goes on instead of starting again.
   */
  waitForCommand(seconds: number, partial: boolean): void {
    const now = Date.now();
    // A line already waited for keeps its deadline (`settle()` ends it once a line was taken).
    const sameLine = partial && !this.#inBody && this.#recordAt !== 0;
    if (!sameLine) this.#recordAt = now + seconds * 1000;
    this.#inBody = false;
    this.#arm(this.#recordAt, now);
  }

  /** The server is about to wait for body bytes. */
  waitForBody(seconds: number): void {
    const now = Date.now();
    if (!this.#inBody || this.#recordAt === 0) this.#recordAt = now + seconds * 1000;
    this.#inBody = true;
    this.#arm(this.#recordAt, now);
  }

  /** A wait ended with `bytes` received; inside a body they buy time at the minimum rate. */
  received(bytes: number, o: SmtpOptions): void {
    this.#at = 0;
    const minDataRate = o.minDataRate ?? DEFAULT_MIN_DATA_RATE;
    if (!this.#inBody || minDataRate <= 0) return;
    const cap = Date.now() + (o.dataTimeout ?? DEFAULT_DATA_TIMEOUT_SECONDS) * 1000;
    this.#recordAt = Math.min(this.#recordAt + (bytes / minDataRate) * 1000, cap);
  }

  /** A command line or a body was taken whole: the next wait starts a new record. */
  settle(): void {
    this.#at = 0;
    this.#recordAt = 0;
    this.#inBody = false;
  }

  /** A wait for something other than a command or body (the PROXY header, a 334 answer). */
  waitFor(seconds: number): void {
    const now = Date.now();
    this.#recordAt = 0;
    this.#inBody = false;
    this.#arm(now + seconds * 1000, now);
  }

  stop(): void {
    this.#stopped = true;
    this.#at = 0;
    if (this.#timer !== null) clearTimeout(this.#timer as number);
    this.#timer = null;
  }

  #arm(at: number, now: number): void {
    if (this.#stopped) return;
    this.#at = at;
    if (this.#timer !== null && this.#timerAt <= at) return;
    if (this.#timer !== null) clearTimeout(this.#timer as number);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - now));
  }

  readonly #fire = (): void => {
    this.#timer = null;
    if (this.#stopped || this.#at === 0) return;
    const left = this.#at - Date.now();
    if (left > 0) {
      this.#timerAt = this.#at;
      this.#timer = setTimeout(this.#fire, left);
      return;
    }
    this.#at = 0;
    this.expire();
  };
}
