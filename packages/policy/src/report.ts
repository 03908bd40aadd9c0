import type { ServerContext, Session } from "@smtpkit/core/server";
import type { Awaitable, LimitStore } from "./store.js";

/** Which limit a client reached. */
export type LimitName =
  | "connections"
  | "networkConnections"
  | "connectionRate"
  | "messagesPerConnection"
  | "messageRate"
  | "recipientsPerConnection"
  | "recipientRate"
  | "authFailures"
  | "userAuthFailures";

/** What `onLimit` and the server log learn of each refusal. */
export interface LimitEvent {
  readonly limit: LimitName;
  /** Who reached it: an address, a network (`192.0.2.0/24`) or `user:<login>`. */
  readonly subject: string;
  /** The count that was refused (the connections open, the hits in the window). */
  readonly count: number;
  /** The configured maximum. */
  readonly max: number;
  /** The window of a rate limit, in milliseconds; `null` for a count per connection or a concurrency limit. */
  readonly windowMs: number | null;
  /** Seconds until the window frees (the `retry in N s` of the reply); `null` when there is no window. */
  readonly retryAfter: number | null;
  /** The reply sent. */
  readonly reply: string;
  readonly session: Session;
}

/** A count of hits in a window: at most `limit` per `windowMs` milliseconds. */
export interface Rate {
  readonly limit: number;
  readonly windowMs: number;
}

/** What every fragment of `limits()` shares. */
export interface PolicyContext {
  readonly store: LimitStore;
  readonly onLimit: ((event: LimitEvent) => void) | undefined;
  /** `"allow"`: a store that fails lets the client through (logged); `"refuse"`: a temporary refusal. */
  readonly onStoreError: "allow" | "refuse";
}

/** `Math.ceil` in seconds, at least 1: a hint of 0 would invite an immediate retry. */
export function retrySeconds(resetMs: number): number {
  return Math.max(1, Math.ceil(resetMs / 1000));
}

/** `60 s`, `1 min`, `1 h`: a window as the reply text says it. */
export function describeWindow(windowMs: number): string {
  if (windowMs % 3_600_000 === 0) return `${windowMs / 3_600_000} h`;
  if (windowMs % 60_000 === 0) return `${windowMs / 60_000} min`;
  return `${Math.ceil(windowMs / 1000)} s`;
}

/** Logs the refusal (server logger, info level) and tells `onLimit`; returns the reply. */
export function refuse(
  context: PolicyContext,
  server: ServerContext,
  event: Omit<LimitEvent, "session">,
): string {
  const session = server.session;
  const logger = server.options.logger;
  if (logger) {
    const window = event.windowMs === null ? "" : ` per ${describeWindow(event.windowMs)}`;
    const retry = event.retryAfter === null ? "" : `, retry in ${event.retryAfter} s`;
    logger.info(
      `${peerText(session)} limit ${event.limit} reached by ${event.subject}: ${event.count} of ${event.max}${window}${retry}`,
    );
  }
  if (context.onLimit) {
    try {
      context.onLimit({ ...event, session });
    } catch (error) {
      logger?.error(`onLimit failed: ${String((error as Error)?.stack ?? error)}`);
    }
  }
  return event.reply;
}

/**
 * Runs a store operation and hands its result to `next`: at once when the store answered at once
 * (the memory store: no promise), once it settles otherwise. A failing store (Redis away, a
 * timeout) is logged and `next` gets `STORE_FAILED`, to let the client through or refuse it for
 * now, as configured.
 */
export function guarded<T, R>(
  server: ServerContext,
  operation: () => Awaitable<T>,
  next: (value: T | typeof STORE_FAILED) => Awaitable<R>,
): Awaitable<R> {
  let value: Awaitable<T>;
  try {
    value = operation();
  } catch (error) {
    return next(storeFailed(server, error));
  }
  if (!isPromise(value)) return next(value);
  return value.then(next, (error: unknown) => next(storeFailed(server, error)));
}

/** `guarded()` as a promise, for the hooks that are not on every connection's path. */
export function attempt<T>(
  server: ServerContext,
  operation: () => Awaitable<T>,
): Promise<T | typeof STORE_FAILED> {
  return Promise.resolve(guarded(server, operation, (value) => value));
}

function isPromise<T>(value: Awaitable<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function storeFailed(server: ServerContext, error: unknown): typeof STORE_FAILED {
  server.options.logger?.error(
    `${peerText(server.session)} limit store failed: ${String((error as Error)?.message ?? error)}`,
  );
  return STORE_FAILED;
}
export const STORE_FAILED: unique symbol = Symbol("store failed");

export function peerText(session: Session): string {
  const peer = session.peer;
  if (!peer) return "-";
  return peer.family === "unix" ? peer.address || "unix" : `${peer.address}:${peer.port}`;
}

/** The identity a message or recipient rate counts against: the authenticated user, else the address. */
export function loginOf(session: Session): string | null {
  if (session.authenticated !== true) return null;
  const data = session.authData;
  if (typeof data === "string") return data;
  const login = (data as { login?: unknown } | null)?.login;
  if (typeof login === "string") return login;
  return login instanceof Uint8Array ? new TextDecoder().decode(login) : null;
}

/** Checks an option: a positive integer or absent. */
export function positive(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be an integer >= 1, not ${value}`);
  return value;
}

export function checkRate(name: string, rate: Rate | undefined): Rate | undefined {
  if (rate === undefined) return undefined;
  positive(`${name}.limit`, rate.limit);
  if (!Number.isFinite(rate.windowMs) || rate.windowMs < 1)
    throw new RangeError(`${name}.windowMs must be at least 1 ms, not ${rate.windowMs}`);
  return rate;
}
