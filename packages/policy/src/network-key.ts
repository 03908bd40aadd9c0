/**
 * An IP address as one canonical key, and the network around it (/24 for IPv4, /64 for IPv6 by
 * default): the same client always gets the same key however its address was written
 * (`::ffff:192.0.2.1` is `192.0.2.1`; `2001:DB8::1` is `2001:db8:0:0:0:0:0:1`). Pure TS, no
 * `node:net`, so the policy runs on every runtime the server does.
 */

/** The canonical form of an IPv4 or IPv6 address; `null` for anything else (a Unix socket path). */
export function canonicalAddress(text: string): string | null {
  // Every hook asks again for the same few clients: remember the recent answers (bounded).
  const known = RECENT.get(text);
  if (known !== undefined) return known;
  if (RECENT.size >= RECENT_MAX) RECENT.clear();
  const canonical = parse(text);
  RECENT.set(text, canonical);
  return canonical;
}

const RECENT = new Map<string, string | null>();
const RECENT_MAX = 4096;

function parse(text: string): string | null {
  const v4 = parseIPv4(text);
  if (v4) return v4.join(".");
  const v6 = parseIPv6(text);
  if (!v6) return null;
  if (isMappedIPv4(v6)) return mappedToIPv4(v6).join(".");
  return v6.map((h) => h.toString(16)).join(":");
}

/**
 * The network of `prefix` bits around an address, as `address/prefix` (`192.0.2.0/24`,
 * `2001:db8:0:0:0:0:0:0/64`); `null` for something that is not an IP address. IPv4-mapped IPv6
 * addresses are IPv4 addresses here.
 */
export function networkOf(text: string, ipv4Prefix = 24, ipv6Prefix = 64): string | null {
  checkPrefix(ipv4Prefix, 32);
  checkPrefix(ipv6Prefix, 128);
  const v4 = parseIPv4(text) ?? mapped(parseIPv6(text));
  if (v4) return `${maskBytes(v4, 8, ipv4Prefix).join(".")}/${ipv4Prefix}`;
  const v6 = parseIPv6(text);
  if (!v6) return null;
  return `${maskBytes(v6, 16, ipv6Prefix)
    .map((h) => h.toString(16))
    .join(":")}/${ipv6Prefix}`;
}

function checkPrefix(prefix: number, max: number): void {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max)
    throw new RangeError(`a prefix length is an integer from 0 to ${max}, not ${prefix}`);
}

function mapped(v6: number[] | null): number[] | null {
  return v6 && isMappedIPv4(v6) ? mappedToIPv4(v6) : null;
}

function isMappedIPv4(h: readonly number[]): boolean {
  return h[0] === 0 && h[1] === 0 && h[2] === 0 && h[3] === 0 && h[4] === 0 && h[5] === 0xffff;
}

function mappedToIPv4(h: readonly number[]): number[] {
  const hi = h[6] ?? 0;
  const lo = h[7] ?? 0;
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
}

/** Keeps the first `prefix` bits of `parts` (each `bits` wide), zeroes the rest. */
function maskBytes(parts: readonly number[], bits: number, prefix: number): number[] {
  return parts.map((part, i) => {
    const keep = Math.min(bits, Math.max(0, prefix - i * bits));
    if (keep === bits) return part;
    if (keep === 0) return 0;
    const mask = ((1 << keep) - 1) << (bits - keep);
    return part & mask;
  });
}

const OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function parseIPv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!OCTET.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes.push(value);
  }
  return bytes;
}

function parseIPv6(input: string): number[] | null {
  // A zone (`fe80::1%eth0`) names an interface, not another client.
  const text = input.includes("%") ? input.slice(0, input.indexOf("%")) : input;
  if (!text.includes(":")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const side = (part: string | undefined): number[] | null => {
    if (part === undefined || part === "") return [];
    const groups = part.split(":");
    const out: number[] = [];
    for (const [i, group] of groups.entries()) {
      if (i === groups.length - 1 && group.includes(".")) {
        const v4 = parseIPv4(group);
        if (!v4) return null;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else if (HEXTET.test(group)) out.push(Number.parseInt(group, 16));
      else return null;
    }
    return out;
  };
  const head = side(halves[0]);
  const tail = halves.length === 2 ? side(halves[1]) : [];
  if (!head || !tail) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return null; // "::" stands for at least one group
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
