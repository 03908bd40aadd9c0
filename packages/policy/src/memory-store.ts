import type { Acquired, Lease, LimitStore, Slot, WindowCount } from "./store.js";

export interface MemoryStoreOptions {
  /**
   * Most window counters kept (default 100 000). When full, expired ones are dropped first, then
   * the oldest: a client whose counter is dropped starts a fresh window, memory never grows.
   */
  readonly maxKeys?: number;
  /** Milliseconds between sweeps of expired counters and lapsed leases (default 30 000). */
  readonly sweepMs?: number;
  /** The clock, in milliseconds (tests and properties pass their own). */
  readonly now?: () => number;
}

interface Window {
  count: number;
  expiresAt: number;
}

/**
 * The counters in this process's memory: limits per instance (or per worker with `--workers`).
 * Bounded: windows expire, leases lapse, at most `maxKeys` windows. Every method answers
 * synchronously, so the limits cost no promise per command.
 */
export class MemoryStore implements LimitStore {
  readonly #windows = new Map<string, Window>();
  /** key → holder → lease expiry. Bounded by the open connections that took slots. */
  readonly #slots = new Map<string, Map<string, number>>();
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #timer: ReturnType<typeof setInterval> | null;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxKeys = options.maxKeys ?? 100_000;
    if (!Number.isInteger(this.#maxKeys) || this.#maxKeys < 1)
      throw new RangeError("maxKeys must be an integer >= 1");
    this.#now = options.now ?? Date.now;
    const sweepMs = options.sweepMs ?? 30_000;
    this.#timer = sweepMs > 0 ? setInterval(() => this.sweep(), sweepMs) : null;
    // A store must not keep the process alive on its own.
    (this.#timer as { unref?: () => void } | null)?.unref?.();
  }

  /** How many window counters and concurrency keys are held now. */
  get size(): { readonly windows: number; readonly slots: number } {
    return { windows: this.#windows.size, slots: this.#slots.size };
  }

  renew(leases: readonly Lease[], leaseMs: number): void {
    const now = this.#now();
    for (const { key, holder } of leases) {
      const holders = this.#slots.get(key);
      // A lease that lapsed is gone, even if not swept yet.
      if ((holders?.get(holder) ?? 0) > now) holders?.set(holder, now + leaseMs);
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  increment(key: string, windowMs: number): WindowCount {
    const now = this.#now();
    let window = this.#windows.get(key);
    if (window === undefined || window.expiresAt <= now) {
      if (window !== undefined) this.#windows.delete(key);
      else if (this.#windows.size >= this.#maxKeys) this.#makeRoom(now);
      window = { count: 0, expiresAt: now + windowMs };
      this.#windows.set(key, window);
    }
    window.count += 1;
    return { count: window.count, resetMs: window.expiresAt - now };
  }

  get(key: string): WindowCount {
    const now = this.#now();
    const window = this.#windows.get(key);
    if (window === undefined || window.expiresAt <= now) return { count: 0, resetMs: 0 };
    return { count: window.count, resetMs: window.expiresAt - now };
  }

  acquire(holder: string, slots: readonly Slot[], leaseMs: number): Acquired {
    const now = this.#now();
    for (const { key, limit } of slots) {
      const holders = this.#slots.get(key);
      if (holders === undefined) continue;
      if (holders.size < limit || (holders.get(holder) ?? 0) > now) continue;
      // Full: only now is it worth dropping lapsed leases (a walk over at most `limit` holders).
      for (const [other, expiresAt] of holders) if (expiresAt <= now) holders.delete(other);
      if (holders.size >= limit) return { acquired: false, key, count: holders.size };
    }
    for (const { key } of slots) {
      let holders = this.#slots.get(key);
      if (holders === undefined) {
        holders = new Map();
        this.#slots.set(key, holders);
      }
      holders.set(holder, now + leaseMs);
    }
    return { acquired: true };
  }

  release(holder: string, keys: readonly string[]): void {
    for (const key of keys) {
      const holders = this.#slots.get(key);
      if (holders === undefined) continue;
      holders.delete(holder);
      if (holders.size === 0) this.#slots.delete(key);
    }
  }

  /** Slots held in `key` now (lapsed leases not counted). */
  holders(key: string): number {
    const now = this.#now();
    let count = 0;
    for (const expiresAt of this.#slots.get(key)?.values() ?? []) if (expiresAt > now) count++;
    return count;
  }

  /** Drops expired windows and lapsed leases. */
  sweep(): void {
    const now = this.#now();
    for (const [key, window] of this.#windows)
      if (window.expiresAt <= now) this.#windows.delete(key);
    for (const [key, holders] of this.#slots) {
      for (const [holder, expiresAt] of holders) if (expiresAt <= now) holders.delete(holder);
      if (holders.size === 0) this.#slots.delete(key);
    }
  }

  /** Full: sweep, and if nothing expired, forget the oldest tenth (insertion order). */
  #makeRoom(now: number): void {
    for (const [key, window] of this.#windows)
      if (window.expiresAt <= now) this.#windows.delete(key);
    if (this.#windows.size < this.#maxKeys) return;
    let drop = Math.max(1, Math.floor(this.#maxKeys / 10));
    for (const key of this.#windows.keys()) {
      this.#windows.delete(key);
      if (--drop === 0) break;
    }
  }
}
