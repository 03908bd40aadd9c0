import { REPLIES } from "../engine/replies.js";
import { AWAITS_DECISION, type SmtpEvent } from "../events.js";
import type { Reply } from "../reply.js";
import type { CloseReason } from "./handler.js";
import { describeEvent, type LogLevel, logLine, sentLines } from "./log.js";
import type { LimitName, SmtpObserver } from "./observer.js";
import type { Envelope, Session } from "./session.js";
import type { SmtpLogger } from "./smtp-options.js";
import type { SmtpTransport } from "./transport.js";

/** High-resolution time, in every runtime the core targets (Node, Deno, Bun, browsers, workers). */
declare const performance: { now(): number };

/** What the report reads of the session it reports on (the Session is replaced after STARTTLS). */
export interface ReportedServer {
  readonly session: Session;
  readonly envelope: Envelope;
  readonly options: { readonly logger?: SmtpLogger; readonly observer?: SmtpObserver };
}

/**
 * One session's happenings, told to the text logger (`options.logger`, as `-d`/`-dd` print them)
 * and to the observer (`options.observer`). Made only when one of them is set: without both, the
 * server holds `null` and pays a null check per call.
 */
export class SessionReport {
  readonly #server: ReportedServer;
  readonly #transport: SmtpTransport;
  readonly #logger: SmtpLogger | undefined;
  readonly #observer: SmtpObserver | undefined;
  readonly #start = performance.now();
  #bytesIn = 0;
  #bytesOut = 0;
  #transactions = 0;
  #transactionId: string | null = null;
  /** The event whose decision comes next through `answered()`. */
  #pending: SmtpEvent | null = null;
  #bodyVerb = "DATA";
  #bodyStart = 0;

  static of(server: ReportedServer, transport: SmtpTransport): SessionReport | null {
    const { logger, observer } = server.options;
    return logger || observer ? new SessionReport(server, transport, logger, observer) : null;
  }

  private constructor(
    server: ReportedServer,
    transport: SmtpTransport,
    logger: SmtpLogger | undefined,
    observer: SmtpObserver | undefined,
  ) {
    this.#server = server;
    this.#transport = transport;
    this.#logger = logger;
    this.#observer = observer;
  }

  get #session(): Session {
    return this.#server.session;
  }

  connected(): void {
    this.log("info", "connected");
    const session = this.#session;
    this.#emit("connect", { session });
    if (session.ssl) this.#emit("tls", { session, tls: session.ssl, implicit: true });
  }

  /** An event from the engine (body chunks excepted). */
  event(event: SmtpEvent): void {
    if (this.#logger) this.log("debug", describeEvent(event));
    const observer = this.#observer;
    if (!observer) return;
    const session = this.#session;
    if (observer.transcript)
      this.#emit("transcript", { session, from: "client", line: describeEvent(event) });
    const verb = observer.command ? verbOf(event) : null;
    if (verb !== null) this.#emit("command", { session, verb });
    if (AWAITS_DECISION.has(event.type) || event.type === "bodyEnd") this.#pending = event;
    switch (event.type) {
      case "hello":
      case "rset":
        this.#transactionId = null;
        return;
      case "dataStart":
        this.#bodyVerb = event.via;
        this.#bodyStart = performance.now();
        return;
      case "bodyEnd":
        if (event.error === null) return;
        this.#pending = null;
        this.#data(
          event.error === "aborted" ? "aborted" : "rejected",
          BODY_ERROR_CODES[event.error],
          event,
        );
        if (event.error === "tooMuchData") this.#limit("dataSizeLimit", 552);
        else if (event.error === "lineTooLong") this.#limit("lineLengthLimit", 500);
        return;
      case "rejected": {
        const command = event.verb;
        this.#emit("reject", {
          session,
          transactionId: this.#transactionId,
          command,
          code: event.reply.code,
        });
        const limit = limitOf(event.reply);
        if (limit) this.#limit(limit, event.reply.code);
        return;
      }
    }
  }

  /** The pending event was answered with `code`. */
  answered(code: number): void {
    const event = this.#pending;
    this.#pending = null;
    if (!event || !this.#observer) return;
    const session = this.#session;
    const observer = this.#observer;
    // The per-message events are made only for an observer that takes them.
    if (event.type === "mail") {
      if (code >= 200 && code < 300) this.#transactionId = `${session.id}.${++this.#transactions}`;
      if (observer.mail)
        this.#emit("mail", {
          session,
          transactionId: this.#transactionId,
          address: event.address,
          code,
        });
    } else if (event.type === "rcpt") {
      if (observer.rcpt)
        this.#emit("rcpt", {
          session,
          transactionId: this.#transactionId,
          address: event.address,
          code,
        });
    } else if (event.type === "bodyEnd") {
      this.#data(code >= 200 && code < 300 ? "accepted" : "rejected", code, event);
      return;
    }
    if (code >= 400) {
      const command =
        event.type === "command" || event.type === "hello" ? event.verb : (verbOf(event) ?? "");
      this.#emit("reject", { session, transactionId: this.#transactionId, command, code });
    }
  }

  received(bytes: number): void {
    this.#bytesIn += bytes;
  }

  /** Bytes about to be written: whole replies. */
  sent(bytes: Uint8Array): void {
    this.#bytesOut += bytes.length;
    if (this.#logger) for (const line of sentLines(bytes)) this.log("debug", `< ${line}`);
    const observer = this.#observer;
    if (!observer) return;
    const session = this.#session;
    if (observer.transcript)
      for (const line of sentLines(bytes))
        this.#emit("transcript", { session, from: "server", line: `< ${line}` });
    if (observer.reply) this.#replies(session, bytes);
  }

  tls(): void {
    this.#transactionId = null; // STARTTLS ends any transaction (RFC 3207 §4.2)
    const session = this.#session;
    if (session.ssl) this.#emit("tls", { session, tls: session.ssl, implicit: false });
  }

  /** An AUTH verdict (a mechanism's, or `handleAUTH`'s). */
  readonly auth = (mechanism: string, success: boolean): void => {
    this.#emit("auth", { session: this.#session, mechanism, success });
  };

  timeout(code: number | null): void {
    this.log("info", "timeout");
    if (code !== null) this.#limit("timeout", code);
  }

  error(message: string): void {
    this.log("error", message);
    this.#emit("error", { session: this.#session, message });
  }

  closed(reason: CloseReason): void {
    this.#emit("close", {
      session: this.#session,
      reason,
      durationMs: performance.now() - this.#start,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
    });
  }

  log(level: LogLevel, message: string): void {
    if (this.#logger) logLine(this.#logger, this.#transport.peer, level, message);
  }

  #data(
    result: "accepted" | "rejected" | "aborted",
    code: number | null,
    event: { readonly size: number; readonly recipients: readonly string[] },
  ): void {
    if (this.#observer?.data)
      this.#emit("data", {
        session: this.#session,
        transactionId: this.#transactionId,
        result,
        code,
        bytes: event.size,
        durationMs: performance.now() - this.#bodyStart,
        recipients: event.recipients.length,
        from: this.#server.envelope.mailFrom,
      });
    if (result !== "aborted" && code !== null && code >= 400) {
      const session = this.#session;
      this.#emit("reject", {
        session,
        transactionId: this.#transactionId,
        command: this.#bodyVerb,
        code,
      });
    }
    this.#transactionId = null;
  }

  /** A `reply` event per reply in `bytes` (one per final line: `DDD ` or a bare `DDD`). */
  #replies(session: Session, bytes: Uint8Array): void {
    let start = 0;
    while (start + 3 <= bytes.length) {
      let end = bytes.indexOf(0x0a, start);
      if (end === -1) end = bytes.length;
      const separator = bytes[start + 3];
      if (separator === 0x20 || separator === 0x0d || start + 3 === end) {
        const code =
          ((bytes[start] as number) - 48) * 100 +
          ((bytes[start + 1] as number) - 48) * 10 +
          ((bytes[start + 2] as number) - 48);
        if (code >= 100 && code < 600) this.#emit("reply", { session, code });
      }
      start = end + 1;
    }
  }

  #limit(limit: LimitName, code: number): void {
    this.#emit("limit", { session: this.#session, limit, code });
  }

  /** Calls the observer's method `name`; a throwing observer is logged, the session goes on. */
  #emit<K extends keyof SmtpObserver>(
    name: K,
    event: Parameters<NonNullable<SmtpObserver[K]>>[0],
  ): void {
    const observer = this.#observer;
    const method = observer?.[name] as ((event: unknown) => void) | undefined;
    if (!method) return;
    try {
      method.call(observer, event);
    } catch (error) {
      this.log("error", `observer ${name} failed: ${String((error as Error)?.stack ?? error)}`);
    }
  }
}

/** The code the engine answered a refused body with. */
const BODY_ERROR_CODES = {
  tooMuchData: REPLIES.tooMuchData.code,
  lineTooLong: REPLIES.lineTooLong.code,
  bareLineEnding: REPLIES.bareLineEnding.code,
  aborted: null,
} as const;

/** The command an event stands for, or `null` for what is not a command line. */
function verbOf(event: SmtpEvent): string | null {
  switch (event.type) {
    case "hello":
    case "command":
    case "rejected":
      return event.verb;
    case "mail":
      return "MAIL";
    case "rcpt":
      return "RCPT";
    case "dataStart":
      return event.via;
    case "rset":
      return "RSET";
    case "noop":
      return "NOOP";
    case "quit":
      return "QUIT";
    case "vrfy":
      return "VRFY";
    case "startTls":
      return "STARTTLS";
    case "auth":
      return "AUTH";
    case "proxyHeader":
      return "PROXY";
    default:
      return null;
  }
}

/** The limit an engine refusal reports, if it is one. */
function limitOf(reply: Reply): LimitName | null {
  const text = reply.lines[0] ?? "";
  const is = (entry: { readonly code: number; readonly text: string }) =>
    reply.code === entry.code && text.endsWith(entry.text);
  if (is(REPLIES.tooManyRecipients)) return "maxRecipients";
  if (is(REPLIES.commandTooLong) || is(REPLIES.lineTooLong) || is(REPLIES.authLineTooLong))
    return "lineLengthLimit";
  if (is(REPLIES.sizeExceeded)) return "dataSizeLimit";
  if (is(REPLIES.tooManyUnknown)) return "unknownCommands";
  if (reply.code === 421 && text.endsWith(" sent too many times")) return "commandCallLimit";
  return null;
}
