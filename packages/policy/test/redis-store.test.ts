import { Memory } from "@smtpkit/handlers";
import { compose } from "@smtpkit/node";
import { Redis } from "ioredis";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits, RedisStore } from "../src/index.js";
import { RedisServer, redisServerMissing, servedForEachTest, until } from "./helpers.js";

const served = servedForEachTest();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(redisServerMissing)(
  `RedisStore on a real redis-server${redisServerMissing ? ` [skip: ${redisServerMissing}]` : ""}`,
  () => {
    const redis = new RedisServer();
    const stores: RedisStore[] = [];
    let admin: Redis;
    let prefixes = 0;
    /** A store with a prefix of its own, so tests do not see each other's keys. */
    const storeFor = (prefix: string) => {
      const store = new RedisStore({ url: redis.url, prefix });
      stores.push(store);
      return store;
    };
    const freshPrefix = () => `test${++prefixes}:`;

    beforeAll(async () => {
      await redis.start();
      admin = new Redis(redis.url);
    });
    afterAll(async () => {
      await Promise.all(stores.map((store) => store.close()));
      await admin?.quit();
      await redis.stop();
    });

    it("counts hits in a window that starts with the first one, and forgets them when it ends", async () => {
      const prefix = freshPrefix();
      const store = storeFor(prefix);
      expect(await store.increment("k", 400)).toMatchObject({ count: 1 });
      const second = await store.increment("k", 400);
      expect(second.count).toBe(2);
      expect(second.resetMs).toBeGreaterThan(0);
      expect(second.resetMs).toBeLessThanOrEqual(400);
      expect((await store.get("k")).count).toBe(2);
      // The key is prefixed and carries the window as its TTL.
      expect(await admin.keys(`${prefix}*`)).toEqual([`${prefix}k`]);
      const ttl = await admin.pttl(`${prefix}k`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(400);
      await sleep(500);
      expect(await store.get("k")).toEqual({ count: 0, resetMs: 0 });
      expect(await admin.exists(`${prefix}k`)).toBe(0);
      expect((await store.increment("k", 400)).count).toBe(1);
    });

    it("takes slots all or nothing, gives them back, and lets a dead holder's lease lapse", async () => {
      const prefix = freshPrefix();
      const store = storeFor(prefix);
      const slots = [
        { key: "ip", limit: 2 },
        { key: "net", limit: 1 },
      ];
      expect(await store.acquire("a", slots, 60_000)).toEqual({ acquired: true });
      // "net" is full: nothing is taken, "ip" keeps one holder.
      expect(await store.acquire("b", slots, 60_000)).toEqual({
        acquired: false,
        key: "net",
        count: 1,
      });
      expect(await admin.zcard(`${prefix}ip`)).toBe(1);
      await store.release("a", ["ip", "net"]);
      expect(await admin.exists(`${prefix}ip`, `${prefix}net`)).toBe(0);

      // A holder that never releases (its instance crashed): its lease lapses.
      expect(await store.acquire("crashed", [{ key: "ip", limit: 1 }], 300)).toEqual({
        acquired: true,
      });
      expect(await store.acquire("c", [{ key: "ip", limit: 1 }], 60_000)).toMatchObject({
        acquired: false,
      });
      await sleep(400);
      expect(await store.acquire("c", [{ key: "ip", limit: 1 }], 60_000)).toEqual({
        acquired: true,
      });
      // A renewed lease does not lapse.
      expect(await store.acquire("d", [{ key: "x", limit: 1 }], 300)).toEqual({ acquired: true });
      for (let i = 0; i < 4; i++) {
        await sleep(150);
        await store.renew([{ key: "x", holder: "d" }], 300);
      }
      expect(await store.acquire("e", [{ key: "x", limit: 1 }], 300)).toMatchObject({
        acquired: false,
      });
      expect(await admin.pttl(`${prefix}x`)).toBeGreaterThan(0);
    });

    it("two servers sharing one Redis share one budget of connections per address", async () => {
      const prefix = freshPrefix();
      const policy = (store: RedisStore) => limits({ connections: { perIp: 2 }, store });
      const a = await served.start(compose(policy(storeFor(prefix)), new Memory()));
      const b = await served.start(compose(policy(storeFor(prefix)), new Memory()));
      const onA = await served.open(a);
      const onB = await served.open(b);
      expect(await onA.reply()).toMatch(/^220 /);
      expect(await onB.reply()).toMatch(/^220 /);
      for (const server of [a, b]) {
        const over = await served.open(server);
        expect(await over.reply()).toMatch(
          /^421 4\.7\.0 mx\.test Too many connections from 127\.0\.0\.1/,
        );
      }
      expect(await onB.command("QUIT")).toMatch(/^221 /);
      await until(
        () => zcard === 1,
        "B's slot to be given back",
        5000,
        async () => {
          zcard = await admin.zcard(`${prefix}conn:127.0.0.1`);
        },
      );
      const again = await served.open(a);
      expect(await again.reply()).toMatch(/^220 /);
    });
    let zcard = -1;

    it("two servers sharing one Redis share one budget of messages per window", async () => {
      const prefix = freshPrefix();
      const policy = (store: RedisStore) =>
        limits({ messages: { rate: { limit: 3, windowMs: 60_000 } }, store });
      const memory = new Memory();
      const a = await served.start(compose(policy(storeFor(prefix)), memory));
      const b = await served.start(compose(policy(storeFor(prefix)), memory));
      const send = (port: number, n: number) =>
        nodemailer
          .createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true })
          .sendMail({ from: "a@example.com", to: "b@example.com", subject: `m${n}`, text: "x" })
          .then(
            () => "sent",
            (error: { responseCode?: number }) => error.responseCode,
          );
      const results = [];
      for (let i = 0; i < 6; i++) results.push(await send(i % 2 === 0 ? a.port : b.port, i));
      expect(results).toEqual(["sent", "sent", "sent", 450, 450, 450]);
      expect(memory.messages).toHaveLength(3);
    });

    it("a Redis that is away lets clients through (onStoreError: allow) and logs it", async () => {
      const other = new RedisServer();
      await other.start();
      const store = new RedisStore({ url: other.url, commandTimeout: 300 });
      stores.push(store);
      const errors: string[] = [];
      const logger = { error: (m: string) => errors.push(m), info: () => {}, debug: () => {} };
      const server = await served.start(
        compose(limits({ connections: { perIp: 1 }, store }), new Memory()),
        { logger },
      );
      const first = await served.open(server);
      expect(await first.reply()).toMatch(/^220 /);
      await other.stop();
      const second = await served.open(server);
      expect(await second.reply()).toMatch(/^220 /);
      expect(errors.some((line) => line.includes("limit store failed"))).toBe(true);
    });

    it("onStoreError: refuse answers 421 4.3.0 while the store is away", async () => {
      const store = new RedisStore({ url: "redis://127.0.0.1:1", commandTimeout: 300 });
      stores.push(store);
      const server = await served.start(
        compose(limits({ connections: { perIp: 1 }, store, onStoreError: "refuse" }), new Memory()),
      );
      const client = await served.open(server);
      expect(await client.reply()).toMatch(/^421 4\.3\.0 mx\.test /);
    });
  },
);
