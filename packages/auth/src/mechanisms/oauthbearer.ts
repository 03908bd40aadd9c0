import { fromUtf8Strict } from "../bytes.js";
import type { ContextualMechanism } from "../types.js";
import { json, OAuthCredentials, oauthExchange, type TokenVerifier } from "./oauth.js";
import { decodeSaslName } from "./scram.js";

export interface OAuthBearerOptions {
  /** Verify tokens inside the mechanism; without it the authenticator gets {@link OAuthCredentials}. */
  readonly verify?: TokenVerifier;
  /** RFC 7628 §3.2.2 error fields besides `status` (`"invalid_token"` unless given). */
  readonly scope?: string;
  readonly openidConfiguration?: string;
  /** The whole JSON error, replacing the default. */
  readonly error?: Readonly<Record<string, string>>;
}

const KEY = /^[A-Za-z]+$/;
// RFC 7628 §3.1: value = *(VCHAR / SP / HTAB / CR / LF)
const VALUE = /^[\x21-\x7e \t\r\n]*$/;
// RFC 6750 §2.1 b64token
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Parses an OAUTHBEARER client response (RFC 7628 §3.1):
 * `gs2-header %x01 *(key "=" value %x01) %x01`, e.g. `n,a=user@example.com,\x01auth=Bearer T\x01\x01`.
 */
export function parseOAuthBearer(response: Uint8Array): OAuthCredentials | null {
  const text = fromUtf8Strict(response);
  if (text === null) return null;
  const first = text.indexOf(",");
  const second = first < 0 ? -1 : text.indexOf(",", first + 1);
  if (second < 0) return null;
  const flag = text.slice(0, first);
  // Channel binding is not defined for OAUTHBEARER: "p=" is an error (RFC 7628 §3.1).
  if (flag !== "n" && flag !== "y") return null;
  const authzPart = text.slice(first + 1, second);
  let authzid = "";
  if (authzPart !== "") {
    if (!authzPart.startsWith("a=")) return null;
    const decoded = decodeSaslName(authzPart.slice(2));
    if (decoded === null || decoded === "") return null;
    authzid = decoded;
  }
  const rest = text.slice(second + 1);
  if (!rest.startsWith("\x01") || !rest.endsWith("\x01\x01") || rest.length < 3) return null;
  const pairs = rest.slice(1, -2);
  const values = new Map<string, string>();
  for (const pair of pairs === "" ? [] : pairs.split("\x01")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) return null;
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!KEY.test(key) || !VALUE.test(value) || values.has(key)) return null;
    values.set(key, value);
  }
  const auth = values.get("auth");
  const match = auth === undefined ? null : /^Bearer +(\S+)$/i.exec(auth);
  if (!match || !TOKEN.test(match[1] as string)) return null;
  const portText = values.get("port");
  const port = portText !== undefined && /^\d{1,5}$/.test(portText) ? Number(portText) : null;
  return new OAuthCredentials(
    "OAUTHBEARER",
    authzid,
    match[1] as string,
    authzid,
    values.get("host") ?? null,
    port,
  );
}

/**
 * OAUTHBEARER (RFC 7628). On failure the server sends the JSON error
 * (`{"status":"invalid_token",...}`) as a challenge; the client must answer `%x01`; then 535.
 */
export function oauthBearer(options: OAuthBearerOptions = {}): ContextualMechanism {
  const error = json(
    options.error ?? {
      status: "invalid_token",
      ...(options.scope === undefined ? {} : { scope: options.scope }),
      ...(options.openidConfiguration === undefined
        ? {}
        : { "openid-configuration": options.openidConfiguration }),
    },
  );
  return {
    name: "OAUTHBEARER",
    start: () => oauthExchange(parseOAuthBearer, options.verify, error),
  };
}
