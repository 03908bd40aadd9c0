import type { PeerAddress, SmtpTransport, TlsInfo } from "./transport.js";

/** What a `RawSocket` reports to the transport listening on it. */
export interface RawSocketEvents {
  /** Bytes received (the transport keeps the chunk: it must not be reused). */
  data(chunk: Uint8Array): void;
  /** The client sent FIN: no more input. */
  end(): void;
  /** After `write()` returned false: more may be written now. */
  drain(): void;
  /** Reset, TLS alert...: recorded, and the end of input. */
  error(error: Error): void;
  /** The connection is gone (either side). Repeats are ignored. */
  close(): void;
}

/**
 * One runtime's connection, push-style: the small part an adapter writes. `SocketTransport` does
 * the rest (pull reads, buffering and backpressure, write queueing, linger close, the STARTTLS
 * handshake timeout and the discard of plaintext received before it).
 */
export interface RawSocket {
  readonly peer: PeerAddress | null;
  readonly local: PeerAddress | null;
  /** Called once; events are delivered from then on, never from inside this call. */
  listen(events: RawSocketEvents): void;
  /** Stop reading (TCP then pushes back on the client); a few chunks may still come. */
  pause(): void;
  resume(): void;
  /** Takes every byte; false: wait for `drain` before writing more. */
  write(data: Uint8Array): boolean;
  /** Sends FIN once the writes are out (TLS: close_notify first). */
  end(): void;
  /** Closes at once (with the plaintext socket below a TLS one). */
  destroy(): void;
  /**
   * The server side of a TLS handshake on this connection (absent: no STARTTLS). Returns at once
   * the encrypted socket, which gets its own `listen()`, and the handshake, resolving when done
   * (the transport watches the new socket's `end`/`error`/`close` and the timeout). Plaintext this
   * socket still holds may be handed to its `data` during or after the call: it is discarded.
   */
  readonly startTls?:
    | (() => { readonly socket: RawSocket; readonly handshake: Promise<TlsInfo> })
    | undefined;
}

export interface SocketTransportOptions {
  /** Implicit TLS: the connection was encrypted from the start (no STARTTLS then). */
  readonly tls?: TlsInfo | null | undefined;
  /** Milliseconds for the STARTTLS handshake. Default 120000. */
  readonly handshakeTimeout?: number | undefined;
  /** Milliseconds `close()` waits for the client's FIN before destroying. Default 5000. */
  readonly lingerTimeout?: number | undefined;
}

/** Bytes buffered while nobody reads before the raw socket is paused. */
const HIGH_WATER_MARK = 64 * 1024;
const DEFAULT_HANDSHAKE_TIMEOUT = 120_000;
const DEFAULT_LINGER = 5_000;
const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY = new Uint8Array(0);

interface PendingWrite {
  /** Empty once handed to the socket (then resolved at the next drain). */
  data: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The `SmtpTransport` every adapter shares, over its runtime's `RawSocket`. Reading is pull-based:
 * received chunks wait here until `read()` asks, and past 64 KiB the raw socket is paused, so a
 * session that stops reading stops TCP. `write()` resolves while the runtime takes more, else at
 * its `drain`.
 */
export class SocketTransport implements SmtpTransport {
  readonly peer: PeerAddress | null;
  readonly local: PeerAddress | null;
  readonly canStartTls: boolean;
  /** Settles when the connection is closed (by either side); the pool frees the slot then. */
  readonly closed: Promise<void>;
  /** Plaintext bytes dropped by `startTls()`: received before the handshake, never read (RFC 3207 §6). */
  discardedBytes = 0;
  /** The first error the socket reported (reset, TLS alert, handshake timeout...), for diagnostics. */
  error: Error | null = null;
  #raw: RawSocket;
  #tls: TlsInfo | null;
  readonly #handshakeTimeout: number;
  readonly #lingerTimeout: number;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #waiter: ((chunk: Uint8Array | null) => void) | null = null;
  /** No more input: FIN, error, or our close(). */
  #ended = false;
  readonly #outbox: PendingWrite[] = [];
  #wantDrain = false;
  #upgrading = false;
  /** During startTls(): the plaintext socket, whose data is discarded from then on. */
  #plain: RawSocket | null = null;
  #failHandshake: ((error: Error) => void) | null = null;
  #closing: Promise<void> | null = null;
  #closed = false;
  #markClosed: () => void = noop;

  constructor(raw: RawSocket, options: SocketTransportOptions = {}) {
    this.#raw = raw;
    this.#tls = options.tls ?? null;
    this.#handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    this.#lingerTimeout = options.lingerTimeout ?? DEFAULT_LINGER;
    this.canStartTls = this.#tls === null && typeof raw.startTls === "function";
    this.peer = raw.peer;
    this.local = raw.local;
    this.closed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
    this.#listen(raw);
  }

  get tls(): TlsInfo | null {
    return this.#tls;
  }

  /** The raw socket carrying the session now (the encrypted one after STARTTLS). */
  get raw(): RawSocket {
    return this.#raw;
  }

  /** Received bytes waiting for `read()`. */
  get bufferedBytes(): number {
    return this.#queued;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#waiter) return Promise.reject(new Error("read() is already pending"));
    if (!this.#upgrading) {
      const chunk = this.#queue.shift();
      if (chunk) {
        this.#queued -= chunk.length;
        if (this.#paused && this.#queued < HIGH_WATER_MARK) {
          this.#paused = false;
          this.#raw.resume();
        }
        return Promise.resolve(chunk);
      }
      if (this.#ended) return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#closing || this.#closed) {
      return Promise.reject(this.error ?? new Error("the connection is closed"));
    }
    if (data.length === 0) return RESOLVED;
    if (!this.#wantDrain && this.#outbox.length === 0) {
      if (this.#raw.write(data)) return RESOLVED;
      this.#wantDrain = true;
      data = EMPTY;
    }
    return new Promise((resolve, reject) => this.#outbox.push({ data, resolve, reject }));
  }

  async startTls(): Promise<TlsInfo> {
    if (!this.canStartTls) throw new Error("STARTTLS is not configured");
    if (this.#tls !== null) throw new Error("the connection is already encrypted");
    if (this.#upgrading) throw new Error("startTls() is already in progress");
    if (this.#ended || this.#closing || this.#closed) throw new Error("the connection is closed");
    this.#upgrading = true;
    const plain = this.#raw;
    this.#plain = plain;
    try {
      await this.#flushed();
      if (this.#ended) throw new Error("the connection is closed");
    } catch (error) {
      this.#upgrading = false;
      this.#plain = null;
      throw error;
    }
    // RFC 3207 §6 (CVE-2024-34083 class): plaintext received before the handshake and not yet
    // returned by read() must never be taken as TLS or as commands.
    for (const chunk of this.#queue.splice(0)) this.discardedBytes += chunk.length;
    this.#queued = 0;
    if (this.#paused) {
      this.#paused = false;
      plain.resume();
    }
    let timer: unknown;
    const failed = new Promise<never>((_, reject) => {
      this.#failHandshake = reject;
      timer = setTimeout(
        () => reject(new Error("TLS handshake timed out")),
        this.#handshakeTimeout,
      );
    });
    try {
      const upgrade = (plain.startTls as NonNullable<RawSocket["startTls"]>).call(plain);
      this.#raw = upgrade.socket;
      this.#listen(upgrade.socket);
      this.#tls = await Promise.race([upgrade.handshake, failed]);
    } catch (error) {
      this.error ??= error as Error;
      this.#upgrading = false;
      this.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
      this.#failHandshake = null;
      this.#plain = null;
    }
    this.#upgrading = false;
    const waiter = this.#waiter;
    const chunk = this.#queue.shift();
    if (waiter && chunk) {
      this.#waiter = null;
      this.#queued -= chunk.length;
      waiter(chunk);
    } else if (chunk) this.#queue.unshift(chunk);
    return this.#tls;
  }

  /** Flushes, sends FIN, drops input until the client hangs up (at most the linger time). */
  close(): Promise<void> {
    this.#closing ??= this.#linger();
    return this.#closing;
  }

  destroy(): void {
    this.#stopInput();
    this.#raw.destroy();
    this.#onClose();
  }

  async #linger(): Promise<void> {
    this.#stopInput();
    if (this.#closed) return;
    const timer = setTimeout(() => this.destroy(), this.#lingerTimeout);
    (timer as { unref?: () => void }).unref?.();
    try {
      await this.#flushed();
      this.#raw.end();
      // Keep reading (and dropping) so the client's FIN is seen and the socket can close.
      if (this.#paused) this.#raw.resume();
      this.#paused = false;
      await this.closed;
    } catch {
      this.destroy();
    } finally {
      clearTimeout(timer);
    }
  }

  #listen(raw: RawSocket): void {
    const current = (): boolean => raw === this.#raw;
    raw.listen({
      data: (chunk) => {
        if (raw === this.#plain) this.discardedBytes += chunk.length;
        else if (current()) this.#onData(chunk);
      },
      end: () => current() && this.#endOfInput(null),
      drain: () => current() && this.#onDrain(),
      error: (error) => {
        if (!current()) return;
        this.error ??= error;
        this.#endOfInput(error);
      },
      close: () => current() && this.#onClose(),
    });
  }

  #onData(chunk: Uint8Array): void {
    if (this.#ended) return;
    const waiter = this.#waiter;
    if (waiter && !this.#upgrading) {
      this.#waiter = null;
      waiter(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued >= HIGH_WATER_MARK && !this.#paused) {
      this.#paused = true;
      this.#raw.pause();
    }
  }

  #onDrain(): void {
    this.#wantDrain = false;
    while (!this.#wantDrain) {
      const next = this.#outbox.shift();
      if (!next) return;
      if (next.data.length > 0 && !this.#raw.write(next.data)) {
        this.#wantDrain = true;
        next.data = EMPTY;
        this.#outbox.unshift(next);
        return;
      }
      next.resolve();
    }
  }

  /** Resolves when every queued write was taken by the runtime. */
  #flushed(): Promise<void> {
    if (!this.#wantDrain && this.#outbox.length === 0) return RESOLVED;
    return new Promise((resolve, reject) => this.#outbox.push({ data: EMPTY, resolve, reject }));
  }

  /** FIN or error: what is buffered may still be read, then `null`. */
  #endOfInput(error: Error | null): void {
    this.#ended = true;
    this.#failHandshake?.(error ?? new Error("the connection closed during the TLS handshake"));
    const waiter = this.#waiter;
    if (waiter === null || this.#queue.length > 0) return;
    this.#waiter = null;
    waiter(null);
  }

  /** Our close() or destroy(): nothing more is read. */
  #stopInput(): void {
    this.#queue.length = 0;
    this.#queued = 0;
    this.#endOfInput(null);
  }

  #onClose(): void {
    this.#endOfInput(null);
    if (this.#closed) return;
    this.#closed = true;
    const closed = this.error ?? new Error("the connection is closed");
    for (const pending of this.#outbox.splice(0)) pending.reject(closed);
    this.#markClosed();
  }
}

/**
 * A `PeerAddress` from what runtimes report: family `"unix"` (address = the path, or `""`),
 * `"IPv4"`/`"IPv6"` (guessed from the address when the runtime gives none); `null` when unknown.
 */
export function peerAddress(
  address: string | null | undefined,
  port?: number | null,
  family?: string | null,
): PeerAddress | null {
  if (family === "unix") return { address: address ?? "", port: 0, family };
  if (!address) return null;
  const known = family === "IPv4" || family === "IPv6";
  return {
    address,
    port: port ?? 0,
    family: known ? family : address.includes(":") ? "IPv6" : "IPv4",
  };
}

function noop(): void {}
