/**
 * The EHLO/LHLO keywords of the MAIL/RCPT parameter extensions beyond aiosmtpd's, as a table:
 * one row per extension, each giving its keyword line from the options (null: not offered). The
 * order of the rows is the order in the reply, after CHUNKING.
 */
import { DEFAULT_CALL_LIMIT, type ResolvedOptions } from "../options.js";
import { formatDateTime } from "../syntax/date-time.js";

type KeywordRow = (o: ResolvedOptions) => string | null;

export const EXTENSION_KEYWORDS: readonly KeywordRow[] = [
  // RFC 3030 §3: only with CHUNKING (resolveOptions makes sure).
  (o) => (o.binaryMime ? "BINARYMIME" : null),
  limitsKeyword,
  // RFC 6710 §3: "MT-PRIORITY" [SP priority-profile].
  (o) => (o.mtPriority === null ? null : `MT-PRIORITY${o.mtPriority ? ` ${o.mtPriority}` : ""}`),
  // RFC 2852 §3: "DELIVERBY" [SP min-by-time].
  (o) =>
    o.deliverByMinimum === null
      ? null
      : `DELIVERBY${o.deliverByMinimum > 0 ? ` ${o.deliverByMinimum}` : ""}`,
  futureReleaseKeyword,
  // RFC 7293 §3.
  (o) => (o.rrvs ? "RRVS" : null),
];

/** The keyword lines the table gives for these options, in order. */
export function extensionKeywords(o: ResolvedOptions): string[] {
  const lines: string[] = [];
  for (const row of EXTENSION_KEYWORDS) {
    const line = row(o);
    if (line !== null) lines.push(line);
  }
  return lines;
}

/** The keywords change with time (FUTURERELEASE's latest date), so the reply cannot be cached. */
export function keywordsChangeWithTime(o: ResolvedOptions): boolean {
  return o.futureRelease !== null;
}

/**
 * RFC 9422: LIMITS RCPTMAX=… (the recipient limit) MAILMAX=… (the transactions per session:
 * the MAIL call limit, when there is one), so that clients split their work instead of failing.
 */
function limitsKeyword(o: ResolvedOptions): string | null {
  if (!o.limits) return null;
  const limits: string[] = [];
  if (o.maxRecipients > 0) limits.push(`RCPTMAX=${o.maxRecipients}`);
  const mailMax = mailCallLimit(o);
  if (mailMax !== null && mailMax > 0) limits.push(`MAILMAX=${mailMax}`);
  return limits.length > 0 ? `LIMITS ${limits.join(" ")}` : null;
}

/** How many MAIL commands a connection may send (`commandCallLimit`), or null for no limit. */
function mailCallLimit(o: ResolvedOptions): number | null {
  const limit = o.commandCallLimit;
  if (limit === null) return null;
  if (typeof limit === "number") return limit;
  return limit.MAIL ?? limit["*"] ?? DEFAULT_CALL_LIMIT;
}

/** RFC 4865 §3: "FUTURERELEASE" SP max-future-release-interval SP max-future-release-date-time. */
function futureReleaseKeyword(o: ResolvedOptions): string | null {
  const release = o.futureRelease;
  if (release === null) return null;
  const latest = release.now() + release.maxInterval * 1000;
  return `FUTURERELEASE ${release.maxInterval} ${formatDateTime(latest)}`;
}
