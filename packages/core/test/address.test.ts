import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import {
  type PathOptions,
  type PathResult,
  parsePath,
  parseVrfyArgument,
  stripKeyword,
} from "../src/syntax/address.js";
import { parseEsmtpParams } from "../src/syntax/esmtp-params.js";

// aiosmtpd's TestSMTP controller runs with enable_SMTPUTF8=True and local_part_limit=0.
const UTF8: PathOptions = { smtpUtf8: true, localPartLimit: 0 };
const ASCII: PathOptions = { smtpUtf8: false, localPartLimit: 0 };

/** What the engine does with `MAIL FROM:<arg>` / `RCPT TO:<arg>` before looking at parameters. */
function command(keyword: "FROM:" | "TO:", arg: string, options = UTF8): PathResult | null {
  const text = stripKeyword(keyword + arg, keyword);
  return text === null ? null : parsePath(text, options);
}

function ok(address: string, rest = ""): PathResult {
  return { ok: true, address, rest };
}

const MALFORMED: PathResult = { ok: false, error: "malformed" };

// aiosmtpd tests/test_smtp.py TestSMTP.valid_mailfrom_addresses, each with the address that
// Python's parser (and so aiosmtpd's handler) ends up with.
const VALID_MAILFROM: readonly (readonly [string, string])[] = [
  // no space between colon and address
  ["anne@example.com", "anne@example.com"],
  ["<anne@example.com>", "anne@example.com"],
  // one space between colon and address
  [" anne@example.com", "anne@example.com"],
  [" <anne@example.com>", "anne@example.com"],
  // multiple spaces between colon and address
  ["  anne@example.com", "anne@example.com"],
  ["  <anne@example.com>", "anne@example.com"],
  // non alphanums in local part
  ["anne.arthur@example.com", "anne.arthur@example.com"],
  ["anne+promo@example.com", "anne+promo@example.com"],
  ["anne-arthur@example.com", "anne-arthur@example.com"],
  ["anne_arthur@example.com", "anne_arthur@example.com"],
  ["_@example.com", "_@example.com"],
  // IP address in domain part
  ["anne@127.0.0.1", "anne@127.0.0.1"],
  ["anne@[127.0.0.1]", "anne@[127.0.0.1]"],
  ["anne@[IPv6:2001:db8::1]", "anne@[IPv6:2001:db8::1]"],
  ["anne@[IPv6::1]", "anne@[IPv6::1]"],
  // comments: obsolete but valid, and dropped
  ["anne(comment)@example.com", "anne@example.com"],
  ["(comment)anne@example.com", "anne@example.com"],
  ["anne@example.com(comment)", "anne@example.com"],
  ["anne@machine(comment).  example", "anne@machine.example"], // RFC 5322 A.6.3
  // source routes: RFC 5321 4.1.2 MUST accept, SHOULD ignore
  ["<@example.org:anne@example.com>", "anne@example.com"],
  ["<@example.net,@example.org:anne@example.com>", "anne@example.com"],
  // strange but valid
  ["anne@mail", "anne@mail"],
  // Python returns "@example.com" here (an empty local part is only quoted inside <...>); we
  // always keep it quoted so the result is still an address.
  ['""@example.com', '""@example.com'],
  ['<""@example.com>', '""@example.com'],
  ['" "@example.com', '" "@example.com'],
  // Python unquotes a quoted local part unless it holds a special other than "." or a space.
  ['"anne..arthur"@example.com', "anne..arthur@example.com"],
  ["mailhost!anne@example.com", "mailhost!anne@example.com"],
  ["anne%example.org@example.com", "anne%example.org@example.com"],
  ['much."more\\ unusual"@example.com', '"much.more unusual"@example.com'],
  [
    'very."(),:;<>[]".VERY."very@\\ "very.unusual@strange.example.com',
    '"very.(),:;<>[].VERY.very@ very.unusual"@strange.example.com',
  ],
  // more from RFC 3696 3; outside quotes Python reads "\" as text, not as a quoted-pair
  ["Fred\\ Bloggs@example.com", '"Fred\\\\ Bloggs"@example.com'],
  ["Joe.\\\\Blow@example.com", '"Joe.\\\\\\\\Blow"@example.com'],
  ['"Abc@def"@example.com', '"Abc@def"@example.com'],
  ['"Fred Bloggs"@example.com', '"Fred Bloggs"@example.com'],
  ["customer/department=shipping@example.com", "customer/department=shipping@example.com"],
  ["$A12345@example.com", "$A12345@example.com"],
  ["!def!xyz%abc@example.com", "!def!xyz%abc@example.com"],
  // local-part > 64 chars: accepted unless local_part_limit is set (aiosmtpd issue #257)
  [`${"a".repeat(65)}@example.com`, `${"a".repeat(65)}@example.com`],
  [`${"b".repeat(488)}@example.com`, `${"b".repeat(488)}@example.com`],
  ["c".repeat(500), "c".repeat(500)],
];

// TestSMTP.valid_rcptto_addresses adds these.
const VALID_RCPTTO: readonly (readonly [string, string])[] = [
  ...VALID_MAILFROM,
  ["<Postmaster>", "Postmaster"], // RFC 5321 4.1.1.3
  [`${"b".repeat(490)}@example.com`, `${"b".repeat(490)}@example.com`],
  ["c".repeat(502), "c".repeat(502)],
];

// TestSMTP.invalid_email_addresses (553 malformed), plus a few more shapes Python refuses.
const INVALID: readonly string[] = [
  "<@example.com>", // null local part
  "<johnathon@>", // null domain part
  "a@b@c",
  "<a@b@c>",
  "@@", // test_vrfy_not_address
  "Abc\\@def@example.com", // RFC 3696's escaped "@", which Python does not support
  "<",
  "<@a,",
  "<@a>",
  "<@a:>",
  "<@a@b:c@d>",
  "a@",
  "a@ ",
  "a@.b",
  "a@b.",
  "a@b..c",
  'a@"b"',
  "(comment only)",
  "<()>",
  "<(unclosed",
  "<a@b.(c)>x@y",
];

describe("parsePath: aiosmtpd valid addresses", () => {
  it.each(VALID_MAILFROM)("MAIL FROM:%s", (arg, address) => {
    expect(command("FROM:", arg)).toEqual(ok(address));
    expect(command("FROM:", arg, ASCII)).toEqual(ok(address));
  });

  it.each(VALID_RCPTTO)("RCPT TO: %s", (arg, address) => {
    expect(command("TO:", ` ${arg}`)).toEqual(ok(address));
  });

  it("bpo-27931: an empty quoted local part survives (test_bpo27931fix_smtp/esmtp)", () => {
    expect(command("FROM:", ' <""@example.com>')).toEqual(ok('""@example.com'));
    expect(command("FROM:", ' <""@example.com> SIZE=28113')).toEqual(
      ok('""@example.com', "SIZE=28113"),
    );
    expect(command("TO:", ' <""@example.org>')).toEqual(ok('""@example.org'));
  });
});

describe("parsePath: aiosmtpd invalid addresses", () => {
  it.each(INVALID)("rejects %j as malformed", (arg) => {
    expect(parsePath(arg, UTF8)).toEqual(MALFORMED);
  });

  it.each(["<@example.com>", "<johnathon@>"])("rejects %j with parameters too", (arg) => {
    expect(command("FROM:", ` ${arg} SIZE=28113`)).toEqual(MALFORMED);
    expect(command("TO:", ` ${arg}`)).toEqual(MALFORMED);
  });
});

describe("parsePath: aiosmtpd syntax errors (501) stay distinguishable", () => {
  it("a missing keyword is null (test_mail_smtp_errsyntax nofrom)", () => {
    expect(stripKeyword("<anne@example.com>", "FROM:")).toBeNull();
    expect(stripKeyword("<anne@example.com>", "TO:")).toBeNull();
    expect(stripKeyword("FROM <anne@example.com>", "FROM:")).toBeNull();
    expect(stripKeyword("", "TO:")).toBeNull();
  });

  it("a missing address is the empty address (noaddr)", () => {
    expect(command("FROM:", "")).toEqual(ok(""));
    expect(command("TO:", "   ")).toEqual(ok(""));
    expect(parsePath(" \t ", UTF8)).toEqual(ok(""));
  });

  it.each([
    ["FROM:", " Anne <anne@example.com>", "Anne"],
    ["TO:", " bart <bart@example.com>", "bart"],
  ] as const)("a display name leaves unparsable parameters (%s%s)", (keyword, arg, address) => {
    const result = command(keyword, arg);
    expect(result).toMatchObject({ ok: true, address });
    expect(result?.ok && parseEsmtpParams(result.rest)).toBeNull();
  });

  it.each([
    ["<anne@example.com> #$%=!@#", "#$%=!@#"],
    ["<anne@example.com> SIZE = 10000", "SIZE = 10000"],
  ])("bad parameters are returned for the parameter parser (%s)", (arg, rest) => {
    const result = parsePath(arg, UTF8);
    expect(result).toEqual(ok("anne@example.com", rest));
    expect(parseEsmtpParams(rest)).toBeNull();
  });
});

describe("stripKeyword", () => {
  it.each([
    ["FROM:<a@b>", "FROM:", "<a@b>"],
    ["from:<a@b>", "FROM:", "<a@b>"],
    ["FrOm:   <a@b>  SIZE=1 ", "FROM:", "<a@b>  SIZE=1"],
    ["To:\t<a@b>", "TO:", "<a@b>"],
    ["TO:", "TO:", ""],
  ] as const)("%j with %s", (arg, keyword, expected) => {
    expect(stripKeyword(arg, keyword)).toBe(expected);
  });

  it("compares ASCII case only", () => {
    // Unicode case mapping must not turn other letters into the keyword.
    expect(stripKeyword("ＦROM:<a@b>", "FROM:")).toBeNull();
    expect(stripKeyword("TO :<a@b>", "TO:")).toBeNull();
  });
});

describe("parsePath: parameters", () => {
  it.each([
    ["<anne@example.com> SIZE=10000", ok("anne@example.com", "SIZE=10000")],
    ["<anne@example.com>  SIZE=10000 ", ok("anne@example.com", "SIZE=10000")],
    ["<anne@example.com>SIZE=1", ok("anne@example.com", "SIZE=1")],
    ["anne@example.com SIZE=1 BODY=8BITMIME", ok("anne@example.com", "SIZE=1 BODY=8BITMIME")],
    ["<anne@example.com>(comment) SIZE=1", ok("anne@example.com", "SIZE=1")],
    ["<anne@example.com (note)> BODY=8BITMIME", ok("anne@example.com", "BODY=8BITMIME")],
    ["<> SIZE=1", ok("<>", "SIZE=1")],
    ["<>SIZE=1", ok("<>", "SIZE=1")],
    // Python takes no CFWS after "<>", so the comment is left for the parameter parser to refuse.
    ["<>(comment) SIZE=1", ok("<>", "(comment) SIZE=1")],
    ["<a@b> ENVID=Mixed+2BCase", ok("a@b", "ENVID=Mixed+2BCase")],
  ])("%j", (text, expected) => {
    expect(parsePath(text, UTF8)).toEqual(expected);
  });
});

describe("parsePath: forms", () => {
  it.each([
    // RFC 5321 null reverse-path
    ["<>", "<>"],
    // a missing closing ">" is tolerated, as in Python
    ["<anne@example.com", "anne@example.com"],
    ["<Postmaster", "Postmaster"],
    ["Postmaster", "Postmaster"],
    ["<postmaster@example.com>", "postmaster@example.com"],
    // nested and escaped comments
    ["anne(a(nested)comment)@example.com", "anne@example.com"],
    ["anne(a \\) still comment)@example.com", "anne@example.com"],
    ["anne@example.com (unclosed", "anne@example.com"],
    // CFWS around dots and "@" disappears
    ["anne . arthur@example.com", "anne.arthur@example.com"],
    ["anne @ example.com", "anne@example.com"],
    ["<anne@ example . com >", "anne@example.com"],
    // words without dots join with one space (Python's obs-local-part leniency)
    ["anne  (x) arthur@example.com", '"anne arthur"@example.com'],
    ['a"b"c@example.com', "abc@example.com"],
    ['"a\\"b"@example.com', '"a\\"b"@example.com'],
    ['"a\\\\b"@example.com', '"a\\\\b"@example.com'],
    ['"a\\b"@example.com', "ab@example.com"],
    ['"unterminated', "unterminated"],
    [".a@example.com", ".a@example.com"],
    // source routes in their various spellings
    ["<@a,,@b , @c:x@y>", "x@y"],
    ["<(r)@a.example , @b.example:x@y>", "x@y"],
    ["<@[1.2.3.4]:x@y>", "x@y"],
    ["<@a:Postmaster>", "Postmaster"],
    // domain literals
    ["a@[ 1.2.3.4 ]", "a@[1.2.3.4]"],
    ["a@(c)[1.2.3.4](d)", "a@[1.2.3.4]"],
    ["<a@[IPv6:::1]>", "a@[IPv6:::1]"],
    ["a@[tag:anything-at-all]", "a@[tag:anything-at-all]"],
  ])("%j -> %j", (text, address) => {
    expect(parsePath(text, UTF8)).toEqual(ok(address));
  });

  it.each([
    // The domain ends at whitespace that is not next to a dot; the rest is parameters.
    ["<anne@ex ample.com>", ok("anne@ex", "ample.com>")],
    ["a@b (c) d", ok("a@b", "d")],
    // Python's parser only refuses "@" straight after the domain's first dot-atom.
    ["a@b .c@d", ok("a@b.c", "@d")],
    ["a@[1.2.3.4]@d", ok("a@[1.2.3.4]", "@d")],
    // Bare domainless words keep going, as in Python; only <...> ends them cleanly.
    ["Postmaster SIZE=1", ok('"Postmaster SIZE=1"')],
    ["<Postmaster> SIZE=1", ok("Postmaster", "SIZE=1")],
  ])("%j is split as Python splits it", (text, expected) => {
    expect(parsePath(text, UTF8)).toEqual(expected);
  });

  it.each([
    "a@[1.2.3.4", // Python crashes on an unclosed literal
    "a@[]",
    "a@[1.2 .3]",
    "a@[a\\]b]",
    "a@[[1.2.3.4]]",
  ])("rejects the domain literal in %j", (text) => {
    expect(parsePath(text, UTF8)).toEqual(MALFORMED);
  });
});

describe("parsePath: control and non-ASCII characters", () => {
  it.each([
    "<a\u0000b@example.com>",
    "<a@example.com\r\nRSET>",
    "a\nb@example.com",
    "a\rb@example.com",
    '<"a\r\nb"@example.com>',
    "<a(\u0000)@example.com>",
    "<a@[1.2.3.4\u0007]>",
    "<a\u007f@example.com>",
    "<a\u001b@example.com>",
    '<"a\tb"@example.com>', // a tab may fold but never lands inside the address
    "<a\u0085@example.com>",
    "<a\u00a0b@example.com>",
    "<a@b\u2028c>",
  ])("rejects %j", (text) => {
    expect(parsePath(text, UTF8)).toEqual(MALFORMED);
  });

  it("allows tabs as folding whitespace", () => {
    expect(parsePath("<a@example.com>\tSIZE=1", UTF8)).toEqual(ok("a@example.com", "SIZE=1"));
    expect(parsePath("anne\t.\tarthur@example.com", UTF8)).toEqual(ok("anne.arthur@example.com"));
  });

  it("leaves characters after the path to the parameter parser", () => {
    expect(parsePath("<a@example.com> X=\u0000", UTF8)).toEqual(ok("a@example.com", "X=\u0000"));
  });

  it.each([
    ["anne\u00cb@example.com", "anne\u00cb@example.com"], // test_mail_with_compatible_smtputf8
    ["<bart\u00cb@example.com>", "bart\u00cb@example.com"],
    ["<\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a>", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a"],
    ["<a@b\u00fccher.example>", "a@b\u00fccher.example"],
    ['<"j\u00f6 m"@example.com>', '"j\u00f6 m"@example.com'],
    ["<\u{1f4e7}@example.com>", "\u{1f4e7}@example.com"],
  ])("accepts %j only with SMTPUTF8", (text, address) => {
    expect(parsePath(text, UTF8)).toEqual(ok(address));
    expect(parsePath(text, ASCII)).toEqual(MALFORMED);
  });

  it("refuses non-ASCII even in a dropped comment without SMTPUTF8", () => {
    expect(parsePath("<a(\u00e9)@example.com>", ASCII)).toEqual(MALFORMED);
    expect(parsePath("<a(\u00e9)@example.com>", UTF8)).toEqual(ok("a@example.com"));
  });
});

describe("parsePath: localPartLimit", () => {
  const limited: PathOptions = { smtpUtf8: true, localPartLimit: 64 };

  it("test_limitlocalpart: 64 is fine, 65 is malformed", () => {
    expect(command("FROM:", ` ${"a".repeat(64)}@example.com`, limited)).toEqual(
      ok(`${"a".repeat(64)}@example.com`),
    );
    expect(command("TO:", ` ${"b".repeat(65)}@example.com`, limited)).toEqual(MALFORMED);
  });

  it("counts code points of the local part as returned (quotes included)", () => {
    expect(parsePath(`<${"\u00e9".repeat(64)}@x>`, limited)).toMatchObject({ ok: true });
    expect(parsePath(`<${"\u{1f4e7}".repeat(64)}@x>`, limited)).toMatchObject({ ok: true });
    expect(parsePath(`<${"\u00e9".repeat(65)}@x>`, limited)).toEqual(MALFORMED);
    expect(parsePath(`<"${"a".repeat(61)} "@x>`, limited)).toMatchObject({ ok: true });
    expect(parsePath(`<"${"a".repeat(62)} "@x>`, limited)).toEqual(MALFORMED);
  });

  it("also limits a domainless path (aiosmtpd only checks text before an @)", () => {
    expect(parsePath("<Postmaster>", limited)).toEqual(ok("Postmaster"));
    expect(parsePath("c".repeat(65), limited)).toEqual(MALFORMED);
  });

  it("does not apply to the null path, and 0 disables it", () => {
    expect(parsePath("<>", { smtpUtf8: false, localPartLimit: 1 })).toEqual(ok("<>"));
    expect(parsePath(`${"a".repeat(1000)}@x`, UTF8)).toMatchObject({ ok: true });
  });
});

describe("parseVrfyArgument", () => {
  it.each([
    ["<anne@example.com>", "anne@example.com"], // test_vrfy
    ["anne@example.com", "anne@example.com"],
    ["<anne@example.com> trailing words", "anne@example.com"],
    ["Postmaster", "Postmaster"],
    ["John Smith", '"John Smith"'],
    ["<>", "<>"],
    ["", ""],
  ])("%j -> %j", (text, address) => {
    expect(parseVrfyArgument(text, UTF8)).toBe(address);
  });

  it.each(["@@", "<@x>", "a@b@c", "<a\r\n@b>"])("%j is unparsable (502)", (text) => {
    expect(parseVrfyArgument(text, UTF8)).toBeNull();
  });

  it("honours the SMTPUTF8 and local part options", () => {
    expect(parseVrfyArgument("j\u00f6@example.com", ASCII)).toBeNull();
    expect(parseVrfyArgument("aaa@x", { smtpUtf8: false, localPartLimit: 2 })).toBeNull();
  });
});

describe("parsePath: linear time", () => {
  const size = 100_000;
  it.each([
    ["open comments", "(".repeat(size)],
    ["comment pairs", "()".repeat(size / 2)],
    ["angle then comments", `<${"(".repeat(size)}`],
    ["quotes", '"'.repeat(size)],
    ["escapes", "\\".repeat(size)],
    ["dots", "a.".repeat(size / 2)],
    ["spaced words", "a ".repeat(size / 2)],
    ["words and comments", "a(b)".repeat(size / 4)],
    ["route", `<${"@a,".repeat(size / 3)}`],
    ["route to nowhere", `<${"@a:".repeat(size / 3)}`],
    ["domain dots", `a@${"b.".repeat(size / 2)}`],
    ["domain comments", `a@${"b (c) .".repeat(size / 8)}`],
    ["unclosed literal", `a@[${"1".repeat(size)}`],
    ["brackets", "<".repeat(size)],
    ["ats", "@".repeat(size)],
    ["mixed", '<"a\\(b>@'.repeat(size / 8)],
  ])("%s", (_name, text) => {
    const started = Date.now();
    const result = parsePath(text, UTF8);
    expect(result.ok === true || result.error === "malformed").toBe(true);
    // A linear scan takes milliseconds; backtracking on 100 KB would take many seconds. The bound
    // is loose so that a loaded machine cannot fail it.
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

// Characters that steer the parser, weighted so generated strings hit its interesting paths.
const pathCharacter = fc.oneof(
  { arbitrary: fc.constantFrom(...'ab.@<>()"\\[],:; \t=1'), weight: 8 },
  { arbitrary: fc.constantFrom("\u00e9", "\u0000", "\r", "\n", "\u00a0", "\u{1f4e7}"), weight: 1 },
  { arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), weight: 1 },
);
const pathText = fc.oneof(
  fc.string({ unit: pathCharacter, maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
);
const options = fc.record({ smtpUtf8: fc.boolean(), localPartLimit: fc.constantFrom(0, 3, 64) });

describe("parsePath: properties", () => {
  test.prop([pathText, options])("never throws; ok or malformed", (text, opts) => {
    const result = parsePath(text, opts);
    if (!result.ok) {
      expect(result).toEqual(MALFORMED);
      return;
    }
    expect(typeof result.address).toBe("string");
    expect(result.rest).toBe(result.rest.replace(/^[ \t]+|[ \t]+$/g, ""));
    // No control character (or tab) ever reaches an accepted address.
    expect(result.address).not.toMatch(/\p{Cc}/u);
    if (!opts.smtpUtf8) expect(result.address).toMatch(/^[\u0020-\u007e]*$/);
  });

  test.prop([pathText])("an accepted address parses back to itself inside <...>", (text) => {
    const result = parsePath(text, UTF8);
    fc.pre(result.ok && result.address !== "" && result.address !== "<>");
    if (!result.ok) return;
    expect(parsePath(`<${result.address}>`, UTF8)).toEqual(ok(result.address));
  });

  const atextChar = fc.constantFrom(..."abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~");
  const atom = fc.string({ unit: atextChar, minLength: 1, maxLength: 10 });
  const dotAtom = fc.array(atom, { minLength: 1, maxLength: 4 }).map((atoms) => atoms.join("."));
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
  const domain = fc.oneof(
    fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join(".")),
    fc.ipV4().map((ip) => `[${ip}]`),
    fc.ipV6().map((ip) => `[IPv6:${ip}]`),
  );
  const keyword = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9-]{0,9}$/);
  const value = fc.stringMatching(/^[!-<>-~]{1,12}$/);
  const params = fc.array(
    fc
      .tuple(keyword, fc.option(value, { nil: null }))
      .map(([k, v]) => (v === null ? k : `${k}=${v}`)),
    { maxLength: 4 },
  );

  test.prop([dotAtom, domain, params])(
    "a simple <local@domain> comes back verbatim with its parameters",
    (local, dom, list) => {
      const address = `${local}@${dom}`;
      const rest = list.join(" ");
      expect(parsePath(`<${address}> ${rest}`, ASCII)).toEqual(ok(address, rest));
      expect(parsePath(`${address} ${rest}`, ASCII)).toEqual(ok(address, rest));
      expect(command("TO:", `  <${address}>${rest === "" ? "" : ` ${rest}`}`, ASCII)).toEqual(
        ok(address, rest),
      );
    },
  );
});
