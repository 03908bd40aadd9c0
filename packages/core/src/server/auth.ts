import type { ServerConnection } from "../engine/connection.js";
import { catalogueReply, REPLIES } from "../engine/replies.js";
import { type Reply, type ReplyLike, toReply } from "../reply.js";
import { encodeBase64 } from "../syntax/base64.js";
import type { Handler } from "./handler.js";
import { callHook, type ErrorLog } from "./hooks.js";
import type { AuthMechanism } from "./mechanisms.js";
import type { AuthResult, ServerContext } from "./smtp-options.js";

/** What an AUTH exchange needs of the session running it. */
export interface AuthSession {
  readonly server: ServerContext;
  readonly handler: Handler;
  readonly connection: ServerConnection;
  readonly mechanisms: ReadonlyMap<string, AuthMechanism>;
  readonly logError: ErrorLog;
}

const TEMPORARY_FAILURE = catalogueReply(REPLIES.authTemporaryFailure, true);

/**
 * Runs one AUTH exchange to its end: the handler's `handleAUTH` when it has one (aiosmtpd), else
 * the named mechanism, which talks to the client through `server.challengeAuth()`.
 */
export async function authenticate(
  auth: AuthSession,
  mechanismName: string,
  initialResponse: Uint8Array | null,
): Promise<void> {
  const { server, handler } = auth;
  if (handler.handleAUTH) {
    const args =
      initialResponse === null ? [mechanismName] : [mechanismName, base64Arg(initialResponse)];
    const outcome = await callHook(
      () => handler.handleAUTH?.(server, server.session, server.envelope, args, server.signal),
      handler,
      auth.logError,
    );
    finishWithReply(auth, outcome.error ?? (outcome.value as ReplyLike | null | undefined));
    return;
  }
  const mechanism = auth.mechanisms.get(mechanismName);
  if (!mechanism) {
    finishWithResult(auth, { success: false });
    return;
  }
  let result: AuthResult | null;
  try {
    result = await mechanism(server, initialResponse);
  } catch (error) {
    // A broken mechanism or credential store: log it, tell the client nothing internal.
    auth.logError(`AUTH ${mechanismName} failed: ${String((error as Error)?.stack ?? error)}`);
    finishWithReply(auth, TEMPORARY_FAILURE);
    return;
  }
  if (result === null) return; // the client aborted; the engine has replied
  finishWithResult(auth, result);
}

/** A mechanism's result: the session records it, the engine sends 235 or 535 (or `message`). */
function finishWithResult(auth: AuthSession, result: AuthResult): void {
  if (auth.connection.phase !== "reply") return;
  const session = auth.server.session;
  session.authenticated = result.success;
  if (result.success) session.authData = result.authData ?? null;
  auth.connection.completeAuth(result.success, result.message ?? null);
}

/** `handleAUTH`'s reply: 235 means success unless the hook set `session.authenticated` itself. */
function finishWithReply(auth: AuthSession, value: ReplyLike | Reply | null | undefined): void {
  if (auth.connection.phase !== "reply") return; // a 501 abort already ended the exchange
  let parsed: Reply | null = null;
  try {
    parsed = value === undefined || value === null ? null : toReply(value);
  } catch (error) {
    auth.logError(`handleAUTH returned something that is not a reply: ${String(error)}`);
    parsed = TEMPORARY_FAILURE;
  }
  const session = auth.server.session;
  const success = parsed !== null && parsed.code === 235;
  if (session.authenticated === null) session.authenticated = success;
  auth.connection.completeAuth(success || session.authenticated === true, parsed);
}

/** aiosmtpd passes the initial response on to `handleAUTH` as it came: base64, `=` for empty. */
function base64Arg(bytes: Uint8Array): string {
  return bytes.length === 0 ? "=" : encodeBase64(bytes);
}

/** The bytes of a `334` challenge: `encodeToB64 = false` means the text is already base64. */
export function challengeBytes(challenge: string | Uint8Array, encodeToB64: boolean): Uint8Array {
  if (encodeToB64) return typeof challenge === "string" ? ENCODER.encode(challenge) : challenge;
  const text = typeof challenge === "string" ? challenge : new TextDecoder().decode(challenge);
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

const ENCODER = new TextEncoder();
