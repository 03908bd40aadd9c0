/**
 * Proxy: relaying to a real upstream (a second smtpkit server, and aiosmtpd itself) over
 * 127.0.0.1, with smtplib, Nodemailer and a raw client in front.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Envelope, Handler, Session, SMTP } from "@smtpkit/core/server";
import { type SmtpServer, serve } from "@smtpkit/node";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import * as handlers from "../src/index.js";
import { Memory, SmtpProxy, UsageError, upstreamReply } from "../src/index.js";
import {
  eventually,
  freePort,
  nodemailerTo,
  RawClient,
  readMaildir,
  smtplibSend,
  startAiosmtpd,
} from "./support.js";

const root = mkdtempSync(join(tmpdir(), "smtpkit-proxy-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const servers: SmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 1000 })));
});

async function start(handler: Handler, options: Parameters<typeof serve>[1] = {}) {
  const server = await serve(handler, { host: "127.0.0.1", port: 0, ...options });
  servers.push(server);
  return server;
}

interface Captured {
  from: string | null;
  to: string[];
  options: string[];
  bytes: Uint8Array;
}

/** An upstream that records the envelope and the exact bytes it received. */
function capturing(reply = "250 2.0.0 Ok: queued as ABC123") {
  const captured: Captured[] = [];
  const handler: Handler = {
    handleDATA(_server: SMTP, _session: Session, envelope: Envelope) {
      captured.push({
        from: envelope.mailFrom,
        to: [...envelope.rcptTos],
        options: [...envelope.mailOptions],
        bytes: envelope.originalContent ?? new Uint8Array(),
      });
      return reply;
    },
  };
  return { handler, captured };
}

/**
 * A proxy in front of `upstreamPort`. These tests compare the relayed bytes with what was sent, so
 * this hop's `Received:` line is off unless a test asks for it (its own test below).
 */
async function proxyTo(
  upstreamPort: number,
  options: ConstructorParameters<typeof SmtpProxy>[2] = {},
  serveOptions: Parameters<typeof serve>[1] = {},
) {
  const proxy = new SmtpProxy("127.0.0.1", upstreamPort, { traceHeaders: false, ...options });
  return start(proxy, serveOptions);
}

// aiosmtpd's TestProxy source and expected upstream bytes.
const SOURCE =
  "From: Anne Person <anne@example.com>\nTo: Bart Person <bart@example.com>\nSubject: A test\n\nTesting\n";
const expected = (peer: string) =>
  `From: Anne Person <anne@example.com>\r\nTo: Bart Person <bart@example.com>\r\nSubject: A test\r\nX-Peer: ${peer}\r\n\r\nTesting\r\n`;

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

const AT_DATA = { mode: "atData" } as const;

// Both modes relay the same envelope and bytes; only where a refusal is given differs.
describe.each(["transparent", "atData"] as const)(
  "Proxy relays the envelope and the bytes (%s)",
  (mode) => {
    it("prepends this hop's Received: line by default (RFC 5321 §4.4), above the client's bytes", async () => {
      const upstream = capturing();
      const up = await start(upstream.handler);
      const proxy = await proxyTo(up.port, { mode, traceHeaders: true });
      await smtplibSend(proxy.port, "anne@example.com", ["bart@example.com"], SOURCE);
      const [message] = upstream.captured as [Captured];
      const relayed = text(message.bytes);
      expect(relayed).toMatch(
        /^Received: from \S+ \(\[127\.0\.0\.1\]\) by \S+ with E?SMTP id \w+ for <bart@example\.com>; \w{3}, /,
      );
      // Below it, exactly what the client sent (with X-Peer, as without the trace line).
      expect(relayed.slice(relayed.indexOf("\r\n") + 2)).toBe(expected("127.0.0.1"));
    });

    it("aiosmtpd's test_deliver_bytes / test_deliver_str, to a smtpkit upstream", async () => {
      for (const decodeData of [false, true]) {
        const upstream = capturing();
        const up = await start(upstream.handler);
        const proxy = await proxyTo(up.port, { mode }, { decodeData });
        const result = await smtplibSend(
          proxy.port,
          "anne@example.com",
          ["bart@example.com"],
          SOURCE,
        );
        expect(result.refused).toEqual({});
        expect(upstream.captured).toHaveLength(1);
        const [message] = upstream.captured as [Captured];
        expect(message.from).toBe("anne@example.com");
        expect(message.to).toEqual(["bart@example.com"]);
        expect(text(message.bytes)).toBe(expected("127.0.0.1"));
      }
    });

    it("to aiosmtpd itself (a capturing handler module): the same bytes and envelope", async () => {
      const dir = mkdtempSync(join(root, "aiosmtpd-"));
      const out = join(dir, "captured.jsonl");
      writeFileSync(
        join(dir, "capture.py"),
        `import json
class Capture:
    def __init__(self, path):
        self.path = path
    @classmethod
    def from_cli(cls, parser, *args):
        return cls(args[0])
    async def handle_DATA(self, server, session, envelope):
        with open(self.path, "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                "content": envelope.original_content.decode("latin-1")}) + "\\n")
        return "250 OK"
`,
      );
      const aiosmtpd = await startAiosmtpd(["capture.Capture", out], { pythonPath: dir });
      try {
        const proxy = await proxyTo(aiosmtpd.port, { mode });
        const result = await smtplibSend(
          proxy.port,
          "anne@example.com",
          ["bart@example.com", "carl@example.com"],
          SOURCE,
        );
        expect(result.refused).toEqual({});
        const [line] = readFileSync(out, "utf8").trim().split("\n");
        const captured = JSON.parse(line as string);
        expect(captured).toEqual({
          from: "anne@example.com",
          to: ["bart@example.com", "carl@example.com"],
          content: expected("127.0.0.1"),
        });
      } finally {
        await aiosmtpd.stop();
      }
    });

    it("to aiosmtpd's Sink (250), and aiosmtpd's own refusal (its SIZE limit: 552) passed on", async () => {
      const aiosmtpd = await startAiosmtpd(["aiosmtpd.handlers.Sink"], { extra: ["-s", "300"] });
      try {
        const proxy = await proxyTo(aiosmtpd.port, { mode });
        const small = await smtplibSend(proxy.port, "a@example.com", ["b@example.com"], SOURCE);
        expect(small.refused).toEqual({});
        const big = await smtplibSend(
          proxy.port,
          "a@example.com",
          ["b@example.com"],
          `${SOURCE}${"x".repeat(400)}\n`,
        );
        // aiosmtpd sends no enhanced code; this server adds its default one (ENHANCEDSTATUSCODES).
        if (mode === "atData") {
          expect(big.error).toEqual(["SMTPDataError", 552, "5.3.4 Error: Too much mail data"]);
        } else {
          // Transparent: smtplib's MAIL SIZE= goes upstream, and aiosmtpd refuses it at MAIL.
          expect(big.error).toEqual([
            "SMTPSenderRefused",
            552,
            "5.1.0 Error: message size exceeds fixed maximum message size",
          ]);
        }
      } finally {
        await aiosmtpd.stop();
      }
    });

    it("to aiosmtpd's Mailbox, read back with Python's mailbox.Maildir", async () => {
      const dir = join(mkdtempSync(join(root, "maildir-")), "box");
      const aiosmtpd = await startAiosmtpd(["aiosmtpd.handlers.Mailbox", dir]);
      try {
        const proxy = await proxyTo(aiosmtpd.port, { mode });
        await nodemailerTo(proxy.port).sendMail({
          from: "anne@example.com",
          to: "bart@example.com",
          subject: "via the proxy",
          text: "hello",
        });
        const { messages } = await readMaildir(dir);
        expect(messages).toHaveLength(1);
        const headers = Object.fromEntries(messages[0]?.headers ?? []);
        expect(headers.Subject).toBe("via the proxy");
        // Ours (the client's IP), then aiosmtpd's own X-Peer (the proxy's address) appended.
        expect(messages[0]?.headers.filter(([k]) => k === "X-Peer").map(([, v]) => v)).toEqual([
          "127.0.0.1",
          expect.stringMatching(/^\('127\.0\.0\.1', \d+\)$/),
        ]);
      } finally {
        await aiosmtpd.stop();
      }
    });

    it("the null sender, an IDN domain and a UTF-8 address are passed on unchanged", async () => {
      const upstream = capturing();
      const up = await start(upstream.handler);
      const proxy = await proxyTo(up.port, { mode });
      const client = await RawClient.connect(proxy.port);
      await client.reply();
      await client.command("EHLO client.example");
      expect(await client.command("MAIL FROM:<> SMTPUTF8")).toMatch(/^250/);
      expect(await client.command("RCPT TO:<user@bücher.de>")).toMatch(/^250/);
      expect(await client.command("RCPT TO:<zoë@example.com>")).toMatch(/^250/);
      expect(await client.command('RCPT TO:<"john doe"@example.com>')).toMatch(/^250/);
      expect(await client.command("DATA")).toMatch(/^354/);
      expect(await client.command("Subject: bounce\r\n\r\nbody\r\n.")).toBe(
        "250 2.0.0 Ok: queued as ABC123",
      );
      client.destroy();
      expect(upstream.captured[0]?.from).toBe("<>");
      expect(upstream.captured[0]?.to).toEqual([
        "user@bücher.de",
        "zoë@example.com",
        '"john doe"@example.com',
      ]);
      expect(upstream.captured[0]?.options).toContain("SMTPUTF8");
    });

    it("a 12 MB message is streamed through intact", async () => {
      const upstream = capturing();
      const up = await start(upstream.handler, { dataSizeLimit: 0 });
      const proxy = await proxyTo(up.port, { mode }, { dataSizeLimit: 0 });
      const line = `${"0123456789abcdef".repeat(4)}\r\n`;
      const body = line.repeat(Math.ceil((12 * 1024 * 1024) / line.length));
      await nodemailerTo(proxy.port).sendMail({
        envelope: { from: "a@example.com", to: ["b@example.com"] },
        raw: `Subject: big\r\n\r\n${body}`,
      });
      const received = Buffer.from(upstream.captured[0]?.bytes ?? []);
      const bodyStart = received.indexOf("\r\n\r\n") + 4;
      const digest = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
      expect(received.subarray(0, bodyStart).toString()).toBe(
        "Subject: big\r\nX-Peer: 127.0.0.1\r\n\r\n",
      );
      expect(digest(received.subarray(bodyStart))).toBe(digest(body));
    });

    it("the client hanging up mid-DATA: the upstream gets nothing", async () => {
      const memory = new Memory();
      const up = await start(memory);
      const proxy = await proxyTo(up.port, { mode });
      const client = await RawClient.connect(proxy.port);
      await client.startData("a@example.com", ["b@example.com"]);
      await client.write(`Subject: cut\r\n\r\n${"y".repeat(500)}\r\n`.repeat(200));
      await eventually(() => up.connections === 1);
      client.destroy();
      await eventually(() => up.connections === 0);
      expect(memory.all).toEqual([]);
    });
  },
);

// The at-DATA mode: refusals come back in the reply to the message (proxy-transparent.test.ts
// has the transparent mode's per-command replies).
describe("Proxy tells the truth about the upstream (atData)", () => {
  it("upstream unreachable: 451 4.4.1", async () => {
    const port = await freePort();
    const proxy = await proxyTo(port, AT_DATA);
    const result = await smtplibSend(proxy.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(result.error).toEqual([
      "SMTPDataError",
      451,
      "4.4.1 Error: cannot relay the message, upstream unavailable (ECONNREFUSED)",
    ]);
  });

  it("upstream refusing connections (421 greeting): 451 4.4.1", async () => {
    const up = await start(new Memory(), { maxConnections: 0 });
    const proxy = await proxyTo(up.port, AT_DATA);
    const result = await smtplibSend(proxy.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(result.error?.slice(0, 2)).toEqual(["SMTPDataError", 451]);
    expect(result.error?.[2]).toMatch(/^4\.4\.1 /);
  });

  it("the upstream's refusal of the message, with its code and text (421 → 451)", async () => {
    const memory = new Memory()
      .failNext(1, "554 5.7.1 Spam detected")
      .failNext(1, "421 4.3.2 Going down");
    const up = await start(memory);
    const proxy = await proxyTo(up.port, AT_DATA);
    const first = await smtplibSend(proxy.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(first.error).toEqual(["SMTPDataError", 554, "5.7.1 Spam detected"]);
    const second = await smtplibSend(proxy.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(second.error).toEqual(["SMTPDataError", 451, "4.3.2 Going down"]);
    const third = await smtplibSend(proxy.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(third.refused).toEqual({});
    expect(memory.all).toHaveLength(1);
  });

  it("every recipient refused: the upstream's RCPT reply (a temporary one first)", async () => {
    const memory = new Memory()
      .rejectRecipient("b@example.com", "550 5.1.1 No such user")
      .rejectRecipient("c@example.com", "450 4.2.1 Mailbox busy");
    const up = await start(memory);
    const proxy = await proxyTo(up.port, AT_DATA);
    const one = await smtplibSend(proxy.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(one.error).toEqual(["SMTPDataError", 550, "5.1.1 No such user"]);
    const two = await smtplibSend(
      proxy.port,
      "a@example.com",
      ["b@example.com", "c@example.com"],
      SOURCE,
    );
    expect(two.error).toEqual(["SMTPDataError", 450, "4.2.1 Mailbox busy"]);
    expect(memory.all).toEqual([]);
  });

  it("some recipients refused, SMTP, partial 'fail' (default): the refusal, naming who got it", async () => {
    const memory = new Memory().rejectRecipient("b@example.com", "550 5.1.1 No such user");
    const up = await start(memory);
    const proxy = await proxyTo(up.port, AT_DATA);
    const result = await smtplibSend(
      proxy.port,
      "a@example.com",
      ["b@example.com", "c@example.com"],
      SOURCE,
    );
    expect(result.error?.slice(0, 2)).toEqual(["SMTPDataError", 550]);
    expect(result.error?.[2]).toBe(
      [
        "5.1.1 Upstream refused 1 of 2 recipients:",
        "5.1.1 <b@example.com>: 550 5.1.1 No such user",
        "5.1.1 Delivered to: c@example.com",
      ].join("\n"),
    );
    expect(memory.all.map((m) => m.rcptTos)).toEqual([["c@example.com"]]);
  });

  it("some recipients refused, SMTP, partial 'accept': 250 listing the refusals", async () => {
    const memory = new Memory().rejectRecipient(/^b@/, "450 4.2.1 Mailbox busy");
    const up = await start(memory);
    const proxy = await proxyTo(up.port, { ...AT_DATA, partial: "accept" });
    const transport = nodemailerTo(proxy.port);
    const info = await transport.sendMail({
      envelope: { from: "a@example.com", to: ["b@example.com", "c@example.com"] },
      raw: SOURCE,
    });
    expect(info.accepted).toEqual(["b@example.com", "c@example.com"]);
    expect(info.response).toBe(
      "250-2.0.0 OK; relayed to 1 of 2 recipients; refused:\n250 2.0.0 <b@example.com>: 450 4.2.1 Mailbox busy",
    );
  });

  it("LMTP: one reply per recipient, each the upstream's answer for it", async () => {
    const memory = new Memory()
      .rejectRecipient("b@example.com", "550 5.1.1 No such user")
      .rejectRecipient("d@example.com", "452 4.2.2 Over quota");
    const up = await start(memory);
    const proxy = await proxyTo(up.port, AT_DATA, { lmtp: true });
    // Nodemailer reads LMTP's per-recipient replies (Python's smtplib.LMTP does not).
    const info = await nodemailerTo(proxy.port, { lmtp: true }).sendMail({
      envelope: { from: "a@example.com", to: ["b@example.com", "c@example.com", "d@example.com"] },
      raw: SOURCE,
    });
    expect(info.accepted).toEqual(["c@example.com"]);
    expect(info.rejected).toEqual(["b@example.com", "d@example.com"]);
    expect(info.rejectedErrors?.map((e) => e.response)).toEqual([
      "550 5.1.1 No such user",
      "452 4.2.2 Over quota",
    ]);
    expect(memory.all.map((m) => m.rcptTos)).toEqual([["c@example.com"]]);
  });

  it("LMTP, upstream unreachable: 451 4.4.1 for every recipient (raw dialog)", async () => {
    const proxy = await proxyTo(await freePort(), AT_DATA, { lmtp: true });
    const client = await RawClient.connect(proxy.port);
    await client.reply();
    await client.command("LHLO client.example");
    await client.command("MAIL FROM:<a@example.com>");
    await client.command("RCPT TO:<b@example.com>");
    await client.command("RCPT TO:<c@example.com>");
    await client.command("DATA");
    const reason = "4.4.1 Error: cannot relay the message, upstream unavailable (ECONNREFUSED)";
    expect(await client.command("Subject: x\r\n\r\nbody\r\n.")).toBe(`451 ${reason}`);
    expect(await client.reply()).toBe(`451 ${reason}`);
    client.destroy();
  });
});

describe("Proxy.fromCli and helpers", () => {
  it("fromCli", () => {
    // aiosmtpd's name (the CLI's `-c Proxy`) is the same class.
    expect(handlers.Proxy).toBe(SmtpProxy);
    const proxy = SmtpProxy.fromCli(["mail.example.com", "2525"]);
    expect(proxy).toBeInstanceOf(SmtpProxy);
    expect([proxy.hostname, proxy.port]).toEqual(["mail.example.com", 2525]);
    expect(proxy.mode).toBe("transparent");
    expect(SmtpProxy.fromCli(["h", "25", "atData"]).mode).toBe("atData");
    expect(new SmtpProxy("h", 25).mode).toBe("transparent");
    const usage = new UsageError("Proxy usage: HOST PORT [transparent|atData]");
    expect(() => SmtpProxy.fromCli([])).toThrow(usage);
    expect(() => SmtpProxy.fromCli(["host"])).toThrow(usage);
    expect(() => SmtpProxy.fromCli(["h", "1", "x"])).toThrow(
      new UsageError("Invalid mode for Proxy handler: x (transparent or atData)"),
    );
    expect(() => SmtpProxy.fromCli(["h", "1", "atData", "x"])).toThrow(
      new UsageError("Too many arguments for Proxy handler"),
    );
    expect(() => SmtpProxy.fromCli(["h", "port"])).toThrow(
      new UsageError("Invalid port for Proxy handler: port"),
    );
    expect(() => SmtpProxy.fromCli(["h", "70000"])).toThrow(
      new UsageError("Invalid port for Proxy handler: 70000"),
    );
    expect(() => new SmtpProxy("h", 0)).toThrow(RangeError);
    expect(() => new SmtpProxy("h", 25, { mode: "other" as "atData" })).toThrow(RangeError);
  });

  it("upstreamReply", () => {
    expect(upstreamReply("250 2.0.0 Ok: queued as X", 250)).toEqual({
      code: 250,
      enhanced: "2.0.0",
      lines: ["Ok: queued as X"],
    });
    expect(upstreamReply("550-5.1.1 first\n550 5.1.1 second", 550)).toEqual({
      code: 550,
      enhanced: "5.1.1",
      lines: ["first", "second"],
    });
    expect(upstreamReply("421 4.3.2 bye", 421)).toEqual({
      code: 451,
      enhanced: "4.3.2",
      lines: ["bye"],
    });
    expect(upstreamReply("554 no enhanced", 554)).toEqual({
      code: 554,
      enhanced: undefined,
      lines: ["no enhanced"],
    });
    expect(upstreamReply(undefined, 250)).toBeNull();
  });
});
