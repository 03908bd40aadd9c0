import { hostReply, REPLIES } from "../engine/replies.js";
import { formatReply } from "../reply.js";
import type { Handler } from "./handler.js";
import { SMTP } from "./smtp.js";
import type { SmtpOptions } from "./smtp-options.js";
import type { SmtpTransport } from "./transport.js";

/** The class serving each connection: `SMTP` or a subclass (aiosmtpd's `Controller.factory`). */
export type SmtpClass = new (handler: Handler, options: SmtpOptions) => SMTP;

/** The SMTP options plus the session life cycle's; what an adapter's `serve()` passes on. */
export interface SessionPoolOptions extends SmtpOptions {
  /** Required: the adapter supplies the machine's name when the application gave none. */
  readonly hostname: string;
  /** Default `SMTP`. */
  readonly smtpClass?: SmtpClass | undefined;
  /** More simultaneous sessions get `421 4.7.0 ... too many connections` and are closed. */
  readonly maxConnections?: number | undefined;
  /** Milliseconds `close()` lets open transactions finish before aborting them. Default 30000. */
  readonly closeTimeout?: number | undefined;
  /** A connection the SMTP class could not be constructed for. Default: ignored. */
  readonly onError?: ((error: Error) => void) | undefined;
}

/**
 * The options every adapter's `serve(handler, options)` takes, whatever the runtime: the SMTP
 * options plus where to listen and the pool's policy. `Tls` is the runtime's TLS settings type.
 */
export interface ListenOptions<Tls> extends Omit<SessionPoolOptions, "hostname"> {
  readonly hostname?: string;
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Default 8025; 0 picks a free one (see `server.port`). */
  readonly port?: number;
  /** A Unix socket instead of host and port. */
  readonly path?: string;
  /** Offers STARTTLS. */
  readonly tls?: Tls;
  /** Implicit TLS (SMTPS). */
  readonly smtps?: Tls;
}

/**
 * A transport as the pool takes it. `closed`, when the adapter has it, settles once the
 * connection is closed by either side: the session's slot is then free even if a handler hook
 * still runs. Without it the session is over when `run()` returned and `close()` resolved.
 */
export type PooledTransport = SmtpTransport & { readonly closed?: Promise<void> | undefined };

/** After `abort()`, how long a session gets to write its 421 before its transport is destroyed. */
const ABORT_GRACE = 1_000;
const DEFAULT_CLOSE_TIMEOUT = 30_000;

/** One session in the pool. Kept small: a pool may hold thousands of idle sessions. */
class Live {
  ended = false;
  #waiters: (() => void)[] | null = null;
  constructor(
    readonly smtp: SMTP,
    readonly transport: SmtpTransport,
    private readonly sessions: Set<Live>,
  ) {}
  /** The session is over (transport closed or destroyed): free its slot, wake `close()`. */
  readonly end = (): void => {
    if (this.ended) return;
    this.ended = true;
    this.sessions.delete(this);
    for (const wake of this.#waiters ?? []) wake();
  };
  /** Settles when the session is over; made only when someone waits (graceful close). */
  over(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.#waiters ??= [];
    const waiters = this.#waiters;
    return new Promise((resolve) => waiters.push(resolve));
  }
}

/**
 * The session life cycle every adapter shares (aiosmtpd's `Controller` minus the listening
 * socket): one SMTP instance per connection, connection counting and `maxConnections`, and the
 * graceful `close()`. Runtime-free: an adapter accepts connections, wraps each in its
 * `SmtpTransport` and hands it to `serve()`; it stops accepting, then calls `close()`.
 */
export class SessionPool {
  readonly handler: Handler;
  /** The options every SMTP instance gets: one object, built once (per-server tables key on it). */
  readonly smtpOptions: SmtpOptions;
  readonly #smtpClass: SmtpClass;
  readonly #max: number | undefined;
  readonly #closeTimeout: number;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #sessions = new Set<Live>();
  /** Refused connections still writing their 421; destroyed at the end of `close()`. */
  readonly #refused = new Set<SmtpTransport>();
  #closing: Promise<void> | null = null;

  /** Throws when `maxConnections` or the SMTP options are bad (one instance is made to check). */
  constructor(handler: Handler, options: SessionPoolOptions) {
    const { smtpClass, maxConnections, closeTimeout, onError, ...smtp } = options;
    if (
      maxConnections !== undefined &&
      !(Number.isInteger(maxConnections) && maxConnections >= 0)
    ) {
      throw new RangeError("maxConnections must be a non-negative integer");
    }
    this.handler = handler;
    // aiosmtpd's Controller turns SMTPUTF8 on although its SMTP class defaults it off.
    this.smtpOptions = { ...smtp, enableSmtpUtf8: smtp.enableSmtpUtf8 ?? true };
    this.#smtpClass = smtpClass ?? SMTP;
    this.#max = maxConnections;
    this.#closeTimeout = closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.#onError = onError;
    // Bad options throw now, not at the first connection (aiosmtpd's Controller connects to
    // itself for the same reason).
    new this.#smtpClass(handler, this.smtpOptions);
  }

  /** Sessions open now (refused connections do not count). */
  get size(): number {
    return this.#sessions.size;
  }

  /** True once `close()` was called: connections served from then on are dropped. */
  get closing(): boolean {
    return this.#closing !== null;
  }

  /**
   * Serves one connection: refuses it with `421 4.7.0` when the pool is full, else runs a session
   * on it. Settles when the session is over and the transport closed. Never rejects. Aborting
   * `signal` shuts this session down gracefully (`SMTP.shutdown()`).
   */
  serve(transport: PooledTransport, options?: { signal?: AbortSignal | undefined }): Promise<void> {
    if (this.#closing) {
      transport.destroy();
      return Promise.resolve();
    }
    if (this.#max !== undefined && this.#sessions.size >= this.#max) return this.#refuse(transport);
    let smtp: SMTP;
    try {
      smtp = new this.#smtpClass(this.handler, this.smtpOptions);
    } catch (error) {
      transport.destroy();
      this.#onError?.(error as Error);
      return Promise.resolve();
    }
    const live = new Live(smtp, transport, this.#sessions);
    this.#sessions.add(live);
    // The slot is free once the transport is closed, even if a hook is still running.
    const closed = transport.closed;
    if (typeof closed?.then === "function") closed.then(live.end, live.end);
    // run() never rejects and closes the transport itself when the session ends.
    const done = smtp.run(transport).then(live.end);
    const signal = options?.signal;
    if (signal) {
      const stop = (): void => smtp.shutdown();
      if (signal.aborted) stop();
      else {
        signal.addEventListener("abort", stop, { once: true });
        void done.then(() => signal.removeEventListener("abort", stop));
      }
    }
    return done;
  }

  /**
   * Graceful shutdown of every session: idle ones get 421 at once, a transaction in progress
   * completes first (`SMTP.shutdown()`); after `timeout` ms (default `closeTimeout`) the rest are
   * aborted (`SMTP.abort()`), and transports still open a second later are destroyed. Resolves
   * when every session is over. Idempotent; connections served afterwards are dropped.
   */
  close(options: { timeout?: number | undefined } = {}): Promise<void> {
    this.#closing ??= this.#drain(options.timeout ?? this.#closeTimeout);
    return this.#closing;
  }

  async #drain(timeout: number): Promise<void> {
    const sessions = [...this.#sessions];
    const over = Promise.all(sessions.map((live) => live.over()));
    for (const live of sessions) live.smtp.shutdown();
    if (!(await settles(over, timeout))) {
      for (const live of sessions) live.smtp.abort();
      if (!(await settles(over, ABORT_GRACE))) {
        for (const live of sessions) {
          live.transport.destroy();
          // A handler that ignores its abort signal may keep run() going; the session is over.
          live.end();
        }
      }
    }
    for (const transport of this.#refused) transport.destroy();
    await over;
  }

  async #refuse(transport: SmtpTransport): Promise<void> {
    this.#refused.add(transport);
    try {
      this.smtpOptions.observer?.limit?.({ session: null, limit: "maxConnections", code: 421 });
    } catch {
      // An observer's failure does not change the refusal.
    }
    try {
      await transport.write(tooManyConnectionsReply(this.smtpOptions.hostname ?? "localhost"));
      await transport.close();
    } catch {
      transport.destroy();
    } finally {
      this.#refused.delete(transport);
    }
  }
}

/** Whether `promise` settles within `ms` milliseconds (an infinite `ms` waits as long as it takes). */
async function settles(promise: Promise<unknown>, ms: number): Promise<boolean> {
  if (ms === Number.POSITIVE_INFINITY) {
    await promise;
    return true;
  }
  let timer: unknown;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The bytes a transport sends to a connection it refuses because the server is full. */
export function tooManyConnectionsReply(hostname: string): Uint8Array {
  return ENCODER.encode(formatReply(hostReply(REPLIES.tooManyConnections, hostname)));
}

const ENCODER = new TextEncoder();
