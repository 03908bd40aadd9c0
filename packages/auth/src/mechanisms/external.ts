import type { SaslContext } from "@smtpkit/core";
import { fromUtf8Strict, INSPECT } from "../bytes.js";
import { AuthIdentity, type ContextualMechanism, challenge, EMPTY, failure } from "../types.js";

/** What EXTERNAL hands to the authenticator: the TLS client certificate and the identity from it. */
export class ExternalCredentials {
  readonly mechanism = "EXTERNAL";
  constructor(
    /** The identity taken from the certificate (default: its subject CN); `""` if none. */
    readonly login: string,
    /** The authorization identity the client asked for; `""` to act as `login`. */
    readonly authzid: string,
    /** The runtime's certificate object (Node: `tls.PeerCertificate`). */
    readonly certificate: unknown,
    /** Whether the certificate verified against the configured CAs (always true here). */
    readonly authorized: boolean,
  ) {}
  toString(): string {
    return `ExternalCredentials(login=${this.login}${this.authzid ? `, authzid=${this.authzid}` : ""})`;
  }
  toJSON(): unknown {
    return { mechanism: this.mechanism, login: this.login, authzid: this.authzid };
  }
  [INSPECT](): string {
    return this.toString();
  }
}

export interface ExternalOptions {
  /** The user a certificate stands for. Default: the subject's CN (Node's certificate object). */
  readonly identity?: (certificate: unknown) => string | null;
  /**
   * Succeed on a verified certificate without asking the authenticator, when the client asked for
   * no authzid or for the certificate's own identity. Default false: the authenticator decides.
   */
  readonly trustCertificate?: boolean;
}

/** The subject CN of a Node-style certificate object (`{ subject: { CN } }`). */
export function certificateCommonName(certificate: unknown): string | null {
  const subject = (certificate as { subject?: { CN?: unknown } } | null)?.subject;
  const cn = subject?.CN;
  if (typeof cn === "string") return cn;
  if (Array.isArray(cn) && typeof cn[0] === "string") return cn[0];
  return null;
}

export const NO_CERTIFICATE = "535 5.7.1 EXTERNAL needs a verified TLS client certificate";

/**
 * EXTERNAL (RFC 4422 Appendix A) over TLS client certificates. The client sends only an
 * authorization identity (often empty); the credentials are the certificate the transport
 * verified (`session.ssl.authorized`).
 */
export function external(options: ExternalOptions = {}): ContextualMechanism {
  const identityOf = options.identity ?? certificateCommonName;
  return {
    name: "EXTERNAL",
    // The secret (the client key) never crosses the wire; without TLS there is no certificate.
    safeWithoutTls: false,
    available(context: SaslContext): boolean {
      return context.tls?.peerCertificate != null && context.tls.authorized;
    },
    start(context) {
      let done = false;
      let asked = false;
      return {
        step(response) {
          if (done) return failure();
          if (response === null && !asked) {
            asked = true;
            return challenge(EMPTY);
          }
          done = true;
          const authzid = fromUtf8Strict(response ?? EMPTY);
          if (authzid === null || authzid.includes("\0")) {
            return failure("501 5.5.2 Malformed SASL message");
          }
          const tls = context.tls;
          if (!tls || tls.peerCertificate == null || !tls.authorized)
            return failure(NO_CERTIFICATE);
          let login: string | null;
          try {
            login = identityOf(tls.peerCertificate);
          } catch {
            login = null;
          }
          if (!login) return failure(NO_CERTIFICATE);
          if (options.trustCertificate) {
            if (authzid !== "" && authzid !== login) return failure();
            return { type: "success", authData: new AuthIdentity("EXTERNAL", login, authzid) };
          }
          return {
            type: "credentials",
            credentials: new ExternalCredentials(
              login,
              authzid,
              tls.peerCertificate,
              tls.authorized,
            ),
          };
        },
      };
    },
  };
}
