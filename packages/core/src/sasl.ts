/**
 * The step-machine interface SASL mechanisms implement (RFC 4422). A mechanism never touches the
 * connection: the server feeds it the client's decoded responses and acts on each step, so the
 * same mechanism runs under any transport and in tests without one. `@smtpkit/auth` implements
 * CRAM-MD5, SCRAM, XOAUTH2, OAUTHBEARER and EXTERNAL with it; PLAIN and LOGIN ship with the server.
 */

/** What a mechanism may know about the connection. */
export interface SaslContext {
  /** The server's host name (OAUTHBEARER error responses, CRAM-MD5 challenges). */
  readonly hostname: string;
  /** TLS details when encrypted: EXTERNAL reads the client certificate, -PLUS mechanisms bind to the channel. */
  readonly tls: {
    readonly peerCertificate: unknown;
    readonly authorized: boolean;
    exportKeyingMaterial?(length: number, label: string, context?: Uint8Array): Uint8Array;
    readonly serverCertificate?: Uint8Array | null;
  } | null;
  /** Fires when the connection ends: lets a policy keep per-connection state. */
  readonly signal?: AbortSignal;
  /** The server's per-connection session object, for policies that need to tell connections apart. */
  readonly session?: unknown;
}

/** The program's verdict on a `credentials` step (aiosmtpd's `AuthResult`). */
export interface SaslVerdict {
  readonly success: boolean;
  readonly authData?: unknown;
  readonly message?: string;
}

export type SaslStep =
  /**
   * Send `334 base64(challenge)` and call `step()` again with the answer. `verdict: "failure"`:
   * the mechanism has already refused the client and this challenge says why (SCRAM's
   * `e=invalid-proof`); the exchange fails whatever comes next, and counts as a failed verdict
   * even if the client cancels or leaves instead of answering. `login` as for `failure`.
   */
  | {
      readonly type: "challenge";
      readonly challenge: Uint8Array;
      readonly verdict?: "failure";
      readonly login?: string;
    }
  /**
   * The client has proven nothing yet but named its credentials: the server passes them to the
   * program's authenticator (aiosmtpd's `authenticator(server, session, envelope, mechanism, authData)`)
   * and ends the exchange with its verdict.
   */
  | { readonly type: "credentials"; readonly credentials: unknown }
  /** The mechanism verified the client itself (SCRAM, EXTERNAL with a verified certificate). */
  | { readonly type: "success"; readonly authData: unknown }
  /**
   * Refuse, with a reply such as `501 5.5.2 Can't split auth value` (default 535 5.7.8). `login`:
   * the identity the client claimed, when known (per-user failure limits count it).
   */
  | { readonly type: "failure"; readonly reply?: string; readonly login?: string };

export interface SaslExchange {
  /** `response` is `null` only for the first step when the client sent no initial response. */
  step(response: Uint8Array | null): SaslStep | Promise<SaslStep>;
  /**
   * Optional: hears the authenticator's verdict on a `credentials` step and decides how to go
   * on, e.g. OAUTHBEARER sends its JSON error challenge before failing. Without it the verdict
   * ends the exchange.
   */
  verdict?(verdict: SaslVerdict): SaslStep | Promise<SaslStep>;
}

export interface SaslMechanism {
  /** Upper-case name as advertised, e.g. `"SCRAM-SHA-256"`. */
  readonly name: string;
  /**
   * The secret never crosses the wire in a recoverable form, so the mechanism may be offered
   * without TLS even when `authRequireTls` is on (CRAM-MD5, SCRAM). PLAIN and LOGIN are not.
   */
  readonly safeWithoutTls?: boolean;
  /**
   * Optional: whether the mechanism can run on this connection (EXTERNAL needs a client
   * certificate, -PLUS needs channel-binding data). Asked again after STARTTLS.
   */
  available?(context: SaslContext): boolean;
  start(context: SaslContext): SaslExchange;
}
