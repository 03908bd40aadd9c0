/** Byte helpers shared by the mechanisms (runtime-free). */

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();
const STRICT_DECODER = new TextDecoder("utf-8", { fatal: true });

export function utf8(text: string): Uint8Array {
  return ENCODER.encode(text);
}

/** Lenient UTF-8 decoding (invalid sequences become U+FFFD). */
export function fromUtf8(bytes: Uint8Array): string {
  return DECODER.decode(bytes);
}

/** Strict UTF-8 decoding; `null` when the bytes are not valid UTF-8. */
export function fromUtf8Strict(bytes: Uint8Array): string | null {
  try {
    return STRICT_DECODER.decode(bytes);
  } catch {
    return null;
  }
}

export function toBytes(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? ENCODER.encode(value) : value;
}

/**
 * Compares two byte strings in time that depends only on their lengths (and not on where they
 * differ). Different lengths compare unequal, still after a full pass.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

export function randomBytes(length: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(length));
}

/** Node's `util.inspect` hook, reached without importing `node:util`. */
export const INSPECT = Symbol.for("nodejs.util.inspect.custom");
