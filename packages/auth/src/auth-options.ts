import type { SaslMechanism } from "@smtpkit/core";
import type { Authenticator, SmtpOptions } from "@smtpkit/core/server";
import { type FailedAttemptsOptions, failedAttempts } from "./failed-attempts.js";
import { cramMd5 } from "./mechanisms/cram-md5.js";
import { external } from "./mechanisms/external.js";
import { oauthBearer } from "./mechanisms/oauthbearer.js";
import { type ScramLookup, scram } from "./mechanisms/scram.js";
import { xoauth2 } from "./mechanisms/xoauth2.js";
import type { UserDatabase } from "./users-file.js";

/** Every mechanism name `authOptions()` knows. PLAIN and LOGIN are the server's built-ins. */
export const KNOWN_MECHANISMS = [
  "PLAIN",
  "LOGIN",
  "CRAM-MD5",
  "SCRAM-SHA-1",
  "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-256",
  "SCRAM-SHA-256-PLUS",
  "XOAUTH2",
  "OAUTHBEARER",
  "EXTERNAL",
] as const;

const BUILTIN = ["PLAIN", "LOGIN"];

export interface AuthSetup {
  /** The users (`parseUsersFile()`); gives the authenticator and the SCRAM lookup. */
  readonly users?: UserDatabase;
  /** Used instead of the users' authenticator (it still gets the failure limit). */
  readonly authenticator?: Authenticator;
  /** SCRAM keys when there is no users database. */
  readonly scramLookup?: ScramLookup;
  /**
   * Mechanisms to offer (case-insensitive). Default: PLAIN, LOGIN, SCRAM-SHA-256(-PLUS),
   * SCRAM-SHA-1(-PLUS), plus CRAM-MD5 when some user has a plain-text password.
   */
  readonly mechanisms?: readonly string[];
  /** `authRequired`: MAIL/RCPT/DATA/VRFY/HELP need AUTH first. Default false. */
  readonly required?: boolean;
  /** `authRequireTls`: PLAIN/LOGIN/XOAUTH2/OAUTHBEARER only under TLS. Default true. */
  readonly requireTls?: boolean;
  /** Per-connection failure limit; `false` for none. Default `{ limit: 3, delayMs: 1000 }`. */
  readonly failedAttempts?: FailedAttemptsOptions | false;
  /** XOAUTH2/OAUTHBEARER check the token as the user's password (test set-ups). Default false. */
  readonly tokensArePasswords?: boolean;
}

/** The `SmtpOptions` keys `authOptions()` sets; spread them into `serve()`'s options. */
export type AuthServerOptions = Pick<
  SmtpOptions,
  "mechanisms" | "authenticator" | "authExcludeMechanism" | "authRequired" | "authRequireTls"
>;

/** Splits a `--auth-mechanisms` value (`"PLAIN,SCRAM-SHA-256"` or space separated). */
export function parseMechanismList(list: string): string[] {
  return list
    .split(/[\s,]+/)
    .filter((name) => name !== "")
    .map((name) => name.toUpperCase());
}

/**
 * Server options for a users database and a list of mechanism names (what the CLI flags
 * `--auth-file`, `--auth-mechanisms`, `--auth-required`, `--no-auth-require-tls` turn into).
 * Throws a `TypeError` for an unknown mechanism name.
 */
export function authOptions(setup: AuthSetup): AuthServerOptions {
  const names = (
    setup.mechanisms?.map((name) => name.toUpperCase()) ?? [
      "PLAIN",
      "LOGIN",
      ...(setup.users?.hasPlainText ? ["CRAM-MD5"] : []),
      "SCRAM-SHA-256",
      "SCRAM-SHA-256-PLUS",
      "SCRAM-SHA-1",
      "SCRAM-SHA-1-PLUS",
    ]
  ).filter((name, index, all) => all.indexOf(name) === index);
  for (const name of names) {
    if (!(KNOWN_MECHANISMS as readonly string[]).includes(name)) {
      throw new TypeError(`Unknown AUTH mechanism: ${name}`);
    }
  }
  const lookup = setup.scramLookup ?? setup.users?.scramLookup ?? (() => null);
  const mechanisms: SaslMechanism[] = [];
  for (const name of names) {
    switch (name) {
      case "CRAM-MD5":
        mechanisms.push(cramMd5());
        break;
      case "SCRAM-SHA-1":
        mechanisms.push(
          scram("SHA-1", false, { lookup, plusOffered: names.includes("SCRAM-SHA-1-PLUS") }),
        );
        break;
      case "SCRAM-SHA-256":
        mechanisms.push(
          scram("SHA-256", false, { lookup, plusOffered: names.includes("SCRAM-SHA-256-PLUS") }),
        );
        break;
      case "SCRAM-SHA-1-PLUS":
        mechanisms.push(scram("SHA-1", true, { lookup }));
        break;
      case "SCRAM-SHA-256-PLUS":
        mechanisms.push(scram("SHA-256", true, { lookup }));
        break;
      case "XOAUTH2":
        mechanisms.push(xoauth2());
        break;
      case "OAUTHBEARER":
        mechanisms.push(oauthBearer());
        break;
      case "EXTERNAL":
        mechanisms.push(external());
        break;
    }
  }
  let authenticator =
    setup.authenticator ??
    setup.users?.createAuthenticator({ tokensArePasswords: setup.tokensArePasswords ?? false });
  if (authenticator && setup.failedAttempts !== false) {
    authenticator = failedAttempts(setup.failedAttempts ?? { limit: 3, delayMs: 1000 })(
      authenticator,
    );
  }
  return {
    mechanisms,
    ...(authenticator ? { authenticator } : {}),
    authExcludeMechanism: BUILTIN.filter((name) => !names.includes(name)),
    authRequired: setup.required ?? false,
    authRequireTls: setup.requireTls ?? true,
  };
}
