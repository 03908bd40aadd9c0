import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { pyListRepr, pyPeerRepr, pyStrRepr } from "../src/index.js";

const SAMPLES = [
  "",
  "SIZE=102",
  "it's",
  'say "hi"',
  `both ' and "`,
  "back\\slash",
  "tab\tnl\ncr\r",
  "\x00\x01\x1b\x1f\x7f",
  "\x80\x85\x9f\xa0\xad\xe9\xff",
  "é ü ß 日本語 ✓",
  "\u200b\u200e\u2028\u2029\u3000\ufeff\uffff",
  "\ud800 lone surrogate",
  "😀 \u{1d400} \u{e0001} \u{10ffff}",
];

/** Every code point below U+0300 (stable across Unicode versions) plus the curated samples. */
const ALL = [...SAMPLES, ...Array.from({ length: 0x300 }, (_, i) => String.fromCodePoint(i))];

const python = spawnSync("python3", ["--version"], { encoding: "utf8" });

describe("pyStrRepr", () => {
  it("matches hand-checked CPython output", () => {
    expect(pyStrRepr("SIZE=102")).toBe("'SIZE=102'");
    expect(pyStrRepr("it's")).toBe(`"it's"`);
    expect(pyStrRepr(`both ' and "`)).toBe(`'both \\' and "'`);
    expect(pyStrRepr("\x00\t\n\x7f\x85\xa0\xe9")).toBe("'\\x00\\t\\n\\x7f\\x85\\xa0é'");
    expect(pyStrRepr("\u200b\u{e0001}😀")).toBe("'\\u200b\\U000e0001😀'");
    expect(pyListRepr([])).toBe("[]");
    expect(pyListRepr(["A", "B=1"])).toBe("['A', 'B=1']");
  });

  it.skipIf(python.status !== 0 && process.env.CI !== "true")(
    `matches python3's repr() on every sample${python.status === 0 ? "" : " [skip: python3 not installed]"}`,
    () => {
      // Python gets the strings as JSON (lone surrogates survive as \ud800 escapes).
      const script =
        "import json,sys\nfor s in json.load(sys.stdin):\n  sys.stdout.write(json.dumps(repr(s)) + '\\n')";
      const result = spawnSync("python3", ["-c", script], {
        input: JSON.stringify(ALL),
        encoding: "utf8",
      });
      expect(result.stderr).toBe("");
      const expected = result.stdout
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line) as string);
      expect(ALL.map(pyStrRepr)).toEqual(expected);
      expect(pyListRepr(SAMPLES)).toBe(
        JSON.parse(
          spawnSync(
            "python3",
            ["-c", "import json,sys\nsys.stdout.write(json.dumps(repr(json.load(sys.stdin))))"],
            { input: JSON.stringify(SAMPLES), encoding: "utf8" },
          ).stdout,
        ),
      );
    },
  );
});

describe("pyPeerRepr", () => {
  it("formats asyncio peernames", () => {
    expect(pyPeerRepr({ address: "127.0.0.1", port: 54321, family: "IPv4" })).toBe(
      "('127.0.0.1', 54321)",
    );
    expect(pyPeerRepr({ address: "::1", port: 8025, family: "IPv6" })).toBe("('::1', 8025, 0, 0)");
    expect(pyPeerRepr({ address: "/tmp/s", port: 0, family: "unix" })).toBe("'/tmp/s'");
    expect(pyPeerRepr(null)).toBe("None");
  });
});
