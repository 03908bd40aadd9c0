import { createSecureContext } from "node:tls";
import type { Handler, ListenOptions, TlsInfo } from "@smtpkit/core/server";
import { SessionPool } from "@smtpkit/core/server";
import { closeQuietly, DenoTransport, type StartTlsOptions } from "./deno-transport.ts";

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
export class SmtpServer implements AsyncDisposable {
  /** Set by `listen()`. */
  listener: Deno.Listener | null = null;
  #accepting: Promise<void> = Promise.resolve();
  #closing: Promise<void> | null = null;
  /** The sessions (core): SMTP options with aiosmtpd's Controller defaults, maxConnections, close. */
  readonly #pool: SessionPool;
  readonly #startTls: StartTlsOptions | undefined;

  constructor(
    readonly handler: Handler,
    private readonly options: ServeOptions = {},
  ) {
    const { host: _host, port: _port, path: _path, tls, smtps: _smtps, ...pool } = options;
    this.#pool = new SessionPool(handler, { ...pool, hostname: pool.hostname ?? hostname() });
    this.#startTls = tls && { ...tls, secureContext: createSecureContext(tls) };
  }

  /** The address listened on, after `listen()` ("" for a Unix socket). */
  get host(): string {
    const addr = this.listener?.addr;
    return addr?.transport === "tcp" ? addr.hostname : "";
  }

  /** The port listened on, after `listen()` (the real one with port 0; 0 for a Unix socket). */
  get port(): number {
    const addr = this.listener?.addr;
    return addr?.transport === "tcp" ? addr.port : 0;
  }

  /** Sessions open now (refused connections do not count). */
  get connections(): number {
    return this.#pool.size;
  }

  /** Starts listening; rejects with `AddrInUse` and the like. */
  async listen(): Promise<this> {
    if (this.#closing) throw new Error("the server is closed");
    if (this.listener) return this;
    const { path, smtps, host: hostname = "127.0.0.1", port = 8025 } = this.options;
    this.listener =
      path !== undefined
        ? Deno.listen({ path, transport: "unix" })
        : smtps
          ? Deno.listenTls({ ...smtps, hostname, port })
          : Deno.listen({ hostname, port });
    this.#accepting = this.#acceptLoop(this.listener);
    return this;
  }

  /**
   * Graceful shutdown: stops accepting; idle sessions get 421 at once, a transaction completes
   * first; after `timeout` ms (default `closeTimeout`) the rest are aborted. Resolves when every
   * session's connection is closed. Idempotent.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(options: { timeout?: number }): Promise<void> {
    if (this.listener) closeQuietly(this.listener);
    await Promise.all([this.#pool.close(options), this.#accepting]);
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    for (;;) {
      try {
        void this.#accept(await listener.accept());
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) return;
        this.options.onError?.(error as Error);
        await new Promise((resolve) => setTimeout(resolve, 100)); // e.g. EMFILE: do not spin
      }
    }
  }

  async #accept(conn: Deno.Conn): Promise<void> {
    let tls: TlsInfo | null = null;
    if (this.options.smtps) {
      // Deno tells only the ALPN protocol of an accepted TLS connection.
      const handshake = (conn as Deno.TlsConn).handshake();
      const timeout = this.options.smtps.handshakeTimeout ?? 120_000;
      if (!(await settles(handshake, timeout))) return closeQuietly(conn);
      const alpn = await handshake.then((info) => info.alpnProtocol, noop);
      if (alpn === undefined) return closeQuietly(conn); // a failed handshake: nothing to answer
      const unknown = { protocol: null, cipher: null, servername: null, peerCertificate: null };
      tls = { ...unknown, alpnProtocol: alpn, implicit: true, authorized: false };
    }
    await this.#pool.serve(new DenoTransport(conn, tls ? { tls } : { startTls: this.#startTls }));
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

function noop(): undefined {}

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
