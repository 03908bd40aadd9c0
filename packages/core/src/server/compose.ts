import type { ReplyLike } from "../reply.js";
import { MessageBody } from "./body.js";
import type { BodyFilterResult, Handler } from "./handler.js";
import { isThenable } from "./hooks.js";
import type { Envelope, Session } from "./session.js";
import type { ServerContext } from "./smtp-options.js";

/**
 * Chains handler fragments into one handler, the way Haraka chains plugins:
 * `compose(rateLimit, verify, received, new Mailbox(dir))`. Each fragment is an ordinary handler
 * with the hooks it needs; they run in the order given, and for each step:
 *
 * - the first fragment that returns something (a reply, a `{ delay }`) decides, and the ones
 *   after it are not asked; a fragment that returns nothing passes the step on. A fragment that
 *   throws ends the step with the usual exception policy (the composed `handleException`);
 * - `handleEHLO` is a pipeline: each fragment gets the responses the previous one returned (so
 *   several may add or remove keywords); a fragment returning a non-list reply decides;
 * - `handlePROXY` goes on only when every fragment says so; `handleSTARTTLS` refuses when one does;
 * - `handleCLOSE` runs in every fragment, whatever the others do;
 * - the body goes to the one fragment with `handleDATA` or `handleDATAStream` (the delivery), and
 *   `handleAUTH` (taking over the AUTH exchange) to the one fragment that has it: two fragments
 *   with the same one of these are a mistake, reported when composing;
 * - before the delivery, the body passes through every fragment's `filterBody`, in order (body
 *   stages). A stage returns nothing to pass the body on unread; a reply to refuse the message
 *   (the delivery is never called, so nothing is stored); or `{ prepend, body }`: header lines
 *   to put before the message and, when it read the body, the body to hand on instead. A verifier
 *   reads the whole message (keeping a copy: spooled to a file when large), decides, and hands
 *   on `{ prepend: "Authentication-Results: ...\r\n", body: replayOfTheCopy }`; a stage that only
 *   adds a header (`Received:`) returns `{ prepend }` at once and the body streams on. Each stage
 *   and the delivery see the message as the stages before it left it, through a `MessageBody`
 *   with the same backpressure. With stages, a `handleDATA` delivery gets `envelope.content`
 *   with the prepended lines.
 *
 * The composed handler has only the hooks some fragment has, so a step no fragment cares about
 * costs what it costs without a handler. A fragment's aiosmtpd-style AUTH mechanisms
 * (`auth_NAME` methods) are kept, bound to it; the first fragment with a name has it.
 */
export function compose(...fragments: readonly Handler[]): Handler {
  const composed: Record<string, unknown> = {};
  const having = (hook: keyof Handler) => fragments.filter((f) => typeof f[hook] === "function");

  for (const hook of FIRST_ANSWER_WINS) {
    const chain = having(hook);
    if (chain.length > 0) composed[hook] = firstAnswer(chain, hook);
  }

  const ehlo = having("handleEHLO");
  if (ehlo.length > 0) composed.handleEHLO = ehloPipeline(ehlo);

  const proxy = having("handlePROXY");
  if (proxy.length > 0) composed.handlePROXY = everyAgrees(proxy, "handlePROXY", false);
  const startTls = having("handleSTARTTLS");
  if (startTls.length > 0) composed.handleSTARTTLS = everyAgrees(startTls, "handleSTARTTLS", true);

  const close = having("handleCLOSE");
  if (close.length === 1) {
    const only = close[0] as Handler;
    composed.handleCLOSE = (only.handleCLOSE as (...all: unknown[]) => unknown).bind(only);
  } else if (close.length > 1) {
    composed.handleCLOSE = async (...args: unknown[]) => {
      const failures: unknown[] = [];
      for (const fragment of close) {
        try {
          await call(fragment, "handleCLOSE", args);
        } catch (error) {
          failures.push(error);
        }
      }
      // Every fragment has run; the server logs what went wrong.
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) throw new AggregateError(failures, "handleCLOSE failed");
    };
  }

  const delivery = single(fragments, ["handleDATA", "handleDATAStream"], "the body");
  const filters = having("filterBody");
  if (filters.length > 0) {
    composed.handleDATAStream = (
      server: ServerContext,
      session: Session,
      envelope: Envelope,
      body: MessageBody,
      signal: AbortSignal,
    ) => filterThenDeliver(filters, delivery, server, session, envelope, body, signal);
  } else if (delivery) {
    for (const hook of ["handleDATA", "handleDATAStream"] as const) {
      if (typeof delivery[hook] === "function")
        composed[hook] = (...args: unknown[]) => call(delivery, hook, args);
    }
  }
  const auth = single(fragments, ["handleAUTH"], "the AUTH exchange");
  if (auth) composed.handleAUTH = (...args: unknown[]) => call(auth, "handleAUTH", args);
  carryAuthMethods(fragments, composed);

  return composed as Handler;
}

/**
 * aiosmtpd-style mechanisms (`auth_NAME` methods, on the object or its prototypes) stay offered
 * through the composition, called on their own fragment; the first fragment with a name has it.
 */
function carryAuthMethods(fragments: readonly Handler[], composed: Record<string, unknown>): void {
  for (const fragment of fragments) {
    for (let proto: object | null = fragment; proto && proto !== Object.prototype; ) {
      for (const key of Object.getOwnPropertyNames(proto)) {
        const method = (fragment as Record<string, unknown>)[key];
        if (!key.startsWith("auth_") || key in composed || typeof method !== "function") continue;
        const carried = (...args: unknown[]) => Reflect.apply(method, fragment, args);
        const name = (method as { mechanismName?: unknown }).mechanismName;
        composed[key] =
          name === undefined ? carried : Object.assign(carried, { mechanismName: name });
      }
      proto = Object.getPrototypeOf(proto);
    }
  }
}

/** The hooks where the first fragment with an answer decides. */
const FIRST_ANSWER_WINS = [
  "handleCONNECT",
  "handleHELO",
  "handleMAIL",
  "handleRCPT",
  "handleRSET",
  "handleNOOP",
  "handleQUIT",
  "handleVRFY",
  "handleAUTHAttempt",
  "handleAUTHResult",
  "handleException",
] as const satisfies readonly (keyof Handler)[];

function call(fragment: Handler, hook: keyof Handler, args: readonly unknown[]): unknown {
  return Reflect.apply(fragment[hook] as (...all: unknown[]) => unknown, fragment, args);
}

const isAnswer = (value: unknown) => value !== undefined && value !== null;

/** Synchronous while the fragments answer synchronously: no promise for a chain of plain checks. */
function firstAnswer(chain: readonly Handler[], hook: keyof Handler) {
  // One fragment with the hook: its own method, on itself (no wrapper call per command).
  if (chain.length === 1) {
    const only = chain[0] as Handler;
    return (only[hook] as (...all: unknown[]) => unknown).bind(only);
  }
  const from = (start: number, args: readonly unknown[]): unknown => {
    for (let i = start; i < chain.length; i++) {
      const value = call(chain[i] as Handler, hook, args);
      if (isThenable(value))
        return Promise.resolve(value).then((v) => (isAnswer(v) ? v : from(i + 1, args)));
      if (isAnswer(value)) return value;
    }
    return undefined;
  };
  return (...args: unknown[]) => from(0, args);
}

/** `handleEHLO(server, session, envelope, hostname, responses, signal)`, threaded. */
function ehloPipeline(chain: readonly Handler[]) {
  return async (...args: unknown[]) => {
    const at = 4; // the responses' position in the arguments
    let responses = args[at] as readonly unknown[];
    let changed = false;
    for (const fragment of chain) {
      const value = await call(fragment, "handleEHLO", [
        ...args.slice(0, at),
        [...responses],
        ...args.slice(at + 1),
      ]);
      if (Array.isArray(value)) {
        responses = value;
        changed = true;
      } else if (isAnswer(value)) return value;
    }
    return changed ? responses : undefined;
  };
}

/**
 * `handlePROXY` (true goes on; anything else closes) and `handleSTARTTLS` (only `false`
 * refuses): the first fragment that disagrees decides.
 */
function everyAgrees(chain: readonly Handler[], hook: keyof Handler, onlyFalseRefuses: boolean) {
  return async (...args: unknown[]) => {
    for (const fragment of chain) {
      const value = await call(fragment, hook, args);
      if (onlyFalseRefuses ? value === false : value !== true) return false;
    }
    return onlyFalseRefuses ? undefined : true;
  };
}

/** The one fragment with any of `hooks`, or none; two are a composition error. */
function single(
  fragments: readonly Handler[],
  hooks: readonly (keyof Handler)[],
  what: string,
): Handler | undefined {
  const owners = fragments.filter((f) => hooks.some((hook) => typeof f[hook] === "function"));
  if (owners.length > 1) {
    const names = owners.map((f) => f.constructor?.name || "a handler object").join(" and ");
    throw new TypeError(`compose: only one fragment can take ${what}, but ${names} both do`);
  }
  return owners[0];
}

const ENCODER = new TextEncoder();

/** A `filterBody` answer that is a reply (refuses the message) rather than a `BodyFilterResult`. */
function isReply(value: unknown): value is ReplyLike {
  return typeof value === "string" || typeof (value as { code?: unknown }).code === "number";
}

/** The body stages, then the delivery with the body the last stage handed on. */
async function filterThenDeliver(
  filters: readonly Handler[],
  delivery: Handler | undefined,
  server: ServerContext,
  session: Session,
  envelope: Envelope,
  received: MessageBody,
  signal: AbortSignal,
): Promise<unknown> {
  const relays: Relay[] = [];
  let body = received;
  try {
    for (const filter of filters) {
      const value = (await call(filter, "filterBody", [server, session, envelope, body, signal])) as
        | BodyFilterResult
        | ReplyLike
        | null
        | undefined;
      if (isAnswer(value) && isReply(value)) return value;
      const result = (value ?? {}) as BodyFilterResult;
      if (result.body === undefined && body.locked) {
        const name = filter.constructor?.name || "a handler object";
        throw new TypeError(`compose: ${name}.filterBody read the body but handed none on`);
      }
      if (result.prepend === undefined && result.body === undefined) continue;
      const relay = new Relay(result.prepend, result.body ?? body);
      relays.push(relay);
      body = relay.output;
    }
    if (delivery?.handleDATAStream) {
      return await call(delivery, "handleDATAStream", [server, session, envelope, body, signal]);
    }
    if (delivery?.handleDATA) {
      // What the server does for a handleDATA delivery, on the filtered body.
      const content = await body.bytes();
      envelope.originalContent = content;
      envelope.content = server.options.decodeData ? new TextDecoder().decode(content) : content;
      return await call(delivery, "handleDATA", [server, session, envelope, signal]);
    }
    return undefined;
  } finally {
    // A delivery that returned early (or a refusal) reads no more: stop the replays.
    for (const relay of relays) relay.stop();
  }
}

/** Feeds `prepend`, then `source`, into a new `MessageBody`, waiting for its reader. */
class Relay {
  readonly output = new MessageBody();
  #stopped = false;

  constructor(prepend: Uint8Array | string | undefined, source: AsyncIterable<Uint8Array>) {
    void this.#pump(typeof prepend === "string" ? ENCODER.encode(prepend) : prepend, source);
  }

  async #pump(prepend: Uint8Array | undefined, source: AsyncIterable<Uint8Array>): Promise<void> {
    const output = this.output;
    try {
      if (prepend && prepend.length > 0) await output.write(prepend);
      for await (const chunk of source) {
        if (this.#stopped) break; // ends the source's iteration: a spool file gets closed
        await output.write(chunk);
      }
      output.end();
    } catch (error) {
      // The body failed upstream (a size limit, the client leaving): the reader sees it.
      output.fail(error);
    }
  }

  stop(): void {
    this.#stopped = true;
    this.output.abandon();
  }
}
