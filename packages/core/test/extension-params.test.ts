/**
 * The grammars of the MAIL/RCPT parameter extensions (syntax/auth-param, mt-priority, deliver-by,
 * future-release, rrvs, date-time): examples from their RFCs, and properties: any string yields a
 * value or null, never an exception, and what is accepted has the shape its RFC allows.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { isMailbox, parseAuthParam } from "../src/syntax/auth-param.js";
import { formatDateTime, parseDateTime } from "../src/syntax/date-time.js";
import { parseDeliverBy } from "../src/syntax/deliver-by.js";
import { parseHoldFor, parseHoldUntil } from "../src/syntax/future-release.js";
import { parseMtPriority } from "../src/syntax/mt-priority.js";
import { parseRrvs } from "../src/syntax/rrvs.js";

const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom(
      "0",
      "9",
      "-",
      "+",
      ";",
      ":",
      "T",
      "Z",
      "R",
      "N",
      "C",
      ".",
      "@",
      "<",
      ">",
    ),
    maxLength: 30,
  }),
);
const anyValue = fc.option(anyText, { nil: null });

describe("AUTH= (RFC 4954 §5)", () => {
  it.each([
    ["<>", null],
    ["+3C+3E", null],
    ["e+3Dmc2@example.com", "e=mc2@example.com"],
    ["user@example.com", "user@example.com"],
    ["first.last@sub.example.org", "first.last@sub.example.org"],
    ['"quoted+20local"@example.com', '"quoted local"@example.com'],
    ["user@[192.0.2.1]", "user@[192.0.2.1]"],
  ])("%j decodes to %j", (value, submitter) => {
    expect(parseAuthParam(value, false)).toEqual({ submitter });
  });

  it.each([
    null,
    "",
    "user",
    "@example.com",
    "user@",
    "<user@example.com>",
    "us er@example.com",
    "user@exa_mple.com",
    "user@-example.com",
    "a..b@example.com",
    ".a@example.com",
    "user+2@example.com", // a lone "+" is not xtext
    "us+0Aer@example.com", // a decoded control character
    "us=er@example.com", // "=" must be encoded
    "j\u00f6s\u00e9@example.com", // non-ASCII needs SMTPUTF8
  ])("refuses %j", (value) => {
    expect(parseAuthParam(value, false)).toBeNull();
  });

  it("takes UTF-8 mailboxes with SMTPUTF8 (RFC 6531), as xtext-encoded octets or raw", () => {
    expect(parseAuthParam("j+C3+B6s+C3+A9@ex+C3+A4mple.com", true)).toEqual({
      submitter: "jösé@exämple.com",
    });
    expect(parseAuthParam("j+C3+B6s+C3+A9@example.com", false)).toBeNull();
  });

  test.prop([anyValue, fc.boolean()])("any value: a submitter, <> or null", (value, utf8) => {
    const parsed = parseAuthParam(value, utf8);
    if (parsed !== null && parsed.submitter !== null) {
      expect(isMailbox(parsed.submitter, utf8)).toBe(true);
      const codes = [...parsed.submitter].map((c) => c.charCodeAt(0));
      expect(codes.every((code) => code >= 0x20 && code !== 0x7f)).toBe(true);
    }
  });

  test.prop([
    fc.stringMatching(/^[a-z0-9!#$%&'*/=?^_`{|}~-]{1,10}(\.[a-z0-9]{1,5}){0,2}$/),
    fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]{2,6}){1,2}$/),
  ])("every dot-string mailbox, xtext-encoded, comes back as it was", (local, domain) => {
    const mailbox = `${local}@${domain}`;
    const xtext = mailbox.replace(/[+=]/g, (c) => `+${c.charCodeAt(0).toString(16).toUpperCase()}`);
    expect(parseAuthParam(xtext, false)).toEqual({ submitter: mailbox });
  });
});

describe("MT-PRIORITY= (RFC 6710)", () => {
  it.each([
    ["0", 0],
    ["-0", 0],
    ["+0", 0],
    ["9", 9],
    ["+9", 9],
    ["-9", -9],
    ["3", 3],
  ])("%j is %d", (value, priority) => {
    expect(parseMtPriority(value)).toBe(priority);
  });

  it.each([null, "", "10", "-10", "+", "-", "1.0", "01", "a", " 1", "1 ", "++1", "\u0661"])(
    "refuses %j",
    (value) => {
      expect(parseMtPriority(value)).toBeNull();
    },
  );

  test.prop([anyValue])("any value: an integer from -9 to 9, or null", (value) => {
    const priority = parseMtPriority(value);
    if (priority !== null) {
      expect(Number.isInteger(priority)).toBe(true);
      expect(Math.abs(priority)).toBeLessThanOrEqual(9);
      expect(Object.is(priority, -0)).toBe(false);
    }
  });

  test.prop([fc.integer({ min: -9, max: 9 })])("every priority as text comes back", (n) => {
    expect(parseMtPriority(String(n))).toBe(n);
  });
});

describe("BY= (RFC 2852)", () => {
  it.each([
    ["120;R", { seconds: 120, mode: "R", trace: false }],
    ["120;RT", { seconds: 120, mode: "R", trace: true }],
    ["+5;r", { seconds: 5, mode: "R", trace: false }],
    ["0;N", { seconds: 0, mode: "N", trace: false }],
    ["-60;NT", { seconds: -60, mode: "N", trace: true }],
    ["999999999;n", { seconds: 999999999, mode: "N", trace: false }],
    ["-999999999;Nt", { seconds: -999999999, mode: "N", trace: true }],
  ])("%j", (value, expected) => {
    expect(parseDeliverBy(value)).toEqual(expected);
  });

  it.each([
    null,
    "",
    "120",
    ";R",
    "120;",
    "120;X",
    "120;RR",
    "120;TR",
    "0;R", // R needs a time above zero
    "-5;R",
    "1234567890;N", // at most 9 digits
    "1.5;N",
    "120 ;R",
    "120;R;",
  ])("refuses %j", (value) => {
    expect(parseDeliverBy(value)).toBeNull();
  });

  test.prop([anyValue])("any value: a by-value within range, or null", (value) => {
    const by = parseDeliverBy(value);
    if (by !== null) {
      expect(Math.abs(by.seconds)).toBeLessThan(1e9);
      expect(by.mode === "N" || by.seconds > 0).toBe(true);
    }
  });

  test.prop([
    fc.integer({ min: -999_999_999, max: 999_999_999 }),
    fc.constantFrom("N", "R"),
    fc.boolean(),
  ])("every by-value as text comes back (R only above zero)", (seconds, mode, trace) => {
    const parsed = parseDeliverBy(`${seconds};${mode}${trace ? "T" : ""}`);
    if (mode === "R" && seconds <= 0) expect(parsed).toBeNull();
    else expect(parsed).toEqual({ seconds, mode, trace });
  });
});

describe("HOLDFOR= / HOLDUNTIL= (RFC 4865)", () => {
  it("HOLDFOR is 1 to 9 digits of seconds", () => {
    expect(parseHoldFor("0")).toBe(0);
    expect(parseHoldFor("3600")).toBe(3600);
    expect(parseHoldFor("999999999")).toBe(999999999);
    for (const bad of [null, "", "-1", "+1", "1234567890", "1h", "1.5"]) {
      expect(parseHoldFor(bad)).toBeNull();
    }
  });

  it("HOLDUNTIL is an RFC 3339 date-time", () => {
    expect(parseHoldUntil("2030-01-01T00:00:00Z")).toBe(Date.UTC(2030, 0, 1));
    expect(parseHoldUntil("2030-01-01")).toBeNull();
    expect(parseHoldUntil(null)).toBeNull();
  });

  test.prop([anyValue])("any value: seconds below 10^9, or null", (value) => {
    const seconds = parseHoldFor(value);
    if (seconds !== null) expect(seconds >= 0 && seconds < 1e9).toBe(true);
  });
});

describe("RRVS= (RFC 7293)", () => {
  it.each([
    ["2014-04-03T23:01:00Z", Date.UTC(2014, 3, 3, 23, 1), null],
    ["2014-04-03T16:01:00-07:00;C", Date.UTC(2014, 3, 3, 23, 1), "C"],
    ["2014-04-03t23:01:00z;r", Date.UTC(2014, 3, 3, 23, 1), "R"],
  ])("%j", (value, since, noSupport) => {
    expect(parseRrvs(value)).toEqual({ since: new Date(since), noSupport });
  });

  it.each([null, "", "2014-04-03", "2014-04-03T23:01:00Z;", "2014-04-03T23:01:00Z;X", ";C"])(
    "refuses %j",
    (value) => {
      expect(parseRrvs(value)).toBeNull();
    },
  );

  test.prop([anyValue])("any value: a valid instant, or null", (value) => {
    const rrvs = parseRrvs(value);
    if (rrvs !== null) expect(Number.isNaN(rrvs.since.getTime())).toBe(false);
  });
});

describe("RFC 3339 date-time", () => {
  it.each([
    ["1985-04-12T23:20:50.52Z", Date.UTC(1985, 3, 12, 23, 20, 50, 520)],
    ["1996-12-19T16:39:57-08:00", Date.UTC(1996, 11, 20, 0, 39, 57)],
    ["1990-12-31T23:59:60Z", Date.UTC(1990, 11, 31, 23, 59, 59)], // a leap second
    ["1937-01-01T12:00:27.87+00:20", Date.UTC(1937, 0, 1, 11, 40, 27, 870)],
    ["2024-02-29T00:00:00Z", Date.UTC(2024, 1, 29)],
  ])("RFC 3339 §5.8 example %j", (text, ms) => {
    expect(parseDateTime(text)).toBe(ms);
  });

  it.each([
    "2023-02-29T00:00:00Z",
    "1900-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T00:60:00Z",
    "2024-01-01T00:00:61Z",
    "2024-01-01T00:00:00",
    "2024-01-01 00:00:00Z",
    "2024-01-01T00:00:00+2400",
    "2024-01-01T00:00:00+24:00",
    "2024-1-01T00:00:00Z",
    "2024-01-01T00:00:00.Z",
  ])("refuses %j", (text) => {
    expect(parseDateTime(text)).toBeNull();
  });

  test.prop([
    fc.date({ min: new Date(0), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }),
  ])("formatDateTime then parseDateTime is the instant, to the second", (date) => {
    expect(parseDateTime(formatDateTime(date.getTime()))).toBe(
      Math.floor(date.getTime() / 1000) * 1000,
    );
  });

  test.prop([anyText])("any text: a finite instant or null", (text) => {
    const ms = parseDateTime(text);
    if (ms !== null) expect(Number.isFinite(ms)).toBe(true);
  });
});
