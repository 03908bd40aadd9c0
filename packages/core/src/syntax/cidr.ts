// IP address parsing/formatting and CIDR matching for trusted PROXY sources. Pure TS (no node:net)
// so the core stays runtime-neutral. Textual parsing follows Python's `ipaddress` module (strict
// dotted quads, at most one "::", optional dotted-quad tail) because the PROXY v1 parser must
// accept and reject exactly what aiosmtpd does.

export interface CidrMatcher {
  matches(address: string): boolean;
}

interface CidrBlock {
  network: bigint;
  mask: bigint;
}

const IPV4_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const IPV6_HEXTET = /^[0-9a-fA-F]{1,4}$/;
const PREFIX = /^(?:0|[1-9][0-9]{0,2})$/;
const ALL_ONES_128 = (1n << 128n) - 1n;
// IPv4 lives at ::ffff:0:0/96 in the unified 128-bit space, so "127.0.0.1" and
// "::ffff:127.0.0.1" (how Node reports IPv4 peers on dual-stack sockets) compare equal.
const IPV4_MAPPED_BASE = 0xffffn << 32n;

/** Parses a dotted-quad IPv4 address into 4 bytes; rejects leading zeros like Python does. */
export function parseIPv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!IPV4_OCTET.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes.push(value);
  }
  return bytes;
}

/** Parses a textual IPv6 address (no zone id) into 8 hextets. */
export function parseIPv6(text: string): number[] | null {
  const parts = text.split(":");
  if (parts.length < 3) return null;
  const tail = parts[parts.length - 1] as string;
  if (tail.includes(".")) {
    const v4 = parseIPv4(tail);
    if (v4 === null) return null;
    const [a = 0, b = 0, c = 0, d = 0] = v4;
    parts.pop();
    parts.push(((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  if (parts.length > 9) return null;

  // An empty part strictly inside the list marks the single allowed "::".
  let skip = -1;
  for (let i = 1; i < parts.length - 1; i++) {
    if (parts[i] !== "") continue;
    if (skip !== -1) return null;
    skip = i;
  }

  let hi: number;
  let lo: number;
  if (skip !== -1) {
    hi = skip;
    lo = parts.length - skip - 1;
    if (parts[0] === "" && --hi !== 0) return null;
    if (parts[parts.length - 1] === "" && --lo !== 0) return null;
    if (hi + lo > 7) return null; // "::" must stand for at least one hextet
  } else {
    if (parts.length !== 8) return null;
    hi = 8;
    lo = 0;
  }

  const hextets = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < hi; i++) {
    const part = parts[i] as string;
    if (!IPV6_HEXTET.test(part)) return null;
    hextets[i] = Number.parseInt(part, 16);
  }
  for (let i = 0; i < lo; i++) {
    const part = parts[parts.length - lo + i] as string;
    if (!IPV6_HEXTET.test(part)) return null;
    hextets[8 - lo + i] = Number.parseInt(part, 16);
  }
  return hextets;
}

/** RFC 5952 text: lower case, longest zero run (>= 2) as "::", IPv4-mapped as ::ffff:a.b.c.d. */
export function formatIPv6(hextets: readonly number[]): string {
  const h = (i: number): number => hextets[i] ?? 0;
  if (h(0) === 0 && h(1) === 0 && h(2) === 0 && h(3) === 0 && h(4) === 0 && h(5) === 0xffff) {
    return `::ffff:${h(6) >> 8}.${h(6) & 0xff}.${h(7) >> 8}.${h(7) & 0xff}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (h(i) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h(j) === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string[] => {
    const out: string[] = [];
    for (let i = from; i < to; i++) out.push(h(i).toString(16));
    return out;
  };
  if (bestStart === -1) return hex(0, 8).join(":");
  return `${hex(0, bestStart).join(":")}::${hex(bestStart + bestLength, 8).join(":")}`;
}

function hextetsToBigInt(hextets: readonly number[]): bigint {
  let value = 0n;
  for (const hextet of hextets) value = (value << 16n) | BigInt(hextet);
  return value;
}

function ipv4ToBigInt(bytes: readonly number[]): bigint {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return IPV4_MAPPED_BASE | value;
}

function prefixMask(bits: number): bigint {
  return bits === 0 ? 0n : ALL_ONES_128 ^ ((1n << BigInt(128 - bits)) - 1n);
}

/** Maps an IPv4 or IPv6 literal into the unified 128-bit space; null if it is neither. */
function addressToBigInt(text: string): { value: bigint; isV4: boolean } | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { value: ipv4ToBigInt(v4), isV4: true };
  const v6 = parseIPv6(text);
  if (v6 !== null) return { value: hextetsToBigInt(v6), isV4: false };
  return null;
}

function parseBlock(entry: unknown, index: number): CidrBlock {
  if (typeof entry !== "string") {
    throw new TypeError(`Trusted proxy entry #${index} must be a string, got ${typeof entry}`);
  }
  const text = entry.trim();
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const parsed = addressToBigInt(addressText);
  if (parsed === null) {
    throw new TypeError(
      `Invalid trusted proxy entry "${entry}": "${addressText}" is not an IPv4 or IPv6 address`,
    );
  }
  const maxBits = parsed.isV4 ? 32 : 128;
  let bits = maxBits;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    const prefix = PREFIX.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (!(prefix <= maxBits)) {
      throw new TypeError(
        `Invalid trusted proxy entry "${entry}": prefix length must be an integer from 0 to ${maxBits}`,
      );
    }
    bits = prefix;
  }
  // Host bits are masked off rather than rejected: "192.168.1.10/24" is a common way to write a
  // subnet and its intent is unambiguous.
  const mask = prefixMask(parsed.isV4 ? 96 + bits : bits);
  return { network: parsed.value & mask, mask };
}

/**
 * Compiles IPv4/IPv6 addresses and CIDR blocks (e.g. "10.0.0.0/8", "::1", "2001:db8::/32") into a
 * matcher. IPv4 blocks also match IPv4-mapped IPv6 peers ("::ffff:10.1.2.3"). Throws TypeError on
 * the first bad entry so misconfiguration fails at startup rather than silently trusting no one.
 */
export function parseCidrList(list: readonly string[]): CidrMatcher {
  if (!Array.isArray(list)) {
    throw new TypeError("Trusted proxy list must be an array of address or CIDR strings");
  }
  const blocks = list.map((entry: unknown, index) => parseBlock(entry, index));
  return {
    matches(address: string): boolean {
      if (typeof address !== "string") return false;
      // Link-local peers may carry a zone id ("fe80::1%eth0"); it does not affect the address.
      const zone = address.indexOf("%");
      const parsed = addressToBigInt(zone === -1 ? address : address.slice(0, zone));
      if (parsed === null) return false;
      return blocks.some((block) => (parsed.value & block.mask) === block.network);
    },
  };
}
