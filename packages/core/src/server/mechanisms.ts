import type { SaslContext, SaslMechanism } from "../sasl.js";
import { encodeBase64 } from "../syntax/base64.js";
import type { Handler } from "./handler.js";
import type { AuthResult, LoginPassword, ServerContext } from "./smtp-options.js";

/**
 * A mechanism as the server runs it: given the decoded initial response (or `null`), it talks to
 * the client through `server.challengeAuth()` and returns the result, or `null` when the client
 * aborted (the engine has answered 501 then).
 */
export type AuthMechanism = (
  server: ServerContext,
  initialResponse: Uint8Array | null,
) => Promise<AuthResult | null>;

const DECODER = new TextDecoder();
const ENCODER = new TextEncoder();

/** aiosmtpd's `LoginPassword`, whose string, JSON and inspected forms never show the password. */
export class Credentials implements LoginPassword {
  readonly #password: Uint8Array;
  constructor(
    readonly login: Uint8Array,
    password: Uint8Array,
    /** PLAIN's authorization identity ("" when absent). */
    readonly authzid = "",
  ) {
    this.#password = password;
  }
  get password(): Uint8Array {
    return this.#password;
  }
  toString(): string {
    return `LoginPassword(login=${DECODER.decode(this.login)}, password=...)`;
  }
  toJSON(): unknown {
    return { login: DECODER.decode(this.login), password: "..." };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** Checks credentials with the `authenticator`, else the legacy `authCallback`, else fails. */
export async function verifyCredentials(
  server: ServerContext,
  mechanism: string,
  credentials: unknown,
): Promise<AuthResult> {
  const result = await checkCredentials(server, mechanism, credentials);
  if (result.login !== undefined) return result;
  const login = claimedLogin(credentials);
  return login === null ? result : { ...result, login };
}

async function checkCredentials(
  server: ServerContext,
  mechanism: string,
  credentials: unknown,
): Promise<AuthResult> {
  const { authenticator, authCallback } = server.options;
  if (authenticator) {
    return authenticator(server, server.session, server.envelope, mechanism, credentials);
  }
  const pair = credentials as Partial<LoginPassword> | null;
  if (authCallback && pair?.login instanceof Uint8Array && pair.password instanceof Uint8Array) {
    const ok = await authCallback(mechanism, pair.login, pair.password);
    return ok ? { success: true, authData: credentials } : { success: false };
  }
  return { success: false };
}

/** The user name in a mechanism's credentials (`login` as bytes or a string), if any. */
function claimedLogin(credentials: unknown): string | null {
  const login = (credentials as { login?: unknown } | null)?.login;
  if (login instanceof Uint8Array) return DECODER.decode(login);
  return typeof login === "string" ? login : null;
}

/** RFC 4616 PLAIN: `authzid NUL authcid NUL passwd`; aiosmtpd ignores the authzid. */
export const PLAIN: SaslMechanism = {
  name: "PLAIN",
  start: () => ({
    step(response) {
      if (response === null) return { type: "challenge", challenge: new Uint8Array(0) };
      const parts: Uint8Array[] = [];
      let from = 0;
      for (let i = 0; i <= response.length; i++) {
        if (i === response.length || response[i] === 0) {
          parts.push(response.subarray(from, i));
          from = i + 1;
        }
      }
      const [authzid, login, password] = parts;
      if (parts.length !== 3 || !authzid || !login || !password) {
        return { type: "failure", reply: "501 5.5.2 Can't split auth value" };
      }
      return {
        type: "credentials",
        credentials: new Credentials(login.slice(), password.slice(), DECODER.decode(authzid)),
      };
    },
  }),
};

/** The LOGIN mechanism with aiosmtpd's challenges (`User Name\0`, `Password\0`). */
export const LOGIN: SaslMechanism = {
  name: "LOGIN",
  start: () => {
    let user: Uint8Array | null = null;
    return {
      step(response) {
        if (user === null) {
          if (response === null)
            return { type: "challenge", challenge: ENCODER.encode("User Name\x00") };
          user = response.slice();
          return { type: "challenge", challenge: ENCODER.encode("Password\x00") };
        }
        return {
          type: "credentials",
          credentials: new Credentials(user, (response ?? new Uint8Array(0)).slice(), ""),
        };
      },
    };
  },
};

/** What a mechanism may know about this connection. */
export function saslContext(server: ServerContext): SaslContext {
  return {
    hostname: server.hostname,
    tls: server.session?.ssl ?? null,
    // On request: Node takes microseconds to make an AbortSignal, and most connections need none.
    get signal() {
      return server.signal;
    },
    session: server.session,
  };
}

/** Runs a step-machine mechanism over the connection. */
export function runSasl(mechanism: SaslMechanism): AuthMechanism {
  return async (server, initialResponse) => {
    const exchange = mechanism.start(saslContext(server));
    let step = await exchange.step(initialResponse);
    /** Credentials checked and refused while the mechanism still talks (SCRAM's `e=invalid-proof`). */
    let refused: AuthResult | null = null;
    for (;;) {
      if (step.type === "challenge") {
        if (step.verdict === "failure")
          refused = { success: false, ...(step.login === undefined ? {} : { login: step.login }) };
        const answer = await server.challengeAuth(step.challenge);
        // The client cancelled or left: after a refusal that is still a failed verdict (a guesser
        // must not learn the answer and leave before it is counted).
        if (answer === null) return refused;
        step = await exchange.step(answer);
        continue;
      }
      if (step.type === "credentials") {
        const result = await verifyCredentials(server, mechanism.name, step.credentials);
        if (!exchange.verdict) return result;
        const next = await exchange.verdict(result);
        // A mechanism that accepts the verdict as it is ends with the program's own result.
        if (next.type === "success" && result.success) return result;
        if (!result.success) refused = result;
        step = next;
        continue;
      }
      if (step.type === "success") return { success: true, authData: step.authData };
      return {
        success: false,
        ...(step.reply === undefined ? {} : { message: step.reply }),
        ...(step.login === undefined ? {} : { login: step.login }),
      };
    }
  };
}

export const BUILTIN_MECHANISMS: readonly SaslMechanism[] = [LOGIN, PLAIN];

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
          args.push(initialResponse.length === 0 ? "=" : encodeBase64(initialResponse));
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
