/**
 * Replies: one value type, one formatter, one parser (src/reply.ts), and the engine's reply
 * catalogue (src/replies.ts): aiosmtpd's texts, enhanced codes of the right class.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { REPLIES } from "../src/engine/replies.js";
import { defaultEnhancedCode, formatReply, parseReply, reply, toReply } from "../src/reply.js";

describe("reply()", () => {
  it("builds a reply from one text or several lines", () => {
    expect(reply(250, "OK")).toEqual({ code: 250, enhanced: undefined, lines: ["OK"] });
    expect(reply(250, ["a", "b"], "2.0.0")).toEqual({
      code: 250,
      enhanced: "2.0.0",
      lines: ["a", "b"],
    });
  });

  it("copies the lines it is given", () => {
    const lines = ["a"];
    const r = reply(250, lines);
    lines.push("b");
    expect(r.lines).toEqual(["a"]);
  });
});

describe("parseReply()", () => {
  it.each([
    ["250 OK", { code: 250, enhanced: undefined, lines: ["OK"] }],
    ["550 5.1.1 No such user", { code: 550, enhanced: "5.1.1", lines: ["No such user"] }],
    ["250", { code: 250, enhanced: undefined, lines: [""] }],
    ["334 ", { code: 334, enhanced: undefined, lines: [""] }],
    ["250 OK\r\n", { code: 250, enhanced: undefined, lines: ["OK"] }],
    ["250-first\r\n250 last", { code: 250, enhanced: undefined, lines: ["first", "last"] }],
    ["250-first\n250 last", { code: 250, enhanced: undefined, lines: ["first", "last"] }],
    ["250-2.0.0 a\r\n250 2.0.0 b", { code: 250, enhanced: "2.0.0", lines: ["a", "b"] }],
    [
      "421 4.7.0 NOOP sent too many times",
      { code: 421, enhanced: "4.7.0", lines: ["NOOP sent too many times"] },
    ],
    [
      "538 5.7.11 Encryption required",
      { code: 538, enhanced: "5.7.11", lines: ["Encryption required"] },
    ],
  ])("%j", (text, expected) => {
    expect(parseReply(text)).toEqual(expected);
  });

  it("an enhanced code of another class is text", () => {
    expect(parseReply("250 5.1.1 odd")).toEqual({
      code: 250,
      enhanced: undefined,
      lines: ["5.1.1 odd"],
    });
  });

  it("a version-like word is not an enhanced code", () => {
    expect(parseReply("220 2.0 ready")).toEqual({
      code: 220,
      enhanced: undefined,
      lines: ["2.0 ready"],
    });
  });

  it.each(["OK", "", "25 OK", "2500 OK", "199 x", "600 x", "250-a\r\n251 b", "250\tOK", "abc 250"])(
    "%j is not a reply",
    (text) => {
      expect(parseReply(text)).toBe(null);
    },
  );
});

describe("toReply()", () => {
  it("passes Reply values through and parses strings", () => {
    const value = reply(250, "x");
    expect(toReply(value)).toBe(value);
    expect(toReply("451 4.3.0 later")).toEqual({ code: 451, enhanced: "4.3.0", lines: ["later"] });
  });

  it("throws a TypeError for a malformed string", () => {
    expect(() => toReply("OK")).toThrow(TypeError);
  });
});

describe("formatReply()", () => {
  it("single and multi-line replies", () => {
    expect(formatReply(reply(250, "OK"))).toBe("250 OK\r\n");
    expect(formatReply(reply(250, ["a", "b", "c"]))).toBe("250-a\r\n250-b\r\n250 c\r\n");
  });

  it("the enhanced code, when the reply has one, goes on every line (RFC 2034)", () => {
    expect(formatReply(reply(250, ["a", "b"], "2.0.0"))).toBe("250-2.0.0 a\r\n250 2.0.0 b\r\n");
    expect(formatReply(reply(250, "a"))).toBe("250 a\r\n");
  });

  it("a reply with no lines is one empty line", () => {
    expect(formatReply({ code: 334, lines: [] })).toBe("334 \r\n");
  });

  it("CR and LF inside a line cannot inject another reply", () => {
    expect(formatReply(reply(250, "a\r\n250 injected"))).toBe("250 a 250 injected\r\n");
    expect(formatReply(reply(250, "a\rb\nc"))).toBe("250 a b c\r\n");
  });
});

describe("defaultEnhancedCode()", () => {
  it.each([
    [250, "mail", "2.1.0"],
    [250, "rcpt", "2.1.5"],
    [250, "data", "2.0.0"],
    [250, "other", "2.0.0"],
    [354, "data", ""],
    [451, "mail", "4.1.0"],
    [550, "rcpt", "5.1.1"],
    [552, "data", "5.3.4"],
    [421, "other", "4.4.2"],
    [554, "data", "5.0.0"],
    [500, "other", "5.0.0"],
  ] as const)("%i in %s context → %j", (code, context, expected) => {
    expect(defaultEnhancedCode(code, context)).toBe(expected);
  });
});

describe("properties", () => {
  const textArb = fc.string({ maxLength: 30 }).map((t) => t.replace(/[\r\n]/g, ""));
  const replyArb = fc.record({
    code: fc.integer({ min: 200, max: 599 }),
    lines: fc.array(textArb, { minLength: 1, maxLength: 4 }),
    detail: fc.option(
      fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999 })),
      { nil: undefined },
    ),
  });

  test.prop([replyArb])(
    "format then parse gives the reply back (enhanced on every line)",
    ({ code, lines, detail }) => {
      const cls = String(code)[0];
      // A line's own text must not itself start with something that reads as an enhanced code.
      const safe = lines.map((line) => `x${line}`);
      const enhanced = detail && cls !== "3" ? `${cls}.${detail[0]}.${detail[1]}` : undefined;
      const value = { code, enhanced, lines: safe };
      expect(parseReply(formatReply(value))).toEqual(value);
    },
  );

  test.prop([fc.string({ maxLength: 60 })])(
    "formatting never produces more lines than the reply has",
    (text) => {
      const out = formatReply(reply(250, text));
      expect(out.split("\r\n")).toHaveLength(2);
      expect(out.endsWith("\r\n")).toBe(true);
    },
  );
});

describe("the reply catalogue", () => {
  const entries = Object.entries(REPLIES);

  it.each(entries)("%s: enhanced code of the reply's class", (_name, entry) => {
    if (entry.enhanced === "") {
      expect(entry.code).toBeLessThan(400);
      return;
    }
    expect(entry.enhanced).toMatch(/^[245]\.\d{1,3}\.\d{1,3}$/);
    expect(entry.enhanced[0]).toBe(String(entry.code)[0]);
  });

  it.each([
    ["bye", "221 Bye"],
    ["ok", "250 OK"],
    ["startData", "354 End data with <CR><LF>.<CR><LF>"],
    ["vrfyCannot", "252 Cannot VRFY user, but will accept message and attempt delivery"],
    ["readyTls", "220 Ready to start TLS"],
    ["authOk", "235 2.7.0 Authentication successful"],
    ["authInvalid", "535 5.7.8 Authentication credentials invalid"],
    ["authAborted", "501 5.7.0 Auth aborted"],
    ["authBadBase64", "501 5.5.2 Can't decode base64"],
    ["authUnknownMechanism", "504 5.5.4 Unrecognized authentication type"],
    [
      "authEncryptionRequired",
      "538 5.7.11 Encryption required for requested authentication mechanism",
    ],
    ["authAlready", "503 Already authenticated"],
    ["authNotEnough", "501 Not enough value"],
    ["authTooMany", "501 Too many values"],
    ["authSendEhlo", "503 Error: send EHLO first"],
    ["authAfterHelo", "500 Error: command 'AUTH' not recognized"],
    ["authRequired", "530 5.7.0 Authentication required"],
    ["sendHelo", "503 Error: send HELO first"],
    ["nestedMail", "503 Error: nested MAIL command"],
    ["needMail", "503 Error: need MAIL command"],
    ["needRcpt", "503 Error: need RCPT command"],
    ["malformedAddress", "553 5.1.3 Error: malformed address"],
    ["bodyValue", "501 Error: BODY can only be one of 7BIT, 8BITMIME"],
    ["smtpUtf8Argument", "501 Error: SMTPUTF8 takes no arguments"],
    ["smtpUtf8Disabled", "501 Error: SMTPUTF8 disabled"],
    ["sizeExceeded", "552 Error: message size exceeds fixed maximum message size"],
    ["mailParams", "555 MAIL FROM parameters not recognized or not implemented"],
    ["rcptParams", "555 RCPT TO parameters not recognized or not implemented"],
    ["lineTooLong", "500 Line too long (see RFC5321 4.5.3.1.6)"],
    ["tooMuchData", "552 Error: Too much mail data"],
    ["strictAscii", "500 Error: strict ASCII mode"],
    ["commandTooLong", "500 Command line too long"],
    ["badSyntax", "500 Error: bad syntax"],
    ["lackOfSecurity", "554 Command refused due to lack of security"],
    ["mustStartTls", "530 Must issue a STARTTLS command first"],
    ["tlsNotAvailable", "454 TLS not available"],
    ["expnNotImplemented", "502 EXPN not implemented"],
    ["tooManyUnknown", "502 5.5.1 Too many unrecognized commands, goodbye."],
  ] as const)("%s in plain mode is aiosmtpd's %j", (name, text) => {
    const entry = REPLIES[name];
    const plain = entry.inPlain
      ? `${entry.code} ${entry.enhanced} ${entry.text}`
      : `${entry.code} ${entry.text}`;
    expect(plain).toBe(text);
  });
});
