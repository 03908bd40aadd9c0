import { fromUtf8Strict } from "../bytes.js";
import type { ContextualMechanism } from "../types.js";
import { json, OAuthCredentials, oauthExchange, type TokenVerifier } from "./oauth.js";

export interface XOAuth2Options {
  /**
   * Verify tokens inside the mechanism. Without it the credentials go to the server's
   * authenticator as {@link OAuthCredentials}.
   */
  readonly verify?: TokenVerifier;
  /** The JSON error sent before a failure. Default `{"status":"401","schemes":"bearer"}` (+ `scope`). */
  readonly error?: Readonly<Record<string, string>>;
  /** Added to the default error, e.g. `"https://mail.google.com/"`. */
  readonly scope?: string;
}

/** Parses `user=NAME ^A auth=Bearer TOKEN ^A ^A`. */
export function parseXOAuth2(response: Uint8Array): OAuthCredentials | null {
  const text = fromUtf8Strict(response);
  if (text === null || !text.endsWith("\x01\x01")) return null;
  let user: string | null = null;
  let auth: string | null = null;
  for (const part of text.slice(0, -2).split("\x01")) {
    const eq = part.indexOf("=");
    if (eq <= 0) return null;
    const key = part.slice(0, eq).toLowerCase();
    const value = part.slice(eq + 1);
    if (key === "user") user = value;
    else if (key === "auth") auth = value;
  }
  const match = auth === null ? null : /^Bearer +(\S+)$/i.exec(auth);
  if (user === null || !match) return null;
  return new OAuthCredentials("XOAUTH2", user, match[1] as string);
}

/**
 * Google's XOAUTH2: one client message `user=...\x01auth=Bearer ...\x01\x01`. On failure the
 * server sends a JSON error as a challenge, the client answers with an empty line, then 535.
 */
export function xoauth2(options: XOAuth2Options = {}): ContextualMechanism {
  const error = json(
    options.error ?? {
      status: "401",
      schemes: "bearer",
      ...(options.scope === undefined ? {} : { scope: options.scope }),
    },
  );
  return {
    name: "XOAUTH2",
    start: () => oauthExchange(parseXOAuth2, options.verify, error),
  };
}
