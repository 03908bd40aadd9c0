import type { EsmtpParam } from "../syntax/esmtp-params.js";
import type { ProxyData } from "../syntax/proxy-protocol.js";
import type { PeerAddress, TlsInfo } from "./transport.js";

/**
 * Per-connection state, aiosmtpd's `Session`. A new one is made on connect and after STARTTLS.
 * Handlers may add their own fields for coordination between hooks.
 */
export class Session {
  /** The connected client; behind a trusted PROXY header, the proxy itself (see `proxyData`). */
  peer: PeerAddress | null;
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
  /** The body: bytes, or a string with `decodeData`. Set before `handleDATA`, only when it exists. */
  content: Uint8Array | string | null = null;
  /** The body as received (after dot-unstuffing), always bytes. */
  originalContent: Uint8Array | null = null;
  rcptTos: string[] = [];
  /** RCPT parameters as strings, one flat list (aiosmtpd's `rcpt_options`). */
  rcptOptions: string[] = [];
  /** RCPT parameters per recipient, parallel to `rcptTos`. */
  rcptParams: EsmtpParam[][] = [];
  [extra: string]: unknown;
}
