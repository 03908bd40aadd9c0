// HAProxy PROXY protocol v1/v2 header parser. Pure and incremental: call it with everything
// buffered so far; it says "incomplete" or returns the parsed header plus how many bytes it used.
// Accept/reject rules and error strings mirror aiosmtpd's proxy_protocol.py so operators see the
// same diagnostics; the buffering bound (107 bytes for v1, 16 + 65535 for v2) is enforced here so a
// hostile peer cannot make the engine hold more than that while waiting for a header.

import { formatIPv6, parseIPv4, parseIPv6 } from "./cidr.js";

export interface ProxyTlv {
  type: number;
  /** aiosmtpd's PP2_TYPENAME, or "xNN" (upper-case hex) for unknown types. */
  name: string;
  value: Uint8Array;
  /** PP2_TYPE_SSL only: the `client` bit field. */
  sslClient?: number;
  /** PP2_TYPE_SSL only: the `verify` result (0 means the client certificate verified). */
  sslVerify?: number;
}

export interface ProxyData {
  version: 1 | 2 | null;
  command: "LOCAL" | "PROXY" | null;
  family: "UNSPEC" | "INET" | "INET6" | "UNIX" | null;
  protocol: "UNSPEC" | "STREAM" | "DGRAM" | null;
  srcAddress: string | null;
  dstAddress: string | null;
  srcPort: number | null;
  dstPort: number | null;
  rest: Uint8Array;
  raw: Uint8Array;
  tlvs: ProxyTlv[] | null;
  error: string | null;
  valid: boolean;
}

export type ProxyParseResult =
  | { status: "incomplete" }
  | { status: "complete"; data: ProxyData; consumed: number };

export const PROXY_V1_MAX_LENGTH = 107;
export const PROXY_V2_MAX_LENGTH = 16 + 0xffff;

const encoder = new TextEncoder();
const V1_SIGNATURE = encoder.encode("PROXY");
const V2_SIGNATURE = encoder.encode("\r\n\r\n\0\r\nQUIT\n");
const V2_HEADER_LENGTH = 16;
const CR = 0x0d;
const LF = 0x0a;

const V2_COMMANDS = ["LOCAL", "PROXY"] as const;
const FAMILIES = ["UNSPEC", "INET", "INET6", "UNIX"] as const;
const PROTOCOLS = ["UNSPEC", "STREAM", "DGRAM"] as const;
// Bytes of the fixed address block for families aiosmtpd decodes (only with STREAM/DGRAM).
const V2_ADDRESS_LENGTH = { INET: 12, INET6: 36, UNIX: 216 } as const;
const UNIX_PATH_LENGTH = 108;

const TLV_TYPE_SSL = 0x20;
const TLV_NAMES: Readonly<Record<number, string>> = {
  1: "ALPN",
  2: "AUTHORITY",
  3: "CRC32C",
  4: "NOOP",
  5: "UNIQUE_ID",
  32: "SSL",
  33: "SSL_VERSION",
  34: "SSL_CN",
  35: "SSL_CIPHER",
  36: "SSL_SIG_ALG",
  37: "SSL_KEY_ALG",
  48: "NETNS",
};

const V1_ADDRESS_CHARS = /^[0-9a-fA-F.:]+$/;
const V1_PORT = /^(?:0|[1-9][0-9]*)$/;

const INCOMPLETE: ProxyParseResult = Object.freeze({ status: "incomplete" });
const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8");

function emptyData(version: 1 | 2 | null, raw: Uint8Array): ProxyData {
  return {
    version,
    command: version === 1 ? "PROXY" : null,
    family: null,
    protocol: null,
    srcAddress: null,
    dstAddress: null,
    srcPort: null,
    dstPort: null,
    rest: EMPTY,
    raw,
    tlvs: null,
    error: null,
    valid: false,
  };
}

function fail(data: ProxyData, error: string): ProxyParseResult {
  data.error = error;
  data.valid = false;
  return { status: "complete", data, consumed: data.raw.length };
}

function succeed(data: ProxyData): ProxyParseResult {
  // Same definition as aiosmtpd's ProxyData.valid.
  data.valid = data.error === null && data.version !== null && data.protocol !== null;
  return { status: "complete", data, consumed: data.raw.length };
}

/** Index of the first byte of `buffer` (within `from`..`to`) that differs from `signature`, or -1. */
function mismatchAt(buffer: Uint8Array, signature: Uint8Array, from: number, to: number): number {
  const end = Math.min(buffer.length, to);
  for (let i = from; i < end; i++) {
    if (buffer[i] !== signature[i]) return i;
  }
  return -1;
}

/**
 * Parses a PROXY v1 or v2 header at the start of `buffer`. Returns "incomplete" while more bytes
 * are needed; otherwise the header (valid or not) and `consumed`, the header length — any bytes
 * after it belong to the SMTP stream. Never needs more than PROXY_V1_MAX_LENGTH bytes for v1 or
 * PROXY_V2_MAX_LENGTH for v2, and a result never changes when more bytes are appended.
 */
export function parseProxyHeader(buffer: Uint8Array): ProxyParseResult {
  const first = buffer[0];
  if (first === undefined) return INCOMPLETE;
  // Signature detection looks at 5 bytes like aiosmtpd, but fails on the first impossible byte.
  const signature = first === V1_SIGNATURE[0] ? V1_SIGNATURE : V2_SIGNATURE;
  const mismatch = mismatchAt(buffer, signature, 0, 5);
  if (mismatch !== -1) {
    return fail(emptyData(null, buffer.slice(0, mismatch + 1)), "PROXY unrecognized signature");
  }
  if (buffer.length < 5) return INCOMPLETE;
  return signature === V1_SIGNATURE ? parseV1(buffer) : parseV2(buffer);
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

function parseV1Address(field: string | undefined): { text: string; v4: boolean } | null {
  if (field === undefined || !V1_ADDRESS_CHARS.test(field)) return null;
  if (parseIPv4(field) !== null) return { text: field, v4: true };
  const hextets = parseIPv6(field);
  return hextets === null ? null : { text: formatIPv6(hextets), v4: false };
}

function parseV1(buffer: Uint8Array): ProxyParseResult {
  // Only the first 107 bytes can hold a legal header, so never scan (or wait) beyond them.
  const window = buffer.subarray(0, PROXY_V1_MAX_LENGTH);
  const lf = window.indexOf(LF, V1_SIGNATURE.length);
  if (lf === -1) {
    if (window.length < PROXY_V1_MAX_LENGTH) return INCOMPLETE;
    return fail(emptyData(1, window.slice()), "PROXYv1 header too long");
  }
  const raw = buffer.slice(0, lf + 1);
  const data = emptyData(1, raw);
  if (raw[lf - 1] !== CR) return fail(data, "PROXYv1 malformed");

  // Split on single spaces so a doubled space yields an empty (invalid) field, as aiosmtpd does.
  const parts = latin1(raw.subarray(V1_SIGNATURE.length, lf - 1)).split(" ");
  if (parts[0] !== "") return fail(data, "PROXYv1 wrong signature");
  const proto = parts[1];
  if (proto === undefined) return fail(data, "PROXYv1 malformed");

  if (proto === "UNKNOWN") {
    data.family = "UNSPEC";
    data.protocol = "UNSPEC";
    data.rest = raw.subarray(V1_SIGNATURE.length + " UNKNOWN".length, lf - 1);
    return succeed(data);
  }

  if (proto.endsWith("4")) data.family = "INET";
  else if (proto.endsWith("6")) data.family = "INET6";
  else return fail(data, "PROXYv1 unrecognized family");
  if (proto !== "TCP4" && proto !== "TCP6") return fail(data, "PROXYv1 unrecognized protocol");
  data.protocol = "STREAM";

  const src = parseV1Address(parts[2]);
  const dst = src === null ? null : parseV1Address(parts[3]);
  if (src === null || dst === null) return fail(data, "PROXYv1 address malformed");
  const wantV4 = data.family === "INET";
  if (src.v4 !== wantV4 || dst.v4 !== wantV4) {
    return fail(data, wantV4 ? "PROXYv1 address not IPv4" : "PROXYv1 address not IPv6");
  }
  data.srcAddress = src.text;
  data.dstAddress = dst.text;

  const srcPort = parts[4];
  const dstPort = parts[5];
  if (srcPort === undefined || !V1_PORT.test(srcPort)) return fail(data, "PROXYv1 port malformed");
  data.srcPort = Number(srcPort);
  if (dstPort === undefined || !V1_PORT.test(dstPort)) return fail(data, "PROXYv1 port malformed");
  data.dstPort = Number(dstPort);
  if (data.srcPort > 0xffff) return fail(data, "PROXYv1 src port out of bounds");
  if (data.dstPort > 0xffff) return fail(data, "PROXYv1 dst port out of bounds");

  if (parts.length > 6) return fail(data, "PROXYv1 unrecognized extraneous data");
  return succeed(data);
}

function parseV2(buffer: Uint8Array): ProxyParseResult {
  const mismatch = mismatchAt(buffer, V2_SIGNATURE, 5, V2_SIGNATURE.length);
  if (mismatch !== -1) {
    return fail(emptyData(2, buffer.slice(0, mismatch + 1)), "PROXYv2 wrong signature");
  }
  if (buffer.length < V2_HEADER_LENGTH) return INCOMPLETE;

  const verCmd = buffer[12] as number;
  const famProto = buffer[13] as number;
  const tailLength = ((buffer[14] as number) << 8) | (buffer[15] as number);
  const header = emptyData(2, buffer.slice(0, V2_HEADER_LENGTH));
  if (verCmd >> 4 !== 2) return fail(header, "PROXYv2 illegal version");
  const command = V2_COMMANDS[verCmd & 0x0f];
  if (command === undefined) return fail(header, "PROXYv2 unsupported command");
  header.command = command;
  const family = FAMILIES[famProto >> 4];
  if (family === undefined) return fail(header, "PROXYv2 unsupported family");
  header.family = family;
  const protocol = PROTOCOLS[famProto & 0x0f];
  if (protocol === undefined) return fail(header, "PROXYv2 unsupported protocol");
  header.protocol = protocol;

  const total = V2_HEADER_LENGTH + tailLength;
  if (buffer.length < total) return INCOMPLETE;
  const raw = buffer.slice(0, total);
  const data: ProxyData = { ...header, raw };
  const tail = raw.subarray(V2_HEADER_LENGTH);

  if (family === "UNSPEC" || protocol === "UNSPEC") {
    // aiosmtpd leaves the whole tail undecoded for combinations without a defined address block.
    data.rest = tail;
    data.tlvs = parseTlvs(tail);
    return succeed(data);
  }

  const addressLength = V2_ADDRESS_LENGTH[family];
  if (tail.length < addressLength) return fail(data, "PROXYv2 truncated address");
  const view = new DataView(tail.buffer, tail.byteOffset, addressLength);
  if (family === "INET") {
    data.srcAddress = tail.subarray(0, 4).join(".");
    data.dstAddress = tail.subarray(4, 8).join(".");
    data.srcPort = view.getUint16(8);
    data.dstPort = view.getUint16(10);
  } else if (family === "INET6") {
    const hextets = (offset: number): number[] =>
      Array.from({ length: 8 }, (_, i) => view.getUint16(offset + i * 2));
    data.srcAddress = formatIPv6(hextets(0));
    data.dstAddress = formatIPv6(hextets(16));
    data.srcPort = view.getUint16(32);
    data.dstPort = view.getUint16(34);
  } else {
    data.srcAddress = unixPath(tail.subarray(0, UNIX_PATH_LENGTH));
    data.dstAddress = unixPath(tail.subarray(UNIX_PATH_LENGTH, 2 * UNIX_PATH_LENGTH));
  }
  data.rest = tail.subarray(addressLength);
  data.tlvs = parseTlvs(data.rest);
  return succeed(data);
}

/** sun_path is NUL-padded to 108 bytes; drop the padding but keep any leading NUL (abstract). */
function unixPath(bytes: Uint8Array): string {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return utf8.decode(bytes.subarray(0, end));
}

/**
 * Decodes TLVs like aiosmtpd's ProxyTLV.from_raw: SSL sub-TLVs are flattened into the list right
 * after their SSL entry. Returns null for no TLVs or any malformed vector. Unlike aiosmtpd, a
 * truncated 3-byte TLV header or an SSL value shorter than its 5-byte preamble is malformed
 * rather than silently accepted (or crashing).
 */
function parseTlvs(bytes: Uint8Array): ProxyTlv[] | null {
  if (bytes.length === 0) return null;
  const tlvs: ProxyTlv[] = [];
  // Explicit stack instead of recursion: nested SSL vectors must not be able to blow the call stack.
  const pending: Array<[number, number]> = [[0, bytes.length]];
  for (let range = pending.pop(); range !== undefined; range = pending.pop()) {
    let [offset, end] = range;
    while (offset < end) {
      if (end - offset < 3) return null;
      const type = bytes[offset] as number;
      const length = ((bytes[offset + 1] as number) << 8) | (bytes[offset + 2] as number);
      const valueStart = offset + 3;
      const valueEnd = valueStart + length;
      if (valueEnd > end) return null;
      const value = bytes.subarray(valueStart, valueEnd);
      const name = TLV_NAMES[type] ?? `x${type.toString(16).toUpperCase().padStart(2, "0")}`;
      offset = valueEnd;
      if (type !== TLV_TYPE_SSL) {
        tlvs.push({ type, name, value });
        continue;
      }
      if (length < 5) return null;
      const sslVerify =
        (((value[1] as number) << 24) >>> 0) +
        (((value[2] as number) << 16) | ((value[3] as number) << 8) | (value[4] as number));
      tlvs.push({ type, name, value, sslClient: value[0] as number, sslVerify });
      // Finish the SSL sub-vectors first, then resume after the SSL vector.
      pending.push([offset, end], [valueStart + 5, valueEnd]);
      break;
    }
  }
  return tlvs;
}
