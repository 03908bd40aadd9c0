import { ServerConnection } from "../engine/connection.js";
import { hostReply, REPLIES } from "../engine/replies.js";
import { SmtpError } from "../errors.js";
import { AWAITS_DECISION, type BodyEndEvent, type SmtpEvent } from "../events.js";
import type { Reply, ReplyLike } from "../reply.js";
import { authenticate, challengeBytes, challengeResponse } from "./auth.js";
import { BuiltinCommands } from "./builtin-commands.js";
import { closeHook, decideGreeting, identify } from "./connect.js";
import { Deadline } from "./deadline.js";
import type { CloseReason, Handler } from "./handler.js";
import {
  callHook,
  failure,
  type HookName,
  NO_HOOK,
  namedHook,
  type Outcome,
  replyOf,
} from "./hooks.js";
import { answerRecipients } from "./lmtp-status.js";
import { saslContext } from "./mechanisms.js";
import { bodyError, MessageReception } from "./message.js";
import { type RelayContext, relayEvent } from "./relay-chain.js";
import { carryConnection, Envelope, Session } from "./session.js";
import { SessionReport } from "./session-report.js";
import type { ServerContext, SmtpOptions } from "./smtp-options.js";
import { upgradeToTls } from "./starttls.js";
import { availableMechanisms, engineOptions, type ServerTables, serverTables } from "./tables.js";
import {
  before,
  isPositive,
  presentMail,
  presentRcpt,
  recordHello,
  recordMail,
  recordRcpt,
  withdrawMail,
  withdrawRcpt,
} from "./transaction.js";
import type { SmtpTransport } from "./transport.js";

const EMPTY = new Uint8Array(0);
/** The signal's reason when a session ends; one object, not a stack trace per connection. */
const CONNECTION_CLOSED = Object.freeze(new Error("connection closed"));

/**
 * One SMTP (or LMTP) session, aiosmtpd's `SMTP` class: it drives the sans-IO engine over an
 * abstract transport and calls the handler's hooks; an adapter makes one per connection and calls
 * `run()`. One loop (`run`) hands each engine event to `dispatch`; every wait for the client goes
 * through `fill`. Events without a hook are handled synchronously.
 *
 * Subclass it to add or replace commands: a method `smtpPING(argument)` adds `PING` (give it a
 * HELP text with `@syntax("PING [ignored]")`); overriding `smtpMAIL` replaces MAIL, and
 * `super.smtpMAIL(argument)` runs the built-in behaviour.
 */
export class SMTP extends BuiltinCommands implements ServerContext {
  readonly handler: Handler;
  readonly options: SmtpOptions;
  session!: Session;
  envelope!: Envelope;
  protected connection!: ServerConnection;
  protected transport!: SmtpTransport;
  /** Created when something first asks for the signal: an idle session never needs one. */
  private controller: AbortController | null = null;
  /** Tables every connection of this server shares (mechanisms, commands, engine options). */
  private readonly tables: ServerTables;
  private body: MessageReception | null = null;
  private draining = false;
  private closed = false;
  /** Set by the built-in command methods so an override knows the engine answered. */
  private builtinRan = false;
  private readonly deadline = new Deadline(() => this.timedOut());
  /** Why the session ended, for handleCLOSE; the first cause wins. */
  private closeReason: CloseReason | null = null;
  /** A read started during a greet pause, which the loop takes over. */
  private pendingRead: Promise<Uint8Array | null> | null = null;
  /** The text log and the observer's view of this session; `null` when neither is set. */
  private report: SessionReport | null = null;
  private readonly logError = (message: string): void => this.report?.error(message);

  constructor(handler: Handler, options: SmtpOptions = {}) {
    super();
    this.handler = handler;
    this.options = options;
    this.tables = serverTables(this, SMTP.prototype);
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

  // Life cycle.

  /** Serves one connection until it ends. Never rejects. */
  async run(transport: SmtpTransport): Promise<void> {
    this.transport = transport;
    this.session = this.createSession();
    identify(this.session, transport, this.options.lmtp ?? false);
    this.envelope = this.createEnvelope();
    this.connection = new ServerConnection(
      engineOptions(this.tables, this.options, this.hostname, transport),
    );
    this.report = SessionReport.of(this, transport);
    this.report?.connected();
    this.offerMechanisms();
    // Shut down before the session even started: greet with 421 instead.
    if (this.draining) this.abort();
    try {
      const conn = this.connection;
      while (!this.closed) {
        const event = conn.nextEvent();
        if (event.type === "needData") {
          // fill(), inline: an idle session waits in one suspended frame (memory per connection).
          const out = this.startWait();
          if (out.length > 0) await this.send(out);
          this.endWait(await (this.pendingRead ?? transport.read()));
          this.pendingRead = null;
          continue;
        }
        if (event.type === "closed") {
          this.closeReason ??= event.reason;
          this.report?.log("info", `closed (${event.reason})`);
          break;
        }
        const pending = this.dispatch(event);
        if (pending !== undefined) await pending;
      }
    } catch (error) {
      // A broken transport (reset, write after close): nothing left to tell the client.
      this.closeReason ??= "lost";
      this.report?.log("info", `connection lost: ${String((error as Error)?.message ?? error)}`);
    } finally {
      this.deadline.stop();
      this.closed = true;
      this.body?.abandon(new SmtpError(421, "4.4.0", "Connection closed"));
      this.controller?.abort(CONNECTION_CLOSED);
      try {
        await this.flush();
      } catch {
        // The transport is already gone.
      }
      await transport.close().catch(() => undefined);
      await closeHook(this, this.closeReason ?? "eof", this.logError);
      this.report?.closed(this.closeReason ?? "eof");
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
    this.closeReason ??= reply ? "closedByServer" : "shutdown";
    this.connection.closeConnection(reply ?? hostReply(REPLIES.shuttingDown, this.hostname));
    this.closeSoon();
  }

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
    this.connection.challenge(challengeBytes(challenge, encodeToB64));
    return challengeResponse(
      this.connection,
      () => this.fill().then(() => !this.closed),
      this.report,
    );
  }

  protected createSession(): Session {
    return new Session(this.transport.peer, this.transport.tls, () => this.signal);
  }

  protected createEnvelope(): Envelope {
    return new Envelope();
  }

  /**
   * The built-in behaviour of the replaced command: the engine runs it, and its events are
   * handled here, up to and including the one that needed a decision, so an override's code
   * after `await super.smtpVERB()` sees the command done.
   */
  protected async runBuiltin(): Promise<void> {
    this.builtinRan = true;
    const conn = this.connection;
    conn.runBuiltin();
    for (;;) {
      const event = conn.nextEvent();
      if (event.type === "needData" || event.type === "closed" || event.type === "paused") return;
      await this.dispatch(event);
      if (AWAITS_DECISION.has(event.type) || (event.type === "bodyEnd" && event.error === null))
        return;
    }
  }

  // Events.

  /**
   * Handles one event. Returns a promise only when something has to be waited for (a hook, a
   * slow body consumer).
   */
  private dispatch(event: SmtpEvent): Promise<unknown> | undefined {
    const conn = this.connection;
    // A command line or a whole body was taken: the next wait for the client starts afresh.
    if (event.type !== "bodyChunk") {
      this.deadline.settle();
      this.report?.event(event);
    }
    switch (event.type) {
      case "proxyHeader":
      case "xclient":
      case "xforward":
        return relayEvent(this.relayContext(), event);
      case "connect":
        return this.connect();
      case "hello": {
        this.envelope = this.createEnvelope();
        const was = before(this.session, this.envelope);
        const outcome =
          event.verb === "HELO"
            ? this.hook("handleHELO", event.hostname)
            : this.hook("handleEHLO", event.hostname, [...event.responses]);
        return this.decide(outcome, (code) => {
          if (isPositive(code)) recordHello(this.session, event, was);
        });
      }
      case "mail": {
        presentMail(this.envelope, event);
        const outcome = this.handler.handleMAIL
          ? this.hook("handleMAIL", event.address, [...event.options])
          : NO_HOOK;
        return this.decide(outcome, (code) => {
          if (isPositive(code)) recordMail(this.envelope, event);
          else withdrawMail(this.envelope);
        });
      }
      case "rcpt": {
        const was = before(this.session, this.envelope);
        const earlier = presentRcpt(this.envelope, event);
        const outcome = this.handler.handleRCPT
          ? this.hook("handleRCPT", event.address, [...event.options])
          : NO_HOOK;
        return this.decide(outcome, (code) => {
          if (isPositive(code)) recordRcpt(this.envelope, event, was);
          else withdrawRcpt(this.envelope, event, earlier);
        });
      }
      case "dataStart":
        this.body = new MessageReception(this, this.handler, this.logError);
        return;
      case "bodyChunk":
        return this.body?.write(event.data);
      case "bodyEnd":
        return this.endBody(event);
      case "rset":
        this.envelope = this.createEnvelope();
        return this.decide(this.hook("handleRSET"));
      case "noop":
        return this.decide(this.hook("handleNOOP", event.argument));
      case "quit":
        return this.decide(this.hook("handleQUIT"));
      case "vrfy":
        return this.decide(this.hook("handleVRFY", event.address));
      case "startTls":
        return this.startTls();
      case "auth":
        return authenticate(
          {
            server: this,
            handler: this.handler,
            connection: conn,
            mechanisms: this.tables.mechanisms,
            logError: this.logError,
            verdict: this.report?.auth,
          },
          event.mechanism,
          event.initialResponse,
        );
      case "command":
        return this.runCommand(event.verb, event.argument, event.builtin);
      case "rejected":
        if (this.draining && !conn.inTransaction) this.abort();
        return;
      default:
        // authResponse / authAborted are read by challengeAuth(); paused / closed end the loop.
        return;
    }
  }

  /**
   * Answers the pending event with a hook's outcome (now, or once the hook settles), then runs
   * `then` with the code sent.
   */
  private decide(
    outcome: Outcome | Promise<Outcome>,
    then?: (code: number) => void,
  ): Promise<unknown> | undefined {
    if (outcome instanceof Promise) return outcome.then((o) => this.decide(o, then));
    const code = this.answer(outcome);
    if (typeof code !== "number") return code.then((sent) => then?.(sent));
    then?.(code);
    return;
  }

  /** Sends the reply a hook chose (or the default); returns the code sent. */
  private answer(outcome: Outcome): number | Promise<number> {
    const conn = this.connection;
    let reply: Reply | null;
    try {
      reply = outcome.error ?? replyOf(outcome.value);
    } catch (error) {
      // A hook returned something that is not a reply: that is the hook's failure.
      return failure(error, this.handler, this.logError).then((r) => this.sent(conn.reply(r)));
    }
    return this.sent(reply === null ? conn.accept() : conn.reply(reply));
  }

  private sent(code: number): number {
    this.report?.answered(code);
    if (this.draining && !this.connection.inTransaction && this.body === null) this.abort();
    return code;
  }

  /** What the PROXY header, XCLIENT and XFORWARD change (relay-chain.ts). */
  private relayContext(): RelayContext {
    const { connection, tables, logError } = this;
    const newSession = () => this.createSession();
    const newEnvelope = () => this.createEnvelope();
    return { server: this, connection, trust: tables.relay, newSession, newEnvelope, logError };
  }

  /** `handleCONNECT` decides on the greeting: now, after a pause, or a refusal. */
  private async connect(): Promise<void> {
    const greeting = await decideGreeting({
      server: this,
      connection: this.connection,
      transport: this.transport,
      trust: this.tables.trust,
      isClosed: () => this.closed,
      log: (message) => this.report?.log("info", message),
      logError: this.logError,
    });
    this.pendingRead = greeting.pendingRead;
    if (greeting.refused) this.closeReason = "refused";
  }

  /** Calls the handler's hook `name` (hooks.ts: a missing hook costs nothing). */
  private hook(name: HookName, ...args: unknown[]): Outcome | Promise<Outcome> {
    return namedHook(this, name, args, this.logError);
  }

  // Bodies.

  private async endBody(event: BodyEndEvent): Promise<void> {
    const reception = this.body;
    this.body = null;
    if (event.error !== null) {
      // The engine has answered the limit (or the transaction ended without a body reply): the
      // reader learns the body failed and may clean up before the session goes on.
      await reception?.fail(bodyError(event.error));
      this.envelope = this.createEnvelope();
      return;
    }
    const outcome = reception ? await reception.complete() : NO_HOOK;
    const { connection, handler, logError } = this;
    const count = event.recipients.length;
    if (this.options.lmtp)
      this.sent(await answerRecipients(connection, outcome, count, handler, logError));
    else await this.answer(outcome);
    this.envelope = this.createEnvelope();
  }

  // STARTTLS and AUTH.

  private async startTls(): Promise<void> {
    await this.flush();
    const accepted = await upgradeToTls({
      transport: this.transport,
      handler: this.handler,
      logError: this.logError,
      restart: (info) => {
        const previous = this.session;
        this.session = this.createSession();
        carryConnection(previous, this.session);
        this.session.ssl = info;
        this.envelope = this.createEnvelope();
      },
      hook: () => this.hook("handleSTARTTLS"),
    });
    if (accepted === null) return this.closeSoon();
    this.connection.tlsEstablished({ accepted });
    this.report?.tls();
    this.offerMechanisms();
  }

  /** Tells the engine which mechanisms can run on this connection as it is now. */
  private offerMechanisms(): void {
    const names = availableMechanisms(this.tables, saslContext(this));
    if (names) this.connection.offerMechanisms(names);
  }

  private async runCommand(verb: string, argument: string | null, builtin: boolean): Promise<void> {
    const command = this.tables.commands.get(verb);
    this.builtinRan = false;
    const outcome = await callHook(
      () => {
        if (command?.definition) return command.definition.run(this, argument, this.signal);
        const method = (this as unknown as Record<string, unknown>)[`smtp${verb}`];
        return typeof method === "function" ? method.call(this, argument) : undefined;
      },
      this.handler,
      this.logError,
    );
    // The override called super.smtpVERB(): the built-in already answered.
    if (builtin && this.builtinRan) return;
    if (this.connection.phase === "reply") await this.answer(outcome);
  }

  // Waiting for the client.

  /**
   * Sends the queued replies and reads more input, under the deadline of what is awaited: the
   * PROXY header, a command line (or AUTH answer), or a body. `null` from the transport (end of
   * input) reaches the engine as an empty chunk.
   */
  private async fill(): Promise<void> {
    const out = this.startWait();
    if (out.length > 0) await this.send(out);
    this.endWait(await this.transport.read());
  }

  /** The wait for the client begins: its deadline starts; returns the replies to send first. */
  private startWait(): Uint8Array {
    const { connection } = this;
    this.deadline.wait(connection.phase, this.options, connection.bufferedBytes > 0);
    return connection.dataToSend();
  }

  /** The wait ended with `data` (`null` at end of input). */
  private endWait(data: Uint8Array | null): void {
    this.deadline.received(data?.length ?? 0, this.options);
    if (data) this.report?.received(data.length);
    if (!this.closed) this.connection.receiveData(data ?? EMPTY);
  }

  private timedOut(): void {
    if (this.closed) return;
    // aiosmtpd closed silently; a client deserves to know why (README: From aiosmtpd). No greeting yet: silent.
    this.closeReason ??= "timeout";
    const silent = this.connection.phase === "proxy";
    if (silent) this.connection.closeConnection();
    else this.connection.closeConnection(hostReply(REPLIES.timeout, this.hostname));
    this.report?.timeout(silent ? null : REPLIES.timeout.code);
    this.closeSoon();
  }

  /** Sends what is queued and closes the transport; a pending read() then sees end of input. */
  private closeSoon(): void {
    this.closed = true;
    this.body?.abandon(new SmtpError(421, "4.4.2", "Connection closed"));
    void this.flush()
      .catch(() => undefined)
      .then(() => this.transport.close())
      .catch(() => undefined);
  }

  private async flush(): Promise<void> {
    const data = this.connection?.dataToSend();
    if (data && data.length > 0) await this.send(data);
  }

  private send(data: Uint8Array): Promise<void> {
    this.report?.sent(data);
    return this.transport.write(data);
  }
}
