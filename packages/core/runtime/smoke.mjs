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
const indent = (text) => String(text).replaceAll("\n", "\n     ");
for (const testCase of cases) {
  const started = performance.now();
  try {
    await testCase.run();
    passed++;
    console.log(`ok   ${testCase.name} (${(performance.now() - started).toFixed(0)} ms)`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${testCase.name}\n     ${indent(error?.stack ?? error)}`);
  }
}
console.log(`${runtime}: ${passed} passed, ${failed} failed`);
if (failed > 0) {
  // Deno and Bun both provide `process` as a global too, but set the code through what exists.
  if (typeof globalThis.Deno !== "undefined") globalThis.Deno.exit(1);
  else globalThis.process.exit(1);
}
