import type { BodyType, DeliverBy, FutureRelease, Rrvs } from "../events.js";
import type { EsmtpParam } from "../syntax/esmtp-params.js";
import type { ProxyData } from "../syntax/proxy-protocol.js";
import type { RelayAddress } from "../syntax/relay-attributes.js";
import type { PeerAddress, TlsInfo } from "./transport.js";

/**
 * Per-connection state, aiosmtpd's `Session`. A new one is made on connect and after STARTTLS.
 * Handlers may add their own fields for coordination between hooks.
 */
export class Session {
  /**
   * This connection's id: short, unique, sortable by start time; the same across STARTTLS. Use it
   * in logs, trace headers and metrics.
   */
  id = "";
  /**
   * The client. Behind a trusted PROXY header, the address the header names (the proxy itself is
   * `transportPeer`); relay commands (XCLIENT) may replace it too.
   */
  peer: PeerAddress | null;
  /**
   * The client's host name from reverse DNS (set by a lookup such as `@smtpkit/verify`'s
   * `reverseDns()`); `null` when none was looked up or found. Trust it only when `fcrdns`.
   */
  reverseName: string | null = null;
  /**
   * Whether `reverseName` is forward-confirmed (it resolves back to `peer`'s address); `null`
   * when no lookup ran.
   */
  fcrdns: boolean | null = null;
  /** The other end of the socket, whatever the PROXY header or a relay command said. */
  transportPeer: PeerAddress | null = null;
  /** The address and port the client connected to (this server's side of the socket). */
  localAddress: string | null = null;
  localPort: number | null = null;
  /** `"LMTP"` for an LMTP server, else `"SMTP"`. */
  protocol: "SMTP" | "LMTP" = "SMTP";
  /** TLS details for both STARTTLS and implicit TLS; `null` in clear. */
  ssl: TlsInfo | null;
  /** The HELO/EHLO/LHLO argument; `null` until one is accepted. */
  hostName: string | null = null;
  /** True after EHLO/LHLO, false after HELO. */
  extendedSmtp = false;
  /** What the authenticator returned on success (`AuthResult.authData`). */
  authData: unknown = null;
  /** `null` before any AUTH, then true on success or false on failure (aiosmtpd's documented tri-state). */
  authenticated: boolean | null = null;
  /** The PROXY protocol header, when one was received. */
  proxyData: ProxyData | null = null;
  /**
   * Every XCLIENT attribute received on this connection (upper-case name → xtext-decoded value,
   * later commands overriding earlier ones); `null` when the client sent none.
   */
  xclient: Readonly<Record<string, string>> | null = null;
  /** The user a trusted relay vouched for with XCLIENT `LOGIN=` (`authenticated` is then true). */
  login: string | null = null;
  readonly #signal: AbortSignal | (() => AbortSignal);
  [extra: string]: unknown;

  /** `signal` may be a function: the signal is then only made when someone asks for it. */
  constructor(
    peer: PeerAddress | null,
    ssl: TlsInfo | null,
    signal: AbortSignal | (() => AbortSignal),
  ) {
    this.peer = peer;
    this.ssl = ssl;
    this.#signal = signal;
  }

  /** Fires when the client goes away or the server stops. */
  get signal(): AbortSignal {
    return typeof this.#signal === "function" ? this.#signal() : this.#signal;
  }

  /**
   * The RFC 3848 transmission type for trace headers (`Received: ... with ESMTPSA`): SMTP after
   * HELO; ESMTP or LMTP with `S` under TLS and `A` once authenticated. See `transmissionType()`
   * for a transaction's type with SMTPUTF8 (RFC 6531).
   */
  get transmissionType(): string {
    if (this.protocol === "SMTP" && !this.extendedSmtp) return "SMTP";
    const base = this.protocol === "LMTP" ? "LMTP" : "ESMTP";
    return `${base}${this.ssl ? "S" : ""}${this.authenticated === true ? "A" : ""}`;
  }
}

/**
 * The transmission type of a transaction: the session's, as `UTF8SMTP…` / `UTF8LMTP…` when the
 * client asked for SMTPUTF8 (RFC 6531 §3.7.3).
 */
export function transmissionType(session: Session, envelope: Envelope | null): string {
  const type = session.transmissionType;
  if (!envelope?.smtpUtf8) return type;
  return type.startsWith("LMTP") ? `UTF8${type}` : `UTF8${type.replace(/^E?SMTP/, "SMTP")}`;
}

/** What a new Session made after STARTTLS keeps of the connection. */
export function carryConnection(from: Session, to: Session): void {
  to.id = from.id;
  to.peer = from.peer;
  to.reverseName = from.reverseName;
  to.fcrdns = from.fcrdns;
  to.transportPeer = from.transportPeer;
  to.localAddress = from.localAddress;
  to.localPort = from.localPort;
  to.protocol = from.protocol;
  to.proxyData = from.proxyData;
  to.xclient = from.xclient;
}

/**
 * The up-stream client of a transaction, as a trusted relay sent it with XFORWARD; `null` for
 * what it did not send or sent as `[UNAVAILABLE]` (Postfix's XFORWARD_README: the session's own
 * client attributes are never mixed in).
 */
export interface ForwardedClient {
  readonly address: RelayAddress | null;
  readonly port: number | null;
  readonly name: string | null;
  readonly helo: string | null;
  readonly proto: string | null;
  readonly ident: string | null;
  readonly source: "LOCAL" | "REMOTE" | null;
  /** Every attribute as sent: upper-case name → xtext-decoded value. */
  readonly attributes: Readonly<Record<string, string>>;
}

/**
 * Per-transaction state, aiosmtpd's `Envelope`. Renewed after HELO/EHLO, RSET, STARTTLS and the
 * end of every message.
 */
export class Envelope {
  /** The reverse-path; `"<>"` for the null path, as aiosmtpd. */
  mailFrom: string | null = null;
  /** MAIL parameters as `KEYWORD` / `KEYWORD=value` strings. */
  mailOptions: string[] = [];
  /** Parsed MAIL parameters. */
  mailParams: EsmtpParam[] = [];
  smtpUtf8 = false;
  /** MAIL's `BODY=` (RFC 6152, RFC 3030); null when not given. A `BINARYMIME` body came by BDAT. */
  bodyType: BodyType | null = null;
  /**
   * RFC 4954 §5, MAIL's `AUTH=`: the mailbox that submitted the message, when an authenticated
   * client named one; null for `AUTH=<>` and for any value from an unauthenticated client (the
   * server must then act as if `<>` was given); undefined without the parameter. A relay passes
   * it on (null as `AUTH=<>`); `handleMAIL` may set null when it does not trust the client.
   */
  auth: string | null | undefined = undefined;
  /** MAIL's `MT-PRIORITY=` (RFC 6710), -9 to 9; null when not given. */
  mtPriority: number | null = null;
  /** MAIL's `BY=` (RFC 2852); null when not given. */
  deliverBy: DeliverBy | null = null;
  /** MAIL's `HOLDFOR=` / `HOLDUNTIL=` (RFC 4865): when to release the message; null when not given. */
  futureRelease: FutureRelease | null = null;
  /**
   * RCPT's `RRVS=` (RFC 7293) by recipient address. The MAIL and RCPT values are on the envelope
   * while `handleMAIL` / `handleRCPT` run, and withdrawn when the command is refused.
   */
  rrvs = new Map<string, Rrvs>();
  /** The body: bytes, or a string with `decodeData`. Set before `handleDATA`, only when it exists. */
  content: Uint8Array | string | null = null;
  /** The body as received (after dot-unstuffing), always bytes. */
  originalContent: Uint8Array | null = null;
  rcptTos: string[] = [];
  /** RCPT parameters as strings, one flat list (aiosmtpd's `rcpt_options`). */
  rcptOptions: string[] = [];
  /** RCPT parameters per recipient, parallel to `rcptTos`. */
  rcptParams: EsmtpParam[][] = [];
  /** XFORWARD's up-stream client for this transaction (renewed with the envelope), or null. */
  xforward: ForwardedClient | null = null;
  [extra: string]: unknown;
}
