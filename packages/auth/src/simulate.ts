import type { SaslContext, SaslMechanism, SaslStep } from "@smtpkit/core";
import type { AuthResult } from "@smtpkit/core/server";
import type { VerdictAwareExchange } from "./types.js";

export interface SimulateOptions {
  /** Default `{ hostname: "localhost", tls: null }`. */
  readonly context?: SaslContext;
  /** The decoded initial response of `AUTH NAME <b64>`; `null` (default) when none. */
  readonly initialResponse?: Uint8Array | null;
  /** Answers a challenge; `null` cancels (the client's `*`). */
  readonly client: (challenge: Uint8Array) => Uint8Array | null | Promise<Uint8Array | null>;
  /** Gets what a `credentials` step hands over. Default: refuse. */
  readonly authenticator?: (
    mechanism: string,
    credentials: unknown,
  ) => AuthResult | Promise<AuthResult>;
  /** Stop after this many challenges (default 16). */
  readonly maxChallenges?: number;
}

export interface SimulateOutcome {
  /** `null` when the client cancelled. */
  readonly result: AuthResult | null;
  readonly challenges: Uint8Array[];
  /** What the authenticator received, if it was called. */
  readonly credentials?: unknown;
}

/**
 * Runs a mechanism against a scripted client without a server, the way the server drives it
 * (including the `verdict` hook). For unit tests of your own mechanisms.
 */
export async function simulateSasl(
  mechanism: SaslMechanism,
  options: SimulateOptions,
): Promise<SimulateOutcome> {
  const context = options.context ?? { hostname: "localhost", tls: null };
  const exchange = mechanism.start(context) as VerdictAwareExchange;
  const challenges: Uint8Array[] = [];
  const max = options.maxChallenges ?? 16;
  let credentials: unknown;
  let step: SaslStep = await exchange.step(options.initialResponse ?? null);
  for (;;) {
    switch (step.type) {
      case "challenge": {
        if (challenges.length >= max) throw new Error("too many challenges");
        challenges.push(step.challenge);
        const answer = await options.client(step.challenge);
        if (answer === null) return { result: null, challenges };
        step = await exchange.step(answer);
        continue;
      }
      case "credentials": {
        credentials = step.credentials;
        const result = options.authenticator
          ? await options.authenticator(mechanism.name, step.credentials)
          : { success: false };
        if (!exchange.verdict) return { result, challenges, credentials };
        step = await exchange.verdict(result);
        continue;
      }
      case "success":
        return { result: { success: true, authData: step.authData }, challenges, credentials };
      case "failure":
        return {
          result:
            step.reply === undefined ? { success: false } : { success: false, message: step.reply },
          challenges,
          credentials,
        };
    }
  }
}
