import { catalogueReply, REPLIES } from "../engine/replies.js";
import { SmtpError } from "../errors.js";
import { formatReply, type Reply, type ReplyLike, toReply } from "../reply.js";
import type { Handler } from "./handler.js";
import type { ServerContext } from "./smtp-options.js";

/**
 * The one exception policy. Whatever a hook or command does wrong — throws, rejects, or returns
 * something that is not a reply — the client gets exactly one reply and the session goes on:
 *
 * - a thrown `SmtpError` is a deliberate answer: its reply is sent as it is, nothing is logged;
 * - anything else is logged once, then `handleException(error)` chooses the reply (aiosmtpd);
 *   without that hook the reply is aiosmtpd's `500 Error: (Name) message`; a `handleException`
 *   that returns nothing gives `451 4.3.0`, one that throws gives the description of its error.
 *
 * The step the hook was for does not take effect (no recipient added, no message accepted).
 */

/** The hooks called as `(server, session, envelope, ...args, signal)`. */
export type HookName = Exclude<
  keyof Handler,
  | "handleDATA"
  | "handleDATAStream"
  | "handleAUTH"
  | "handleException"
  | "handleCONNECT"
  | "handleCLOSE"
>;

/** A hook's result, or the reply its failure earned. */
export interface Outcome {
  readonly value: unknown;
  readonly error: Reply | null;
}

export const NO_HOOK: Outcome = Object.freeze({ value: undefined, error: null });

export type ErrorLog = (message: string) => void;

/**
 * Calls a hook. A hook that answers synchronously is answered synchronously (no promise is made);
 * a throw or rejection becomes its reply under the policy above.
 */
export function callHook(
  call: () => unknown,
  handler: Handler,
  log: ErrorLog,
): Outcome | Promise<Outcome> {
  let value: unknown;
  try {
    value = call();
  } catch (error) {
    return failure(error, handler, log).then(asError);
  }
  return settle(value, handler, log);
}

/** A hook's return value as its outcome: at once, or once a returned promise settles. */
function settle(value: unknown, handler: Handler, log: ErrorLog): Outcome | Promise<Outcome> {
  if (!isThenable(value)) return { value, error: null };
  return Promise.resolve(value).then(
    (settled) => ({ value: settled, error: null }),
    (error: unknown) => failure(error, handler, log).then(asError),
  );
}

/**
 * Calls the handler's hook `name` as `(server, session, envelope, ...args, signal)`; a missing
 * hook costs nothing (no closure, no signal).
 */
export function namedHook(
  server: ServerContext & { readonly handler: Handler },
  name: HookName,
  args: readonly unknown[],
  log: ErrorLog,
): Outcome | Promise<Outcome> {
  const handler = server.handler;
  const fn = handler[name] as ((...all: unknown[]) => unknown) | undefined;
  if (!fn) return NO_HOOK;
  let value: unknown;
  try {
    value = fn.call(handler, server, server.session, server.envelope, ...args, server.signal);
  } catch (error) {
    return failure(error, handler, log).then(asError);
  }
  return settle(value, handler, log);
}

/** The reply for a failed hook (see the policy above). */
export async function failure(error: unknown, handler: Handler, log: ErrorLog): Promise<Reply> {
  if (error instanceof SmtpError) return error.reply;
  log(`handler error: ${String((error as Error)?.stack ?? error)}`);
  const hook = handler.handleException;
  if (!hook) return toReply(describe(error));
  try {
    const result = await hook.call(handler, error);
    if (result === undefined || result === null) return catalogueReply(REPLIES.internalError, true);
    return toReply(result as ReplyLike);
  } catch (secondary) {
    return toReply(describe(secondary));
  }
}

/**
 * A hook's value as a reply: `null` for "the default" (nothing returned), a `Reply` otherwise.
 * Throws `TypeError` when the value is not a reply (the hook's own fault, handled by the policy).
 */
export function replyOf(value: unknown): Reply | null {
  if (value === undefined || value === null) return null;
  // `handleEHLO` may return its reply as a list of lines (`"250-..."` strings or replies).
  if (Array.isArray(value)) return toReply(value.map(lineOf).join("\r\n"));
  return toReply(value as ReplyLike);
}

function lineOf(line: unknown): string {
  return typeof line === "string" ? line : formatReply(toReply(line as Reply)).trimEnd();
}

/** aiosmtpd's description of an exception as a reply. */
function describe(error: unknown): string {
  try {
    const name = (error as { name?: unknown })?.name ?? typeof error;
    const message = (error as { message?: unknown })?.message ?? String(error);
    // One line: a message with line breaks must not become a malformed reply.
    return `500 Error: (${String(name)}) ${String(message)}`.replace(/[\r\n]+/g, " ");
  } catch {
    return "500 Error: Cannot describe error";
  }
}

function asError(reply: Reply): Outcome {
  return { value: undefined, error: reply };
}

/** A promise or any other thenable (what a hook may return instead of its answer). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
