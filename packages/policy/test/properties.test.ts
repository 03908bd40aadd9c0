import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalAddress, MemoryStore, networkOf, parseRate } from "../src/index.js";

/** A store on a clock the property moves. */
function clocked(maxKeys?: number) {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now, sweepMs: 0, ...(maxKeys && { maxKeys }) });
  return { store, advance: (ms: number) => (now += ms), now: () => now };
}

const holderIds = fc.constantFrom("h1", "h2", "h3", "h4", "h5");
const operation = fc.oneof(
  fc.record({
    type: fc.constant("acquire" as const),
    holder: holderIds,
    limit: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ type: fc.constant("release" as const), holder: holderIds }),
  fc.record({ type: fc.constant("renew" as const), holder: holderIds }),
  fc.record({ type: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 400 }) }),
);

describe("the concurrency slots (fast-check)", () => {
  it("any interleaving of acquire, release, renew and time: never negative, never over the limit, no lease outlives its term", () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 60 }), (operations) => {
        const { store, advance, now } = clocked();
        const leaseMs = 1000;
        // The model: holder → lease expiry.
        const model = new Map<string, number>();
        for (const op of operations) {
          for (const [holder, expiresAt] of model) if (expiresAt <= now()) model.delete(holder);
          if (op.type === "acquire") {
            const result = store.acquire(op.holder, [{ key: "k", limit: op.limit }], leaseMs);
            const mayTake = model.has(op.holder) || model.size < op.limit;
            expect(result.acquired).toBe(mayTake);
            if (mayTake) model.set(op.holder, now() + leaseMs);
          } else if (op.type === "release") {
            store.release(op.holder, ["k"]);
            model.delete(op.holder);
          } else if (op.type === "renew") {
            store.renew([{ key: "k", holder: op.holder }], leaseMs);
            if (model.has(op.holder)) model.set(op.holder, now() + leaseMs);
          } else advance(op.ms);
          for (const [holder, expiresAt] of model) if (expiresAt <= now()) model.delete(holder);
          const held = store.holders("k");
          expect(held).toBeGreaterThanOrEqual(0);
          expect(held).toBe(model.size);
          expect(held).toBeLessThanOrEqual(3);
        }
        advance(leaseMs);
        expect(store.holders("k")).toBe(0);
        store.sweep();
        expect(store.size.slots).toBe(0);
      }),
    );
  });

  it("several slots are taken all or none", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ holder: holderIds, release: fc.boolean() }), { maxLength: 40 }),
        (steps) => {
          const { store } = clocked();
          const slots = [
            { key: "ip", limit: 3 },
            { key: "net", limit: 2 },
          ];
          for (const step of steps) {
            if (step.release) store.release(step.holder, ["ip", "net"]);
            else store.acquire(step.holder, slots, 10_000);
            expect(store.holders("net")).toBeLessThanOrEqual(2);
            // Every holder of "ip" holds "net" too: nothing was half taken.
            expect(store.holders("ip")).toBe(store.holders("net"));
          }
        },
      ),
    );
  });
});

describe("the window counter (fast-check)", () => {
  it("counts exactly the hits since the window began, and no hit outlives its window", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 50 }),
        (windowMs, gaps) => {
          const { store, advance, now } = clocked();
          let start = -1;
          let hits = 0;
          for (const gap of gaps) {
            advance(gap);
            if (start < 0 || now() >= start + windowMs) {
              start = now();
              hits = 0;
            }
            hits++;
            const { count, resetMs } = store.increment("k", windowMs);
            expect(count).toBe(hits);
            expect(resetMs).toBe(start + windowMs - now());
            expect(resetMs).toBeGreaterThan(0);
            expect(resetMs).toBeLessThanOrEqual(windowMs);
          }
          advance(windowMs);
          expect(store.get("k")).toEqual({ count: 0, resetMs: 0 });
        },
      ),
    );
  });

  it("holds at most maxKeys windows whatever the keys", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 6 }), { maxLength: 300 }), (keys) => {
        const { store, advance } = clocked(50);
        for (const key of keys) {
          store.increment(key, 10_000);
          advance(7);
          expect(store.size.windows).toBeLessThanOrEqual(50);
        }
      }),
    );
  });
});

const ipv4 = fc.tuple(...Array.from({ length: 4 }, () => fc.integer({ min: 0, max: 255 })));
const hextets = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });

/** One textual form of the address: full, zero-compressed, upper or lower case. */
function writeIPv6(groups: number[], compress: boolean, upper: boolean): string {
  let text = groups.map((g) => g.toString(16)).join(":");
  if (compress) {
    // Compress the first run of zero groups, as inet_ntop does for the longest one.
    const match = /(^|:)0(:0)+(:|$)/.exec(text);
    if (match) text = `${text.slice(0, match.index)}::${text.slice(match.index + match[0].length)}`;
  }
  return upper ? text.toUpperCase() : text;
}

describe("CIDR keys (fast-check)", () => {
  it("IPv4: the key is the address, the network its /24 (or any prefix), IPv4-mapped IPv6 the same", () => {
    fc.assert(
      fc.property(ipv4, fc.integer({ min: 0, max: 32 }), (bytes, prefix) => {
        const text = bytes.join(".");
        expect(canonicalAddress(text)).toBe(text);
        expect(canonicalAddress(`::ffff:${text}`)).toBe(text);
        const [a, b, c] = bytes;
        expect(networkOf(text)).toBe(`${a}.${b}.${c}.0/24`);
        const network = networkOf(text, prefix) as string;
        expect(networkOf(`::ffff:${text}`, prefix)).toBe(network);
        // The network of the network's address is the network; the address is inside it.
        const base = network.split("/")[0] as string;
        expect(networkOf(base, prefix)).toBe(network);
        const value = (s: string) => s.split(".").reduce((n, o) => n * 256 + Number(o), 0);
        const size = 2 ** (32 - prefix);
        expect(value(base) % size).toBe(0);
        expect(value(text) - value(base)).toBeLessThan(size);
      }),
    );
  });

  it("IPv6: every way of writing an address gives one key, and one /64", () => {
    fc.assert(
      fc.property(hextets, fc.boolean(), fc.boolean(), (groups, compress, upper) => {
        fc.pre(!(groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff)); // not IPv4-mapped
        const canonical = groups.map((g) => g.toString(16)).join(":");
        const written = writeIPv6(groups, compress, upper);
        expect(canonicalAddress(written)).toBe(canonical);
        const padded = groups.map((g) => g.toString(16).padStart(4, "0")).join(":");
        expect(canonicalAddress(padded)).toBe(canonical);
        expect(networkOf(written)).toBe(
          `${groups
            .slice(0, 4)
            .map((g) => g.toString(16))
            .join(":")}:0:0:0:0/64`,
        );
      }),
    );
  });

  it("random text: a key or null, never an exception", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 45 }), (text) => {
        const key = canonicalAddress(text);
        expect(key === null || typeof key === "string").toBe(true);
        const network = networkOf(text);
        expect(network === null || network.includes("/")).toBe(true);
        expect(network === null).toBe(key === null);
      }),
    );
  });
});

describe("parseRate (fast-check)", () => {
  it("N/M is N per M minutes; anything else a RangeError", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 1440 }), (n, m) => {
        expect(parseRate(`${n}/${m}`)).toEqual({ limit: n, windowMs: m * 60_000 });
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        try {
          const rate = parseRate(text);
          expect(rate.limit).toBeGreaterThanOrEqual(1);
          expect(rate.windowMs).toBeGreaterThanOrEqual(1000);
        } catch (error) {
          expect(error).toBeInstanceOf(RangeError);
        }
      }),
    );
    expect(parseRate("5/30s")).toEqual({ limit: 5, windowMs: 30_000 });
    expect(parseRate("100/1h")).toEqual({ limit: 100, windowMs: 3_600_000 });
    expect(parseRate("20")).toEqual({ limit: 20, windowMs: 60_000 });
    expect(() => parseRate("0/1")).toThrow(RangeError);
    expect(() => parseRate("ten/1")).toThrow(RangeError);
  });
});
