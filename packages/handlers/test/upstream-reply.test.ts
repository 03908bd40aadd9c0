/** The Proxy's reply reader: framing, limits, and any split of the input giving the same replies. */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ReplyReader, UpstreamProtocolError } from "../src/upstream-reply.js";
import { cut, encode } from "./support.js";

/** Every reply in `chunks`, or the error that ended the reading. */
function readAll(chunks: readonly Uint8Array[], limits = {}) {
  const reader = new ReplyReader(limits);
  const replies: unknown[] = [];
  try {
    for (const chunk of chunks) replies.push(...reader.push(chunk));
  } catch (error) {
    if (!(error instanceof UpstreamProtocolError)) throw error;
    return { replies, error: error.message };
  }
  return { replies, error: null };
}

describe("ReplyReader", () => {
  it("one-line, multi-line, enhanced codes, LF-only endings", () => {
    const input = encode(
      "220 mx.example ESMTP\r\n250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n550 5.1.1 no such user\n250\r\n",
    );
    expect(readAll([input])).toEqual({
      replies: [
        { code: 220, enhanced: undefined, lines: ["mx.example ESMTP"] },
        { code: 250, enhanced: undefined, lines: ["mx.example", "PIPELINING", "SIZE 1000"] },
        { code: 550, enhanced: "5.1.1", lines: ["no such user"] },
        { code: 250, enhanced: undefined, lines: [""] },
      ],
      error: null,
    });
  });

  it("a partial reply waits for its end", () => {
    const reader = new ReplyReader();
    expect(reader.push(encode("250-first\r\n250 la"))).toEqual([]);
    expect(reader.pending).toBe(true);
    expect(reader.push(encode("st\r\n"))).toEqual([
      { code: 250, enhanced: undefined, lines: ["first", "last"] },
    ]);
    expect(reader.pending).toBe(false);
  });

  it("limits: line length (a line never ended counts too) and lines per reply", () => {
    expect(readAll([encode(`250 ${"x".repeat(100)}\r\n`)], { maxLineLength: 64 }).error).toBe(
      "Upstream protocol error: reply line too long",
    );
    const endless = Array.from({ length: 10 }, () => encode("x".repeat(20)));
    expect(readAll([encode("220 "), ...endless], { maxLineLength: 100 }).error).toBe(
      "Upstream protocol error: reply line too long",
    );
    expect(readAll([encode("250-x\r\n".repeat(10))], { maxLines: 5 }).error).toBe(
      "Upstream protocol error: too many reply lines",
    );
  });

  it("not a reply, mixed codes: protocol errors, and the reader stays failed", () => {
    expect(readAll([encode("hello\r\n")]).error).toMatch(/not a reply line/);
    expect(readAll([encode("250-a\r\n550 b\r\n")]).error).toBe(
      "Upstream protocol error: reply lines with different codes",
    );
    const reader = new ReplyReader();
    expect(() => reader.push(encode("nope\r\n"))).toThrow(UpstreamProtocolError);
    expect(() => reader.push(encode("250 OK\r\n"))).toThrow(UpstreamProtocolError);
  });
});

const replyLine = fc
  .tuple(
    fc.constantFrom(220, 250, 354, 421, 450, 550, 554),
    fc.array(fc.stringMatching(/^[ -~]{0,30}$/), { minLength: 1, maxLength: 4 }),
    fc.boolean(),
  )
  .map(([code, lines, crlf]) =>
    lines
      .map(
        (line, i) => `${code}${i === lines.length - 1 ? " " : "-"}${line}${crlf ? "\r\n" : "\n"}`,
      )
      .join(""),
  );

test.prop([fc.array(replyLine, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 })])(
  "any split of valid replies gives the same replies",
  (replies, points) => {
    const data = encode(replies.join(""));
    const whole = readAll([data]);
    expect(whole.error).toBeNull();
    expect(whole.replies).toHaveLength(replies.length);
    expect(
      readAll(
        cut(
          data,
          points.map((p) => p % (data.length + 1)),
        ),
      ),
    ).toEqual(whole);
  },
);

test.prop([fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 })])(
  "random bytes: replies or a protocol error, never another exception; splits agree",
  (data, points) => {
    const limits = { maxLineLength: 64, maxLines: 4 };
    const whole = readAll([data], limits);
    const split = readAll(
      cut(
        data,
        points.map((p) => p % (data.length + 1)),
      ),
      limits,
    );
    expect(split).toEqual(whole);
  },
);
