import { hostname } from "node:os";
import type { Handler, ListenOptions, TlsInfo } from "@smtpkit/core/server";
import { SessionPool } from "@smtpkit/core/server";
import {
  type BunSocket,
  BunTransport,
  type SocketData,
  type StartTlsOptions,
  socketHandlers,
  tlsInfo,
} from "./bun-transport.ts";

export type { SmtpClass } from "@smtpkit/core/server";

/** Bun's TLS options (PEM `key` and `cert` at least) plus the handshake timeout (ms). */
export interface TlsServerOptions extends Bun.TLSOptions {
  readonly key: string | string[];
  readonly cert: string | string[];
  readonly handshakeTimeout?: number;
}

/** The options every adapter takes (core's `ListenOptions`), with this runtime's TLS settings. */
export type ServeOptions = ListenOptions<TlsServerOptions>;

/** Bun's own TLS options: ours without `handshakeTimeout`. */
function bunTls({ handshakeTimeout: _, ...tls }: TlsServerOptions): Bun.TLSOptions {
  return tls;
}

/** An SMTP server on `Bun.listen`: @smtpkit/node's `SmtpServer` for Bun. */
export class SmtpServer implements AsyncDisposable {
  /** Set by `listen()`. */
  listener: Bun.SocketListener | null = null;
  #closing: Promise<void> | null = null;
  /** SMTPS sockets still in their handshake, with their timeout. */
  readonly #handshakes = new Map<BunSocket, ReturnType<typeof setTimeout>>();
  /** The sessions (core): SMTP options with aiosmtpd's Controller defaults, maxConnections, close. */
  readonly #pool: SessionPool;
  readonly #startTls: StartTlsOptions | undefined;

  constructor(
    readonly handler: Handler,
    private readonly options: ServeOptions = {},
  ) {
    const { host: _host, port: _port, path: _path, tls, smtps: _smtps, ...pool } = options;
    this.#pool = new SessionPool(handler, { ...pool, hostname: pool.hostname ?? hostname() });
    this.#startTls = tls && { tls: bunTls(tls), handshakeTimeout: tls.handshakeTimeout };
  }

  /** The address listened on, after `listen()` ("" for a Unix socket). */
  get host(): string {
    return this.options.path === undefined ? (this.listener?.hostname ?? "") : "";
  }

  /** The port listened on, after `listen()` (the real one with port 0; 0 for a Unix socket). */
  get port(): number {
    return this.options.path === undefined ? (this.listener?.port ?? 0) : 0;
  }

  /** Sessions open now (refused connections do not count). */
  get connections(): number {
    return this.#pool.size;
  }

  /** Starts listening; rejects when the address is taken and the like. */
  async listen(): Promise<this> {
    if (this.#closing) throw new Error("the server is closed");
    if (this.listener) return this;
    const { path, smtps, host = "127.0.0.1", port = 8025 } = this.options;
    this.listener = Bun.listen<SocketData>({
      ...(path === undefined ? { hostname: host, port } : { unix: path }),
      ...(smtps ? { tls: bunTls(smtps) } : {}),
      allowHalfOpen: true, // a client's FIN ends its input; our replies still go out
      socket: {
        ...socketHandlers,
        open: (socket) => this.#open(socket),
        // Sockets of a TLS listener have no transport until their handshake is done.
        handshake: (socket, success, error) =>
          socket.data?.transport
            ? socketHandlers.handshake?.(socket, success, error)
            : this.#secured(socket, success),
        close: (socket, error) =>
          socket.data?.transport ? socketHandlers.close?.(socket, error) : this.#secured(socket),
      },
    });
    return this;
  }

  /**
   * Graceful shutdown: stops accepting; idle sessions get 421 at once, a transaction completes
   * first; after `timeout` ms (default `closeTimeout`) the rest are aborted. Resolves when every
   * session's socket is closed. Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(options: { timeout?: number }): Promise<void> {
    this.listener?.stop(false);
    for (const socket of this.#handshakes.keys()) socket.terminate();
    return this.#pool.close(options);
  }

  #open(socket: BunSocket): void {
    socket.data = { transport: null, layer: 0 };
    if (this.#closing) return socket.terminate();
    const smtps = this.options.smtps;
    if (!smtps) return void this.#accept(socket, null);
    const timeout = smtps.handshakeTimeout ?? 120_000;
    this.#handshakes.set(
      socket,
      setTimeout(() => socket.terminate(), timeout),
    );
  }

  /** An SMTPS handshake ended (or the socket closed before it did). */
  #secured(socket: BunSocket, success = false): void {
    clearTimeout(this.#handshakes.get(socket));
    if (!this.#handshakes.delete(socket)) return;
    if (!success) return socket.terminate();
    void this.#accept(socket, tlsInfo(socket, true));
  }

  #accept(socket: BunSocket, tls: TlsInfo | null): Promise<void> {
    const unixPath = this.options.path;
    const secure = tls ? { tls } : { startTls: this.#startTls };
    return this.#pool.serve(new BunTransport(socket, { ...secure, unixPath }));
  }
}

/** Creates an SMTP server and resolves once it listens (`new SmtpServer()` + `listen()`). */
export function serve(handler: Handler, options: ServeOptions = {}): Promise<SmtpServer> {
  return Promise.resolve()
    .then(() => new SmtpServer(handler, options))
    .then((server) => server.listen());
}
