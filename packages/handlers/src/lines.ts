/** Python's `bytes.splitlines()` / `str.splitlines()`, which aiosmtpd's Debugging handler uses. */

const CR = 0x0d;
const LF = 0x0a;

/** `bytes.splitlines()`: splits at CRLF, CR and LF; no trailing empty item. */
export function splitByteLines(data: Uint8Array): Uint8Array[] {
  const lines: Uint8Array[] = [];
  let start = 0;
  let i = 0;
  while (i < data.length) {
    const byte = data[i];
    if (byte === CR || byte === LF) {
      lines.push(data.subarray(start, i));
      i += byte === CR && data[i + 1] === LF ? 2 : 1;
      start = i;
    } else {
      i++;
    }
  }
  if (start < data.length) lines.push(data.subarray(start));
  return lines;
}

/**
 * `str.splitlines()`: CRLF, CR, LF, VT, FF, FS, GS, RS, NEL, LINE SEPARATOR and PARAGRAPH
 * SEPARATOR end a line; no trailing empty item.
 */
export function splitTextLines(text: string): string[] {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: exactly the separators of str.splitlines()
  const lines = text.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}
