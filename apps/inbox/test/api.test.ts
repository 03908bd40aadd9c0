import { describe, expect, it } from "vitest";
import { api, inboxForEachTest, json, transport } from "./served.js";

const served = inboxForEachTest();

interface Summary {
  ID: string;
  Subject: string;
  From: { Name: string; Address: string } | null;
  To: { Name: string; Address: string }[];
  Tags: string[];
  Size: number;
  Snippet: string;
  Attachments: number;
  Created: string;
  Read: boolean;
  MessageID: string;
}
interface Listing {
  total: number;
  unread: number;
  count: number;
  start: number;
  messages_count: number;
  messages: Summary[];
}

describe("SMTP in, SQLite, the API out", () => {
  it("a message sent with Nodemailer is listed and can be read whole", async () => {
    const { inbox } = served;
    const info = await transport(inbox).sendMail({
      from: '"Alice" <alice@example.com>',
      to: '"Bob" <bob@example.com>',
      subject: "Hello there",
      text: "Plain body",
      html: "<p>HTML <b>body</b></p>",
      attachments: [{ filename: "notes.txt", content: "some notes" }],
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as \d+/);

    const list = await api<Listing>(inbox, "/api/v1/messages");
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ total: 1, unread: 1, count: 1, start: 0 });
    const summary = list.body.messages[0] as Summary;
    expect(summary).toMatchObject({
      Subject: "Hello there",
      From: { Name: "Alice", Address: "alice@example.com" },
      To: [{ Name: "Bob", Address: "bob@example.com" }],
      Attachments: 1,
      Read: false,
      Snippet: "Plain body",
    });
    expect(summary.MessageID).toBe(info.messageId.replace(/^<|>$/g, ""));
    expect(new Date(summary.Created).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const one = await api<Record<string, unknown>>(inbox, `/api/v1/message/${summary.ID}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      ID: summary.ID,
      Subject: "Hello there",
      Text: expect.stringMatching(/^Plain body\s*$/),
      HTML: expect.stringMatching(/^<p>HTML <b>body<\/b><\/p>\s*$/),
      Attachments: [{ PartID: "1", FileName: "notes.txt", ContentType: "text/plain", Size: 10 }],
    });
    const raw = await api<string>(inbox, `/api/v1/message/${summary.ID}/raw`);
    expect(raw.body).toContain("Subject: Hello there");
    expect(raw.body.length).toBe(summary.Size);
    const part = await fetch(`${inbox.httpUrl}/api/v1/message/${summary.ID}/part/1`);
    expect(await part.text()).toBe("some notes");
    // Opening it marked it read.
    expect((await api<Listing>(inbox, "/api/v1/messages")).body.unread).toBe(0);
  });

  it("an unknown message is a 404", async () => {
    const response = await api(served.inbox, "/api/v1/message/999");
    expect(response.status).toBe(404);
  });
});
