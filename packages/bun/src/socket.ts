import {
  type PeerAddress,
  peerAddress,
  type RawSocket,
  type RawSocketEvents,
  SocketTransport,
  type TlsInfo,
} from "@smtpkit/core/server";

/** What each Bun socket carries: the `RawSocket` its events go to. */
export interface SocketData {
  raw: BunRawSocket | null;
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

/** Socket events for every socket (and TLS layer), routed to its `BunRawSocket`. */
export const socketHandlers: Bun.SocketHandler<SocketData> = {
  data: (socket, chunk) => socket.data.raw?.onData(chunk),
  drain: (socket) => socket.data.raw?.onDrain(),
  handshake: (socket, success) => socket.data.raw?.onHandshake(success),
  end: (socket) => socket.data.raw?.onEnd(),
  close: (socket, error) => socket.data.raw?.onClose(error),
  error: (socket, error) => socket.data.raw?.onClose(error),
};

/**
 * A Bun socket as the core's `RawSocket`. Bun pushes data and writes only what the kernel takes:
 * the rest waits here for `drain`. STARTTLS is `socket.upgradeTLS({ isServer: true })`; the plain
 * socket then gets the ciphertext as a "raw tap", which is ignored.
 */
export class BunRawSocket implements RawSocket {
  readonly startTls;
  #events: RawSocketEvents | null = null;
  /** Bytes received before `listen()` (right after an SMTPS handshake). */
  readonly #early: Uint8Array[] = [];
  #rest: Uint8Array | null = null;
  #handshake: ((success: boolean) => void) | null = null;
  /** After STARTTLS: the TLS layer, which this plain socket's closing is reported to. */
  #next: BunRawSocket | null = null;

  constructor(
    readonly socket: BunSocket,
    readonly peer: PeerAddress | null,
    readonly local: PeerAddress | null,
    options?: StartTlsOptions,
    readonly below: BunSocket | null = null,
  ) {
    socket.data = { raw: this };
    this.startTls = options && (() => this.#upgrade(options));
  }

  listen(events: RawSocketEvents): void {
    this.#events = events;
    if (this.#early.length > 0) {
      queueMicrotask(() => {
        for (const chunk of this.#early.splice(0)) events.data(chunk);
      });
    }
  }

  pause = (): void => this.socket.pause();
  resume = (): void => this.socket.resume();
  end = (): void => this.socket.end();

  write(data: Uint8Array): boolean {
    const written = this.socket.write(data);
    if (written < 0) this.socket.terminate();
    if (written === data.length) return true;
    if (written >= 0) this.#rest = data.subarray(written);
    return false;
  }

  destroy(): void {
    this.socket.terminate();
    this.below?.terminate();
  }

  /** Resolves with the TLS info once Bun reports the handshake done. */
  secured(implicit: boolean): Promise<TlsInfo> {
    return new Promise((resolve, reject) => {
      this.#handshake = (success) => {
        this.#handshake = null;
        if (success) resolve(tlsInfo(this.socket, implicit));
        else reject(new Error("the TLS handshake failed"));
      };
    });
  }

  onData(chunk: Uint8Array): void {
    if (this.#next) return;
    if (this.#events) this.#events.data(chunk);
    else this.#early.push(chunk);
  }

  onDrain(): void {
    const rest = this.#rest;
    if (this.#next) return;
    if (rest) {
      const written = this.socket.write(rest);
      if (written < 0) return this.socket.terminate();
      this.#rest = written < rest.length ? rest.subarray(written) : null;
      if (this.#rest) return;
    }
    this.#events?.drain();
  }

  onHandshake(success: boolean): void {
    this.#handshake?.(success);
  }

  onEnd(): void {
    if (!this.#next) this.#events?.end();
  }

  onClose(error?: Error): void {
    if (this.#next) return this.#next.onClose(error);
    if (error) this.#events?.error(error);
    this.#events?.close();
    this.#handshake?.(false);
  }

  #upgrade(options: StartTlsOptions): { socket: RawSocket; handshake: Promise<TlsInfo> } {
    const [, secure] = this.socket.upgradeTLS<SocketData>({
      isServer: true,
      data: { raw: null },
      tls: options.tls,
      socket: socketHandlers,
    });
    this.#next = new BunRawSocket(secure, this.peer, this.local, undefined, this.socket);
    return { socket: this.#next, handshake: this.#next.secured(false) };
  }
}

/** The core's `RawSocket` over a socket of `Bun.listen` (`unixPath`: a Unix socket's). */
export function bunSocket(socket: BunSocket, startTls?: StartTlsOptions, unixPath?: string) {
  const unix = unixPath !== undefined;
  return new BunRawSocket(
    socket,
    unix
      ? peerAddress("", 0, "unix")
      : peerAddress(socket.remoteAddress, socket.remotePort, socket.remoteFamily),
    unix
      ? peerAddress(unixPath, 0, "unix")
      : peerAddress(socket.localAddress, socket.localPort, socket.localFamily),
    startTls,
  );
}

/** `SmtpTransport` over a socket of `Bun.listen` (opened with `socketHandlers`): the core's. */
export class BunTransport extends SocketTransport {
  /** The socket accepted from the client (the plaintext one under STARTTLS). */
  readonly rawSocket: BunSocket;

  constructor(socket: BunSocket, options: BunTransportOptions = {}) {
    const startTls = options.tls ? undefined : options.startTls;
    super(bunSocket(socket, startTls, options.unixPath), {
      tls: options.tls ?? null,
      handshakeTimeout: options.startTls?.handshakeTimeout,
      lingerTimeout: options.lingerTimeout,
    });
    this.rawSocket = socket;
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
