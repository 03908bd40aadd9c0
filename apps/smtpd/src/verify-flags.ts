/**
 * `--verify spf,dkim,dmarc,arc [--verify-policy tag|quarantine|reject] [--dns-server HOST:PORT]`:
 * the flags, their checks, and the fragments they put before the handler
 * (`compose(...verifyFragments(options), handler)`).
 */
import type { Handler } from "@smtpkit/core/server";
import {
  ALL_CHECKS,
  type Check,
  dnsResolver,
  reverseDns,
  type VerifyPolicy,
  verifier,
} from "@smtpkit/verify";
import type { Command } from "commander";

/** What the verification flags decided; `null` checks: no verification. */
export interface VerifyFlags {
  readonly checks: readonly Check[] | null;
  readonly policy: VerifyPolicy;
  readonly dnsServer: string | null;
}

const POLICIES: readonly VerifyPolicy[] = ["tag", "quarantine", "reject"];

/** Adds the flags to the command line. */
export function addVerifyFlags(program: Command): Command {
  return program
    .option(
      "--verify <CHECKS>",
      `verify senders: ${ALL_CHECKS.join(",")} or a subset (comma separated); adds Authentication-Results`,
    )
    .option(
      "--verify-policy <POLICY>",
      "tag (default: only the header), quarantine (mark DMARC failures), reject (550 on DMARC p=reject failures); needs --verify",
    )
    .option(
      "--dns-server <HOST:PORT>",
      "the DNS server for verification and reverse DNS (default: the system's); needs --verify",
    );
}

/**
 * The raw flag values → `VerifyFlags`; `fail(message)` throws the CLI's usage error.
 * `{ verify, verifyPolicy, dnsServer }` as commander names them.
 */
export function parseVerifyFlags(
  raw: { verify?: string; verifyPolicy?: string; dnsServer?: string },
  fail: (message: string) => never,
): VerifyFlags {
  let checks: Check[] | null = null;
  if (raw.verify !== undefined) {
    const names = raw.verify
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name !== "");
    const unknown = names.find((name) => !(ALL_CHECKS as readonly string[]).includes(name));
    if (names.length === 0 || unknown !== undefined) {
      fail(
        `argument --verify: unknown check ${unknown ?? "(none)"}; choose from ${ALL_CHECKS.join(", ")}`,
      );
    }
    checks = [...new Set(names as Check[])];
  }
  if (checks === null && (raw.verifyPolicy !== undefined || raw.dnsServer !== undefined)) {
    fail(
      `argument ${raw.verifyPolicy !== undefined ? "--verify-policy" : "--dns-server"}: needs --verify`,
    );
  }
  const policy = (raw.verifyPolicy ?? "tag").toLowerCase();
  if (!(POLICIES as readonly string[]).includes(policy)) {
    fail(
      `argument --verify-policy: invalid choice: ${raw.verifyPolicy} (choose from ${POLICIES.join(", ")})`,
    );
  }
  const dnsServer = raw.dnsServer ?? null;
  if (
    dnsServer !== null &&
    !/^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]+)(:\d{1,5})?$/.test(dnsServer)
  ) {
    fail(
      `argument --dns-server: expected an IP address with an optional port, e.g. 127.0.0.1:5353`,
    );
  }
  return { checks, policy: policy as VerifyPolicy, dnsServer };
}

/** The fragments the flags ask for (none without `--verify`): reverse DNS, then the verifier. */
export function verifyFragments(options: { readonly verify: VerifyFlags }): Handler[] {
  const { checks, policy, dnsServer } = options.verify;
  if (checks === null) return [];
  // One resolver, so both share its cache.
  const resolver = dnsResolver(dnsServer === null ? {} : { server: dnsServer });
  return [reverseDns({ resolver }), verifier({ checks, policy, resolver })];
}
