import { parsePath, parseVrfyArgument, stripKeyword } from "./address.js";
import { decodeBase64, encodeBase64 } from "./base64.js";
import { ByteQueue } from "./byte-queue.js";
import { DataReader } from "./data-reader.js";
import { LocalProtocolError, RemoteProtocolError } from "./errors.js";
import { decodeXtext, type EsmtpParam, parseEsmtpParams } from "./esmtp-params.js";
import {
  type BodyEndEvent,
  type ClosedEvent,
  type MailEvent,
  NEED_DATA,
  PAUSED,
  type RcptEvent,
  type SmtpEvent,
} from "./events.js";
import { BUILTIN_SYNTAX, syntaxText } from "./help.js";
import {
  type ConnectionOptions,
  DEFAULT_CALL_LIMIT,
  RESOLVED,
  type ResolvedOptions,
  resolveOptions,
} from "./options.js";
import { parseProxyHeader } from "./proxy-protocol.js";
import { type CatalogueReply, REPLIES } from "./replies.js";
import {
  defaultEnhancedCode,
  type EnhancedContext,
  formatReply,
  type Reply,
  type ReplyLike,
  toReply,
} from "./reply.js";

/** Where the engine is in the dialog. */
export type Phase =
  | "proxy" // waiting for a PROXY header
  | "command" // reading command lines
  | "reply" // an event awaits the program's decision
  | "data" // reading a DATA body
  | "bdat" // reading a BDAT chunk
  | "authResponse" // reading the answer to a 334 challenge
  | "paused" // STARTTLS accepted, waiting for tlsEstablished()
  | "closed";

/** Commands allowed before STARTTLS when it is required (aiosmtpd's set; LMTP adds LHLO: beyond.md). */
const ALLOWED_BEFORE_STARTTLS: ReadonlySet<string> = new Set(["NOOP", "EHLO", "STARTTLS", "QUIT"]);
/** RFC 4954 §4: AUTH command and response lines may be 12288 octets. */
const AUTH_LINE_LIMIT = 12288;
/** Room for the CRLF after the longest allowed line. */
const CRLF_LENGTH = 2;
const LF = 10;
const BDAT_ARGUMENT = /^(\d{1,15})(?: +(LAST))?$/i;
const NOTIFY_VALUES = new Set(["NEVER", "SUCCESS", "FAILURE", "DELAY"]);

type Pending =
  | { readonly kind: "proxyHeader" }
  | {
      readonly kind: "hello";
      readonly verb: "HELO" | "EHLO" | "LHLO";
      readonly defaultReply: Reply;
    }
  | { readonly kind: "mail"; readonly address: string }
  | { readonly kind: "rcpt"; readonly address: string }
  | { readonly kind: "bodyEnd" }
  | { readonly kind: "rset" | "noop" | "vrfy" | "quit" }
  | { readonly kind: "auth" }
  | {
      readonly kind: "command";
      readonly verb: string;
      readonly argument: string | null;
      readonly builtin: boolean;
    };

interface BdatChunk {
  remaining: number;
  readonly last: boolean;
  readonly size: number;
  /** When set, the chunk is read and thrown away, then this reply is sent. */
  readonly rejectWith: Reply | null;
  /** The rejection also ends the transaction's body (a limit was crossed mid-message). */
  readonly abortsBody: boolean;
}

/**
 * The SMTP/LMTP server protocol engine, sans-IO in the style of h11: feed it received bytes with
 * `receiveData()`, pull events with `nextEvent()`, answer the events that await a decision with
 * `respond()` (or the AUTH and STARTTLS methods), and send whatever `dataToSend()` returns.
 *
 * It owns every protocol decision: framing, limits, command syntax, sequencing, reply texts. A
 * program driving it only supplies policy (accept this recipient?) and moves bytes.
 */
export class ServerConnection {
  readonly options: ResolvedOptions;
  private readonly input = new ByteQueue();
  private readonly queued: SmtpEvent[] = [];
  private output = "";
  private currentPhase: Phase;
  private pending: Pending | null = null;
  /** Code of the last reply pushed while an event was pending (a hook that answered by itself). */
  private pushedCode: number | null = null;
  private endOfInput = false;
  /** Whether any output has been handed to the caller yet. */
  private outputTaken = false;
  private closedEvent: ClosedEvent | null = null;
  /** While an over-long line is skipped up to its LF: whether it was an AUTH line. */
  private skippingLongLine: boolean | null = null;
  /** Leading buffered bytes already searched for the LF of the current command line. */
  private scannedForLf = 0;

  // Session state (reset by STARTTLS).
  private helloVerb: "HELO" | "EHLO" | "LHLO" | null = null;
  private tls: boolean;
  private tlsRefused = false;
  private authenticated = false;

  // Transaction state (reset by HELO/EHLO/LHLO, RSET, STARTTLS and the end of a body).
  private mailFrom: string | null = null;
  private recipients: string[] = [];
  private bodyVia: "DATA" | "BDAT" | null = null;
  private bdatSize = 0;
  private dataReader: DataReader | null = null;
  private bdatChunk: BdatChunk | null = null;

  /** Mechanisms offered now; the program may narrow them per connection (`offerMechanisms`). */
  private authMechanisms: readonly string[];

  // Per-connection counters.
  private unknownCommands = 0;
  private callsLeft: Map<string, number> | null = null;

  /** Takes options, or options resolved once with `resolveOptions()` and shared by connections. */
  constructor(options: ConnectionOptions | ResolvedOptions = {}) {
    this.options = RESOLVED in options ? options : resolveOptions(options);
    this.tls = this.options.implicitTls;
    this.authMechanisms = this.options.authMechanisms;
    if (this.options.proxyProtocol) {
      this.currentPhase = "proxy";
    } else {
      this.currentPhase = "command";
      this.writeGreeting();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // State a program may read.

  get phase(): Phase {
    return this.currentPhase;
  }
  /** The HELO/EHLO/LHLO host name has been accepted. */
  get greeted(): boolean {
    return this.helloVerb !== null;
  }
  /** The session is ESMTP (EHLO or LHLO accepted). */
  get extended(): boolean {
    return this.helloVerb === "EHLO" || this.helloVerb === "LHLO";
  }
  get isTls(): boolean {
    return this.tls;
  }
  get isAuthenticated(): boolean {
    return this.authenticated;
  }
  get inTransaction(): boolean {
    return this.mailFrom !== null;
  }

  // ---------------------------------------------------------------------------------------------
  // Bytes in, bytes out.

  /** Hands received bytes to the engine; an empty array means the peer closed its side. */
  receiveData(data: Uint8Array): void {
    if (this.endOfInput) throw new LocalProtocolError("receiveData() after end of input");
    if (data.length === 0) {
      this.endOfInput = true;
      return;
    }
    // Plaintext that arrives between STARTTLS and the handshake is never parsed (RFC 3207 §6).
    if (this.currentPhase === "paused" || this.currentPhase === "closed") return;
    this.input.push(data);
  }

  /** Everything queued for the peer since the last call (empty when nothing is). */
  dataToSend(): Uint8Array {
    if (this.output === "") return EMPTY;
    this.outputTaken = true;
    const bytes = ENCODER.encode(this.output);
    this.output = "";
    return bytes;
  }

  /** Bytes received but not yet parsed. */
  get bufferedBytes(): number {
    return this.input.length;
  }

  nextEvent(): SmtpEvent {
    for (;;) {
      const queued = this.queued.shift();
      if (queued) return queued;
      if (this.closedEvent) return this.closedEvent;
      switch (this.currentPhase) {
        case "reply":
          throw new LocalProtocolError("nextEvent() while an event awaits respond()");
        case "paused":
          return PAUSED;
        case "proxy":
          if (!this.readProxyHeader()) return this.needData();
          break;
        case "command":
        case "authResponse":
          if (!this.readCommandLine()) return this.needData();
          break;
        case "data":
          if (!this.readDataBody()) return this.needData();
          break;
        case "bdat":
          if (!this.readBdatChunk()) return this.needData();
          break;
        case "closed":
          return this.close("closedByServer");
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Decisions in.

  /**
   * Answers the pending event. `undefined`/`null` means the default behaviour (aiosmtpd's reply
   * when there is no hook). After a `hello` event a list of lines replaces the EHLO reply; after
   * an LMTP `bodyEnd` a list gives one reply per recipient. `false` after `proxyHeader` closes.
   */
  respond(value?: ReplyLike | readonly ReplyLike[] | false | null): number {
    // Everything that can throw (misuse, a malformed reply) happens before anything changes, so
    // the event can still be answered properly afterwards.
    const current = this.pending;
    if (current?.kind === "auth") {
      throw new LocalProtocolError("answer AUTH events with challenge() or completeAuth()");
    }
    if (value === false && current?.kind !== "proxyHeader") {
      throw new LocalProtocolError("respond(false) is only for proxyHeader");
    }
    const lmtpBody = current?.kind === "bodyEnd" && this.options.lmtp;
    let replies: Reply[] | null = null;
    if (value !== undefined && value !== null && value !== false) {
      if (!Array.isArray(value)) replies = [toReply(value as ReplyLike)];
      else if (lmtpBody) replies = value.map((item) => toReply(item as ReplyLike));
      // EHLO: a list of reply lines forms one multi-line reply.
      else
        replies = [
          toReply(
            value
              .map((line) => (typeof line === "string" ? line : formatReply(line).trimEnd()))
              .join("\r\n"),
          ),
        ];
    }
    if (lmtpBody && Array.isArray(value) && replies && replies.length !== this.recipients.length) {
      throw new LocalProtocolError(
        `LMTP needs ${this.recipients.length} replies after the body, one per recipient; got ${replies.length}`,
      );
    }
    const pending = this.takePending("respond()");
    const pushed = this.pushedCode;
    this.pushedCode = null;
    if (pending.kind === "proxyHeader") {
      if (value === false) {
        this.finish("proxyRejected");
        return 0;
      }
      this.currentPhase = "command";
      this.writeGreeting();
      return 220;
    }
    if (lmtpBody) return this.respondLmtpBody(replies, Array.isArray(value), pushed);
    const reply = replies?.[0] ?? (pushed === null ? this.defaultReply(pending) : null);
    const code = reply?.code ?? pushed ?? 250;
    if (reply) this.writeReply(reply, contextOf(pending));
    this.afterReply(pending, code);
    // RFC 5321 §3.8: 421 means the server is closing the channel, whoever chose the reply.
    if (code === 421 && pending.kind !== "quit") this.finish("closedByServer");
    return code;
  }

  /** The default behaviour for the pending event. */
  accept(): number {
    return this.respond();
  }

  /** Answers the pending event with this reply. */
  reply(reply: ReplyLike): number {
    return this.respond(reply);
  }

  /** LMTP, after a body: one reply per accepted recipient. */
  replyPerRecipient(replies: readonly ReplyLike[]): number {
    if (!(this.pending?.kind === "bodyEnd" && this.options.lmtp))
      throw new LocalProtocolError("replyPerRecipient() is only for an LMTP bodyEnd");
    return this.respond(replies);
  }

  /** Refuses the PROXY header: the connection closes. */
  rejectProxy(): void {
    this.respond(false);
  }

  /** Sends a reply at once, while an event is pending (aiosmtpd's `push()`), without ending it. */
  push(value: ReplyLike): void {
    if (this.currentPhase === "closed") throw new LocalProtocolError("push() after close");
    const reply = toReply(value);
    this.writeReply(reply, this.pending ? contextOf(this.pending) : "other");
    if (this.pending) this.pushedCode = reply.code;
  }

  /** Sends a `334` challenge for the pending AUTH exchange; the next line is its response. */
  challenge(data: Uint8Array | string): void {
    this.takePending("challenge()", "auth");
    const bytes = typeof data === "string" ? ENCODER.encode(data) : data;
    this.output += formatReply({ code: 334, lines: [encodeBase64(bytes)] });
    this.pending = null;
    this.currentPhase = "authResponse";
  }

  /** Ends the pending AUTH exchange: 235 (or `reply`) on success, 535 5.7.8 (or `reply`) on failure. */
  completeAuth(success: boolean, reply?: ReplyLike | null): void {
    const final = reply
      ? toReply(reply)
      : this.catalogue(success ? REPLIES.authOk : REPLIES.authInvalid);
    this.takePending("completeAuth()", "auth");
    this.pushedCode = null;
    if (success) this.authenticated = true;
    this.writeReply(final, "other");
    this.currentPhase = "command";
    // RFC 5321 §3.8: a 421 closes the channel (e.g. too many failed attempts).
    if (final.code === 421) this.finish("closedByServer");
  }

  /** Runs the built-in behaviour for a pending `command` event that replaces a built-in verb. */
  runBuiltin(): void {
    const current = this.pending;
    if (current?.kind === "command" && !current.builtin) {
      throw new LocalProtocolError("runBuiltin() needs a command event for a built-in verb");
    }
    const pending = this.takePending("runBuiltin()", "command");
    if (pending.kind !== "command") throw new LocalProtocolError("unreachable");
    this.currentPhase = "command";
    this.runCommand(pending.verb, pending.argument);
  }

  /**
   * The TLS handshake after STARTTLS succeeded: a fresh session starts (RFC 3207 §4.2). With
   * `accepted: false` (aiosmtpd's `handle_STARTTLS` returning false) every later command but QUIT
   * gets 554.
   */
  tlsEstablished(options: { accepted?: boolean } = {}): void {
    if (this.currentPhase !== "paused")
      throw new LocalProtocolError("tlsEstablished() without STARTTLS");
    this.input.clear();
    this.scannedForLf = 0;
    this.tls = true;
    this.tlsRefused = options.accepted === false;
    this.helloVerb = null;
    this.authenticated = false;
    this.resetTransaction();
    this.currentPhase = "command";
  }

  /**
   * Sets the AUTH mechanisms offered from now on (a subset that can work on this connection, e.g.
   * EXTERNAL only with a client certificate); names are matched case-insensitively.
   */
  offerMechanisms(names: readonly string[]): void {
    this.authMechanisms = names.map((name) => name.toUpperCase());
  }

  /**
   * Ends the session from the server's side (timeout, shutdown, too many connections), optionally
   * with a last reply such as `421 4.4.2 ... timeout`.
   */
  closeConnection(reply?: ReplyLike): void {
    if (this.closedEvent) return;
    // Nothing sent yet: the refusal replaces the greeting (RFC 5321 §3.1: 421 or 554 instead of 220).
    if (!this.outputTaken) this.output = "";
    if (reply) this.writeReply(toReply(reply), "other");
    this.pending = null;
    this.finish("closedByServer");
  }

  // ---------------------------------------------------------------------------------------------
  // Reading.

  private needData(): SmtpEvent {
    if (this.endOfInput) return this.close("eof");
    return NEED_DATA;
  }

  private readProxyHeader(): boolean {
    // A v2 header announces its length: wait for all of it before copying anything.
    if (this.input.length >= 16 && this.input.byteAt(0) === 13 && this.input.byteAt(12) !== -1) {
      const total = 16 + this.input.byteAt(14) * 256 + this.input.byteAt(15);
      if (this.input.length < total && this.input.byteAt(4) === 0) return false;
    }
    const head = this.input.take(this.input.length);
    const result = parseProxyHeader(head);
    if (result.status === "incomplete") {
      this.input.push(head);
      return false;
    }
    if (result.consumed < head.length) this.input.push(head.subarray(result.consumed));
    if (!result.data.valid) {
      this.finish("proxyRejected");
      return true;
    }
    this.await({ kind: "proxyHeader" }, { type: "proxyHeader", proxy: result.data });
    return true;
  }

  /** Reads one command (or AUTH response) line; false when more input is needed. */
  private readCommandLine(): boolean {
    if (this.skippingLongLine !== null) {
      // Drop the rest of an over-long line up to its LF, then answer it once.
      const end = this.input.indexOf(LF, this.input.length);
      if (end === -1) {
        this.input.skip(this.input.length);
        return false;
      }
      this.input.skip(end + 1);
      const wasAuth = this.skippingLongLine;
      this.skippingLongLine = null;
      this.answerLongLine(wasAuth);
      return true;
    }
    const isAuth = this.currentPhase === "authResponse" || this.startsWithAuth();
    const limit = this.lineBufferLimit(isAuth);
    // Resume the LF search where the last one stopped: a client trickling one byte at a time
    // must not make each line cost quadratic time.
    const lf = this.input.indexOf(LF, limit, this.scannedForLf);
    if (lf === -1) {
      this.scannedForLf = Math.min(this.input.length, limit);
      if (this.input.length < limit) return false;
      this.scannedForLf = 0;
      this.skippingLongLine = isAuth;
      return true;
    }
    this.scannedForLf = 0;
    const raw = this.input.take(lf + 1);
    let end = raw.length;
    while (end > 0 && (raw[end - 1] === LF || raw[end - 1] === 13)) end--;
    const line = raw.subarray(0, end);
    if (this.currentPhase === "authResponse") this.handleAuthResponse(line);
    else this.handleCommandLine(line);
    return true;
  }

  private answerLongLine(isAuth: boolean): void {
    if (this.currentPhase === "authResponse")
      this.abortAuth("lineTooLong", REPLIES.authLineTooLong);
    else if (isAuth) this.reject("AUTH", REPLIES.authLineTooLong);
    else this.reject("", REPLIES.commandTooLong);
  }

  /** The longest line buffered before it is treated as too long. */
  private lineBufferLimit(isAuth: boolean): number {
    if (isAuth) return AUTH_LINE_LIMIT + CRLF_LENGTH;
    return Math.max(this.options.lineLengthLimit, this.maxCommandSize("MAIL") + CRLF_LENGTH);
  }

  private startsWithAuth(): boolean {
    for (let i = 0; i < AUTH_PREFIX.length; i++) {
      // `| 0x20` folds ASCII letters to lower case and leaves the space as it is.
      if ((this.input.byteAt(i) | 0x20) !== AUTH_PREFIX[i]) return false;
    }
    return true;
  }

  /** Per-verb command size limit, computed per connection (aiosmtpd's grew with every EHLO). */
  private maxCommandSize(verb: string): number {
    if (verb === "AUTH") return AUTH_LINE_LIMIT;
    let limit = this.options.commandSizeLimit;
    if (verb === "MAIL" && this.extended) {
      if (this.options.size && this.options.dataSizeLimit > 0) limit += 26;
      if (this.options.smtpUtf8) limit += 10;
      if (this.options.dsn) limit += 100 + 26;
      if (this.options.requireTlsParam) limit += 11;
    }
    if (verb === "RCPT" && this.extended && this.options.dsn) limit += 500 + 32;
    return limit;
  }

  private handleCommandLine(line: Uint8Array): void {
    if (line.length === 0) {
      this.reject("", REPLIES.badSyntax);
      return;
    }
    const space = line.indexOf(32);
    const verbBytes = space === -1 ? line : line.subarray(0, space);
    for (const byte of verbBytes) {
      if (byte > 127) {
        this.reject("", REPLIES.badSyntax);
        return;
      }
    }
    const verb = asciiString(verbBytes).toUpperCase();
    let argument: string | null = null;
    if (space !== -1) {
      const decoded = this.decodeArgument(line.subarray(space + 1));
      if (decoded === null) {
        this.reject(verb, this.options.smtpUtf8 ? REPLIES.badUtf8 : REPLIES.strictAscii);
        return;
      }
      argument = decoded.trim();
    }
    if (line.length > this.maxCommandSize(verb)) {
      this.reject(verb, REPLIES.commandTooLong);
      return;
    }
    if (this.tlsRefused && verb !== "QUIT") {
      this.reject(verb, REPLIES.lackOfSecurity);
      return;
    }
    if (
      this.options.requireStartTls &&
      !this.tls &&
      !ALLOWED_BEFORE_STARTTLS.has(verb) &&
      !(verb === "LHLO" && this.options.lmtp)
    ) {
      this.reject(verb, REPLIES.mustStartTls);
      return;
    }
    if (!this.takeCall(verb)) {
      this.writeReply(
        { code: 421, enhanced: "4.7.0", lines: [`${verb} sent too many times`] },
        "other",
      );
      this.finish("callLimit");
      return;
    }
    const custom = this.options.commands.get(verb);
    if (custom) {
      this.await(
        { kind: "command", verb, argument, builtin: this.isBuiltin(verb) },
        { type: "command", verb, argument, builtin: this.isBuiltin(verb) },
      );
      return;
    }
    this.runCommand(verb, argument);
  }

  private decodeArgument(bytes: Uint8Array): string | null {
    if (this.options.smtpUtf8) {
      try {
        return UTF8.decode(bytes);
      } catch {
        return null;
      }
    }
    for (const byte of bytes) if (byte > 127) return null;
    return asciiString(bytes);
  }

  /** aiosmtpd's per-verb `command_call_limit`; unknown verbs count too. */
  private takeCall(verb: string): boolean {
    const limits = this.options.commandCallLimit;
    if (limits === null) return true;
    this.callsLeft ??= new Map();
    let left = this.callsLeft.get(verb);
    if (left === undefined) {
      left =
        typeof limits === "number" ? limits : (limits[verb] ?? limits["*"] ?? DEFAULT_CALL_LIMIT);
    }
    if (left <= 0) return false;
    this.callsLeft.set(verb, left - 1);
    return true;
  }

  private isBuiltin(verb: string): boolean {
    return (
      BUILTIN_VERBS.has(verb) &&
      (this.options.lmtp ? verb !== "HELO" && verb !== "EHLO" : verb !== "LHLO")
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Commands.

  private runCommand(verb: string, argument: string | null): void {
    if (this.options.lmtp && (verb === "HELO" || verb === "EHLO")) {
      this.reject(verb, {
        code: 500,
        enhanced: "5.5.1",
        text: `Error: command "${verb}" not recognized`,
      });
      return;
    }
    switch (this.isBuiltin(verb) ? verb : "") {
      case "HELO":
      case "EHLO":
      case "LHLO":
        return this.hello(verb as "HELO" | "EHLO" | "LHLO", argument);
      case "NOOP":
        return this.await({ kind: "noop" }, { type: "noop", argument });
      case "QUIT":
        if (argument !== null) return this.reject(verb, this.syntaxError("QUIT"));
        return this.await({ kind: "quit" }, { type: "quit" });
      case "RSET":
        if (argument !== null) return this.reject(verb, this.syntaxError("RSET"));
        this.resetTransaction();
        return this.await({ kind: "rset" }, { type: "rset" });
      case "VRFY":
        return this.vrfy(argument);
      case "EXPN":
        return this.reject(verb, REPLIES.expnNotImplemented);
      case "HELP":
        return this.help(argument);
      case "MAIL":
        return this.mail(argument);
      case "RCPT":
        return this.rcpt(argument);
      case "DATA":
        return this.data(argument);
      case "BDAT":
        return this.bdat(argument);
      case "AUTH":
        return this.auth(argument);
      case "STARTTLS":
        return this.startTls(argument);
      default:
        return this.unknown(verb);
    }
  }

  private unknown(verb: string): void {
    this.unknownCommands++;
    if (this.unknownCommands >= this.options.maxUnknownCommands) {
      const reply = this.catalogue(REPLIES.tooManyUnknown);
      this.writeReply(reply, "other");
      this.queued.push(rejection(verb, reply));
      this.finish("tooManyUnknownCommands");
      return;
    }
    this.reject(verb, {
      code: 500,
      enhanced: "5.5.1",
      text: `Error: command "${verb}" not recognized`,
    });
  }

  private hello(verb: "HELO" | "EHLO" | "LHLO", argument: string | null): void {
    if (!argument)
      return this.reject(verb, { code: 501, enhanced: "5.5.4", text: `Syntax: ${verb} hostname` });
    this.resetTransaction();
    const extended = verb !== "HELO";
    const lines = extended ? this.ehloKeywords() : [this.options.hostname];
    const defaultReply: Reply = { code: 250, enhanced: undefined, lines };
    const responses = lines.map((text, i) => `250${i === lines.length - 1 ? " " : "-"}${text}`);
    this.await(
      { kind: "hello", verb, defaultReply },
      { type: "hello", verb, hostname: argument, extended, responses },
    );
  }

  /** The EHLO/LHLO reply, aiosmtpd's order with our extensions after 8BITMIME/SMTPUTF8. */
  private ehloKeywords(): string[] {
    const o = this.options;
    const keywords: string[] = [];
    if (o.size && o.dataSizeLimit > 0) keywords.push(`SIZE ${o.dataSizeLimit}`);
    if (o.eightBitMime) keywords.push("8BITMIME");
    if (o.smtpUtf8) keywords.push("SMTPUTF8");
    if (o.pipelining) keywords.push("PIPELINING");
    if (o.enhancedStatusCodes) keywords.push("ENHANCEDSTATUSCODES");
    if (o.chunking) keywords.push("CHUNKING");
    if (o.dsn) keywords.push("DSN");
    if (o.requireTlsParam && this.tls) keywords.push("REQUIRETLS");
    keywords.push(...o.keywords);
    if (o.startTls && !this.tls) keywords.push("STARTTLS");
    const mechanisms = this.offeredMechanisms();
    if (mechanisms.length > 0) keywords.push(`AUTH ${[...mechanisms].sort().join(" ")}`);
    keywords.push("HELP");
    return [o.hostname, ...keywords];
  }

  private offeredMechanisms(): readonly string[] {
    const o = this.options;
    if (this.tls || !o.authRequireTls) return this.authMechanisms;
    return this.authMechanisms.filter((name) => o.authClearText.has(name));
  }

  private vrfy(argument: string | null): void {
    if (this.options.authRequired && !this.authenticated)
      return this.reject("VRFY", REPLIES.authRequired);
    if (!argument) return this.reject("VRFY", this.syntaxError("VRFY"));
    const address = parseVrfyArgument(argument, this.addressOptions());
    if (address === null) {
      return this.reject("VRFY", {
        code: 502,
        enhanced: "5.1.3",
        text: `Could not VRFY ${argument}`,
      });
    }
    this.await({ kind: "vrfy" }, { type: "vrfy", address });
  }

  private help(argument: string | null): void {
    if (this.options.authRequired && !this.authenticated)
      return this.reject("HELP", REPLIES.authRequired);
    const listed = this.helpTable();
    if (argument) {
      const spec = listed.get(argument.toUpperCase());
      if (spec) {
        this.writeReply(
          this.plain(250, "2.0.0", `Syntax: ${syntaxText(spec, this.extended)}`),
          "other",
        );
        return;
      }
      return this.reject(
        "HELP",
        this.plain(501, "5.5.4", `Supported commands: ${[...listed.keys()].join(" ")}`),
      );
    }
    this.writeReply(
      this.plain(250, "2.0.0", `Supported commands: ${[...listed.keys()].join(" ")}`),
      "other",
    );
  }

  /** Commands listed by HELP, alphabetically: built-ins available here plus added ones with a syntax. */
  private helpTable(): Map<string, { syntax?: string; extendedSyntax?: string }> {
    const table = new Map<string, { syntax?: string; extendedSyntax?: string }>();
    for (const [verb, spec] of Object.entries(BUILTIN_SYNTAX)) {
      if (!this.isBuiltin(verb)) continue;
      if (verb === "STARTTLS" && !this.options.startTls) continue;
      if (verb === "BDAT" && !this.options.chunking) continue;
      table.set(verb, spec);
    }
    for (const [verb, spec] of this.options.commands) {
      if (spec.syntax) table.set(verb, spec);
    }
    return new Map([...table].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  private mail(argument: string | null): void {
    if (!this.greeted) return this.reject("MAIL", REPLIES.sendHelo);
    if (this.options.authRequired && !this.authenticated)
      return this.reject("MAIL", REPLIES.authRequired);
    const syntax = this.syntaxError("MAIL");
    const pathText = argument === null ? null : stripKeyword(argument, "FROM:");
    if (pathText === null) return this.reject("MAIL", syntax);
    const path = parsePath(pathText, this.addressOptions());
    if (!path.ok) return this.reject("MAIL", REPLIES.malformedAddress);
    if (path.address === "" || (path.rest !== "" && !this.extended))
      return this.reject("MAIL", syntax);
    if (this.inTransaction) return this.reject("MAIL", REPLIES.nestedMail);
    const params = parseEsmtpParams(path.rest);
    if (params === null) return this.reject("MAIL", syntax);

    const o = this.options;
    let body: MailEvent["body"] = null;
    let smtpUtf8 = false;
    let size: number | null = null;
    let requireTls = false;
    let ret: "FULL" | "HDRS" | null = null;
    let envelopeId: string | null = null;
    // aiosmtpd checks BODY, then SMTPUTF8, then SIZE, whatever order they came in.
    const rank = (keyword: string): number =>
      keyword === "BODY" && o.eightBitMime
        ? 0
        : keyword === "SMTPUTF8"
          ? 1
          : keyword === "SIZE"
            ? 2
            : 3;
    // A repeated parameter: the last one wins, as in aiosmtpd (smtplib may send SMTPUTF8 twice).
    const ordered = lastOfEach(params).sort((a, b) => rank(a.keyword) - rank(b.keyword));
    for (const { keyword, value } of ordered) {
      if (keyword === "BODY" && o.eightBitMime) {
        const upper = value?.toUpperCase();
        if (upper !== "7BIT" && upper !== "8BITMIME") return this.reject("MAIL", REPLIES.bodyValue);
        body = upper;
      } else if (keyword === "SMTPUTF8") {
        if (value !== null) return this.reject("MAIL", REPLIES.smtpUtf8Argument);
        if (!o.smtpUtf8) return this.reject("MAIL", REPLIES.smtpUtf8Disabled);
        smtpUtf8 = true;
      } else if (keyword === "SIZE") {
        if (value === null || !/^\d{1,20}$/.test(value)) return this.reject("MAIL", syntax);
        size = Number(value);
        if (o.dataSizeLimit > 0 && size > o.dataSizeLimit)
          return this.reject("MAIL", REPLIES.sizeExceeded);
      } else if (keyword === "RET" && o.dsn) {
        const upper = value?.toUpperCase();
        if (upper !== "FULL" && upper !== "HDRS")
          return this.reject(
            "MAIL",
            this.plain(501, "5.5.4", "Error: RET can only be one of FULL, HDRS"),
          );
        ret = upper;
      } else if (keyword === "ENVID" && o.dsn) {
        const decoded = value === null ? null : decodeXtext(value);
        if (decoded === null || decoded.length > 100)
          return this.reject("MAIL", this.plain(501, "5.5.4", "Error: bad ENVID value"));
        envelopeId = decoded;
      } else if (keyword === "REQUIRETLS" && o.requireTlsParam && this.tls) {
        if (value !== null) return this.reject("MAIL", syntax);
        requireTls = true;
      } else if (!o.mailParameters.has(keyword)) {
        return this.reject("MAIL", REPLIES.mailParams);
      }
    }
    const dsn = o.dsn ? { ret, envelopeId } : null;
    this.await(
      { kind: "mail", address: path.address },
      {
        type: "mail",
        address: path.address,
        params,
        options: params.map(paramText),
        smtpUtf8,
        body,
        size,
        requireTls,
        dsn,
      },
    );
  }

  private rcpt(argument: string | null): void {
    if (!this.greeted) return this.reject("RCPT", REPLIES.sendHelo);
    if (this.options.authRequired && !this.authenticated)
      return this.reject("RCPT", REPLIES.authRequired);
    if (!this.inTransaction) return this.reject("RCPT", REPLIES.needMail);
    const syntax = this.syntaxError("RCPT");
    const pathText = argument === null ? null : stripKeyword(argument, "TO:");
    if (pathText === null) return this.reject("RCPT", syntax);
    const path = parsePath(pathText, this.addressOptions());
    if (!path.ok) return this.reject("RCPT", REPLIES.malformedAddress);
    if (path.address === "" || (path.rest !== "" && !this.extended))
      return this.reject("RCPT", syntax);
    const params = parseEsmtpParams(path.rest);
    if (params === null) return this.reject("RCPT", syntax);

    const o = this.options;
    let notify: NonNullable<RcptEvent["dsn"]>["notify"] = null;
    let originalRecipient: NonNullable<RcptEvent["dsn"]>["originalRecipient"] = null;
    for (const { keyword, value } of lastOfEach(params)) {
      if (keyword === "NOTIFY" && o.dsn) {
        const items = (value ?? "").toUpperCase().split(",");
        const valid =
          items.every((item) => NOTIFY_VALUES.has(item)) &&
          (!items.includes("NEVER") || items.length === 1);
        if (!valid) return this.reject("RCPT", this.plain(501, "5.5.4", "Error: bad NOTIFY value"));
        notify = items as NonNullable<typeof notify>;
      } else if (keyword === "ORCPT" && o.dsn) {
        const semicolon = value?.indexOf(";") ?? -1;
        const decoded = value && semicolon > 0 ? decodeXtext(value.slice(semicolon + 1)) : null;
        if (!value || decoded === null)
          return this.reject("RCPT", this.plain(501, "5.5.4", "Error: bad ORCPT value"));
        originalRecipient = { type: value.slice(0, semicolon).toLowerCase(), address: decoded };
      } else if (!o.rcptParameters.has(keyword)) {
        return this.reject("RCPT", REPLIES.rcptParams);
      }
    }
    if (o.maxRecipients > 0 && this.recipients.length >= o.maxRecipients) {
      return this.reject("RCPT", REPLIES.tooManyRecipients);
    }
    this.await(
      { kind: "rcpt", address: path.address },
      {
        type: "rcpt",
        address: path.address,
        params,
        options: params.map(paramText),
        dsn: o.dsn ? { notify, originalRecipient } : null,
      },
    );
  }

  private data(argument: string | null): void {
    if (!this.greeted) return this.reject("DATA", REPLIES.sendHelo);
    if (this.options.authRequired && !this.authenticated)
      return this.reject("DATA", REPLIES.authRequired);
    if (this.recipients.length === 0) return this.reject("DATA", REPLIES.needRcpt);
    if (argument !== null) return this.reject("DATA", this.syntaxError("DATA"));
    if (this.bodyVia === "BDAT") return this.reject("DATA", REPLIES.bdatAfterData);
    this.writeReply(this.catalogue(REPLIES.startData), "other");
    this.bodyVia = "DATA";
    this.dataReader = new DataReader({
      maxSize: this.options.dataSizeLimit,
      maxLineLength: this.options.lineLengthLimit,
      lineEndings: this.options.lineEndings,
    });
    this.currentPhase = "data";
    this.queued.push({ type: "dataStart", via: "DATA" });
  }

  private bdat(argument: string | null): void {
    const match = argument === null || !this.options.chunking ? null : BDAT_ARGUMENT.exec(argument);
    if (!this.options.chunking) return this.unknown("BDAT");
    if (!match) return this.reject("BDAT", REPLIES.bdatSyntax);
    const size = Number(match[1]);
    const last = match[2] !== undefined;
    // Whatever the verdict, the chunk's bytes follow and must be read, never parsed as commands.
    const refuse = (entry: CatalogueReply | Reply, abortsBody = false): void => {
      const reply = "lines" in entry ? entry : this.catalogue(entry);
      this.queued.push(rejection("BDAT", reply));
      this.bdatChunk = { remaining: size, last, size, rejectWith: reply, abortsBody };
      this.currentPhase = "bdat";
    };
    if (!this.greeted) return refuse(REPLIES.sendHelo);
    if (this.options.authRequired && !this.authenticated) return refuse(REPLIES.authRequired);
    if (this.recipients.length === 0) return refuse(REPLIES.needRcpt);
    const limit = this.options.dataSizeLimit;
    if (limit > 0 && this.bdatSize + size > limit) return refuse(REPLIES.tooMuchData, true);
    this.bdatSize += size;
    this.bdatChunk = { remaining: size, last, size, rejectWith: null, abortsBody: false };
    this.currentPhase = "bdat";
    if (this.bodyVia === null) {
      this.bodyVia = "BDAT";
      this.queued.push({ type: "dataStart", via: "BDAT" });
    }
  }

  private auth(argument: string | null): void {
    if (!this.greeted) return this.reject("AUTH", REPLIES.authSendEhlo);
    if (!this.extended) return this.reject("AUTH", REPLIES.authAfterHelo);
    const words = argument ? argument.split(/\s+/) : [];
    const mechanism = words[0]?.toUpperCase() ?? "";
    if (!this.tls && this.options.authRequireTls && !this.options.authClearText.has(mechanism)) {
      return this.reject("AUTH", REPLIES.authEncryptionRequired);
    }
    if (this.authenticated) return this.reject("AUTH", REPLIES.authAlready);
    if (words.length === 0) return this.reject("AUTH", REPLIES.authNotEnough);
    if (words.length > 2) return this.reject("AUTH", REPLIES.authTooMany);
    if (!this.authMechanisms.includes(mechanism)) {
      return this.reject("AUTH", REPLIES.authUnknownMechanism);
    }
    let initialResponse: Uint8Array | null = null;
    const initial = words[1];
    if (initial !== undefined) {
      initialResponse = initial === "=" ? new Uint8Array(0) : decodeBase64(initial);
      if (initialResponse === null) return this.reject("AUTH", REPLIES.authBadBase64);
    }
    this.await({ kind: "auth" }, { type: "auth", mechanism, initialResponse });
  }

  private handleAuthResponse(line: Uint8Array): void {
    const text = asciiString(line).trim();
    if (text === "*") return this.abortAuth("cancelled", REPLIES.authAborted);
    const response = text === "" || text === "=" ? new Uint8Array(0) : decodeBase64(text);
    if (response === null) return this.abortAuth("badBase64", REPLIES.authBadBase64);
    this.await({ kind: "auth" }, { type: "authResponse", response });
  }

  private abortAuth(
    reason: "cancelled" | "badBase64" | "lineTooLong",
    entry: CatalogueReply,
  ): void {
    this.writeReply(this.catalogue(entry), "other");
    this.currentPhase = "command";
    this.queued.push({ type: "authAborted", reason });
  }

  private startTls(argument: string | null): void {
    if (argument !== null) return this.reject("STARTTLS", this.syntaxError("STARTTLS"));
    if (!this.options.startTls) return this.reject("STARTTLS", REPLIES.tlsNotAvailable);
    if (this.tls) return this.reject("STARTTLS", REPLIES.tlsAlreadyActive);
    this.writeReply(this.catalogue(REPLIES.readyTls), "other");
    // Anything the client sent after the STARTTLS line, partial line included, is dropped unread.
    this.input.clear();
    this.scannedForLf = 0;
    this.skippingLongLine = null;
    this.currentPhase = "paused";
    this.queued.push({ type: "startTls" });
  }

  // ---------------------------------------------------------------------------------------------
  // Bodies.

  private readDataBody(): boolean {
    const reader = this.dataReader;
    if (!reader) throw new LocalProtocolError("no DATA body in progress");
    const head = this.input.head();
    if (head.length === 0) return false;
    const out: Uint8Array[] = [];
    const used = reader.feed(head, out);
    this.input.skip(used);
    for (const data of out) this.queued.push({ type: "bodyChunk", data });
    if (reader.done) this.endBody(reader.error, reader.size);
    return true;
  }

  private readBdatChunk(): boolean {
    const chunk = this.bdatChunk;
    if (!chunk) throw new LocalProtocolError("no BDAT chunk in progress");
    if (chunk.remaining > 0) {
      const head = this.input.head();
      if (head.length === 0) return false;
      const n = Math.min(head.length, chunk.remaining);
      if (!chunk.rejectWith) this.queued.push({ type: "bodyChunk", data: head.subarray(0, n) });
      this.input.skip(n);
      chunk.remaining -= n;
      if (chunk.remaining > 0) return true;
    }
    this.bdatChunk = null;
    if (chunk.rejectWith) {
      // The LAST chunk ends the body: in LMTP that is one reply per accepted recipient.
      const perRecipient = this.options.lmtp && chunk.last && chunk.abortsBody;
      const count = perRecipient ? Math.max(1, this.recipients.length) : 1;
      for (let i = 0; i < count; i++) this.writeReply(chunk.rejectWith, "data");
      this.currentPhase = "command";
      if (chunk.abortsBody && this.bodyVia !== null) {
        this.endBody("tooMuchData", this.bdatSize + chunk.size, false);
      } else if (chunk.abortsBody) {
        this.resetTransaction();
      }
      return true;
    }
    if (chunk.last) {
      this.endBody(null, this.bdatSize);
    } else {
      this.writeReply(this.plain(250, "2.0.0", `OK: ${chunk.size} octets received`), "data");
      this.currentPhase = "command";
    }
    return true;
  }

  private endBody(error: BodyEndEvent["error"], size: number, replyToError = true): void {
    this.dataReader = null;
    const event: BodyEndEvent = { type: "bodyEnd", error, size, recipients: [...this.recipients] };
    if (error === null) {
      this.await({ kind: "bodyEnd" }, event);
      return;
    }
    if (replyToError) {
      const entry =
        error === "lineTooLong"
          ? REPLIES.lineTooLong
          : error === "tooMuchData"
            ? REPLIES.tooMuchData
            : REPLIES.bareLineEnding;
      // LMTP answers the body once per accepted recipient, errors included (RFC 2033 §4.2).
      const count = this.options.lmtp ? Math.max(1, this.recipients.length) : 1;
      for (let i = 0; i < count; i++) this.writeReply(this.catalogue(entry), "data");
    }
    this.resetTransaction();
    this.currentPhase = "command";
    this.queued.push(event);
  }

  /** LMTP: one reply per accepted recipient (a single reply serves all); returns the first code. */
  private respondLmtpBody(
    replies: Reply[] | null,
    perRecipient: boolean,
    pushed: number | null,
  ): number {
    const count = this.recipients.length;
    let first = pushed ?? 250;
    if (replies === null) {
      if (pushed === null)
        for (let i = 0; i < count; i++) this.writeReply(this.catalogue(REPLIES.ok), "data");
    } else {
      first = replies[0]?.code ?? first;
      for (let i = 0; i < count; i++) {
        const reply = perRecipient ? replies[i] : replies[0];
        if (reply) this.writeReply(reply, "data");
      }
    }
    this.resetTransaction();
    this.currentPhase = "command";
    return first;
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers.

  private await(pending: Pending, event: SmtpEvent): void {
    this.pending = pending;
    this.pushedCode = null;
    this.currentPhase = "reply";
    this.queued.push(event);
  }

  private takePending(method: string, kind?: Pending["kind"]): Pending {
    const pending = this.pending;
    if (!pending || this.currentPhase !== "reply")
      throw new LocalProtocolError(`${method} with no event awaiting a reply`);
    if (kind && pending.kind !== kind)
      throw new LocalProtocolError(`${method} does not answer a ${pending.kind} event`);
    this.pending = null;
    this.currentPhase = "command";
    return pending;
  }

  private afterReply(pending: Pending, code: number): void {
    const ok = code >= 200 && code < 300;
    switch (pending.kind) {
      case "hello":
        if (ok) this.helloVerb = pending.verb;
        break;
      case "mail":
        if (ok) this.mailFrom = pending.address;
        break;
      case "rcpt":
        if (ok) this.recipients.push(pending.address);
        break;
      case "bodyEnd":
        // The transaction ends whatever the answer (beyond.md: even after a handler error).
        this.resetTransaction();
        break;
      case "quit":
        this.finish("quit");
        break;
      default:
        break;
    }
  }

  private defaultReply(pending: Pending): Reply {
    switch (pending.kind) {
      case "hello":
        return pending.defaultReply;
      case "mail":
        return this.catalogue(REPLIES.mailOk);
      case "rcpt":
        return this.catalogue(REPLIES.rcptOk);
      case "quit":
        return this.catalogue(REPLIES.bye);
      case "vrfy":
        return this.catalogue(REPLIES.vrfyCannot);
      case "command":
        return this.catalogue(REPLIES.commandNoReply);
      default:
        return this.catalogue(REPLIES.ok);
    }
  }

  private resetTransaction(): void {
    this.mailFrom = null;
    this.recipients = [];
    this.bodyVia = null;
    this.bdatSize = 0;
    this.dataReader = null;
  }

  private reject(verb: string, entry: CatalogueReply | Reply): void {
    const reply = "lines" in entry ? entry : this.catalogue(entry);
    this.writeReply(reply, "other");
    this.queued.push(rejection(verb, reply));
  }

  private syntaxError(verb: string): Reply {
    const spec = BUILTIN_SYNTAX[verb] ?? {};
    return this.plain(501, "5.5.4", `Syntax: ${syntaxText(spec, this.extended)}`);
  }

  /** A reply whose text has no enhanced code in aiosmtpd. */
  private plain(code: number, enhanced: string, text: string): Reply {
    return this.catalogue({ code, enhanced, text });
  }

  private catalogue(entry: CatalogueReply): Reply {
    const withCode =
      entry.enhanced !== "" && (this.options.enhancedStatusCodes || entry.inPlain === true);
    return {
      code: entry.code,
      enhanced: withCode ? entry.enhanced : undefined,
      lines: [entry.text],
    };
  }

  private addressOptions(): { smtpUtf8: boolean; localPartLimit: number } {
    return { smtpUtf8: this.options.smtpUtf8, localPartLimit: this.options.localPartLimit };
  }

  private writeGreeting(): void {
    this.output += formatReply({
      code: 220,
      lines: [`${this.options.hostname} ${this.options.ident}`],
    });
  }

  private writeReply(reply: Reply, context: EnhancedContext | "hello"): void {
    let final = reply;
    if (reply.enhanced === undefined && this.options.enhancedStatusCodes && context !== "hello") {
      const enhanced = defaultEnhancedCode(reply.code, context);
      if (enhanced) final = { ...reply, enhanced };
    }
    this.output += formatReply(final);
  }

  private finish(reason: ClosedEvent["reason"]): void {
    this.currentPhase = "closed";
    this.input.clear();
    this.scannedForLf = 0;
    this.queued.push(this.close(reason));
  }

  private close(reason: ClosedEvent["reason"]): ClosedEvent {
    this.currentPhase = "closed";
    if (!this.closedEvent) this.closedEvent = { type: "closed", reason };
    return this.closedEvent;
  }
}

function contextOf(pending: Pending): EnhancedContext | "hello" {
  switch (pending.kind) {
    case "hello":
      return "hello";
    case "mail":
      return "mail";
    case "rcpt":
      return "rcpt";
    case "bodyEnd":
      return "data";
    default:
      return "other";
  }
}

function paramText(param: EsmtpParam): string {
  return param.value === null ? param.keyword : `${param.keyword}=${param.value}`;
}

function lastOfEach(params: readonly EsmtpParam[]): EsmtpParam[] {
  return [...new Map(params.map((param) => [param.keyword, param])).values()];
}

const BUILTIN_VERBS: ReadonlySet<string> = new Set([
  "HELO",
  "EHLO",
  "LHLO",
  "NOOP",
  "QUIT",
  "RSET",
  "VRFY",
  "EXPN",
  "HELP",
  "MAIL",
  "RCPT",
  "DATA",
  "BDAT",
  "AUTH",
  "STARTTLS",
]);
const AUTH_PREFIX = [97, 117, 116, 104, 32]; // "auth "
const ENCODER = new TextEncoder();
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array(0);

/** Decodes bytes already checked to be ASCII (or where non-ASCII is rejected later anyway). */
function asciiString(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i] as number);
  return text;
}

function rejection(verb: string, reply: Reply): SmtpEvent {
  const text = `${verb || "line"}: ${reply.code} ${reply.lines.join(" ")}`;
  return { type: "rejected", verb, reply, error: new RemoteProtocolError(text, reply) };
}
