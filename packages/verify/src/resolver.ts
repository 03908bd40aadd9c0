/**
 * The DNS lookups of sender verification: a `node:dns` Resolver pointed at the configured server,
 * with a deadline per lookup and a small cache, in the shape mailauth takes
 * (`resolve(name, rrtype)` → records, or a rejection whose `code` says why).
 */
import { Resolver } from "node:dns/promises";

/** mailauth's resolver: `dns.promises.resolve`'s signature. */
export type DnsResolver = (name: string, rrtype: string) => Promise<string[] | string[][]>;

export interface DnsResolverOptions {
  /**
   * The DNS server(s), `"127.0.0.1:5353"`, `"[::1]:53"` or a plain address (port 53); several
   * separated by commas. Default: the system's resolvers.
   */
  readonly server?: string | readonly string[] | undefined;
  /** Milliseconds a lookup may take in all, retries included (default 5000). */
  readonly timeout?: number | undefined;
  /** Attempts per server (default 2); each gets `timeout / tries`. */
  readonly tries?: number | undefined;
  /** Milliseconds an answer (or a "no such name") is reused (default 60000; 0: no cache). */
  readonly cacheTtl?: number | undefined;
  /** Answers kept at most; the oldest go first (default 10000). */
  readonly cacheSize?: number | undefined;
}

/** Answers that say "nothing there": cached like records, and never a temporary failure. */
const NEGATIVE = new Set(["ENOTFOUND", "ENODATA"]);

interface Cached {
  readonly expires: number;
  readonly value?: unknown;
  readonly error?: NodeJS.ErrnoException;
}

/** A resolver for mailauth and the reverse DNS check (see `DnsResolverOptions`). */
export function dnsResolver(options: DnsResolverOptions = {}): DnsResolver {
  const timeout = options.timeout ?? 5000;
  const tries = Math.max(1, options.tries ?? 2);
  const ttl = options.cacheTtl ?? 60_000;
  const size = options.cacheSize ?? 10_000;
  const resolver = new Resolver({ timeout: Math.max(1, Math.floor(timeout / tries)), tries });
  if (options.server !== undefined) resolver.setServers(serverList(options.server));
  const cache = new Map<string, Cached>();

  const remember = (key: string, entry: Omit<Cached, "expires">) => {
    if (ttl <= 0) return;
    if (cache.size >= size) cache.delete(cache.keys().next().value as string);
    cache.set(key, { ...entry, expires: Date.now() + ttl });
  };

  return async (name, rrtype) => {
    const key = `${rrtype.toUpperCase()} ${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit && hit.expires > Date.now()) {
      if (hit.error) throw hit.error;
      return hit.value as string[] | string[][];
    }
    cache.delete(key);
    try {
      const value = (await withDeadline(resolver.resolve(name, rrtype), timeout, name)) as
        | string[]
        | string[][];
      remember(key, { value });
      return value;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== undefined && NEGATIVE.has(code)) {
        remember(key, { error: error as NodeJS.ErrnoException });
      }
      throw error;
    }
  };
}

/** `"127.0.0.1:5353, 10.0.0.1"` → the list `setServers()` takes. */
export function serverList(server: string | readonly string[]): string[] {
  const list = (typeof server === "string" ? server.split(",") : [...server])
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (list.length === 0) throw new TypeError("dnsServer: expected HOST[:PORT]");
  return list;
}

/** c-ares retries on its own clock; this bounds the whole lookup whatever the server does. */
function withDeadline<T>(lookup: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`DNS lookup of ${name} timed out after ${ms} ms`);
      (error as NodeJS.ErrnoException).code = "ETIMEOUT";
      reject(error);
    }, ms + 50);
    timer.unref?.();
  });
  lookup.catch(() => undefined); // a late failure after the deadline is nobody's to report
  return Promise.race([lookup, deadline]).finally(() => clearTimeout(timer));
}

/** Whether a lookup failure is a temporary one (the DNS did not answer), not "no such record". */
export function isTemporaryDnsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && !NEGATIVE.has(code);
}
