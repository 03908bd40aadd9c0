/**
 * Forward-confirmed reverse DNS of the client: the PTR names of its address, each looked up
 * forward, the first that resolves back to the address is confirmed. The result goes on the
 * session (`session.reverseName`, `session.fcrdns`) for `Received:` and for policies.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Handler, ServerContext, Session } from "@smtpkit/core/server";
import { type DnsResolver, dnsResolver } from "./resolver.js";

export interface ReverseDnsOptions {
  /** The DNS server, `"127.0.0.1:5353"` (default: the system's). */
  readonly dnsServer?: string | undefined;
  /** A resolver of your own (`dnsResolver()` or mailauth's shape); replaces `dnsServer`. */
  readonly resolver?: DnsResolver | undefined;
  /** Milliseconds the whole check may take (default 3000); then the client has no name. */
  readonly timeout?: number | undefined;
  /** PTR names checked at most (default 10, as SPF's `ptr` limit). */
  readonly maxNames?: number | undefined;
}

export interface ReverseName {
  /** The confirmed name, else the first PTR name (unconfirmed), else null. */
  readonly reverseName: string | null;
  readonly fcrdns: boolean;
}

/** The PTR query name of an address: `4.3.2.1.in-addr.arpa`, or nibbles under `ip6.arpa`. */
export function reverseQueryName(address: string): string | null {
  if (isIPv4(address)) return `${address.split(".").reverse().join(".")}.in-addr.arpa`;
  if (!isIPv6(address)) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return reverseQueryName(mapped[1] as string);
  // An IPv4 tail (`::1.2.3.4`, `64:ff9b::192.0.2.5`) is two groups of hex.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    const hex = `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
    return reverseQueryName(address.slice(0, v4.index) + hex);
  }
  const [head = "", tail = ""] = address.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = address.includes("::") ? groups(tail) : [];
  const all = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  const nibbles = all.map((group) => group.padStart(4, "0")).join("");
  return `${[...nibbles].reverse().join(".")}.ip6.arpa`;
}

/** Forward-confirmed reverse DNS of `address`; a DNS failure or the deadline gives no name. */
export async function lookUpReverseName(
  address: string,
  resolver: DnsResolver,
  options: { readonly timeout?: number | undefined; readonly maxNames?: number | undefined } = {},
): Promise<ReverseName> {
  const none: ReverseName = { reverseName: null, fcrdns: false };
  const query = reverseQueryName(address);
  if (query === null) return none;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<ReverseName>((resolve) => {
    timer = setTimeout(() => resolve(none), options.timeout ?? 3000);
  });
  const check = (async (): Promise<ReverseName> => {
    const names = ((await resolver(query, "PTR").catch(() => [])) as string[])
      .map((name) => name.replace(/\.$/, "").toLowerCase())
      .slice(0, options.maxNames ?? 10);
    const family = isIPv4(address) || /^::ffff:\d/i.test(address) ? "A" : "AAAA";
    const plain = address.replace(/^::ffff:(?=\d)/i, "");
    const lookups = await Promise.all(
      names.map((name) => resolver(name, family).catch(() => []) as Promise<string[]>),
    );
    const confirmed = names.find((_name, i) =>
      (lookups[i] ?? []).some((found) => sameAddress(found, plain)),
    );
    if (confirmed !== undefined) return { reverseName: confirmed, fcrdns: true };
    return { reverseName: names[0] ?? null, fcrdns: false };
  })();
  try {
    return await Promise.race([check, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  if (!isIPv6(a) || !isIPv6(b)) return false;
  return reverseQueryName(a) === reverseQueryName(b);
}

/**
 * The fragment: looks up the client before the greeting and sets `session.reverseName` and
 * `session.fcrdns`; never refuses (compose a policy after it for that).
 */
export function reverseDns(options: ReverseDnsOptions = {}): Handler {
  const resolver =
    options.resolver ??
    dnsResolver({ server: options.dnsServer, timeout: options.timeout ?? 3000 });
  return {
    async handleCONNECT(_server: ServerContext, session: Session) {
      const address = session.peer?.family === "unix" ? null : session.peer?.address;
      if (!address) return undefined;
      const found = await lookUpReverseName(address, resolver, options);
      session.reverseName = found.reverseName;
      session.fcrdns = found.fcrdns;
      return undefined;
    },
  };
}
