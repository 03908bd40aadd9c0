// The connection-policy flags: parsed, then over real sockets against the built CLI (one process,
// and two processes sharing one budget through a real redis-server).
import { connect, type Socket } from "node:net";
import nodemailer from "nodemailer";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseArgs } from "../src/options.js";
import { killAll, startCli } from "./cli-helpers.js";
import { redisServerMissing, startRedis } from "./redis-server.js";

afterEach(killAll);

const parse = (...argv: string[]) => parseArgs(argv, { version: "1.2.3", exists: () => true });

describe("the policy flags", () => {
  it("parse into limits", () => {
    const result = parse(
      "--max-connections-per-ip",
      "3",
      "--rate-limit-connections",
      "30/1",
      "--rate-limit-messages",
      "100/60",
      "--rate-limit-recipients",
      "5/30s",
      "--max-auth-failures",
      "5",
      "--redis",
      "redis://127.0.0.1:6379/2",
    );
    expect(result.kind).toBe("run");
    if (result.kind !== "run") return;
    expect(result.options.policy).toEqual({
      maxConnectionsPerIp: 3,
      connectionRate: { limit: 30, windowMs: 60_000 },
      messageRate: { limit: 100, windowMs: 3_600_000 },
      recipientRate: { limit: 5, windowMs: 30_000 },
      authFailures: { limit: 5, windowMs: 60_000 },
      redis: "redis://127.0.0.1:6379/2",
    });
  });

  it.each([
    [["--max-connections-per-ip", "0"], /--max-connections-per-ip <N>' argument '0' is invalid/],
    [["--rate-limit-messages", "ten/1"], /is not a rate: expected N\/MINUTES/],
    [["--rate-limit-connections", "5/0"], /the window must be at least 1 second/],
    [
      ["--redis", "http://x", "--max-connections-per-ip", "1"],
      /is not a redis:\/\/ or rediss:\/\/ URL/,
    ],
    [["--redis", "redis://127.0.0.1"], /argument --redis: needs a limit/],
  ])("%j is a usage error", (argv, message) => {
    const result = parse(...argv);
    expect(result).toMatchObject({ kind: "exit", code: 2 });
    if (result.kind === "exit") expect(result.stderr).toMatch(message);
  });

  it("--help lists them", () => {
    const result = parse("--help");
    if (result.kind !== "exit") throw new Error("expected --help to exit");
    for (const flag of [
      "--max-connections-per-ip <N>",
      "--rate-limit-connections <N/MIN>",
      "--rate-limit-messages <N/MIN>",
      "--rate-limit-recipients <N/MIN>",
      "--max-auth-failures <N/MIN>",
      "--redis <URL>",
    ])
      expect(result.stdout).toContain(flag);
  });
});

/** The first reply on a new connection to `port`, and the socket (still open). */
function greeting(port: number): Promise<{ reply: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      data += chunk;
      if (data.endsWith("\r\n")) resolve({ reply: data.trimEnd(), socket });
    });
    socket.once("error", reject);
  });
}

describe("the CLI with policy flags", () => {
  it("--max-connections-per-ip 1: the second connection gets 421 4.7.0", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--max-connections-per-ip",
      "1",
    ]);
    const first = await greeting(cli.port);
    expect(first.reply).toMatch(/^220 /);
    const second = await greeting(cli.port);
    expect(second.reply).toMatch(
      /^421 4\.7\.0 \S+ Too many connections from 127\.0\.0\.1, try again later$/,
    );
    first.socket.destroy();
    second.socket.destroy();
  });

  it("-d logs the limit hit with its retry hint", async () => {
    const cli = await startCli([
      "-n",
      "-d",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--rate-limit-connections",
      "1/1",
    ]);
    (await greeting(cli.port)).socket.destroy();
    const refused = await greeting(cli.port);
    expect(refused.reply).toMatch(/, retry in \d+ s$/);
    refused.socket.destroy();
    const deadline = Date.now() + 5000;
    while (
      !/limit connectionRate reached by 127\.0\.0\.1: 2 of 1 per 1 min, retry in \d+ s/.test(
        cli.stderr(),
      )
    ) {
      if (Date.now() > deadline) throw new Error(`no limit line in ${cli.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
});

describe.skipIf(redisServerMissing)(
  `two CLI processes sharing one Redis${redisServerMissing ? ` [skip: ${redisServerMissing}]` : ""}`,
  () => {
    let redis: Awaited<ReturnType<typeof startRedis>>;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it("--rate-limit-messages 3/1 --redis: the budget holds across both", async () => {
      const flags = [
        "-n",
        "-c",
        "Sink",
        "-l",
        "127.0.0.1:0",
        "--rate-limit-messages",
        "3/1",
        "--redis",
        redis.url,
      ];
      const [a, b] = await Promise.all([startCli(flags), startCli(flags)]);
      const results: (string | number | undefined)[] = [];
      for (let i = 0; i < 6; i++) {
        const port = (i % 2 === 0 ? a : b).port;
        results.push(
          await nodemailer
            .createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true })
            .sendMail({ from: "a@example.com", to: "b@example.com", subject: `m${i}`, text: "x" })
            .then(
              () => "sent",
              (error: { responseCode?: number }) => error.responseCode,
            ),
        );
      }
      expect(results).toEqual(["sent", "sent", "sent", 450, 450, 450]);
    });

    it("--max-connections-per-ip 2 --redis: a connection to each, the third to either is refused", async () => {
      const flags = [
        "-n",
        "-c",
        "Sink",
        "-l",
        "127.0.0.1:0",
        "--max-connections-per-ip",
        "2",
        "--redis",
        redis.url,
      ];
      const [a, b] = await Promise.all([startCli(flags), startCli(flags)]);
      const onA = await greeting(a.port);
      const onB = await greeting(b.port);
      expect(onA.reply).toMatch(/^220 /);
      expect(onB.reply).toMatch(/^220 /);
      const third = await greeting(b.port);
      expect(third.reply).toMatch(/^421 4\.7\.0 /);
      for (const { socket } of [onA, onB, third]) socket.destroy();
      expect(await a.stop("SIGTERM")).toBe(0);
      expect(await b.stop("SIGTERM")).toBe(0);
    });
  },
);
