/**
 * DataReader on its own: the byte state machine that frames DATA bodies. Whatever the chunking,
 * the output bytes, the end position, the size and the error must be the same.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  DataReader,
  type DataReaderLimits,
  type LineEndingPolicy,
} from "../src/syntax/data-reader.js";
import { bin, concat, latin1 } from "./helpers/dialog.js";

const ALLOW: DataReaderLimits = { maxSize: 0, maxLineLength: 1001, lineEndings: "allow" };

interface Outcome {
  body: string;
  /** Bytes consumed in total (through the terminator when done). */
  used: number;
  done: boolean;
  size: number;
  error: string | null;
}

/** Feeds `input` in chunks of the given sizes (cycled) until done or out of input. */
function read(
  input: string | Uint8Array,
  limits: DataReaderLimits = ALLOW,
  sizes: readonly number[] = [],
): Outcome {
  const bytes = typeof input === "string" ? bin(input) : input;
  const reader = new DataReader(limits);
  const out: Uint8Array[] = [];
  let at = 0;
  let i = 0;
  while (at < bytes.length && !reader.done) {
    const size = sizes.length === 0 ? bytes.length : (sizes[i++ % sizes.length] as number);
    const chunk = bytes.slice(at, Math.min(bytes.length, at + size));
    const used = reader.feed(chunk, out);
    expect(used).toBeLessThanOrEqual(chunk.length);
    if (!reader.done) expect(used).toBe(chunk.length);
    at += used;
  }
  return {
    body: latin1(concat(out)),
    used: at,
    done: reader.done,
    size: reader.size,
    error: reader.error,
  };
}

describe("DataReader", () => {
  it("stops right after the terminator and reports how much it used", () => {
    const r = read("abc\r\n.\r\nNEXT COMMAND\r\n");
    expect(r).toEqual({ body: "abc\r\n", used: 8, done: true, size: 5, error: null });
  });

  it("an empty body", () => {
    expect(read(".\r\n")).toEqual({ body: "", used: 3, done: true, size: 0, error: null });
  });

  it("not done without the terminator", () => {
    const r = read("abc\r\n.\r");
    expect(r.done).toBe(false);
    expect(r.used).toBe(7);
  });

  it("a terminator split at every position", () => {
    const input = "x\r\n.\r\n";
    for (let cut = 1; cut < input.length; cut++) {
      const reader = new DataReader(ALLOW);
      const out: Uint8Array[] = [];
      expect(reader.feed(bin(input.slice(0, cut)), out)).toBe(cut);
      expect(reader.done).toBe(false);
      expect(reader.feed(bin(`${input.slice(cut)}REST`), out)).toBe(input.length - cut);
      expect(reader.done).toBe(true);
      expect(latin1(concat(out))).toBe("x\r\n");
    }
  });

  it("unstuffs one leading dot per CRLF line", () => {
    expect(read("..a\r\n.b\r\n...\r\n.\r\n").body).toBe(".a\r\nb\r\n..\r\n");
  });

  it("allow: bare CR and LF are body bytes and never start a line", () => {
    expect(read("a\n.\r\nb\r.\r\r\n.\r\n").body).toBe("a\n.\r\nb\r.\r\r\n");
  });

  it("normalize: bare CR / bare LF become CRLF", () => {
    const r = read("a\rb\nc\r\n.\r\n", { ...ALLOW, lineEndings: "normalize" });
    expect(r).toMatchObject({ body: "a\r\nb\r\nc\r\n", done: true, error: null });
  });

  it("normalize: a clean body passes unchanged", () => {
    expect(read("a\r\nb\r\n.\r\n", { ...ALLOW, lineEndings: "normalize" })).toMatchObject({
      body: "a\r\nb\r\n",
      done: true,
      error: null,
    });
  });

  it("reject: a clean body has no error", () => {
    expect(read("a\r\nb\r\n.\r\n", { ...ALLOW, lineEndings: "reject" })).toMatchObject({
      body: "a\r\nb\r\n",
      done: true,
      error: null,
    });
  });

  it("reject: a bare LF is an error, and reading still ends at the terminator", () => {
    expect(read("a\nb\r\n.\r\nX", { ...ALLOW, lineEndings: "reject" })).toMatchObject({
      done: true,
      used: 8,
      error: "bareLineEnding",
    });
  });

  it("line length: 1001 octets with CRLF pass, 1002 fail; counted before unstuffing", () => {
    const limits = ALLOW;
    expect(read(`${"a".repeat(999)}\r\n.\r\n`, limits).error).toBe(null);
    expect(read(`${"a".repeat(1000)}\r\n.\r\n`, limits).error).toBe("lineTooLong");
    expect(read(`.${"a".repeat(998)}\r\n.\r\n`, limits).error).toBe(null);
    expect(read(`..${"a".repeat(998)}\r\n.\r\n`, limits).error).toBe("lineTooLong");
  });

  it("size: raw octets with stuffing dots, without the terminator", () => {
    expect(read("..ab\r\n.\r\n").size).toBe(6);
    expect(read("ab\r\n.\r\n", { ...ALLOW, maxSize: 4 }).error).toBe(null);
    expect(read("abc\r\n.\r\n", { ...ALLOW, maxSize: 4 }).error).toBe("tooMuchData");
  });

  it("no output once an error is set", () => {
    const r = read(`${"a".repeat(1200)}\r\nafter\r\n.\r\n`);
    expect(r.error).toBe("lineTooLong");
    expect(r.body).not.toContain("after");
  });

  it("outputs views into the chunk, not copies", () => {
    const chunk = bin("hello\r\n..world\r\n.\r\n");
    const out: Uint8Array[] = [];
    new DataReader(ALLOW).feed(chunk, out);
    expect(out.length).toBeGreaterThan(0);
    for (const view of out) expect(view.buffer).toBe(chunk.buffer);
  });

  it("zero limits mean no limit", () => {
    const r = read(`${"a".repeat(5000)}\r\n.\r\n`, {
      maxSize: 0,
      maxLineLength: 0,
      lineEndings: "allow",
    });
    expect(r.error).toBe(null);
  });
});

const policyArb = fc.constantFrom<LineEndingPolicy>("allow", "normalize", "reject");
/** Bodies built from the bytes that matter to framing. */
const bodyArb = fc
  .array(fc.constantFrom("a", ".", "\r", "\n", "\r\n", ".\r\n", "\r\n.", "..", "x\r\n"), {
    maxLength: 40,
  })
  .map((parts) => parts.join(""));
const sizesArb = fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 });

describe("DataReader properties", () => {
  test.prop([
    bodyArb,
    policyArb,
    sizesArb,
    fc.integer({ min: 0, max: 40 }),
    fc.integer({ min: 0, max: 12 }),
  ])(
    "the outcome does not depend on chunking",
    (body, lineEndings, sizes, maxSize, maxLineLength) => {
      const limits = { maxSize, maxLineLength, lineEndings };
      const input = `${body}\r\n.\r\nAFTER`;
      const whole = read(input, limits);
      const chunked = read(input, limits, sizes);
      // After an error the body is to be discarded; how much of it was emitted first may vary.
      if (whole.error !== null) whole.body = chunked.body = "";
      expect(chunked).toEqual(whole);
    },
  );

  test.prop([bodyArb, policyArb])(
    "always finds the first CRLF . CRLF (with a CRLF before the body)",
    (body, lineEndings) => {
      const input = `\r\n${body}\r\n.\r\n`;
      const first = input.indexOf("\r\n.\r\n");
      const r = read(input, { maxSize: 0, maxLineLength: 0, lineEndings });
      expect(r.done).toBe(true);
      expect(r.used).toBe(first + 5);
    },
  );
});
