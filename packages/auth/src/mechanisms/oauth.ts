import type { SaslStep } from "@smtpkit/core";
import type { AuthResult } from "@smtpkit/core/server";
import { INSPECT, utf8 } from "../bytes.js";
import {
  AuthIdentity,
  challenge,
  EMPTY,
  failure,
  MALFORMED,
  type VerdictAwareExchange,
} from "../types.js";

/** What XOAUTH2 and OAUTHBEARER hand to the authenticator (or to `verify`). */
export class OAuthCredentials {
  readonly #token: string;
  constructor(
    readonly mechanism: "XOAUTH2" | "OAUTHBEARER",
    /** The user: XOAUTH2's `user=`, OAUTHBEARER's authzid (`""` when the client sent none). */
    readonly login: string,
    token: string,
    /** OAUTHBEARER's `a=` authorization identity (same as `login`); `""` for XOAUTH2. */
    readonly authzid = "",
    /** OAUTHBEARER's `host=` and `port=` key/values, when sent. */
    readonly host: string | null = null,
    readonly port: number | null = null,
  ) {
    this.#token = token;
  }
  /** The bearer token (never shown by `toString()`/`toJSON()`). */
  get token(): string {
    return this.#token;
  }
  toString(): string {
    return `OAuthCredentials(mechanism=${this.mechanism}, login=${this.login}, token=...)`;
  }
  toJSON(): unknown {
    return { mechanism: this.mechanism, login: this.login, token: "..." };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/** Checks a bearer token: `true`, `false`, or an `AuthResult` (its `authData` is kept). */
export type TokenVerifier = (
  credentials: OAuthCredentials,
) => boolean | AuthResult | Promise<boolean | AuthResult>;

export async function runVerifier(
  verify: TokenVerifier,
  credentials: OAuthCredentials,
): Promise<AuthResult> {
  try {
    const result = await verify(credentials);
    if (result === true) {
      return {
        success: true,
        authData: new AuthIdentity(credentials.mechanism, credentials.login, credentials.authzid),
      };
    }
    if (result === false || result === null || typeof result !== "object")
      return { success: false };
    return result;
  } catch {
    return { success: false, message: "454 4.7.0 Temporary authentication failure" };
  }
}

/**
 * The tail of an OAuth exchange once the verdict is known: success ends it; failure first sends
 * the JSON error as a challenge, then fails whatever the client answers.
 */
export function verdictStep(
  result: AuthResult,
  errorJson: Uint8Array,
  after: (final: SaslStep) => void,
): SaslStep {
  if (result.success) {
    return {
      type: "success",
      authData: result.authData,
    };
  }
  // A temporary failure is not a token problem: no JSON, just the reply.
  if (result.message?.startsWith("4")) return failure(result.message);
  after(result.message === undefined ? failure() : failure(result.message));
  return challenge(errorJson);
}

export function json(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value));
}

/**
 * The exchange XOAUTH2 and OAUTHBEARER share: one client message (sent as the initial response or
 * after an empty challenge), then the verdict; a failure sends the JSON error as a challenge and
 * fails whatever the client answers (RFC 7628 §3.2.3: a single %x01).
 */
export function oauthExchange(
  parse: (response: Uint8Array) => OAuthCredentials | null,
  verify: TokenVerifier | undefined,
  errorJson: Uint8Array,
): VerdictAwareExchange {
  let state: "initial" | "sent" | "awaiting-verdict" | "error-sent" | "done" = "initial";
  let final: SaslStep = failure();
  const exchange: VerdictAwareExchange = {
    async step(response) {
      switch (state) {
        case "initial":
          if (response === null) {
            state = "sent";
            return challenge(EMPTY);
          }
          return receive(response);
        case "sent":
          return receive(response ?? EMPTY);
        case "error-sent":
          state = "done";
          return final;
        default:
          state = "done";
          return failure();
      }
    },
    verdict(result: AuthResult) {
      if (state !== "awaiting-verdict") return failure();
      state = "error-sent";
      const step = verdictStep(result, errorJson, (f) => {
        final = f;
      });
      if (step.type !== "challenge") state = "done";
      return step;
    },
  };
  async function receive(response: Uint8Array): Promise<SaslStep> {
    const credentials = parse(response);
    if (!credentials) {
      state = "done";
      return failure(MALFORMED);
    }
    state = "awaiting-verdict";
    if (!verify) return { type: "credentials", credentials };
    return exchange.verdict?.(await runVerifier(verify, credentials)) ?? failure();
  }
  return exchange;
}
