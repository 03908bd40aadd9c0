/**
 * The attribute grammar XCLIENT and XFORWARD share (Postfix's XCLIENT_README and XFORWARD_README):
 * `1*( SP attribute-name "=" attribute-value )`, names case-insensitive, values xtext-encoded
 * (RFC 1891) and at most 255 characters as sent, and the value checks both commands apply.
 * Pure: no replies here, only what is wrong (the commands turn it into a 501).
 */
import { formatIPv6, parseIPv4, parseIPv6 } from "./cidr.js";

/** One `NAME=value`: the name upper-cased, the value xtext-decoded with controls masked. */
export interface RelayAttribute {
  readonly name: string;
  readonly value: string;
}

/** Why an attribute list or value is refused. */
export type AttributeError =
  | { readonly kind: "expected" } // a token without "=" or with an empty value
  | { readonly kind: "tooLong" } // a value over 255 characters as sent
  | { readonly kind: "badName"; readonly name: string }
  | { readonly kind: "badValue"; readonly name: string; readonly value: string };

/** An IP address a relay names: normalised text (IPv6 without the `IPV6:` prefix). */
export interface RelayAddress {
  readonly address: string;
  readonly family: "IPv4" | "IPv6";
}

export const MAX_ATTRIBUTE_VALUE = 255;

/** Splits the argument into attributes; the first bad token is the error. */
export function parseAttributeList(text: string): RelayAttribute[] | AttributeError {
  const attributes: RelayAttribute[] = [];
  for (const token of text.split(/[ \t]+/)) {
    if (token === "") continue;
    const eq = token.indexOf("=");
    if (eq <= 0 || eq === token.length - 1) return { kind: "expected" };
    const raw = token.slice(eq + 1);
    if (raw.length > MAX_ATTRIBUTE_VALUE) return { kind: "tooLong" };
    attributes.push({ name: token.slice(0, eq).toUpperCase(), value: decodeValue(raw) });
  }
  return attributes.length === 0 ? { kind: "expected" } : attributes;
}

export function isAttributeError(value: unknown): value is AttributeError {
  return typeof value === "object" && value !== null && "kind" in value;
}

/**
 * xtext as Postfix decodes it: `+XX` is a byte, anything else stands for itself. A value that is
 * not valid xtext is taken as sent (Postfix before 2.3 sent values unencoded). Bytes outside
 * printable ASCII become `?`, so nothing unprintable reaches a log line or a header.
 */
export function decodeValue(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x2b) {
      out += printable(c);
      continue;
    }
    const high = hexValue(raw.charCodeAt(i + 1));
    const low = hexValue(raw.charCodeAt(i + 2));
    if (high < 0 || low < 0) return maskAll(raw);
    out += printable((high << 4) | low);
    i += 2;
  }
  return out;
}

function maskAll(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) out += printable(raw.charCodeAt(i));
  return out;
}

function printable(c: number): string {
  return c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?";
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** `[UNAVAILABLE]`, in any case. */
export function isUnavailable(value: string): boolean {
  return value.toUpperCase() === "[UNAVAILABLE]";
}

/** `[TEMPUNAVAIL]`, in any case (a NAME whose lookup failed for now). */
export function isTemporarilyUnavailable(value: string): boolean {
  return value.toUpperCase() === "[TEMPUNAVAIL]";
}

/** Characters that would change the meaning of a header or log field become `?` (Postfix's neuter). */
export function neuter(value: string): string {
  return value.replace(/[ <>()\\";@]/g, "?");
}

/**
 * A host name as Postfix's `valid_hostname()` takes it: labels of letters, digits, `-` and `_`,
 * 1 to 63 characters, not starting or ending with `-`; at most 255 in all; not all digits.
 */
export function isHostname(value: string): boolean {
  if (value.length === 0 || value.length > 255) return false;
  const labels = value.split(".");
  for (const label of labels) {
    if (!/^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label)) return false;
  }
  return !/^[0-9.]+$/.test(value);
}

/** An IPv4 address, or an IPv6 one after `IPV6:` (any case); IPv4-mapped IPv6 becomes IPv4. */
export function parseRelayAddress(value: string): RelayAddress | null {
  const v4 = parseIPv4(value);
  if (v4 !== null) return { address: v4.join("."), family: "IPv4" };
  if (value.slice(0, 5).toUpperCase() !== "IPV6:") return null;
  const v6 = parseIPv6(value.slice(5));
  if (v6 === null) return null;
  const text = formatIPv6(v6);
  if (text.startsWith("::ffff:") && text.includes(".")) {
    return { address: text.slice(7), family: "IPv4" };
  }
  return { address: text, family: "IPv6" };
}

/** A TCP port: 1 to 5 digits, at most 65535. */
export function parsePort(value: string): number | null {
  if (!/^[0-9]{1,5}$/.test(value)) return null;
  const port = Number(value);
  return port <= 65535 ? port : null;
}
