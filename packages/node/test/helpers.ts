import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";

export interface Certificate {
  readonly key: string;
  readonly cert: string;
}

/** A throwaway self-signed certificate for `localhost` / 127.0.0.1, made with openssl. */
export function makeCertificate(commonName = "localhost"): Certificate {
  const dir = mkdtempSync(join(tmpdir(), "smtpkit-cert-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-days",
        "2",
        "-subj",
        `/CN=${commonName}`,
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
    return {
      key: readFileSync(join(dir, "key.pem"), "utf8"),
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A raw line client: send lines, read whole (multi-line) SMTP replies. */
export class LineClient {
  socket: net.Socket;
  #buffer = "";
  #waiters: (() => void)[] = [];
  ended = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.#listen(socket);
  }

  static connect(port: number, host = "127.0.0.1"): Promise<LineClient> {
    return LineClient.#open(net.connect({ port, host }));
  }

  static connectPath(path: string): Promise<LineClient> {
    return LineClient.#open(net.connect({ path }));
  }

  static #open(socket: net.Socket): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      socket.once("error", reject);
      socket.once("connect", () => {
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
    socket.on("end", () => {
      this.ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.ended = true;
      this.#wake();
    });
    socket.on("error", () => undefined);
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(data, (error) => (error ? reject(error) : resolve())),
    );
  }

  /** Sends one command line (CRLF added) and returns the reply ("(closed)" if none came). */
  async command(line: string): Promise<string> {
    await this.write(`${line}\r\n`);
    return (await this.reply()) ?? "(closed)";
  }

  /** The next complete reply, lines joined with "\n"; `null` once the server closed. */
  async reply(): Promise<string | null> {
    for (;;) {
      const lines = this.#buffer.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3} /.test(lines[i] ?? "") || /^\d{3}$/.test(lines[i] ?? "")) {
          const reply = lines.slice(0, i + 1).join("\n");
          this.#buffer = lines.slice(i + 1).join("\r\n");
          return reply;
        }
      }
      if (this.ended) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Everything received and not yet consumed by reply(). */
  get pending(): string {
    return this.#buffer;
  }

  /** Waits until the server closes the connection. */
  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Upgrades to TLS (client side of STARTTLS); resolves once the handshake is done. */
  upgrade(options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
    const raw = this.socket;
    raw.removeAllListeners("data");
    raw.removeAllListeners("end");
    raw.removeAllListeners("close");
    return new Promise((resolve, reject) => {
      if (raw.destroyed) {
        reject(new Error("the server closed the connection"));
        return;
      }
      raw.once("close", () => reject(new Error("the server closed the connection")));
      const secure = tls.connect({
        socket: raw,
        rejectUnauthorized: false,
        servername: "localhost",
        ...options,
      });
      secure.once("error", reject);
      secure.once("secureConnect", () => {
        secure.off("error", reject);
        this.socket = secure;
        this.ended = false;
        this.#listen(secure);
        resolve(secure);
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true (or throws after `timeout` ms). */
export async function waitFor(
  check: () => boolean,
  timeout = 10_000,
  what = "condition",
): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** Polls until `value()` stops changing for `stableFor` ms; returns the settled value. */
export async function settle(value: () => number, stableFor = 300): Promise<number> {
  let last = value();
  let since = Date.now();
  for (;;) {
    await delay(25);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= stableFor) {
      return now;
    }
  }
}
