import { Sink } from "@smtpkit/handlers";
import { compose } from "@smtpkit/node";
import { describe, expect, it } from "vitest";
import { type LimitEvent, limits, MemoryStore } from "../src/index.js";
import { servedForEachTest, until } from "./helpers.js";

const served = servedForEachTest();

describe("concurrent connections per address", () => {
  it("refuses the connection over the limit with 421 4.7.0 before the greeting, and frees the slot on close", async () => {
    const store = new MemoryStore();
    const events: LimitEvent[] = [];
    const server = await served.start(
      compose(
        limits({ connections: { perIp: 2 }, store, onLimit: (e) => events.push(e) }),
        new Sink(),
      ),
    );
    const first = await served.open(server);
    const second = await served.open(server);
    expect(await first.reply()).toMatch(/^220 /);
    expect(await second.reply()).toMatch(/^220 /);

    const third = await served.open(server);
    expect(await third.reply()).toBe(
      "421 4.7.0 mx.test Too many connections from 127.0.0.1, try again later",
    );
    await third.closed();
    expect(events).toMatchObject([
      { limit: "connections", subject: "127.0.0.1", count: 2, max: 2, retryAfter: null },
    ]);

    // Another address has its own budget.
    const other = await served.open(server, "127.0.0.2");
    expect(await other.reply()).toMatch(/^220 /);

    expect(await first.command("QUIT")).toMatch(/^221 /);
    await first.closed();
    await until(() => store.holders("conn:127.0.0.1") === 1, "the slot to be given back");
    const again = await served.open(server);
    expect(await again.reply()).toMatch(/^220 /);
    expect(await again.command("EHLO client")).toMatch(/^250/);
  });

  it("a client that drops the connection gives its slot back too", async () => {
    const store = new MemoryStore();
    const server = await served.start(
      compose(limits({ connections: { perIp: 1 }, store }), new Sink()),
    );
    const first = await served.open(server);
    expect(await first.reply()).toMatch(/^220 /);
    first.destroy();
    await until(() => store.holders("conn:127.0.0.1") === 0, "the slot to be given back");
    const second = await served.open(server);
    expect(await second.reply()).toMatch(/^220 /);
  });

  it("limits a /24 with perNetwork, and counts addresses outside it apart", async () => {
    const server = await served.start(
      compose(limits({ connections: { perIp: 5, perNetwork: 2 } }), new Sink()),
    );
    const a = await served.open(server, "127.0.0.2");
    const b = await served.open(server, "127.0.0.3");
    expect(await a.reply()).toMatch(/^220 /);
    expect(await b.reply()).toMatch(/^220 /);
    const c = await served.open(server, "127.0.0.4");
    expect(await c.reply()).toBe(
      "421 4.7.0 mx.test Too many connections from 127.0.0.0/24, try again later",
    );
    const elsewhere = await served.open(server, "127.0.1.2");
    expect(await elsewhere.reply()).toMatch(/^220 /);
  });

  it("logs each refusal through the server's logger", async () => {
    const lines: string[] = [];
    const logger = {
      error: (m: string) => lines.push(m),
      info: (m: string) => lines.push(m),
      debug: () => {},
    };
    const server = await served.start(compose(limits({ connections: { perIp: 1 } }), new Sink()), {
      logger,
    });
    const first = await served.open(server);
    expect(await first.reply()).toMatch(/^220 /);
    const second = await served.open(server);
    expect(await second.reply()).toMatch(/^421 4\.7\.0 /);
    expect(lines.some((l) => /limit connections reached by 127\.0\.0\.1: 1 of 1$/.test(l))).toBe(
      true,
    );
  });

  it("exempt addresses are not limited", async () => {
    const server = await served.start(
      compose(limits({ connections: { perIp: 1 }, exempt: ["127.0.0.9/32"] }), new Sink()),
    );
    const clients = await Promise.all([1, 2, 3].map(() => served.open(server, "127.0.0.9")));
    for (const client of clients) expect(await client.reply()).toMatch(/^220 /);
  });
});

describe("the memory store's windows expire", () => {
  it("a connection refused by the rate is served once the window has passed", async () => {
    const server = await served.start(
      compose(limits({ connections: { rate: { limit: 1, windowMs: 1000 } } }), new Sink()),
    );
    const first = await served.open(server);
    expect(await first.reply()).toMatch(/^220 /);
    const second = await served.open(server);
    expect(await second.reply()).toMatch(/, retry in 1 s$/);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const third = await served.open(server);
    expect(await third.reply()).toMatch(/^220 /);
  });
});
