/**
 * The streaming byte transforms against simple whole-message reference implementations (written
 * after Python's `email` feed parser, aiosmtpd's Proxy and `str.replace`), for any chunking.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { HeaderInserter, insertHeaders } from "../src/header-insert.js";
import { FileWriter } from "../src/mailbox.js";
import { PeerInserter } from "../src/peer-inserter.js";
import { cut, decode, encode } from "./support.js";

const FIELDS = [
  ["X-Peer", "('127.0.0.1', 5)"],
  ["X-MailFrom", "a@x"],
] as const;

/** Python's `bytes.splitlines(keepends=True)` on a latin-1 string. */
function splitKeepEnds(text: string): string[] {
  return text.match(/[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$/g) ?? [];
}

const HEADER_RE = /^(From |[\x21-\x39\x3b-\x7e]*:|[\t ])/;

/** Reference: where Python's compat32 feed parser ends the headers, then the generator's layout. */
function referenceInsert(text: string): string {
  const lines = splitKeepEnds(text);
  let ending: string | null = null;
  let out = "";
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!HEADER_RE.test(line)) break;
    if (line.startsWith("From ")) continue; // Python's "unix from" (or a misplaced one): dropped
    if (ending === null)
      ending = /\r\n$/.test(line)
        ? "\r\n"
        : /\n$/.test(line)
          ? "\n"
          : /\r$/.test(line)
            ? "\r"
            : null;
    out += line;
  }
  const rest = lines.slice(i).join("");
  if (i === lines.length) {
    // Only headers: a last line without an ending gets one.
    const last = lines.at(-1);
    const eol = ending ?? "\r\n";
    if (last !== undefined && !last.startsWith("From ") && !/[\r\n]$/.test(last)) out += eol;
    return `${out}${fields(eol)}${eol}`;
  }
  const first = lines[i] as string;
  if (/^[\r\n]/.test(first)) {
    const eol = ending ?? (first.startsWith("\n") ? "\n" : "\r\n");
    return `${out}${fields(eol)}${rest}`;
  }
  const eol = ending ?? "\r\n";
  return `${out}${fields(eol)}${eol}${rest}`;
}

function fields(eol: string): string {
  return FIELDS.map(([k, v]) => `${k}: ${v}${eol}`).join("");
}

/** aiosmtpd's Proxy.handle_DATA insertion, line for line. */
function referencePeer(text: string, host: string): string {
  const lines = splitKeepEnds(text);
  let index = 0;
  let ending = "\r\n";
  for (const [i, line] of lines.entries()) {
    index = i;
    if (/^(\r\n|\r|\n)/.test(line)) {
      ending = (/^(\r\n|\r|\n)/.exec(line) as RegExpExecArray)[1] as string;
      break;
    }
  }
  lines.splice(index, 0, `X-Peer: ${host}${ending}`);
  return lines.join("");
}

const latin1 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
const fromLatin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

function runStream(
  transform: { push(c: Uint8Array): Uint8Array[]; end(): Uint8Array[] },
  chunks: Uint8Array[],
): string {
  let out = "";
  for (const chunk of chunks) for (const part of transform.push(chunk)) out += latin1(part);
  for (const part of transform.end()) out += latin1(part);
  return out;
}

/** Messages made of header-ish, body-ish and empty lines with every kind of line ending. */
const message = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        "Subject: hi",
        "From: a@b",
        "From a@b",
        "From",
        " folded",
        "\tfolded",
        "",
        "body text",
        ":empty name",
        `X-Long-Name-${"x".repeat(40)}: v`,
        "no colon here",
        "Fro",
        ".",
      ),
      fc.constantFrom("\r\n", "\n", "\r", ""),
    ),
    { maxLength: 8 },
  )
  .map((lines) => lines.map(([text, eol]) => text + eol).join(""));

const cutsFor = (text: string) =>
  fc.array(fc.integer({ min: 1, max: Math.max(1, text.length) }), { maxLength: 6 });

describe("HeaderInserter (aiosmtpd Message/Mailbox fields)", () => {
  test.prop([message.chain((text) => fc.tuple(fc.constant(text), cutsFor(text)))], {
    numRuns: 500,
  })("streamed with any chunking = the reference", ([text, cuts]) => {
    const bytes = fromLatin1(text);
    const streamed = runStream(new HeaderInserter(FIELDS), cut(bytes, cuts));
    expect(streamed).toBe(referenceInsert(text));
    expect(latin1(insertHeaders(bytes, FIELDS))).toBe(referenceInsert(text));
  });

  it("typical cases", () => {
    const f = (text: string) => decode(insertHeaders(encode(text), FIELDS));
    expect(f("Subject: x\r\n\r\nbody\r\n")).toBe(
      "Subject: x\r\nX-Peer: ('127.0.0.1', 5)\r\nX-MailFrom: a@x\r\n\r\nbody\r\n",
    );
    expect(f("Subject: x\nbody\n")).toBe(
      "Subject: x\nX-Peer: ('127.0.0.1', 5)\nX-MailFrom: a@x\n\nbody\n",
    );
    expect(f("")).toBe("X-Peer: ('127.0.0.1', 5)\r\nX-MailFrom: a@x\r\n\r\n");
    expect(f("Subject: x")).toBe(
      "Subject: x\r\nX-Peer: ('127.0.0.1', 5)\r\nX-MailFrom: a@x\r\n\r\n",
    );
  });

  it("holds back only the start of a line, not a whole long header", () => {
    const inserter = new HeaderInserter(FIELDS);
    const out = inserter.push(encode(`Subject: ${"x".repeat(100_000)}`));
    expect(out.reduce((n, part) => n + part.length, 0)).toBe(100_009);
  });
});

describe("PeerInserter (aiosmtpd Proxy's X-Peer)", () => {
  test.prop([message.chain((text) => fc.tuple(fc.constant(text), cutsFor(text)))], {
    numRuns: 500,
  })("streamed with any chunking = aiosmtpd's algorithm", ([text, cuts]) => {
    const streamed = runStream(new PeerInserter("10.0.0.1"), cut(fromLatin1(text), cuts));
    expect(streamed).toBe(referencePeer(text, "10.0.0.1"));
  });

  it("aiosmtpd's TestProxy message", () => {
    const source =
      "From: Anne Person <anne@example.com>\r\nTo: Bart Person <bart@example.com>\r\nSubject: A test\r\n\r\nTesting\r\n";
    expect(runStream(new PeerInserter("127.0.0.1"), [encode(source)])).toBe(
      "From: Anne Person <anne@example.com>\r\nTo: Bart Person <bart@example.com>\r\nSubject: A test\r\nX-Peer: 127.0.0.1\r\n\r\nTesting\r\n",
    );
  });
});

describe("Mailbox's FileWriter (buffered writes, CRLF → LF in place)", () => {
  async function write(text: string, cuts: number[], lf: boolean, bufferSize: number) {
    let out = "";
    const writer = new FileWriter(
      async (data) => {
        out += latin1(data);
      },
      lf,
      bufferSize,
    );
    for (const chunk of cut(fromLatin1(text), cuts)) await writer.write(chunk);
    await writer.end();
    return { out, size: writer.size };
  }

  test.prop(
    [
      fc
        .string({ unit: fc.constantFrom("a", "\r", "\n", "\r\n", "b") })
        .chain((text) =>
          fc.tuple(fc.constant(text), cutsFor(text), fc.integer({ min: 1, max: 9 })),
        ),
    ],
    { numRuns: 500 },
  )("= replaceAll(CRLF, LF) for any chunking and buffer size", async ([text, cuts, size]) => {
    const lf = await write(text, cuts, true, size);
    expect(lf.out).toBe(text.replaceAll("\r\n", "\n"));
    expect(lf.size).toBe(lf.out.length);
    expect((await write(text, cuts, false, size)).out).toBe(text);
  });

  it("large buffer, many lines", async () => {
    const text = "line\r\n".repeat(100_000);
    expect((await write(text, [3, 70_000, 70_001, 350_000], true, 256 * 1024)).out).toBe(
      "line\n".repeat(100_000),
    );
  });
});
