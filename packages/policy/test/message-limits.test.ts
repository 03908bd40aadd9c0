import { execFile } from "node:child_process";
import { authOptions, parseUsersFile } from "@smtpkit/auth";
import { Memory } from "@smtpkit/handlers";
import { compose } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { describe, expect, it } from "vitest";
import { type LimitEvent, limits } from "../src/index.js";
import { servedForEachTest } from "./helpers.js";
import { missing, skipNote } from "./tools.js";

const served = servedForEachTest();
const pythonMissing = missing("python3");
const swaksMissing = missing("swaks", "--help");

function transport(port: number, auth?: { user: string; pass: string }) {
  return nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    ...(auth && { auth }),
  });
}
const message = (n: number) => ({
  from: "alice@example.com",
  to: "bob@example.com",
  subject: `m${n}`,
  text: "hello",
});

function run(file: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, output: stdout + stderr });
    });
  });
}

describe("connection rate", () => {
  it("refuses the connection past N per window with 421 4.7.0 and a retry hint", async () => {
    const events: LimitEvent[] = [];
    const server = await served.start(
      compose(
        limits({
          connections: { rate: { limit: 3, windowMs: 60_000 } },
          onLimit: (e) => events.push(e),
        }),
        new Memory(),
      ),
    );
    for (let i = 0; i < 3; i++) {
      const client = await served.open(server);
      expect(await client.reply()).toMatch(/^220 /);
      expect(await client.command("QUIT")).toMatch(/^221 /);
    }
    const fourth = await served.open(server);
    const refused = await fourth.reply();
    expect(refused).toMatch(
      /^421 4\.7\.0 mx\.test Too many connections from 127\.0\.0\.1, retry in (\d+) s$/,
    );
    const seconds = Number(/retry in (\d+) s/.exec(refused ?? "")?.[1]);
    expect(seconds).toBeGreaterThan(50);
    expect(seconds).toBeLessThanOrEqual(60);
    expect(events).toMatchObject([
      {
        limit: "connectionRate",
        subject: "127.0.0.1",
        count: 4,
        max: 3,
        windowMs: 60_000,
        retryAfter: seconds,
      },
    ]);
    // Another address is counted apart.
    const other = await served.open(server, "127.0.0.5");
    expect(await other.reply()).toMatch(/^220 /);
  });
});

describe("messages", () => {
  it("per address per window: Nodemailer's third message gets 450 4.7.1 with a retry hint", async () => {
    const memory = new Memory();
    const server = await served.start(
      compose(limits({ messages: { rate: { limit: 2, windowMs: 60_000 } } }), memory),
    );
    const mailer = transport(server.port);
    await mailer.sendMail(message(1));
    await mailer.sendMail(message(2));
    const error = (await mailer.sendMail(message(3)).catch((e: unknown) => e)) as {
      responseCode?: number;
      response?: string;
    };
    expect(error.responseCode).toBe(450);
    expect(error.response).toMatch(
      /^450 4\.7\.1 Too many messages from 127\.0\.0\.1 \(at most 2 per 1 min\), retry in \d+ s$/,
    );
    expect(memory.messages).toHaveLength(2);
  });

  it.skipIf(pythonMissing)(
    `per connection: smtplib's third message in one connection gets 421 4.7.0 and the connection closes${skipNote(pythonMissing)}`,
    async () => {
      const memory = new Memory();
      const server = await served.start(
        compose(limits({ messages: { perConnection: 2 } }), memory),
      );
      const script = `
import json, smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
out = []
for i in range(3):
    try:
        c.sendmail("a@example.com", ["b@example.com"], "Subject: %d\\r\\n\\r\\nhi" % i)
        out.append("sent")
    except smtplib.SMTPSenderRefused as e:
        out.append([e.smtp_code, e.smtp_error.decode()])
print(json.dumps(out))
`;
      const result = await run("python3", ["-c", script, String(server.port)]);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.output)).toEqual([
        "sent",
        "sent",
        [
          421,
          "4.7.0 mx.test Too many messages in one connection (at most 2), reconnect to send more",
        ],
      ]);
      expect(memory.messages).toHaveLength(2);
      // A new connection starts again.
      await transport(server.port).sendMail(message(4));
      expect(memory.messages).toHaveLength(3);
    },
  );

  it("per authenticated user: the budget follows the login, not the address", async () => {
    const memory = new Memory();
    const server = await served.start(
      compose(limits({ messages: { rate: { limit: 1, windowMs: 60_000 } } }), memory),
      {
        ...authOptions({
          users: parseUsersFile("alice:wonderland\nbob:builder\n"),
          requireTls: false,
          failedAttempts: false,
        }),
      },
    );
    await transport(server.port, { user: "alice", pass: "wonderland" }).sendMail(message(1));
    const second = (await transport(server.port, { user: "alice", pass: "wonderland" })
      .sendMail(message(2))
      .catch((e: unknown) => e)) as { response?: string };
    expect(second.response).toMatch(/^450 4\.7\.1 Too many messages from user:alice /);
    // Bob, from the same address, has his own budget; so has the address itself.
    await transport(server.port, { user: "bob", pass: "builder" }).sendMail(message(3));
    await transport(server.port).sendMail(message(4));
    expect(memory.messages.map((m) => m.subject)).toEqual(["m1", "m3", "m4"]);
  });
});

describe("recipients", () => {
  it.skipIf(swaksMissing)(
    `per connection: swaks's third recipient gets 452 4.5.3${skipNote(swaksMissing)}`,
    async () => {
      const memory = new Memory();
      const server = await served.start(
        compose(limits({ recipients: { perConnection: 2 } }), memory),
      );
      const result = await run("swaks", [
        "--server",
        `127.0.0.1:${server.port}`,
        "--from",
        "a@example.com",
        "--to",
        "r1@example.com,r2@example.com,r3@example.com",
      ]);
      expect(result.output).toContain(
        "<** 452 4.5.3 Too many recipients in one connection (at most 2)",
      );
      const [delivered] = await Promise.all([
        memory.inbox("r1@example.com").waitFor({}, { timeout: 5000 }),
      ]);
      expect(delivered.rcptTos).toEqual(["r1@example.com", "r2@example.com"]);
    },
  );

  it("per window: 450 4.7.1 once the address has used its recipients", async () => {
    const server = await served.start(
      compose(limits({ recipients: { rate: { limit: 3, windowMs: 30_000 } } }), new Memory()),
    );
    const client = await served.open(server);
    await client.reply();
    await client.command("EHLO client");
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    for (let i = 0; i < 3; i++)
      expect(await client.command(`RCPT TO:<r${i}@example.com>`)).toMatch(/^250 /);
    expect(await client.command("RCPT TO:<r4@example.com>")).toMatch(
      /^450 4\.7\.1 Too many recipients from 127\.0\.0\.1 \(at most 3 per 30 s\), retry in (2\d|30) s$/,
    );
    // The transaction goes on with the recipients accepted.
    expect(await client.command("DATA")).toMatch(/^354 /);
    expect(await client.command("Subject: x\r\n\r\nhi\r\n.")).toMatch(/^250 /);
  });
});
