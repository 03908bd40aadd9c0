import { encodeBase64 } from "@smtpkit/core";
import { fromUtf8Strict, INSPECT, randomBytes, toBytes, utf8 } from "./bytes.js";
import { digest, hmac, pbkdf2, type ScramHash } from "./crypto.js";
import { saslPrep } from "./saslprep.js";

/** What a SCRAM server stores per user instead of the password (RFC 5802 §3). */
export interface ScramStoredKey {
  readonly salt: Uint8Array;
  readonly iterations: number;
  /** H(HMAC(SaltedPassword, "Client Key")) */
  readonly storedKey: Uint8Array;
  /** HMAC(SaltedPassword, "Server Key") */
  readonly serverKey: Uint8Array;
}

/** RFC 7677 §4 asks for at least 4096 iterations; 4096 is what RFC examples and most clients expect. */
export const DEFAULT_SCRAM_ITERATIONS = 4096;

/** A derived key set; its string and JSON forms never show the keys. */
export class ScramKeys implements ScramStoredKey {
  readonly #storedKey: Uint8Array;
  readonly #serverKey: Uint8Array;
  constructor(
    readonly hash: ScramHash,
    readonly salt: Uint8Array,
    readonly iterations: number,
    storedKey: Uint8Array,
    serverKey: Uint8Array,
  ) {
    this.#storedKey = storedKey;
    this.#serverKey = serverKey;
  }
  get storedKey(): Uint8Array {
    return this.#storedKey;
  }
  get serverKey(): Uint8Array {
    return this.#serverKey;
  }
  toString(): string {
    return `ScramKeys(${this.hash}, iterations=${this.iterations}, keys=...)`;
  }
  toJSON(): unknown {
    return { hash: this.hash, iterations: this.iterations, storedKey: "...", serverKey: "..." };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/** SASLprep for passwords, falling back to the raw text when it is not preparable. */
export function preparePassword(password: Uint8Array | string): Uint8Array {
  if (typeof password !== "string") {
    const text = fromUtf8Strict(password);
    if (text === null) return password;
    const prepared = saslPrep(text);
    return prepared === null ? password : utf8(prepared);
  }
  return utf8(saslPrep(password) ?? password);
}

/** SaltedPassword = Hi(Normalize(password), salt, i) (RFC 5802 §3). */
export function saltedPassword(
  hash: ScramHash,
  password: Uint8Array | string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  return pbkdf2(hash, preparePassword(password), salt, iterations);
}

/** Derives StoredKey and ServerKey from a salted password. */
export async function keysFromSaltedPassword(
  hash: ScramHash,
  salted: Uint8Array,
): Promise<{ storedKey: Uint8Array; serverKey: Uint8Array }> {
  const clientKey = await hmac(hash, salted, utf8("Client Key"));
  const storedKey = await digest(hash, clientKey);
  const serverKey = await hmac(hash, salted, utf8("Server Key"));
  return { storedKey, serverKey };
}

export interface ScramKeyOptions {
  /** Default `"SHA-256"`. */
  readonly hash?: ScramHash;
  /** Default 4096. */
  readonly iterations?: number;
  /** Default 16 random bytes. */
  readonly salt?: Uint8Array | string;
}

/**
 * Derives the SCRAM keys to store for a password: `await scramStoredKey("pencil")`.
 * The password goes through SASLprep as RFC 5802 asks.
 */
export async function scramStoredKey(
  password: Uint8Array | string,
  options: ScramKeyOptions = {},
): Promise<ScramKeys> {
  const hash = options.hash ?? "SHA-256";
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError("iterations must be a positive integer");
  }
  const salt = options.salt === undefined ? randomBytes(16) : toBytes(options.salt);
  const salted = await saltedPassword(hash, password, salt, iterations);
  const { storedKey, serverKey } = await keysFromSaltedPassword(hash, salted);
  return new ScramKeys(hash, salt, iterations, storedKey, serverKey);
}

/** The users-file form of stored keys: `{SCRAM-SHA-256}<b64 salt>$<iterations>$<b64 StoredKey>$<b64 ServerKey>`. */
export function formatScramKey(key: ScramStoredKey, hash: ScramHash = "SHA-256"): string {
  return `{SCRAM-${hash}}${encodeBase64(key.salt)}$${key.iterations}$${encodeBase64(
    key.storedKey,
  )}$${encodeBase64(key.serverKey)}`;
}
