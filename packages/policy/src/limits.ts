import { parseCidrList } from "@smtpkit/core";
import { compose, type Handler, type Session } from "@smtpkit/core/server";
import { type AuthFailureLimitOptions, authFailureLimits } from "./auth-limits.js";
import { type ConnectionLimitOptions, connectionLimits } from "./connection-limits.js";
import { MemoryStore } from "./memory-store.js";
import { type MessageLimitOptions, messageLimits } from "./message-limits.js";
import { checkRate, type LimitEvent, type PolicyContext, positive } from "./report.js";
import type { LimitStore } from "./store.js";

export interface LimitsOptions extends MessageLimitOptions {
  /** Where the counters live (default: a `MemoryStore` of this instance); a `RedisStore` shares them. */
  readonly store?: LimitStore;
  /** Concurrent connections and connection rate: `421 4.7.0` before the greeting. */
  readonly connections?: ConnectionLimitOptions;
  /** Failed AUTH per window: refused with `454 4.7.0` (or `421 4.7.0`) before the credentials. */
  readonly authFailures?: AuthFailureLimitOptions;
  /**
   * Called for every refusal (also logged at info level through the server's `logger`): count
   * "limits hit" in metrics here. Must not throw (a throw is logged).
   */
  readonly onLimit?: (event: LimitEvent) => void;
  /** When the store fails (Redis unreachable): let clients through (default) or refuse them for now. */
  readonly onStoreError?: "allow" | "refuse";
  /** Addresses or CIDR blocks no limit applies to (e.g. `["127.0.0.0/8", "10.0.0.0/8"]`). */
  readonly exempt?: readonly string[];
}

/**
 * The limits as one handler fragment to compose in front of the delivery:
 * `compose(limits({ connections: { perIp: 10 }, store }), new Mailbox(dir))`. Only what is
 * configured is checked, and the composed handler only has the hooks those checks need.
 */
export function limits(options: LimitsOptions): Handler {
  const context: PolicyContext = {
    store: options.store ?? new MemoryStore(),
    onLimit: options.onLimit,
    onStoreError: options.onStoreError ?? "allow",
  };
  const fragments: Handler[] = [];
  const { connections, messages, recipients, authFailures } = options;
  if (connections) {
    positive("connections.perIp", connections.perIp);
    positive("connections.perNetwork", connections.perNetwork);
    checkRate("connections.rate", connections.rate);
    if (
      connections.perIp !== undefined ||
      connections.perNetwork !== undefined ||
      connections.rate !== undefined
    )
      fragments.push(connectionLimits(context, connections));
  }
  for (const [name, limit] of [
    ["messages", messages],
    ["recipients", recipients],
  ] as const) {
    positive(`${name}.perConnection`, limit?.perConnection);
    checkRate(`${name}.rate`, limit?.rate);
  }
  if (messages || recipients)
    fragments.push(
      messageLimits(context, {
        ...(messages && { messages }),
        ...(recipients && { recipients }),
      }),
    );
  if (authFailures) {
    checkRate("authFailures", authFailures);
    fragments.push(authFailureLimits(context, authFailures));
  }
  const composed = fragments.length === 1 ? (fragments[0] as Handler) : compose(...fragments);
  return options.exempt && options.exempt.length > 0
    ? exempting(parseCidrList(options.exempt), composed)
    : composed;
}

/** `fragment`, except for clients in `exempt`: their hooks pass every step on. */
function exempting(exempt: { matches(address: string): boolean }, fragment: Handler): Handler {
  const free = (session: Session) =>
    session.peer !== null && session.peer.family !== "unix" && exempt.matches(session.peer.address);
  const wrapped: Record<string, unknown> = {};
  for (const [hook, fn] of Object.entries(fragment)) {
    if (typeof fn !== "function") continue;
    wrapped[hook] = (...args: unknown[]) =>
      free(args[1] as Session) ? undefined : Reflect.apply(fn, fragment, args);
  }
  return wrapped as Handler;
}
