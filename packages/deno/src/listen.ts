import { createPrivateKey, X509Certificate } from "node:crypto";
import { createSecureContext } from "node:tls";
import {
  DEFAULT_MIN_TLS_VERSION,
  type Handler,
  type ListenOptions,
  type RawListener,
  SmtpListener,
  type SniOptions,
  type TlsVersion,
} from "@smtpkit/core/server";
import { closeQuietly, DenoSocket, type SecureContext, type StartTlsOptions } from "./socket.ts";

export type { SmtpClass } from "@smtpkit/core/server";

/** One certificate: PEM key and chain. */
export interface PemCertificate {
  readonly key: string;
  readonly cert: string;
}

/**
 * PEM key and certificate chain (or `default` and a certificate per host name, `sni`), the oldest
 * TLS version (default TLS 1.2), ALPN, handshake timeout (ms).
 */
export interface TlsServerOptions extends Partial<PemCertificate>, SniOptions<PemCertificate> {
  readonly minVersion?: TlsVersion;
  readonly alpnProtocols?: string[];
  readonly handshakeTimeout?: number;
}
/** The options every adapter takes (core's `ListenOptions`), with this runtime's TLS settings. */
export type ServeOptions = ListenOptions<TlsServerOptions>;

/**
 * One certificate as a node:tls context. Deno's `createSecureContext` checks nothing, so the key
 * is matched against the certificate here: a bad one fails `serve()` or `setTls()`, not clients.
 */
function denoContext(entry: TlsServerOptions): SecureContext {
  const { key, cert, minVersion = DEFAULT_MIN_TLS_VERSION } = entry;
  if (typeof key !== "string" || typeof cert !== "string") {
    throw new TypeError("a PEM key and cert are required");
  }
  if ("ciphers" in entry) throw new TypeError("Deno's TLS (rustls) has no cipher setting");
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new TypeError("the key does not belong to the certificate");
  }
  return createSecureContext({ key, cert, minVersion });
}

/**
 * An SMTP server on `Deno.listen`: @smtpkit/node's `SmtpServer` for Deno. TLS, STARTTLS and
 * SMTPS alike, runs in Deno's node:tls (`Deno.listenTls` can neither pick a certificate per
 * name nor change it), so `setTls()` and `sni` work for both.
 */
export class SmtpServer
  extends SmtpListener<TlsServerOptions, SecureContext>
  implements AsyncDisposable
{
  /** Set by `listen()`. */
  listener: Deno.Listener | null = null;
  readonly #startTls: StartTlsOptions | undefined;

  constructor(handler: Handler, options: ServeOptions = {}) {
    super(handler, options, hostname, denoContext);
    const current = this.certificates;
    this.#startTls = current
      ? {
          get secureContext() {
            return current.default;
          },
          get alpnProtocols() {
            return current.options.alpnProtocols;
          },
          handshakeTimeout: (options.smtps ?? options.tls)?.handshakeTimeout,
          SNICallback: (servername, done) => done(null, current.select(servername)),
        }
      : undefined;
  }

  protected bind(): Promise<RawListener> {
    const { path, host: hostname = "127.0.0.1", port = 8025 } = this.options;
    const listener =
      path !== undefined
        ? Deno.listen({ path, transport: "unix" })
        : Deno.listen({ hostname, port });
    this.listener = listener;
    let stopped = false;
    const accepting = this.#acceptLoop(listener, () => stopped);
    const addr = listener.addr;
    return Promise.resolve({
      address: addr.transport === "tcp" ? { host: addr.hostname, port: addr.port } : null,
      close: () => {
        stopped = true;
        closeQuietly(listener);
        return accepting;
      },
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #acceptLoop(listener: Deno.Listener, stopped: () => boolean): Promise<void> {
    for (;;) {
      try {
        const conn = await listener.accept();
        const plain = new DenoSocket(conn, this.#startTls);
        if (!this.options.smtps) this.accept(plain);
        else {
          // SMTPS: the same handshake as STARTTLS, from the first byte.
          const { socket, handshake } = plain.secure();
          this.accept(
            socket,
            handshake.then((info) => ({ ...info, implicit: true })),
          );
        }
      } catch (error) {
        if (stopped() || error instanceof Deno.errors.BadResource) return;
        this.options.onError?.(error as Error);
        await new Promise((resolve) => setTimeout(resolve, 100)); // e.g. EMFILE: do not spin
      }
    }
  }
}

/** The machine's name if `--allow-sys=hostname` is granted (never prompts), else "localhost". */
function hostname(): string {
  try {
    const { state } = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
    return state === "granted" ? Deno.hostname() : "localhost";
  } catch {
    return "localhost";
  }
}

/** Creates an SMTP server and resolves once it listens (`new SmtpServer()` + `listen()`). */
export function serve(handler: Handler, options: ServeOptions = {}): Promise<SmtpServer> {
  return Promise.resolve()
    .then(() => new SmtpServer(handler, options))
    .then((server) => server.listen());
}
