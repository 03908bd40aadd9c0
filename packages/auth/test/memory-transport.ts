import type { PeerAddress, SmtpTransport, TlsInfo } from "@smtpkit/core/server";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function fakeTls(overrides: Partial<TlsInfo> = {}): TlsInfo {
  return {
    protocol: "TLSv1.3",
    cipher: "TLS_AES_256_GCM_SHA384",
    servername: null,
    alpnProtocol: null,
    implicit: true,
    peerCertificate: null,
    authorized: false,
    ...overrides,
  };
}

/** An in-memory transport: the test plays the client line by line. */
export class MemoryTransport implements SmtpTransport {
  readonly peer: PeerAddress = { address: "127.0.0.1", port: 40000, family: "IPv4" };
  readonly local: PeerAddress = { address: "127.0.0.1", port: 25, family: "IPv4" };
  readonly canStartTls = false;
  tls: TlsInfo | null;
  closed = false;
  private incoming: Uint8Array[] = [];
  private reader: ((data: Uint8Array | null) => void) | null = null;
  private output = "";
  private waiters: (() => void)[] = [];

  constructor(tls: TlsInfo | null = null) {
    this.tls = tls;
  }
  read(): Promise<Uint8Array | null> {
    const next = this.incoming.shift();
    if (next) return Promise.resolve(next);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.reader = resolve;
    });
  }
  async write(data: Uint8Array): Promise<void> {
    this.output += decoder.decode(data);
    for (const wake of this.waiters.splice(0)) wake();
  }
  async startTls(): Promise<TlsInfo> {
    throw new Error("no TLS here");
  }
  async close(): Promise<void> {
    this.closed = true;
    this.reader?.(null);
    this.reader = null;
    for (const wake of this.waiters.splice(0)) wake();
  }
  destroy(): void {
    void this.close();
  }
  send(text: string): void {
    const data = encoder.encode(text);
    if (this.reader) {
      const resolve = this.reader;
      this.reader = null;
      resolve(data);
    } else this.incoming.push(data);
  }
  /** Waits for one complete reply (up to its final line); `null` if the server closed first. */
  async reply(): Promise<string | null> {
    for (;;) {
      const match = /(^|\r\n)\d{3}(?: [^\r\n]*)?\r\n/.exec(this.output);
      if (match) {
        const end = match.index + match[0].length;
        const text = this.output.slice(0, end);
        this.output = this.output.slice(end);
        return text.trimEnd();
      }
      if (this.closed) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
  async command(line: string): Promise<string | null> {
    this.send(`${line}\r\n`);
    return this.reply();
  }
  /** Everything still unread. */
  rest(): string {
    return this.output;
  }
}
