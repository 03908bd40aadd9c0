/**
 * RFC 4865 §3: the MAIL parameters `HOLDFOR=` seconds (1*9DIGIT) and `HOLDUNTIL=` an RFC 3339
 * date-time: the client asks the server to keep the message until then. Grammar only; the limits
 * (the advertised maximum interval) are the engine's.
 */
import { parseDateTime } from "./date-time.js";

const HOLD_FOR = /^\d{1,9}$/;

/** `HOLDFOR=` in seconds, or null when malformed. */
export function parseHoldFor(value: string | null): number | null {
  return value !== null && HOLD_FOR.test(value) ? Number(value) : null;
}

/** `HOLDUNTIL=` in milliseconds since the epoch, or null when malformed. */
export function parseHoldUntil(value: string | null): number | null {
  return value === null ? null : parseDateTime(value);
}
