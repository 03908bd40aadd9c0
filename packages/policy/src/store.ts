/**
 * Where the limits keep their counters. A store is shared by every connection of an instance (the
 * in-memory one) or by many instances (Redis): the limits hold across whatever shares the store.
 */

/** A fixed window's count after a hit, and how long until the window frees. */
export interface WindowCount {
  readonly count: number;
  /** Milliseconds until this window's count expires (0 when there is none). */
  readonly resetMs: number;
}

/** One concurrency budget a connection takes a slot in: the key and how many slots it has. */
export interface Slot {
  readonly key: string;
  readonly limit: number;
}

/** All of a connection's slots, or none: the first full one says which and how full. */
export type Acquired =
  | { readonly acquired: true }
  | { readonly acquired: false; readonly key: string; readonly count: number };

/** A slot held by `holder` (one connection), renewed while the connection lives. */
export interface Lease {
  readonly key: string;
  readonly holder: string;
}

/** A value, or a promise of it: the memory store answers at once, so the limits add no promise. */
export type Awaitable<T> = T | Promise<T>;

export interface LimitStore {
  /**
   * Counts one hit in `key`'s window: the window starts with its first hit and lasts `windowMs`,
   * so no hit is remembered longer than that.
   */
  increment(key: string, windowMs: number): Awaitable<WindowCount>;
  /** The window's count without a hit (0 when it has expired or never began). */
  get(key: string): Awaitable<WindowCount>;
  /**
   * Takes a slot in every one of `slots` for `holder`, or in none of them when one is full.
   * Each slot is a lease of `leaseMs`: unless renewed or released it lapses, so the slots of an
   * instance that died are freed without it.
   */
  acquire(holder: string, slots: readonly Slot[], leaseMs: number): Awaitable<Acquired>;
  /** Gives the holder's slots back (a slot not held is ignored). */
  release(holder: string, keys: readonly string[]): Awaitable<void>;
  /** Extends the leases still held by `leaseMs` from now. */
  renew(leases: readonly Lease[], leaseMs: number): Awaitable<void>;
  /** Frees the store's resources (timers, connections). */
  close(): Awaitable<void>;
}
