import type { Handler } from "./handler.js";
import { type ListenOptions, SessionPool } from "./session-pool.js";
import { type RawSocket, SocketTransport } from "./socket-transport.js";
import { CurrentCertificates, type SniOptions } from "./tls-config.js";
import type { TlsInfo } from "./transport.js";

/** A runtime's listening socket, once bound: the small part an adapter writes. */
export interface RawListener {
  /** The bound TCP address; `null` for a Unix socket. */
  readonly address: { readonly host: string; readonly port: number } | null;
  /** Stops accepting; resolves once the runtime let go of the listener. */
  close(): Promise<void>;
}

/** What `SmtpListener` reads from the runtime's TLS settings besides the runtime's own keys. */
export interface ListenTlsOptions {
  /** Milliseconds for a handshake (STARTTLS, SMTPS). Default 120000. */
  readonly handshakeTimeout?: number | undefined;
}

const DEFAULT_HOST = "127.0.0.1";
const DEFAULT_PORT = 8025;
const DEFAULT_HANDSHAKE_TIMEOUT = 120_000;

/**
 * The server shell every adapter's `SmtpServer` shares (aiosmtpd's `Controller`): `listen()`,
 * the graceful `close()`, the address getters and the connection count, over a `SessionPool`.
 * A subclass binds the runtime's listener in `bind()` and hands each connection to `accept()`.
 */
export abstract class SmtpListener<Tls extends ListenTlsOptions, Context = unknown> {
  readonly handler: Handler;
  protected readonly options: ListenOptions<Tls>;
  /** The certificates of `smtps` (else `tls`) new handshakes get; `setTls()` swaps them. */
  protected readonly certificates: CurrentCertificates<Tls, Context> | null;
  readonly #pool: SessionPool;
  #bound: RawListener | null = null;
  #binding: Promise<this> | null = null;
  #closing: Promise<void> | null = null;
  /** SMTPS connections still in their handshake: destroyed by `close()`. */
  readonly #handshakes = new Set<RawSocket>();

  /**
   * Throws when the options are bad (the SMTP class is constructed once to check, every
   * certificate is built with `buildTls`: the runtime's context for one SNI entry).
   */
  constructor(
    handler: Handler,
    options: ListenOptions<Tls>,
    defaultHostname: () => string,
    buildTls?: (entry: Tls) => Context,
  ) {
    if (options.path !== undefined && options.port !== undefined) {
      throw new TypeError("give either a port or a Unix socket path, not both");
    }
    const { host: _h, port: _p, path: _u, tls: _t, smtps: _s, ...pool } = options;
    this.handler = handler;
    this.options = options;
    this.#pool = new SessionPool(handler, {
      ...pool,
      hostname: pool.hostname ?? defaultHostname(),
    });
    const tls = options.smtps ?? options.tls;
    this.certificates =
      tls && buildTls ? new CurrentCertificates(tls as Tls & SniOptions<object>, buildTls) : null;
  }

  /**
   * Replaces the certificates (and the options of `tls.sni` entries) for the STARTTLS or SMTPS
   * handshakes from now on; open sessions keep theirs. Builds everything first: a bad key or
   * certificate throws and the current ones stay.
   */
  setTls(tls: Tls): void {
    if (!this.certificates) throw new Error("TLS is not configured: give serve() `tls` or `smtps`");
    this.certificates.replace(tls as Tls & SniOptions<object>);
    this.certificatesReplaced();
  }

  /** Called after `setTls()`: for a runtime whose TLS listener keeps a context of its own. */
  protected certificatesReplaced(): void {}

  /** Binds the runtime's listener (host/port or path from `options`); rejects when it cannot. */
  protected abstract bind(): Promise<RawListener>;

  /** The address listened on (after `listen()`), else the configured host; `""` for a Unix socket. */
  get host(): string {
    if (this.options.path !== undefined) return "";
    return this.#bound?.address?.host ?? this.options.host ?? DEFAULT_HOST;
  }

  /** The port listened on (the real one after `listen()` with port 0); 0 for a Unix socket. */
  get port(): number {
    if (this.options.path !== undefined) return 0;
    return this.#bound?.address?.port ?? this.options.port ?? DEFAULT_PORT;
  }

  get path(): string | undefined {
    return this.options.path;
  }

  /** Sessions open now (refused connections do not count). */
  get connections(): number {
    return this.#pool.size;
  }

  get listening(): boolean {
    return this.#bound !== null && this.#closing === null;
  }

  /** Starts listening; resolves once bound (rejects on an address in use and the like). */
  listen(): Promise<this> {
    if (this.#closing) return Promise.reject(new Error("the server is closed"));
    this.#binding ??= this.bind().then(
      (bound) => {
        this.#bound = bound;
        return this;
      },
      (error: unknown) => {
        this.#binding = null;
        throw error;
      },
    );
    return this.#binding;
  }

  /**
   * Graceful shutdown: stops accepting, asks every session to finish (`SMTP.shutdown()`: idle
   * ones get 421 at once, a transaction in progress completes first), and after `timeout` ms
   * (default `closeTimeout`) aborts the rest and destroys their connections. Resolves when every
   * connection is closed. Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options);
    return this.#closing;
  }

  /**
   * Serves one accepted connection. `tls` is set for implicit TLS (SMTPS): the TLS info, or the
   * handshake still running, which gets the `smtps` handshake timeout.
   */
  protected accept(socket: RawSocket, tls?: TlsInfo | Promise<TlsInfo> | null): void {
    if (this.#closing) return socket.destroy();
    if (tls instanceof Promise) {
      void this.#secured(socket, tls);
      return;
    }
    const transport = new SocketTransport(socket, {
      tls: tls ?? null,
      handshakeTimeout: this.options.tls?.handshakeTimeout,
    });
    void this.#pool.serve(transport);
  }

  async #secured(socket: RawSocket, handshake: Promise<TlsInfo>): Promise<void> {
    this.#handshakes.add(socket);
    let timer: unknown;
    const timeout = this.options.smtps?.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    const expired = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeout);
    });
    const info = await Promise.race([handshake.catch(() => null), expired]);
    clearTimeout(timer);
    if (!this.#handshakes.delete(socket)) return; // close() destroyed it
    // A failed or timed-out handshake: nothing to answer.
    if (info === null) return socket.destroy();
    this.accept(socket, info);
  }

  async #shutdown(options: { timeout?: number }): Promise<void> {
    const binding = this.#binding;
    const bound = binding
      ? await binding.then(
          () => this.#bound,
          () => null,
        )
      : null;
    const stopped = bound ? bound.close() : Promise.resolve();
    for (const socket of this.#handshakes) socket.destroy();
    this.#handshakes.clear();
    await this.#pool.close(options);
    await stopped;
  }
}
