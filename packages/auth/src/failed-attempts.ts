import type { Authenticator, AuthResult, ServerContext } from "@smtpkit/core/server";

export interface FailedAttemptsOptions {
  /** Failures allowed per connection; the last one gets `reply` and the connection closes. Default 3. */
  readonly limit?: number;
  /**
   * Milliseconds to hold back each failure reply (a tarpit against guessing), or a function of the
   * number of failures so far. Default 1000.
   */
  readonly delayMs?: number | ((failures: number) => number);
  /** Default `"421 4.7.0 Too many failed authentication attempts"`. */
  readonly reply?: string;
}

export const TOO_MANY_FAILURES = "421 4.7.0 Too many failed authentication attempts";

/** An authenticator with a per-connection failure budget (see {@link failedAttempts}). */
export type AuthenticatorWrapper = (authenticator: Authenticator) => Authenticator;

function sleep(ms: number, signal: AbortSignal | null): Promise<void> {
  if (!(ms > 0) || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Ends the session with `reply` (the server sends it, then closes). */
function closeWith(server: ServerContext, reply: string): void {
  server.abort(reply);
}

/**
 * Limits failed AUTH attempts per connection: every failure waits `delayMs` before its reply; the
 * `limit`-th failure answers `421 4.7.0` and closes the connection. Wraps any authenticator:
 *
 * ```ts
 * serve(handler, { authenticator: failedAttempts({ limit: 3, delayMs: 1000 })(users.authenticator) })
 * ```
 *
 * Counts what the authenticator refuses (PLAIN, LOGIN, CRAM-MD5, XOAUTH2/OAUTHBEARER without
 * `verify`, EXTERNAL). SCRAM verifies by itself and is not counted (see the package README).
 */
export function failedAttempts(options: FailedAttemptsOptions = {}): AuthenticatorWrapper {
  const limit = options.limit ?? 3;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError("limit must be an integer >= 1");
  const delay = options.delayMs ?? 1000;
  const reply = options.reply ?? TOO_MANY_FAILURES;
  // Keyed by the connection's signal: the Session object is replaced after STARTTLS, the signal not.
  const failures = new WeakMap<object, number>();
  return (authenticator) =>
    async (server, session, envelope, mechanism, credentials): Promise<AuthResult> => {
      const result = await authenticator(server, session, envelope, mechanism, credentials);
      if (result.success) return result;
      const signal = (session as { signal?: AbortSignal }).signal ?? null;
      const key: object = signal ?? session;
      const count = (failures.get(key) ?? 0) + 1;
      failures.set(key, count);
      if (count >= limit) {
        closeWith(server, reply);
        return { success: false, message: reply };
      }
      await sleep(typeof delay === "function" ? delay(count) : delay, signal);
      return result;
    };
}
