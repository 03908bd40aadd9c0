import type { PeerAddress, SmtpTransport, TlsInfo } from "@smtpkit/core/server";

/** Bytes queued from the socket before it is paused (TCP then pushes back on the client). */
const HIGH_WATER_MARK = 64 * 1024;

/**
 * What each Bun socket carries: its transport, and which layer it is. After STARTTLS the plain
 * socket (layer 0) keeps getting the ciphertext as a "raw tap"; only the current layer counts.
 */
export interface SocketData {
  transport: BunTransport | null;
  layer: number;
}

export type BunSocket = Bun.Socket<SocketData>;

/** The server side of STARTTLS: Bun's TLS options, the handshake timeout (ms, default 120000). */
export interface StartTlsOptions {
  readonly tls: Bun.TLSOptions;
  readonly handshakeTimeout?: number | undefined;
}

/**
 * `startTls` enables STARTTLS; `tls` is set for a socket of a TLS listener after its handshake
 * (implicit TLS); `lingerTimeout` is how long `close()` waits for the client's FIN (ms, default
 * 5000); `unixPath` marks a Unix socket connection (addresses of family "unix").
 */
export interface BunTransportOptions {
  readonly startTls?: StartTlsOptions | undefined;
  readonly tls?: TlsInfo | undefined;
  readonly lingerTimeout?: number;
  readonly unixPath?: string | undefined;
}

interface PendingWrite {
  data: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Socket events for every layer, routed to the socket's transport. */
export const socketHandlers: Bun.SocketHandler<SocketData> = {
  data: (socket, chunk) => socket.data.transport?.onData(socket, chunk),
  drain: (socket) => socket.data.transport?.onDrain(socket),
  handshake: (socket, success, error) => socket.data.transport?.onHandshake(socket, success, error),
  end: (socket) => socket.data.transport?.onEnd(socket),
  close: (socket, error) => socket.data.transport?.onClose(error),
  error: (socket, error) => socket.data.transport?.onClose(error),
};

/**
 * `SmtpTransport` over a socket of `Bun.listen`. Bun pushes data; this transport queues at most
 * about 64 KiB and then `pause()`s the socket until the session reads, so a session that stops
 * asking stops TCP. Writes are queued here and resumed on `drain` (Bun writes only what the
 * kernel takes). STARTTLS is `socket.upgradeTLS({ isServer: true })`.
 */
export class BunTransport implements SmtpTransport {
  readonly peer: PeerAddress | null;
  readonly local: PeerAddress | null;
  readonly canStartTls: boolean;
  /** The socket accepted from the client (the plaintext one under STARTTLS). */
  readonly rawSocket: BunSocket;
  /** Settles when the socket is closed (by either side). */
  readonly closed: Promise<void>;
  /** Plaintext bytes dropped by `startTls()` (RFC 3207 §6). */
  discardedBytes = 0;
  /** The first error the socket reported, for diagnostics. */
  error: Error | null = null;
  #socket: BunSocket;
  #layer = 0;
  #tls: TlsInfo | null;
  readonly #queue: Uint8Array[] = [];
  #queued = 0;
  #paused = false;
  #waiter: ((chunk: Uint8Array | null) => void) | null = null;
  readonly #outbox: PendingWrite[] = [];
  #handshake: ((error: Error | null) => void) | null = null;
  #eof = false;
  #closing: Promise<void> | null = null;
  #closed = false;
  #markClosed: () => void = () => undefined;

  constructor(
    socket: BunSocket,
    private readonly options: BunTransportOptions = {},
  ) {
    this.rawSocket = socket;
    this.#socket = socket;
    socket.data = { transport: this, layer: 0 };
    this.#tls = options.tls ?? null;
    this.canStartTls = options.startTls !== undefined && this.#tls === null;
    const unix = options.unixPath;
    this.peer = address(socket.remoteAddress, socket.remotePort, socket.remoteFamily, unix && "");
    this.local = address(socket.localAddress, socket.localPort, socket.localFamily, unix);
    this.closed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
  }

  get tls(): TlsInfo | null {
    return this.#tls;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#waiter) return Promise.reject(new Error("read() is already pending"));
    const chunk = this.#queue.shift();
    if (chunk) {
      this.#queued -= chunk.length;
      if (this.#paused && this.#queued < HIGH_WATER_MARK) {
        this.#paused = false;
        this.#socket.resume();
      }
      return Promise.resolve(chunk);
    }
    if (this.#eof || this.#handshake) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#closing || this.#closed) {
      return Promise.reject(this.error ?? new Error("the connection is closed"));
    }
    if (data.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#outbox.push({ data, resolve, reject });
      if (this.#outbox.length === 1) this.#flush();
    });
  }

  async startTls(): Promise<TlsInfo> {
    const options = this.options.startTls;
    if (!this.canStartTls || !options) throw new Error("STARTTLS is not available");
    if (this.#tls !== null || this.#handshake) throw new Error("TLS is already started");
    if (this.#eof || this.#closing || this.#closed) throw new Error("the connection is closed");
    await this.#flushed();
    // RFC 3207 §6: plaintext received before the handshake and not yet read is dropped, never
    // taken as TLS or as commands.
    for (const chunk of this.#queue.splice(0)) this.discardedBytes += chunk.length;
    this.#queued = 0;
    const raw = this.#socket;
    if (this.#paused) {
      this.#paused = false;
      raw.resume();
    }
    const handshake = new Promise<Error | null>((resolve) => {
      this.#handshake = resolve;
    });
    const timeout = options.handshakeTimeout ?? 120_000;
    const timer = setTimeout(() => this.onHandshake(this.#socket, false, null), timeout);
    try {
      this.#layer = 1;
      const [, secure] = raw.upgradeTLS<SocketData>({
        isServer: true,
        data: { transport: this, layer: 1 },
        tls: options.tls,
        socket: socketHandlers,
      });
      this.#socket = secure;
      const error = await handshake;
      if (error) throw error;
    } catch (error) {
      this.error ??= error as Error;
      this.destroy();
      throw error;
    } finally {
      clearTimeout(timer);
      this.#handshake = null;
    }
    this.#tls = tlsInfo(this.#socket, false);
    return this.#tls;
  }

  /** Flushes, sends FIN, waits (at most the linger time) for the client to close, closes. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#endOfInput();
      const timer = setTimeout(() => this.destroy(), this.options.lingerTimeout ?? 5_000);
      try {
        await this.#flushed();
        this.#socket.end();
        // Keep reading (and dropping) so the client's FIN is seen and the socket can close.
        if (this.#paused) this.#socket.resume();
        await this.closed;
      } catch {
        this.destroy();
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.#closing;
  }

  destroy(): void {
    this.#socket.terminate();
    if (this.#socket !== this.rawSocket) this.rawSocket.terminate();
    this.onClose();
  }

  // Socket events (from `socketHandlers`).

  onData(socket: BunSocket, chunk: Uint8Array): void {
    if (socket.data.layer !== this.#layer || this.#eof || this.#handshake) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = null;
      waiter(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued >= HIGH_WATER_MARK && !this.#paused) {
      this.#paused = true;
      socket.pause();
    }
  }

  onDrain(socket: BunSocket): void {
    if (socket.data.layer === this.#layer) this.#flush();
  }

  onHandshake(socket: BunSocket, success: boolean, _authorizationError: Error | null): void {
    const done = this.#handshake;
    if (!done || socket.data.layer !== this.#layer) return;
    this.#handshake = null;
    done(success ? null : new Error("the TLS handshake failed or timed out"));
  }

  onEnd(socket: BunSocket): void {
    if (socket.data.layer === this.#layer) this.#endOfInput();
  }

  onClose(error?: Error): void {
    if (error) this.error ??= error;
    this.#endOfInput();
    this.#handshake?.(this.error ?? new Error("the connection closed during the TLS handshake"));
    if (this.#closed) return;
    this.#closed = true;
    const closed = this.error ?? new Error("the connection is closed");
    for (const pending of this.#outbox.splice(0)) pending.reject(closed);
    this.#markClosed();
  }

  #flush(): void {
    while (this.#outbox.length > 0 && !this.#closed) {
      const pending = this.#outbox[0] as PendingWrite;
      const written = this.#socket.write(pending.data);
      if (written < 0) {
        this.destroy();
        return;
      }
      pending.data = pending.data.subarray(written);
      if (pending.data.length > 0) return; // the rest goes on `drain`
      this.#outbox.shift();
      pending.resolve();
    }
  }

  /** Resolves when every queued write reached the kernel. */
  async #flushed(): Promise<void> {
    const last = this.#outbox.at(-1);
    if (!last) return;
    await new Promise<void>((resolve, reject) => {
      this.#outbox.push({ data: new Uint8Array(0), resolve, reject });
    });
  }

  #endOfInput(): void {
    this.#eof = true;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(null);
  }
}

/** The TLS details of a Bun socket once its handshake is done. */
export function tlsInfo(socket: BunSocket, implicit: boolean): TlsInfo {
  const alpn = socket.alpnProtocol;
  return {
    protocol: socket.getTLSVersion() ?? null,
    cipher: socket.getCipher()?.name ?? null,
    servername: socket.getServername() || null,
    alpnProtocol: typeof alpn === "string" ? alpn : null,
    implicit,
    peerCertificate: socket.getPeerCertificate() ?? null,
    authorized: socket.authorized === true,
    exportKeyingMaterial: (length, label, context) =>
      new Uint8Array(socket.exportKeyingMaterial(length, label, context)),
  };
}

function address(
  host: string | undefined,
  port: number | undefined,
  family: string | undefined,
  unixPath: string | undefined,
): PeerAddress | null {
  if (unixPath !== undefined) return { address: unixPath, port: 0, family: "unix" };
  if (!host) return null;
  if (family === "IPv4" || family === "IPv6") return { address: host, port: port ?? 0, family };
  return { address: host, port: port ?? 0, family: host.includes(":") ? "IPv6" : "IPv4" };
}
