import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { type SecureContext, TLSSocket } from "node:tls";
import type { PeerAddress, SmtpTransport, TlsInfo } from "@smtpkit/core/server";

/** The server side of STARTTLS: a node:tls context, ALPN, handshake timeout (ms, default 120000). */
export interface StartTlsOptions {
  readonly secureContext: SecureContext;
  readonly alpnProtocols?: string[];
  readonly handshakeTimeout?: number;
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

/** Bytes in and out: the `Deno.Conn`, or node:tls over it after STARTTLS. */
interface Channel {
  read(): Promise<Uint8Array | null>;
  write(data: Uint8Array): Promise<void>;
  /** Flushes, then half-closes (TLS: close_notify first). */
  end(): Promise<void>;
  destroy(): void;
}

/**
 * `SmtpTransport` over a `Deno.Conn` (TCP, Unix, or a `Deno.TlsConn` for implicit TLS). Reads
 * are pull-based and unbuffered: one `conn.read()` at a time, only while the session waits in
 * `read()`, so a session that stops asking stops TCP.
 *
 * STARTTLS: `Deno.startTls()` is client-only, so the server handshake runs in Deno's node:tls
 * (`new TLSSocket(duplex, { isServer: true })`) over a Duplex reading the same `Deno.Conn`. As
 * nothing is buffered here, plaintext sent before the handshake never reaches the session: the
 * core drops what it parsed, and unread bytes fail the handshake (RFC 3207 §6).
 */
export class DenoTransport implements SmtpTransport {
  readonly peer: PeerAddress | null;
  readonly local: PeerAddress | null;
  readonly canStartTls: boolean;
  /** Settles when the connection is closed. */
  readonly closed: Promise<void>;
  /** The first I/O error (reset, TLS alert...), for diagnostics. */
  error: Error | null = null;
  #channel: Channel;
  #tls: TlsInfo | null;
  #inflight: Promise<Uint8Array | null> | null = null;
  #writing: Promise<void> = Promise.resolve();
  #closing: Promise<void> | null = null;
  #destroyed = false;
  #markClosed: () => void = noop;
  #eof = false;
  #endInput: () => void = noop;
  /** Settles with `null` at the end of input, which a pending `read()` races against. */
  readonly #ended = new Promise<null>((resolve) => {
    this.#endInput = () => {
      this.#eof = true;
      resolve(null);
    };
  });

  constructor(
    readonly conn: Deno.Conn,
    private readonly options: DenoTransportOptions = {},
  ) {
    this.#channel = connChannel(conn);
    this.#tls = options.tls ?? null;
    this.canStartTls = options.startTls !== undefined && this.#tls === null;
    this.peer = address(conn.remoteAddr);
    this.local = address(conn.localAddr);
    this.closed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
  }

  get tls(): TlsInfo | null {
    return this.#tls;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#eof) return null;
    const chunk = await Promise.race([this.#pull(), this.#ended]);
    if (chunk === null) this.#endInput();
    return chunk;
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#closing || this.#destroyed)
      return Promise.reject(new Error("the connection is closed"));
    const channel = this.#channel;
    const written = this.#writing.then(() => channel.write(data));
    this.#writing = written.catch(this.#fail);
    return written;
  }

  async startTls(): Promise<TlsInfo> {
    const options = this.options.startTls;
    if (!this.canStartTls || !options) throw new Error("STARTTLS is not available");
    if (this.#tls || this.#inflight || this.#eof || this.#closing) {
      throw new Error("the connection is busy or closed");
    }
    await this.#writing;
    const secure = new TLSSocket(bridge(this.#channel) as unknown as Socket, {
      isServer: true,
      secureContext: options.secureContext,
      ...(options.alpnProtocols ? { ALPNProtocols: options.alpnProtocols } : {}),
    });
    secure.on("error", this.#fail);
    this.#channel = tlsChannel(secure);
    try {
      await handshake(secure, options.handshakeTimeout ?? 120_000);
    } catch (error) {
      this.#fail(error as Error);
      this.destroy();
      throw error;
    }
    const alpn = secure.alpnProtocol;
    this.#tls = {
      protocol: secure.getProtocol() ?? null,
      cipher: secure.getCipher()?.name ?? null,
      servername: typeof secure.servername === "string" ? secure.servername : null,
      alpnProtocol: typeof alpn === "string" ? alpn : null,
      implicit: false,
      peerCertificate: null,
      authorized: false,
    };
    return this.#tls;
  }

  /** Flushes, half-closes, drops input until the client hangs up (at most the linger time). */
  close(): Promise<void> {
    this.#closing ??= Promise.race([this.#shutdown(), this.closed]);
    return this.#closing;
  }

  destroy(): void {
    this.#endInput();
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#channel.destroy();
    closeQuietly(this.conn);
    this.#markClosed();
  }

  async #shutdown(): Promise<void> {
    this.#endInput();
    const timer = setTimeout(() => this.destroy(), this.options.lingerTimeout ?? 5_000);
    try {
      await this.#writing;
      if (!this.#destroyed) await this.#channel.end();
      // Read until the client closes too, so our last reply is not lost to a reset.
      while (!this.#destroyed && (await this.#pull()) !== null);
    } catch (error) {
      this.#fail(error as Error);
    } finally {
      clearTimeout(timer);
      this.destroy();
    }
  }

  /** One channel read at a time; the drain in close() reuses a read still in flight. */
  #pull(): Promise<Uint8Array | null> {
    this.#inflight ??= this.#channel
      .read()
      .catch((error: Error) => {
        this.#fail(error);
        return null;
      })
      .finally(() => {
        this.#inflight = null;
      });
    return this.#inflight;
  }

  readonly #fail = (error: Error): void => {
    this.error ??= error;
  };
}

function connChannel(conn: Deno.Conn): Channel {
  const buffer = new Uint8Array(64 * 1024);
  return {
    read: async () => {
      const n = await conn.read(buffer);
      return n === null ? null : buffer.slice(0, n);
    },
    write: async (data) => {
      for (let at = 0; at < data.length; ) at += await conn.write(data.subarray(at));
    },
    end: () => conn.closeWrite(),
    destroy: () => closeQuietly(conn),
  };
}

function tlsChannel(socket: TLSSocket): Channel {
  const chunks = socket[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  return {
    read: async () => {
      const next = await chunks.next();
      return next.done ? null : next.value;
    },
    write: (data) =>
      new Promise((resolve, reject) => socket.write(data, (e) => (e ? reject(e) : resolve()))),
    end: () => new Promise((resolve) => socket.end(resolve)),
    destroy: () => socket.destroy(),
  };
}

/** A Node Duplex over a channel: what node:tls reads the ClientHello from and writes to. */
function bridge(raw: Channel): Duplex {
  return new Duplex({
    read() {
      raw.read().then(
        (chunk) => this.push(chunk),
        (error: Error) => this.destroy(error),
      );
    },
    write: (chunk: Uint8Array, _encoding, callback) => {
      raw.write(chunk).then(() => callback(), callback);
    },
    final: (callback) => {
      raw.end().then(() => callback(), callback);
    },
    destroy: (error, callback) => {
      raw.destroy();
      callback(error);
    },
  });
}

/** The server handshake; rejects on a TLS error, a client gone (Deno's node:tls then only ends), or the timeout. */
function handshake(socket: TLSSocket, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      socket.off("secure", done).off("error", done).off("end", gone).off("close", gone);
      if (error) reject(error);
      else resolve();
    };
    const gone = (): void => done(new Error("the connection closed during the TLS handshake"));
    const timer = setTimeout(() => done(new Error("TLS handshake timed out")), timeout);
    socket.once("secure", done).once("error", done).once("end", gone).once("close", gone);
  });
}

export function address(addr: Deno.Addr): PeerAddress | null {
  if (addr.transport === "unix") return { address: addr.path ?? "", port: 0, family: "unix" };
  if (addr.transport !== "tcp") return null;
  const family = addr.hostname.includes(":") ? "IPv6" : "IPv4";
  return { address: addr.hostname, port: addr.port, family };
}

function noop(): void {}

export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed
  }
}
