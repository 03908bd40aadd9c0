import { afterEach, describe, expect, test, vi } from "vitest";
import type { Handler } from "../src/server/handler.js";
import { SessionPool, SMTP, type SmtpOptions, type SmtpTransport } from "../src/server/index.js";
import { MemoryTransport } from "./helpers/memory-transport.js";

/**
 * The pool's side of a connection over a MemoryTransport (the test plays the client on `client`).
 * With `closedPromise` it has the `closed` promise the real adapters' transports have.
 */
class Conn implements SmtpTransport {
  readonly client = new MemoryTransport();
  readonly peer = this.client.peer;
  readonly local = this.client.local;
  readonly canStartTls = false;
  readonly closed: Promise<void> | undefined;
  destroyed = false;
  #markClosed = (): void => undefined;

  constructor(closedPromise = true) {
    this.closed = closedPromise
      ? new Promise((resolve) => {
          this.#markClosed = resolve;
        })
      : undefined;
  }
  get tls() {
    return this.client.tls;
  }
  read() {
    return this.client.read();
  }
  write(data: Uint8Array) {
    return this.client.write(data);
  }
  startTls() {
    return this.client.startTls();
  }
  async close() {
    await this.client.close();
    this.#markClosed();
  }
  destroy() {
    this.destroyed = true;
    void this.close();
  }
}

function pool(
  handler: Handler = {},
  options: Partial<ConstructorParameters<typeof SessionPool>[1]> = {},
) {
  return new SessionPool(handler, { hostname: "mx.test", ...options });
}

/** Serves a connection and waits for the greeting. */
async function greeted(sessions: SessionPool, conn = new Conn()) {
  const done = sessions.serve(conn);
  expect(await conn.client.replies(1)).toEqual([expect.stringMatching(/^220 mx\.test /)]);
  return { conn, client: conn.client, done };
}

async function startData(client: MemoryTransport): Promise<void> {
  await client.command("EHLO client.test");
  expect(await client.command("MAIL FROM:<a@example.com>")).toEqual(["250 2.1.0 OK"]);
  expect(await client.command("RCPT TO:<b@example.com>")).toEqual(["250 2.1.5 OK"]);
  expect(await client.command("DATA")).toEqual(["354 End data with <CR><LF>.<CR><LF>"]);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("SessionPool", () => {
  test("builds the SMTP options once, with the Controller defaults, for every session", async () => {
    const seen: SmtpOptions[] = [];
    class Recording extends SMTP {
      constructor(handler: Handler, options: SmtpOptions) {
        super(handler, options);
        seen.push(options);
      }
    }
    const sessions = pool({}, { smtpClass: Recording, maxConnections: 5, closeTimeout: 10 });
    expect(sessions.smtpOptions).toEqual({ hostname: "mx.test", enableSmtpUtf8: true });
    const a = await greeted(sessions);
    const b = await greeted(sessions);
    // One instance from the constructor (the options check), one per connection.
    expect(seen).toHaveLength(3);
    for (const options of seen) expect(options).toBe(sessions.smtpOptions);
    expect(await a.client.command("EHLO x", 1)).toContain("250-SMTPUTF8");
    await a.client.command("QUIT");
    await b.client.command("QUIT");
    await Promise.all([a.done, b.done]);
    expect(pool({}, { enableSmtpUtf8: false }).smtpOptions.enableSmtpUtf8).toBe(false);
  });

  test("bad options throw at construction", () => {
    expect(() => pool({}, { maxConnections: -1 })).toThrow(RangeError);
    expect(() => pool({}, { maxConnections: 1.5 })).toThrow(RangeError);
    expect(() => pool({}, { proxyProtocolTimeout: -1 })).toThrow(RangeError);
  });

  test("a full pool refuses with 421 4.7.0 and closes; the slot frees when a session ends", async () => {
    const sessions = pool({}, { maxConnections: 1 });
    const first = await greeted(sessions);
    expect(sessions.size).toBe(1);

    const extra = new Conn();
    await sessions.serve(extra);
    expect(extra.client.take()).toBe("421 4.7.0 mx.test Error: too many connections\r\n");
    expect(extra.client.closed).toBe(true);
    expect(sessions.size).toBe(1);

    expect(await first.client.command("NOOP")).toEqual(["250 2.0.0 OK"]);
    expect(await first.client.command("QUIT")).toEqual(["221 2.0.0 Bye"]);
    await first.done;
    expect(first.client.closed).toBe(true);
    expect(sessions.size).toBe(0);
    const third = await greeted(sessions);
    expect(sessions.size).toBe(1);
    third.client.end();
    await third.done;
  });

  test("maxConnections 0 refuses everyone", async () => {
    const sessions = pool({}, { maxConnections: 0 });
    const conn = new Conn();
    await sessions.serve(conn);
    expect(conn.client.take()).toMatch(/^421 4\.7\.0 /);
  });

  test("graceful close: an idle session gets 421 at once, one mid-DATA finishes with 250, then 421", async () => {
    const bodies: string[] = [];
    const sessions = pool({
      handleDATA(_server, _session, envelope) {
        bodies.push(new TextDecoder().decode(envelope.content as Uint8Array));
        return "250 OK";
      },
    });
    const idle = await greeted(sessions);
    await idle.client.command("EHLO idle.test");
    const busy = await greeted(sessions);
    await startData(busy.client);
    busy.client.send("Subject: draining\r\n\r\nfirst half\r\n");

    let closed = false;
    const closing = sessions.close().then(() => {
      closed = true;
    });
    expect(sessions.closing).toBe(true);
    expect(await idle.client.replies(1)).toEqual(["421 4.3.2 mx.test Service shutting down"]);
    await idle.done;
    expect(idle.client.closed).toBe(true);
    expect(sessions.size).toBe(1);

    // New connections are dropped while closing.
    const late = new Conn();
    await sessions.serve(late);
    expect(late.destroyed).toBe(true);

    expect(closed).toBe(false);
    busy.client.send("second half\r\n.\r\n");
    expect(await busy.client.replies(2)).toEqual([
      "250 2.0.0 OK",
      "421 4.3.2 mx.test Service shutting down",
    ]);
    await closing;
    await busy.done;
    expect(busy.client.closed).toBe(true);
    expect(sessions.size).toBe(0);
    expect(bodies).toEqual(["Subject: draining\r\n\r\nfirst half\r\nsecond half\r\n"]);
    // Idempotent.
    await sessions.close();
  });

  test("close timeout: a transaction that does not finish in time is aborted with 421", async () => {
    const sessions = pool({}, { closeTimeout: 50 });
    const stuck = await greeted(sessions);
    await startData(stuck.client);
    stuck.client.send("never finished\r\n");
    const started = Date.now();
    await sessions.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(stuck.client.take()).toBe("421 4.3.2 mx.test Service shutting down\r\n");
    expect(stuck.client.closed).toBe(true);
    await stuck.done;
    expect(sessions.size).toBe(0);
  });

  test("close timeout: a hook that ignores its abort signal: the transport closes, close() resolves", async () => {
    const sessions = pool({ handleDATA: () => new Promise(() => undefined) });
    const stuck = await greeted(sessions);
    await startData(stuck.client);
    stuck.client.send("body\r\n.\r\n");
    await sessions.close({ timeout: 20 });
    expect(stuck.client.take()).toBe("421 4.3.2 mx.test Service shutting down\r\n");
    expect(stuck.client.closed).toBe(true);
    expect(stuck.conn.destroyed).toBe(false);
    expect(sessions.size).toBe(0);
  });

  test("without a closed promise, a session stuck in a hook is destroyed a second after abort()", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const sessions = pool({ handleDATA: () => new Promise(() => undefined) });
    const stuck = await greeted(sessions, new Conn(false));
    await startData(stuck.client);
    stuck.client.send("body\r\n.\r\n");
    await vi.advanceTimersByTimeAsync(10);
    let closed = false;
    const closing = sessions.close({ timeout: 100 }).then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(stuck.client.take()).toBe("421 4.3.2 mx.test Service shutting down\r\n");
    await vi.advanceTimersByTimeAsync(900);
    expect(closed).toBe(false);
    expect(stuck.conn.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    await closing;
    expect(stuck.conn.destroyed).toBe(true);
    expect(sessions.size).toBe(0);
  });

  test("close() with no sessions resolves at once; refused connections still writing are destroyed", async () => {
    const sessions = pool({}, { maxConnections: 0 });
    const conn = new Conn();
    // A client that never reads: the refusal's write completes only by failing on destroy().
    let fail = (_error: Error): void => undefined;
    conn.write = () =>
      new Promise((_resolve, reject) => {
        fail = reject;
      });
    const destroy = conn.destroy.bind(conn);
    conn.destroy = () => {
      fail(new Error("destroyed"));
      destroy();
    };
    const refused = sessions.serve(conn);
    await sessions.close();
    expect(conn.destroyed).toBe(true);
    await refused;
  });

  test("a signal shuts its session down gracefully", async () => {
    const sessions = pool();
    const controller = new AbortController();
    const conn = new Conn();
    const done = sessions.serve(conn, { signal: controller.signal });
    await conn.client.replies(1);
    await startData(conn.client);
    controller.abort();
    expect(await conn.client.command("body\r\n.")).toEqual(["250 2.0.0 OK"]);
    expect(await conn.client.replies(1)).toEqual(["421 4.3.2 mx.test Service shutting down"]);
    await done;
    expect(sessions.size).toBe(0);
  });

  test("serve() never rejects: an SMTP class failing at a connection goes to onError", async () => {
    let calls = 0;
    class Flaky extends SMTP {
      constructor(handler: Handler, options: SmtpOptions) {
        super(handler, options);
        if (++calls > 1) throw new Error("flaky");
      }
    }
    const errors: Error[] = [];
    const sessions = pool({}, { smtpClass: Flaky, onError: (error) => errors.push(error) });
    const conn = new Conn();
    await expect(sessions.serve(conn)).resolves.toBeUndefined();
    expect(conn.destroyed).toBe(true);
    expect(errors.map((error) => error.message)).toEqual(["flaky"]);
    expect(sessions.size).toBe(0);
  });

  test("the slot frees when the transport closes, even while a hook still runs", async () => {
    const sessions = pool(
      { handleDATA: () => new Promise(() => undefined) },
      { maxConnections: 1 },
    );
    const stuck = await greeted(sessions);
    await startData(stuck.client);
    stuck.client.send("body\r\n.\r\n");
    await stuck.conn.close(); // the client went away
    await vi.waitFor(() => expect(sessions.size).toBe(0));
    const next = await greeted(sessions);
    next.client.end();
    await next.done;
  });
});
