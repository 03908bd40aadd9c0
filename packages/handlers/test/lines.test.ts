import { spawnSync } from "node:child_process";
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { splitByteLines, splitTextLines } from "../src/index.js";

const text = (lines: Uint8Array[]) => lines.map((l) => Buffer.from(l).toString("latin1"));
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

describe("splitByteLines (bytes.splitlines)", () => {
  it.each([
    ["", []],
    ["a", ["a"]],
    ["a\r\n", ["a"]],
    ["a\n\n", ["a", ""]],
    ["\r\n\r\n", ["", ""]],
    ["a\r\rb", ["a", "", "b"]],
    ["a\n\rb", ["a", "", "b"]],
    ["a\vb\fc", ["a\vb\fc"]],
  ])("%j", (input, expected) => {
    expect(text(splitByteLines(bytes(input)))).toEqual(expected);
  });

  test.prop([fc.array(fc.constantFrom("a", "\r", "\n", "\r\n", "", "x y"), { maxLength: 12 })])(
    "joining the lines with LF and re-splitting is stable",
    (parts) => {
      const lines = text(splitByteLines(bytes(parts.join(""))));
      expect(text(splitByteLines(bytes(lines.map((l) => `${l}\n`).join(""))))).toEqual(lines);
    },
  );
});

describe("splitTextLines (str.splitlines)", () => {
  it.each([
    ["", []],
    ["a\r\nb", ["a", "b"]],
    [
      "a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i",
      ["a", "b", "c", "d", "e", "f", "g", "h", "i"],
    ],
    ["a\n", ["a"]],
    ["a\n\n", ["a", ""]],
  ])("%j", (input, expected) => {
    expect(splitTextLines(input)).toEqual(expected);
  });

  const python = spawnSync("python3", ["--version"]);
  it.skipIf(python.status !== 0 && process.env.CI !== "true")(
    `agrees with python3 on a mixed sample${python.status === 0 ? "" : " [skip: python3 not installed]"}`,
    () => {
      const samples = ["", "\n", "a\r\r\nb\n\rc", "x\x1c\x1d\x1e\x85\u2028\u2029", "end\r"];
      const out = spawnSync(
        "python3",
        [
          "-c",
          "import json,sys\nsys.stdout.write(json.dumps([s.splitlines() for s in json.load(sys.stdin)]))",
        ],
        { input: JSON.stringify(samples), encoding: "utf8" },
      );
      expect(samples.map(splitTextLines)).toEqual(JSON.parse(out.stdout));
      const bout = spawnSync(
        "python3",
        [
          "-c",
          "import json,sys\nsys.stdout.write(json.dumps([[l.decode('latin1') for l in s.encode('latin1').splitlines()] for s in json.load(sys.stdin)]))",
        ],
        { input: JSON.stringify(samples.slice(0, 3)), encoding: "utf8" },
      );
      expect(samples.slice(0, 3).map((s) => text(splitByteLines(bytes(s))))).toEqual(
        JSON.parse(bout.stdout),
      );
    },
  );
});
