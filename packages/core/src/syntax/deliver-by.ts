/**
 * RFC 2852 §4: `BY=` by-time ";" by-mode [by-trace], where by-time = ["-" / "+"] 1*9DIGIT
 * seconds, by-mode = "N" (notify when late) / "R" (return when late), by-trace = "T". With "R"
 * the time must be above zero (a message already late would be returned at once). Keywords are
 * case-insensitive (ABNF strings). Returns null for anything else.
 */
export interface DeliverBy {
  /** Seconds from now by which the message is to be delivered (negative: already overdue, "N" only). */
  readonly seconds: number;
  /** "R": return the message undelivered when late; "N": send a delayed DSN and go on. */
  readonly mode: "N" | "R";
  /** Trace requested: every hop reports a DSN (the "T" suffix). */
  readonly trace: boolean;
}

const BY_VALUE = /^([+-]?\d{1,9});([NnRr])([Tt]?)$/;

export function parseDeliverBy(value: string | null): DeliverBy | null {
  const m = value === null ? null : BY_VALUE.exec(value);
  if (m === null) return null;
  const seconds = Number(m[1]) || 0;
  const mode = m[2]?.toUpperCase() === "R" ? "R" : "N";
  if (mode === "R" && seconds <= 0) return null;
  return { seconds, mode, trace: m[3] !== "" };
}
