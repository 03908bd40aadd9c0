/**
 * The connection-policy flags (`--max-connections-per-ip`, `--rate-limit-*`,
 * `--max-auth-failures`, `--redis`) and the handler fragments they turn into, composed in front of
 * the handler: `compose(...policyFragments(options), handler)`.
 */
import type { Handler } from "@smtpkit/core/server";
import { type LimitsOptions, limits, parseRate, type Rate, RedisStore } from "@smtpkit/policy";
import { InvalidArgumentError, Option } from "commander";

/** What the policy flags decided (`null`: that limit is off). */
export interface PolicyFlags {
  readonly maxConnectionsPerIp: number | null;
  readonly connectionRate: Rate | null;
  readonly messageRate: Rate | null;
  readonly recipientRate: Rate | null;
  readonly authFailures: Rate | null;
  readonly redis: string | null;
}

/** The flags as commander hands them over (already parsed by each option's parser). */
export interface RawPolicyFlags {
  maxConnectionsPerIp?: number;
  rateLimitConnections?: Rate;
  rateLimitMessages?: Rate;
  rateLimitRecipients?: Rate;
  maxAuthFailures?: Rate;
  redis?: string;
}

function rate(text: string): Rate {
  try {
    return parseRate(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function count(text: string): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InvalidArgumentError(`${JSON.stringify(text)} is not an integer >= 1`);
  return value;
}

function redisUrl(text: string): string {
  let url: URL | null = null;
  try {
    url = new URL(text);
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== "redis:" && url.protocol !== "rediss:"))
    throw new InvalidArgumentError(`${JSON.stringify(text)} is not a redis:// or rediss:// URL`);
  return text;
}

const RATE_HELP = "N/MIN: at most N per MIN minutes (30/1; also 5/30s, 100/1h)";

/** The options to add to the program. */
export function policyOptions(): Option[] {
  return [
    new Option(
      "--max-connections-per-ip <N>",
      "connections open at once from one client address; more get 421 4.7.0 before the greeting",
    ).argParser(count),
    new Option(
      "--rate-limit-connections <N/MIN>",
      `new connections per client address, ${RATE_HELP}; more get 421 4.7.0`,
    ).argParser(rate),
    new Option(
      "--rate-limit-messages <N/MIN>",
      `messages (MAIL) per authenticated user, or per address without AUTH, ${RATE_HELP}; more get 450 4.7.1`,
    ).argParser(rate),
    new Option(
      "--rate-limit-recipients <N/MIN>",
      `recipients (RCPT) per authenticated user, or per address, ${RATE_HELP}; more get 450 4.7.1`,
    ).argParser(rate),
    new Option(
      "--max-auth-failures <N/MIN>",
      `failed AUTH per client address and per user, ${RATE_HELP}; then AUTH gets 454 4.7.0 (a locked user 421 4.7.0)`,
    ).argParser(rate),
    new Option(
      "--redis <URL>",
      "keep the limits' counters in Redis (redis://HOST:PORT/DB), shared by every server using it (default: in memory, per process)",
    ).argParser(redisUrl),
  ];
}

/** The parsed flags; `--redis` without a limit is a usage error (it would do nothing). */
export function policyFlags(raw: RawPolicyFlags): PolicyFlags {
  const flags: PolicyFlags = {
    maxConnectionsPerIp: raw.maxConnectionsPerIp ?? null,
    connectionRate: raw.rateLimitConnections ?? null,
    messageRate: raw.rateLimitMessages ?? null,
    recipientRate: raw.rateLimitRecipients ?? null,
    authFailures: raw.maxAuthFailures ?? null,
    redis: raw.redis ?? null,
  };
  if (flags.redis !== null && !hasLimits(flags))
    throw new InvalidArgumentError(
      "argument --redis: needs a limit (--max-connections-per-ip, --rate-limit-*, --max-auth-failures)",
    );
  return flags;
}

function hasLimits(flags: PolicyFlags): boolean {
  return (
    flags.maxConnectionsPerIp !== null ||
    flags.connectionRate !== null ||
    flags.messageRate !== null ||
    flags.recipientRate !== null ||
    flags.authFailures !== null
  );
}

/** The flags as handler fragments (none when no limit is set). */
export function policyFragments(options: { readonly policy: PolicyFlags }): Handler[] {
  const flags = options.policy;
  if (!hasLimits(flags)) return [];
  const config: LimitsOptions = {
    ...(flags.redis !== null && { store: new RedisStore({ url: flags.redis }) }),
    ...((flags.maxConnectionsPerIp !== null || flags.connectionRate !== null) && {
      connections: {
        ...(flags.maxConnectionsPerIp !== null && { perIp: flags.maxConnectionsPerIp }),
        ...(flags.connectionRate !== null && { rate: flags.connectionRate }),
      },
    }),
    ...(flags.messageRate !== null && { messages: { rate: flags.messageRate } }),
    ...(flags.recipientRate !== null && { recipients: { rate: flags.recipientRate } }),
    ...(flags.authFailures !== null && { authFailures: flags.authFailures }),
  };
  return [limits(config)];
}
