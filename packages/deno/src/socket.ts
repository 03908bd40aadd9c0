import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { type SecureContext as NodeSecureContext, TLSSocket } from "node:tls";
import {
  type PeerAddress,
  peerAddress,
  type RawSocket,
  type RawSocketEvents,
  SocketTransport,
  type TlsInfo,
} from "@smtpkit/core/server";

/**
 * A context from node:tls's `createSecureContext()`. Opaque in the public types, so that the
 * published declarations (and `deno check` of code using them) need no `@types/node`.
 */
export type SecureContext = object;

/** The server side of STARTTLS: a node:tls context, ALPN, handshake timeout (ms, default 120000). */
export interface StartTlsOptions {
  readonly secureContext: SecureContext;
  readonly alpnProtocols?: string[] | undefined;
  readonly handshakeTimeout?: number | undefined;
  /** The context for the name the client asks for (node:tls's `SNICallback`). */
  readonly SNICallback?:
    | ((servername: string, done: (error: Error | null, context?: SecureContext) => void) => void)
    | undefined;
}

/**
 * `startTls` enables STARTTLS; `tls` is set for a `Deno.TlsConn` whose handshake is done (implicit
 * TLS); `lingerTimeout` is how long `close()` waits for the client's FIN (ms, default 5000).
 */
export interface DenoTransportOptions {
  readonly startTls?: StartTlsOptions | undefined;
  readonly tls?: TlsInfo | undefined;
  readonly lingerTimeout?: number;
}

/**
 * A `Deno.Conn` as the core's `RawSocket`: one `conn.read()` at a time while not paused. STARTTLS:
 * `Deno.startTls()` is client-only, so the server handshake runs in Deno's node:tls over a Duplex
 * that gets this connection's bytes from then on.
 */
export class DenoSocket implements RawSocket {
  readonly peer: PeerAddress | null;
  readonly local: PeerAddress | null;
  readonly startTls;
  #events: RawSocketEvents | null = null;
  #paused = false;
  #wake: (() => void) | null = null;
  /** After STARTTLS: node:tls's side, which gets the bytes read from then on. */
  #tls: Duplex | null = null;
  #writing: Promise<void> = Promise.resolve();
  #finished = false;
  #eof = false;
  #closed = false;

  constructor(
    readonly conn: Deno.Conn,
    options?: StartTlsOptions,
  ) {
    this.peer = address(conn.remoteAddr);
    this.local = address(conn.localAddr);
    this.startTls = options && (() => this.#upgrade(options));
  }

  listen(events: RawSocketEvents): void {
    this.#events = events;
    void this.#pump();
  }

  /** Implicit TLS: the server handshake right away, on the bytes read from the first one on. */
  secure(): { socket: RawSocket; handshake: Promise<TlsInfo> } {
    if (!this.startTls) throw new Error("no TLS options");
    const upgrade = this.startTls();
    const ignore = (): void => undefined;
    this.listen({ data: ignore, end: ignore, drain: ignore, error: ignore, close: ignore });
    return upgrade;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#wake?.();
    this.#wake = null;
  }

  /** Deno writes asynchronously: every write is followed by `drain`. */
  write(data: Uint8Array): boolean {
    this.#writing = this.#writing
      .then(() => writeAll(this.conn, data))
      .then(this.#drained, this.#fail);
    return false;
  }

  end(): void {
    this.#writing = this.#writing
      .then(() => this.conn.closeWrite())
      .then(() => {
        this.#finished = true;
        if (this.#eof) this.destroy();
      }, this.#fail);
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.conn);
    this.#wake?.();
    this.#events?.close();
  }

  readonly #drained = (): void => this.#events?.drain();
  readonly #fail = (error: Error): void => {
    if (!this.#closed) this.#events?.error(error);
    this.destroy();
  };

  async #pump(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        while (this.#paused && !this.#closed) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
        }
        if (this.#closed) return;
        const n = await this.conn.read(buffer);
        if (n === null) break;
        const chunk = buffer.slice(0, n);
        if (this.#tls === null) this.#events?.data(chunk);
        else if (!this.#tls.push(chunk)) this.pause();
      }
      this.#eof = true;
      if (this.#tls === null) this.#events?.end();
      else this.#tls.push(null);
      if (this.#finished) this.destroy();
    } catch (error) {
      if (this.#tls === null) this.#fail(error as Error);
      else this.#tls.destroy(error as Error);
    }
  }

  #upgrade(options: StartTlsOptions): { socket: RawSocket; handshake: Promise<TlsInfo> } {
    const conn = this.conn;
    this.#tls = new Duplex({
      read: () => this.resume(),
      write: (chunk: Uint8Array, _encoding, callback) => {
        writeAll(conn, chunk).then(() => callback(), callback);
      },
      final: (callback) => {
        conn.closeWrite().then(() => callback(), callback);
      },
      destroy: (error, callback) => {
        this.destroy();
        callback(error);
      },
    });
    const secure = new TLSSocket(
      this.#tls as unknown as Socket,
      {
        isServer: true,
        secureContext: options.secureContext as NodeSecureContext,
        ...(options.alpnProtocols ? { ALPNProtocols: options.alpnProtocols } : {}),
        ...(options.SNICallback ? { SNICallback: options.SNICallback } : {}),
      } as ConstructorParameters<typeof TLSSocket>[1],
    );
    const socket: RawSocket = {
      peer: this.peer,
      local: this.local,
      listen: (events) => {
        secure.on("data", events.data).on("end", events.end).on("drain", events.drain);
        secure.on("error", events.error).on("close", events.close);
      },
      pause: () => void secure.pause(),
      resume: () => void secure.resume(),
      write: (data) => secure.write(data),
      end: () => void secure.end(),
      destroy: () => {
        secure.destroy();
        this.destroy();
      },
    };
    const handshake = new Promise<TlsInfo>((resolve) => {
      secure.once("secure", () => {
        const alpn = secure.alpnProtocol;
        resolve({
          protocol: secure.getProtocol() ?? null,
          cipher: secure.getCipher()?.name ?? null,
          servername: typeof secure.servername === "string" ? secure.servername : null,
          alpnProtocol: typeof alpn === "string" ? alpn : null,
          implicit: false,
          peerCertificate: null,
          authorized: false,
        });
      });
    });
    return { socket, handshake };
  }
}

/** `SmtpTransport` over a `Deno.Conn` (TCP, Unix, or a `Deno.TlsConn`): the core's, on a `DenoSocket`. */
export class DenoTransport extends SocketTransport {
  constructor(
    readonly conn: Deno.Conn,
    options: DenoTransportOptions = {},
  ) {
    super(new DenoSocket(conn, options.tls ? undefined : options.startTls), {
      tls: options.tls ?? null,
      handshakeTimeout: options.startTls?.handshakeTimeout,
      lingerTimeout: options.lingerTimeout,
    });
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length; ) at += await conn.write(data.subarray(at));
}

export function address(addr: Deno.Addr): PeerAddress | null {
  if (addr.transport === "unix") return peerAddress(addr.path, 0, "unix");
  return addr.transport === "tcp" ? peerAddress(addr.hostname, addr.port) : null;
}

export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed
  }
}
