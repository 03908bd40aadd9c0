import type { ServerConnection } from "../engine/connection.js";
import { catalogueReply, REPLIES } from "../engine/replies.js";
import type { SmtpEvent } from "../events.js";
import { type Reply, type ReplyLike, toReply } from "../reply.js";
import { encodeBase64 } from "../syntax/base64.js";
import type { AuthVerdict, Handler } from "./handler.js";
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
  /** Told every verdict (not a plain cancel, nor an attempt refused before it began), for the observer. */
  readonly verdict?: ((mechanism: string, success: boolean) => void) | undefined;
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
  if (handler.handleAUTHAttempt) {
    const attempt = await callHook(
      () =>
        handler.handleAUTHAttempt?.(
          server,
          server.session,
          server.envelope,
          mechanismName,
          server.signal,
        ),
      handler,
      auth.logError,
    );
    const refusal = attempt.error ?? (attempt.value as ReplyLike | null | undefined);
    if (refusal !== undefined && refusal !== null) {
      // Refused before any credential was looked at: not a verdict, nothing is counted.
      auth.connection.completeAuth(false, toReplyOr(refusal, auth));
      return;
    }
  }
  if (handler.handleAUTH) {
    const args =
      initialResponse === null ? [mechanismName] : [mechanismName, base64Arg(initialResponse)];
    const outcome = await callHook(
      () => handler.handleAUTH?.(server, server.session, server.envelope, args, server.signal),
      handler,
      auth.logError,
    );
    await finishWithReply(
      auth,
      mechanismName,
      outcome.error ?? (outcome.value as ReplyLike | null | undefined),
    );
    return;
  }
  const mechanism = auth.mechanisms.get(mechanismName);
  if (!mechanism) {
    await finishWithResult(auth, mechanismName, { success: false });
    return;
  }
  let result: AuthResult | null;
  try {
    result = await mechanism(server, initialResponse);
  } catch (error) {
    // A broken mechanism or credential store: log it, tell the client nothing internal.
    auth.logError(`AUTH ${mechanismName} failed: ${String((error as Error)?.stack ?? error)}`);
    // A broken store is not the client's failure: no verdict for handleAUTHResult.
    if (auth.connection.phase !== "reply") return;
    if (server.session.authenticated === null) server.session.authenticated = false;
    auth.connection.completeAuth(false, TEMPORARY_FAILURE);
    return;
  }
  if (result === null) return; // the client aborted; the engine has replied
  await finishWithResult(auth, mechanismName, result);
}

/** A mechanism's result: the session records it, the engine sends 235 or 535 (or `message`). */
async function finishWithResult(
  auth: AuthSession,
  mechanism: string,
  result: AuthResult,
): Promise<void> {
  const session = auth.server.session;
  if (auth.connection.phase !== "reply") {
    // A refusal the client did not wait for (it cancelled, or left): no reply to send, but a
    // failed verdict all the same, for handleAUTHResult's counting and the observer.
    if (result.success) return;
    if (session.authenticated === null) session.authenticated = false;
    const login = result.login ?? loginOf(result.authData);
    await verdictHook(auth, { mechanism, success: false, login });
    auth.verdict?.(mechanism, false);
    return;
  }
  session.authenticated = result.success;
  if (result.success) session.authData = result.authData ?? null;
  const login = result.login ?? loginOf(result.authData);
  const replaced = await verdictHook(auth, { mechanism, success: result.success, login });
  auth.connection.completeAuth(result.success, replaced ?? result.message ?? null);
  auth.verdict?.(mechanism, result.success);
}

/** `handleAUTH`'s reply: 235 means success unless the hook set `session.authenticated` itself. */
async function finishWithReply(
  auth: AuthSession,
  mechanism: string,
  value: ReplyLike | Reply | null | undefined,
): Promise<void> {
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
  const verdict = success || session.authenticated === true;
  const replaced = await verdictHook(auth, {
    mechanism,
    success: verdict,
    login: loginOf(session.authData),
  });
  auth.connection.completeAuth(verdict, replaced ?? parsed);
  auth.verdict?.(mechanism, verdict);
}

/** Tells `handleAUTHResult` the verdict; returns the reply it chose instead of the final one. */
async function verdictHook(auth: AuthSession, verdict: AuthVerdict): Promise<Reply | null> {
  const { server, handler } = auth;
  if (!handler.handleAUTHResult) return null;
  const outcome = await callHook(
    () =>
      handler.handleAUTHResult?.(server, server.session, server.envelope, verdict, server.signal),
    handler,
    auth.logError,
  );
  if (auth.connection.phase !== "reply") return null;
  const value = outcome.error ?? (outcome.value as ReplyLike | null | undefined);
  return value === undefined || value === null ? null : toReplyOr(value, auth);
}

function toReplyOr(value: ReplyLike | Reply, auth: AuthSession): Reply {
  try {
    return toReply(value);
  } catch (error) {
    auth.logError(`an AUTH hook returned something that is not a reply: ${String(error)}`);
    return TEMPORARY_FAILURE;
  }
}

/** `authData.login` (or `authData` itself) when it is a user name. */
function loginOf(authData: unknown): string | null {
  if (typeof authData === "string") return authData;
  const login = (authData as { login?: unknown } | null)?.login;
  if (typeof login === "string") return login;
  return login instanceof Uint8Array ? new TextDecoder().decode(login) : null;
}

/** aiosmtpd passes the initial response on to `handleAUTH` as it came: base64, `=` for empty. */
function base64Arg(bytes: Uint8Array): string {
  return bytes.length === 0 ? "=" : encodeBase64(bytes);
}

/**
 * After a `334` challenge: the client's decoded answer, or `null` when it cancelled, sent bad
 * base64 (the engine answered 501) or left. `fill` reads more input and says whether the session
 * is still open; `seen` is told the events taken.
 */
export async function challengeResponse(
  connection: ServerConnection,
  fill: () => Promise<boolean>,
  seen: { event(event: SmtpEvent): void } | null,
): Promise<Uint8Array | null> {
  for (;;) {
    const event = connection.nextEvent();
    if (event.type === "needData") {
      if (!(await fill())) return null;
      continue;
    }
    seen?.event(event);
    return event.type === "authResponse" ? event.response : null;
  }
}

/** The bytes of a `334` challenge: `encodeToB64 = false` means the text is already base64. */
export function challengeBytes(challenge: string | Uint8Array, encodeToB64: boolean): Uint8Array {
  if (encodeToB64) return typeof challenge === "string" ? ENCODER.encode(challenge) : challenge;
  const text = typeof challenge === "string" ? challenge : new TextDecoder().decode(challenge);
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

const ENCODER = new TextEncoder();
