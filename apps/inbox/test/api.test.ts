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
  RcptTo: string[];
}
interface Listing {
  total: number;
  unread: number;
  count: number;
  start: number;
  messages_count: number;
  tags: string[];
  messages: Summary[];
}

async function send(
  fields: {
    from?: string;
    to: string | string[];
    subject: string;
    text?: string;
    headers?: Record<string, string>;
  },
  envelope?: { from: string; to: string[] },
) {
  return transport(served.inbox).sendMail({
    from: fields.from ?? "alice@example.com",
    to: fields.to,
    subject: fields.subject,
    text: fields.text ?? `body of ${fields.subject}`,
    ...(fields.headers && { headers: fields.headers }),
    ...(envelope && { envelope }),
  });
}

const subjects = (listing: Listing) => listing.messages.map((m) => m.Subject);

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
    expect(Buffer.byteLength(raw.body)).toBe(summary.Size);
    const headers = await api<Record<string, string[]>>(
      inbox,
      `/api/v1/message/${summary.ID}/headers`,
    );
    expect(headers.body.Subject).toEqual(["Hello there"]);
    const part = await fetch(`${inbox.httpUrl}/api/v1/message/${summary.ID}/part/1`);
    expect(await part.text()).toBe("some notes");
    // Opening it marked it read.
    expect((await api<Listing>(inbox, "/api/v1/messages")).body.unread).toBe(0);
  });

  it("an unknown message is a 404, a bad page parameter a 400", async () => {
    expect((await api(served.inbox, "/api/v1/message/999")).status).toBe(404);
    expect((await api(served.inbox, "/api/v1/message/abc")).status).toBe(404);
    expect((await api(served.inbox, "/api/v1/messages?limit=-1")).status).toBe(400);
  });

  it("lists newest first, with paging", async () => {
    for (let i = 1; i <= 5; i++) await send({ to: "bob@example.com", subject: `m${i}` });
    const first = await api<Listing>(served.inbox, "/api/v1/messages?limit=2");
    expect(first.body).toMatchObject({ total: 5, count: 2, start: 0, messages_count: 5 });
    expect(subjects(first.body)).toEqual(["m5", "m4"]);
    const last = await api<Listing>(served.inbox, "/api/v1/messages?start=4&limit=2");
    expect(subjects(last.body)).toEqual(["m1"]);
    expect(last.body.start).toBe(4);
  });

  it("searches by from:, to:, subject:, tag:, free text and negation", async () => {
    await send({
      from: "alice@example.com",
      to: "bob@example.com",
      subject: "Invoice 42",
      text: "pay now",
    });
    await send({
      from: "carol@example.org",
      to: "dave+signup@example.com",
      subject: "Welcome",
      text: "hello dave",
    });
    await send({
      from: "carol@example.org",
      to: "bob@example.com",
      subject: "Invoice 43",
      text: "reminder",
    });
    const search = async (query: string) =>
      subjects(
        (await api<Listing>(served.inbox, `/api/v1/search?query=${encodeURIComponent(query)}`))
          .body,
      );
    expect(await search("from:carol")).toEqual(["Invoice 43", "Welcome"]);
    expect(await search("to:bob@example.com subject:invoice")).toEqual([
      "Invoice 43",
      "Invoice 42",
    ]);
    expect(await search("tag:signup")).toEqual(["Welcome"]);
    expect(await search("hello")).toEqual(["Welcome"]);
    expect(await search('"pay now"')).toEqual(["Invoice 42"]);
    expect(await search("invoice -from:alice")).toEqual(["Invoice 43"]);
    expect(await search("nothing-like-this")).toEqual([]);
    const listing = await api<Listing>(served.inbox, "/api/v1/search?query=from:carol");
    expect(listing.body).toMatchObject({ total: 3, messages_count: 2, count: 2 });
  });

  it("deletes one message, a search's messages, then all", async () => {
    for (const s of ["a", "b", "c", "d"]) await send({ to: "bob@example.com", subject: s });
    const ids = (await api<Listing>(served.inbox, "/api/v1/messages")).body.messages.map(
      (m) => m.ID,
    );
    expect(
      (await api(served.inbox, `/api/v1/message/${ids[0]}`, { method: "DELETE" })).status,
    ).toBe(200);
    expect(subjects((await api<Listing>(served.inbox, "/api/v1/messages")).body)).toEqual([
      "c",
      "b",
      "a",
    ]);
    await api(served.inbox, "/api/v1/messages", json("DELETE", { IDs: [ids[1]] }));
    expect(subjects((await api<Listing>(served.inbox, "/api/v1/messages")).body)).toEqual([
      "b",
      "a",
    ]);
    await api(served.inbox, "/api/v1/search?query=subject:b", { method: "DELETE" });
    expect(subjects((await api<Listing>(served.inbox, "/api/v1/messages")).body)).toEqual(["a"]);
    await api(served.inbox, "/api/v1/messages", { method: "DELETE" });
    expect((await api<Listing>(served.inbox, "/api/v1/messages")).body.total).toBe(0);
    // The raw bodies went with them.
    const chunks = served.inbox.store.db.prepare("SELECT count(*) AS n FROM chunks").get() as {
      n: number;
    };
    expect(chunks.n).toBe(0);
  });

  it("tags come from +subaddresses and X-Tags, and can be set", async () => {
    await send({
      to: "bob+reset@example.com",
      subject: "tagged",
      headers: { "X-Tags": "one, two" },
    });
    const listing = (await api<Listing>(served.inbox, "/api/v1/messages")).body;
    expect(listing.messages[0]?.Tags).toEqual(["one", "reset", "two"]);
    expect(listing.tags).toEqual(["one", "reset", "two"]);
    const id = listing.messages[0]?.ID;
    expect(
      (await api(served.inbox, "/api/v1/tags", json("PUT", { IDs: [id], Tags: ["done"] }))).status,
    ).toBe(200);
    expect((await api<string[]>(served.inbox, "/api/v1/tags")).body).toEqual(["done"]);
  });

  it("isolates by recipient, by tag and by a scope made through the API", async () => {
    await send({ to: "bob@example.com", subject: "for bob" });
    await send({ to: "carol+t1@example.com", subject: "for carol t1" });
    const scope = await api<{ ID: string }>(
      served.inbox,
      "/api/v1/scopes",
      json("POST", { to: "bob@example.com" }),
    );
    expect(scope.status).toBe(201);
    await send({ to: "bob@example.com", subject: "for bob, later" });
    await send({ to: "carol@example.com", subject: "for carol, later" });
    const view = async (query: string) =>
      subjects((await api<Listing>(served.inbox, `/api/v1/messages?${query}`)).body);
    expect(await view("to=bob@example.com")).toEqual(["for bob, later", "for bob"]);
    expect(await view("to=BOB@example.com")).toEqual(["for bob, later", "for bob"]);
    expect(await view("tag=t1")).toEqual(["for carol t1"]);
    expect(await view(`scope=${scope.body.ID}`)).toEqual(["for bob, later"]);
    expect(await view("subject=/later$/")).toEqual(["for carol, later", "for bob, later"]);
    expect((await api(served.inbox, "/api/v1/messages?scope=nope")).status).toBe(404);
  });
});

describe("waiting for a message (GET /api/v1/wait)", () => {
  it("returns a message that already arrived", async () => {
    await send({ to: "bob@example.com", subject: "Your code is 1234" });
    const found = await api<{ Subject: string; Text: string }>(
      served.inbox,
      `/api/v1/wait?to=bob@example.com&subject=${encodeURIComponent("/code is \\d+/")}&timeout=2000`,
    );
    expect(found.status).toBe(200);
    expect(found.body.Subject).toBe("Your code is 1234");
  });

  it("holds the request until the message arrives", async () => {
    const started = Date.now();
    const waiting = api<{ Subject: string }>(
      served.inbox,
      "/api/v1/wait?to=carol@example.com&timeout=10000",
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await send({ to: "bob@example.com", subject: "not this one" });
    await send({ to: "carol@example.com", subject: "this one" });
    const found = await waiting;
    expect(found.status).toBe(200);
    expect(found.body.Subject).toBe("this one");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("in a scope, only what arrives after the scope counts", async () => {
    await send({ to: "bob@example.com", subject: "old" });
    const scope = (await api<{ ID: string }>(served.inbox, "/api/v1/scopes", json("POST", {})))
      .body;
    const waiting = api<{ Subject: string }>(
      served.inbox,
      `/api/v1/wait?scope=${scope.ID}&timeout=10000`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    await send({ to: "bob@example.com", subject: "new" });
    expect((await waiting).body.Subject).toBe("new");
  });

  it("times out with 408, saying what did arrive", async () => {
    await send({ to: "bob@example.com", subject: "something else" });
    const started = Date.now();
    const response = await api<{ Error: string }>(
      served.inbox,
      "/api/v1/wait?to=nobody@example.com&timeout=300",
    );
    expect(response.status).toBe(408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(response.body.Error).toContain(
      'wait({ to: "nobody@example.com" }) timed out after 300 ms',
    );
    expect(response.body.Error).toContain('"something else"');
  });
});

describe("server-sent events", () => {
  it("announces a new message as it is stored", async () => {
    const controller = new AbortController();
    const response = await fetch(`${served.inbox.httpUrl}/api/v1/events`, {
      signal: controller.signal,
    });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await until(/event: hello/);
    await send({ to: "bob@example.com", subject: "live" });
    await until(/event: new\ndata: .*"Subject":"live"/);
    controller.abort();
  });
});
