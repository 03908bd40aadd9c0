import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { decodeXtext, type EsmtpParam, parseEsmtpParams } from "../src/syntax/esmtp-params.js";

function param(keyword: string, value: string | null = null): EsmtpParam {
  return { keyword, value };
}

describe("parseEsmtpParams", () => {
  it.each([
    ["", []],
    ["   \t ", []],
    ["SIZE=10000", [param("SIZE", "10000")]],
    [" SIZE=10000", [param("SIZE", "10000")]],
    ["SIZE=10000 ", [param("SIZE", "10000")]],
    ["size=10000 body=8bitmime", [param("SIZE", "10000"), param("BODY", "8bitmime")]],
    ["SMTPUTF8", [param("SMTPUTF8")]],
    ["FOO=BAR", [param("FOO", "BAR")]], // unknown but well-formed: the engine answers 555
    ["FOOBAR", [param("FOOBAR")]],
    // well-formed lists that the engine must still refuse (SIZE without a value is a 501)
    ["SIZE 10000", [param("SIZE"), param("10000")]],
    ["SIZE", [param("SIZE")]],
    ["BODY 9BIT", [param("BODY"), param("9BIT")]],
    ["SMTPUTF8=YES", [param("SMTPUTF8", "YES")]],
    // RFC 5321 esmtp-keyword allows "-" after the first character (RFC 6710 MT-PRIORITY)
    ["MT-PRIORITY=-3", [param("MT-PRIORITY", "-3")]],
    ["X-1", [param("X-1")]],
    // values are kept as sent: DSN's ENVID and ORCPT are case-sensitive
    ["ENVID=QQ314159+2BaBc RET=hdrs", [param("ENVID", "QQ314159+2BaBc"), param("RET", "hdrs")]],
    ["ORCPT=rfc822;Bob+40Example.COM", [param("ORCPT", "rfc822;Bob+40Example.COM")]],
    ["NOTIFY=SUCCESS,FAILURE", [param("NOTIFY", "SUCCESS,FAILURE")]],
    ["AUTH=<>", [param("AUTH", "<>")]],
    ["HOLDUNTIL=2030-01-01T00:00:00Z", [param("HOLDUNTIL", "2030-01-01T00:00:00Z")]],
    ["X=caf\u00e9", [param("X", "caf\u00e9")]], // RFC 6531 widens esmtp-value to UTF-8
    ["A\tB  C", [param("A"), param("B"), param("C")]],
    // duplicates are kept in order; refusing them is the engine's decision
    ["SIZE=1 SIZE=2", [param("SIZE", "1"), param("SIZE", "2")]],
  ] as const)("%j", (text, expected) => {
    expect(parseEsmtpParams(text)).toEqual(expected);
  });

  it.each([
    "#$%=!@#", // test_mail_esmtp_errsyntax badsyntax
    "SIZE = 10000", // test_mail_esmtp_errsyntax space
    "SIZE=",
    "=10000",
    "=",
    "SIZE==",
    "A=b=c", // RFC 5321 esmtp-value excludes "=" (aiosmtpd would take value "b=c")
    "-X",
    "X_Y",
    "X.Y=1",
    "<anne@example.com>", // a display name before the path leaves this behind
    "SIZE=1 BAD!",
    "X=\u0000",
    "X=a\rb",
    "X=a\u007f",
    "X=a\u0085b",
    "X=a\u00a0b", // a non-breaking space must not hide a second parameter
    "A\u00a0B",
    "A\r\nRSET",
    "\u00c9T\u00c9",
    "(comment) SIZE=1",
  ])("rejects %j", (text) => {
    expect(parseEsmtpParams(text)).toBeNull();
  });

  const keyword = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9-]{0,15}$/);
  const value = fc.oneof(
    fc.stringMatching(/^[!-<>-~]{1,20}$/),
    fc.string({
      unit: fc.constantFrom("a", "+", ";", "\u00e9", "\u4f8b", "\u{1f4e7}"),
      minLength: 1,
    }),
  );
  const space = fc.stringMatching(/^[ \t]{1,3}$/);

  test.prop([
    fc.array(fc.tuple(keyword, fc.option(value, { nil: null }), space), { maxLength: 8 }),
    space,
  ])("round-trips generated parameter lists", (list, leading) => {
    const text = leading + list.map(([k, v, sp]) => (v === null ? k : `${k}=${v}`) + sp).join("");
    expect(parseEsmtpParams(text)).toEqual(
      list.map(([k, v]) => ({ keyword: k.toUpperCase(), value: v })),
    );
  });

  test.prop([fc.string({ unit: "binary", maxLength: 30 })])("never throws", (text) => {
    const params = parseEsmtpParams(text);
    if (params === null) return;
    for (const p of params) {
      expect(p.keyword).toMatch(/^[A-Z0-9][A-Z0-9-]*$/);
      if (p.value !== null) expect(p.value).not.toMatch(/[\s=\p{Cc}]/u);
    }
  });
});

/** RFC 3461 4 encoding: UTF-8 octets outside "!".."~", and "+" and "=", become +HH. */
function encodeXtext(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    out +=
      byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d
        ? String.fromCharCode(byte)
        : `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

describe("decodeXtext", () => {
  it.each([
    ["", ""],
    ["QQ314159", "QQ314159"],
    ["Bob+40example.com", "Bob@example.com"],
    ["a+2Bb", "a+b"],
    ["a+3Db", "a=b"],
    ["a+20b", "a b"],
    ["a+2bb+3d", "a+b="], // lower-case hex is tolerated
    ["caf+C3+A9", "caf\u00e9"],
    ["+F0+9F+93+A7", "\u{1f4e7}"],
    ["+EF+BB+BFx", "\ufeffx"], // a leading BOM is content, not stripped
    ["<>;~!", "<>;~!"],
  ])("%j -> %j", (text, decoded) => {
    expect(decodeXtext(text)).toBe(decoded);
  });

  it.each([
    "ab+0D+0Acd", // CRLF smuggling into a DSN
    "ab+0Acd",
    "+00",
    "+09",
    "+1B",
    "+7F",
    "+C2+85", // U+0085, a C1 control
    "+",
    "+4",
    "+G0",
    "+4 ",
    "a=b", // "=" is not an xchar
    "a b",
    "a\tb",
    "caf\u00e9", // raw non-ASCII is not xtext
    "+C3", // truncated UTF-8
    "+FF",
    "+C3+28",
    "+ED+A0+80", // an encoded surrogate
  ])("rejects %j", (text) => {
    expect(decodeXtext(text)).toBeNull();
  });

  test.prop([fc.string({ unit: "binary", maxLength: 40 }).filter((text) => !/\p{Cc}/u.test(text))])(
    "decodes what RFC 3461 encoding produces",
    (text) => {
      const encoded = encodeXtext(text);
      expect(encoded).toMatch(/^[!-*,-<>-~]*(\+[0-9A-F]{2}[!-*,-<>-~]*)*$/);
      expect(decodeXtext(encoded)).toBe(text);
    },
  );

  test.prop([fc.string({ unit: "binary", maxLength: 30 })])("never throws", (text) => {
    const decoded = decodeXtext(text);
    if (decoded !== null) expect(decoded).not.toMatch(/\p{Cc}/u);
  });
});
