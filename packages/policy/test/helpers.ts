// Servers, raw clients and a real redis-server for the policy tests; all stopped after each test.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as net from "node:net";
import { type Handler, type SmtpServer, serve } from "@smtpkit/node";
import { afterEach } from "vitest";

/** A raw SMTP client that may connect from a chosen local address (`127.0.0.2`, ...). */
export class LineClient {
  readonly socket: net.Socket;
  #buffer = "";
  #waiters: (() => void)[] = [];
  ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      this.#wake();
    });
    for (const event of ["end", "close"])
      socket.on(event, () => {
        this.ended = true;
        this.#wake();
      });
    socket.on("error", () => undefined);
  }

  static connect(port: number, localAddress = "127.0.0.1"): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: "127.0.0.1", localAddress });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new LineClient(socket));
      });
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Sends one line (CRLF added) and returns the reply, `(closed)` when none came. */
  async command(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return (await this.reply()) ?? "(closed)";
  }

  /** The next whole reply, lines joined with "\n"; `null` once the server closed. */
  async reply(): Promise<string | null> {
    for (;;) {
      const lines = this.#buffer.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3}(?: |$)/.test(lines[i] ?? "")) {
          this.#buffer = lines.slice(i + 1).join("\r\n");
          return lines.slice(0, i + 1).join("\n");
        }
      }
      if (this.ended) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** `serve()` on free ports and raw clients, all closed after each test. */
export function servedForEachTest() {
  const servers: SmtpServer[] = [];
  const clients: LineClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  });
  return {
    async start(handler: Handler, options: Parameters<typeof serve>[1] = {}) {
      const server = await serve(handler, {
        port: 0,
        host: "127.0.0.1",
        hostname: "mx.test",
        ...options,
      });
      servers.push(server);
      return server;
    },
    /** A raw client (greeting not read yet), from `localAddress`. */
    async open(server: SmtpServer, localAddress?: string): Promise<LineClient> {
      const client = await LineClient.connect(server.port, localAddress);
      clients.push(client);
      return client;
    },
  };
}

/** Resolves once `check()` holds (polling), or fails after `timeoutMs`. */
export async function until(
  check: () => boolean,
  what: string,
  timeoutMs = 5000,
  refresh?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await refresh?.();
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Why the Redis tests cannot run here, or false; in CI a missing redis-server fails them. */
export const redisServerMissing: string | false = (() => {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (found.status === 0) return false;
  if (process.env.CI)
    throw new Error("redis-server is required in CI (apt-get install redis-server)");
  return "redis-server not installed";
})();

/** A real redis-server on 127.0.0.1, nothing saved to disk. */
export class RedisServer {
  port = 0;
  #child: ChildProcess | null = null;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start:\n${output}`)),
        15_000,
      );
      const onData = (data: Buffer) => {
        output += data.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
