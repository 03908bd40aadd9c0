/**
 * @smtpkit/compliance: the cases every smtpkit transport adapter runs against itself (as
 * js-libp2p's interface compliance tests). Runtime-neutral: web globals only. The runtime's
 * sockets and child processes come in through `ComplianceRuntime` (see `./node`, `./deno`,
 * `./bun`), the adapter through its `serve()`.
 *
 * ```ts
 * import { complianceCases, registerCases } from "@smtpkit/compliance";
 * import { nodeRuntime } from "@smtpkit/compliance/node";
 * registerCases(complianceCases({ serve, runtime: nodeRuntime }), test); // vitest or bun:test
 * ```
 */
export { ComplianceError } from "./assert.js";
export { complianceCases } from "./cases.js";
export { SmtpClient } from "./client.js";
export { makeCertificate, nodemailer, presentedCertificate, smtplib } from "./real-clients.js";
export type {
  ClientSocket,
  ComplianceCase,
  ComplianceOptions,
  ComplianceRuntime,
  ComplianceServeOptions,
  ComplianceServer,
  ComplianceTls,
  ExecResult,
  PemKeyPair,
  ServeFunction,
} from "./types.js";

import type { ComplianceCase } from "./types.js";

/** `test(name, fn, timeout)` as vitest and bun:test have it. */
export type TestFunction = (name: string, fn: () => Promise<void>, timeout?: number) => unknown;

/**
 * Registers the cases with a test runner: vitest's or bun:test's `test`. A case the adapter
 * declared as a gap (`skip`) goes to `test.skip`, under a name that gives the reason.
 */
export function registerCases(
  cases: readonly ComplianceCase[],
  test: TestFunction & { skip?: TestFunction },
): void {
  for (const c of cases) {
    if (c.skip === undefined) test(c.name, () => c.run(), c.timeout);
    else (test.skip ?? test)(`${c.name} [skip: ${c.skip}]`, async () => undefined);
  }
}
