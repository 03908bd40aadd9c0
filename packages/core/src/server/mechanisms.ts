import type { Handler } from "./handler.js";
import type { SMTP } from "./smtp.js";
import type { AuthResult, LoginPassword } from "./smtp-options.js";

/**
 * A mechanism as the server runs it: given the decoded initial response (or `null`), it talks to
 * the client through `server.challengeAuth()` and returns the result, or `null` when the client
 * aborted (the engine has answered 501 then).
 */
export type AuthMechanism = (
  server: SMTP,
  initialResponse: Uint8Array | null,
) => Promise<AuthResult | null>;

const DECODER = new TextDecoder();

/** aiosmtpd's `LoginPassword`, whose string forms never show the password. */
class Credentials implements LoginPassword {
  constructor(
    readonly login: Uint8Array,
    readonly password: Uint8Array,
  ) {}
  toString(): string {
    return `LoginPassword(login=${DECODER.decode(this.login)}, password=...)`;
  }
  toJSON(): unknown {
    return { login: DECODER.decode(this.login), password: "..." };
  }
}

/** Checks credentials with the `authenticator`, else the legacy `authCallback`, else fails. */
async function verify(
  server: SMTP,
  mechanism: string,
  credentials: LoginPassword,
): Promise<AuthResult> {
  const { authenticator, authCallback } = server.options;
  if (authenticator) {
    return authenticator(server, server.session, server.envelope, mechanism, credentials);
  }
  if (authCallback) {
    const ok = await authCallback(mechanism, credentials.login, credentials.password);
    return ok ? { success: true, authData: credentials } : { success: false };
  }
  return { success: false };
}

const plain: AuthMechanism = async (server, initialResponse) => {
  const response = initialResponse ?? (await server.challengeAuth(""));
  if (response === null) return null;
  // authzid NUL authcid NUL passwd (RFC 4616); aiosmtpd ignores the authzid.
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= response.length; i++) {
    if (i === response.length || response[i] === 0) {
      parts.push(response.subarray(start, i));
      start = i + 1;
    }
  }
  const [, login, password] = parts;
  if (parts.length !== 3 || !login || !password) {
    return { success: false, message: "501 5.5.2 Can't split auth value" };
  }
  return verify(server, "PLAIN", new Credentials(login.slice(), password.slice()));
};

const login: AuthMechanism = async (server, initialResponse) => {
  const user = initialResponse ?? (await server.challengeAuth("User Name\x00"));
  if (user === null) return null;
  const password = await server.challengeAuth("Password\x00");
  if (password === null) return null;
  return verify(server, "LOGIN", new Credentials(user, password));
};

export const BUILTIN_MECHANISMS: ReadonlyMap<string, AuthMechanism> = new Map([
  ["LOGIN", login],
  ["PLAIN", plain],
]);

const VALID_NAME = /^[A-Z0-9_-]+$/;

/**
 * aiosmtpd's handler mechanisms: a method `auth_NAME(server, args)` (`auth_CRAM__MD5` → `CRAM-MD5`,
 * or the name in its `mechanismName` property) returning an `AuthResult`, or the legacy forms:
 * `false`/nothing for failure, any other value for success.
 */
export function handlerMechanisms(handler: Handler): Map<string, AuthMechanism> {
  const found = new Map<string, AuthMechanism>();
  const seen = new Set<string>();
  for (
    let proto: object | null = handler;
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (!key.startsWith("auth_") || seen.has(key)) continue;
      seen.add(key);
      const method = (handler as Record<string, unknown>)[key];
      if (typeof method !== "function") continue;
      const declared = (method as { mechanismName?: unknown }).mechanismName;
      const name = (
        typeof declared === "string" ? declared : key.slice(5).replaceAll("__", "-")
      ).toUpperCase();
      if (!VALID_NAME.test(name)) throw new TypeError(`Invalid AUTH mechanism name: ${name}`);
      found.set(name, async (server, initialResponse) => {
        const args = [name];
        if (initialResponse !== null)
          args.push(initialResponse.length === 0 ? "=" : toBase64(initialResponse));
        const result: unknown = await method.call(handler, server, args);
        if (result !== null && typeof result === "object" && "success" in result)
          return result as AuthResult;
        if (result === undefined || result === null || result === false) return { success: false };
        return { success: true, authData: result };
      });
    }
  }
  return found;
}

/** aiosmtpd's `@auth_mechanism("NAME")`: names a handler's mechanism method. */
export function authMechanism(name: string) {
  const upper = name.toUpperCase();
  if (!VALID_NAME.test(upper)) throw new TypeError(`Invalid AUTH mechanism name: ${name}`);
  return (target: unknown, _context?: unknown, descriptor?: { value?: unknown }): void => {
    const method = descriptor?.value ?? target;
    if (typeof method === "function") Object.assign(method, { mechanismName: upper });
  };
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
