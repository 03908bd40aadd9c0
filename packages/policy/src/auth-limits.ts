import type { AuthVerdict, Handler, ServerContext, Session } from "@smtpkit/core/server";
import { canonicalAddress } from "./network-key.js";
import {
  attempt,
  describeWindow,
  type PolicyContext,
  type Rate,
  refuse,
  retrySeconds,
  STORE_FAILED,
} from "./report.js";

export interface AuthFailureLimitOptions extends Rate {
  /**
   * Count failures per address (`"ip"`), per claimed user (`"user"`, against guessing one
   * account from many addresses) or both (default).
   */
  readonly per?: "ip" | "user" | "both";
  /**
   * How an address over the limit is refused before it sends credentials: `454` (default,
   * `454 4.7.0`, the connection stays) or `421` (`421 4.7.0`, closed).
   */
  readonly refusal?: 454 | 421;
}

/**
 * Failed AUTH per address and per user in a window, for every mechanism (SCRAM included): an
 * address over the limit is refused before it sends credentials (`handleAUTHAttempt`); every
 * failed verdict is counted (`handleAUTHResult`). A user over the limit gets `421 4.7.0` whatever
 * the password, success or failure alike, so the reply tells a guesser nothing.
 *
 * A SCRAM client learns that its proof was wrong from the server's `e=invalid-proof` challenge;
 * if it then cancels (`*`) or hangs up, the server still reports the failed verdict, so the
 * address and the user are both counted. An exchange that ends before any credentials were
 * checked counts as a failure of the address.
 */
export function authFailureLimits(
  context: PolicyContext,
  options: AuthFailureLimitOptions,
): Handler {
  const { limit, windowMs } = options;
  const per = options.per ?? "both";
  const byIp = per !== "user";
  const byUser = per !== "ip";
  const refusal = options.refusal ?? 454;
  const store = context.store;
  const addressOf = (session: Session) =>
    session.peer ? canonicalAddress(session.peer.address) : null;
  /** Sessions (by id) whose AUTH exchange has begun and has no verdict yet. */
  const pending = new Set<string>();
  const countUnfinished = async (server: ServerContext, session: Session) => {
    if (!pending.delete(session.id) || !byIp) return;
    const address = addressOf(session);
    if (address !== null)
      await attempt(server, () => store.increment(`auth-fail:${address}`, windowMs));
  };

  const userLocked = (server: ServerContext, login: string, count: number, resetMs: number) => {
    const retryAfter = retrySeconds(resetMs);
    return refuse(context, server, {
      limit: "userAuthFailures",
      subject: `user:${login}`,
      count,
      max: limit,
      windowMs,
      retryAfter,
      reply: `421 4.7.0 ${server.hostname} Too many failed authentications for this user, retry in ${retryAfter} s`,
    });
  };

  return {
    async handleAUTHAttempt(server: ServerContext, session: Session) {
      await countUnfinished(server, session); // the previous exchange was cancelled
      pending.add(session.id);
      if (!byIp) return undefined;
      const address = addressOf(session);
      if (address === null) return undefined;
      const failures = await attempt(server, () => store.get(`auth-fail:${address}`));
      if (failures === STORE_FAILED) {
        if (context.onStoreError !== "refuse") return undefined;
        pending.delete(session.id);
        return "454 4.7.0 Temporary authentication failure";
      }
      if (failures.count < limit) return undefined;
      pending.delete(session.id); // refused: no exchange to count
      const retryAfter = retrySeconds(failures.resetMs);
      const text = `Too many failed authentications from ${address} (at most ${limit} per ${describeWindow(windowMs)}), retry in ${retryAfter} s`;
      return refuse(context, server, {
        limit: "authFailures",
        subject: address,
        count: failures.count,
        max: limit,
        windowMs,
        retryAfter,
        reply: refusal === 421 ? `421 4.7.0 ${server.hostname} ${text}` : `454 4.7.0 ${text}`,
      });
    },
    async handleAUTHResult(
      server: ServerContext,
      session: Session,
      _e: unknown,
      verdict: AuthVerdict,
    ) {
      pending.delete(session.id);
      const login = byUser ? verdict.login : null;
      if (verdict.success) {
        if (login === null) return undefined;
        const failures = await attempt(server, () => store.get(`auth-fail-user:${login}`));
        if (failures === STORE_FAILED || failures.count < limit) return undefined;
        return userLocked(server, login, failures.count, failures.resetMs);
      }
      const address = byIp ? addressOf(session) : null;
      const counted = await Promise.all([
        address === null
          ? null
          : attempt(server, () => store.increment(`auth-fail:${address}`, windowMs)),
        login === null
          ? null
          : attempt(server, () => store.increment(`auth-fail-user:${login}`, windowMs)),
      ]);
      const user = counted[1];
      // Locked before this attempt: the same reply as a right password would get.
      if (login !== null && user && user !== STORE_FAILED && user.count > limit)
        return userLocked(server, login, user.count, user.resetMs);
      return undefined;
    },
    async handleCLOSE(server: ServerContext, session: Session) {
      await countUnfinished(server, session); // the client left in the middle of an exchange
    },
  };
}
