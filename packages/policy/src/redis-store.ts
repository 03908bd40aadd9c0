// Types only: ioredis is loaded when a store is made, so importing this package costs nothing more.
import type { Redis, RedisOptions } from "ioredis";
import type { Acquired, Lease, LimitStore, Slot, WindowCount } from "./store.js";

export interface RedisStoreOptions {
  /** `redis://host:port/db` (a client is made and closed by the store) ... */
  readonly url?: string;
  /** ... or a client of your own (left open by `close()`). */
  readonly client?: Redis;
  /** Put before every key (default `"smtpkit:policy:"`), so several policies can share a Redis. */
  readonly prefix?: string;
  /**
   * Milliseconds a command may take before it fails (default 1000, for a client the store makes):
   * a Redis that is away must not hold a client's greeting for long.
   */
  readonly commandTimeout?: number;
}

// Every script is one atomic step on the Redis side; windows and leases use Redis's clock, so
// instances whose clocks differ still agree.
const INCREMENT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}`;

const GET = `
local count = redis.call('GET', KEYS[1])
if not count then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(count), ttl}`;

const NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)`;

// KEYS: the slots; ARGV: holder, leaseMs, then one limit per key. All or nothing.
const ACQUIRE = `${NOW}
local lease = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, ARGV[1]) then
    local held = redis.call('ZCARD', key)
    if held >= tonumber(ARGV[i + 2]) then return {0, i, held} end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[1])
  if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
end
return {1, 0, 0}`;

// KEYS: the slots; ARGV[1]: the holder.
const RELEASE = `
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0`;

// KEYS: the slots; ARGV: leaseMs, then one holder per key. Only leases still held are extended.
const RENEW = `${NOW}
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + lease, ARGV[i + 1]) == 1 then
    if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
  end
end
return 0`;

interface ScriptCommands {
  policyIncrement(key: string, windowMs: number): Promise<[number, number]>;
  policyGet(key: string): Promise<[number, number]>;
  policyAcquire(keyCount: number, ...args: (string | number)[]): Promise<[number, number, number]>;
  policyRelease(keyCount: number, ...args: string[]): Promise<number>;
  policyRenew(keyCount: number, ...args: (string | number)[]): Promise<number>;
}

const RENEW_BATCH = 500;

/**
 * The counters in Redis: every instance using the same Redis (and prefix) shares one budget.
 * Each operation is a Lua script (atomic); every key has a TTL (the window, or the lease), so
 * nothing stays behind an instance that crashed.
 */
export class RedisStore implements LimitStore {
  readonly prefix: string;
  readonly #owned: boolean;
  readonly #ready: Promise<Redis & ScriptCommands>;

  constructor(options: RedisStoreOptions) {
    const { client, url } = options;
    if (!client && !url) throw new TypeError("RedisStore needs a url or a client");
    this.#owned = !client;
    this.prefix = options.prefix ?? "smtpkit:policy:";
    const made: Promise<Redis> = client
      ? Promise.resolve(client)
      : import("ioredis").then(({ Redis }) => {
          const clientOptions: RedisOptions = {
            commandTimeout: options.commandTimeout ?? 1000,
            maxRetriesPerRequest: 1,
          };
          const redis = new Redis(url as string, clientOptions);
          // Connection errors are the commands' failures (logged there), not an unhandled event.
          redis.on("error", () => undefined);
          return redis;
        });
    this.#ready = made.then((redis) => {
      const define = (name: string, lua: string, numberOfKeys?: number) =>
        redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { lua, numberOfKeys });
      define("policyIncrement", INCREMENT, 1);
      define("policyGet", GET, 1);
      define("policyAcquire", ACQUIRE);
      define("policyRelease", RELEASE);
      define("policyRenew", RENEW);
      return redis as Redis & ScriptCommands;
    });
    this.#ready.catch(() => undefined); // seen by the first command
  }

  /** The ioredis client, once made. */
  get client(): Promise<Redis> {
    return this.#ready;
  }

  async increment(key: string, windowMs: number): Promise<WindowCount> {
    const redis = await this.#ready;
    const [count, resetMs] = await redis.policyIncrement(this.prefix + key, Math.ceil(windowMs));
    return { count, resetMs };
  }

  async get(key: string): Promise<WindowCount> {
    const redis = await this.#ready;
    const [count, resetMs] = await redis.policyGet(this.prefix + key);
    return { count, resetMs };
  }

  async acquire(holder: string, slots: readonly Slot[], leaseMs: number): Promise<Acquired> {
    if (slots.length === 0) return { acquired: true };
    const redis = await this.#ready;
    const [ok, index, count] = await redis.policyAcquire(
      slots.length,
      ...slots.map((slot) => this.prefix + slot.key),
      holder,
      Math.ceil(leaseMs),
      ...slots.map((slot) => slot.limit),
    );
    if (ok === 1) return { acquired: true };
    return { acquired: false, key: (slots[index - 1] as Slot).key, count };
  }

  async release(holder: string, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const redis = await this.#ready;
    await redis.policyRelease(keys.length, ...keys.map((key) => this.prefix + key), holder);
  }

  async renew(leases: readonly Lease[], leaseMs: number): Promise<void> {
    const redis = await this.#ready;
    for (let i = 0; i < leases.length; i += RENEW_BATCH) {
      const batch = leases.slice(i, i + RENEW_BATCH);
      await redis.policyRenew(
        batch.length,
        ...batch.map((lease) => this.prefix + lease.key),
        Math.ceil(leaseMs),
        ...batch.map((lease) => lease.holder),
      );
    }
  }

  /** Closes the client the store made (one passed in is left to its owner). */
  async close(): Promise<void> {
    if (!this.#owned) return;
    let redis: Redis;
    try {
      redis = await this.#ready;
    } catch {
      return;
    }
    try {
      await redis.quit();
    } catch {
      redis.disconnect();
    }
  }
}
