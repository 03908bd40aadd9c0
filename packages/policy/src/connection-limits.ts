import type { Handler, ServerContext, Session } from "@smtpkit/core/server";
import { canonicalAddress, networkOf } from "./network-key.js";
import {
  guarded,
  type PolicyContext,
  type Rate,
  refuse,
  retrySeconds,
  STORE_FAILED,
} from "./report.js";
import type { Lease, Slot } from "./store.js";

export interface ConnectionLimitOptions {
  /** Connections open at once from one address. */
  readonly perIp?: number;
  /** Connections open at once from one network (`ipv4Prefix` / `ipv6Prefix`). */
  readonly perNetwork?: number;
  /** The network of an IPv4 client for `perNetwork`, in bits (default 24). */
  readonly ipv4Prefix?: number;
  /** The network of an IPv6 client for `perNetwork`, in bits (default 64). */
  readonly ipv6Prefix?: number;
  /** New connections from one address per window. */
  readonly rate?: Rate;
  /**
   * Milliseconds a connection's slot lives unless renewed (default 60 000). Slots are renewed
   * while the connection is open, so only an instance that stopped without closing its
   * connections (a crash) leaves slots behind, and only this long.
   */
  readonly leaseMs?: number;
}

/** A random name for this instance: holders stay distinct across servers sharing a store. */
function instanceName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Concurrent connections per address and per network, and new connections per address per
 * window: refused with `421 4.7.0` before the greeting (`handleCONNECT`); slots are given back
 * in `handleCLOSE`.
 */
export function connectionLimits(context: PolicyContext, options: ConnectionLimitOptions): Handler {
  const { perIp, perNetwork, rate } = options;
  const ipv4Prefix = options.ipv4Prefix ?? 24;
  const ipv6Prefix = options.ipv6Prefix ?? 64;
  const leaseMs = options.leaseMs ?? 60_000;
  if (!(leaseMs >= 1000)) throw new RangeError("leaseMs must be at least 1000");
  networkOf("0.0.0.0", ipv4Prefix, ipv6Prefix); // checks the prefixes now, not on a connection
  const instance = instanceName();
  /** Session id → the slots its connection holds. */
  const held = new Map<string, { holder: string; keys: string[] }>();
  let renewal: ReturnType<typeof setInterval> | null = null;
  const store = context.store;

  const renewAll = () => {
    const leases: Lease[] = [];
    for (const { holder, keys } of held.values())
      for (const key of keys) leases.push({ key, holder });
    // A failed renewal is tried again next time; the lease outlasts a few of them.
    Promise.resolve()
      .then(() => store.renew(leases, leaseMs))
      .catch(() => undefined);
  };
  const track = (id: string, entry: { holder: string; keys: string[] }) => {
    held.set(id, entry);
    if (renewal === null) {
      renewal = setInterval(renewAll, Math.floor(leaseMs / 3));
      (renewal as { unref?: () => void }).unref?.();
    }
  };
  const untrack = (id: string) => {
    const entry = held.get(id);
    if (!entry) return null;
    held.delete(id);
    if (held.size === 0 && renewal !== null) {
      clearInterval(renewal);
      renewal = null;
    }
    return entry;
  };

  const tempFailure = (server: ServerContext) =>
    context.onStoreError === "refuse"
      ? `421 4.3.0 ${server.hostname} Service temporarily unavailable, try again later`
      : undefined;

  /** Takes the connection's slots (per address, per network), or refuses it. */
  const takeSlots = (server: ServerContext, session: Session, address: string) => {
    const slots: Slot[] = [];
    if (perIp !== undefined) slots.push({ key: `conn:${address}`, limit: perIp });
    const network = perNetwork === undefined ? null : networkOf(address, ipv4Prefix, ipv6Prefix);
    if (perNetwork !== undefined && network !== null)
      slots.push({ key: `conn-net:${network}`, limit: perNetwork });
    const holder = `${instance}:${session.id}`;
    return guarded(
      server,
      () => store.acquire(holder, slots, leaseMs),
      (taken): string | undefined => {
        if (taken === STORE_FAILED) return tempFailure(server);
        if (taken.acquired) {
          track(session.id, { holder, keys: slots.map((slot) => slot.key) });
          return undefined;
        }
        const byNetwork = taken.key.startsWith("conn-net:");
        const subject = byNetwork ? (network as string) : address;
        return refuse(context, server, {
          limit: byNetwork ? "networkConnections" : "connections",
          subject,
          count: taken.count,
          max: (byNetwork ? perNetwork : perIp) as number,
          windowMs: null,
          retryAfter: null,
          reply: `421 4.7.0 ${server.hostname} Too many connections from ${subject}, try again later`,
        });
      },
    );
  };
  const concurrency = perIp !== undefined || perNetwork !== undefined;

  return {
    // Not async: with the memory store the whole check is synchronous (no promise per connection).
    handleCONNECT(server: ServerContext, session: Session) {
      const address = session.peer ? canonicalAddress(session.peer.address) : null;
      if (address === null) return undefined; // a Unix socket: a local client
      if (!rate) return concurrency ? takeSlots(server, session, address) : undefined;
      return guarded(
        server,
        () => store.increment(`conn-rate:${address}`, rate.windowMs),
        (hit) => {
          if (hit === STORE_FAILED) return tempFailure(server);
          if (hit.count > rate.limit) {
            const retryAfter = retrySeconds(hit.resetMs);
            return refuse(context, server, {
              limit: "connectionRate",
              subject: address,
              count: hit.count,
              max: rate.limit,
              windowMs: rate.windowMs,
              retryAfter,
              reply: `421 4.7.0 ${server.hostname} Too many connections from ${address}, retry in ${retryAfter} s`,
            });
          }
          return concurrency ? takeSlots(server, session, address) : undefined;
        },
      );
    },
    handleCLOSE(server: ServerContext, session: Session) {
      const entry = untrack(session.id);
      if (!entry) return undefined;
      return guarded(
        server,
        () => store.release(entry.holder, entry.keys),
        () => undefined,
      );
    },
  };
}
