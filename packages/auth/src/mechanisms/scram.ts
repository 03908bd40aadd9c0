import {
  concatBytes,
  decodeBase64,
  encodeBase64,
  type SaslContext,
  type SaslStep,
} from "@smtpkit/core";
import { fromUtf8Strict, randomBytes, timingSafeEqual, utf8, xorBytes } from "../bytes.js";
import {
  CHANNEL_BINDING_TYPES,
  type ChannelBindingType,
  canBind,
  channelBindingData,
} from "../channel-binding.js";
import { digest, HASH_LENGTH, hmac, type ScramHash } from "../crypto.js";
import { saslPrep } from "../saslprep.js";
import { DEFAULT_SCRAM_ITERATIONS, type ScramStoredKey } from "../scram-keys.js";
import {
  AuthIdentity,
  type ContextualMechanism,
  challenge,
  EMPTY,
  failure,
  MALFORMED,
  TEMPORARY_FAILURE,
} from "../types.js";

/** Finds a user's stored keys; `null` for an unknown user (or one without SCRAM keys). */
export type ScramLookup = (
  username: string,
  info: { readonly mechanism: string; readonly hash: ScramHash; readonly authzid: string },
) => ScramStoredKey | null | Promise<ScramStoredKey | null>;

export interface ScramOptions {
  readonly lookup: ScramLookup;
  /**
   * May `login` act as `authzid`? Called after the proof verified, only when the client asked for
   * an authorization identity different from its user name. Default: refuse.
   */
  readonly authorize?: (login: string, authzid: string) => boolean | Promise<boolean>;
  /**
   * For the non-PLUS mechanism: the -PLUS variant is offered too, so a client saying `y` (it could
   * bind but thinks the server cannot) on a connection with binding data is being downgraded and
   * fails (RFC 5802 §6). `scramMechanisms()` sets it.
   */
  readonly plusOffered?: boolean;
  /** For -PLUS: the binding types accepted. Default `tls-exporter` and `tls-server-end-point`. */
  readonly channelBindings?: readonly ChannelBindingType[];
  /** The server's part of the nonce (tests); default 24 random bytes in base64. */
  readonly nonce?: () => string;
  /** Iterations announced for unknown users, so they look like real ones. Default 4096. */
  readonly mockIterations?: number;
  /**
   * How a failure after the client's final message is reported. `true` (default): the RFC 5802
   * server-final message `e=<error>` as a 334 challenge, then 535 once the client answers.
   * `false`: straight to `535 5.7.8 Authentication failed (<error>)`; GNU SASL clients (msmtp)
   * report an `e=` message as "could not parse input" and hang up instead of showing the 535.
   */
  readonly sendServerError?: boolean;
}

/** RFC 5802 §7 `server-error-value`s. */
export type ScramError =
  | "invalid-encoding"
  | "extensions-not-supported"
  | "invalid-proof"
  | "channel-bindings-dont-match"
  | "server-does-support-channel-binding"
  | "channel-binding-not-supported"
  | "unsupported-channel-binding-type"
  | "unknown-user"
  | "invalid-username-encoding"
  | "no-resources"
  | "other-error";

interface ClientFirst {
  readonly gs2Header: string;
  readonly cbFlag: "n" | "y" | "p";
  readonly cbName: string | null;
  readonly authzid: string;
  readonly username: string;
  readonly nonce: string;
  readonly bare: string;
  /** A problem that fails the exchange, reported in the server-final message. */
  readonly error: ScramError | null;
}

const CB_NAME = /^[A-Za-z0-9.-]+$/;
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** Decodes a `saslname` (`=2C` → `,`, `=3D` → `=`); `null` for other `=` escapes or a bare `,`. */
export function decodeSaslName(value: string): string | null {
  if (value.includes(",")) return null;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const char = value[i] as string;
    if (char !== "=") {
      out += char;
      continue;
    }
    const code = value.slice(i + 1, i + 3);
    if (code === "2C") out += ",";
    else if (code === "3D") out += "=";
    else return null;
    i += 2;
  }
  return out;
}

/** Encodes a `saslname`. */
export function encodeSaslName(value: string): string {
  return value.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/** Parses `gs2-header client-first-message-bare`; `null` when malformed beyond reporting. */
function parseClientFirst(text: string, plus: boolean): ClientFirst | null {
  const first = text.indexOf(",");
  const second = first < 0 ? -1 : text.indexOf(",", first + 1);
  if (second < 0) return null;
  const flag = text.slice(0, first);
  const authzPart = text.slice(first + 1, second);
  const gs2Header = text.slice(0, second + 1);
  const bare = text.slice(second + 1);
  let cbFlag: ClientFirst["cbFlag"];
  let cbName: string | null = null;
  if (flag === "n" || flag === "y") cbFlag = flag;
  else if (flag.startsWith("p=") && CB_NAME.test(flag.slice(2))) {
    cbFlag = "p";
    cbName = flag.slice(2);
  } else return null;
  let error: ScramError | null = null;
  let authzid = "";
  if (authzPart !== "") {
    if (!authzPart.startsWith("a=")) return null;
    const decoded = decodeSaslName(authzPart.slice(2));
    if (decoded === null || decoded === "") return null;
    authzid = saslPrep(decoded) ?? decoded;
  }
  const attributes = bare.split(",");
  let index = 0;
  if (attributes[0]?.startsWith("m=")) {
    error = "extensions-not-supported";
    index = 1;
  }
  const userAttr = attributes[index];
  const nonceAttr = attributes[index + 1];
  if (!userAttr?.startsWith("n=") || !nonceAttr?.startsWith("r=")) return null;
  const nonce = nonceAttr.slice(2);
  if (!PRINTABLE.test(nonce)) return null;
  for (const extension of attributes.slice(index + 2)) {
    if (!/^[A-Za-z]=/.test(extension)) return null;
  }
  const decodedUser = decodeSaslName(userAttr.slice(2));
  let username = "";
  if (decodedUser === null || decodedUser === "") error ??= "invalid-username-encoding";
  else {
    const prepared = saslPrep(decodedUser);
    if (prepared === null || prepared === "") error ??= "invalid-username-encoding";
    else username = prepared;
  }
  if (!plus && cbFlag === "p") error ??= "channel-binding-not-supported";
  if (plus && cbFlag !== "p") error ??= "channel-bindings-dont-match";
  return { gs2Header, cbFlag, cbName, authzid, username, nonce, bare, error };
}

interface ClientFinal {
  readonly channelBinding: Uint8Array;
  readonly nonce: string;
  readonly withoutProof: string;
  readonly proof: Uint8Array;
}

function parseClientFinal(text: string): ClientFinal | null {
  const at = text.lastIndexOf(",p=");
  if (at < 0) return null;
  const withoutProof = text.slice(0, at);
  const proof = decodeBase64(text.slice(at + 3));
  const attributes = withoutProof.split(",");
  const c = attributes[0];
  const r = attributes[1];
  if (!c?.startsWith("c=") || !r?.startsWith("r=") || proof === null) return null;
  for (const extension of attributes.slice(2)) {
    if (!/^[A-Za-z]=/.test(extension)) return null;
  }
  const channelBinding = decodeBase64(c.slice(2));
  if (channelBinding === null) return null;
  return { channelBinding, nonce: r.slice(2), withoutProof, proof };
}

function defaultNonce(): string {
  return encodeBase64(randomBytes(24));
}

function isStoredKey(value: unknown, hash: ScramHash): value is ScramStoredKey {
  if (value === null || typeof value !== "object") return false;
  const key = value as Partial<ScramStoredKey>;
  const length = HASH_LENGTH[hash];
  return (
    key.salt instanceof Uint8Array &&
    key.salt.length > 0 &&
    typeof key.iterations === "number" &&
    Number.isInteger(key.iterations) &&
    key.iterations > 0 &&
    key.storedKey instanceof Uint8Array &&
    key.storedKey.length === length &&
    key.serverKey instanceof Uint8Array &&
    key.serverKey.length === length
  );
}

/**
 * A SCRAM server mechanism (RFC 5802, RFC 7677) for `hash`; `plus` makes the -PLUS variant that
 * binds to the TLS channel. It verifies the client itself from the stored keys (`lookup`), so the
 * authenticator is not called: success puts an {@link AuthIdentity} in `session.authData`.
 */
export function scram(hash: ScramHash, plus: boolean, options: ScramOptions): ContextualMechanism {
  const name = `SCRAM-${hash}${plus ? "-PLUS" : ""}`;
  const allowed = options.channelBindings ?? CHANNEL_BINDING_TYPES;
  const makeNonce = options.nonce ?? defaultNonce;
  const mockIterations = options.mockIterations ?? DEFAULT_SCRAM_ITERATIONS;
  // Unknown users get a salt that is stable per name, so probing cannot tell them apart.
  const mockSecret = randomBytes(32);
  const mechanism: ContextualMechanism = {
    name,
    // -PLUS needs TLS anyway; the plain variant never reveals the password.
    safeWithoutTls: !plus,
    available(context: SaslContext): boolean {
      return !plus || allowed.some((type) => canBind(type, context.tls));
    },
    start(context) {
      let state: "first" | "final" | "verified" | "error" | "done" = "first";
      let clientFirst: ClientFirst | null = null;
      let serverFirst = "";
      let combinedNonce = "";
      let key: ScramStoredKey | null = null;
      let pendingError: ScramError | null = null;
      let identity: AuthIdentity | null = null;

      /** The user the client claimed, once its first message named one. */
      const claimed = (): string | undefined => clientFirst?.username;
      const serverError = (error: ScramError): SaslStep => {
        const login = claimed();
        if (options.sendServerError === false) {
          state = "done";
          return failure(`535 5.7.8 Authentication failed (${error})`, login);
        }
        state = "error";
        // Refused now: the e= challenge only tells the client why.
        return {
          type: "challenge",
          challenge: utf8(`e=${error}`),
          verdict: "failure",
          ...(login === undefined ? {} : { login }),
        };
      };

      async function onClientFirst(response: Uint8Array): Promise<SaslStep> {
        const text = fromUtf8Strict(response);
        const parsed = text === null ? null : parseClientFirst(text, plus);
        if (!parsed) {
          state = "done";
          return failure(MALFORMED);
        }
        clientFirst = parsed;
        pendingError = parsed.error;
        if (pendingError === null && parsed.cbFlag === "y" && !plus && options.plusOffered) {
          if (allowed.some((type) => canBind(type, context.tls))) {
            pendingError = "server-does-support-channel-binding";
          }
        }
        if (pendingError === null && parsed.cbFlag === "p") {
          const type = parsed.cbName as ChannelBindingType;
          if (!allowed.includes(type)) pendingError = "unsupported-channel-binding-type";
          else if (!canBind(type, context.tls)) pendingError = "channel-binding-not-supported";
        }
        if (pendingError === null) {
          let found: unknown;
          try {
            found = await options.lookup(parsed.username, {
              mechanism: name,
              hash,
              authzid: parsed.authzid,
            });
          } catch {
            state = "done";
            return failure(TEMPORARY_FAILURE);
          }
          if (found !== null && found !== undefined) {
            if (!isStoredKey(found, hash)) {
              state = "done";
              return failure(TEMPORARY_FAILURE);
            }
            key = found;
          }
        }
        let salt: Uint8Array;
        let iterations: number;
        if (key) {
          salt = key.salt;
          iterations = key.iterations;
        } else {
          salt = (await hmac("SHA-256", mockSecret, utf8(`${name}\0${parsed.username}`))).slice(
            0,
            16,
          );
          iterations = mockIterations;
        }
        combinedNonce = parsed.nonce + makeNonce();
        serverFirst = `r=${combinedNonce},s=${encodeBase64(salt)},i=${iterations}`;
        state = "final";
        return challenge(utf8(serverFirst));
      }

      async function onClientFinal(response: Uint8Array): Promise<SaslStep> {
        const first = clientFirst as ClientFirst;
        const text = fromUtf8Strict(response);
        const parsed = text === null ? null : parseClientFinal(text);
        if (!parsed) {
          state = "done";
          return failure(MALFORMED);
        }
        if (parsed.nonce !== combinedNonce) return serverError("invalid-proof");
        if (pendingError !== null) return serverError(pendingError);
        let cbData: Uint8Array = EMPTY;
        if (first.cbFlag === "p") {
          const data = await channelBindingData(first.cbName as ChannelBindingType, context.tls);
          if (data === null) return serverError("channel-binding-not-supported");
          cbData = data;
        }
        const expected = concatBytes([utf8(first.gs2Header), cbData]);
        if (!timingSafeEqual(parsed.channelBinding, expected)) {
          // The gs2 header itself differs: malformed; only the binding data: a mismatch.
          const header = utf8(first.gs2Header);
          const sameHeader =
            parsed.channelBinding.length >= header.length &&
            timingSafeEqual(parsed.channelBinding.subarray(0, header.length), header);
          return serverError(sameHeader ? "channel-bindings-dont-match" : "invalid-encoding");
        }
        if (!key || parsed.proof.length !== HASH_LENGTH[hash]) {
          return serverError("invalid-proof");
        }
        const authMessage = utf8(`${first.bare},${serverFirst},${parsed.withoutProof}`);
        const clientSignature = await hmac(hash, key.storedKey, authMessage);
        const clientKey = xorBytes(parsed.proof, clientSignature);
        if (!timingSafeEqual(await digest(hash, clientKey), key.storedKey)) {
          return serverError("invalid-proof");
        }
        if (first.authzid !== "" && first.authzid !== first.username) {
          let ok = false;
          try {
            ok = (await options.authorize?.(first.username, first.authzid)) === true;
          } catch {
            ok = false;
          }
          if (!ok) return serverError("other-error");
        }
        const serverSignature = await hmac(hash, key.serverKey, authMessage);
        identity = new AuthIdentity(name, first.username, first.authzid);
        state = "verified";
        return challenge(utf8(`v=${encodeBase64(serverSignature)}`));
      }

      return {
        async step(response) {
          try {
            switch (state) {
              case "first":
                if (response === null) return challenge(EMPTY);
                return await onClientFirst(response);
              case "final":
                if (response === null) return failure(MALFORMED);
                return await onClientFinal(response);
              case "verified":
                state = "done";
                // RFC 4954 §4: the client acknowledges the server-final message with an empty line.
                if (response !== null && response.length > 0) return failure(MALFORMED);
                return { type: "success", authData: identity };
              case "error":
                state = "done";
                return failure(undefined, claimed());
              default:
                return failure();
            }
          } catch {
            state = "done";
            return failure(TEMPORARY_FAILURE);
          }
        },
      };
    },
  };
  return mechanism;
}

export function scramSha1(options: ScramOptions): ContextualMechanism {
  return scram("SHA-1", false, options);
}

export function scramSha256(options: ScramOptions): ContextualMechanism {
  return scram("SHA-256", false, options);
}

export function scramSha1Plus(options: ScramOptions): ContextualMechanism {
  return scram("SHA-1", true, options);
}

export function scramSha256Plus(options: ScramOptions): ContextualMechanism {
  return scram("SHA-256", true, options);
}

/**
 * SCRAM mechanisms for the given hashes (default SHA-256 and SHA-1), with their -PLUS variants
 * unless `plus: false`; the plain variants know about the -PLUS ones (downgrade detection).
 * `lookup` receives the hash through `info.mechanism` when one store serves both.
 */
export function scramMechanisms(
  options: ScramOptions & { readonly hashes?: readonly ScramHash[]; readonly plus?: boolean },
): ContextualMechanism[] {
  const hashes = options.hashes ?? ["SHA-256", "SHA-1"];
  const plus = options.plus ?? true;
  const out: ContextualMechanism[] = [];
  for (const hash of hashes) {
    out.push(scram(hash, false, { ...options, plusOffered: plus }));
    if (plus) out.push(scram(hash, true, options));
  }
  return out;
}
