import PostalMime, { type Address, type Email } from "postal-mime";
import { type Filter, filterSql, type SqlWhere } from "./filter.js";
import { MimeScanner, type ScannedPart } from "./mime-index.js";
import { type SearchQuery, searchSql } from "./search.js";
import { openDatabase, type SqliteDatabase } from "./sqlite.js";

/** An address as Mailpit shows it. */
export interface NamedAddress {
  readonly Name: string;
  readonly Address: string;
}

/** One attachment as the index keeps it (Mailpit's field names). */
export interface AttachmentInfo {
  readonly PartID: string;
  readonly FileName: string;
  readonly ContentType: string;
  readonly ContentID: string;
  readonly Size: number;
  /** "inline" for parts the HTML references by Content-ID, else "attachment". */
  readonly Disposition: "inline" | "attachment";
}

/** A stored message's index entry: everything but the body. */
export interface MessageRow {
  readonly id: number;
  readonly created: number;
  readonly mailFrom: string;
  readonly rcptTos: readonly string[];
  readonly messageId: string;
  readonly subject: string;
  readonly from: NamedAddress | null;
  readonly to: readonly NamedAddress[];
  readonly cc: readonly NamedAddress[];
  readonly bcc: readonly NamedAddress[];
  readonly replyTo: readonly NamedAddress[];
  readonly date: string | null;
  readonly size: number;
  readonly snippet: string;
  readonly attachments: readonly AttachmentInfo[];
  readonly tags: readonly string[];
  readonly read: boolean;
  /** True when the message was larger than `parseLimit`: its text was indexed from its head. */
  readonly headOnly: boolean;
}

export interface StoreOptions {
  /** A file path, or ":memory:" (the default). */
  readonly path?: string;
  /**
   * The most of a message kept in memory while it arrives, for the index: messages up to this
   * size are parsed whole; larger ones get their headers, snippet and search text from their
   * first `parseLimit` bytes (their attachments are still all found, by a streaming scan).
   * Default 64 KiB.
   */
  readonly parseLimit?: number;
  /** Bytes per stored chunk (and the most a receiving message buffers). Default 256 KiB. */
  readonly chunkSize?: number;
  /** Keep at most this many messages (the oldest go first). Default: no limit. */
  readonly maxMessages?: number;
  /** Delete messages older than this many milliseconds. Default: no limit. */
  readonly maxAge?: number;
}

export type StoreEvent =
  | { readonly type: "new"; readonly message: MessageRow }
  | { readonly type: "delete"; readonly ids: readonly number[] | "all" }
  | { readonly type: "update"; readonly ids: readonly number[] };

/** The envelope of a message being received. */
export interface Arrival {
  readonly mailFrom: string;
  readonly rcptTos: readonly string[];
}

/** A message on its way in: `append()` its chunks, then `commit()` (or `abort()`). */
export interface Receiving {
  append(chunk: Uint8Array): void;
  /** Indexes and marks the message stored (durable once this returns, with a file database). */
  commit(): Promise<MessageRow>;
  abort(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  state INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL,
  mail_from TEXT NOT NULL DEFAULT '',
  rcpt_tos TEXT NOT NULL DEFAULT '[]',
  message_id TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL DEFAULT '',
  from_json TEXT,
  to_json TEXT NOT NULL DEFAULT '[]',
  cc_json TEXT NOT NULL DEFAULT '[]',
  bcc_json TEXT NOT NULL DEFAULT '[]',
  reply_to_json TEXT NOT NULL DEFAULT '[]',
  date TEXT,
  size INTEGER NOT NULL DEFAULT 0,
  snippet TEXT NOT NULL DEFAULT '',
  attachments_json TEXT NOT NULL DEFAULT '[]',
  attachment_count INTEGER NOT NULL DEFAULT 0,
  tags TEXT NOT NULL DEFAULT '[]',
  read INTEGER NOT NULL DEFAULT 0,
  head_only INTEGER NOT NULL DEFAULT 0,
  to_set TEXT NOT NULL DEFAULT '[]',
  from_set TEXT NOT NULL DEFAULT '[]',
  to_text TEXT NOT NULL DEFAULT '',
  from_text TEXT NOT NULL DEFAULT '',
  body_text TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_state_id ON messages (state, id);
CREATE INDEX IF NOT EXISTS messages_created ON messages (created);
CREATE TABLE IF NOT EXISTS chunks (
  message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (message, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scopes (
  id TEXT PRIMARY KEY,
  after INTEGER NOT NULL,
  filter TEXT NOT NULL
);
`;

/** How much of the plain text the free-text search looks at. */
const SEARCH_TEXT_LIMIT = 16 * 1024;
const SNIPPET_LENGTH = 250;

type Row = Record<string, unknown>;

/**
 * The SQLite store: raw messages kept in chunks (never more than `chunkSize` bytes of a body in
 * memory beyond the parsing limit), an index row per message, tags, scopes, retention, and
 * events for live views.
 */
export class MessageStore {
  readonly db: SqliteDatabase;
  readonly path: string;
  readonly #parseLimit: number;
  readonly #chunkSize: number;
  readonly #maxMessages: number | undefined;
  readonly #maxAge: number | undefined;
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  readonly #ageTimer: ReturnType<typeof setInterval> | undefined;
  readonly #statements: ReturnType<typeof prepare>;
  readonly #durable: boolean;
  #tagCache: string[] | null = null;

  constructor(options: StoreOptions = {}) {
    this.path = options.path ?? ":memory:";
    this.#parseLimit = options.parseLimit ?? 64 * 1024;
    this.#chunkSize = options.chunkSize ?? 256 * 1024;
    this.#maxMessages = options.maxMessages;
    this.#maxAge = options.maxAge;
    this.db = openDatabase(this.path);
    this.#durable = this.path !== ":memory:";
    if (this.#durable) {
      this.db.exec("PRAGMA journal_mode = WAL");
      // Chunks are written without waiting for the disk; the commit that marks a message stored
      // runs with synchronous = FULL, which syncs the write-ahead log with every chunk before it.
      this.db.exec("PRAGMA synchronous = NORMAL");
    }
    this.db.exec("PRAGMA foreign_keys = ON");
    this.db.function("regexp", { deterministic: true }, (pattern: unknown, value: unknown) =>
      typeof pattern === "string" && typeof value === "string" && compiled(pattern).test(value)
        ? 1
        : 0,
    );
    this.db.exec(SCHEMA);
    // A message whose receiving was cut short by a crash is not a message.
    this.db.exec("DELETE FROM messages WHERE state = 0");
    this.#statements = prepare(this.db);
    if (this.#maxAge !== undefined) {
      const every = Math.max(1000, Math.min(60_000, Math.floor(this.#maxAge / 10)));
      this.#ageTimer = setInterval(() => this.applyRetention(), every);
      this.#ageTimer.unref();
    }
  }

  /** Called with every new, deleted or updated message; returns the unsubscribe function. */
  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: StoreEvent): void {
    if (event.type !== "new") this.#tagCache = null;
    else if (this.#tagCache && event.message.tags.some((t) => !this.#tagCache?.includes(t)))
      this.#tagCache = null;
    for (const listener of [...this.#listeners]) listener(event);
  }

  /** Starts receiving a message: its chunks go to the database as they fill. */
  receive(arrival: Arrival): Receiving {
    const id = Number(
      this.#statements.reserve.run(Date.now(), arrival.mailFrom, JSON.stringify(arrival.rcptTos))
        .lastInsertRowid,
    );
    let seq = 0;
    let size = 0;
    let pending: Uint8Array[] = [];
    let pendingSize = 0;
    // The head (up to parseLimit) stays in memory for parsing; past that only chunks are kept.
    const scanner = new MimeScanner();
    let head: Uint8Array[] | null = [];
    let headSize = 0;
    let headOnly = false;
    let finished = false;
    const flush = () => {
      if (pendingSize === 0) return;
      this.#statements.chunk.run(id, seq++, Buffer.concat(pending, pendingSize));
      pending = [];
      pendingSize = 0;
    };
    return {
      append: (chunk) => {
        if (finished) throw new Error("message already finished");
        size += chunk.byteLength;
        pending.push(chunk);
        pendingSize += chunk.byteLength;
        scanner.push(chunk);
        if (head && !headOnly) {
          if (headSize + chunk.byteLength <= this.#parseLimit) {
            head.push(chunk);
            headSize += chunk.byteLength;
          } else {
            const room = this.#parseLimit - headSize;
            if (room > 0) head.push(chunk.subarray(0, room));
            headSize += Math.max(room, 0);
            // Keep a head for the index, but stop growing it.
            head = [Buffer.concat(head, headSize)];
            headOnly = true;
          }
        }
        if (pendingSize >= this.#chunkSize) flush();
      },
      commit: async () => {
        if (finished) throw new Error("message already finished");
        finished = true;
        try {
          flush();
          const bytes = Buffer.concat(head ?? [], headSize);
          head = null;
          const index = await indexOf(bytes, arrival, headOnly, scanner.end());
          this.#durably(() => this.#statements.store.run({ id, size, ...index }));
        } catch (error) {
          this.#statements.drop.run(id);
          throw error;
        }
        const row = this.get(id);
        if (!row) throw new Error(`message ${id} vanished while being stored`);
        this.applyRetention();
        this.#emit({ type: "new", message: row });
        return row;
      },
      abort: () => {
        if (finished) return;
        finished = true;
        pending = [];
        head = null;
        this.#statements.drop.run(id);
      },
    };
  }

  /** Runs one write whose commit is on disk when it returns (the 250 after DATA follows it). */
  #durably<T>(write: () => T): T {
    if (!this.#durable) return write();
    this.db.exec("PRAGMA synchronous = FULL");
    try {
      return write();
    } finally {
      this.db.exec("PRAGMA synchronous = NORMAL");
    }
  }

  /** Stores a whole message at once (imports, tests). */
  async add(raw: Uint8Array, arrival: Arrival): Promise<MessageRow> {
    const receiving = this.receive(arrival);
    for (let offset = 0; offset < raw.byteLength; offset += this.#chunkSize)
      receiving.append(raw.subarray(offset, offset + this.#chunkSize));
    return receiving.commit();
  }

  /** One message's index entry. */
  get(id: number): MessageRow | undefined {
    const row = this.#statements.get.get(id) as Row | undefined;
    return row ? toMessageRow(row) : undefined;
  }

  /** The newest stored message, if any. */
  latest(where?: SqlWhere): MessageRow | undefined {
    return this.list({ where, limit: 1 }).messages[0];
  }

  /** Newest first, with paging; `where` narrows it (a scope, a search). */
  list(
    options: {
      where?: SqlWhere | undefined;
      start?: number;
      limit?: number;
      oldestFirst?: boolean;
    } = {},
  ): { messages: MessageRow[]; matched: number } {
    const where = options.where ?? { sql: "1", params: [] };
    const limit = Math.max(0, Math.min(options.limit ?? 50, 10_000));
    const start = Math.max(0, options.start ?? 0);
    const order = options.oldestFirst ? "ASC" : "DESC";
    const rows = this.db
      .prepare(
        `SELECT ${INDEX_COLUMNS} FROM messages m WHERE m.state = 1 AND (${where.sql}) ORDER BY m.id ${order} LIMIT ? OFFSET ?`,
      )
      .all(...where.params, limit, start) as Row[];
    const matched = (
      this.db
        .prepare(`SELECT count(*) AS n FROM messages m WHERE m.state = 1 AND (${where.sql})`)
        .get(...where.params) as { n: number }
    ).n;
    return { messages: rows.map(toMessageRow), matched };
  }

  /** Messages matching a search query (`from:`, `to:`, `subject:`, `tag:`, `is:`, free text). */
  search(
    query: SearchQuery,
    options: { start?: number; limit?: number; within?: SqlWhere | undefined } = {},
  ) {
    const where = and(searchSql(query), options.within);
    return this.list({ where, start: options.start ?? 0, limit: options.limit ?? 50 });
  }

  /** Messages matching a filter (exact or RegExp fields), oldest first. */
  find(filter: Filter, within?: SqlWhere): MessageRow[] {
    return this.list({ where: and(filterSql(filter), within), limit: 10_000, oldestFirst: true })
      .messages;
  }

  /** Totals over every stored message. */
  counts(): { total: number; unread: number } {
    return this.#statements.counts.get() as { total: number; unread: number };
  }

  /** Every tag in use, sorted (kept between changes: every list answer carries it). */
  tags(): string[] {
    this.#tagCache ??= (this.#statements.allTags.all() as { value: string }[]).map((r) => r.value);
    return [...this.#tagCache];
  }

  /** The raw message, chunk by chunk, read from the database as it is consumed. */
  *raw(id: number): Generator<Uint8Array> {
    let seq = 0;
    for (;;) {
      const row = this.#statements.readChunk.get(id, seq++) as { data: Buffer } | undefined;
      if (!row) return;
      yield row.data;
    }
  }

  /** The whole raw message (for parsing one message on request). */
  rawBytes(id: number): Buffer {
    return Buffer.concat([...this.raw(id)]);
  }

  /** Parses the whole stored message with postal-mime. */
  async parse(id: number): Promise<Email | undefined> {
    if (!this.get(id)) return undefined;
    return PostalMime.parse(this.rawBytes(id));
  }

  delete(ids: readonly number[]): number {
    if (ids.length === 0) return 0;
    const run = this.db.transaction((list: readonly number[]) => {
      let n = 0;
      for (const id of list) n += this.#statements.drop.run(id).changes;
      return n;
    });
    const n = run(ids);
    if (n > 0) this.#emit({ type: "delete", ids });
    return n;
  }

  deleteAll(): void {
    this.db.exec("DELETE FROM messages WHERE state = 1");
    this.#emit({ type: "delete", ids: "all" });
  }

  /** Sets (replaces) the tags of messages. */
  setTags(ids: readonly number[], tags: readonly string[]): void {
    const clean = [...new Set(tags.map((t) => t.trim()).filter((t) => t !== ""))].sort();
    const run = this.db.transaction(() => {
      for (const id of ids) this.#statements.setTags.run(JSON.stringify(clean), id);
    });
    run();
    this.#emit({ type: "update", ids });
  }

  setRead(ids: readonly number[] | "all", read: boolean): void {
    if (ids === "all")
      this.db.prepare("UPDATE messages SET read = ? WHERE state = 1").run(read ? 1 : 0);
    else for (const id of ids) this.#statements.setRead.run(read ? 1 : 0, id);
    this.#emit({ type: "update", ids: ids === "all" ? [] : ids });
  }

  /** The id of the newest message reserved so far (stored or not): scopes start after it. */
  lastId(): number {
    return (this.#statements.lastId.get() as { id: number | null }).id ?? 0;
  }

  /** Deletes what the retention options no longer keep. */
  applyRetention(): void {
    const deleted: number[] = [];
    if (this.#maxMessages !== undefined) {
      const rows = this.#statements.beyondCount.all(this.#maxMessages) as { id: number }[];
      for (const r of rows) deleted.push(r.id);
    }
    if (this.#maxAge !== undefined) {
      const rows = this.#statements.olderThan.all(Date.now() - this.#maxAge) as { id: number }[];
      for (const r of rows) deleted.push(r.id);
    }
    if (deleted.length > 0) this.delete([...new Set(deleted)]);
  }

  close(): void {
    if (this.#ageTimer) clearInterval(this.#ageTimer);
    this.#listeners.clear();
    this.db.close();
  }
}

const INDEX_COLUMNS =
  "m.id, m.created, m.mail_from, m.rcpt_tos, m.message_id, m.subject, m.from_json, m.to_json, m.cc_json, m.bcc_json, m.reply_to_json, m.date, m.size, m.snippet, m.attachments_json, m.tags, m.read, m.head_only";

function prepare(db: SqliteDatabase) {
  return {
    reserve: db.prepare(
      "INSERT INTO messages (state, created, mail_from, rcpt_tos) VALUES (0, ?, ?, ?)",
    ),
    chunk: db.prepare("INSERT INTO chunks (message, seq, data) VALUES (?, ?, ?)"),
    store: db.prepare(`UPDATE messages SET state = 1, size = @size, message_id = @messageId,
      subject = @subject, from_json = @fromJson, to_json = @toJson, cc_json = @ccJson,
      bcc_json = @bccJson, reply_to_json = @replyToJson, date = @date, snippet = @snippet,
      attachments_json = @attachmentsJson, attachment_count = @attachmentCount, tags = @tags,
      head_only = @headOnly, to_set = @toSet, from_set = @fromSet, to_text = @toText,
      from_text = @fromText, body_text = @bodyText WHERE id = @id`),
    drop: db.prepare("DELETE FROM messages WHERE id = ?"),
    get: db.prepare(`SELECT ${INDEX_COLUMNS} FROM messages m WHERE m.id = ? AND m.state = 1`),
    readChunk: db.prepare("SELECT data FROM chunks WHERE message = ? AND seq = ?"),
    counts: db.prepare(
      "SELECT count(*) AS total, coalesce(sum(read = 0), 0) AS unread FROM messages WHERE state = 1",
    ),
    allTags: db.prepare(
      "SELECT DISTINCT t.value AS value FROM messages m, json_each(m.tags) t WHERE m.state = 1 ORDER BY 1",
    ),
    setTags: db.prepare("UPDATE messages SET tags = ? WHERE id = ? AND state = 1"),
    setRead: db.prepare("UPDATE messages SET read = ? WHERE id = ? AND state = 1"),
    lastId: db.prepare("SELECT max(id) AS id FROM messages"),
    beyondCount: db.prepare(
      "SELECT id FROM messages WHERE state = 1 ORDER BY id DESC LIMIT -1 OFFSET ?",
    ),
    olderThan: db.prepare("SELECT id FROM messages WHERE state = 1 AND created < ?"),
  };
}

function and(a: SqlWhere, b: SqlWhere | undefined): SqlWhere {
  if (!b) return a;
  return { sql: `(${a.sql}) AND (${b.sql})`, params: [...a.params, ...b.params] };
}

const regexCache = new Map<string, RegExp>();
/** A pattern as the filters encode it: `flags` NUL `source`. */
function compiled(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    const nul = pattern.indexOf("\u0000");
    re = new RegExp(
      pattern.slice(nul + 1),
      pattern.slice(0, Math.max(nul, 0)).replace(/[gy]/g, ""),
    );
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

function mailboxes(list: Address | readonly Address[] | undefined): NamedAddress[] {
  if (!list) return [];
  const out: NamedAddress[] = [];
  for (const item of Array.isArray(list) ? list : [list]) {
    if (item.group) for (const m of item.group) out.push({ Name: m.name, Address: m.address });
    else if (item.address !== undefined) out.push({ Name: item.name, Address: item.address });
  }
  return out;
}

function bare(address: string): string {
  return address.replace(/^<|>$/g, "").trim().toLowerCase();
}

/** Tags a message carries: recipients' `+tag` subaddresses and `X-Tags` entries. */
export function tagsOf(rcptTos: readonly string[], xTags: readonly string[]): string[] {
  const tags = new Set<string>();
  for (const rcpt of rcptTos) {
    const at = rcpt.lastIndexOf("@");
    const local = at === -1 ? rcpt : rcpt.slice(0, at);
    const plus = local.indexOf("+");
    if (plus >= 0 && plus < local.length - 1) tags.add(local.slice(plus + 1));
  }
  for (const value of xTags)
    for (const entry of value.split(",")) if (entry.trim() !== "") tags.add(entry.trim());
  return [...tags].sort();
}

/** A one-line preview of the text (or the HTML's text), like Mailpit's. */
export function snippetOf(text: string | undefined, html: string | undefined): string {
  const source =
    text ??
    (html ?? "")
      .replace(/<(style|script|head)[\s\S]*?<\/\1>/gi, " ")
      .replace(/<[^>]*>/g, " ")
      .replace(/&nbsp;/g, " ")
      .replace(/&amp;/g, "&")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">");
  const flat = source.replace(/\s+/g, " ").trim();
  return flat.length > SNIPPET_LENGTH ? `${flat.slice(0, SNIPPET_LENGTH)}...` : flat;
}

async function indexOf(
  bytes: Uint8Array,
  arrival: Arrival,
  headOnly: boolean,
  parts: readonly ScannedPart[],
) {
  let email: Email;
  try {
    email = await PostalMime.parse(bytes);
  } catch {
    // Unparseable mail is still mail: keep it, index the envelope only.
    email = { headers: [], headerLines: [], attachments: [] };
  }
  const from = mailboxes(email.from)[0] ?? null;
  const to = mailboxes(email.to);
  const cc = mailboxes(email.cc);
  const bcc = mailboxes(email.bcc);
  const replyTo = mailboxes(email.replyTo);
  const xTags = email.headers.filter((h) => h.key === "x-tags").map((h) => h.value);
  const attachments: AttachmentInfo[] = parts.map((a, i) => ({
    PartID: String(i + 1),
    FileName: a.fileName,
    ContentType: a.contentType,
    ContentID: a.contentId,
    Size: a.size,
    Disposition: a.disposition,
  }));
  const toSet = [
    ...new Set(
      [...arrival.rcptTos, ...to.map((a) => a.Address), ...cc.map((a) => a.Address)].map(bare),
    ),
  ];
  const fromSet = [
    ...new Set(
      [
        ...(arrival.mailFrom && arrival.mailFrom !== "<>" ? [arrival.mailFrom] : []),
        ...(from ? [from.Address] : []),
      ].map(bare),
    ),
  ];
  const named = (list: readonly NamedAddress[]) =>
    list.map((a) => `${a.Name} <${a.Address}>`).join(", ");
  const text = email.text ?? snippetOf(undefined, email.html);
  return {
    messageId: (email.messageId ?? "").replace(/^<|>$/g, ""),
    subject: email.subject ?? "",
    fromJson: from ? JSON.stringify(from) : null,
    toJson: JSON.stringify(to),
    ccJson: JSON.stringify(cc),
    bccJson: JSON.stringify(bcc),
    replyToJson: JSON.stringify(replyTo),
    date: email.date ?? null,
    snippet: snippetOf(email.text, email.html),
    attachmentsJson: JSON.stringify(attachments),
    attachmentCount: attachments.filter((a) => a.Disposition === "attachment").length,
    tags: JSON.stringify(tagsOf(arrival.rcptTos, xTags)),
    headOnly: headOnly ? 1 : 0,
    toSet: JSON.stringify(toSet),
    fromSet: JSON.stringify(fromSet),
    toText: `${toSet.join(" ")} ${named([...to, ...cc])}`.toLowerCase(),
    fromText: `${fromSet.join(" ")} ${from ? named([from]) : ""}`.toLowerCase(),
    bodyText: text.slice(0, SEARCH_TEXT_LIMIT),
  };
}

function parseJson<T>(value: unknown, fallback: T): T {
  return typeof value === "string" ? (JSON.parse(value) as T) : fallback;
}

function toMessageRow(row: Row): MessageRow {
  return {
    id: row.id as number,
    created: row.created as number,
    mailFrom: row.mail_from as string,
    rcptTos: parseJson(row.rcpt_tos, []),
    messageId: row.message_id as string,
    subject: row.subject as string,
    from: parseJson<NamedAddress | null>(row.from_json, null),
    to: parseJson(row.to_json, []),
    cc: parseJson(row.cc_json, []),
    bcc: parseJson(row.bcc_json, []),
    replyTo: parseJson(row.reply_to_json, []),
    date: (row.date as string | null) ?? null,
    size: row.size as number,
    snippet: row.snippet as string,
    attachments: parseJson(row.attachments_json, []),
    tags: parseJson(row.tags, []),
    read: row.read === 1,
    headOnly: row.head_only === 1,
  };
}
