/** Memory, the test kit: inboxes, scopes, waitFor, fault injection — over real sockets. */
import { type SmtpServer, serve } from "@smtpkit/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Memory, type StoredMessage } from "../src/index.js";
import { nodemailerTo, RawClient, smtplibSend } from "./support.js";

const memory = new Memory();
let server: SmtpServer;
let send: (mail: Parameters<ReturnType<typeof nodemailerTo>["sendMail"]>[0]) => Promise<unknown>;

beforeAll(async () => {
  server = await serve(memory, { host: "127.0.0.1", port: 0 });
  const transport = nodemailerTo(server.port);
  send = (mail) => transport.sendMail(mail);
});
afterAll(() => server.close({ timeout: 1000 }));

const mail = (to: string | string[], subject: string, extra: Record<string, unknown> = {}) => ({
  from: "app@example.com",
  to,
  subject,
  text: `about ${subject}`,
  ...extra,
});

describe("views", () => {
  it("inbox(address): only that envelope recipient's messages, case-insensitively", async () => {
    await send(mail("ann@example.com", "for ann"));
    await send(mail(["ben@example.com", "ANN@example.com"], "for both"));
    await send(mail([], "bcc only", { bcc: "ann@example.com" }));
    const ann = memory.inbox("Ann@Example.com");
    expect(ann.messages.map((m) => m.subject)).toEqual(["for ann", "for both", "bcc only"]);
    expect(memory.inbox("ben@example.com").messages.map((m) => m.subject)).toEqual(["for both"]);
    expect(memory.inbox("nobody@example.com").messages).toEqual([]);
  });

  it("scope(): a fresh view that sees only what arrives after it was made", async () => {
    await send(mail("carl@example.com", "before"));
    const scope = memory.scope();
    expect(scope.messages).toEqual([]);
    await send(mail("carl@example.com", "after"));
    expect(scope.messages.map((m) => m.subject)).toEqual(["after"]);
    expect(memory.inbox("carl@example.com").messages).toHaveLength(2);
  });

  it("scope({ tag }): a subaddress (+tag) or an X-Tags entry", async () => {
    const mine = memory.scope({ tag: "t42" });
    const theirs = memory.scope({ tag: "t43" });
    await send(mail("dora+t42@example.com", "plus-addressed"));
    await send(mail("dora@example.com", "header-tagged", { headers: { "X-Tags": "alpha, t42" } }));
    await send(mail("dora+t43@example.com", "someone else's"));
    expect(mine.messages.map((m) => m.subject)).toEqual(["plus-addressed", "header-tagged"]);
    expect(theirs.messages.map((m) => m.subject)).toEqual(["someone else's"]);
  });

  it("scope({ to }) and clear(): views are independent", async () => {
    const eve = memory.scope({ to: "eve@example.com" });
    await send(mail("eve@example.com", "one"));
    await send(mail("fred@example.com", "not eve's"));
    expect(eve.messages.map((m) => m.subject)).toEqual(["one"]);
    eve.clear();
    expect(eve.messages).toEqual([]);
    await send(mail("eve@example.com", "two"));
    expect(eve.messages.map((m) => m.subject)).toEqual(["two"]);
    // Other views still see everything.
    expect(memory.inbox("eve@example.com").messages.map((m) => m.subject)).toEqual(["one", "two"]);
  });

  it("messages are stored before the 250: once sendMail resolved, the message is there", async () => {
    const scope = memory.scope();
    for (let i = 0; i < 5; i++) {
      await send(mail("gina@example.com", `n${i}`));
      expect(scope.last?.subject).toBe(`n${i}`);
    }
  });

  it("a stored message: parsed fields, envelope, ids in order", async () => {
    const scope = memory.scope();
    await smtplibSend(
      server.port,
      "sender@example.com",
      ["hank@example.com"],
      "Subject: raw\nMessage-ID: <x1@example.com>\n\nline\n",
    );
    const [message] = scope.messages as [StoredMessage];
    expect(message.subject).toBe("raw");
    expect(message.messageId).toBe("<x1@example.com>");
    expect(message.mailFrom).toBe("sender@example.com");
    expect(message.rcptTos).toEqual(["hank@example.com"]);
    expect(message.header("X-RcptTo")).toBe("hank@example.com");
    expect(message.id).toBe(memory.all.at(-1)?.id);
    expect(message.receivedAt).toBeInstanceOf(Date);
  });
});

describe("waitFor", () => {
  it("resolves with a message that arrives later", async () => {
    const scope = memory.scope();
    const waiting = scope.waitFor({ to: "ivy@example.com", subject: /report \d+/ });
    await send(mail("ivy@example.com", "unrelated"));
    await send(mail("ivy@example.com", "report 7"));
    const message = await waiting;
    expect(message.subject).toBe("report 7");
  });

  it("resolves at once with a message already there; `from` matches the envelope or From:", async () => {
    const scope = memory.scope();
    await send(
      mail("jack@example.com", "already here", {
        from: "Boss <boss@example.com>",
        envelope: { from: "bounces@example.com", to: ["jack@example.com"] },
      }),
    );
    expect((await scope.waitFor({ from: "boss@example.com" })).subject).toBe("already here");
    expect((await scope.waitFor({ from: "<bounces@example.com>" })).subject).toBe("already here");
    expect(
      (await scope.waitFor({ where: (m) => m.text?.includes("already") === true })).subject,
    ).toBe("already here");
  });

  it("rejects after the timeout with an error listing what did arrive", async () => {
    const scope = memory.scope();
    await send(mail("kim@example.com", "the wrong one"));
    const error = await scope
      .waitFor({ to: "kim@example.com", subject: "the right one" }, { timeout: 100 })
      .catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      /^waitFor\(\{ to: "kim@example\.com", subject: "the right one" \}\) timed out after 100 ms in scope; 1 message\(s\) arrived, none matching:\n {2}#\d+ <app@example\.com> → <kim@example\.com> "the wrong one"$/,
    );
    const empty = await memory
      .scope()
      .waitFor({ to: "x@example.com" }, { timeout: 50 })
      .catch((e: Error) => e);
    expect((empty as Error).message).toMatch(
      /timed out after 50 ms in scope: no message arrived here \(\d+ in the server in all: /,
    );
  });

  it("can be aborted", async () => {
    const controller = new AbortController();
    const waiting = memory.scope().waitFor({}, { signal: controller.signal });
    controller.abort(new Error("test over"));
    await expect(waiting).rejects.toThrow("test over");
  });
});

describe("fault injection", () => {
  it("failNext(1, 421, { after: 2 }): the third message gets 421 and is not kept", async () => {
    const scope = memory.scope();
    memory.failNext(1, "421 4.3.2 Try again later", { after: 2 });
    await send(mail("lou@example.com", "1"));
    await send(mail("lou@example.com", "2"));
    await expect(send(mail("lou@example.com", "3"))).rejects.toMatchObject({
      responseCode: 421,
      response: "421 4.3.2 Try again later",
    });
    await send(mail("lou@example.com", "4"));
    expect(scope.messages.map((m) => m.subject)).toEqual(["1", "2", "4"]);
  });

  it("failNext(2, ...) then failNext(1, ...): faults queue up in order", async () => {
    memory.failNext(2, "451 4.3.0 Busy").failNext(1, "554 5.6.0 Rejected");
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      codes.push(
        await send(mail("max@example.com", `q${i}`)).then(
          () => 250,
          (e: { responseCode: number }) => e.responseCode,
        ),
      );
    }
    expect(codes).toEqual([451, 451, 554, 250]);
  });

  it("rejectRecipient: a chosen code per recipient, at RCPT", async () => {
    memory.rejectRecipient("nina@example.com", "550 5.1.1 No such user");
    memory.rejectRecipient(/@full\.example$/, "452 4.2.2 Mailbox full");
    const client = await RawClient.connect(server.port);
    await client.reply();
    await client.command("EHLO test");
    await client.command("MAIL FROM:<a@example.com>");
    expect(await client.command("RCPT TO:<Nina@Example.com>")).toBe("550 5.1.1 No such user");
    expect(await client.command("RCPT TO:<x@full.example>")).toBe("452 4.2.2 Mailbox full");
    expect(await client.command("RCPT TO:<ok@example.com>")).toMatch(/^250 /);
    client.destroy();
    memory.clearFaults();
    const scope = memory.scope();
    await send(mail("nina@example.com", "now accepted"));
    expect(scope.messages).toHaveLength(1);
  });

  it("argument checks", () => {
    expect(() => memory.failNext(0, "421 x")).toThrow(RangeError);
    expect(() => memory.failNext(1, "421 x", { after: -1 })).toThrow(RangeError);
  });
});

describe("reset", () => {
  it("forgets every message and fault", async () => {
    const local = new Memory();
    const s = await serve(local, { host: "127.0.0.1", port: 0 });
    try {
      local.failNext(5, "421 4.3.2 no");
      local.reset();
      await nodemailerTo(s.port).sendMail(mail("o@example.com", "kept"));
      expect(local.messages).toHaveLength(1);
      local.reset();
      expect(local.all).toEqual([]);
      expect(local.inbox("o@example.com").messages).toEqual([]);
    } finally {
      await s.close({ timeout: 1000 });
    }
  });
});
