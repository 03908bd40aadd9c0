/** Message / AsyncMessage: aiosmtpd's TestMessage, then end to end with smtplib and Nodemailer. */
import { type SmtpServer, serve } from "@smtpkit/node";
import { afterEach, describe, expect, it } from "vitest";
import { AsyncMessage, Message, type ParsedMessage } from "../src/index.js";
import { makeEnvelope, makeSession } from "./helpers.js";
import { decode, encode, nodemailerTo, smtplibSend } from "./support.js";

class Collecting extends Message {
  readonly messages: ParsedMessage[] = [];
  handleMessage(message: ParsedMessage): void {
    this.messages.push(message);
  }
}

class AsyncCollecting extends AsyncMessage {
  readonly messages: ParsedMessage[] = [];
  async handleMessage(message: ParsedMessage): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 10));
    this.messages.push(message);
  }
}

const PEER = { address: "127.0.0.1", port: 54321, family: "IPv4" } as const;

// aiosmtpd's TestMessage source (smtplib turns the \n into \r\n).
const SOURCE = [
  "From: Anne Person <anne@example.com>",
  "To: Bart Person <bart@example.com>",
  "Subject: A test",
  "Message-ID: <ant>",
  "",
  "Testing",
  "",
].join("\n");

const servers: SmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 1000 })));
});

async function start(handler: Message, options: Parameters<typeof serve>[1] = {}) {
  const server = await serve(handler, { host: "127.0.0.1", port: 0, ...options });
  servers.push(server);
  return server;
}

describe("prepareMessage (aiosmtpd test_prepare_message)", () => {
  for (const [name, content] of [
    ["bytes", new Uint8Array(0)],
    ["str", ""],
  ] as const) {
    it(`empty ${name} content: just the three fields, in order, and no body`, async () => {
      const message = await new Collecting().prepareMessage(
        makeSession(PEER),
        makeEnvelope({ content, mailFrom: "anne@example.com", rcptTos: ["b@x", "c@x"] }),
      );
      expect(message.headers.map((h) => h.originalKey)).toEqual([
        "X-Peer",
        "X-MailFrom",
        "X-RcptTo",
      ]);
      expect(message.header("x-peer")).toBe("('127.0.0.1', 54321)");
      expect(message.header("X-MailFrom")).toBe("anne@example.com");
      expect(message.header("X-RcptTo")).toBe("b@x, c@x");
      expect(message.text ?? "").toBe("");
    });
  }

  it("appends after the existing fields, as email.message.Message.__setitem__", async () => {
    const message = await new Collecting().prepareMessage(
      makeSession(PEER),
      makeEnvelope({ content: encode(SOURCE), mailFrom: "a@x", rcptTos: ["b@x"] }),
    );
    expect(message.headers.map((h) => h.key)).toEqual([
      "from",
      "to",
      "subject",
      "message-id",
      "x-peer",
      "x-mailfrom",
      "x-rcptto",
    ]);
    expect(decode(message.raw)).toBe(
      SOURCE.replace(
        "Message-ID: <ant>\n",
        "Message-ID: <ant>\nX-Peer: ('127.0.0.1', 54321)\nX-MailFrom: a@x\nX-RcptTo: b@x\n",
      ),
    );
  });

  it("IPv6 and Unix-socket peers: str(session.peer)", async () => {
    const v6 = await new Collecting().prepareMessage(
      makeSession({ address: "::1", port: 25, family: "IPv6" }),
      makeEnvelope({ content: "", mailFrom: "a@x", rcptTos: [] }),
    );
    expect(v6.header("X-Peer")).toBe("('::1', 25, 0, 0)");
    const unix = await new Collecting().prepareMessage(
      makeSession({ address: "/run/smtp.sock", port: 0, family: "unix" }),
      makeEnvelope({ content: "", mailFrom: "a@x", rcptTos: [] }),
    );
    expect(unix.header("X-Peer")).toBe("/run/smtp.sock");
  });

  it.each([
    [null, "Expected str or bytes, got null"],
    [[], "Expected str or bytes, got array"],
    [{}, "Expected str or bytes, got Object"],
  ])("content %j → TypeError (test_prepare_message_err)", async (content, text) => {
    await expect(
      new Collecting().prepareMessage(
        makeSession(PEER),
        makeEnvelope({ content: content as never, mailFrom: "a@x", rcptTos: [] }),
      ),
    ).rejects.toThrow(new TypeError(text));
  });
});

describe("end to end over a socket", () => {
  for (const [name, Handler] of [
    ["Message (test_message)", Collecting],
    ["AsyncMessage (test_message_async)", AsyncCollecting],
  ] as const) {
    for (const decodeData of [false, true]) {
      it(`${name}, decodeData=${decodeData}: smtplib`, async () => {
        const handler = new Handler();
        const server = await start(handler, { decodeData });
        const result = await smtplibSend(
          server.port,
          "anne@example.com",
          ["bart@example.com"],
          SOURCE,
        );
        expect(result).toMatchObject({ refused: {} });
        expect(handler.messages).toHaveLength(1);
        const message = handler.messages[0] as ParsedMessage;
        expect(message.subject).toBe("A test");
        expect(message.messageId).toBe("<ant>");
        // smtplib's own address is the server's peer: X-Peer is exactly its repr.
        expect(message.header("X-Peer")).toBe(result.sockname);
        expect(message.header("X-MailFrom")).toBe("anne@example.com");
        expect(message.header("X-RcptTo")).toBe("bart@example.com");
        expect(message.text?.trim()).toBe("Testing");
        expect(message.mailFrom).toBe("anne@example.com");
        expect(message.rcptTos).toEqual(["bart@example.com"]);
        expect(message.mailOptions).toContain(`SIZE=${SOURCE.replaceAll("\n", "\r\n").length}`);
      });
    }
  }

  it("Nodemailer: a MIME message with UTF-8 and an attachment is parsed by postal-mime", async () => {
    const handler = new AsyncCollecting();
    const server = await start(handler);
    const info = await nodemailerTo(server.port).sendMail({
      from: "Zoë <zoe@example.com>",
      to: ["bob@example.com", "Carol <carol@example.com>"],
      subject: "Grüße ✉",
      text: "Hallo, schöne Grüße",
      html: "<p>Hallo</p>",
      attachments: [{ filename: "a.txt", content: "attached!" }],
    });
    expect(info.accepted).toEqual(["bob@example.com", "carol@example.com"]);
    const message = handler.messages[0] as ParsedMessage;
    expect(message.subject).toBe("Grüße ✉");
    expect(message.from).toEqual({ name: "Zoë", address: "zoe@example.com" });
    expect(message.text?.trim()).toBe("Hallo, schöne Grüße");
    expect(message.html).toContain("<p>Hallo</p>");
    expect(message.attachments).toHaveLength(1);
    expect(message.attachments[0]?.filename).toBe("a.txt");
    expect(decode(message.attachments[0]?.content as Uint8Array)).toBe("attached!");
    expect(message.header("X-RcptTo")).toBe("bob@example.com, carol@example.com");
  });

  it("an exception in handleMessage becomes the error reply and the message is refused", async () => {
    class Failing extends Message {
      handleMessage(): void {
        throw new Error("no storage");
      }
    }
    const server = await start(new Failing());
    const result = await smtplibSend(server.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(result.error?.[0]).toBe("SMTPDataError");
    expect(result.error?.[1]).toBe(500);
    expect(result.error?.[2]).toContain("no storage");
  });

  it("prepareMessage can be overridden (aiosmtpd's message_class hook)", async () => {
    const seen: string[] = [];
    class Tagged extends Message {
      override async prepareMessage(...args: Parameters<Message["prepareMessage"]>) {
        const message = await super.prepareMessage(...args);
        return { ...message, subject: `[tagged] ${message.subject}` };
      }
      handleMessage(message: ParsedMessage): void {
        seen.push(message.subject ?? "");
      }
    }
    const server = await start(new Tagged());
    await smtplibSend(server.port, "a@example.com", ["b@example.com"], SOURCE);
    expect(seen).toEqual(["[tagged] A test"]);
  });
});
