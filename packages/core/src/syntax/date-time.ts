/**
 * RFC 3339 §5.6 `date-time`, the timestamp RRVS (RFC 7293) and HOLDUNTIL (RFC 4865) carry:
 * `2026-12-04T10:30:00Z`, `2026-12-04T10:30:00.25+01:00`. "T" and "Z" may be lower case (§5.6
 * NOTE). Returns the instant in milliseconds since the epoch, or null for anything else,
 * including impossible dates (February 30th, hour 24). A leap second (`:60`) counts as the
 * second before the next minute, as JavaScript dates have none.
 */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

export function parseDateTime(text: string): number | null {
  const m = DATE_TIME.exec(text);
  if (m === null) return null;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60) return null;
  let offset = 0;
  if (m[8] === undefined) {
    const offsetHours = Number(m[10]);
    const offsetMinutes = Number(m[11]);
    if (offsetHours > 23 || offsetMinutes > 59) return null;
    offset = (m[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  }
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const utc = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), fraction);
  return utc - offset * 60_000;
}

/** An instant as RFC 3339 `date-time` in UTC, whole seconds (`2026-12-04T10:30:00Z`). */
export function formatDateTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}
