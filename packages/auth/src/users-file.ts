import { decodeBase64 } from "@smtpkit/core";
import type { Authenticator, AuthResult } from "@smtpkit/core/server";
import { fromUtf8, INSPECT, randomBytes, timingSafeEqual, toBytes, utf8 } from "./bytes.js";
import { HASH_LENGTH, type ScramHash } from "./crypto.js";
import type { CramMd5Credentials } from "./mechanisms/cram-md5.js";
import type { ExternalCredentials } from "./mechanisms/external.js";
import type { OAuthCredentials } from "./mechanisms/oauth.js";
import type { ScramLookup } from "./mechanisms/scram.js";
import { saslPrep } from "./saslprep.js";
import {
  DEFAULT_SCRAM_ITERATIONS,
  formatScramKey,
  keysFromSaltedPassword,
  preparePassword,
  ScramKeys,
  type ScramStoredKey,
  saltedPassword,
  scramStoredKey,
} from "./scram-keys.js";
import { AuthIdentity } from "./types.js";

/** How one user's secret is stored. */
type Entry =
  | { readonly kind: "plain"; readonly password: Uint8Array }
  | { readonly kind: "none" }
  | { readonly kind: "bcrypt"; readonly hash: string }
  | { readonly kind: "scram"; readonly hash: ScramHash; readonly key: ScramStoredKey };

/** A users file that cannot be parsed. The message names the line, never its content. */
export class UsersFileError extends Error {
  override readonly name = "UsersFileError";
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(`users file line ${line}: ${problem}`);
  }
}

export interface UsersFileOptions {
  /** PBKDF2 iterations for SCRAM keys derived from plain-text entries. Default 4096. */
  readonly scramIterations?: number;
}

export interface AuthenticatorOptions {
  /**
   * XOAUTH2/OAUTHBEARER: accept the user's password as the bearer token (test set-ups). Default
   * false: OAuth credentials fail, verify real tokens with your own authenticator or `verify`.
   */
  readonly tokensArePasswords?: boolean;
  /** EXTERNAL: accept a verified certificate whose identity is a user in the file. Default true. */
  readonly external?: boolean;
}

const BCRYPT = /^\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}$/;
const SCHEME = /^\{([A-Za-z0-9-]+)\}/;

function normalizeLogin(login: string): string {
  return saslPrep(login) ?? login;
}

function parseScram(hash: ScramHash, value: string, line: number): ScramStoredKey {
  // Ours: salt$iterations$storedKey$serverKey. Dovecot's and `gsasl --mkpasswd`'s:
  // iterations,salt,storedKey,serverKey.
  let parts = value.split("$");
  if (parts.length !== 4) {
    const dovecot = value.split(",");
    if (dovecot.length !== 4) throw new UsersFileError(line, `malformed {SCRAM-${hash}} entry`);
    parts = [dovecot[1], dovecot[0], dovecot[2], dovecot[3]] as string[];
  }
  const [saltText, iterationsText, storedText, serverText] = parts as [
    string,
    string,
    string,
    string,
  ];
  const salt = decodeBase64(saltText);
  const storedKey = decodeBase64(storedText);
  const serverKey = decodeBase64(serverText);
  const iterations = /^\d{1,9}$/.test(iterationsText) ? Number(iterationsText) : 0;
  const length = HASH_LENGTH[hash];
  if (!salt || salt.length === 0 || iterations < 1) {
    throw new UsersFileError(line, `malformed {SCRAM-${hash}} salt or iteration count`);
  }
  if (storedKey?.length !== length || serverKey?.length !== length) {
    throw new UsersFileError(line, `{SCRAM-${hash}} keys must be ${length} bytes in base64`);
  }
  return new ScramKeys(hash, salt, iterations, storedKey, serverKey);
}

function parseSecret(secret: string, line: number): Entry {
  if (secret === "") return { kind: "none" };
  if (BCRYPT.test(secret)) return { kind: "bcrypt", hash: secret };
  const scheme = SCHEME.exec(secret);
  if (!scheme) return { kind: "plain", password: utf8(secret) };
  const name = (scheme[1] as string).toUpperCase();
  const value = secret.slice(scheme[0].length);
  switch (name) {
    case "PLAIN":
      return { kind: "plain", password: utf8(value) };
    case "SCRAM-SHA-256":
      return { kind: "scram", hash: "SHA-256", key: parseScram("SHA-256", value, line) };
    case "SCRAM-SHA-1":
      return { kind: "scram", hash: "SHA-1", key: parseScram("SHA-1", value, line) };
    case "BLF-CRYPT":
    case "BCRYPT":
      if (!BCRYPT.test(value)) throw new UsersFileError(line, "malformed bcrypt hash");
      return { kind: "bcrypt", hash: value };
    default:
      throw new UsersFileError(
        line,
        "unknown password scheme in braces (write {PLAIN} before a password that starts with '{')",
      );
  }
}

type Bcrypt = { compare(password: string, hash: string): Promise<boolean> };
let bcryptModule: Promise<Bcrypt> | null = null;

/** bcryptjs is loaded on first use, so runtimes that never see a bcrypt hash never load it. */
function loadBcrypt(): Promise<Bcrypt> {
  bcryptModule ??= import("bcryptjs").then(
    (module) => ((module as { default?: Bcrypt }).default ?? module) as Bcrypt,
  );
  return bcryptModule;
}

const DUMMY = utf8("smtpkit-dummy-password-for-unknown-users");

/**
 * Users and their secrets, from {@link parseUsersFile}. Provides the `authenticator` for PLAIN,
 * LOGIN, CRAM-MD5 and EXTERNAL, and `scramLookup` for the SCRAM mechanisms. Its string and JSON
 * forms show only the number of users.
 */
export class UserDatabase {
  readonly #entries: Map<string, Entry>;
  readonly #iterations: number;
  readonly #derived = new Map<string, Promise<ScramStoredKey | null>>();

  constructor(entries: Map<string, Entry>, options: UsersFileOptions = {}) {
    this.#entries = entries;
    this.#iterations = options.scramIterations ?? DEFAULT_SCRAM_ITERATIONS;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The user names (SASLprep-normalized). */
  get users(): string[] {
    return [...this.#entries.keys()];
  }

  has(login: string): boolean {
    return this.#entries.has(normalizeLogin(login));
  }

  /** Whether any entry is a plain-text password (CRAM-MD5 only works for those). */
  get hasPlainText(): boolean {
    for (const entry of this.#entries.values()) if (entry.kind === "plain") return true;
    return false;
  }

  /** Checks a password against any kind of entry, in constant time for plain-text ones. */
  async verifyPassword(
    login: Uint8Array | string,
    password: Uint8Array | string,
  ): Promise<boolean> {
    const name = normalizeLogin(typeof login === "string" ? login : fromUtf8(login));
    const entry = this.#entries.get(name);
    const given = toBytes(password);
    switch (entry?.kind) {
      case "plain": {
        const exact = timingSafeEqual(given, entry.password);
        const prepared = timingSafeEqual(preparePassword(given), preparePassword(entry.password));
        return exact || prepared;
      }
      case "bcrypt": {
        const bcrypt = await loadBcrypt();
        return bcrypt.compare(fromUtf8(given), entry.hash);
      }
      case "scram": {
        const salted = await saltedPassword(
          entry.hash,
          given,
          entry.key.salt,
          entry.key.iterations,
        );
        const { storedKey } = await keysFromSaltedPassword(entry.hash, salted);
        return timingSafeEqual(storedKey, entry.key.storedKey);
      }
      default:
        // Spend about the time of a plain-text comparison so unknown users do not stand out.
        timingSafeEqual(given, DUMMY);
        return false;
    }
  }

  /** CRAM-MD5 needs the password itself: only plain-text entries can pass. */
  verifyCramMd5(credentials: Pick<CramMd5Credentials, "login" | "verify">): boolean {
    const entry = this.#entries.get(normalizeLogin(credentials.login));
    if (entry?.kind !== "plain") {
      credentials.verify(DUMMY);
      return false;
    }
    return credentials.verify(entry.password);
  }

  /**
   * The SCRAM `lookup`: stored keys as written in the file, or keys derived once from a
   * plain-text password (random salt, `scramIterations`), cached. bcrypt entries have none.
   */
  readonly scramLookup: ScramLookup = (username, info) => {
    const name = normalizeLogin(username);
    const entry = this.#entries.get(name);
    if (!entry) return null;
    if (entry.kind === "scram") return entry.hash === info.hash ? entry.key : null;
    if (entry.kind !== "plain") return null;
    const cacheKey = `${info.hash}\0${name}`;
    let derived = this.#derived.get(cacheKey);
    if (!derived) {
      derived = (async () => {
        const salt = randomBytes(16);
        const salted = await saltedPassword(info.hash, entry.password, salt, this.#iterations);
        const { storedKey, serverKey } = await keysFromSaltedPassword(info.hash, salted);
        return new ScramKeys(info.hash, salt, this.#iterations, storedKey, serverKey);
      })();
      this.#derived.set(cacheKey, derived);
    }
    return derived;
  };

  /** An aiosmtpd-style authenticator checking credentials against this database. */
  createAuthenticator(options: AuthenticatorOptions = {}): Authenticator {
    return async (_server, _session, _envelope, mechanism, credentials): Promise<AuthResult> => {
      const identity = await this.#check(mechanism, credentials, options);
      return identity ? { success: true, authData: identity } : { success: false };
    };
  }

  /** `createAuthenticator()` with the defaults. */
  readonly authenticator: Authenticator = this.createAuthenticator();

  async #check(
    mechanism: string,
    credentials: unknown,
    options: AuthenticatorOptions,
  ): Promise<AuthIdentity | null> {
    if (credentials === null || typeof credentials !== "object") return null;
    const kind = (credentials as { mechanism?: unknown }).mechanism;
    if (kind === "CRAM-MD5" && typeof (credentials as CramMd5Credentials).verify === "function") {
      const cram = credentials as CramMd5Credentials;
      return this.verifyCramMd5(cram)
        ? new AuthIdentity(mechanism, normalizeLogin(cram.login))
        : null;
    }
    if (kind === "XOAUTH2" || kind === "OAUTHBEARER") {
      const oauth = credentials as OAuthCredentials;
      if (!options.tokensArePasswords || oauth.login === "") return null;
      const ok = await this.verifyPassword(oauth.login, oauth.token);
      return ok ? new AuthIdentity(mechanism, normalizeLogin(oauth.login), oauth.authzid) : null;
    }
    if (kind === "EXTERNAL") {
      const ext = credentials as ExternalCredentials;
      if (options.external === false || !ext.authorized || ext.login === "") return null;
      if (ext.authzid !== "" && ext.authzid !== ext.login) return null;
      return this.has(ext.login)
        ? new AuthIdentity(mechanism, normalizeLogin(ext.login), ext.authzid)
        : null;
    }
    const pair = credentials as { login?: unknown; password?: unknown; authzid?: unknown };
    if (pair.login instanceof Uint8Array && pair.password instanceof Uint8Array) {
      const login = normalizeLogin(fromUtf8(pair.login));
      const authzid = typeof pair.authzid === "string" ? pair.authzid : "";
      const ok = await this.verifyPassword(login, pair.password);
      if (!ok || (authzid !== "" && normalizeLogin(authzid) !== login)) return null;
      return new AuthIdentity(mechanism, login, authzid);
    }
    return null;
  }

  toString(): string {
    return `UserDatabase(${this.#entries.size} users)`;
  }
  toJSON(): unknown {
    return { users: this.#entries.size };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/**
 * Parses a users file. One user per line, `#` comments and blank lines ignored:
 *
 * ```text
 * alice:wonderland                       plain text (everything after the first ':')
 * bob:{PLAIN}{starts-with-a-brace}       plain text, explicitly
 * carol:{SCRAM-SHA-256}<b64 salt>$<iterations>$<b64 StoredKey>$<b64 ServerKey>
 * dave:{SCRAM-SHA-1}<b64 salt>$<iterations>$<b64 StoredKey>$<b64 ServerKey>
 * erin:$2b$10$...                        bcrypt ($2a$/$2b$/$2y$; or {BLF-CRYPT}$2b$...)
 * frank:                                 no password: EXTERNAL (client certificate) only
 * ```
 *
 * `{SCRAM-…}` also takes Dovecot's / `gsasl --mkpasswd`'s `<iterations>,<salt>,<stored>,<server>`.
 * User names are SASLprep-normalized and unique. Errors name the line, never its content.
 */
export function parseUsersFile(text: string, options: UsersFileOptions = {}): UserDatabase {
  const entries = new Map<string, Entry>();
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const line = (lines[index] as string).replace(/\r$/, "");
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) throw new UsersFileError(lineNumber, "expected user:password");
    const rawUser = line.slice(0, colon).trim();
    const user = rawUser === "" ? null : saslPrep(rawUser);
    if (!user) throw new UsersFileError(lineNumber, "invalid user name");
    if (entries.has(user)) throw new UsersFileError(lineNumber, "duplicate user");
    entries.set(user, parseSecret(line.slice(colon + 1), lineNumber));
  }
  return new UserDatabase(entries, options);
}

export interface UsersFileLineOptions {
  /** Default `"scram-sha-256"`. `"plain"` stores the password itself (needed for CRAM-MD5). */
  readonly scheme?: "scram-sha-256" | "scram-sha-1" | "bcrypt" | "plain";
  /** SCRAM iterations (default 4096) or bcrypt cost (default 10). */
  readonly iterations?: number;
}

/**
 * One users-file line for `user` and `password` (no trailing newline), e.g.
 * `await usersFileLine("alice", "wonderland")` →
 * `alice:{SCRAM-SHA-256}…$4096$…$…`. A CLI can print it; nothing here reads a terminal.
 */
export async function usersFileLine(
  user: string,
  password: string,
  options: UsersFileLineOptions = {},
): Promise<string> {
  const name = saslPrep(user.trim());
  if (!name || name.includes(":") || /[\r\n]/.test(password)) {
    throw new TypeError("user names cannot contain ':' and passwords cannot contain line breaks");
  }
  const scheme = options.scheme ?? "scram-sha-256";
  if (scheme === "plain") {
    const explicit = password === "" || password.startsWith("{") || BCRYPT.test(password);
    return `${name}:${explicit ? "{PLAIN}" : ""}${password}`;
  }
  if (scheme === "bcrypt") {
    const bcrypt = (await loadBcrypt()) as Bcrypt & {
      hash(password: string, rounds: number): Promise<string>;
    };
    return `${name}:${await bcrypt.hash(password, options.iterations ?? 10)}`;
  }
  const hash: ScramHash = scheme === "scram-sha-1" ? "SHA-1" : "SHA-256";
  const key = await scramStoredKey(password, {
    hash,
    ...(options.iterations === undefined ? {} : { iterations: options.iterations }),
  });
  return `${name}:${formatScramKey(key, hash)}`;
}
