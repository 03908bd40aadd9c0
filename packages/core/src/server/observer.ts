import type { Session } from "./session.js";
import type { TlsInfo } from "./transport.js";

/**
 * What a server reports about its sessions, for logs, metrics and traces (`options.observer`;
 * `@smtpkit/observability` has subscribers for pino, prom-client, diagnostics_channel and
 * OpenTelemetry). Every method is optional and gets one event object, made only when an observer
 * is set: without one the server pays nothing. Methods are called synchronously, in the order
 * things happen; one that throws is logged (`options.logger`) and the session goes on. Events never
 * carry credentials (AUTH arguments and responses are not in them).
 *
 * `session.id` names the session in every event (the `Session` object itself is replaced after
 * STARTTLS; the id stays). A transaction (an accepted MAIL up to the end of its body, RSET, or a
 * new HELO/EHLO) has an id too: `<session id>.<n>`, n counting from 1 in the session.
 */
export interface SmtpObserver {
  /** A client connected (before the greeting; before its PROXY header, when one is expected). */
  connect?(event: SessionObservation): void;
  /** TLS is up: after a STARTTLS handshake (`implicit: false`) or on an SMTPS connection. */
  tls?(event: TlsObservation): void;
  /** Every command line the server took (one per verb, valid or not; AUTH responses are not). */
  command?(event: CommandObservation): void;
  /** An AUTH exchange reached a verdict (as for `handleAUTHResult`; a plain cancel has none). */
  auth?(event: AuthObservation): void;
  /** The handler (or the default) answered MAIL: `transactionId` is set when it was accepted. */
  mail?(event: MailObservation): void;
  /** The handler (or the default) answered RCPT. */
  rcpt?(event: RcptObservation): void;
  /** A message body ended: accepted or rejected (with the code sent), or aborted (no reply). */
  data?(event: DataObservation): void;
  /** Every reply sent, the greeting included (its final line's code). */
  reply?(event: ReplyObservation): void;
  /** A command was refused with a 4xx or 5xx, by the engine or by the handler. */
  reject?(event: RejectObservation): void;
  /** A limit was hit (size, recipients, line length, call limit, timeout, connections). */
  limit?(event: LimitObservation): void;
  /** Something failed on the server's side (a hook threw, a transport broke). */
  error?(event: ErrorObservation): void;
  /** The session is over: the transport is closed and `handleCLOSE` has run. The last event. */
  close?(event: CloseObservation): void;
  /**
   * The session's dialog line by line as `-dd` prints it: `> MAIL FROM:<a@example.com>` (client,
   * AUTH payloads as `********`) and `< 250 2.0.0 OK` (server). Set it only to record transcripts.
   */
  transcript?(event: TranscriptObservation): void;
}

export interface SessionObservation {
  readonly session: Session;
}

export interface TlsObservation extends SessionObservation {
  readonly tls: TlsInfo;
  /** True for SMTPS (TLS from the first byte), false after STARTTLS. */
  readonly implicit: boolean;
}

export interface CommandObservation extends SessionObservation {
  /** Upper case as the engine parsed it; `""` for a line without one (too long, garbage). */
  readonly verb: string;
}

export interface AuthObservation extends SessionObservation {
  /** Upper-case mechanism name. */
  readonly mechanism: string;
  readonly success: boolean;
}

export interface TransactionObservation extends SessionObservation {
  /** `null` when no transaction is open (a refused MAIL). */
  readonly transactionId: string | null;
}

export interface MailObservation extends TransactionObservation {
  readonly address: string;
  readonly code: number;
}

export interface RcptObservation extends TransactionObservation {
  readonly address: string;
  readonly code: number;
}

export interface DataObservation extends TransactionObservation {
  readonly result: "accepted" | "rejected" | "aborted";
  /** The reply's code; `null` for an aborted body. In LMTP, the first recipient's. */
  readonly code: number | null;
  /** Body octets as the client sent them (counted for SIZE). */
  readonly bytes: number;
  /** Milliseconds from the first body byte's command (DATA, first BDAT) to the reply. */
  readonly durationMs: number;
  readonly recipients: number;
  /** The transaction's sender (the accepted MAIL's address; `""` for the null sender `<>`). */
  readonly from: string | null;
}

export interface ReplyObservation extends SessionObservation {
  readonly code: number;
}

export interface RejectObservation extends TransactionObservation {
  /** The command refused (`""` for a line without a verb). */
  readonly command: string;
  readonly code: number;
}

/** Which limit: the option that sets it. */
export type LimitName =
  | "dataSizeLimit"
  | "maxRecipients"
  | "lineLengthLimit"
  | "commandCallLimit"
  | "unknownCommands"
  | "timeout"
  | "maxConnections";

export interface LimitObservation {
  /** `null` for a connection refused before a session began (`maxConnections`). */
  readonly session: Session | null;
  readonly limit: LimitName;
  readonly code: number;
}

export interface ErrorObservation extends SessionObservation {
  readonly message: string;
}

export interface CloseObservation extends SessionObservation {
  /**
   * `handleCLOSE`'s `CloseReason`: `"quit"`, `"eof"`, `"timeout"`, `"shutdown"`, `"refused"`,
   * `"lost"`, `"tooManyUnknownCommands"`, `"callLimit"`, `"proxyRejected"`, `"closedByServer"`.
   */
  readonly reason: string;
  readonly durationMs: number;
  /** Octets read from and written to the transport (after TLS decryption). */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export interface TranscriptObservation extends SessionObservation {
  /** `"client"` for `> ` lines and what the server made of the input, `"server"` for `< ` lines. */
  readonly from: "client" | "server";
  readonly line: string;
}

/** The observer's methods, in the order of a session. */
export const OBSERVER_EVENTS = [
  "connect",
  "tls",
  "command",
  "auth",
  "mail",
  "rcpt",
  "data",
  "reply",
  "reject",
  "limit",
  "error",
  "close",
  "transcript",
] as const satisfies readonly (keyof SmtpObserver)[];

/**
 * One observer calling several in order (for `options.observer`); each keeps its own methods,
 * class methods included. An observer without `transcript` costs no transcript lines.
 */
export function combineObservers(...observers: readonly SmtpObserver[]): SmtpObserver {
  const combined: Record<string, (event: never) => void> = {};
  for (const name of OBSERVER_EVENTS) {
    const callers = observers.filter((o) => typeof o[name] === "function");
    if (callers.length === 0) continue;
    const methods = callers.map((o) => (o[name] as (event: never) => void).bind(o));
    const [first, second] = methods as [(event: never) => void, (event: never) => void];
    // One or two subscribers (the usual case) without a loop per event.
    if (methods.length === 1) combined[name] = first;
    else if (methods.length === 2)
      combined[name] = (event: never) => {
        first(event);
        second(event);
      };
    else
      combined[name] = (event: never) => {
        for (const method of methods) method(event);
      };
  }
  return combined as SmtpObserver;
}
