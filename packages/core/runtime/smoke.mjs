// Runs every shared dialog case once and prints "N passed, M failed"; exits 1 on any failure.
// Works unchanged under Node (`node runtime/smoke.mjs`), Deno (`deno run --allow-read runtime/smoke.mjs`)
// and Bun (`bun runtime/smoke.mjs`). Uses no runtime API beyond console and globalThis.
import { cases } from "./shared-cases.mjs";

const runtime =
  typeof globalThis.Deno !== "undefined"
    ? `deno ${globalThis.Deno.version.deno}`
    : typeof globalThis.Bun !== "undefined"
      ? `bun ${globalThis.Bun.version}`
      : typeof globalThis.process !== "undefined"
        ? `node ${globalThis.process.versions.node}`
        : "unknown runtime";

let passed = 0;
let failed = 0;
let knownIssues = 0;
const indent = (text) => String(text).replaceAll("\n", "\n     ");
for (const testCase of cases) {
  const started = performance.now();
  try {
    await testCase.run();
    passed++;
    const ms = (performance.now() - started).toFixed(0);
    if (testCase.knownIssue)
      console.log(`FIXED ${testCase.name} (${ms} ms): passes now, drop its knownIssue`);
    else console.log(`ok   ${testCase.name} (${ms} ms)`);
  } catch (error) {
    if (testCase.knownIssue) {
      knownIssues++;
      console.log(
        `KNOWN ${testCase.name}\n     ${indent(testCase.knownIssue)}\n     -> ${indent(
          String(error?.message ?? error)
            .split("\n")
            .slice(0, 3)
            .join("\n"),
        )}`,
      );
    } else {
      failed++;
      console.log(`FAIL ${testCase.name}\n     ${indent(error?.stack ?? error)}`);
    }
  }
}
if (knownIssues > 0)
  console.log(`${runtime}: ${knownIssues} known engine issue(s) still present (not counted)`);
console.log(`${runtime}: ${passed} passed, ${failed} failed`);
if (failed > 0) {
  // Deno and Bun both provide `process` as a global too, but set the code through what exists.
  if (typeof globalThis.Deno !== "undefined") globalThis.Deno.exit(1);
  else globalThis.process.exit(1);
}
