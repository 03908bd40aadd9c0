import { hostname } from "node:os";
import { createSecureContext } from "node:tls";
import {
  DEFAULT_MIN_TLS_VERSION,
  type Handler,
  type ListenOptions,
  type RawListener,
  SmtpListener,
  type SniOptions,
  TLS_VERSION_NUMBERS,
  type TlsVersion,
} from "@smtpkit/core/server";
import {
  type BunSocket,
  bunSocket,
  type SocketData,
  type StartTlsOptions,
  socketHandlers,
} from "./socket.ts";

export type { SmtpClass } from "@smtpkit/core/server";

/**
 * Bun's TLS options (PEM `key` and `cert` at least, or `default`), the oldest TLS version
 * (default TLS 1.2), the handshake timeout (ms). `sni` is refused: `Bun.listen` and
 * `socket.upgradeTLS` take one certificate (an array of them throws) and no SNI callback.
 */
export interface TlsServerOptions
  extends Omit<Bun.TLSOptions, "minVersion">,
    SniOptions<Bun.TLSOptions> {
  readonly minVersion?: TlsVersion;
  readonly handshakeTimeout?: number;
}

/** The options every adapter takes (core's `ListenOptions`), with this runtime's TLS settings. */
export type ServeOptions = ListenOptions<TlsServerOptions>;

/**
 * Bun's own TLS options: ours without `handshakeTimeout`, the version as Bun's number. Checked by
 * building a node:tls context, which matches the key against the certificate (`upgradeTLS`
 * would only fail at a client's handshake).
 */
function bunTls(entry: TlsServerOptions): Bun.TLSOptions {
  const { handshakeTimeout: _, minVersion = DEFAULT_MIN_TLS_VERSION, ...tls } = entry;
  const version = TLS_VERSION_NUMBERS[minVersion];
  if (version === undefined) throw new TypeError(`unknown TLS version ${minVersion}`);
  createSecureContext(tls);
  return { ...tls, minVersion: version };
}

function oneCertificate(options: ServeOptions): ServeOptions {
  for (const tls of [options.tls, options.smtps]) {
    if (Object.keys(tls?.sni ?? {}).length > 0) {
      throw new TypeError("Bun cannot pick a certificate per name (SNI): give one certificate");
    }
  }
  return options;
}

/** An SMTP server on `Bun.listen`: @smtpkit/node's `SmtpServer` for Bun. */
export class SmtpServer
  extends SmtpListener<TlsServerOptions, Bun.TLSOptions>
  implements AsyncDisposable
{
  /** Set by `listen()`. */
  listener: Bun.SocketListener | null = null;
  readonly #startTls: StartTlsOptions | undefined;

  constructor(handler: Handler, options: ServeOptions = {}) {
    super(handler, oneCertificate(options), hostname, bunTls);
    const current = this.certificates;
    const handshakeTimeout = (options.smtps ?? options.tls)?.handshakeTimeout;
    this.#startTls = current
      ? {
          get tls() {
            return current.default; // read at each handshake: setTls() applies from then on
          },
          handshakeTimeout,
        }
      : undefined;
  }

  protected async bind(): Promise<RawListener> {
    const { path, host = "127.0.0.1", port = 8025 } = this.options;
    const listener = Bun.listen<SocketData>({
      ...(path === undefined ? { hostname: host, port } : { unix: path }),
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
    const raw = bunSocket(socket, this.#startTls, this.options.path);
    if (!this.options.smtps || !raw.startTls) return this.accept(raw);
    // SMTPS: the STARTTLS upgrade from the first byte (a TLS listener's certificate is fixed).
    const { socket: secure, handshake } = raw.startTls();
    this.accept(
      secure,
      handshake.then((info) => ({ ...info, implicit: true })),
    );
  }
}

/** Creates an SMTP server and resolves once it listens (`new SmtpServer()` + `listen()`). */
export function serve(handler: Handler, options: ServeOptions = {}): Promise<SmtpServer> {
  return Promise.resolve()
    .then(() => new SmtpServer(handler, options))
    .then((server) => server.listen());
}
