import type { SaslMechanism } from "@smtpkit/core";
import {
  fromUtf8Strict,
  INSPECT,
  randomBytes,
  timingSafeEqual,
  toBytes,
  toHex,
  utf8,
} from "../bytes.js";
import { hmacMd5 } from "../md5.js";
import { challenge, failure } from "../types.js";

/** What CRAM-MD5 hands to the authenticator (RFC 2195). */
export class CramMd5Credentials {
  readonly mechanism = "CRAM-MD5";
  readonly #digest: string;
  constructor(
    readonly login: string,
    /** The challenge the server sent, `<random.timestamp@hostname>`. */
    readonly challenge: string,
    digest: string,
  ) {
    this.#digest = digest.toLowerCase();
  }
  /** The client's HMAC-MD5 digest, 32 lower-case hex digits. */
  get digest(): string {
    return this.#digest;
  }
  /** Whether the digest is HMAC-MD5(password, challenge); compares in constant time. */
  verify(password: Uint8Array | string): boolean {
    const expected = toHex(hmacMd5(toBytes(password), utf8(this.challenge)));
    return timingSafeEqual(utf8(expected), utf8(this.#digest));
  }
  toString(): string {
    return `CramMd5Credentials(login=${this.login}, digest=...)`;
  }
  toJSON(): unknown {
    return { mechanism: this.mechanism, login: this.login, digest: "..." };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

export interface CramMd5Options {
  /** Makes the challenge (tests); default `<random.timestamp@hostname>` with 64 random bits. */
  readonly challenge?: (hostname: string) => string;
}

function defaultChallenge(hostname: string): string {
  const random = randomBytes(8);
  let value = 0n;
  for (const byte of random) value = (value << 8n) | BigInt(byte);
  const host = hostname.replace(/[^\x21-\x7e]/g, "") || "localhost";
  return `<${value}.${Date.now()}@${host}>`;
}

const RESPONSE = /^(.+) ([0-9a-fA-F]{32})$/s;

/**
 * CRAM-MD5 (RFC 2195): the server sends a unique challenge, the client answers
 * `user SP hex(HMAC-MD5(password, challenge))`. The authenticator receives a
 * {@link CramMd5Credentials} and calls `verify(password)`; the password must be known in plain
 * text. Safe without TLS in the sense that the password does not cross the wire.
 */
export function cramMd5(options: CramMd5Options = {}): SaslMechanism {
  const make = options.challenge ?? defaultChallenge;
  return {
    name: "CRAM-MD5",
    safeWithoutTls: true,
    start(context) {
      let sent: string | null = null;
      let done = false;
      return {
        step(response) {
          if (done) return failure();
          if (sent === null) {
            if (response !== null && response.length > 0) {
              done = true;
              return failure("501 5.5.2 CRAM-MD5 takes no initial response");
            }
            sent = make(context.hostname);
            return challenge(utf8(sent));
          }
          done = true;
          const text = response === null ? null : fromUtf8Strict(response);
          const match = text === null ? null : RESPONSE.exec(text);
          if (!match) return failure("501 5.5.2 Malformed CRAM-MD5 response");
          return {
            type: "credentials",
            credentials: new CramMd5Credentials(match[1] as string, sent, match[2] as string),
          };
        },
      };
    },
  };
}
