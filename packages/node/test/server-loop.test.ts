// The server loop over real sockets: deadlines per command line and per body, LMTP statuses
// whatever the hook returned, one exception policy. Named after the defect each one fixed.
import { describe, expect, test } from "vitest";
import type { Handler, SmtpServer } from "../src/index.js";
import { delay, type LineClient } from "./helpers.js";
import { servedForEachTest } from "./served.js";

const { start, open } = servedForEachTest();

async function connect(server: SmtpServer): Promise<LineClient> {
  const client = await open(server);
  expect(await client.reply()).toMatch(/^220 /);
  return client;
}

describe("deadlines (Postfix's per-record deadline and minimum data rate)", () => {
  test("TestServer_trickledCommandLine: bytes trickling in do not restart the command deadline", async () => {
    const server = await start({}, { timeout: 1 });
    // From before the connection: the deadline starts with the greeting, whenever it arrives.
    const started = Date.now();
    const client = await connect(server);
    // One byte every 150 ms: under the old per-read idle timer this never timed out.
    const trickle = (async () => {
      for (const byte of "NOOP and a line that never ends") {
        if (client.ended) return;
        await client.write(byte).catch(() => undefined);
        await delay(150);
      }
    })();
    expect(await client.reply()).toMatch(/^421 4\.4\.2 mx\.test Error: timeout exceeded/);
    await client.closed();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(900);
    // A restarted deadline would fire only after the last byte (4.6 s + 1 s): 4 s leaves room for a loaded machine.
    expect(took).toBeLessThan(4_000);
    await trickle;
  });

  test("whole command lines keep the session alive, each within the deadline", async () => {
    const server = await start({}, { timeout: 1 });
    const client = await connect(server);
    for (let i = 0; i < 4; i++) {
      await delay(500);
      expect(await client.command("NOOP")).toMatch(/^250 /);
    }
    expect(await client.command("QUIT")).toMatch(/^221 /);
  });

  test("TestServer_slowBody: a body slower than minDataRate is cut off with 421", async () => {
    const server = await start({}, { dataTimeout: 1, minDataRate: 1_000 });
    const client = await connect(server);
    expect(await client.command("EHLO c")).toMatch(/^250[ -]/);
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    expect(await client.command("RCPT TO:<b@example.com>")).toMatch(/^250 /);
    expect(await client.command("DATA")).toMatch(/^354 /);
    const started = Date.now();
    // 10 bytes every 100 ms = 100 bytes/s, a tenth of the minimum rate.
    const trickle = (async () => {
      for (let i = 0; i < 100 && !client.ended; i++) {
        await client.write("0123456789").catch(() => undefined);
        await delay(100);
      }
    })();
    expect(await client.reply()).toMatch(/^421 4\.4\.2 /);
    const took = Date.now() - started;
    // 1 s of credit, plus 10 ms per 10-byte chunk: about 1.1 s.
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3_000);
    await trickle;
  });

  test("a body faster than minDataRate may take longer than dataTimeout", async () => {
    let received = 0;
    const server = await start(
      {
        async handleDATAStream(_server, _session, _envelope, body) {
          for await (const chunk of body) received += chunk.length;
        },
      },
      { dataTimeout: 1, minDataRate: 1_000 },
    );
    const client = await connect(server);
    expect(await client.command("EHLO c")).toMatch(/^250[ -]/);
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    expect(await client.command("RCPT TO:<b@example.com>")).toMatch(/^250 /);
    expect(await client.command("DATA")).toMatch(/^354 /);
    // 2 000 bytes every 100 ms = 20 kB/s for 2.5 s: twice the data timeout, well above the rate.
    const line = `${"x".repeat(998)}\r\n`;
    for (let i = 0; i < 25; i++) {
      await client.write(line);
      await client.write(line);
      await delay(100);
    }
    expect(await client.command(".")).toMatch(/^250 /);
    expect(received).toBe(25 * 2 * line.length);
  });
});

describe("LMTP: one reply per accepted recipient, whatever the hook returned", () => {
  async function lmtpSession(handler: Handler) {
    const server = await start(handler, { lmtp: true });
    const client = await connect(server);
    expect(await client.command("LHLO c")).toMatch(/^250[ -]/);
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    for (const name of ["one", "two", "three"]) {
      expect(await client.command(`RCPT TO:<${name}@example.com>`)).toMatch(/^250 /);
    }
    expect(await client.command("DATA")).toMatch(/^354 /);
    await client.write("Subject: hi\r\n\r\nbody\r\n.\r\n");
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await client.reply());
    return { client, replies };
  }

  test("TestServer_lmtpShortStatusList: missing statuses are filled, the session goes on", async () => {
    const { client, replies } = await lmtpSession({
      handleDATA: () => ["250 2.0.0 one delivered"],
    });
    expect(replies).toEqual([
      "250 2.0.0 one delivered",
      "451 4.3.0 Error: no delivery status for this recipient",
      "451 4.3.0 Error: no delivery status for this recipient",
    ]);
    expect(await client.command("NOOP")).toMatch(/^250 /);
  });

  test("a list that is too long loses its extra entries", async () => {
    const { client, replies } = await lmtpSession({
      handleDATA: () => ["250 a", "550 5.1.1 b", "250 c", "250 d"],
    });
    expect(replies).toEqual(["250 2.0.0 a", "550 5.1.1 b", "250 2.0.0 c"]);
    expect(await client.command("QUIT")).toMatch(/^221 /);
  });

  test("a hook that throws gives its failure reply to every recipient", async () => {
    const { client, replies } = await lmtpSession({
      handleDATA: () => {
        throw new Error("disk full");
      },
      handleException: () => "451 4.3.0 try later",
    });
    expect(replies).toEqual(["451 4.3.0 try later", "451 4.3.0 try later", "451 4.3.0 try later"]);
    expect(await client.command("NOOP")).toMatch(/^250 /);
  });
});

describe("one exception policy", () => {
  test("throwing, rejecting and malformed hooks each get one reply; the session goes on", async () => {
    const logged: string[] = [];
    const server = await start(
      {
        handleMAIL: (_server, _session, _envelope, address) => {
          if (address === "bad@example.com") throw new TypeError("bad sender store");
        },
        handleRCPT: async () => 42 as unknown as string,
        handleVRFY: async () => Promise.reject(new RangeError("no directory")),
      },
      { logger: { error: (m) => logged.push(m), info: () => {}, debug: () => {} } },
    );
    const client = await connect(server);
    expect(await client.command("EHLO c")).toMatch(/^250[ -]/);
    expect(await client.command("MAIL FROM:<bad@example.com>")).toBe(
      "500 5.1.0 Error: (TypeError) bad sender store",
    );
    // The failed MAIL opened no transaction.
    expect(await client.command("RCPT TO:<b@example.com>")).toMatch(/^503 /);
    expect(await client.command("VRFY b@example.com")).toBe(
      "500 5.0.0 Error: (RangeError) no directory",
    );
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    // A hook's value that is not a reply is that hook's failure, under the same policy.
    expect(await client.command("RCPT TO:<b@example.com>")).toBe(
      "500 5.1.1 Error: (TypeError) Not an SMTP reply: 42",
    );
    expect(await client.command("NOOP")).toMatch(/^250 /);
    expect(logged.filter((line) => line.includes("handler error"))).toHaveLength(3);
  });
});
