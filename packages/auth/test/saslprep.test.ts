import { describe, expect, test } from "vitest";
import { saslPrep } from "../src/saslprep.js";

describe("SASLprep (RFC 4013 §3 examples)", () => {
  test.each([
    ["I\u00adX", "IX"], // SOFT HYPHEN mapped to nothing
    ["user", "user"],
    ["USER", "USER"], // case preserved
    ["\u00aa", "a"], // FEMININE ORDINAL INDICATOR, NFKC
    ["\u2168", "IX"], // ROMAN NUMERAL NINE, NFKC
    ["a\u00a0b", "a b"], // non-ASCII space mapped to SPACE
    ["\u0627\u0628", "\u0627\u0628"], // all RandALCat
  ])("%j → %j", (input, output) => {
    expect(saslPrep(input)).toBe(output);
  });

  test.each([
    ["\u0007", "prohibited ASCII control"],
    ["\u0627\u0031", "RandALCat not at both ends"],
    ["\u0627a\u0628", "RandALCat with LCat"],
    ["a\ue000", "private use"],
    ["a\ud800", "lone surrogate"],
    ["\u200e", "change display property"],
    ["a\ufffe", "non-character"],
  ])("%j is refused (%s)", (input) => {
    expect(saslPrep(input)).toBeNull();
  });
});
