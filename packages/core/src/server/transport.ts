/**
 * The contract between the runtime-free SMTP server and a connection. Adapters get it from the
 * core's `SocketTransport` (socket-transport.ts) by supplying their runtime's socket as a
 * `RawSocket`; every protocol decision stays in the core.
 */

/** A network peer as the transport sees it. */
export interface PeerAddress {
  readonly address: string;
  readonly port: number;
  readonly family: "IPv4" | "IPv6" | "unix";
}

/** What is known about an encrypted connection (aiosmtpd's `session.ssl`, runtime-neutral). */
export interface TlsInfo {
  /** `"TLSv1.3"` etc. */
  readonly protocol: string | null;
  readonly cipher: string | null;
  /** SNI host name the client asked for. */
  readonly servername: string | null;
  readonly alpnProtocol: string | null;
  /** True when the connection was encrypted from the start (SMTPS), false after STARTTLS. */
  readonly implicit: boolean;
  /** The client certificate, when one was requested and sent (runtime-specific object). */
  readonly peerCertificate: unknown;
  /** Whether the client certificate verified against the configured CAs. */
  readonly authorized: boolean;
  /** RFC 9266 `tls-exporter` channel binding, when the runtime offers it (TLS 1.3). */
  exportKeyingMaterial?(length: number, label: string, context?: Uint8Array): Uint8Array;
  /** DER of the server certificate, for RFC 5929 `tls-server-end-point`. */
  readonly serverCertificate?: Uint8Array | null;
}

export interface SmtpTransport {
  /** The connected client (for PROXY connections: the proxy). `null` if unknown. */
  readonly peer: PeerAddress | null;
  readonly local: PeerAddress | null;
  /** Non-null when the connection is encrypted (implicit TLS from the start, or after startTls()). */
  readonly tls: TlsInfo | null;
  /** Whether `startTls()` can work (a TLS context was configured). */
  readonly canStartTls: boolean;
  /**
   * The next received bytes, `null` at end of input. Reading is pull-based: the adapter stops
   * reading the socket while nobody asks, which is the backpressure towards the client.
   */
  read(): Promise<Uint8Array | null>;
  /** Queues bytes for the client; resolves when the runtime can take more (backpressure). */
  write(data: Uint8Array): Promise<void>;
  /**
   * Upgrades the connection to TLS in place (server side of STARTTLS). Bytes received before the
   * handshake and not yet returned by `read()` are discarded (RFC 3207 §6). Rejects when the
   * handshake fails.
   */
  startTls(): Promise<TlsInfo>;
  /** Flushes pending writes, then closes. Idempotent. */
  close(): Promise<void>;
  /** Closes at once, dropping pending writes (client gone, hard shutdown). */
  destroy(): void;
}

/**
 * What an adapter calls per accepted connection. `SMTP.handleConnection` implements it; the
 * returned promise settles when the session is over and the transport closed.
 */
export type ConnectionHandler = (transport: SmtpTransport) => Promise<void>;
