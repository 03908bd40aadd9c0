import * as net from "node:net";
import { hostname as osHostname } from "node:os";
import * as tls from "node:tls";
import {
  CurrentCertificates,
  DEFAULT_MIN_TLS_VERSION,
  type Handler,
  type ListenOptions,
  type RawListener,
  SessionPool,
  type SmtpClass,
  SmtpListener,
  type SmtpOptions,
  type SniOptions,
} from "@smtpkit/core/server";
import { NodeTransport, nodeSocket, type StartTlsOptions, tlsInfo } from "./socket.js";

export type { SmtpClass } from "@smtpkit/core/server";

/**
 * TLS settings: what `tls.createSecureContext` takes (`minVersion` defaults to TLS 1.2), a
 * certificate per host name (`sni`, `default`), plus the server-side handshake options.
 */
export type TlsServerOptions = tls.SecureContextOptions &
  SniOptions<tls.SecureContextOptions> & {
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

/** One certificate of the SNI map: its context, and the options it was made from. */
interface NodeCertificate {
  readonly options: tls.SecureContextOptions;
  readonly secureContext: tls.SecureContext;
}
type NodeCertificates = CurrentCertificates<TlsServerOptions, NodeCertificate>;

function nodeCertificate(entry: tls.SecureContextOptions): NodeCertificate {
  const options = { minVersion: DEFAULT_MIN_TLS_VERSION, ...entry } as tls.SecureContextOptions;
  return { options, secureContext: tls.createSecureContext(options) };
}

/** Handshake options that read the current certificates at each handshake (`setTls()`). */
function startTlsOptions(current: NodeCertificates | null): StartTlsOptions | undefined {
  if (!current) return undefined;
  const options = () => current.options;
  return {
    get secureContext() {
      return current.default.secureContext;
    },
    get requestCert() {
      return options().requestCert;
    },
    get rejectUnauthorized() {
      return options().rejectUnauthorized;
    },
    get ALPNProtocols() {
      return options().ALPNProtocols;
    },
    get handshakeTimeout() {
      return options().handshakeTimeout;
    },
    SNICallback: (servername, done) => {
      const own = options().SNICallback;
      if (own) own(servername, done);
      else done(null, current.select(servername).secureContext);
    },
  };
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
      const { tls: _tls, signal: _signal, ...rest } = options as ServeOptions & HandleSocketOptions;
      const { host: _h, port: _p, path: _u, smtps: _s, maxConnections: _m, ...pool } = rest;
      const hostname = pool.hostname ?? osHostname();
      const sessions = new SessionPool(handler, { ...pool, hostname });
      const tlsOptions = options.tls;
      const current = tlsOptions ? new CurrentCertificates(tlsOptions, nodeCertificate) : null;
      shared = { handler, pool: sessions, startTls: startTlsOptions(current) };
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
export class SmtpServer
  extends SmtpListener<TlsServerOptions, NodeCertificate>
  implements AsyncDisposable
{
  /** The underlying `net.Server` (`tls.Server` with `smtps`). */
  readonly server: net.Server | tls.Server;

  constructor(handler: Handler, options: ServeOptions = {}) {
    // Bad options throw, a bad certificate included.
    super(handler, options as ListenOptions<TlsServerOptions>, osHostname, nodeCertificate);
    const { path, smtps } = options;
    const startTls = startTlsOptions(smtps ? null : this.certificates);
    const listening = { allowHalfOpen: true, noDelay: true };
    if (smtps && this.certificates) {
      // tls.Server builds its own default context from the options (it ignores `secureContext`).
      const { SNICallback } = startTlsOptions(this.certificates) as StartTlsOptions;
      const defaults = this.certificates.default.options;
      const server = tls.createServer({ ...smtps, ...defaults, ...listening, SNICallback });
      server.on("secureConnection", (socket: tls.TLSSocket) =>
        this.accept(nodeSocket(socket, undefined, path), tlsInfo(socket, true, socket.authorized)),
      );
      server.on("tlsClientError", () => undefined); // Node destroys the socket: nothing to answer
      this.server = server;
    } else {
      this.server = net.createServer(listening, (socket) =>
        this.accept(nodeSocket(socket, startTls, path)),
      );
    }
    this.server.on("error", (error: Error) => {
      if (this.listening) options.onError?.(error);
    });
  }

  /** The SMTPS listener's context for clients that send no name. */
  protected override certificatesReplaced(): void {
    if (this.server instanceof tls.Server && this.certificates) {
      this.server.setSecureContext(this.certificates.default.options);
    }
  }

  protected bind(): Promise<RawListener> {
    const server = this.server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      const { path, port = 8025, host = "127.0.0.1" } = this.options;
      const onListening = (): void => {
        server.off("error", reject);
        const address = server.address();
        resolve({
          address:
            typeof address === "object" && address
              ? { host: address.address, port: address.port }
              : null,
          close: () => new Promise((done) => server.close(() => done())),
        });
      };
      if (path !== undefined) server.listen(path, onListening);
      else server.listen(port, host, onListening);
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
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
