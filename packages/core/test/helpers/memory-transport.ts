import type { PeerAddress, SmtpTransport, TlsInfo } from "../../src/server/transport.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * An in-memory transport: the test plays the client, writing bytes and reading the server's
 * replies line by line. STARTTLS "upgrades" instantly and drops unread input, as a real one must.
 */
export class MemoryTransport implements SmtpTransport {
  readonly peer: PeerAddress = { address: "127.0.0.1", port: 40000, family: "IPv4" };
  readonly local: PeerAddress = { address: "127.0.0.1", port: 25, family: "IPv4" };
  tls: TlsInfo | null;
  readonly canStartTls: boolean;
  closed = false;
  private incoming: Uint8Array[] = [];
  private reader: ((data: Uint8Array | null) => void) | null = null;
  private ended = false;
  private output = "";
  private outputWaiters: (() => void)[] = [];
  private handshakeWaiters: (() => void)[] = [];

  constructor(options: { startTls?: boolean; implicitTls?: boolean } = {}) {
    this.canStartTls = options.startTls ?? false;
    this.tls = options.implicitTls ? tlsInfo(true) : null;
  }

  // Server side.
  read(): Promise<Uint8Array | null> {
    const next = this.incoming.shift();
    if (next) return Promise.resolve(next);
    if (this.ended || this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.reader = resolve;
    });
  }
  async write(data: Uint8Array): Promise<void> {
    this.output += decoder.decode(data);
    for (const wake of this.outputWaiters.splice(0)) wake();
  }
  async startTls(): Promise<TlsInfo> {
    this.incoming = [];
    this.tls = tlsInfo(false);
    for (const wake of this.handshakeWaiters.splice(0)) wake();
    return this.tls;
  }
  /** Resolves once the server has "completed" a TLS handshake, as a real client would wait for. */
  handshake(): Promise<void> {
    if (this.tls) return Promise.resolve();
    return new Promise((resolve) => this.handshakeWaiters.push(resolve));
  }
  async close(): Promise<void> {
    this.closed = true;
    this.reader?.(null);
    this.reader = null;
    for (const wake of this.outputWaiters.splice(0)) wake();
  }
  destroy(): void {
    void this.close();
  }

  // Client side.
  send(text: string | Uint8Array): void {
    const data = typeof text === "string" ? encoder.encode(text) : text;
    if (this.reader) {
      const resolve = this.reader;
      this.reader = null;
      resolve(data);
    } else {
      this.incoming.push(data);
    }
  }
  end(): void {
    this.ended = true;
    this.reader?.(null);
    this.reader = null;
  }
  /** Everything the server sent so far, consumed. */
  take(): string {
    const out = this.output;
    this.output = "";
    return out;
  }
  /** Waits until the server has sent `count` complete replies (final lines), then returns them. */
  async replies(count: number): Promise<string[]> {
    for (;;) {
      const finals = this.output.split("\r\n").filter((line) => /^\d{3}( |$)/.test(line));
      if (finals.length >= count || this.closed) {
        const lines = this.output.split("\r\n");
        let seen = 0;
        let cut = 0;
        for (let i = 0; i < lines.length && seen < count; i++) {
          cut += (lines[i] ?? "").length + 2;
          if (/^\d{3}( |$)/.test(lines[i] ?? "")) seen++;
        }
        const taken = this.output.slice(0, cut);
        this.output = this.output.slice(cut);
        return taken.split("\r\n").filter((line) => line !== "");
      }
      await new Promise<void>((resolve) => this.outputWaiters.push(resolve));
    }
  }
  /** Sends a command and returns its reply lines. */
  async command(line: string, replies = 1): Promise<string[]> {
    this.send(`${line}\r\n`);
    return this.replies(replies);
  }
}

function tlsInfo(implicit: boolean): TlsInfo {
  return {
    protocol: "TLSv1.3",
    cipher: "TLS_AES_256_GCM_SHA384",
    servername: null,
    alpnProtocol: null,
    implicit,
    peerCertificate: null,
    authorized: false,
  };
}
