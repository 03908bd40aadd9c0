import type { SaslContext, SaslExchange, SaslMechanism, SaslStep } from "@smtpkit/core";
import type { AuthResult } from "@smtpkit/core/server";
import { INSPECT } from "./bytes.js";

/**
 * A SASL exchange that wants to hear the authenticator's verdict after it handed over
 * credentials. The server calls `verdict(result)` instead of ending the exchange; the returned step
 * may be a challenge (XOAUTH2's and OAUTHBEARER's JSON error, answered by the client before the
 * final 535) or the final success/failure.
 *
 * Servers that do not know `verdict` (smtpkit's core before it grew the hook) end the exchange with
 * the authenticator's result directly, which is still correct, just without the error challenge.
 */
export interface VerdictAwareExchange extends SaslExchange {
  verdict?(result: AuthResult): SaslStep | Promise<SaslStep>;
}

/**
 * A mechanism that is only offered on some connections (the -PLUS variants need channel-binding
 * data). Servers that do not know `available` offer it wherever its `safeWithoutTls` allows.
 */
export interface ContextualMechanism extends SaslMechanism {
  available?(context: SaslContext): boolean;
}

/** Who authenticated: what mechanisms that verify by themselves put in `authData`. */
export class AuthIdentity {
  constructor(
    readonly mechanism: string,
    /** The authenticated user (authentication identity). */
    readonly login: string,
    /** The authorization identity the client asked for; `""` when none (act as `login`). */
    readonly authzid = "",
  ) {}
  toString(): string {
    return `AuthIdentity(mechanism=${this.mechanism}, login=${this.login}${
      this.authzid ? `, authzid=${this.authzid}` : ""
    })`;
  }
  [INSPECT](): string {
    return this.toString();
  }
}

/** Refuses the client; `login`: the user it claimed, when known (per-user failure limits). */
export function failure(reply?: string, login?: string): SaslStep {
  return {
    type: "failure",
    ...(reply === undefined ? {} : { reply }),
    ...(login === undefined ? {} : { login }),
  };
}

export function challenge(bytes: Uint8Array): SaslStep {
  return { type: "challenge", challenge: bytes };
}

export const EMPTY = new Uint8Array(0);

/** RFC 4954 §6: a temporary failure (e.g. a credential store that is down). */
export const TEMPORARY_FAILURE = "454 4.7.0 Temporary authentication failure";
export const MALFORMED = "501 5.5.2 Malformed SASL message";
