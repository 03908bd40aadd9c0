/**
 * RFC 7293 §3: the RCPT parameter `RRVS=` date-time [";" ("C" / "R")]: deliver only if the
 * mailbox has belonged to the same owner since that time. The suffix says what a relay does when
 * the next hop lacks RRVS: "C" continue, "R" reject (the default when absent).
 */
import { parseDateTime } from "./date-time.js";

export interface Rrvs {
  /** The instant the mailbox must have been owned since. */
  readonly since: Date;
  /** What a relay does when the next server has no RRVS; null when the client did not say ("R"). */
  readonly noSupport: "C" | "R" | null;
}

const RRVS_VALUE = /^([^;]+)(?:;([CcRr]))?$/;

export function parseRrvs(value: string | null): Rrvs | null {
  const m = value === null ? null : RRVS_VALUE.exec(value);
  const since = m?.[1] === undefined ? null : parseDateTime(m[1]);
  if (m === null || since === null) return null;
  const suffix = m[2]?.toUpperCase();
  return { since: new Date(since), noSupport: suffix === "C" || suffix === "R" ? suffix : null };
}
