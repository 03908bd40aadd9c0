import { connect, type Socket } from "node:net";
import nodemailer from "nodemailer";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, killAll, type RunningCli, startCli } from "./cli-helpers.js";

afterEach(killAll);

/** One message over its own connection; resolves with the server's final reply. */
async function send(port: number, n: number): Promise<string> {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    // A connection handed to a worker at the moment it is SIGKILLed is lost with it: give up
    // on it soon and try the next one, as a mail client's retry would.
    greetingTimeout: 3000,
    connectionTimeout: 3000,
  });
  const info = await transport.sendMail({
    envelope: { from: "a@example.com", to: ["b@example.com"] },
    raw: `Subject: ${n}\r\n\r\nhello ${n}\r\n`,
  });
  return info.response;
}

const pidOf = (reply: string) => Number(/pid (\d+)/.exec(reply)?.[1]);

/** Sends until `count` different worker pids have answered (or the deadline passes). */
async function pidsAnswering(cli: RunningCli, count: number, exclude = new Set<number>()) {
  const seen = new Set<number>();
  const deadline = Date.now() + 20_000;
  for (let n = 0; seen.size < count && Date.now() < deadline; n++) {
    const reply = await send(cli.port, n).catch(() => "");
    const pid = pidOf(reply);
    if (pid && !exclude.has(pid)) seen.add(pid);
  }
  return seen;
}

/** A raw SMTP dialogue step: writes `text` and waits for a reply line starting with `code`. */
function replyTo(socket: Socket, text: string | null, code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`no ${code} reply: ${buffered}`)), 15_000);
    const onData = (data: Buffer) => {
      buffered += data.toString("latin1");
      const line = buffered.split("\r\n").find((l) => /^\d{3} /.test(l));
      if (line) {
        socket.off("data", onData);
        clearTimeout(timer);
        if (line.startsWith(code)) resolve(line);
        else reject(new Error(`expected ${code}, got ${line}`));
      }
    };
    socket.on("data", onData);
    if (text !== null) socket.write(text);
  });
}

describe("--workers", () => {
  it("serves from 2 worker processes, restarts one killed with SIGKILL", async () => {
    const port = await freePort();
    const cli = await startCli([
      "-n",
      "-l",
      `127.0.0.1:${port}`,
      "--workers",
      "2",
      "-c",
      "test/fixtures/pid-handler.mjs",
    ]);
    expect(cli.banner).toContain("2 workers");
    const pids = await pidsAnswering(cli, 2);
    expect(pids.size).toBe(2);
    expect(pids.has(cli.child.pid ?? -1)).toBe(false);

    const [victim] = [...pids];
    process.kill(victim as number, "SIGKILL");
    // Its replacement answers: a new pid next to the survivor.
    const fresh = await pidsAnswering(cli, 1, pids);
    expect(fresh.size).toBe(1);
    const after = await pidsAnswering(cli, 2, new Set([victim as number]));
    expect(after.size).toBe(2);

    expect(await cli.stop("SIGTERM")).toBe(0);
  }, 60_000);

  it("SIGTERM during an open DATA: the transaction completes with 250, the process exits 0", async () => {
    const port = await freePort();
    const cli = await startCli([
      "-n",
      "-l",
      `127.0.0.1:${port}`,
      "--workers",
      "2",
      "-c",
      "test/fixtures/pid-handler.mjs",
    ]);
    const socket = connect(port, "127.0.0.1");
    await replyTo(socket, null, "220");
    await replyTo(socket, "EHLO client\r\n", "250");
    await replyTo(socket, "MAIL FROM:<a@example.com>\r\n", "250");
    await replyTo(socket, "RCPT TO:<b@example.com>\r\n", "250");
    await replyTo(socket, "DATA\r\n", "354");
    socket.write("Subject: in flight\r\n\r\nfirst half\r\n");

    cli.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(cli.child.exitCode).toBeNull(); // still draining

    const reply = await replyTo(socket, "second half\r\n.\r\n", "250");
    expect(reply).toMatch(/^250 2\.0\.0 OK stored by pid \d+/);
    socket.write("QUIT\r\n");
    socket.on("error", () => undefined);
    expect(await cli.exited).toBe(0);
    // Nothing listens any more.
    const refused = await new Promise<boolean>((resolve) => {
      const probe = connect(port, "127.0.0.1");
      probe.once("connect", () => {
        probe.destroy();
        resolve(false);
      });
      probe.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  }, 60_000);

  it("rejects a bad --workers value with a usage error", async () => {
    const { runCli } = await import("./cli-helpers.js");
    const result = await runCli(["-n", "--workers", "zero"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--workers: invalid int value/);
  });
});
