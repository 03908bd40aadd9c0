import type { ClientSocket, ComplianceRuntime } from "./types.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");
/** How long one reply may take before the case fails with a readable message. */
const REPLY_TIMEOUT = 15_000;

/**
 * A minimal SMTP client for the cases a real client cannot express (pipelined batches, injection,
 * a stalled body): raw lines out, whole replies in. Reads only when asked, so `startTls()` never
 * races a pending read.
 */
export class SmtpClient {
  #socket: ClientSocket;
  #buffer = "";
  #ended = false;

  private constructor(socket: ClientSocket) {
    this.#socket = socket;
  }

  static async connect(runtime: ComplianceRuntime, host: string, port: number) {
    return new SmtpClient(await runtime.connect(host, port));
  }

  /** Everything received and not yet returned by `reply()`. */
  get pending(): string {
    return this.#buffer;
  }

  get ended(): boolean {
    return this.#ended;
  }

  send(data: string | Uint8Array): Promise<void> {
    return this.#socket.write(typeof data === "string" ? encoder.encode(data) : data);
  }

  /** Sends one command line (CRLF added) and returns its reply (`"(closed)"` if none came). */
  async command(line: string): Promise<string> {
    await this.send(`${line}\r\n`);
    return (await this.reply()) ?? "(closed)";
  }

  /** The next complete reply, its lines joined with "\n"; `null` once the server closed. */
  async reply(timeout = REPLY_TIMEOUT): Promise<string | null> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const lines = this.#buffer.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3}( |$)/.test(lines[i] ?? "")) {
          this.#buffer = lines.slice(i + 1).join("\r\n");
          return lines.slice(0, i + 1).join("\n");
        }
      }
      if (this.#ended) return null;
      await this.#fill(deadline, "a reply");
    }
  }

  /** `count` replies in a row. */
  async replies(count: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push((await this.reply()) ?? "(closed)");
    return out;
  }

  /** Reads until the server closes the connection; what came meanwhile stays in `pending`. */
  async closed(timeout = REPLY_TIMEOUT): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!this.#ended) await this.#fill(deadline, "the server to close the connection");
  }

  /** Client side of STARTTLS (call it after the 220 reply). */
  async startTls(ca: string, servername = "localhost"): Promise<void> {
    this.#socket = await this.#socket.startTls({ servername, ca });
  }

  close(): void {
    this.#ended = true;
    this.#socket.close();
  }

  async #fill(deadline: number, what: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
    });
    try {
      const chunk = await Promise.race([this.#socket.read(), expired]);
      if (chunk === "timeout") {
        throw new Error(`timed out waiting for ${what}; received so far: ${show(this.#buffer)}`);
      }
      if (chunk === null) {
        // The server closed: hang up too, as a client does (the server may wait for our FIN).
        this.#ended = true;
        this.#socket.close();
      } else this.#buffer += decoder.decode(chunk);
    } finally {
      clearTimeout(timer);
    }
  }
}

export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 600 ? `${text.slice(0, 600)}...` : text;
}
