import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test as property } from "@fast-check/vitest";
import { afterEach, describe, expect, it } from "vitest";
import { parseSearch, searchSql } from "../src/search.js";
import { MessageStore, tagsOf } from "../src/store.js";

const dirs: string[] = [];
const stores: MessageStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.db.open && store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), "smtpkit-inbox-store-"));
  dirs.push(dir);
  return join(dir, "store.sqlite");
}
function open(options: ConstructorParameters<typeof MessageStore>[0] = {}): MessageStore {
  const store = new MessageStore(options);
  stores.push(store);
  return store;
}
const envelope = { mailFrom: "a@example.com", rcptTos: ["b@example.com"] };
const mail = (subject: string, body = "hello") =>
  new TextEncoder().encode(
    `From: a@example.com\r\nTo: b@example.com\r\nSubject: ${subject}\r\n\r\n${body}\r\n`,
  );

describe("the SQLite store", () => {
  it("keeps the raw bytes exactly, in chunks of chunkSize", async () => {
    const store = open({ path: tempDb(), chunkSize: 1000 });
    const body = new Uint8Array(5500).map((_, i) => (i * 7) % 256);
    const raw = Buffer.concat([Buffer.from("Subject: binary\r\n\r\n"), body]);
    const row = await store.add(raw, envelope);
    expect(row.size).toBe(raw.byteLength);
    expect(Buffer.compare(store.rawBytes(row.id), raw)).toBe(0);
    const chunks = store.db
      .prepare("SELECT count(*) AS n FROM chunks WHERE message = ?")
      .get(row.id) as { n: number };
    expect(chunks.n).toBe(Math.ceil(raw.byteLength / 1000));
  });

  it("a message larger than parseLimit is indexed from its head and kept whole", async () => {
    const store = open({ parseLimit: 4096, chunkSize: 1024 });
    const raw = mail("Big one", "y".repeat(100_000));
    const row = await store.add(raw, envelope);
    expect(row).toMatchObject({ subject: "Big one", headOnly: true, size: raw.byteLength });
    expect(store.rawBytes(row.id).byteLength).toBe(raw.byteLength);
    const small = await store.add(mail("Small"), envelope);
    expect(small.headOnly).toBe(false);
  });

  it("an aborted message leaves nothing behind", () => {
    const store = open();
    const receiving = store.receive(envelope);
    receiving.append(new Uint8Array(300_000));
    receiving.abort();
    const counts = store.db
      .prepare("SELECT (SELECT count(*) FROM messages) AS m, (SELECT count(*) FROM chunks) AS c")
      .get();
    expect(counts).toEqual({ m: 0, c: 0 });
  });

  it("a message cut short by a crash is gone when the database is opened again", async () => {
    const path = tempDb();
    const first = open({ path });
    await first.add(mail("complete"), envelope);
    first.receive(envelope).append(new Uint8Array(1000)); // never committed
    first.close();
    const second = open({ path });
    expect(second.list().messages.map((m) => m.subject)).toEqual(["complete"]);
    expect((second.db.prepare("SELECT count(*) AS n FROM messages").get() as { n: number }).n).toBe(
      1,
    );
  });

  it("keeps at most maxMessages, the newest", async () => {
    const store = open({ maxMessages: 3 });
    const deleted: unknown[] = [];
    store.subscribe((event) => event.type === "delete" && deleted.push(event.ids));
    for (let i = 1; i <= 5; i++) await store.add(mail(`m${i}`), envelope);
    expect(store.list().messages.map((m) => m.subject)).toEqual(["m5", "m4", "m3"]);
    expect(deleted).toEqual([[1], [2]]);
    expect(
      (store.db.prepare("SELECT count(DISTINCT message) AS n FROM chunks").get() as { n: number })
        .n,
    ).toBe(3);
  });

  it("deletes messages older than maxAge", async () => {
    const store = open({ maxAge: 60_000 });
    const old = await store.add(mail("old"), envelope);
    store.db
      .prepare("UPDATE messages SET created = ? WHERE id = ?")
      .run(Date.now() - 120_000, old.id);
    await store.add(mail("new"), envelope);
    expect(store.list().messages.map((m) => m.subject)).toEqual(["new"]);
  });

  it("tags: +subaddresses and X-Tags entries, deduplicated and sorted", () => {
    expect(
      tagsOf(
        ["bob+b@example.com", "carol+a@example.com", "dave@example.com", "x+@example.com"],
        ["a, c", " "],
      ),
    ).toEqual(["a", "b", "c"]);
  });
});

describe("the search syntax", () => {
  it("parses fields, quotes and negation", () => {
    expect(parseSearch('from:alice -subject:"two words" tag:x free is:unread')).toEqual([
      { field: "from", value: "alice", negated: false },
      { field: "subject", value: "two words", negated: true },
      { field: "tag", value: "x", negated: false },
      { field: null, value: "free", negated: false },
      { field: "is", value: "unread", negated: false },
    ]);
    expect(parseSearch("unknown:field")).toEqual([
      { field: null, value: "unknown:field", negated: false },
    ]);
  });

  property.prop([fc.string({ maxLength: 300 })])("any input parses, and its SQL runs", (input) => {
    const store = open();
    const where = searchSql(parseSearch(input));
    expect((where.sql.match(/\?/g) ?? []).length).toBe(where.params.length);
    expect(() => store.search(parseSearch(input))).not.toThrow();
    store.close();
  });

  property.prop([
    fc
      .array(fc.constantFrom("%", "_", "\\"), { minLength: 1, maxLength: 8 })
      .map((a) => a.join("")),
    fc.constantFrom("", "from:", "to:", "subject:"),
  ])("LIKE wildcards in a query are literal", async (wildcards, field) => {
    const store = open();
    await store.add(mail("plain"), envelope);
    expect(store.search(parseSearch(`${field}${wildcards}`)).messages).toEqual([]);
    expect(store.search(parseSearch(`-${field}${wildcards}`)).messages).toHaveLength(1);
    store.close();
  });
});
