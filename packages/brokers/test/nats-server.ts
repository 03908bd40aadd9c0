import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether nats-server is installed; in CI its absence fails the tests instead of skipping them. */
export const natsServerMissing: string | false = (() => {
  const found = spawnSync("nats-server", ["--version"], { encoding: "utf8" });
  if (found.status === 0) return false;
  if (process.env.CI)
    throw new Error("nats-server is required in CI (apt-get install nats-server)");
  return "nats-server not installed";
})();

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A real nats-server with JetStream on 127.0.0.1, its store in a temporary directory. */
export class NatsServer {
  readonly storeDir = mkdtempSync(join(tmpdir(), "smtpkit-nats-"));
  port = 0;
  #child: ChildProcess | null = null;

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts it (again, on the same port and store directory) and resolves once it is ready. */
  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      "nats-server",
      ["-js", "-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(
        () => reject(new Error(`nats-server did not start:\n${output}`)),
        15_000,
      );
      child.stderr?.on("data", (data: Buffer) => {
        output += data.toString();
        if (output.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${output}`));
      });
    });
    child.stderr?.resume();
  }

  /** SIGTERM, and resolves once the process is gone. */
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

  signal(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  async dispose(): Promise<void> {
    if (this.#child) this.#child.kill("SIGCONT");
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
