/** DATA's transparency on a stream: any split gives the same bytes, and unstuffing gives the body back. */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { DotStuffer } from "../src/dot-stuffing.js";
import { cut, decode, encode } from "./support.js";

function stuff(chunks: readonly Uint8Array[]): string {
  const stuffer = new DotStuffer();
  const parts = chunks.flatMap((chunk) => stuffer.push(chunk));
  parts.push(stuffer.end());
  return decode(Buffer.concat(parts));
}

/** What a receiving server does (RFC 5321 §4.5.2): lines up to `.`, a leading dot removed. */
function unstuff(wire: string): string {
  const lines = wire.split("\r\n");
  const end = lines.indexOf(".");
  return lines
    .slice(0, end)
    .map((line) => (line.startsWith(".") ? line.slice(1) : line))
    .map((line) => `${line}\r\n`)
    .join("");
}

describe("DotStuffer", () => {
  it("stuffs leading dots, completes bare LFs, ends with CRLF.CRLF", () => {
    expect(stuff([encode(".a\r\nb\n..c\r\n")])).toBe("..a\r\nb\r\n...c\r\n.\r\n");
    expect(stuff([encode("no newline")])).toBe("no newline\r\n.\r\n");
    expect(stuff([])).toBe(".\r\n");
    expect(stuff([encode("x\r"), encode("\n."), encode("y\r\n")])).toBe("x\r\n..y\r\n.\r\n");
  });

  it("a chunk with nothing to change passes through as the same object", () => {
    const stuffer = new DotStuffer();
    const chunk = encode("plain text\r\nmore\r\n");
    expect(stuffer.push(chunk)[0]).toBe(chunk);
  });
});

const bodyText = fc
  .array(fc.constantFrom("a", "b", ".", "\r\n", "\n", "\r", " ", "ü"), { maxLength: 80 })
  .map((parts) => parts.join(""));

test.prop([bodyText, fc.array(fc.nat(), { maxLength: 10 })], { numRuns: 500 })(
  "any split gives the same bytes; the receiver reads back the body with CRLF line endings",
  (text, points) => {
    const data = encode(text);
    const whole = stuff([data]);
    expect(
      stuff(
        cut(
          data,
          points.map((p) => p % (data.length + 1)),
        ),
      ),
    ).toBe(whole);
    const normalised = text.replace(/\r?\n/g, "\r\n");
    const expected =
      normalised === "" || normalised.endsWith("\r\n") ? normalised : `${normalised}\r\n`;
    expect(unstuff(whole)).toBe(expected);
    // No line of the wire form is a lone dot before the end.
    expect(whole.split("\r\n").indexOf(".")).toBe(whole.split("\r\n").length - 2);
  },
);
