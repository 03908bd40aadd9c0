import { show } from "./client.js";

/** Thrown by a failing case: the message says what was expected and what came. */
export class ComplianceError extends Error {
  override name = "ComplianceError";
}

export function ok(condition: unknown, what: string): asserts condition {
  if (!condition) throw new ComplianceError(what);
}

export function equal<T>(actual: T, expected: T, what: string): void {
  const a = show(actual);
  const e = show(expected);
  if (a !== e) throw new ComplianceError(`${what}:\n  expected ${e}\n  actual   ${a}`);
}

export function match(actual: string | null | undefined, pattern: RegExp, what: string): void {
  if (actual === null || actual === undefined || !pattern.test(actual)) {
    throw new ComplianceError(`${what}: ${show(actual)} does not match ${pattern}`);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it holds; fails after `timeout` ms. */
export async function waitFor(check: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeout) throw new ComplianceError(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/**
 * Polls until `value()` has not changed for `stableFor` ms and returns it: the point where a
 * stalled pipeline has filled every buffer it has. The assertion is then made on the counts.
 */
export async function settle(value: () => number, stableFor = 500, timeout = 30_000) {
  const start = Date.now();
  let last = value();
  let since = Date.now();
  for (;;) {
    await delay(25);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= stableFor) {
      return now;
    }
    if (Date.now() - start > timeout) throw new ComplianceError("the value never settled");
  }
}

/** Rejects with a readable error when `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ComplianceError(`timed out: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
