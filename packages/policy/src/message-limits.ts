import type { Handler, ServerContext, Session } from "@smtpkit/core/server";
import { canonicalAddress } from "./network-key.js";
import {
  describeWindow,
  guarded,
  type LimitName,
  loginOf,
  type PolicyContext,
  type Rate,
  refuse,
  retrySeconds,
  STORE_FAILED,
} from "./report.js";

export interface TransactionLimitOptions {
  /** Per connection. */
  readonly perConnection?: number;
  /** Per window, for each authenticated user, or for each address when the client has not authenticated. */
  readonly rate?: Rate;
}

export interface MessageLimitOptions {
  /** Messages (MAIL commands): over `perConnection` → `421 4.7.0` (reconnect); over the rate → `450 4.7.1`. */
  readonly messages?: TransactionLimitOptions;
  /** Recipients (RCPT commands): over `perConnection` → `452 4.5.3`; over the rate → `450 4.7.1`. */
  readonly recipients?: TransactionLimitOptions;
}

/** Who a rate counts against: `user:<login>` once authenticated, else the address. */
function identity(session: Session): string | null {
  const login = loginOf(session);
  if (login !== null) return `user:${login}`;
  return session.peer ? canonicalAddress(session.peer.address) : null;
}

/**
 * Messages and recipients per connection and per window: MAIL and RCPT commands are counted as
 * they come (a refused one too: a client guessing addresses pays for each guess).
 */
export function messageLimits(context: PolicyContext, options: MessageLimitOptions): Handler {
  const { messages, recipients } = options;
  const store = context.store;
  /** Session id → MAIL and RCPT commands so far on the connection. */
  const counts = new Map<string, { messages: number; recipients: number }>();
  const countsOf = (session: Session) => {
    let entry = counts.get(session.id);
    if (!entry) {
      entry = { messages: 0, recipients: 0 };
      counts.set(session.id, entry);
    }
    return entry;
  };
  const perConnection =
    messages?.perConnection !== undefined || recipients?.perConnection !== undefined;

  const rateCheck = (
    server: ServerContext,
    limit: LimitName,
    what: string,
    kind: string,
    rate: Rate,
  ): string | undefined | Promise<string | undefined> => {
    const subject = identity(server.session);
    if (subject === null) return undefined;
    return guarded(
      server,
      () => store.increment(`${kind}-rate:${subject}`, rate.windowMs),
      (hit) => {
        if (hit === STORE_FAILED)
          return context.onStoreError === "refuse"
            ? "451 4.3.0 Temporary failure, try again later"
            : undefined;
        if (hit.count <= rate.limit) return undefined;
        const retryAfter = retrySeconds(hit.resetMs);
        return refuse(context, server, {
          limit,
          subject,
          count: hit.count,
          max: rate.limit,
          windowMs: rate.windowMs,
          retryAfter,
          reply: `450 4.7.1 Too many ${what} from ${subject} (at most ${rate.limit} per ${describeWindow(rate.windowMs)}), retry in ${retryAfter} s`,
        });
      },
    );
  };

  const fragment: Handler = {};
  if (messages) {
    const { perConnection: max, rate } = messages;
    fragment.handleMAIL = (server, session) => {
      if (max !== undefined) {
        const entry = countsOf(session);
        entry.messages += 1;
        if (entry.messages > max)
          return refuse(context, server, {
            limit: "messagesPerConnection",
            subject: identity(session) ?? "-",
            count: entry.messages,
            max,
            windowMs: null,
            retryAfter: null,
            reply: `421 4.7.0 ${server.hostname} Too many messages in one connection (at most ${max}), reconnect to send more`,
          });
      }
      return rate ? rateCheck(server, "messageRate", "messages", "msg", rate) : undefined;
    };
  }
  if (recipients) {
    const { perConnection: max, rate } = recipients;
    fragment.handleRCPT = (server, session) => {
      if (max !== undefined) {
        const entry = countsOf(session);
        entry.recipients += 1;
        if (entry.recipients > max)
          return refuse(context, server, {
            limit: "recipientsPerConnection",
            subject: identity(session) ?? "-",
            count: entry.recipients,
            max,
            windowMs: null,
            retryAfter: null,
            reply: `452 4.5.3 Too many recipients in one connection (at most ${max})`,
          });
      }
      return rate ? rateCheck(server, "recipientRate", "recipients", "rcpt", rate) : undefined;
    };
  }
  if (perConnection) {
    fragment.handleCLOSE = (_server: ServerContext, session: Session) => {
      counts.delete(session.id);
    };
  }
  return fragment;
}
