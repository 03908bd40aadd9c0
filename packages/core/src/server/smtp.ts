import { ServerConnection } from "../engine/connection.js";
import { SmtpError } from "../errors.js";
import type { BodyEndEvent, SmtpEvent } from "../events.js";
import { type CommandSpec, type ResolvedOptions, resolveOptions } from "../options.js";
import { formatReply, type Reply, type ReplyLike, toReply } from "../reply.js";
import type { SaslMechanism } from "../sasl.js";
import { type CidrMatcher, parseCidrList } from "../syntax/cidr.js";
import type { ProxyData } from "../syntax/proxy-protocol.js";
import { BodyStream } from "./body-stream.js";
import type { Handler, HookResult } from "./handler.js";
import {
  type AuthMechanism,
  BUILTIN_MECHANISMS,
  handlerMechanisms,
  runSasl,
  saslContext,
} from "./mechanisms.js";
import { Envelope, Session } from "./session.js";
import type { AuthResult, CommandDefinition, SmtpOptions } from "./smtp-options.js";
import type { SmtpTransport } from "./transport.js";

const EMPTY = new Uint8Array(0);
const ENCODER = new TextEncoder();
const DEFAULT_TIMEOUT_SECONDS = 300;
/** RFC 5321 §4.5.3.2.5: 3 minutes for each data block. */
const DEFAULT_DATA_TIMEOUT_SECONDS = 180;

/** A body being received: streamed to `handleDATAStream`, or collected for `handleDATA`. */
interface BodyInProgress {
  readonly stream: BodyStream | null;
  readonly hook: Promise<HookOutcome> | null;
  readonly chunks: Uint8Array[] | null;
  /** `decodeData` without SMTPUTF8: a byte above 127 was seen (aiosmtpd's strict ASCII mode). */
  nonAscii: boolean;
}

interface HookOutcome {
  readonly value: unknown;
}

/** A hook's result, or the reply its exception earned. */
interface HookOutcomeValue {
  readonly value: unknown;
  readonly error: Reply | null;
}

type HookName =
  | "handlePROXY"
  | "handleHELO"
  | "handleEHLO"
  | "handleMAIL"
  | "handleRCPT"
  | "handleRSET"
  | "handleNOOP"
  | "handleQUIT"
  | "handleVRFY";

const NO_HOOK: HookOutcomeValue = Object.freeze({ value: undefined, error: null });

/** Marks a method as a command's `HELP` text, aiosmtpd's `@syntax` (works as a decorator or a call). */
export function syntax(text: string, extended?: string) {
  return (target: unknown, _context?: unknown, descriptor?: { value?: unknown }): void => {
    // Standard decorators pass (method, context); legacy ones (prototype, key, descriptor).
    const method = descriptor?.value ?? (typeof target === "function" ? target : undefined);
    if (typeof method === "function")
      Object.assign(method, { syntax: text, extendedSyntax: extended });
  };
}

/** The bytes a transport sends to a connection it refuses because the server is full. */
export function tooManyConnectionsReply(hostname: string): Uint8Array {
  return ENCODER.encode(formatReply(toReply(`421 4.7.0 ${hostname} Error: too many connections`)));
}

/**
 * One SMTP (or LMTP) session, aiosmtpd's `SMTP` class: it drives the sans-IO engine over an
 * abstract transport and calls the handler's hooks. Runtime-free; an adapter creates one per
 * accepted connection and calls `run()`.
 *
 * Subclass it to add or replace commands: a method `smtpPING(argument)` adds `PING` (give it a
 * HELP text with `@syntax("PING [ignored]")`); overriding `smtpMAIL` replaces MAIL, and
 * `super.smtpMAIL(argument)` runs the built-in behaviour.
 */
export class SMTP {
  readonly handler: Handler;
  readonly options: SmtpOptions;
  session!: Session;
  envelope!: Envelope;
  protected connection!: ServerConnection;
  protected transport!: SmtpTransport;
  /** Created when something first asks for the signal: an idle session never needs one. */
  private controller: AbortController | null = null;
  /** Tables every connection of this server shares (mechanisms, commands, resolved options). */
  private readonly shared: SharedTables;
  private body: BodyInProgress | null = null;
  private draining = false;
  private closed = false;
  /** Set by the built-in command methods so an override knows the engine answered. */
  private builtinRan = false;
  /** One timer per session, re-armed lazily: `deadline` moves, the timer follows when it fires. */
  private timer: unknown = null;
  private timerAt = 0;
  private deadline = 0;
  private deadlineSilent = false;

  constructor(handler: Handler, options: SmtpOptions = {}) {
    this.handler = handler;
    this.options = options;
    if (options.proxyProtocolTimeout !== undefined && options.proxyProtocolTimeout !== null) {
      if (!(options.proxyProtocolTimeout > 0))
        throw new RangeError("proxyProtocolTimeout must be > 0");
    }
    this.shared = sharedTables(this);
  }

  /** Host name used in the greeting and replies. */
  get hostname(): string {
    return this.options.hostname ?? "localhost";
  }

  /** Fires when the client goes away or the server stops. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  // ---------------------------------------------------------------------------------------------
  // Life cycle.

  /** Serves one connection until it ends. Never rejects. */
  async run(transport: SmtpTransport): Promise<void> {
    this.transport = transport;
    this.session = this.createSession();
    this.envelope = this.createEnvelope();
    this.connection = new ServerConnection(this.resolvedOptions());
    this.log("info", "connected");
    this.offerMechanisms();
    // Shut down before the session even started: greet with 421 instead.
    if (this.draining) this.abort();
    try {
      // Output is flushed before every read (and by push/challenge/STARTTLS), so a pipelined
      // batch of commands is answered with one write.
      const conn = this.connection;
      while (!this.closed) {
        const event = conn.nextEvent();
        if (event.type === "needData") {
          // Inline rather than through dispatch(): an idle session waits here with the shortest
          // chain of suspended calls (memory per idle connection).
          const out = conn.dataToSend();
          if (out.length > 0) await transport.write(out);
          this.armTimer();
          const data = await transport.read();
          this.deadline = 0;
          if (!this.closed) conn.receiveData(data ?? EMPTY);
          continue;
        }
        if (event.type === "closed") {
          this.log("info", `closed (${event.reason})`);
          break;
        }
        if (this.options.logger && event.type !== "bodyChunk") {
          this.log("debug", describeEvent(event));
        }
        const pending = this.dispatch(event);
        if (pending instanceof Promise) await pending;
      }
    } catch (error) {
      // A broken transport (reset, write after close): nothing left to tell the client.
      this.log("info", `connection lost: ${String((error as Error)?.message ?? error)}`);
    } finally {
      this.stopTimer();
      this.closed = true;
      this.body?.stream?.error(new SmtpError(421, "4.4.0", "Connection closed"));
      this.controller?.abort(new Error("connection closed"));
      try {
        await this.flush();
      } catch {
        // The transport is already gone.
      }
      await transport.close().catch(() => undefined);
    }
  }

  /** Graceful shutdown: an idle session gets 421 now; one in a transaction after finishing it. */
  shutdown(): void {
    this.draining = true;
    if (this.connection && !this.connection.inTransaction && this.body === null) this.abort();
  }

  /** Ends the session now with `421 4.3.2 … shutting down` (or `reply`), whatever it is doing. */
  abort(reply?: ReplyLike): void {
    if (this.closed || !this.connection) return;
    this.connection.closeConnection(reply ?? `421 4.3.2 ${this.hostname} Service shutting down`);
    this.closeSoon();
  }

  /** Tells the engine which mechanisms can run on this connection as it is now. */
  private offerMechanisms(): void {
    const { conditional, mechanisms } = this.shared;
    if (conditional.size === 0) return;
    const context = saslContext(this);
    const names = [...mechanisms.keys()].filter(
      (name) => conditional.get(name)?.available?.(context) ?? true,
    );
    this.connection.offerMechanisms(names);
  }

  // ---------------------------------------------------------------------------------------------
  // aiosmtpd's helpers for hooks and commands.

  /** Sends a reply now (aiosmtpd's `push`). */
  async push(reply: ReplyLike): Promise<void> {
    this.connection.push(reply);
    await this.flush();
  }

  /**
   * Sends a `334` challenge and returns the client's decoded answer, or `null` when the client
   * cancelled with `*` or sent bad base64 (the 501 reply has then been sent). aiosmtpd's
   * `challenge_auth`; `encodeToB64 = false` sends the challenge text as it is.
   */
  async challengeAuth(
    challenge: string | Uint8Array,
    encodeToB64 = true,
  ): Promise<Uint8Array | null> {
    if (!encodeToB64) {
      const text = typeof challenge === "string" ? challenge : new TextDecoder().decode(challenge);
      return this.challengeRaw(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)));
    }
    return this.challengeRaw(typeof challenge === "string" ? ENCODER.encode(challenge) : challenge);
  }

  protected createSession(): Session {
    return new Session(this.transport.peer, this.transport.tls, () => this.signal);
  }

  protected createEnvelope(): Envelope {
    return new Envelope();
  }

  // ---------------------------------------------------------------------------------------------
  // Built-in commands, overridable. An override calls `super.smtpVERB(argument)` for the default.

  async smtpHELO(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpEHLO(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpLHLO(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpMAIL(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpRCPT(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpDATA(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpBDAT(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpRSET(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpNOOP(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpQUIT(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpVRFY(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpEXPN(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpHELP(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpAUTH(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpSTARTTLS(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }

  private async runBuiltin(): Promise<void> {
    this.builtinRan = true;
    this.connection.runBuiltin();
    // The engine answers the command itself or hands back the one event it produced.
    const event = this.connection.nextEvent();
    if (event.type !== "needData" && event.type !== "closed") await this.dispatch(event);
  }

  // ---------------------------------------------------------------------------------------------
  // Events.

  /**
   * Handles one event. Returns a promise only when something has to be waited for (a hook, a
   * slow body consumer): events without a hook are handled synchronously, which keeps the
   * per-message cost down.
   */
  private dispatch(event: SmtpEvent): unknown {
    const conn = this.connection;
    switch (event.type) {
      case "needData":
        return this.read().then((data) => {
          if (!this.closed) conn.receiveData(data ?? EMPTY);
        });
      case "paused":
        return;
      case "proxyHeader":
        return this.proxyHeader(event.proxy);
      case "hello": {
        this.envelope = this.createEnvelope();
        const hostNameBefore = this.session.hostName;
        const outcome =
          event.verb === "HELO"
            ? this.hook("handleHELO", event.hostname)
            : this.hook("handleEHLO", event.hostname, [...event.responses]);
        return later(
          later(outcome, (o) => this.answer(o)),
          () => {
            if (conn.greeted && this.session.hostName === hostNameBefore) {
              this.session.hostName = event.hostname;
              this.session.extendedSmtp = event.extended;
            }
          },
        );
      }
      case "mail": {
        const outcome = this.handler.handleMAIL
          ? this.hook("handleMAIL", event.address, [...event.options])
          : NO_HOOK;
        return later(
          later(outcome, (o) => this.answer(o)),
          (code) => {
            if (!isPositive(code)) return;
            const envelope = this.envelope;
            if (envelope.mailFrom === null) envelope.mailFrom = event.address;
            if (envelope.mailOptions.length === 0) envelope.mailOptions.push(...event.options);
            envelope.mailParams = [...event.params];
            envelope.smtpUtf8 = event.smtpUtf8;
          },
        );
      }
      case "rcpt": {
        const before = this.envelope.rcptTos.length;
        const outcome = this.handler.handleRCPT
          ? this.hook("handleRCPT", event.address, [...event.options])
          : NO_HOOK;
        return later(
          later(outcome, (o) => this.answer(o)),
          (code) => {
            if (!isPositive(code) || this.envelope.rcptTos.length !== before) return;
            this.envelope.rcptTos.push(event.address);
            this.envelope.rcptOptions.push(...event.options);
            this.envelope.rcptParams.push([...event.params]);
          },
        );
      }
      case "dataStart":
        this.startBody();
        return;
      case "bodyChunk": {
        const body = this.body;
        if (!body) return;
        if (this.strictAscii && !body.nonAscii) body.nonAscii = hasNonAscii(event.data);
        if (body.stream) return body.stream.write(event.data);
        body.chunks?.push(event.data);
        return;
      }
      case "bodyEnd":
        return this.endBody(event);
      case "rset":
        this.envelope = this.createEnvelope();
        return later(this.hook("handleRSET"), (o) => this.answer(o));
      case "noop":
        return later(this.hook("handleNOOP", event.argument), (o) => this.answer(o));
      case "quit":
        return later(this.hook("handleQUIT"), (o) => this.answer(o));
      case "vrfy":
        return later(this.hook("handleVRFY", event.address), (o) => this.answer(o));
      case "startTls":
        return this.startTls();
      case "auth":
        return this.authenticate(event.mechanism, event.initialResponse);
      case "authResponse":
      case "authAborted":
        // Only reachable through challengeAuth(), which reads these itself.
        return;
      case "command":
        return this.runCommand(event.verb, event.argument, event.builtin);
      case "rejected":
        if (this.draining && !conn.inTransaction) this.abort();
        return;
      case "closed":
        return;
    }
  }

  private async proxyHeader(proxy: ProxyData): Promise<void> {
    this.deadline = 0;
    this.session.proxyData = proxy;
    let accept = true;
    if (this.handler.handlePROXY) {
      const result = await this.hook("handlePROXY", proxy);
      accept = result.error === null && Boolean(result.value);
    }
    if (accept) this.connection.accept();
    else this.connection.rejectProxy();
  }

  /** Answers the pending event with a hook's outcome; returns the reply code sent. */
  private answer(outcome: HookOutcomeValue): number | Promise<number> {
    const conn = this.connection;
    try {
      return this.afterAnswer(
        decide(
          conn,
          outcome.error ?? (outcome.value as ReplyLike | readonly ReplyLike[] | null | undefined),
        ),
      );
    } catch (error) {
      // A hook returned something that is not a reply: that is the hook's exception.
      if (!(error instanceof TypeError)) throw error;
      return this.exceptionReply(error).then((reply) => this.afterAnswer(conn.reply(reply)));
    }
  }

  private afterAnswer(code: number): number {
    if (this.draining && !this.connection.inTransaction && this.body === null) this.abort();
    return code;
  }

  /**
   * Calls the handler's hook `name` as `(server, session, envelope, ...args, signal)`; a missing
   * hook costs nothing (no closure, no signal).
   */
  private hook(name: HookName, ...args: unknown[]): Promise<HookOutcomeValue> | HookOutcomeValue {
    const fn = this.handler[name] as ((...all: unknown[]) => unknown) | undefined;
    if (!fn) return NO_HOOK;
    return this.callHook(() =>
      fn.call(this.handler, this, this.session, this.envelope, ...args, this.signal),
    );
  }

  /**
   * Calls a hook; an exception becomes a reply through `handleException` (aiosmtpd), which never
   * leaves the client without an answer (beyond.md: 451 4.3.0 when it returns nothing).
   */
  private async callHook(call: () => unknown): Promise<{ value: unknown; error: Reply | null }> {
    try {
      return { value: await call(), error: null };
    } catch (error) {
      return { value: undefined, error: await this.exceptionReply(error) };
    }
  }

  private async exceptionReply(error: unknown): Promise<Reply> {
    if (error instanceof SmtpError) return error.reply;
    this.log("error", `handler error: ${String((error as Error)?.stack ?? error)}`);
    const describe = (e: unknown): string => {
      try {
        const name = (e as { name?: unknown })?.name ?? typeof e;
        const message = (e as { message?: unknown })?.message ?? String(e);
        return `500 Error: (${String(name)}) ${String(message)}`;
      } catch {
        return "500 Error: Cannot describe error";
      }
    };
    const hook = this.handler.handleException;
    if (!hook) return toReply(describe(error));
    try {
      const result = await hook.call(this.handler, error);
      if (result === undefined || result === null)
        return toReply("451 4.3.0 Error: internal error");
      return toReply(result as ReplyLike);
    } catch (secondary) {
      return toReply(describe(secondary));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Bodies.

  private startBody(): void {
    const h = this.handler;
    if (h.handleDATAStream) {
      const stream = new BodyStream();
      const body: BodyInProgress = {
        stream,
        hook: null,
        chunks: null,
        nonAscii: false,
      };
      const hook = this.callHook(() =>
        h.handleDATAStream?.(this, this.session, this.envelope, stream.stream, this.signal),
      ).then((outcome) => {
        // A hook that returned early will not read the rest: stop feeding it.
        stream.abandon();
        return outcome;
      });
      (body as { hook: Promise<HookOutcome> | null }).hook = hook;
      this.body = body;
      return;
    }
    // Only collect the message when a hook will look at it.
    this.body = {
      stream: null,
      hook: null,
      chunks: h.handleDATA ? [] : null,
      nonAscii: false,
    };
  }

  private async endBody(event: BodyEndEvent): Promise<void> {
    const body = this.body;
    this.body = null;
    if (event.error !== null) {
      // The engine has already answered with the limit's reply; tell a streaming consumer.
      body?.stream?.error(new SmtpError(552, "5.3.4", `Message refused: ${event.error}`));
      if (body?.hook) await body.hook;
      this.envelope = this.createEnvelope();
      return;
    }
    let outcome: { value: unknown; error: Reply | null } = { value: undefined, error: null };
    if (body?.nonAscii) {
      // aiosmtpd refuses a non-ASCII body in strict ASCII mode, hook or not.
      body.stream?.error(new SmtpError(500, "5.6.7", "Error: strict ASCII mode"));
      if (body.hook) await body.hook;
      outcome = {
        value: undefined,
        error: toReply(plainOrEnhanced("500 Error: strict ASCII mode", "5.6.7", this)),
      };
    } else if (body?.stream) {
      body.stream.close();
      outcome = (await body.hook) as { value: unknown; error: Reply | null };
    } else if (this.handler.handleDATA && body?.chunks) {
      const content = concat(body.chunks);
      this.envelope.originalContent = content;
      this.envelope.content = this.options.decodeData
        ? new TextDecoder("utf-8").decode(content)
        : content;
      outcome = await this.callHook(() =>
        this.handler.handleDATA?.(this, this.session, this.envelope, this.signal),
      );
    }
    await this.answer(outcome);
    this.envelope = this.createEnvelope();
  }

  /** `decodeData` without SMTPUTF8 accepts only ASCII bodies (aiosmtpd). */
  private get strictAscii(): boolean {
    return this.options.decodeData === true && this.options.enableSmtpUtf8 !== true;
  }

  // ---------------------------------------------------------------------------------------------
  // STARTTLS and AUTH.

  private async startTls(): Promise<void> {
    await this.flush();
    this.deadline = 0;
    let info: Awaited<ReturnType<SmtpTransport["startTls"]>>;
    try {
      info = await this.transport.startTls();
    } catch (error) {
      // aiosmtpd: TLSSetupException goes to handle_exception, then the connection closes.
      await this.callHook(() => this.handler.handleException?.(error));
      this.closeSoon();
      return;
    }
    this.session = this.createSession();
    this.session.ssl = info;
    this.envelope = this.createEnvelope();
    let accepted = true;
    if (this.handler.handleSTARTTLS) {
      const outcome = await this.callHook(() =>
        this.handler.handleSTARTTLS?.(this, this.session, this.envelope, this.signal),
      );
      accepted = outcome.error === null && outcome.value !== false;
    }
    this.connection.tlsEstablished({ accepted });
    this.offerMechanisms();
  }

  private async authenticate(
    mechanismName: string,
    initialResponse: Uint8Array | null,
  ): Promise<void> {
    const h = this.handler;
    if (h.handleAUTH) {
      const args =
        initialResponse === null
          ? [mechanismName]
          : [mechanismName, encodeForArgs(initialResponse)];
      const outcome = await this.callHook(() =>
        h.handleAUTH?.(this, this.session, this.envelope, args, this.signal),
      );
      this.finishAuth(outcome.error ?? (outcome.value as HookResult), null);
      return;
    }
    const mechanism = this.shared.mechanisms.get(mechanismName);
    if (!mechanism) {
      this.finishAuth(null, { success: false });
      return;
    }
    let result: AuthResult | null;
    try {
      result = await mechanism(this, initialResponse);
    } catch (error) {
      // A broken mechanism or credential store: log it, tell the client nothing internal.
      this.log(
        "error",
        `AUTH ${mechanismName} failed: ${String((error as Error)?.stack ?? error)}`,
      );
      this.finishAuth("454 4.7.0 Temporary authentication failure", null);
      return;
    }
    if (result === null) return; // the client aborted; the engine has replied
    this.finishAuth(null, result);
  }

  /** Completes the AUTH exchange if it is still open (a 501 abort already closed it). */
  private finishAuth(reply: HookResult | Reply | null, result: AuthResult | null): void {
    const conn = this.connection;
    if (conn.phase !== "reply") return;
    if (result) {
      if (result.success) {
        this.session.authenticated = true;
        this.session.authData = result.authData ?? null;
      } else {
        this.session.authenticated = false;
      }
      conn.completeAuth(result.success, result.message ?? null);
      return;
    }
    const parsed = reply === undefined || reply === null ? null : toReply(reply as ReplyLike);
    const success = parsed !== null && parsed.code === 235;
    // handleAUTH may set session.authenticated itself; otherwise the reply code decides.
    if (this.session.authenticated === null) this.session.authenticated = success;
    conn.completeAuth(success || this.session.authenticated === true, parsed);
  }

  private async challengeRaw(challenge: Uint8Array): Promise<Uint8Array | null> {
    const conn = this.connection;
    conn.challenge(challenge);
    await this.flush();
    for (;;) {
      const event = conn.nextEvent();
      if (event.type === "needData") {
        const data = await this.read();
        if (this.closed) return null;
        conn.receiveData(data ?? EMPTY);
        continue;
      }
      if (event.type === "authResponse") return event.response;
      if (event.type === "authAborted" || event.type === "closed") return null;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Added commands.

  private async runCommand(verb: string, argument: string | null, builtin: boolean): Promise<void> {
    const command = this.shared.commands.get(verb);
    this.builtinRan = false;
    const outcome = await this.callHook(() => {
      if (command?.definition) return command.definition.run(this, argument, this.signal);
      const method = (this as unknown as Record<string, unknown>)[`smtp${verb}`];
      return typeof method === "function" ? method.call(this, argument) : undefined;
    });
    // The override called super.smtpVERB(): the built-in already answered.
    if (builtin && this.builtinRan) return;
    if (this.connection.phase === "reply") await this.answer(outcome);
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing.

  /** The engine's options for this transport, resolved once per server and kind of connection. */
  private resolvedOptions(): ResolvedOptions {
    const o = this.options;
    const shared = this.shared;
    const proxyEnabled = o.proxyProtocolTimeout !== undefined && o.proxyProtocolTimeout !== null;
    const peer = this.transport.peer;
    const peerTrusted = !shared.trust || (peer !== null && shared.trust.matches(peer.address));
    const startTls = this.transport.canStartTls && this.transport.tls === null;
    const implicitTls = this.transport.tls !== null;
    const proxyProtocol = proxyEnabled && peerTrusted;
    const key = `${Number(startTls)}${Number(implicitTls)}${Number(proxyProtocol)}`;
    let resolved = shared.resolved.get(key);
    if (!resolved) {
      const extensions = { ...(o.extensions ?? {}) };
      if (o.decodeData) Object.assign(extensions, { eightBitMime: false });
      if (o.enableSmtpUtf8 !== undefined) Object.assign(extensions, { smtpUtf8: o.enableSmtpUtf8 });
      resolved = resolveOptions({
        hostname: this.hostname,
        ...(o.ident === undefined ? {} : { ident: o.ident }),
        lmtp: o.lmtp ?? false,
        ...(o.dataSizeLimit === undefined ? {} : { dataSizeLimit: o.dataSizeLimit }),
        ...(o.commandSizeLimit === undefined ? {} : { commandSizeLimit: o.commandSizeLimit }),
        ...(o.lineLengthLimit === undefined ? {} : { lineLengthLimit: o.lineLengthLimit }),
        ...(o.lineEndings === undefined ? {} : { lineEndings: o.lineEndings }),
        ...(o.localPartLimit === undefined ? {} : { localPartLimit: o.localPartLimit }),
        ...(o.maxRecipients === undefined ? {} : { maxRecipients: o.maxRecipients }),
        commandCallLimit: o.commandCallLimit ?? null,
        extensions,
        startTls,
        requireStartTls: o.requireStartTls ?? false,
        implicitTls,
        auth: {
          mechanisms: [...shared.mechanisms.keys()],
          requireTls: o.authRequireTls ?? true,
          clearTextMechanisms: [...shared.safeWithoutTls],
          required: o.authRequired ?? false,
        },
        proxyProtocol,
        commands: shared.specs,
      });
      shared.resolved.set(key, resolved);
    }
    return resolved;
  }

  /** Reads from the transport under the idle or data timeout; `null` at end of input or timeout. */
  private async read(): Promise<Uint8Array | null> {
    // Replies the engine composed by itself must reach the client before we wait for it.
    await this.flush();
    this.armTimer();
    try {
      return await this.transport.read();
    } finally {
      this.deadline = 0;
    }
  }

  /**
   * Starts the wait for input: the idle timeout between commands, the data timeout inside a
   * body, the PROXY timeout before the header. One timer serves the whole session: it is
   * re-armed only when it fires early or a shorter wait begins.
   */
  private armTimer(): void {
    const phase = this.connection.phase;
    const o = this.options;
    const seconds =
      phase === "proxy"
        ? (o.proxyProtocolTimeout ?? DEFAULT_TIMEOUT_SECONDS)
        : phase === "data" || phase === "bdat"
          ? (o.dataTimeout ?? DEFAULT_DATA_TIMEOUT_SECONDS)
          : (o.timeout ?? DEFAULT_TIMEOUT_SECONDS);
    const now = Date.now();
    this.deadline = now + seconds * 1000;
    this.deadlineSilent = phase === "proxy";
    if (this.timer !== null && this.timerAt <= this.deadline) return;
    this.stopTimer();
    this.timerAt = this.deadline;
    this.timer = setTimeout(this.onTimer, this.deadline - now);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    if (this.closed || this.deadline === 0) return;
    const left = this.deadline - Date.now();
    if (left > 0) {
      this.timerAt = this.deadline;
      this.timer = setTimeout(this.onTimer, left);
      return;
    }
    // aiosmtpd closed silently; a client deserves to know why (beyond.md). No greeting yet: silent.
    if (this.deadlineSilent) this.connection.closeConnection();
    else this.connection.closeConnection(`421 4.4.2 ${this.hostname} Error: timeout exceeded`);
    this.closeSoon();
  };

  private stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Sends what is queued and closes the transport; a pending read() then sees end of input. */
  private closeSoon(): void {
    this.closed = true;
    this.body?.stream?.error(new SmtpError(421, "4.4.2", "Connection closed"));
    void this.flush()
      .catch(() => undefined)
      .then(() => this.transport.close())
      .catch(() => undefined);
  }

  private log(level: "error" | "info" | "debug", message: string): void {
    const logger = this.options.logger;
    if (!logger) return;
    const peer = this.transport?.peer;
    const who = peer
      ? peer.family === "unix"
        ? peer.address || "unix"
        : `${peer.address}:${peer.port}`
      : "-";
    logger[level](`${who} ${message}`);
  }

  private async flush(): Promise<void> {
    const data = this.connection?.dataToSend();
    if (data && data.length > 0) await this.transport.write(data);
  }
}

function isPositive(code: number): boolean {
  return code >= 200 && code < 300;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function encodeForArgs(bytes: Uint8Array): string {
  if (bytes.length === 0) return "=";
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function plainOrEnhanced(text: string, enhanced: string, server: SMTP): string {
  const on = server.options.lmtp || (server.options.extensions?.enhancedStatusCodes ?? true);
  return on ? text.replace(/^(\d{3}) /, `$1 ${enhanced} `) : text;
}

/** One line per event for the debug log; AUTH data is never shown. */
function describeEvent(event: SmtpEvent): string {
  switch (event.type) {
    case "hello":
      return `> ${event.verb} ${event.hostname}`;
    case "mail":
      return `> MAIL FROM:<${event.address}>${event.options.length > 0 ? ` ${event.options.join(" ")}` : ""}`;
    case "rcpt":
      return `> RCPT TO:<${event.address}>${event.options.length > 0 ? ` ${event.options.join(" ")}` : ""}`;
    case "auth":
      return `> AUTH ${event.mechanism}${event.initialResponse ? " ********" : ""}`;
    case "authResponse":
      return "> ********";
    case "bodyEnd":
      return event.error
        ? `body refused: ${event.error} (${event.size} octets)`
        : `body received (${event.size} octets)`;
    case "rejected":
      return `< ${event.reply.code} ${event.reply.enhanced ?? ""} ${event.reply.lines.join(" / ")}`.replace(
        "  ",
        " ",
      );
    case "command":
      return `> ${event.verb}${event.argument === null ? "" : ` ${event.argument}`}`;
    case "proxyHeader":
      return `PROXY v${event.proxy.version} from ${event.proxy.srcAddress}:${event.proxy.srcPort}`;
    case "noop":
    case "vrfy":
    case "rset":
    case "quit":
    case "startTls":
    case "dataStart":
    case "authAborted":
      return `> ${event.type}${"via" in event ? ` (${event.via})` : ""}${"address" in event ? ` ${event.address}` : ""}`;
    default:
      return event.type;
  }
}

function hasNonAscii(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if ((data[i] as number) > 127) return true;
  return false;
}

/** What every connection of one server shares; computed once per (class, handler, options). */
interface SharedTables {
  readonly mechanisms: ReadonlyMap<string, AuthMechanism>;
  readonly safeWithoutTls: ReadonlySet<string>;
  /** Mechanisms that decide per connection whether they can run (EXTERNAL, -PLUS). */
  readonly conditional: ReadonlyMap<string, SaslMechanism>;
  /** Added or replaced verbs: from `options.commands`, or `smtpVERB` methods of a subclass. */
  readonly commands: ReadonlyMap<string, { readonly definition: CommandDefinition | null }>;
  readonly specs: Readonly<Record<string, CommandSpec>>;
  readonly trust: CidrMatcher | null;
  /** Engine options per kind of connection (STARTTLS offered, implicit TLS, PROXY expected). */
  readonly resolved: Map<string, ResolvedOptions>;
}

const SHARED = new WeakMap<object, WeakMap<object, WeakMap<object, SharedTables>>>();

function sharedTables(server: SMTP): SharedTables {
  const proto = Object.getPrototypeOf(server) as object;
  const byHandler = SHARED.get(proto) ?? new WeakMap<object, WeakMap<object, SharedTables>>();
  SHARED.set(proto, byHandler);
  const byOptions = byHandler.get(server.handler) ?? new WeakMap<object, SharedTables>();
  byHandler.set(server.handler, byOptions);
  let tables = byOptions.get(server.options);
  if (!tables) {
    tables = buildTables(server, proto);
    byOptions.set(server.options, tables);
  }
  return tables;
}

function buildTables(server: SMTP, proto: object): SharedTables {
  const { handler, options } = server;
  if (options.proxyProtocolTimeout !== undefined && options.proxyProtocolTimeout !== null) {
    if (!(options.proxyProtocolTimeout > 0))
      throw new RangeError("proxyProtocolTimeout must be > 0");
  }
  const mechanisms = new Map<string, AuthMechanism>();
  const safeWithoutTls = new Set<string>();
  const conditional = new Map<string, SaslMechanism>();
  for (const mechanism of [...BUILTIN_MECHANISMS, ...(options.mechanisms ?? [])]) {
    const name = mechanism.name.toUpperCase();
    mechanisms.set(name, runSasl(mechanism));
    if (mechanism.available) conditional.set(name, mechanism);
    else conditional.delete(name);
    if (mechanism.safeWithoutTls) safeWithoutTls.add(name);
  }
  // aiosmtpd: the handler's auth_NAME methods win over built-ins of the same name.
  for (const [name, mechanism] of handlerMechanisms(handler)) {
    mechanisms.set(name, mechanism);
    conditional.delete(name);
    safeWithoutTls.delete(name);
  }
  for (const name of options.authExcludeMechanism ?? []) mechanisms.delete(name.toUpperCase());

  const commands = new Map<string, { readonly definition: CommandDefinition | null }>();
  const specs: Record<string, CommandSpec> = {};
  const addSpec = (
    verb: string,
    source: { syntax?: string; extendedSyntax?: string } | undefined,
  ) => {
    specs[verb] = {
      ...(source?.syntax === undefined ? {} : { syntax: source.syntax }),
      ...(source?.extendedSyntax === undefined ? {} : { extendedSyntax: source.extendedSyntax }),
    };
  };
  for (const [verb, definition] of Object.entries(options.commands ?? {})) {
    commands.set(verb.toUpperCase(), { definition });
    addSpec(verb.toUpperCase(), definition);
  }
  // Methods named smtpVERB on a subclass add (or, when they override a built-in, replace) VERB.
  for (
    let p: object | null = proto;
    p && p !== SMTP.prototype && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const key of Object.getOwnPropertyNames(p)) {
      const verb = /^smtp([A-Z][A-Z0-9_-]*)$/.exec(key)?.[1];
      const method = (server as unknown as Record<string, unknown>)[key];
      if (verb && typeof method === "function" && !commands.has(verb)) {
        commands.set(verb, { definition: null });
        addSpec(verb, method as { syntax?: string; extendedSyntax?: string });
      }
    }
  }
  const trust =
    options.proxyTrust && options.proxyTrust.length > 0 ? parseCidrList(options.proxyTrust) : null;
  return { mechanisms, safeWithoutTls, conditional, commands, specs, trust, resolved: new Map() };
}

/** Runs `next` on a value now, or once it settles when it is a promise. */
function later<T, R>(value: T | Promise<T>, next: (value: T) => R | Promise<R>): R | Promise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/**
 * The engine's typed decisions for a hook's value: nothing is the default, a list after an LMTP
 * body is one reply per recipient, any other list is the lines of one (EHLO) reply.
 */
function decide(
  conn: ServerConnection,
  value: ReplyLike | readonly ReplyLike[] | null | undefined,
): number {
  if (value === undefined || value === null) return conn.accept();
  if (!Array.isArray(value)) return conn.reply(value as ReplyLike);
  if (conn.options.lmtp && conn.inTransaction && conn.phase === "reply") {
    return conn.replyPerRecipient(value);
  }
  return conn.reply(
    value
      .map((line) => (typeof line === "string" ? line : formatReply(line).trimEnd()))
      .join("\r\n"),
  );
}
