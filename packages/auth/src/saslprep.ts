/**
 * SASLprep (RFC 4013, the "SASLprep" profile of stringprep, RFC 3454) for user names and passwords.
 * Mapping (B.1 to nothing, C.1.2 to SPACE), NFKC, the prohibited tables C.1.2–C.9 and the bidi
 * rule. Unassigned code points are allowed (a "query" in RFC 3454 terms). The bidi rule's table D.2
 * (left-to-right) is approximated by Unicode letters and spacing marks that are not in D.1.
 */

/** RFC 3454 C.1.2: non-ASCII space characters, mapped to SPACE. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
/** RFC 3454 B.1: commonly mapped to nothing. */
const MAPPED_TO_NOTHING: readonly (readonly [number, number])[] = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

const PROHIBITED: readonly (readonly [number, number])[] = [
  // C.1.2 (after mapping only 200B could remain; kept for completeness)
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  // C.2.1 ASCII control
  [0x0000, 0x001f],
  [0x007f, 0x007f],
  // C.2.2 non-ASCII control
  [0x0080, 0x009f],
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x180e, 0x180e],
  [0x200c, 0x200d],
  [0x2028, 0x2029],
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0xfeff, 0xfeff],
  [0xfff9, 0xfffc],
  [0x1d173, 0x1d17a],
  // C.3 private use
  [0xe000, 0xf8ff],
  [0xf0000, 0xffffd],
  [0x100000, 0x10fffd],
  // C.4 non-character code points
  [0xfdd0, 0xfdef],
  // C.5 surrogates
  [0xd800, 0xdfff],
  // C.6 inappropriate for plain text
  [0xfff9, 0xfffd],
  // C.7 inappropriate for canonical representation
  [0x2ff0, 0x2ffb],
  // C.8 change display properties / deprecated
  [0x0340, 0x0341],
  [0x200e, 0x200f],
  [0x202a, 0x202e],
  // C.9 tagging characters
  [0xe0001, 0xe0001],
  [0xe0020, 0xe007f],
];

/** RFC 3454 D.1: characters with bidi property R or AL. */
const RAND_AL: readonly (readonly [number, number])[] = [
  [0x05be, 0x05be],
  [0x05c0, 0x05c0],
  [0x05c3, 0x05c3],
  [0x05d0, 0x05ea],
  [0x05f0, 0x05f4],
  [0x061b, 0x061b],
  [0x061f, 0x061f],
  [0x0621, 0x063a],
  [0x0640, 0x064a],
  [0x066d, 0x066f],
  [0x0671, 0x06d5],
  [0x06dd, 0x06dd],
  [0x06e5, 0x06e6],
  [0x06fa, 0x06fe],
  [0x0700, 0x070d],
  [0x0710, 0x0710],
  [0x0712, 0x072c],
  [0x0780, 0x07a5],
  [0x07b1, 0x07b1],
  [0x200f, 0x200f],
  [0xfb1d, 0xfb1d],
  [0xfb1f, 0xfb28],
  [0xfb2a, 0xfb36],
  [0xfb38, 0xfb3c],
  [0xfb3e, 0xfb3e],
  [0xfb40, 0xfb41],
  [0xfb43, 0xfb44],
  [0xfb46, 0xfbb1],
  [0xfbd3, 0xfd3d],
  [0xfd50, 0xfd8f],
  [0xfd92, 0xfdc7],
  [0xfdf0, 0xfdfc],
  [0xfe70, 0xfe74],
  [0xfe76, 0xfefc],
];

const LETTER = /[\p{L}\p{Mc}]/u;

function inRanges(code: number, ranges: readonly (readonly [number, number])[]): boolean {
  for (const [low, high] of ranges) if (code >= low && code <= high) return true;
  return false;
}

function prohibited(code: number): boolean {
  if ((code & 0xfffe) === 0xfffe) return true; // C.4: U+xFFFE and U+xFFFF in every plane
  return inRanges(code, PROHIBITED);
}

/** Applies SASLprep; `null` when the string contains prohibited characters or breaks the bidi rule. */
export function saslPrep(input: string): string | null {
  // Lone surrogates cannot survive NFKC meaningfully; reject them first (C.5).
  for (let i = 0; i < input.length; i++) {
    const unit = input.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = input.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return null;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return null;
  }
  let mapped = "";
  for (const char of input.replace(NON_ASCII_SPACE, " ")) {
    if (!inRanges(char.codePointAt(0) as number, MAPPED_TO_NOTHING)) mapped += char;
  }
  const normalized = mapped.normalize("NFKC");
  const codes = Array.from(normalized, (char) => char.codePointAt(0) as number);
  let hasRandAL = false;
  let hasL = false;
  for (const code of codes) {
    if (prohibited(code)) return null;
    if (inRanges(code, RAND_AL)) hasRandAL = true;
    else if (LETTER.test(String.fromCodePoint(code))) hasL = true;
  }
  if (hasRandAL) {
    if (hasL) return null;
    const first = codes[0] as number;
    const last = codes[codes.length - 1] as number;
    if (!inRanges(first, RAND_AL) || !inRanges(last, RAND_AL)) return null;
  }
  return normalized;
}
