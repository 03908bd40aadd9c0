import type { ReplyLike } from "../reply.js";
import type { ProxyData } from "../syntax/proxy-protocol.js";
import type { MessageBody } from "./body.js";
import type { Envelope, Session } from "./session.js";
import type { ServerContext } from "./smtp-options.js";

export type Awaitable<T> = T | Promise<T>;

/** `handleCONNECT` may hold the greeting: `delay` ms, then greet (or send `reply`). */
export interface ConnectDecision {
  readonly delay: number;
  readonly reply?: ReplyLike;
}

/** Why a connection ended, as `handleCLOSE` sees it. */
export type CloseReason =
  | "quit"
  | "eof"
  | "timeout"
  | "shutdown"
  | "refused"
  | "lost"
  | "tooManyUnknownCommands"
  | "callLimit"
  | "proxyRejected"
  | "closedByServer";

/** What `handleAUTHResult` learns of an AUTH exchange. */
export interface AuthVerdict {
  readonly mechanism: string;
  readonly success: boolean;
  /** The identity the mechanism names, when it exposes one (`authData.login`, a string). */
  readonly login: string | null;
}
/**
 * What a body filter (`filterBody`) hands on to the later filters and the delivery instead of the
 * body it was given.
 */
export interface BodyFilterResult {
  /** Header lines to put before the message, each ending in CRLF (e.g. `Authentication-Results:`). */
  readonly prepend?: Uint8Array | string | undefined;
  /**
   * The message to hand on in place of the one given (e.g. a replay of a spooled copy); needed
   * when the filter read the body. Without it the body given goes on, still unread.
   */
  readonly body?: AsyncIterable<Uint8Array> | undefined;
}

/** A hook's answer: a reply (`"250 OK"` or a `Reply`), or nothing for the default behaviour. */
export type HookResult = ReplyLike | undefined | null | void;

/**
 * A handler: a plain object whose optional hooks are called at each step of the dialog, named
 * like aiosmtpd's (`handle_DATA` → `handleDATA`). Each gets `(server, session, envelope, ...args,
 * signal)`; the `AbortSignal` fires when the client goes away or the server stops.
 *
 * Unlike aiosmtpd, a hook does not have to perform the default state change: return a 2xx reply
 * (or nothing) and the server records the address / host name itself; the envelope and session
 * fields are already set when a later hook runs.
 */
export interface Handler {
  /**
   * A client connected (after its PROXY header, when one is expected), before the greeting; called
   * as `(server, session, signal)`. Return nothing to greet; a reply to refuse (`554 5.7.1 ...`
   * keeps the connection until QUIT and answers 503 to the rest, as RFC 5321 §3.1 asks; `421` or
   * `521` close it); or `{ delay }` to greet after `delay` ms (a greet pause or tarpit), with
   * `reply` to refuse after it. A client that talks during the delay is an early talker: refused
   * with `521 5.5.1` unless the `earlyTalkers: "allow"` option.
   */
  handleCONNECT?(
    server: ServerContext,
    session: Session,
    signal: AbortSignal,
  ): Awaitable<ConnectDecision | HookResult>;
  /**
   * The connection is over, whatever ended it; called once per connection as `(server, session,
   * reason)`. Its result is ignored; a throw is logged.
   */
  handleCLOSE?(server: ServerContext, session: Session, reason: CloseReason): Awaitable<unknown>;
  handleHELO?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    hostname: string,
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  /** Also called for LMTP's LHLO. `responses` is the planned reply; return a list of lines to replace it. */
  handleEHLO?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    hostname: string,
    responses: string[],
    signal: AbortSignal,
  ): Awaitable<readonly string[] | HookResult>;
  handleMAIL?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    address: string,
    mailOptions: string[],
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  handleRCPT?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    address: string,
    rcptOptions: string[],
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  /**
   * The whole message is in `envelope.content` / `envelope.originalContent`. In LMTP mode, return
   * a list to give one reply per recipient (in `envelope.rcptTos` order).
   */
  handleDATA?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    signal: AbortSignal,
  ): Awaitable<readonly ReplyLike[] | HookResult>;
  /**
   * Streaming alternative to `handleDATA` (smtpkit's addition): called when the body starts, with
   * the body as it arrives (`for await (const chunk of body)`, `body.getReader()`, or
   * `body.stream()` for a web `ReadableStream`), which applies backpressure to the client. Its
   * promise settles with the reply once the body is consumed. If a limit is crossed or the
   * transaction ends without the body completing (RSET after a BDAT chunk, the client leaving),
   * reading rejects and the client gets the engine's reply whatever this returns: clean up then.
   * When both hooks exist, `handleDATA` is not called.
   */
  handleDATAStream?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    body: MessageBody,
    signal: AbortSignal,
  ): Awaitable<readonly ReplyLike[] | HookResult>;
  /**
   * A body stage, run by `compose()` only: called when the body starts, before the fragment that
   * delivers it, in fragment order. Return nothing to pass the body on untouched (unread); a
   * reply to refuse the message (the delivery is not called); or a `BodyFilterResult`: header
   * lines to prepend, and, when the filter read the body (to verify a signature over all of it),
   * the body to hand on (a replay of a copy it kept). A filter that read the body and hands none
   * on is an error.
   */
  filterBody?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    body: MessageBody,
    signal: AbortSignal,
  ): Awaitable<BodyFilterResult | HookResult>;
  handleRSET?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  handleNOOP?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    argument: string | null,
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  handleQUIT?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  handleVRFY?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    address: string,
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  /**
   * Takes over the whole AUTH exchange (aiosmtpd's `handle_AUTH`): use `server.challengeAuth()`,
   * set `session.authenticated`, return the final reply.
   */
  handleAUTH?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    args: string[],
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  /**
   * An AUTH exchange is about to run the mechanism (for every mechanism, built-in or not, and
   * before `handleAUTH`): return a reply to refuse it without looking at credentials (e.g. `454
   * 4.7.0` or `421 4.7.0` when a client has failed too often), nothing to go on.
   */
  handleAUTHAttempt?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    mechanism: string,
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  /**
   * An AUTH exchange ended with a verdict (success, or a failure of any mechanism, SCRAM
   * included). A client's `*` cancel is no verdict, unless the mechanism had already refused it
   * (SCRAM's `e=invalid-proof`): a cancel or a hang-up after that is a failure, reported even
   * though no reply follows. Return a reply to send instead of the final one (e.g. `421` to
   * close after too many failures); the verdict stands.
   */
  handleAUTHResult?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    result: AuthVerdict,
    signal: AbortSignal,
  ): Awaitable<HookResult>;
  /** A valid PROXY header arrived: return true to go on, false to close. */
  handlePROXY?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    proxyData: ProxyData,
    signal: AbortSignal,
  ): Awaitable<boolean>;
  /** After the STARTTLS handshake: return false to refuse every later command but QUIT (554). */
  handleSTARTTLS?(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    signal: AbortSignal,
  ): Awaitable<boolean | undefined | void>;
  /** An exception escaped a hook or command: return the reply (default `500 Error: (Name) message`). */
  handleException?(error: unknown): Awaitable<HookResult>;
}
