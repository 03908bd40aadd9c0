import * as net from "node:net";
import { hostname as osHostname } from "node:os";
import * as tls from "node:tls";
import {
  type Handler,
  SMTP,
  type SmtpOptions,
  tooManyConnectionsReply,
} from "@smtpkit/core/server";
import { NodeTransport, type StartTlsOptions } from "./node-transport.js";

const DEFAULT_HOST = "127.0.0.1";
const DEFAULT_PORT = 8025;
const DEFAULT_CLOSE_TIMEOUT = 30_000;
/** After `abort()`, how long a session gets to write its 421 before its socket is destroyed. */
const ABORT_GRACE = 1_000;
/** How long a refused connection (too many connections) may take to read its 421. */
const REFUSE_LINGER = 5_000;

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

/** The class serving each connection: `SMTP` or a subclass (aiosmtpd's `Controller.factory`). */
export type SmtpClass = new (handler: Handler, options: SmtpOptions) => SMTP;

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

/** One live session. */
interface Live {
  readonly smtp: SMTP;
  readonly transport: NodeTransport;
  /** Settles when `run()` returned and the transport is closed. */
  readonly done: Promise<void>;
}

interface Resolved {
  readonly handler: Handler;
  readonly smtpClass: SmtpClass;
  readonly smtpOptions: SmtpOptions;
  readonly startTls: StartTlsOptions | undefined;
}

const contexts = new WeakMap<object, tls.SecureContext>();

/** One secure context per options object, so `handleSocket()` does not rebuild it per connection. */
function secureContextOf(options: TlsServerOptions): tls.SecureContext {
  let context = contexts.get(options);
  if (!context) {
    context = tls.createSecureContext(options);
    contexts.set(options, context);
  }
  return context;
}

function startTlsOptions(options: TlsServerOptions | undefined): StartTlsOptions | undefined {
  if (!options) return undefined;
  return {
    secureContext: secureContextOf(options),
    requestCert: options.requestCert,
    rejectUnauthorized: options.rejectUnauthorized,
    ALPNProtocols: options.ALPNProtocols,
    SNICallback: options.SNICallback,
    handshakeTimeout: options.handshakeTimeout,
  };
}

/** The SMTP options with the adapter's keys removed and the Controller's defaults applied. */
function smtpOptionsOf(options: ServeOptions & HandleSocketOptions): SmtpOptions {
  const {
    host: _host,
    port: _port,
    path: _path,
    tls: _tls,
    smtps: _smtps,
    smtpClass: _smtpClass,
    maxConnections: _maxConnections,
    closeTimeout: _closeTimeout,
    onError: _onError,
    signal: _signal,
    ...rest
  } = options;
  return {
    ...rest,
    hostname: rest.hostname ?? osHostname(),
    // aiosmtpd's Controller turns SMTPUTF8 on although its SMTP class defaults it off.
    enableSmtpUtf8: rest.enableSmtpUtf8 ?? true,
  };
}

function resolve(handler: Handler, options: ServeOptions & HandleSocketOptions): Resolved {
  return {
    handler,
    smtpClass: options.smtpClass ?? SMTP,
    smtpOptions: smtpOptionsOf(options),
    startTls: startTlsOptions(options.tls),
  };
}

function startSession(socket: net.Socket, resolved: Resolved, unixPath?: string): Live {
  const transport = new NodeTransport(socket, { startTls: resolved.startTls, unixPath });
  let smtp: SMTP;
  try {
    smtp = new resolved.smtpClass(resolved.handler, resolved.smtpOptions);
  } catch (error) {
    transport.destroy();
    throw error;
  }
  const done = smtp
    .run(transport)
    .catch(noop)
    .then(() => transport.close())
    .catch(noop);
  return { smtp, transport, done };
}

/**
 * Serves one already accepted socket (for a `net.Server` of your own); an already secured
 * `tls.TLSSocket` is treated as implicit TLS. Settles when the session is over and the socket
 * closed; rejects only when the SMTP class cannot be constructed.
 */
export function handleSocket(
  socket: net.Socket,
  handler: Handler,
  options: HandleSocketOptions = {},
): Promise<void> {
  let live: Live;
  try {
    live = startSession(socket, resolve(handler, options));
  } catch (error) {
    return Promise.reject(error);
  }
  const signal = options.signal;
  if (signal) {
    const onAbort = (): void => live.smtp.shutdown();
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener("abort", onAbort, { once: true });
      void live.done.then(() => signal.removeEventListener("abort", onAbort));
    }
  }
  return live.done;
}

/**
 * An SMTP server on a TCP port or Unix socket, aiosmtpd's `Controller`: `createServer()` makes
 * it, `listen()` starts it, `close()` shuts it down gracefully.
 */
export class SmtpServer implements AsyncDisposable {
  /** The underlying `net.Server` (`tls.Server` with `smtps`). */
  readonly server: net.Server | tls.Server;
  readonly #resolved: Resolved;
  readonly #options: ServeOptions;
  readonly #sessions = new Set<Live>();
  readonly #refused = new Set<net.Socket>();
  #listening = false;
  #closing: Promise<void> | null = null;

  constructor(handler: Handler, options: ServeOptions = {}) {
    if (options.path !== undefined && options.port !== undefined) {
      throw new TypeError("give either a port or a Unix socket path, not both");
    }
    const max = options.maxConnections;
    if (max !== undefined && !(Number.isInteger(max) && max >= 0)) {
      throw new RangeError("maxConnections must be a non-negative integer");
    }
    this.#options = options;
    this.#resolved = resolve(handler, options);
    // Construct one instance now so bad options throw here, not at the first connection
    // (aiosmtpd's Controller connects to itself for the same reason).
    new this.#resolved.smtpClass(handler, this.#resolved.smtpOptions);
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
    return this.#sessions.size;
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
    if (this.#closing) return this.#closing;
    const timeout = options.timeout ?? this.#options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.#closing = this.#shutdown(timeout);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(timeout: number): Promise<void> {
    const server = this.server;
    const stopped = server.listening
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    this.#listening = false;
    const sessions = [...this.#sessions];
    for (const live of sessions) live.smtp.shutdown();
    const finished = await settlesWithin(Promise.all(sessions.map((live) => live.done)), timeout);
    if (!finished) {
      for (const live of sessions) live.smtp.abort();
      const closed = Promise.all(sessions.map((live) => live.transport.closed));
      if (!(await settlesWithin(closed, ABORT_GRACE))) {
        for (const live of sessions) live.transport.destroy();
      }
    }
    for (const socket of this.#refused) socket.destroy();
    // A handler that ignores its abort signal may keep run() going; the sockets are closed anyway.
    await Promise.all(sessions.map((live) => live.transport.closed));
    await stopped;
  }

  #accept(socket: net.Socket): void {
    if (this.#closing) {
      socket.on("error", noop);
      socket.destroy();
      return;
    }
    const max = this.#options.maxConnections;
    if (max !== undefined && this.#sessions.size >= max) {
      this.#refuse(socket);
      return;
    }
    let live: Live;
    try {
      live = startSession(socket, this.#resolved, this.#options.path);
    } catch (error) {
      this.#options.onError?.(error as Error);
      return;
    }
    this.#sessions.add(live);
    // The slot is free once the socket is closed, even if a hook is still running.
    void live.transport.closed.then(() => this.#sessions.delete(live));
  }

  #refuse(socket: net.Socket): void {
    socket.on("error", noop);
    this.#refused.add(socket);
    const timer = setTimeout(() => socket.destroy(), REFUSE_LINGER);
    socket.once("close", () => {
      clearTimeout(timer);
      this.#refused.delete(socket);
    });
    // Drop whatever the client sends so its FIN is seen and the socket can close.
    socket.resume();
    socket.end(tooManyConnectionsReply(this.#resolved.smtpOptions.hostname ?? osHostname()));
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

/** Whether `promise` settles within `ms` milliseconds. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}
