// A Mailpit client (the mailpit-api package), unchanged, pointed at the inbox.
import { MailpitClient } from "mailpit-api";
import { describe, expect, it } from "vitest";
import { inboxForEachTest, transport } from "./served.js";

const served = inboxForEachTest();

async function send(subject: string, to = "bob@example.com") {
  await transport(served.inbox).sendMail({
    from: '"Alice" <alice@example.com>',
    to,
    subject,
    text: `text of ${subject}`,
    html: `<p>html of ${subject}</p>`,
    attachments: [{ filename: "a.txt", content: "attached" }],
  });
}

describe("mailpit-api's documented calls", () => {
  it("listMessages, getMessageSummary, getMessageHeaders, getMessageSource, getMessageAttachment", async () => {
    await send("first");
    await send("second");
    const mailpit = new MailpitClient(served.inbox.httpUrl);
    const list = await mailpit.listMessages();
    expect(list).toMatchObject({ total: 2, unread: 2, count: 2, messages_count: 2, start: 0 });
    expect(list.messages.map((m) => m.Subject)).toEqual(["second", "first"]);
    const first = list.messages[1];
    expect(first).toMatchObject({
      From: { Name: "Alice", Address: "alice@example.com" },
      To: [{ Name: "", Address: "bob@example.com" }],
      Attachments: 1,
      Read: false,
      Snippet: "text of first",
    });
    const latest = await mailpit.getMessageSummary();
    expect(latest.Subject).toBe("second");
    const message = await mailpit.getMessageSummary(first?.ID);
    expect(message.Subject).toBe("first");
    expect(message.Text.trim()).toBe("text of first");
    expect(message.HTML.trim()).toBe("<p>html of first</p>");
    expect(message.Attachments).toMatchObject([
      { PartID: "1", FileName: "a.txt", ContentType: "text/plain" },
    ]);
    const headers = await mailpit.getMessageHeaders(first?.ID);
    expect(headers.Subject).toEqual(["first"]);
    const source = await mailpit.getMessageSource(first?.ID);
    expect(source).toMatch(/^[\s\S]*Subject: first\r\n/);
    const attachment = await mailpit.getMessageAttachment(first?.ID as string, "1");
    expect(await attachment.text()).toBe("attached");
    expect(attachment.type).toContain("text/plain");
  });

  it("searchMessages, waitForMessage, setReadStatus, setTags, getTags, deleteMessagesBySearch, deleteMessages", async () => {
    await send("Invoice 7", "billing@example.com");
    await send("Welcome", "new@example.com");
    const mailpit = new MailpitClient(served.inbox.httpUrl);
    const found = await mailpit.searchMessages({ query: "to:billing@example.com", tz: "UTC" });
    expect(found.messages.map((m) => m.Subject)).toEqual(["Invoice 7"]);
    const waited = await mailpit.waitForMessage(
      { query: "subject:welcome" },
      { timeout: 3000, interval: 100 },
    );
    expect(waited.Subject).toBe("Welcome");
    expect(await mailpit.setReadStatus({ Read: true })).toBe("ok");
    expect((await mailpit.listMessages()).unread).toBe(0);
    const id = found.messages[0]?.ID as string;
    expect(await mailpit.setTags({ IDs: [id], Tags: ["paid"] })).toBe("ok");
    expect(await mailpit.getTags()).toEqual(["paid"]);
    expect((await mailpit.searchMessages({ query: "tag:paid" })).messages.map((m) => m.ID)).toEqual(
      [id],
    );
    expect(await mailpit.deleteMessagesBySearch({ query: "subject:invoice" })).toBe("ok");
    expect((await mailpit.listMessages()).messages.map((m) => m.Subject)).toEqual(["Welcome"]);
    expect(await mailpit.deleteMessages()).toBe("ok");
    expect((await mailpit.listMessages()).total).toBe(0);
  });

  it("getInfo reports the totals", async () => {
    await send("one");
    const info = await new MailpitClient(served.inbox.httpUrl).getInfo();
    expect(info).toMatchObject({ Messages: 1, Unread: 1 });
  });
});
