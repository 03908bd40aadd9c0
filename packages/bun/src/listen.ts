import { hostname } from "node:os";
import {
  type Handler,
  type ListenOptions,
  type RawListener,
  SmtpListener,
} from "@smtpkit/core/server";
import {
  type BunSocket,
  bunSocket,
  type SocketData,
  type StartTlsOptions,
  socketHandlers,
} from "./socket.ts";

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
export class SmtpServer extends SmtpListener<TlsServerOptions> implements AsyncDisposable {
  /** Set by `listen()`. */
  listener: Bun.SocketListener | null = null;
  readonly #startTls: StartTlsOptions | undefined;

  constructor(handler: Handler, options: ServeOptions = {}) {
    super(handler, options, hostname);
    const tls = options.tls;
    this.#startTls = tls && { tls: bunTls(tls), handshakeTimeout: tls.handshakeTimeout };
  }

  protected async bind(): Promise<RawListener> {
    const { path, smtps, host = "127.0.0.1", port = 8025 } = this.options;
    const listener = Bun.listen<SocketData>({
      ...(path === undefined ? { hostname: host, port } : { unix: path }),
      ...(smtps ? { tls: bunTls(smtps) } : {}),
      allowHalfOpen: true, // a client's FIN ends its input; our replies still go out
      socket: { ...socketHandlers, open: (socket) => this.#open(socket) },
    });
    this.listener = listener;
    return {
      address: path === undefined ? { host: listener.hostname, port: listener.port } : null,
      close: async () => listener.stop(false),
    };
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #open(socket: BunSocket): void {
    if (!this.options.smtps)
      return this.accept(bunSocket(socket, this.#startTls, this.options.path));
    // A TLS listener's socket: the session starts once its handshake is done.
    const raw = bunSocket(socket, undefined, this.options.path);
    this.accept(raw, raw.secured(true));
  }
}

/** Creates an SMTP server and resolves once it listens (`new SmtpServer()` + `listen()`). */
export function serve(handler: Handler, options: ServeOptions = {}): Promise<SmtpServer> {
  return Promise.resolve()
    .then(() => new SmtpServer(handler, options))
    .then((server) => server.listen());
}
