import type { RemoteProtocolError } from "./errors.js";
import type { Reply } from "./reply.js";
import type { DataError } from "./syntax/data-reader.js";
import type { DeliverBy } from "./syntax/deliver-by.js";
import type { EsmtpParam } from "./syntax/esmtp-params.js";
import type { ProxyData } from "./syntax/proxy-protocol.js";
import type { Rrvs } from "./syntax/rrvs.js";

export type { DeliverBy } from "./syntax/deliver-by.js";
export type { Rrvs } from "./syntax/rrvs.js";

import type { RelayAddress } from "./syntax/relay-attributes.js";

/**
 * What `ServerConnection.nextEvent()` returns. Events marked "awaits a reply" leave the connection
 * waiting for a decision (`accept()`, `reply()`, and the per-event methods named below); nothing
 * further is parsed until then, which is what keeps pipelined commands answered in order. The
 * others are information; the engine has already queued any reply.
 */
export type SmtpEvent =
  | NeedData
  | Paused
  | ConnectEvent
  | ProxyHeaderEvent
  | HelloEvent
  | MailEvent
  | RcptEvent
  | DataStartEvent
  | BodyChunkEvent
  | BodyEndEvent
  | RsetEvent
  | NoopEvent
  | QuitEvent
  | VrfyEvent
  | StartTlsEvent
  | AuthEvent
  | AuthResponseEvent
  | AuthAbortedEvent
  | CommandEvent
  | XclientEvent
  | XforwardEvent
  | RejectedEvent
  | ClosedEvent;

/** No complete input: call `receiveData()` (with an empty array at end of input). */
export interface NeedData {
  readonly type: "needData";
}
/** Waiting for `tlsEstablished()` after STARTTLS; input is being discarded. */
export interface Paused {
  readonly type: "paused";
}
export const NEED_DATA: NeedData = Object.freeze({ type: "needData" });
export const PAUSED: Paused = Object.freeze({ type: "paused" });

/**
 * The events that wait for the program's decision (a `bodyEnd` does too when it has no error);
 * the others are information.
 */
export const AWAITS_DECISION: ReadonlySet<SmtpEvent["type"]> = new Set<SmtpEvent["type"]>([
  "connect",
  "proxyHeader",
  "hello",
  "mail",
  "rcpt",
  "rset",
  "noop",
  "quit",
  "vrfy",
  "auth",
  "authResponse",
  "command",
  "startTls",
  "xclient",
  "xforward",
]);

/** A PROXY header arrived. Awaits a decision: `accept()` continues with the greeting, `rejectProxy()` closes. */
export interface ProxyHeaderEvent {
  readonly type: "proxyHeader";
  readonly proxy: ProxyData;
}

/**
 * HELO, EHLO or LHLO with a host name. Awaits a reply; `responses` is the planned reply (EHLO:
 * every line). `reply()` with a multi-line reply replaces it. The transaction was reset.
 */
export interface HelloEvent {
  readonly type: "hello";
  readonly verb: "HELO" | "EHLO" | "LHLO";
  readonly hostname: string;
  readonly extended: boolean;
  readonly responses: readonly string[];
}

/** MAIL FROM, after every syntax and parameter check. Awaits a reply; a 2xx opens the transaction. */
export interface MailEvent {
  readonly type: "mail";
  /** The addr-spec, or `"<>"` for the null reverse-path (aiosmtpd's form). */
  readonly address: string;
  readonly params: readonly EsmtpParam[];
  /** `KEYWORD` / `KEYWORD=value` strings, aiosmtpd's `mail_options`. */
  readonly options: readonly string[];
  readonly smtpUtf8: boolean;
  /** `BODY=`; BINARYMIME (RFC 3030) only when offered, and its body can only come by BDAT. */
  readonly body: BodyType | null;
  readonly size: number | null;
  readonly requireTls: boolean;
  readonly dsn: { readonly ret: "FULL" | "HDRS" | null; readonly envelopeId: string | null } | null;
  /** RFC 4954 §5 `AUTH=`, when AUTH is offered; null without the parameter. */
  readonly auth: MailAuth | null;
  /** RFC 6710 `MT-PRIORITY=`, -9 to 9, when offered; null without the parameter. */
  readonly mtPriority: number | null;
  /** RFC 2852 `BY=`, when offered; null without the parameter. */
  readonly deliverBy: DeliverBy | null;
  /** RFC 4865 `HOLDFOR=` / `HOLDUNTIL=`, when offered; null without either. */
  readonly futureRelease: FutureRelease | null;
}

export type BodyType = "7BIT" | "8BITMIME" | "BINARYMIME";

/** MAIL's `AUTH=` parameter (RFC 4954 §5). */
export interface MailAuth {
  /** The decoded mailbox the client says submitted the message; null for `AUTH=<>`. */
  readonly submitter: string | null;
  /**
   * The session is authenticated. When false the server must treat the message as `AUTH=<>`
   * (RFC 4954 §5) and may only log the submitter.
   */
  readonly trusted: boolean;
}

/** MAIL's `HOLDFOR=` / `HOLDUNTIL=` (RFC 4865): when the message is to be released. */
export interface FutureRelease {
  /** `HOLDFOR=` in seconds, when that was the parameter. */
  readonly holdFor: number | null;
  /** `HOLDUNTIL=`, when that was the parameter (possibly already past: release at once). */
  readonly holdUntil: Date | null;
  /** The release time: `holdUntil`, or the MAIL command's time plus `holdFor`. */
  readonly releaseAt: Date;
}

/** RCPT TO, after every check. Awaits a reply; a 2xx adds the recipient. */
export interface RcptEvent {
  readonly type: "rcpt";
  readonly address: string;
  readonly params: readonly EsmtpParam[];
  readonly options: readonly string[];
  readonly dsn: {
    readonly notify: readonly ("NEVER" | "SUCCESS" | "FAILURE" | "DELAY")[] | null;
    readonly originalRecipient: { readonly type: string; readonly address: string } | null;
  } | null;
  /** RFC 7293 `RRVS=`, when offered; null without the parameter. */
  readonly rrvs: Rrvs | null;
}

/** A message body begins (after `354`, or with the first BDAT chunk). Information. */
export interface DataStartEvent {
  readonly type: "dataStart";
  readonly via: "DATA" | "BDAT";
}

/** Body bytes, unstuffed: a view into received memory, valid until the caller reuses it. Information. */
export interface BodyChunkEvent {
  readonly type: "bodyChunk";
  readonly data: Uint8Array;
}

/**
 * The body is complete. With `error === null` it awaits a reply: `accept()` or `reply()`, and in
 * LMTP mode `replyPerRecipient()` with one reply per accepted recipient (`reply()` serves all).
 * With a `DataError` (a limit was crossed) the engine has queued the error reply and ended the
 * transaction; the body must be discarded. With `"aborted"` the transaction ended while the body
 * was open (RSET, HELO/EHLO/LHLO, STARTTLS or QUIT after a non-LAST BDAT chunk; end of input,
 * `closeConnection()` or a 421 during DATA or BDAT): the engine has sent no reply for it and the
 * body must be discarded. It comes before the event of the command that ended the body (and
 * before `closed`). Every `dataStart` is followed by exactly one `bodyEnd`.
 */
export interface BodyEndEvent {
  readonly type: "bodyEnd";
  readonly error: DataError | "aborted" | null;
  /** Body octets as counted for SIZE (raw, before unstuffing). */
  readonly size: number;
  /** Accepted recipients, in order; LMTP replies map onto these. */
  readonly recipients: readonly string[];
}

export interface RsetEvent {
  readonly type: "rset";
}
export interface NoopEvent {
  readonly type: "noop";
  readonly argument: string | null;
}
/** Awaits a reply; the connection closes after it is sent. */
export interface QuitEvent {
  readonly type: "quit";
}
export interface VrfyEvent {
  readonly type: "vrfy";
  readonly address: string;
}

/**
 * STARTTLS was accepted: `220` is queued and everything received after the STARTTLS line has been
 * dropped (RFC 3207 §6). Send the output, run the handshake, then call `tlsEstablished()`.
 */
export interface StartTlsEvent {
  readonly type: "startTls";
}

/** AUTH with a known mechanism. Awaits `challenge()` or `completeAuth()`. */
export interface AuthEvent {
  readonly type: "auth";
  /** Upper-case mechanism name. */
  readonly mechanism: string;
  /** Decoded initial response; an empty array for `=`; `null` when none was sent. */
  readonly initialResponse: Uint8Array | null;
}
/** The client's answer to a `334` challenge, decoded. Awaits `challenge()` or `completeAuth()`. */
export interface AuthResponseEvent {
  readonly type: "authResponse";
  readonly response: Uint8Array;
}
/** The client cancelled with `*` or sent bad base64; the engine has replied 501. Information. */
export interface AuthAbortedEvent {
  readonly type: "authAborted";
  readonly reason: "cancelled" | "badBase64" | "lineTooLong";
}

/** A command from `options.commands` (added, or replacing a built-in). Awaits a reply or `runBuiltin()`. */
export interface CommandEvent {
  readonly type: "command";
  readonly verb: string;
  /**
   * As aiosmtpd's `arg`: `null` when nothing followed the verb's space, else the rest with ASCII
   * white space stripped (possibly "").
   */
  readonly argument: string | null;
  readonly builtin: boolean;
}

/**
 * With `deferGreeting`: the client is connected (after the PROXY header, if any) and no greeting
 * has been sent. Awaits a reply: `accept()` greets with 220; `reply()` refuses instead of the
 * greeting — a 4xx or 521 closes the connection, another 5xx (RFC 5321 §3.1's 554) leaves it open
 * answering 503 to everything but QUIT.
 */
export interface ConnectEvent {
  readonly type: "connect";
}
export const CONNECT: ConnectEvent = Object.freeze({ type: "connect" });

/**
 * XCLIENT from a trusted client (Postfix's XCLIENT_README), every attribute checked. Awaits a
 * decision: `accept()` starts a fresh session (a new `220` greeting, or a `connect` event with
 * `deferGreeting`; HELO/EHLO needed again, authenticated when LOGIN= was sent); `reply()` refuses.
 * Each field is `undefined` when not sent, `null` for `[UNAVAILABLE]` (`[TEMPUNAVAIL]` for NAME).
 */
export interface XclientEvent {
  readonly type: "xclient";
  /** Every attribute as sent: upper-case name → xtext-decoded value. */
  readonly attributes: Readonly<Record<string, string>>;
  readonly address: RelayAddress | null | undefined;
  readonly port: number | null | undefined;
  readonly name: string | null | undefined;
  readonly helo: string | null | undefined;
  readonly proto: "SMTP" | "ESMTP" | undefined;
  readonly login: string | null | undefined;
  readonly destAddress: RelayAddress | null | undefined;
  readonly destPort: number | null | undefined;
}

/**
 * XFORWARD from a trusted client (Postfix's XFORWARD_README): the up-stream client of the next
 * transaction. Awaits a decision: `accept()` answers `250 2.0.0 Ok`. Fields as in `XclientEvent`.
 */
export interface XforwardEvent {
  readonly type: "xforward";
  readonly attributes: Readonly<Record<string, string>>;
  readonly address: RelayAddress | null | undefined;
  readonly port: number | null | undefined;
  readonly name: string | null | undefined;
  readonly helo: string | null | undefined;
  readonly proto: string | null | undefined;
  readonly ident: string | null | undefined;
  readonly source: "LOCAL" | "REMOTE" | null | undefined;
}

/** The engine answered a command with an error by itself (bad syntax, bad sequence, limits). Information. */
export interface RejectedEvent {
  readonly type: "rejected";
  readonly verb: string;
  readonly reply: Reply;
  /** The same, as h11's remote protocol error: what the peer did wrong, with the reply sent for it. */
  readonly error: RemoteProtocolError;
}

/** The session is over. Send any remaining output, then close the transport. Returned from then on. */
export interface ClosedEvent {
  readonly type: "closed";
  readonly reason:
    | "quit"
    | "eof"
    | "tooManyUnknownCommands"
    | "callLimit"
    | "proxyRejected"
    | "closedByServer";
}
