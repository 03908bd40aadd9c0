import type { Socket } from "node:net";
import type * as tls from "node:tls";
import { TLSSocket } from "node:tls";
import {
  type PeerAddress,
  peerAddress,
  type RawSocket,
  type RawSocketEvents,
  SocketTransport,
  type TlsInfo,
} from "@smtpkit/core/server";

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

/** A Node socket as the core's `RawSocket` (a TLS one keeps the plaintext socket `below`). */
export class NodeSocket implements RawSocket {
  #events: RawSocketEvents | null = null;
  declare startTls?: RawSocket["startTls"];

  constructor(
    readonly stream: Socket,
    readonly peer: PeerAddress | null,
    readonly local: PeerAddress | null,
    options?: StartTlsOptions,
    readonly below: Socket | null = null,
  ) {
    if (options) this.startTls = () => upgrade(this, options);
  }

  listen(events: RawSocketEvents): void {
    this.#events = events;
    const stream = this.stream;
    stream.on("data", events.data).on("end", events.end).on("drain", events.drain);
    // A socket error must never become an uncaught exception: the listeners stay for good.
    for (const socket of [stream, this.below])
      socket?.on("error", events.error).on("close", events.close);
    // Node reports a handshake failure of a hand-made server TLSSocket only as `_tlsError`.
    stream.on("_tlsError", events.error);
    if (stream.destroyed) queueMicrotask(events.close);
  }

  /** Hands the socket over to TLS: no more data events; plaintext Node still holds is discarded. */
  detach(): void {
    const events = this.#events;
    if (!events) return;
    const stream = this.stream;
    stream.off("data", events.data).off("end", events.end).off("drain", events.drain).pause();
    for (let chunk = stream.read() as Uint8Array | null; chunk; chunk = stream.read()) {
      events.data(chunk);
    }
  }

  pause = (): void => void this.stream.pause();
  resume = (): void => void this.stream.resume();
  write = (data: Uint8Array): boolean => this.stream.write(data);
  end = (): void => void this.stream.end();
  destroy(): void {
    this.stream.destroy();
    this.below?.destroy();
  }
}

/** The core's `RawSocket` over a `net.Socket` (or an already secured `tls.TLSSocket`). */
export function nodeSocket(socket: Socket, startTls?: StartTlsOptions, unixPath?: string) {
  // Unix-domain sockets have neither a local nor a remote IP address.
  const unix =
    unixPath !== undefined ||
    (socket.localAddress === undefined && socket.remoteAddress === undefined && !socket.destroyed);
  return unix
    ? new NodeSocket(socket, peerAddress("", 0, "unix"), peerAddress(unixPath, 0, "unix"), startTls)
    : new NodeSocket(
        socket,
        peerAddress(socket.remoteAddress, socket.remotePort, socket.remoteFamily),
        peerAddress(socket.localAddress, socket.localPort, socket.localFamily),
        startTls,
      );
}

/** The core's `SocketTransport` over a `net.Socket` (a secured `tls.TLSSocket`: implicit TLS). */
export class NodeTransport extends SocketTransport {
  /** The socket accepted from the client (the plaintext one under STARTTLS). */
  readonly rawSocket: Socket;

  constructor(socket: Socket, options: NodeTransportOptions = {}) {
    const implicit = socket instanceof TLSSocket && socket.encrypted;
    const startTls = implicit ? undefined : options.startTls;
    super(nodeSocket(socket, startTls, options.unixPath), {
      tls: implicit ? tlsInfo(socket, true, socket.authorized) : null,
      handshakeTimeout: options.startTls?.handshakeTimeout,
      lingerTimeout: options.lingerTimeout,
    });
    this.rawSocket = socket;
  }

  /** The socket currently carrying the session: the TLS socket after STARTTLS. */
  get socket(): Socket {
    return (this.raw as NodeSocket).stream;
  }
}

/** STARTTLS: a server TLSSocket over the plaintext socket (the handshake timeout is the core's). */
function upgrade(plain: NodeSocket, options: StartTlsOptions) {
  // RFC 3207 §6: Node would feed plaintext it still buffers to TLS; detach() hands it to the core.
  plain.detach();
  const raw = plain.stream;
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
  const handshake = new Promise<TlsInfo>((resolve, reject) => {
    secure.once("secure", () => {
      if (!requestCert) return resolve(tlsInfo(secure, false, false));
      // What tls.Server does for its own sockets (onServerSocketSecure in Node's _tls_wrap.js):
      // OpenSSL accepts any certificate during the handshake and Node verifies afterwards.
      const verifyError = verificationError(secure);
      if (verifyError !== null && rejectUnauthorized) return reject(verifyError);
      resolve(tlsInfo(secure, false, verifyError === null));
    });
  });
  return { socket: new NodeSocket(secure, plain.peer, plain.local, undefined, raw), handshake };
}

/** The client certificate's verification error (Node keeps it on the internal TLSWrap handle). */
function verificationError(socket: TLSSocket): Error | null {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
  if (typeof handle?.verifyError !== "function") {
    return new Error("cannot verify the client certificate on this Node version");
  }
  return handle.verifyError() ?? null;
}

export function tlsInfo(socket: TLSSocket, implicit: boolean, authorized: boolean): TlsInfo {
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
