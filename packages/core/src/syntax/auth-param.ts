/**
 * RFC 4954 §5: the MAIL parameter `AUTH=` xtext, whose decoded form is the mailbox that submitted
 * the message (an RFC 5321 Mailbox) or `<>` for an unknown submitter. Grammar only: whether the
 * value may be believed (the session is authenticated) is the engine's decision.
 */
import { decodeXtext } from "./esmtp-params.js";

export interface AuthParam {
  /** The decoded mailbox; null for `AUTH=<>`. */
  readonly submitter: string | null;
}

/** `Local-part "@" Domain` (RFC 5321 §4.1.2), kept well below the command line limit. */
const MAX_MAILBOX = 320;
// atext (RFC 5322 §3.2.3), and with SMTPUTF8 any non-ASCII code point (RFC 6531 §3.3).
const ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~";
const DOT_STRING = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*$`);
const DOT_STRING_UTF8 = new RegExp(
  `^[${ATEXT}\\u0080-\\u{10ffff}]+(?:\\.[${ATEXT}\\u0080-\\u{10ffff}]+)*$`,
  "u",
);
// Quoted-string: qtextSMTP or a backslash pair, printable ASCII only.
const QUOTED = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const LABEL_UTF8 =
  /^[A-Za-z0-9\u0080-\u{10ffff}](?:[A-Za-z0-9\u0080-\u{10ffff}-]*[A-Za-z0-9\u0080-\u{10ffff}])?$/u;
// address-literal: "[" 1*dcontent "]", dcontent = %d33-90 / %d94-126.
const ADDRESS_LITERAL = /^\[[\x21-\x5a\x5e-\x7e]+\]$/;

/** Returns null when the value is not xtext, or does not decode to a mailbox or `<>`. */
export function parseAuthParam(value: string | null, smtpUtf8: boolean): AuthParam | null {
  if (value === null) return null;
  const decoded = decodeXtext(value);
  if (decoded === null) return null;
  if (decoded === "<>") return { submitter: null };
  return isMailbox(decoded, smtpUtf8) ? { submitter: decoded } : null;
}

/** RFC 5321 Mailbox, with RFC 6531's UTF-8 local parts and labels when `smtpUtf8`. */
export function isMailbox(text: string, smtpUtf8: boolean): boolean {
  if (text.length > MAX_MAILBOX) return false;
  const at = text.lastIndexOf("@");
  if (at <= 0 || at === text.length - 1) return false;
  const local = text.slice(0, at);
  const domain = text.slice(at + 1);
  const localOk = (smtpUtf8 ? DOT_STRING_UTF8 : DOT_STRING).test(local) || QUOTED.test(local);
  if (!localOk) return false;
  if (ADDRESS_LITERAL.test(domain)) return true;
  const label = smtpUtf8 ? LABEL_UTF8 : LABEL;
  return domain.split(".").every((part) => label.test(part));
}
