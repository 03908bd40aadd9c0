import type { Socket } from "node:net";
import type * as tls from "node:tls";
import { TLSSocket } from "node:tls";
import type { PeerAddress, SmtpTransport, TlsInfo } from "@smtpkit/core/server";

/** Node's own default for `tls.Server` (`handshakeTimeout`). */
const DEFAULT_HANDSHAKE_TIMEOUT = 120_000;
/** How long `close()` waits for the client to hang up after our FIN before it destroys the socket. */
const DEFAULT_LINGER = 5_000;

/** What `startTls()` needs: the server side of the handshake (aiosmtpd's `tls_context`). */
export interface StartTlsOptions {
  readonly secureContext: tls.SecureContext;
  /** Ask the client for a certificate (`session.ssl.peerCertificate`, SASL EXTERNAL). */
  readonly requestCert?: boolean | undefined;
  /**
   * With `requestCert`: refuse a client whose certificate does not verify against the CAs.
   * Default true, as `tls.createServer`.
   */
  readonly rejectUnauthorized?: boolean | undefined;
  readonly ALPNProtocols?: tls.TlsOptions["ALPNProtocols"] | undefined;
  readonly SNICallback?: tls.TlsOptions["SNICallback"] | undefined;
  /** Milliseconds for the whole handshake, default 120000 (Node's `tls.Server` default). */
  readonly handshakeTimeout?: number | undefined;
}

export interface NodeTransportOptions {
  /** Enables STARTTLS (`canStartTls`). */
  readonly startTls?: StartTlsOptions | undefined;
  /**
   * The path of the Unix socket the connection came in on. Sockets without IP addresses are
   * reported as family `"unix"` anyway; this only fills in `local.address`.
   */
  readonly unixPath?: string | undefined;
  /** Milliseconds `close()` waits for the client to close its side before destroying. Default 5000. */
  readonly lingerTimeout?: number | undefined;
}

type Waiter = (chunk: Uint8Array | null) => void;

/**
 * `SmtpTransport` over a `net.Socket` (or an already secured `tls.TLSSocket` for implicit TLS).
 *
 * Reading is pull-based: the socket stays in paused mode and is only read when `read()` is
 * called, so Node stops reading from the kernel once its small readable buffer is full and TCP
 * flow control pushes back on the client.
 */
export class NodeTransport implements SmtpTransport {
  readonly peer: PeerAddress | null;
  readonly local: PeerAddress | null;
  readonly canStartTls: boolean;
  /** The socket accepted from the client (the plaintext one under STARTTLS). */
  readonly rawSocket: Socket;
  #socket: Socket;
  #tls: TlsInfo | null = null;
  readonly #startTlsOptions: StartTlsOptions | null;
  readonly #lingerTimeout: number;
  #waiter: Waiter | null = null;
  #eof = false;
  #upgrading = false;
  #closing: Promise<void> | null = null;
  #closed = false;
  readonly #closeWaiters: (() => void)[] = [];
  /** Settles when the socket is closed (by either side). */
  readonly closed: Promise<void>;
  readonly #pendingWrites = new Set<(error?: Error) => void>();
  /** Plaintext bytes dropped by `startTls()` (RFC 3207 §6). */
  discardedBytes = 0;
  /** The first error the socket reported (ECONNRESET, TLS alert...), for diagnostics. */
  error: Error | null = null;

  readonly #onReadable = (): void => this.#pump();
  readonly #onEnd = (): void => this.#endOfInput();
  readonly #onClose = (): void => this.#handleClose();
  readonly #onError = (error: Error): void => {
    this.error ??= error;
    this.#endOfInput();
  };

  constructor(socket: Socket, options: NodeTransportOptions = {}) {
    this.rawSocket = socket;
    this.#socket = socket;
    this.closed = new Promise((resolve) => this.#closeWaiters.push(resolve));
    this.#startTlsOptions = options.startTls ?? null;
    this.#lingerTimeout = options.lingerTimeout ?? DEFAULT_LINGER;
    const implicit = socket instanceof TLSSocket && socket.encrypted;
    this.canStartTls = this.#startTlsOptions !== null && !implicit;
    const unix = isUnixSocket(socket, options.unixPath);
    this.peer = unix
      ? { address: "", port: 0, family: "unix" }
      : address(socket.remoteAddress, socket.remotePort, socket.remoteFamily);
    this.local = unix
      ? { address: options.unixPath ?? "", port: 0, family: "unix" }
      : address(socket.localAddress, socket.localPort, socket.localFamily);
    if (implicit) {
      this.#tls = tlsInfo(socket, true, socket.authorized);
    }
    // A socket error must never become an uncaught exception: keep a listener for good.
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
    this.#attach(socket);
    if (socket.destroyed) this.#handleClose();
  }

  /** The socket currently carrying the session: the TLS socket after STARTTLS. */
  get socket(): Socket {
    return this.#socket;
  }

  get tls(): TlsInfo | null {
    return this.#tls;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#waiter) return Promise.reject(new Error("read() is already pending"));
    if (this.#eof) return Promise.resolve(null);
    if (!this.#upgrading) {
      const chunk = this.#socket.read() as Uint8Array | null;
      if (chunk !== null) return Promise.resolve(chunk);
      if (this.#eof) return Promise.resolve(null);
    }
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  write(data: Uint8Array): Promise<void> {
    const socket = this.#socket;
    if (this.#closing || this.#closed || socket.destroyed) {
      return Promise.reject(this.error ?? new Error("the connection is closed"));
    }
    if (data.length === 0) return RESOLVED;
    // Below the socket's high-water mark the bytes are queued and more may follow at once; past
    // it, wait for 'drain': a client that does not read holds the writer there (backpressure).
    if (socket.write(data)) return RESOLVED;
    return new Promise((resolve, reject) => {
      const done = (error?: Error | null): void => {
        if (!this.#pendingWrites.delete(done)) return;
        if (error) reject(error);
        else resolve();
      };
      this.#pendingWrites.add(done);
      socket.once("drain", () => done());
    });
  }

  async startTls(): Promise<TlsInfo> {
    const options = this.#startTlsOptions;
    if (options === null) throw new Error("STARTTLS is not configured");
    if (this.#tls !== null) throw new Error("the connection is already encrypted");
    if (this.#upgrading) throw new Error("startTls() is already in progress");
    if (this.#eof || this.#closing || this.#socket.destroyed) {
      throw new Error("the connection is closed");
    }
    const raw = this.#socket;
    this.#upgrading = true;
    this.#detach(raw);
    // RFC 3207 §6 (CVE-2024-34083 class): plaintext received before the handshake and not yet
    // handed out by read() must never be taken as TLS or as commands. Node would feed it to the
    // TLS layer as handshake bytes, so drop it here.
    for (let chunk = raw.read() as Uint8Array | null; chunk !== null; chunk = raw.read()) {
      this.discardedBytes += chunk.length;
    }
    const requestCert = options.requestCert ?? false;
    const rejectUnauthorized = options.rejectUnauthorized ?? true;
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: options.secureContext,
      requestCert,
      rejectUnauthorized: requestCert && rejectUnauthorized,
      ...(options.ALPNProtocols === undefined ? {} : { ALPNProtocols: options.ALPNProtocols }),
      ...(options.SNICallback === undefined ? {} : { SNICallback: options.SNICallback }),
    } as tls.TLSSocketOptions);
    secure.on("error", this.#onError);
    secure.on("close", this.#onClose);
    this.#socket = secure;
    try {
      const authorized = await handshake(secure, raw, {
        requestCert,
        rejectUnauthorized,
        timeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
      });
      this.#tls = tlsInfo(secure, false, authorized);
    } catch (error) {
      this.error ??= error as Error;
      this.#upgrading = false;
      this.destroy();
      throw error;
    }
    this.#upgrading = false;
    this.#attach(secure);
    this.#pump();
    return this.#tls;
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const socket = this.#socket;
    this.#endOfInput();
    this.#closing = new Promise<void>((resolve) => {
      void this.closed.then(resolve);
      if (this.#closed) return;
      // Keep reading (and dropping) so the client's FIN is seen and the socket can close.
      this.#detach(socket);
      socket.resume();
      // end() flushes the pending writes first, then sends FIN (TLS: close_notify first).
      socket.end();
      const timer = setTimeout(() => this.destroy(), this.#lingerTimeout);
      timer.unref?.();
      this.#closeWaiters.push(() => clearTimeout(timer));
    });
    return this.#closing;
  }

  destroy(): void {
    this.#endOfInput();
    this.#socket.destroy();
    if (this.#socket !== this.rawSocket) this.rawSocket.destroy();
  }

  #attach(socket: Socket): void {
    socket.on("readable", this.#onReadable);
    socket.on("end", this.#onEnd);
  }

  #detach(socket: Socket): void {
    socket.off("readable", this.#onReadable);
    socket.off("end", this.#onEnd);
  }

  #pump(): void {
    if (this.#waiter === null || this.#upgrading) return;
    const chunk = this.#socket.read() as Uint8Array | null;
    if (chunk === null) return;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter(chunk);
  }

  #endOfInput(): void {
    this.#eof = true;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(null);
  }

  #handleClose(): void {
    this.#endOfInput();
    if (this.#closed) return;
    // During STARTTLS both sockets report 'close'; the session is over at the first one.
    this.#closed = true;
    if (this.#pendingWrites.size > 0) {
      const closed = this.error ?? new Error("the connection is closed");
      for (const pending of [...this.#pendingWrites]) pending(closed);
    }
    for (const waiter of this.#closeWaiters.splice(0)) waiter();
  }
}

/**
 * Waits for the server side of a TLS handshake; resolves with `authorized`. Node reports the
 * failures of a hand-made server TLSSocket unevenly (a handshake timeout only as the internal
 * `_tlsError` event, a dead raw socket on the raw socket), so every source is watched here and
 * the timeout is our own. With `allowHalfOpen` a client that sends FIN mid-handshake never
 * closes the socket: its `end` fails the handshake too.
 */
function handshake(
  socket: TLSSocket,
  raw: Socket,
  options: { requestCert: boolean; rejectUnauthorized: boolean; timeout: number },
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error("TLS handshake timed out")), options.timeout);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off("secure", onSecure);
      socket.off("error", fail);
      socket.off("_tlsError", fail);
      socket.off("close", onClose);
      socket.off("end", onClose);
      raw.off("error", fail);
      raw.off("close", onClose);
      raw.off("end", onClose);
    };
    const fail = (error: Error): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onClose = (): void => fail(new Error("the connection closed during the TLS handshake"));
    const onSecure = (): void => {
      if (!options.requestCert) {
        cleanup();
        resolve(false);
        return;
      }
      // What tls.Server does for its own sockets (onServerSocketSecure in Node's _tls_wrap.js):
      // OpenSSL accepts any certificate during the handshake and Node verifies afterwards.
      const verifyError = verificationError(socket);
      if (verifyError !== null && options.rejectUnauthorized) {
        fail(verifyError);
        return;
      }
      cleanup();
      resolve(verifyError === null);
    };
    socket.on("secure", onSecure);
    socket.on("error", fail);
    socket.on("_tlsError", fail);
    socket.on("close", onClose);
    socket.on("end", onClose);
    raw.on("error", fail);
    raw.on("close", onClose);
    raw.on("end", onClose);
  });
}

/** The client certificate's verification error (Node keeps it on the internal TLSWrap handle). */
function verificationError(socket: TLSSocket): Error | null {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  if (typeof handle?.verifyError !== "function") {
    return new Error("cannot verify the client certificate on this Node version");
  }
  return handle.verifyError() ?? null;
}

function tlsInfo(socket: TLSSocket, implicit: boolean, authorized: boolean): TlsInfo {
  // An empty object when no client certificate was requested or sent.
  const peerCert = socket.getPeerCertificate();
  const own = socket.getCertificate() as { raw?: Uint8Array } | null;
  const servername = (socket as { servername?: unknown }).servername;
  return {
    protocol: socket.getProtocol() ?? null,
    cipher: socket.getCipher()?.name ?? null,
    servername: typeof servername === "string" ? servername : null,
    alpnProtocol: typeof socket.alpnProtocol === "string" ? socket.alpnProtocol : null,
    implicit,
    peerCertificate: peerCert && Object.keys(peerCert).length > 0 ? peerCert : null,
    authorized,
    exportKeyingMaterial(length: number, label: string, context?: Uint8Array): Uint8Array {
      const material = socket.exportKeyingMaterial(
        length,
        label,
        (context === undefined ? undefined : Buffer.from(context)) as Buffer,
      );
      return new Uint8Array(material.buffer, material.byteOffset, material.byteLength);
    },
    serverCertificate: own?.raw ? new Uint8Array(own.raw) : null,
  };
}

function address(
  host: string | undefined,
  port: number | undefined,
  family: string | undefined,
): PeerAddress | null {
  if (host === undefined || (family !== "IPv4" && family !== "IPv6")) return null;
  return { address: host, port: port ?? 0, family };
}

/** Unix-domain sockets have neither a local nor a remote IP address. */
function isUnixSocket(socket: Socket, unixPath: string | undefined): boolean {
  if (unixPath !== undefined) return true;
  return (
    socket.localAddress === undefined && socket.remoteAddress === undefined && !socket.destroyed
  );
}

const RESOLVED: Promise<void> = Promise.resolve();
