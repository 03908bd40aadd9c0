import { createSecureContext } from "node:tls";
import {
  type Handler,
  type ListenOptions,
  type RawListener,
  SmtpListener,
  type TlsInfo,
} from "@smtpkit/core/server";
import { closeQuietly, DenoSocket, type StartTlsOptions } from "./socket.ts";

export type { SmtpClass } from "@smtpkit/core/server";

/** PEM key and certificate chain (what `Deno.listenTls` takes), ALPN, handshake timeout (ms). */
export interface TlsServerOptions {
  readonly key: string;
  readonly cert: string;
  readonly alpnProtocols?: string[];
  readonly handshakeTimeout?: number;
}

/** The options every adapter takes (core's `ListenOptions`), with this runtime's TLS settings. */
export type ServeOptions = ListenOptions<TlsServerOptions>;

/** An SMTP server on `Deno.listen` / `Deno.listenTls`: @smtpkit/node's `SmtpServer` for Deno. */
export class SmtpServer extends SmtpListener<TlsServerOptions> implements AsyncDisposable {
  /** Set by `listen()`. */
  listener: Deno.Listener | null = null;
  readonly #startTls: StartTlsOptions | undefined;

  constructor(handler: Handler, options: ServeOptions = {}) {
    super(handler, options, hostname);
    const tls = options.tls;
    this.#startTls = tls && { ...tls, secureContext: createSecureContext(tls) };
  }

  protected bind(): Promise<RawListener> {
    const { path, smtps, host: hostname = "127.0.0.1", port = 8025 } = this.options;
    const listener =
      path !== undefined
        ? Deno.listen({ path, transport: "unix" })
        : smtps
          ? Deno.listenTls({ ...smtps, hostname, port })
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
        if (!this.options.smtps) this.accept(new DenoSocket(conn, this.#startTls));
        else this.accept(new DenoSocket(conn), implicitTls(conn as Deno.TlsConn));
      } catch (error) {
        if (stopped() || error instanceof Deno.errors.BadResource) return;
        this.options.onError?.(error as Error);
        await new Promise((resolve) => setTimeout(resolve, 100)); // e.g. EMFILE: do not spin
      }
    }
  }
}

/** Deno tells only the ALPN protocol of an accepted TLS connection. */
async function implicitTls(conn: Deno.TlsConn): Promise<TlsInfo> {
  const { alpnProtocol } = await conn.handshake();
  const unknown = { protocol: null, cipher: null, servername: null, peerCertificate: null };
  return { ...unknown, alpnProtocol, implicit: true, authorized: false };
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
