import { hostname } from "node:os";
import type { Handler, SmtpOptions, TlsInfo } from "@smtpkit/core/server";
import { SMTP, tooManyConnectionsReply } from "@smtpkit/core/server";
import {
  type BunSocket,
  BunTransport,
  type SocketData,
  type StartTlsOptions,
  socketHandlers,
  tlsInfo,
} from "./bun-transport.ts";

/** Bun's TLS options (PEM `key` and `cert` at least) plus the handshake timeout (ms). */
export interface TlsServerOptions extends Bun.TLSOptions {
  readonly key: string | string[];
  readonly cert: string | string[];
  readonly handshakeTimeout?: number;
}

/** The class serving each connection: `SMTP` or a subclass. */
export type SmtpClass = new (handler: Handler, options: SmtpOptions) => SMTP;

/**
 * The SMTP options plus the listener's, as in @smtpkit/node: `host` (default "127.0.0.1"),
 * `port` (default 8025; 0 picks one, see `server.port`), `path` (a Unix socket instead), `tls`
 * (enables STARTTLS), `smtps` (implicit TLS), `smtpClass`, `maxConnections` (more clients get
 * `421 4.7.0`), `closeTimeout` (ms `close()` lets transactions finish, default 30000) and
 * `onError` (the SMTP class failing at a connection; default ignored).
 */
export interface ServeOptions extends SmtpOptions {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly tls?: TlsServerOptions;
  readonly smtps?: TlsServerOptions;
  readonly smtpClass?: SmtpClass;
  readonly maxConnections?: number;
  readonly closeTimeout?: number;
  readonly onError?: (error: Error) => void;
}

const ADAPTER_KEYS = new Set(
  "host port path tls smtps smtpClass maxConnections closeTimeout onError".split(" "),
);

/** Bun's own TLS options: ours without `handshakeTimeout`. */
function bunTls({ handshakeTimeout: _, ...tls }: TlsServerOptions): Bun.TLSOptions {
  return tls;
}

/** An SMTP server on `Bun.listen`: @smtpkit/node's `SmtpServer` for Bun. */
export class SmtpServer implements AsyncDisposable {
  /** Set by `listen()`. */
  listener: Bun.SocketListener | null = null;
  #closing: Promise<void> | null = null;
  readonly #sessions = new Map<BunTransport, SMTP>();
  /** SMTPS sockets still in their handshake, with their timeout. */
  readonly #handshakes = new Map<BunSocket, ReturnType<typeof setTimeout>>();
  readonly #smtpClass: SmtpClass;
  /** The SMTP options alone, with aiosmtpd's Controller defaults (host name, SMTPUTF8 on). */
  readonly #smtpOptions: SmtpOptions;
  readonly #startTls: StartTlsOptions | undefined;

  constructor(
    readonly handler: Handler,
    private readonly options: ServeOptions = {},
  ) {
    const max = options.maxConnections;
    if (max !== undefined && !(Number.isInteger(max) && max >= 0)) {
      throw new RangeError("maxConnections must be a non-negative integer");
    }
    const smtp = Object.entries(options).filter(([key]) => !ADAPTER_KEYS.has(key));
    this.#smtpOptions = { hostname: hostname(), enableSmtpUtf8: true, ...Object.fromEntries(smtp) };
    this.#smtpClass = options.smtpClass ?? SMTP;
    new this.#smtpClass(handler, this.#smtpOptions); // bad SMTP options throw now
    const tls = options.tls;
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
    return this.#sessions.size;
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
    this.#closing ??= this.#shutdown(options.timeout ?? this.options.closeTimeout ?? 30_000);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(timeout: number): Promise<void> {
    this.listener?.stop(false);
    for (const socket of this.#handshakes.keys()) socket.terminate();
    const sessions = [...this.#sessions];
    const closed = Promise.all(sessions.map(([transport]) => transport.closed));
    for (const [, smtp] of sessions) smtp.shutdown();
    if (!(await settles(closed, timeout))) {
      for (const [, smtp] of sessions) smtp.abort();
      // One second to write the 421, then the sockets are dropped.
      if (!(await settles(closed, 1_000))) for (const [transport] of sessions) transport.destroy();
    }
    await closed;
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
    if (!success || this.#closing) return socket.terminate();
    void this.#accept(socket, tlsInfo(socket, true));
  }

  async #accept(socket: BunSocket, tls: TlsInfo | null): Promise<void> {
    const transport = new BunTransport(socket, {
      ...(tls ? { tls } : { startTls: this.#startTls }),
      unixPath: this.options.path,
    });
    const max = this.options.maxConnections;
    if (max !== undefined && this.#sessions.size >= max) {
      // Refused: the 421, then close (at most the linger time).
      await transport.write(tooManyConnectionsReply(this.#smtpOptions.hostname ?? "")).catch(noop);
      return transport.close();
    }
    let smtp: SMTP;
    try {
      smtp = new this.#smtpClass(this.handler, this.#smtpOptions);
    } catch (error) {
      transport.destroy();
      return this.options.onError?.(error as Error);
    }
    this.#sessions.set(transport, smtp);
    // The slot is free once the socket is closed, even if a hook still runs.
    void transport.closed.then(() => this.#sessions.delete(transport));
    await smtp.run(transport).catch(noop);
    await transport.close();
  }
}

/** Creates an SMTP server and resolves once it listens (`new SmtpServer()` + `listen()`). */
export function serve(handler: Handler, options: ServeOptions = {}): Promise<SmtpServer> {
  return Promise.resolve()
    .then(() => new SmtpServer(handler, options))
    .then((server) => server.listen());
}

function noop(): void {}

/** Whether `promise` settles (either way) within `ms` milliseconds. */
async function settles(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  const yes = (): boolean => true;
  const result = await Promise.race([promise.then(yes, yes), expired]);
  clearTimeout(timer);
  return result;
}
