import { LocalProtocolError } from "../errors.js";
import { CONNECT, NEED_DATA, PAUSED, type SmtpEvent } from "../events.js";
import {
  type ConnectionOptions,
  RESOLVED,
  type ResolvedOptions,
  resolveOptions,
} from "../options.js";
import { type Reply, type ReplyLike, toReply } from "../reply.js";
import { encodeBase64 } from "../syntax/base64.js";
import { abortAuth, authResponse } from "./commands/auth.js";
import { extended } from "./commands/command.js";
import { answerBody, readBdatChunk, readDataBody, recipientCount } from "./commands/data.js";
import { dispatch, runCommand } from "./commands/index.js";
import { Core } from "./core.js";
import { PENDING, type Pending } from "./dialog.js";
import { asciiString, LONG_AUTH_LINE, LONG_LINE } from "./line-reader.js";
import { readProxyHeader } from "./proxy.js";
import { REPLIES, TEMPLATES } from "./replies.js";
import type { Phase } from "./states.js";

export type { Phase } from "./states.js";

/** The reader for each phase that reads input; true when it made progress. */
const READERS: Partial<Record<Phase, (core: Core) => boolean>> = {
  proxy: readProxyHeader,
  command: readLine,
  authResponse: readLine,
  data: readDataBody,
  bdat: readBdatChunk,
};

/**
 * The SMTP/LMTP server protocol engine, sans-IO in the style of h11: feed it received bytes with
 * `receiveData()`, pull events with `nextEvent()`, answer the events that await a decision with
 * `accept()`, `reply()`, `replyPerRecipient()`, `rejectProxy()` (or the AUTH and STARTTLS
 * methods), and send whatever `dataToSend()` returns.
 *
 * It owns every protocol decision: framing, limits, command syntax, sequencing, reply texts. A
 * program driving it only supplies policy (accept this recipient?) and moves bytes. The state
 * machine is data in `states.ts`; each command lives in `commands/`.
 */
export class ServerConnection {
  readonly options: ResolvedOptions;
  private readonly core: Core;
  private endOfInput = false;

  /** Takes options, or options resolved once with `resolveOptions()` and shared by connections. */
  constructor(options?: ConnectionOptions | ResolvedOptions) {
    // No options: one shared resolved default, so its pre-formatted replies are shared too.
    this.options =
      options === undefined
        ? defaultOptions()
        : RESOLVED in options
          ? options
          : resolveOptions(options);
    this.core = new Core(this.options);
    if (!this.options.proxyProtocol) this.open();
  }

  /** The client is here (after its PROXY header, if any): greet, or ask first. */
  private open(): void {
    if (this.options.deferGreeting) this.core.await(PENDING.connect, CONNECT, "connect");
    else this.core.greeting();
  }

  // ---------------------------------------------------------------------------------------------
  // State a program may read.

  get phase(): Phase {
    return this.core.state.phase;
  }
  /** The HELO/EHLO/LHLO host name has been accepted. */
  get greeted(): boolean {
    return this.core.state.helloVerb !== null;
  }
  /** The session is ESMTP (EHLO or LHLO accepted). */
  get extended(): boolean {
    return extended(this.core);
  }
  get isTls(): boolean {
    return this.core.state.tls;
  }
  get isAuthenticated(): boolean {
    return this.core.state.authenticated;
  }
  get inTransaction(): boolean {
    return this.core.state.mailFrom !== null;
  }
  /** Bytes received but not yet parsed. */
  get bufferedBytes(): number {
    return this.core.input.length;
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
    const phase = this.core.state.phase;
    if (phase === "paused" || phase === "closed") return;
    this.core.input.push(data);
  }

  /**
   * Everything queued for the peer since the last call, as one array (empty when nothing is).
   * Send it, do not modify it: a single reply may be the catalogue's shared pre-formatted bytes.
   */
  dataToSend(): Uint8Array {
    return this.core.takeOutput();
  }

  nextEvent(): SmtpEvent {
    const core = this.core;
    for (;;) {
      const queued = core.dequeue();
      if (queued) return queued;
      if (core.closedEvent) return core.closedEvent;
      const phase = core.state.phase;
      if (phase === "reply") {
        throw new LocalProtocolError("nextEvent() while an event awaits a decision");
      }
      if (phase === "paused") return PAUSED;
      if (phase === "closed") return core.close("closedByServer");
      const read = READERS[phase] as (core: Core) => boolean;
      if (!read(core)) {
        if (!this.endOfInput) return NEED_DATA;
        // The peer is gone: an open body is aborted, then `closed`.
        core.finish("eof");
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Decisions in. Each checks everything that can throw before anything changes.

  /** The default behaviour for the pending event (aiosmtpd's reply when there is no hook). */
  accept(): number {
    const pending = this.decidable("accept()");
    if (pending.kind === "proxyHeader") {
      this.core.takePending("accept()");
      this.core.transition("proxyAccepted");
      this.open();
      return this.options.deferGreeting ? 0 : 220;
    }
    if (pending.kind === "xclient") {
      // Postfix: back to the initial greeting stage, as if the client had just connected.
      this.core.takePending("accept()");
      this.core.transition("xclientAccepted");
      if (pending.login) this.core.state.authenticated = true;
      this.open();
      return this.options.deferGreeting ? 0 : 220;
    }
    if (pending.kind === "connect") {
      this.core.takePending("accept()");
      this.core.transition("decided");
      this.core.greeting();
      return 220;
    }
    return this.decide(pending, null);
  }

  /**
   * Answers the pending event with `reply`. After `hello` a multi-line reply replaces the EHLO
   * reply; after an LMTP `bodyEnd` it serves every recipient.
   */
  reply(reply: ReplyLike): number {
    const pending = this.decidable("reply()");
    if (pending.kind === "proxyHeader") {
      throw new LocalProtocolError("answer proxyHeader with accept() or rejectProxy()");
    }
    if (pending.kind === "connect") return this.refuseGreeting(toReply(reply));
    return this.decide(pending, toReply(reply));
  }

  /** LMTP, after `bodyEnd`: exactly one reply per accepted recipient, in order. */
  replyPerRecipient(replies: readonly ReplyLike[]): number {
    const pending = this.decidable("replyPerRecipient()");
    if (pending.kind !== "bodyEnd" || !this.options.lmtp) {
      throw new LocalProtocolError("replyPerRecipient() answers an LMTP bodyEnd event only");
    }
    const count = recipientCount(this.core);
    if (!Array.isArray(replies) || replies.length !== count) {
      throw new LocalProtocolError(
        `LMTP needs ${count} replies after the body, one per recipient; got ${replies?.length}`,
      );
    }
    const list = replies.map(toReply);
    this.core.takePending("replyPerRecipient()");
    const pushed = this.core.pushedCode;
    this.core.pushedCode = null;
    return answerBody(this.core, null, list, pushed);
  }

  /**
   * A reply instead of the greeting: a 220 is a greeting of the program's own. 4xx and 521 (RFC 7504) close the connection; another code
   * (554) keeps it open until QUIT, answering 503 to the rest (RFC 5321 §3.1).
   */
  private refuseGreeting(reply: Reply): number {
    const core = this.core;
    if (reply.code < 400 && reply.code !== 220) {
      throw new LocalProtocolError("answer connect with 220 (a greeting of its own), 4xx or 5xx");
    }
    core.takePending("reply()");
    // The greeting carries no enhanced status code (RFC 2034 §3: not before EHLO).
    core.write(reply, reply.code === 220 ? "hello" : "other");
    core.transition("decided");
    if (reply.code === 220) return 220;
    if (reply.code < 500 || reply.code === 521) core.finish("closedByServer");
    else core.state.greetingRefused = true;
    return reply.code;
  }

  /** Refuses the PROXY header: the connection closes without a greeting. */
  rejectProxy(): void {
    this.core.takePending("rejectProxy()", "proxyHeader");
    this.core.finish("proxyRejected");
  }

  /** Sends a reply at once, while an event is pending (aiosmtpd's `push()`), without ending it. */
  push(value: ReplyLike): void {
    if (this.core.state.phase === "closed") throw new LocalProtocolError("push() after close");
    const reply = toReply(value);
    const pending = this.core.pending;
    this.core.write(reply, pending ? contextOf(pending) : "other");
    if (pending) this.core.pushedCode = reply.code;
  }

  /** Sends a `334` challenge for the pending AUTH exchange; the next line is its response. */
  challenge(data: Uint8Array | string): void {
    this.core.takePending("challenge()", "auth");
    const bytes = typeof data === "string" ? ENCODER.encode(data) : data;
    this.core.write(TEMPLATES.challenge(encodeBase64(bytes)));
    this.core.transition("challenge");
  }

  /** Ends the pending AUTH exchange: 235 (or `reply`) on success, 535 5.7.8 (or `reply`) on failure. */
  completeAuth(success: boolean, reply?: ReplyLike | null): void {
    const final = reply ? toReply(reply) : success ? REPLIES.authOk : REPLIES.authInvalid;
    const core = this.core;
    core.takePending("completeAuth()", "auth");
    core.pushedCode = null;
    if (success) core.state.authenticated = true;
    core.write(final);
    core.transition("decided");
    // RFC 5321 §3.8: a 421 closes the channel (e.g. too many failed attempts).
    if (final.code === 421) core.finish("closedByServer");
  }

  /** Runs the built-in behaviour for a pending `command` event that replaces a built-in verb. */
  runBuiltin(): void {
    const current = this.core.peekPending("runBuiltin()", "command");
    if (current.kind !== "command" || !current.builtin) {
      throw new LocalProtocolError("runBuiltin() needs a command event for a built-in verb");
    }
    this.core.takePending("runBuiltin()");
    this.core.transition("decided");
    runCommand(this.core, current.verb, current.argument);
  }

  /**
   * The TLS handshake after STARTTLS succeeded: a fresh session starts (RFC 3207 §4.2). With
   * `accepted: false` (aiosmtpd's `handle_STARTTLS` returning false) every later command but QUIT
   * gets 554.
   */
  tlsEstablished(options: { accepted?: boolean } = {}): void {
    if (this.core.state.phase !== "paused") {
      throw new LocalProtocolError("tlsEstablished() without STARTTLS");
    }
    this.core.transition("tlsEstablished");
    this.core.state.tls = true;
    this.core.state.tlsRefused = options.accepted === false;
  }

  /**
   * Sets the AUTH mechanisms offered from now on (a subset that can work on this connection, e.g.
   * EXTERNAL only with a client certificate); names are matched case-insensitively.
   */
  offerMechanisms(names: readonly string[]): void {
    this.core.mechanisms = names.map((name) => name.toUpperCase());
  }

  /**
   * Which relay commands this client may use from now on (XCLIENT, XFORWARD; each only when the
   * options enable it): after a PROXY header, or after XCLIENT named another client.
   */
  trustRelay(trust: { readonly xclient?: boolean; readonly xforward?: boolean }): void {
    const state = this.core.state;
    if (trust.xclient !== undefined) state.xclientTrusted = this.options.xclient && trust.xclient;
    if (trust.xforward !== undefined) {
      state.xforwardTrusted = this.options.xforward && trust.xforward;
    }
  }

  /**
   * Ends the session from the server's side (timeout, shutdown, too many connections), optionally
   * with a last reply such as `421 4.4.2 ... timeout`.
   */
  closeConnection(reply?: ReplyLike): void {
    const core = this.core;
    if (core.closedEvent) return;
    const final = reply ? toReply(reply) : null;
    // Nothing sent yet: the refusal replaces the greeting (RFC 5321 §3.1: 421 or 554 instead of 220).
    if (!core.outputTaken) core.dropOutput();
    if (final) core.write(final);
    core.finish("closedByServer");
  }

  // ---------------------------------------------------------------------------------------------

  private decidable(method: string): Pending {
    const pending = this.core.peekPending(method);
    if (pending.kind === "auth") {
      throw new LocalProtocolError("answer AUTH events with challenge() or completeAuth()");
    }
    return pending;
  }

  /** Finishes the pending event with `reply` (`null`: the default). */
  private decide(pending: Pending, reply: Reply | null): number {
    const core = this.core;
    core.takePending("decide");
    const pushed = core.pushedCode;
    core.pushedCode = null;
    if (pending.kind === "bodyEnd") {
      const code = answerBody(core, reply, null, pushed);
      if (code === 421 && !this.options.lmtp) core.finish("closedByServer");
      return code;
    }
    let code: number;
    if (reply === null && pushed === null && pending.kind === "hello") {
      core.writeBytes(pending.defaultBytes);
      code = 250;
    } else {
      const final = reply ?? (pushed === null ? defaultReply(pending) : null);
      code = final?.code ?? pushed ?? 250;
      if (final) core.write(final, contextOf(pending));
    }
    const ok = code >= 200 && code < 300;
    if (pending.kind === "quit") {
      core.finish("quit");
      return code;
    }
    core.transition("decided");
    if (ok && pending.kind === "hello") core.state.helloVerb = pending.verb;
    else if (ok && pending.kind === "mail") {
      core.state.mailFrom = pending.address;
      core.state.binaryMime = pending.binaryMime;
    } else if (ok && pending.kind === "rcpt") core.state.recipients.push(pending.address);
    // RFC 5321 §3.8: 421 means the server is closing the channel, whoever chose the reply.
    if (code === 421) core.finish("closedByServer");
    return code;
  }
}

function defaultReply(pending: Pending): Reply | (typeof REPLIES)[keyof typeof REPLIES] {
  switch (pending.kind) {
    case "hello":
      return pending.defaultReply;
    case "mail":
      return REPLIES.mailOk;
    case "rcpt":
      return REPLIES.rcptOk;
    case "quit":
      return REPLIES.bye;
    case "vrfy":
      return REPLIES.vrfyCannot;
    case "command":
      return REPLIES.commandNoReply;
    case "xforward":
      return REPLIES.xforwardOk;
    default:
      return REPLIES.ok;
  }
}

function contextOf(pending: Pending): "hello" | "mail" | "rcpt" | "data" | "other" {
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

/** The "command" and "authResponse" phases: one line. */
function readLine(core: Core): boolean {
  const inAuth = core.state.phase === "authResponse";
  const lines = core.lines;
  const line = lines.read(inAuth, extended(core));
  if (line === null) return false;
  if (line === LONG_LINE || line === LONG_AUTH_LINE) {
    if (inAuth) abortAuth(core, "lineTooLong", REPLIES.authLineTooLong);
    else if (line === LONG_AUTH_LINE) core.reject("AUTH", REPLIES.authLineTooLong);
    else core.reject("", REPLIES.commandTooLong);
    return true;
  }
  if (inAuth) {
    authResponse(core, asciiString(line, 0, line.length).trim());
    return true;
  }
  const bad = lines.split(line);
  if (bad) core.reject(lines.verb, bad);
  else dispatch(core, lines, lines.verb, lines.argument);
  return true;
}

const ENCODER = new TextEncoder();
let DEFAULTS: ResolvedOptions | undefined;
function defaultOptions(): ResolvedOptions {
  if (DEFAULTS === undefined) DEFAULTS = resolveOptions();
  return DEFAULTS;
}
