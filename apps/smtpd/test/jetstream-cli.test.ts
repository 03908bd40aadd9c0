import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, killAll, startCli } from "./cli-helpers.js";

afterEach(killAll);

const natsServerMissing: string | false = (() => {
  if (spawnSync("nats-server", ["--version"]).status === 0) return false;
  if (process.env.CI)
    throw new Error("nats-server is required in CI (apt-get install nats-server)");
  return "nats-server not installed";
})();

async function startNats(port: number, storeDir: string): Promise<ChildProcess> {
  const child = spawn(
    "nats-server",
    ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => reject(new Error(`nats-server did not start: ${output}`)),
      15_000,
    );
    child.stderr?.on("data", (data: Buffer) => {
      output += data.toString();
      if (output.includes("Server is ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.stderr?.resume();
  return child;
}

const send = (port: number) =>
  nodemailer.createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true }).sendMail({
    envelope: { from: "a@example.com", to: ["b@example.com"] },
    raw: "Subject: x\r\n\r\nhi\r\n",
  });

describe.skipIf(natsServerMissing)("-c JetStream nats://HOST:PORT SUBJECT", () => {
  it("publishes through a real nats-server, 451 when it is gone", async () => {
    const natsPort = await freePort();
    const storeDir = mkdtempSync(join(tmpdir(), "smtpkit-cli-nats-"));
    const nats = await startNats(natsPort, storeDir);
    try {
      const port = await freePort();
      const cli = await startCli([
        "-n",
        "-l",
        `127.0.0.1:${port}`,
        "-c",
        "JetStream",
        `nats://127.0.0.1:${natsPort}`,
        "mail.cli",
      ]);
      expect(cli.banner).toContain("handler JetStream");
      expect((await send(port)).response).toMatch(/^250 /);
      const exited = new Promise((resolve) => nats.once("exit", resolve));
      nats.kill("SIGTERM");
      await exited;
      const error = (await send(port).catch((e: unknown) => e)) as { responseCode?: number };
      expect(error.responseCode).toBe(451);
      expect(await cli.stop("SIGTERM")).toBe(0);
    } finally {
      nats.kill("SIGKILL");
      rmSync(storeDir, { recursive: true, force: true });
    }
  }, 60_000);

  it("refuses a missing subject with a usage error", async () => {
    const { runCli } = await import("./cli-helpers.js");
    const result = await runCli(["-n", "-c", "JetStream", "nats://127.0.0.1:4222"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/server URL and a subject/);
  });
});
