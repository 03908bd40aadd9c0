/**
 * Golden C:/S: transcripts, one file per command family (format: test/helpers/dialog.ts). Each
 * section runs in every mode it names (enhanced status codes on, and aiosmtpd's plain texts), once
 * one client action at a time — checking what is answered after each action — and once with the
 * whole client side pipelined in a single chunk, which must give the same bytes.
 */
import { describe, expect, it } from "vitest";
import {
  dialog,
  goldenCloseReason,
  goldenOutput,
  goldenParts,
  optionsFor,
  runGoldenStepwise,
} from "./helpers/dialog.js";
import { GOLDEN_FILES, GOLDEN_SECTIONS, policyFor } from "./helpers/golden-files.js";

describe("golden files", () => {
  it("are all loaded and each has at least one section", () => {
    expect(GOLDEN_FILES.size).toBeGreaterThanOrEqual(14);
    for (const file of GOLDEN_FILES.keys()) {
      expect(
        GOLDEN_SECTIONS.some((section) => section.file === file),
        file,
      ).toBe(true);
    }
  });

  it("have unique section titles per file", () => {
    const seen = new Set<string>();
    for (const section of GOLDEN_SECTIONS) {
      const key = `${section.file} ${section.title}`;
      expect(seen.has(key), key).toBe(false);
      seen.add(key);
    }
  });
});

for (const file of GOLDEN_FILES.keys()) {
  describe(file, () => {
    for (const section of GOLDEN_SECTIONS.filter((s) => s.file === file)) {
      for (const mode of section.modes) {
        const name = `${section.title} [${mode}]`;
        const chosen = policyFor(section);

        it(`${name}: step by step`, () => {
          const checks = runGoldenStepwise(section, mode, chosen);
          expect(checks.map((c) => `after ${c.after}:\n${c.actual}`)).toEqual(
            checks.map((c) => `after ${c.after}:\n${c.expected}`),
          );
        });

        it(`${name}: pipelined`, () => {
          const d = dialog(goldenParts(section), {
            options: optionsFor(section, mode),
            ...(chosen ? { policy: chosen } : {}),
          });
          expect(d.output).toBe(goldenOutput(section, mode));
          const reason = goldenCloseReason(section);
          if (reason !== null) expect(d.closedReason).toBe(reason);
        });
      }
    }
  });
}
