/**
 * A streaming MIME structure scanner: fed a message's bytes in chunks of any size, it finds the
 * attachments (name, type, Content-ID, decoded size, inline or not) without keeping the body.
 * The inbox indexes big messages with it, where a full parse would hold and decode everything.
 * Memory is bounded: one partial line (at most MAX_LINE bytes kept), one part's header block (at
 * most MAX_HEADERS bytes), and at most MAX_DEPTH nested multiparts and MAX_PARTS parts recorded.
 */

export interface ScannedPart {
  readonly fileName: string;
  readonly contentType: string;
  readonly contentId: string;
  /** Decoded size in bytes (base64 exactly, other encodings as sent). */
  readonly size: number;
  readonly disposition: "inline" | "attachment";
}

const MAX_LINE = 8 * 1024;
const MAX_HEADERS = 64 * 1024;
const MAX_DEPTH = 32;
const MAX_PARTS = 1000;
const LF = 0x0a;
const DASH = 0x2d;
const DECODER = new TextDecoder("latin1");

type State = "headers" | "body" | "skip";

interface Leaf {
  readonly part: Omit<ScannedPart, "size"> | null;
  readonly base64: boolean;
  size: number;
}

export class MimeScanner {
  #state: State = "headers";
  /** The open multiparts' boundaries, innermost last. */
  readonly #boundaries: string[] = [];
  #headerText = "";
  #leaf: Leaf | null = null;
  /** The start of a line not yet ended by LF (at most MAX_LINE bytes of it). */
  #partial: Uint8Array[] = [];
  #partialSize = 0;
  /** Bytes of the current line beyond what `#partial` keeps. */
  #overflow = 0;
  readonly #parts: ScannedPart[] = [];
  #done = false;

  push(chunk: Uint8Array): void {
    if (this.#done) throw new Error("the scanner has ended");
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      const end = lf === -1 ? chunk.length : lf + 1;
      this.#keep(chunk.subarray(start, end));
      if (lf === -1) break;
      this.#line();
      start = end;
    }
  }

  /** The attachments found; the message ended (a last line without LF counts). */
  end(): ScannedPart[] {
    if (!this.#done) {
      if (this.#partialSize > 0 || this.#overflow > 0) this.#line();
      if (this.#state === "headers" && this.#headerText !== "") this.#headersDone();
      this.#closeLeaf();
      this.#done = true;
    }
    return [...this.#parts];
  }

  #keep(bytes: Uint8Array): void {
    const room = MAX_LINE - this.#partialSize;
    if (room >= bytes.length) {
      this.#partial.push(bytes);
      this.#partialSize += bytes.length;
    } else {
      if (room > 0) {
        this.#partial.push(bytes.subarray(0, room));
        this.#partialSize += room;
      }
      this.#overflow += bytes.length - Math.max(room, 0);
    }
  }

  #takeLine(): { bytes: Uint8Array; length: number } {
    const length = this.#partialSize + this.#overflow;
    let bytes: Uint8Array;
    if (this.#partial.length === 1) bytes = this.#partial[0] as Uint8Array;
    else {
      bytes = new Uint8Array(this.#partialSize);
      let offset = 0;
      for (const piece of this.#partial) {
        bytes.set(piece, offset);
        offset += piece.length;
      }
    }
    this.#partial = [];
    this.#partialSize = 0;
    this.#overflow = 0;
    return { bytes, length };
  }

  #line(): void {
    const { bytes, length } = this.#takeLine();
    const dashes = bytes[0] === DASH && bytes[1] === DASH;
    if (this.#state !== "headers" && !dashes) {
      // The common case, most of a body: no text made, only the size counted.
      const leaf = this.#leaf;
      if (this.#state === "body" && leaf?.part)
        leaf.size += leaf.base64 ? base64Bytes(bytes) : length;
      return;
    }
    const line = DECODER.decode(bytes).replace(/\r?\n$/, "");
    if (this.#state === "headers") {
      if (line === "" || line === "\r") {
        this.#headersDone();
        return;
      }
      if (this.#headerText.length + line.length < MAX_HEADERS) this.#headerText += `${line}\n`;
      return;
    }
    if (this.#boundaries.length > 0) {
      const trimmed = line.replace(/[ \t\r]+$/, "");
      for (let i = this.#boundaries.length - 1; i >= 0; i--) {
        const boundary = this.#boundaries[i] as string;
        if (trimmed === `--${boundary}`) {
          this.#closeLeaf();
          this.#boundaries.length = i + 1;
          this.#state = "headers";
          this.#headerText = "";
          return;
        }
        if (trimmed === `--${boundary}--`) {
          this.#closeLeaf();
          this.#boundaries.length = i;
          this.#state = "skip";
          return;
        }
      }
    }
    const leaf = this.#leaf;
    if (this.#state === "body" && leaf?.part)
      leaf.size += leaf.base64 ? base64Bytes(bytes) : length;
  }

  #headersDone(): void {
    const headers = parseHeaders(this.#headerText);
    this.#headerText = "";
    const type = parseParams(headers.get("content-type") ?? "text/plain");
    const contentType = (type.value || "text/plain").toLowerCase();
    if (contentType.startsWith("multipart/") && type.params.boundary) {
      if (this.#boundaries.length < MAX_DEPTH) this.#boundaries.push(type.params.boundary);
      this.#state = "skip";
      return;
    }
    const disposition = parseParams(headers.get("content-disposition") ?? "");
    const fileName = disposition.params.filename ?? type.params.name ?? "";
    const kind = disposition.value.toLowerCase();
    const contentId = (headers.get("content-id") ?? "").trim().replace(/^<|>$/g, "");
    const isBody =
      kind !== "attachment" &&
      fileName === "" &&
      (contentType === "text/plain" || contentType === "text/html");
    this.#state = "body";
    this.#leaf = {
      part: isBody
        ? null
        : {
            fileName,
            contentType,
            contentId,
            disposition:
              kind === "attachment" || (kind !== "inline" && contentId === "")
                ? "attachment"
                : "inline",
          },
      base64: (headers.get("content-transfer-encoding") ?? "").trim().toLowerCase() === "base64",
      size: 0,
    };
  }

  #closeLeaf(): void {
    const leaf = this.#leaf;
    this.#leaf = null;
    if (!leaf?.part || this.#parts.length >= MAX_PARTS) return;
    // The CRLF before a boundary belongs to the boundary, not the part.
    const size = leaf.base64 ? leaf.size : Math.max(0, leaf.size - 2);
    this.#parts.push({ ...leaf.part, size });
  }
}

/** The bytes a base64 line decodes to (padding and whitespace not counted). */
function base64Bytes(line: Uint8Array): number {
  let n = 0;
  for (const c of line)
    if (
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x2b ||
      c === 0x2f
    )
      n++;
  return Math.floor((n * 3) / 4);
}

/** Unfolded header fields, names lowercased; the first of each name wins. */
function parseHeaders(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  const unfolded = text.replace(/\r?\n[ \t]+/g, " ");
  for (const line of unfolded.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!fields.has(name)) fields.set(name, line.slice(colon + 1).trim());
  }
  return fields;
}

/** `type/sub; a=1; b="two"` → value and parameters (RFC 2231 `name*=` and continuations joined, RFC 2047 words decoded). */
export function parseParams(header: string): { value: string; params: Record<string, string> } {
  const [value = "", ...rest] = splitParams(header);
  const params: Record<string, string> = {};
  const continued: Record<string, { index: number; text: string; encoded: boolean }[]> = {};
  for (const piece of rest) {
    const eq = piece.indexOf("=");
    if (eq <= 0) continue;
    let name = piece.slice(0, eq).trim().toLowerCase();
    let text = piece.slice(eq + 1).trim();
    if (text.startsWith('"') && text.endsWith('"') && text.length >= 2)
      text = text.slice(1, -1).replace(/\\(.)/g, "$1");
    const encoded = name.endsWith("*");
    if (encoded) name = name.slice(0, -1);
    const section = /^(.*)\*(\d+)$/.exec(name);
    if (section) {
      const base = section[1] as string;
      const list = continued[base] ?? [];
      list.push({ index: Number(section[2]), text, encoded });
      continued[base] = list;
    } else params[name] = encoded ? decode2231(text, true) : decode2047(text);
  }
  for (const [name, sections] of Object.entries(continued)) {
    sections.sort((a, b) => a.index - b.index);
    const first = sections[0];
    const joined = sections.map((s) => s.text).join("");
    params[name] = first?.encoded ? decode2231(joined, true) : decode2047(joined);
  }
  return { value: value.trim(), params };
}

function splitParams(header: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < header.length; i++) {
    const c = header[i] as string;
    if (c === "\\" && quoted && i + 1 < header.length) {
      current += c + header[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ";" && !quoted) {
      out.push(current);
      current = "";
    } else current += c;
  }
  out.push(current);
  return out;
}

/** `utf-8''na%C3%AFve.txt` → `naïve.txt`. */
function decode2231(text: string, withCharset: boolean): string {
  let body = text;
  let charset = "utf-8";
  if (withCharset) {
    const match = /^([^']*)'[^']*'(.*)$/.exec(text);
    if (match) {
      charset = match[1] || "utf-8";
      body = match[2] as string;
    }
  }
  try {
    const bytes = Uint8Array.from(
      body.replace(/%([0-9a-f]{2})|[\s\S]/gi, (m, hex: string | undefined) =>
        String.fromCharCode(hex ? parseInt(hex, 16) : m.charCodeAt(0) & 0xff),
      ),
      (c) => c.charCodeAt(0),
    );
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return body;
  }
}

/** RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?utf-8?Q?...?=`) decoded. */
function decode2047(text: string): string {
  return text
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(
      /=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g,
      (whole, charset: string, encoding: string, data: string) => {
        try {
          const bytes =
            encoding.toUpperCase() === "B"
              ? Uint8Array.from(atob(data), (c) => c.charCodeAt(0))
              : Uint8Array.from(
                  data
                    .replace(/_/g, " ")
                    .replace(/=([0-9a-f]{2})/gi, (_, hex: string) =>
                      String.fromCharCode(parseInt(hex, 16)),
                    ),
                  (c) => c.charCodeAt(0),
                );
          return new TextDecoder(charset.replace(/\*.*$/, "")).decode(bytes);
        } catch {
          return whole;
        }
      },
    );
}
