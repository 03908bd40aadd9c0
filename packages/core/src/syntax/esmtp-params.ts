// MAIL/RCPT parameter lists (RFC 5321 4.1.2 Mail-parameters / Rcpt-parameters) and RFC 3461
// xtext, the encoding DSN's ENVID and ORCPT values use.

export interface EsmtpParam {
  /** esmtp-keyword, upper-cased. */
  keyword: string;
  /** esmtp-value exactly as sent (DSN ENVID/ORCPT are case-sensitive), or null when absent. */
  value: string | null;
}

/**
 * Parse `esmtp-param *(SP esmtp-param)`, where esmtp-param = esmtp-keyword ["=" esmtp-value].
 * Like aiosmtpd's _getparams, one bad parameter makes the whole list a syntax error (null).
 * Keywords are upper-cased; values are kept as sent, where aiosmtpd upper-cases the whole string.
 */
export function parseEsmtpParams(text: string): EsmtpParam[] | null {
  const params: EsmtpParam[] = [];
  let i = 0;
  for (;;) {
    while (i < text.length && isWsp(text.charCodeAt(i))) i++;
    if (i === text.length) return params;
    const start = i;
    while (i < text.length && !isWsp(text.charCodeAt(i))) i++;
    const param = parseParam(text.slice(start, i));
    if (param === null) return null;
    params.push(param);
  }
}

function parseParam(token: string): EsmtpParam | null {
  const eq = token.indexOf("=");
  const keyword = eq < 0 ? token : token.slice(0, eq);
  if (!isKeyword(keyword)) return null;
  if (eq < 0) return { keyword: keyword.toUpperCase(), value: null };
  const value = token.slice(eq + 1);
  return isValue(value) ? { keyword: keyword.toUpperCase(), value } : null;
}

/** esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
function isKeyword(keyword: string): boolean {
  if (keyword === "") return false;
  for (let i = 0; i < keyword.length; i++) {
    const c = keyword.charCodeAt(i);
    if (!isAlphaDigit(c) && (c !== 0x2d || i === 0)) return false;
  }
  return true;
}

/**
 * esmtp-value = 1*(%d33-60 / %d62-126), widened by RFC 6531 to UTF-8 (checked later by whoever
 * knows whether SMTPUTF8 applies). No "=" (aiosmtpd would take "A=b=c" as A with "b=c"), no
 * controls, no Unicode spaces that would otherwise hide a second parameter inside this one.
 */
function isValue(value: string): boolean {
  if (value === "") return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80 ? c <= 0x20 || c === 0x3d || c === 0x7f : c <= 0x9f || isUnicodeSpace(c)) {
      return false;
    }
  }
  return true;
}

function isAlphaDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function isUnicodeSpace(c: number): boolean {
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/**
 * RFC 3461 4: xtext = *( xchar / hexchar ), xchar = "!".."~" except "+" and "=",
 * hexchar = "+" 2HEXDIG. The decoded octets are read as UTF-8. Returns null for anything else, and
 * for a decoded control character, so "ab+0D+0Acd" cannot smuggle a line break into a DSN.
 * Lower-case hex digits are accepted although RFC 3461 only lists upper case.
 */
export function decodeXtext(value: string): string | null {
  const bytes = new Uint8Array(value.length);
  let length = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    let byte: number;
    if (c === 0x2b) {
      const high = hexValue(value.charCodeAt(i + 1));
      const low = hexValue(value.charCodeAt(i + 2));
      if (high < 0 || low < 0) return null;
      byte = (high << 4) | low;
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e && c !== 0x3d) {
      byte = c;
    } else {
      return null;
    }
    if (byte < 0x20 || byte === 0x7f) return null;
    bytes[length++] = byte;
  }
  const decoded = decodeUtf8(bytes.subarray(0, length));
  if (decoded === null) return null;
  // Multi-byte sequences can still decode to C1 controls (U+0080..U+009F).
  for (let i = 0; i < decoded.length; i++) {
    const c = decoded.charCodeAt(i);
    if (c >= 0x80 && c <= 0x9f) return null;
  }
  return decoded;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

// ignoreBOM keeps a leading U+FEFF instead of silently dropping it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}
