import { readFile } from "node:fs/promises";
import type { Context } from "hono";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { Email } from "postal-mime";
import { type FaultError, type Faults, faultJson } from "./faults.js";
import { describeFilter, type Filter, filterSql, parseMatch, type SqlWhere } from "./filter.js";
import { headersJson, messageJson, summaryJson } from "./mailpit-json.js";
import { Scopes } from "./scopes.js";
import { parseSearch } from "./search.js";
import type { MessageRow, MessageStore, StoreEvent } from "./store.js";

export interface ApiOptions {
  readonly store: MessageStore;
  readonly faults: Faults;
  /** The directory of the web UI's static files. */
  readonly publicDir: URL;
  /** Shown by `GET /api/v1/info`. */
  readonly version: string;
  /** The SMTP address, for the UI. */
  readonly smtpAddress?: () => string;
  /** Longest `wait` allowed, ms. Default 300 000. */
  readonly maxWait?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: 400 | 404 | 408,
    message: string,
  ) {
    super(message);
  }
}

const STATIC_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};
const STATIC_NAME = /^[a-z0-9-]+\.(html|js|css|svg)$/;

/** CSP for a message's HTML: no scripts, no requests out unless remote images are allowed. */
function htmlPolicy(remoteImages: boolean): string {
  return [
    "default-src 'none'",
    `img-src data:${remoteImages ? " http: https:" : ""}`,
    "style-src 'unsafe-inline'",
    "font-src data:",
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'self'",
    "sandbox allow-popups allow-popups-to-escape-sandbox",
  ].join("; ");
}

function nonNegative(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, `${name} must be an integer >= 0`);
  return n;
}

function matchParam(value: string | undefined, name: string) {
  if (value === undefined || value === "") return undefined;
  try {
    return parseMatch(value);
  } catch (error) {
    throw new HttpError(400, `${name}: ${(error as Error).message}`);
  }
}

/** The IDs of a Mailpit request body: `IDs` (or `ids`), as numbers. */
function idsOf(body: Record<string, unknown>): number[] | undefined {
  const value = body.IDs ?? body.ids ?? body.Ids;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new HttpError(400, "IDs must be an array");
  return value.map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new HttpError(400, `unknown ID ${JSON.stringify(v)}`);
    return n;
  });
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new HttpError(400, "the body must be a JSON object");
}

/** Inline `cid:` references as data: URLs, so that the sandboxed HTML needs no request. */
function inlineCids(html: string, email: Email): string {
  const byCid = new Map<string, string>();
  for (const a of email.attachments) {
    if (!a.contentId || typeof a.content === "string") continue;
    const bytes = a.content instanceof Uint8Array ? a.content : new Uint8Array(a.content);
    byCid.set(
      a.contentId.replace(/^<|>$/g, ""),
      `data:${a.mimeType};base64,${Buffer.from(bytes).toString("base64")}`,
    );
  }
  if (byCid.size === 0) return html;
  return html.replace(/cid:([^"'\s)>]+)/gi, (whole, cid: string) => byCid.get(cid) ?? whole);
}

/**
 * The HTTP side: Mailpit's common API paths and field names, plus waiting, events, scopes,
 * tags and fault rules; and the web UI's static files. A plain Hono app: `app.fetch` serves
 * any runtime's `Request`.
 */
export function createApi(options: ApiOptions): Hono {
  const { store, faults } = options;
  const scopes = new Scopes(store);
  const maxWait = options.maxWait ?? 300_000;
  const app = new Hono();

  app.onError((error, c) => {
    if (error instanceof HttpError) return c.json({ Error: error.message }, error.status);
    if ((error as FaultError).constructor?.name === "FaultError")
      return c.json({ Error: error.message }, 400);
    return c.json({ Error: `internal error: ${error.message}` }, 500);
  });

  /** The view a request names: `scope=`, `to=`, `from=`, `subject=`, `tag=` (all must hold). */
  const viewOf = (c: Context): { where: SqlWhere | undefined; filter: Filter; label: string } => {
    const filter: Filter = {
      to: matchParam(c.req.query("to"), "to"),
      from: matchParam(c.req.query("from"), "from"),
      subject: matchParam(c.req.query("subject"), "subject"),
      tag: c.req.query("tag") || undefined,
    };
    const scopeId = c.req.query("scope");
    const parts: SqlWhere[] = [filterSql(filter)];
    let label = "all messages";
    if (scopeId) {
      const scope = scopes.get(scopeId);
      if (!scope) throw new HttpError(404, `no scope ${scopeId}`);
      parts.push(filterSql(scope.filter));
      label = `scope ${scopeId}`;
    }
    const hasFilter = Object.values(filter).some((v) => v !== undefined);
    if (hasFilter) label = `${label} ${describeFilter(filter)}`;
    return {
      where:
        scopeId || hasFilter
          ? {
              sql: parts.map((p) => `(${p.sql})`).join(" AND "),
              params: parts.flatMap((p) => p.params),
            }
          : undefined,
      filter,
      label,
    };
  };

  const listing = (
    c: Context,
    rows: { messages: MessageRow[]; matched: number },
    start: number,
  ) => {
    const { total, unread } = store.counts();
    return c.json({
      total,
      unread,
      count: rows.messages.length,
      messages_count: rows.matched,
      start,
      tags: store.tags(),
      messages: rows.messages.map(summaryJson),
    });
  };

  /** Deletes, a page at a time, until `page()` finds nothing more. */
  const deleteEvery = (page: () => MessageRow[]) => {
    for (let rows = page(); rows.length > 0; rows = page()) store.delete(rows.map((m) => m.id));
  };

  const pageOf = (c: Context) => ({
    start: nonNegative(c.req.query("start"), 0, "start"),
    limit: nonNegative(c.req.query("limit"), 50, "limit"),
  });

  /** A message by `ID` (or `latest`, within the request's view). */
  const messageOf = (c: Context): MessageRow => {
    const id = c.req.param("ID") ?? "";
    const row = id === "latest" ? store.latest(viewOf(c).where) : store.get(Number(id));
    if (!row || (id !== "latest" && !/^\d+$/.test(id)))
      throw new HttpError(404, `no message ${id}`);
    return row;
  };

  const parsed = async (row: MessageRow): Promise<Email> => {
    const email = await store.parse(row.id);
    if (!email) throw new HttpError(404, `no message ${row.id}`);
    return email;
  };

  // --- Mailpit: messages
  app.get("/api/v1/messages", (c) => {
    const { start, limit } = pageOf(c);
    const view = viewOf(c);
    return listing(c, store.list({ where: view.where, start, limit }), start);
  });
  app.delete("/api/v1/messages", async (c) => {
    const body = await jsonBody(c);
    const ids = idsOf(body);
    const view = viewOf(c);
    if (ids && ids.length > 0) store.delete(ids);
    else if (view.where) {
      const where = view.where;
      deleteEvery(() => store.list({ where, limit: 10_000 }).messages);
    } else store.deleteAll();
    return c.text("ok");
  });
  app.put("/api/v1/messages", async (c) => {
    const body = await jsonBody(c);
    const ids = idsOf(body);
    const read = body.Read ?? body.read ?? false;
    if (typeof read !== "boolean") throw new HttpError(400, "Read must be true or false");
    const search = body.Search ?? body.search;
    if (typeof search === "string" && search.trim() !== "")
      store.setRead(
        store.search(parseSearch(search), { limit: 10_000 }).messages.map((m) => m.id),
        read,
      );
    else store.setRead(ids && ids.length > 0 ? ids : "all", read);
    return c.text("ok");
  });

  // --- Mailpit: search
  app.get("/api/v1/search", (c) => {
    const { start, limit } = pageOf(c);
    const query = parseSearch(c.req.query("query") ?? "");
    return listing(c, store.search(query, { start, limit, within: viewOf(c).where }), start);
  });
  app.delete("/api/v1/search", (c) => {
    const query = parseSearch(c.req.query("query") ?? "");
    if (query.length === 0) throw new HttpError(400, "a query is required");
    const within = viewOf(c).where;
    deleteEvery(() => store.search(query, { limit: 10_000, within }).messages);
    return c.text("ok");
  });

  // --- Mailpit: one message
  app.get("/api/v1/message/:ID", async (c) => {
    const row = messageOf(c);
    const email = await parsed(row);
    if (!row.read) store.setRead([row.id], true);
    return c.json(messageJson({ ...row, read: true }, email));
  });
  app.delete("/api/v1/message/:ID", (c) => {
    const row = messageOf(c);
    store.delete([row.id]);
    return c.text("ok");
  });
  app.get("/api/v1/message/:ID/raw", (c) => {
    const row = messageOf(c);
    const chunks = store.raw(row.id);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
    });
    const headers: Record<string, string> = {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(row.size),
      "X-Content-Type-Options": "nosniff",
    };
    if (c.req.query("download") !== undefined)
      headers["Content-Disposition"] = `attachment; filename="message-${row.id}.eml"`;
    return new Response(stream, { headers });
  });
  app.get("/api/v1/message/:ID/headers", async (c) =>
    c.json(headersJson(await parsed(messageOf(c)))),
  );
  app.get("/api/v1/message/:ID/part/:PartID", async (c) => {
    const row = messageOf(c);
    const email = await parsed(row);
    const index = Number(c.req.param("PartID")) - 1;
    const attachment = Number.isInteger(index) ? email.attachments[index] : undefined;
    if (!attachment) throw new HttpError(404, `no part ${c.req.param("PartID")}`);
    const content =
      typeof attachment.content === "string"
        ? Buffer.from(attachment.content, attachment.encoding === "base64" ? "base64" : "utf8")
        : Buffer.from(
            attachment.content instanceof Uint8Array
              ? attachment.content
              : new Uint8Array(attachment.content),
          );
    const name = (attachment.filename ?? `part-${index + 1}`).replace(/["\\\r\n]/g, "_");
    return new Response(new Uint8Array(content), {
      headers: {
        "Content-Type": attachment.mimeType,
        "Content-Disposition": `attachment; filename="${name}"`,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
      },
    });
  });
  // The HTML part for the UI's sandboxed iframe: scripts never run, remote images only on request.
  app.get("/api/v1/message/:ID/html", async (c) => {
    const row = messageOf(c);
    const email = await parsed(row);
    const remote = c.req.query("remote") === "1";
    const html = inlineCids(email.html ?? "", email);
    return c.body(html, 200, {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": htmlPolicy(remote),
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    });
  });

  // --- Mailpit: tags
  app.get("/api/v1/tags", (c) => c.json(store.tags()));
  app.put("/api/v1/tags", async (c) => {
    const body = await jsonBody(c);
    const ids = idsOf(body) ?? [];
    const tags = body.Tags ?? body.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string"))
      throw new HttpError(400, "Tags must be an array of strings");
    store.setTags(ids, tags as string[]);
    return c.text("ok");
  });

  // --- Mailpit: info
  app.get("/api/v1/info", (c) => {
    const { total, unread } = store.counts();
    const tags: Record<string, number> = {};
    for (const tag of store.tags())
      tags[tag] = store.list({ where: filterSql({ tag }), limit: 0 }).matched;
    return c.json({
      Version: options.version,
      Database: store.path,
      Messages: total,
      Unread: unread,
      Tags: tags,
      SMTP: options.smtpAddress?.() ?? "",
      RuntimeStats: { Memory: process.memoryUsage().rss, Uptime: Math.round(process.uptime()) },
    });
  });

  // --- Waiting: the Memory kit's waitFor over HTTP
  app.get("/api/v1/wait", async (c) => {
    const view = viewOf(c);
    const timeout = Math.min(nonNegative(c.req.query("timeout"), 30_000, "timeout"), maxWait);
    const where = view.where ?? { sql: "1", params: [] };
    const found = (id?: number): MessageRow | undefined =>
      id === undefined
        ? store.list({ where, limit: 1, oldestFirst: true }).messages[0]
        : store.list({
            where: { sql: `(${where.sql}) AND m.id = ?`, params: [...where.params, id] },
            limit: 1,
          }).messages[0];
    const row = await new Promise<MessageRow | undefined>((resolve) => {
      const stop = (value: MessageRow | undefined) => {
        clearTimeout(timer);
        unsubscribe();
        c.req.raw.signal.removeEventListener("abort", onAbort);
        resolve(value);
      };
      // Subscribed before looking, so that nothing arriving in between is missed.
      const unsubscribe = store.subscribe((event) => {
        if (event.type !== "new") return;
        const match = found(event.message.id);
        if (match) stop(match);
      });
      const timer = setTimeout(() => stop(undefined), timeout);
      const onAbort = () => stop(undefined);
      c.req.raw.signal.addEventListener("abort", onAbort, { once: true });
      const already = found();
      if (already) stop(already);
    });
    if (!row) {
      const seen = store.list({ where, limit: 10 }).messages;
      const recent = store.list({ limit: 10 }).messages;
      throw new HttpError(
        408,
        `wait(${describeFilter(view.filter)}) timed out after ${timeout} ms in ${view.label}: ${
          seen.length > 0 ? "" : `no message arrived there (${store.counts().total} in all)`
        }${recent.map((m) => `\n  #${m.id} <${m.mailFrom}> → ${m.rcptTos.map((r) => `<${r}>`).join(", ")} ${JSON.stringify(m.subject)}`).join("")}`,
      );
    }
    return c.json(messageJson(row, await parsed(row)));
  });

  // --- Live updates
  app.get("/api/v1/events", (c) =>
    streamSSE(c, async (stream) => {
      const queue: { event: string; data: string }[] = [];
      let wake: (() => void) | null = null;
      const push = (event: string, data: unknown) => {
        if (queue.length < 1000) queue.push({ event, data: JSON.stringify(data) });
        wake?.();
      };
      const unsubscribe = store.subscribe((event: StoreEvent) =>
        push(
          event.type,
          event.type === "new"
            ? summaryJson(event.message)
            : { IDs: event.ids === "all" ? "all" : event.ids.map(String) },
        ),
      );
      const unsubscribeFaults = faults.subscribe(() =>
        push("faults", { Rules: faults.list().length }),
      );
      const aborted = new Promise<void>((resolve) => stream.onAbort(resolve));
      let open = true;
      void aborted.then(() => {
        open = false;
        wake?.();
      });
      try {
        await stream.writeSSE({ event: "hello", data: JSON.stringify(store.counts()) });
        while (open) {
          const event = queue.shift();
          if (!event) {
            await Promise.race([
              new Promise<void>((resolve) => {
                wake = resolve;
              }),
              new Promise<void>((resolve) => setTimeout(resolve, 15_000).unref()),
            ]);
            wake = null;
            if (queue.length === 0 && open) await stream.write(": keep-alive\n\n");
            continue;
          }
          await stream.writeSSE(event);
        }
      } finally {
        unsubscribe();
        unsubscribeFaults();
      }
    }),
  );

  // --- Scopes: an isolated inbox for one test
  app.post("/api/v1/scopes", async (c) => {
    const body = await jsonBody(c);
    const text = (key: string) => {
      const value = body[key];
      if (value === undefined || value === null) return undefined;
      if (typeof value !== "string") throw new HttpError(400, `${key} must be a string`);
      return value;
    };
    const raw = { to: text("to"), from: text("from"), subject: text("subject"), tag: text("tag") };
    for (const key of ["to", "from", "subject"] as const) matchParam(raw[key], key);
    return c.json(scopes.create(raw), 201);
  });
  app.get("/api/v1/scopes/:id", (c) => {
    const scope = scopes.get(c.req.param("id"));
    if (!scope) throw new HttpError(404, `no scope ${c.req.param("id")}`);
    return c.json(scopes.json(scope));
  });
  app.delete("/api/v1/scopes/:id", (c) => {
    if (!scopes.remove(c.req.param("id")))
      throw new HttpError(404, `no scope ${c.req.param("id")}`);
    return c.text("ok");
  });

  // --- Fault injection
  app.get("/api/v1/faults", (c) => c.json(faults.list().map(faultJson)));
  app.post("/api/v1/faults", async (c) => c.json(faultJson(faults.add(await jsonBody(c))), 201));
  app.delete("/api/v1/faults", (c) => {
    faults.clear();
    return c.text("ok");
  });
  app.delete("/api/v1/faults/:id", (c) => {
    if (!faults.remove(c.req.param("id")))
      throw new HttpError(404, `no fault rule ${c.req.param("id")}`);
    return c.text("ok");
  });

  // --- The web UI
  const serveStatic = async (c: Context, name: string) => {
    const match = STATIC_NAME.exec(name);
    if (!match) return c.notFound();
    try {
      const content = await readFile(new URL(name, options.publicDir));
      return c.body(new Uint8Array(content), 200, {
        "Content-Type": STATIC_TYPES[match[1] as string] as string,
        "Cache-Control": "no-cache",
        "Content-Security-Policy":
          "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'",
      });
    } catch {
      return c.notFound();
    }
  };
  app.get("/", (c) => serveStatic(c, "index.html"));
  app.get("/ui/:name", (c) => serveStatic(c, c.req.param("name")));
  return app;
}
