/** WebCrypto wrappers (every supported runtime has `crypto.subtle`). */

export type ScramHash = "SHA-1" | "SHA-256";
export type DigestName = "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512";

export const HASH_LENGTH: Readonly<Record<DigestName, number>> = {
  "SHA-1": 20,
  "SHA-256": 32,
  "SHA-384": 48,
  "SHA-512": 64,
};

export async function digest(hash: DigestName, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest(hash, data));
}

export async function hmac(
  hash: DigestName,
  key: Uint8Array,
  data: Uint8Array,
): Promise<Uint8Array> {
  // WebCrypto refuses zero-length HMAC keys in some runtimes; HMAC pads keys with zeros anyway,
  // so one zero byte is the same key (RFC 2104 §2).
  const raw = key.length === 0 ? new Uint8Array(1) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, data));
}

/** PBKDF2 (`Hi()` in RFC 5802) with the hash's output length. */
export async function pbkdf2(
  hash: DigestName,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash, salt, iterations },
    key,
    HASH_LENGTH[hash] * 8,
  );
  return new Uint8Array(bits);
}
