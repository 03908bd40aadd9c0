import * as net from "node:net";
import * as tls from "node:tls";

/** A raw SMTP client: send lines, read whole replies, upgrade with STARTTLS. */
export class LineClient {
  #socket: net.Socket;
  #buffer = "";
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  static connect(
    port: number,
    options: { implicitTls?: boolean; tls?: tls.ConnectionOptions } = {},
  ): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = options.implicitTls
        ? tls.connect({ port, host: "127.0.0.1", rejectUnauthorized: false, ...options.tls })
        : net.connect({ port, host: "127.0.0.1" });
      socket.once("error", reject);
      socket.once(options.implicitTls ? "secureConnect" : "connect", () => {
        socket.off("error", reject);
        resolve(new LineClient(socket));
      });
    });
  }

  #listen(socket: net.Socket): void {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      this.#wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    socket.on("error", () => undefined);
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** One complete reply (multi-line replies joined with \n); null when the server closed first. */
  async reply(): Promise<string | null> {
    for (;;) {
      const match = /(^|\r\n)\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#buffer);
      if (match) {
        const end = match.index + match[0].length;
        const text = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end);
        return text.trimEnd().replaceAll("\r\n", "\n");
      }
      if (this.closed) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async command(line: string): Promise<string | null> {
    this.#socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** STARTTLS and the handshake; resolves with the TLS socket's state. */
  async startTls(options: tls.ConnectionOptions = {}): Promise<void> {
    const reply = await this.command("STARTTLS");
    if (!reply?.startsWith("220")) throw new Error(`STARTTLS refused: ${reply}`);
    const plain = this.#socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = tls.connect({
      socket: plain,
      rejectUnauthorized: false,
      servername: "localhost",
      ...options,
    });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    this.#socket = secure;
    this.#listen(secure);
  }

  /** Resolves once the server closed the connection. */
  async closedByServer(): Promise<void> {
    while (!this.closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.#socket.destroy();
  }
}
