import type { CommandSpec, Extensions } from "../options.js";
import type { ReplyLike } from "../reply.js";
import type { SaslMechanism } from "../sasl.js";
import type { LineEndingPolicy } from "../syntax/data-reader.js";
import type { Envelope, Session } from "./session.js";

/**
 * The server as hooks, commands, mechanisms and authenticators see it: the `SMTP` class
 * implements it (a subclass's own members are on the object too).
 */
export interface ServerContext {
  readonly options: SmtpOptions;
  /** Host name used in the greeting and replies. */
  readonly hostname: string;
  readonly session: Session;
  readonly envelope: Envelope;
  /** Fires when the client goes away or the server stops. */
  readonly signal: AbortSignal;
  /** Sends a reply now (aiosmtpd's `push`). */
  push(reply: ReplyLike): Promise<void>;
  /**
   * Sends a `334` challenge and returns the client's decoded answer, or `null` when the client
   * cancelled or sent bad base64 (aiosmtpd's `challenge_auth`).
   */
  challengeAuth(challenge: string | Uint8Array, encodeToB64?: boolean): Promise<Uint8Array | null>;
  /** Graceful shutdown of this session (421 when idle, after the transaction otherwise). */
  shutdown(): void;
  /** Ends the session now with `421 4.3.2 ... shutting down` (or `reply`). */
  abort(reply?: ReplyLike): void;
}

/** aiosmtpd's `LoginPassword`: what PLAIN and LOGIN hand to the authenticator. */
export interface LoginPassword {
  readonly login: Uint8Array;
  readonly password: Uint8Array;
}

/** aiosmtpd's `AuthResult`. A failure always gets a reply here (535 5.7.8 unless `message`). */
export interface AuthResult {
  readonly success: boolean;
  /** Set when the mechanism already sent the final reply itself. */
  readonly handled?: boolean;
  readonly message?: string;
  readonly authData?: unknown;
  /** The identity the client claimed, success or not (for policies that count per user). */
  readonly login?: string;
}

export type Authenticator = (
  server: ServerContext,
  session: Session,
  envelope: Envelope,
  mechanism: string,
  authData: unknown,
) => AuthResult | Promise<AuthResult>;

/**
 * Where the server reports what happens (aiosmtpd's `mail.log`). Messages never contain
 * credentials: AUTH arguments and responses are masked.
 */
export interface SmtpLogger {
  error(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

/** Options of the SMTP class, aiosmtpd's constructor arguments in camelCase. */
export interface SmtpOptions {
  /**
   * A client that sends before a delayed greeting (`handleCONNECT` returning `{ delay }`):
   * `"reject"` (default) answers `521 5.5.1` and closes; `"allow"` serves it.
   */
  readonly earlyTalkers?: "reject" | "allow";
  /** Default `"localhost"` (aiosmtpd uses a blocking `getfqdn()`; adapters may pass the host name). */
  readonly hostname?: string;
  readonly ident?: string;
  /** Default 33554432; 0 or null for none. */
  readonly dataSizeLimit?: number | null;
  /** Default false (aiosmtpd's SMTP class); `serve()` turns it on, as aiosmtpd's Controller does. */
  readonly enableSmtpUtf8?: boolean;
  /** `envelope.content` becomes a string; 8BITMIME is no longer offered. */
  readonly decodeData?: boolean;
  readonly requireStartTls?: boolean;
  readonly authRequired?: boolean;
  /** Default true; implicit TLS counts as TLS. */
  readonly authRequireTls?: boolean;
  readonly authExcludeMechanism?: readonly string[];
  /** More SASL mechanisms (e.g. from `@smtpkit/auth`); PLAIN and LOGIN are built in. */
  readonly mechanisms?: readonly SaslMechanism[];
  readonly authenticator?: Authenticator;
  /** Deprecated aiosmtpd form, used by PLAIN/LOGIN only when there is no `authenticator`. */
  readonly authCallback?: (
    mechanism: string,
    login: Uint8Array,
    password: Uint8Array,
  ) => boolean | Promise<boolean>;
  readonly commandCallLimit?: number | Readonly<Record<string, number>> | null;
  /** Seconds to wait for a PROXY header; enables the PROXY protocol. */
  readonly proxyProtocolTimeout?: number | null;
  /**
   * Addresses / CIDR blocks allowed to send PROXY headers (default: any). Other peers are served as
   * direct clients: no header is expected from them, and a PROXY line is an unknown command.
   */
  readonly proxyTrust?: readonly string[];
  /**
   * What a peer outside `proxyTrust` gets when the PROXY protocol is on: `"serve"` (default) serves
   * it as a direct client; `"refuse"` greets it with `554 5.7.1` (then `503` until QUIT), for a
   * server that only a load balancer may reach.
   */
  readonly proxyUntrusted?: "serve" | "refuse";
  /**
   * Seconds a client has to send a whole command line, counted from when the server starts
   * waiting for it (idle time included; bytes trickling in do not restart it). Then `421 4.4.2`
   * and close. Default 300.
   */
  readonly timeout?: number;
  /**
   * Seconds of credit a DATA/BDAT body starts with; each chunk received adds its size divided by
   * `minDataRate`, never beyond this. A client that stalls this long, or is slower than
   * `minDataRate` for long enough, gets `421 4.4.2`. Default 180 (RFC 5321 §4.5.3.2.5).
   */
  readonly dataTimeout?: number;
  /** Bytes per second a body must average (Postfix's `smtpd_min_data_rate`); 0 turns it off. Default 500. */
  readonly minDataRate?: number;
  readonly lmtp?: boolean;
  readonly lineEndings?: LineEndingPolicy;
  readonly localPartLimit?: number;
  readonly maxRecipients?: number;
  readonly extensions?: Extensions;
  readonly commandSizeLimit?: number;
  readonly lineLengthLimit?: number;
  readonly logger?: SmtpLogger;
  /** Commands added without subclassing: verb → implementation (returns or pushes the reply). */
  readonly commands?: Readonly<Record<string, CommandDefinition>>;
}

export interface CommandDefinition extends CommandSpec {
  run(
    server: ServerContext,
    argument: string | null,
    signal: AbortSignal,
  ): Promise<ReplyLikeOrVoid> | ReplyLikeOrVoid;
}
type ReplyLikeOrVoid = ReplyLike | undefined | void;
