import * as net from "node:net";
import { hostname as osHostname } from "node:os";
import * as tls from "node:tls";
import { type Handler, SessionPool, type SmtpClass, type SmtpOptions } from "@smtpkit/core/server";
import { NodeTransport, type StartTlsOptions } from "./node-transport.js";

export type { SmtpClass } from "@smtpkit/core/server";

const DEFAULT_HOST = "127.0.0.1";
const DEFAULT_PORT = 8025;

/**
 * TLS settings: a certificate and key (anything `tls.createSecureContext` takes) plus the
 * server-side handshake options.
 */
export type TlsServerOptions = tls.SecureContextOptions & {
  /** Ask clients for a certificate (`session.ssl.peerCertificate`). */
  readonly requestCert?: boolean | undefined;
  /** With `requestCert`: refuse clients whose certificate does not verify. Default true. */
  readonly rejectUnauthorized?: boolean | undefined;
  readonly ALPNProtocols?: tls.TlsOptions["ALPNProtocols"] | undefined;
  readonly SNICallback?: tls.TlsOptions["SNICallback"] | undefined;
  /** Milliseconds for the handshake. Default 120000. */
  readonly handshakeTimeout?: number | undefined;
};

/** Options of `handleSocket()`: the SMTP options plus what the Node side needs. */
export interface HandleSocketOptions extends SmtpOptions {
  /** Enables STARTTLS (aiosmtpd's `tls_context`). */
  readonly tls?: TlsServerOptions | undefined;
  /** Default `SMTP`. */
  readonly smtpClass?: SmtpClass | undefined;
  /** Aborting it shuts the session down gracefully (`SMTP.shutdown()`). */
  readonly signal?: AbortSignal | undefined;
}

/** Options of `serve()` / `createServer()`, aiosmtpd's `Controller` arguments. */
export interface ServeOptions extends Omit<HandleSocketOptions, "signal"> {
  /** Default `"127.0.0.1"`. */
  readonly host?: string | undefined;
  /** Default 8025; 0 picks a free port (read it back from `server.port`). */
  readonly port?: number | undefined;
  /** Listen on this Unix socket instead of TCP. */
  readonly path?: string | undefined;
  /** Implicit TLS from the first byte, SMTPS (aiosmtpd's `ssl_context`). */
  readonly smtps?: TlsServerOptions | undefined;
  /** More simultaneous sessions get `421 4.7.0 ... too many connections` and are closed. */
  readonly maxConnections?: number | undefined;
  /** Milliseconds `close()` lets open transactions finish. Default 30000. */
  readonly closeTimeout?: number | undefined;
  /** Errors of the listening server after it started (e.g. EMFILE on accept). Default: ignored. */
  readonly onError?: ((error: Error) => void) | undefined;
}

const contexts = new WeakMap<object, tls.SecureContext>();

function startTlsOptions(options: TlsServerOptions | undefined): StartTlsOptions | undefined {
  if (!options) return undefined;
  // One secure context per options object, not one per connection.
  let secureContext = contexts.get(options);
  if (!secureContext) {
    secureContext = tls.createSecureContext(options);
    contexts.set(options, secureContext);
  }
  return {
    secureContext,
    requestCert: options.requestCert,
    rejectUnauthorized: options.rejectUnauthorized,
    ALPNProtocols: options.ALPNProtocols,
    SNICallback: options.SNICallback,
    handshakeTimeout: options.handshakeTimeout,
  };
}

/** The core's session pool for these options: the adapter's keys removed, a host name set. */
function poolOf(handler: Handler, options: ServeOptions & HandleSocketOptions): SessionPool {
  const { host: _host, port: _port, path: _path, tls: _tls, smtps: _smtps, ...rest } = options;
  const { signal: _signal, ...pool } = rest;
  return new SessionPool(handler, { ...pool, hostname: pool.hostname ?? osHostname() });
}

/** What `handleSocket()` built for an options object, so its sockets share one pool. */
const handled = new WeakMap<
  HandleSocketOptions,
  { handler: Handler; pool: SessionPool; startTls: StartTlsOptions | undefined }
>();
const NO_OPTIONS: HandleSocketOptions = {};

/**
 * Serves one already accepted socket (for a `net.Server` of your own); an already secured
 * `tls.TLSSocket` is treated as implicit TLS. Settles when the session is over and the socket
 * closed; rejects only when the options are bad (the SMTP class cannot be constructed). Pass the
 * same options object for every socket: it is read once, and its sessions share their tables.
 */
export function handleSocket(
  socket: net.Socket,
  handler: Handler,
  options: HandleSocketOptions = NO_OPTIONS,
): Promise<void> {
  let shared = handled.get(options);
  if (shared?.handler !== handler) {
    try {
      // maxConnections belongs to SmtpServer: a socket handed over is never refused.
      const pool = poolOf(handler, { ...options, maxConnections: undefined });
      shared = { handler, pool, startTls: startTlsOptions(options.tls) };
    } catch (error) {
      socket.destroy();
      return Promise.reject(error);
    }
    handled.set(options, shared);
  }
  const transport = new NodeTransport(socket, { startTls: shared.startTls });
  return shared.pool.serve(transport, { signal: options.signal });
}

/**
 * An SMTP server on a TCP port or Unix socket, aiosmtpd's `Controller`: `createServer()` makes
 * it, `listen()` starts it, `close()` shuts it down gracefully.
 */
export class SmtpServer implements AsyncDisposable {
  /** The underlying `net.Server` (`tls.Server` with `smtps`). */
  readonly server: net.Server | tls.Server;
  readonly #options: ServeOptions;
  readonly #pool: SessionPool;
  readonly #startTls: StartTlsOptions | undefined;
  #listening = false;
  #closing: Promise<void> | null = null;

  constructor(handler: Handler, options: ServeOptions = {}) {
    if (options.path !== undefined && options.port !== undefined) {
      throw new TypeError("give either a port or a Unix socket path, not both");
    }
    this.#options = options;
    this.#pool = poolOf(handler, options); // bad options throw here
    this.#startTls = startTlsOptions(options.tls);
    const smtps = options.smtps;
    if (smtps) {
      // tls.Server builds its own context from the options (it ignores a `secureContext`).
      const server = tls.createServer({
        ...smtps,
        allowHalfOpen: true,
        noDelay: true,
      } as tls.TlsOptions);
      server.on("secureConnection", (socket: tls.TLSSocket) => this.#accept(socket));
      // A failed handshake: Node destroys the socket; nothing to answer.
      server.on("tlsClientError", noop);
      this.server = server;
    } else {
      this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
        this.#accept(socket),
      );
    }
    this.server.on("error", (error: Error) => {
      if (this.#listening) this.#options.onError?.(error);
    });
  }

  /** The address listened on (after `listen()`), else the configured host; `""` for a Unix socket. */
  get host(): string {
    const address = this.server.address();
    if (address !== null && typeof address === "object") return address.address;
    if (this.#options.path !== undefined) return "";
    return this.#options.host ?? DEFAULT_HOST;
  }

  /** The port listened on (the real one after `listen()` with port 0); 0 for a Unix socket. */
  get port(): number {
    const address = this.server.address();
    if (address !== null && typeof address === "object") return address.port;
    if (this.#options.path !== undefined) return 0;
    return this.#options.port ?? DEFAULT_PORT;
  }

  get path(): string | undefined {
    return this.#options.path;
  }

  /** Sessions open now (refused connections do not count). */
  get connections(): number {
    return this.#pool.size;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  /** Starts listening; resolves once bound (rejects on EADDRINUSE and the like). */
  listen(): Promise<this> {
    if (this.#closing) return Promise.reject(new Error("the server is closed"));
    if (this.server.listening) return Promise.resolve(this);
    return new Promise((resolve, reject) => {
      const server = this.server;
      const onError = (error: Error): void => {
        server.off("listening", onListening);
        reject(error);
      };
      const onListening = (): void => {
        server.off("error", onError);
        this.#listening = true;
        resolve(this);
      };
      server.once("error", onError);
      server.once("listening", onListening);
      const path = this.#options.path;
      if (path !== undefined) server.listen(path);
      else server.listen(this.#options.port ?? DEFAULT_PORT, this.#options.host ?? DEFAULT_HOST);
    });
  }

  /**
   * Graceful shutdown: stops accepting, asks every session to finish (`SMTP.shutdown()`: idle
   * ones get 421 at once, a transaction in progress completes first), and after `timeout`
   * milliseconds (default `closeTimeout`) aborts the rest and destroys their sockets. Resolves
   * when every connection is closed. Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(options: { timeout?: number }): Promise<void> {
    const server = this.server;
    const stopped = server.listening
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    this.#listening = false;
    await this.#pool.close(options);
    await stopped;
  }

  #accept(socket: net.Socket): void {
    const unixPath = this.#options.path;
    void this.#pool.serve(new NodeTransport(socket, { startTls: this.#startTls, unixPath }));
  }
}

/** Creates an SMTP server without starting it (`await server.listen()`). */
export function createServer(handler: Handler, options: ServeOptions = {}): SmtpServer {
  return new SmtpServer(handler, options);
}

/** Creates an SMTP server and resolves once it listens (aiosmtpd's `Controller.start()`). */
export function serve(handler: Handler, options: ServeOptions = {}): Promise<SmtpServer> {
  try {
    return createServer(handler, options).listen();
  } catch (error) {
    return Promise.reject(error);
  }
}

function noop(): void {}
