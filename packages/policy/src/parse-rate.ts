import type { Rate } from "./report.js";

const UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/**
 * `"N/MIN"` → at most N per MIN minutes: `"30/1"` is 30 a minute, `"100/60"` 100 an hour;
 * `"N"` alone is per minute; the window may name its unit: `"5/30s"`, `"20/2m"`, `"100/1h"`.
 * Throws a `RangeError` naming what is wrong.
 */
export function parseRate(text: string): Rate {
  const match = /^\s*(\d+)\s*(?:\/\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?)?\s*$/.exec(text);
  if (!match)
    throw new RangeError(`${JSON.stringify(text)} is not a rate: expected N/MINUTES, e.g. 30/1`);
  const limit = Number(match[1]);
  const windowMs = Math.round(Number(match[2] ?? "1") * (UNITS[match[3] ?? "m"] ?? 60_000));
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`${JSON.stringify(text)}: the count must be at least 1`);
  if (windowMs < 1000)
    throw new RangeError(`${JSON.stringify(text)}: the window must be at least 1 second`);
  return { limit, windowMs };
}
