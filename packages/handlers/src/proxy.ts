import { Readable } from "node:stream";
import { reply as makeReply, type Reply, type ReplyLike } from "@smtpkit/core";
import {
  type BodyReader,
  type Envelope,
  type Handler,
  type HookResult,
  type MessageBody,
  messagePeer,
  type PeerAddress,
  type ServerContext,
  type Session,
} from "@smtpkit/core/server";
import SMTPConnection, {
  type SMTPConnectionAuth,
  type SMTPConnectionOptions,
  type SMTPConnectionSendInfo,
  type SMTPEnvelope,
} from "nodemailer/lib/smtp-connection";
import { UsageError } from "./cli.js";
import { PeerInserter } from "./peer-inserter.js";
import { TransparentRelay } from "./proxy-transparent.js";
import { receivedValue } from "./received.js";
import type { UpstreamClientOptions } from "./upstream-client.js";
import type { ReplyReaderLimits } from "./upstream-reply.js";

/** What Nodemailer's errors carry (`NodemailerError`). */
interface UpstreamError extends Error {
  code?: string | undefined;
  originalCode?: string | undefined;
  command?: string | undefined;
  response?: string | undefined;
  responseCode?: number | undefined;
  recipient?: string | undefined;
  rejected?: string[] | undefined;
  rejectedErrors?: UpstreamError[] | undefined;
}

/** How the Proxy talks to its upstream; see `SmtpProxy`. */
export type ProxyMode = "transparent" | "atData";

export interface ProxyOptions {
  /**
   * `"transparent"` (default): the upstream session opens at MAIL and every reply (MAIL, each
   * RCPT, DATA, the final one) is the upstream's, given to the client when it asks; one upstream
   * connection per client connection. `"atData"`: the upstream transaction runs when the body
   * starts, with Nodemailer's SMTP client, one connection per message; refusals come back in the
   * reply to the message (see `partial`).
   */
  readonly mode?: ProxyMode | undefined;
  /**
   * Nodemailer `SMTPConnection` options (TLS, timeouts, client name, ...); `host` and `port` come
   * from the constructor. Default: Nodemailer's (STARTTLS when offered, certificates verified).
   * The transparent mode reads `name`, `secure`, `tls`, `ignoreTLS`, `requireTLS`, `lmtp`,
   * `connectionTimeout`, `greetingTimeout` and `socketTimeout` (milliseconds) from it.
   */
  readonly connection?: Omit<SMTPConnectionOptions, "host" | "port"> | undefined;
  /** Credentials for the upstream (AUTH when it offers it; PLAIN or LOGIN in transparent mode). */
  readonly auth?: SMTPConnectionAuth | undefined;
  /** Transparent mode: limits on the upstream's replies (line length, lines per reply). */
  readonly replyLimits?: ReplyReaderLimits | undefined;
  /**
   * atData mode, SMTP (one reply for the message): what to answer when the upstream took the
   * message for some recipients and refused others: `"fail"` (default) answers with the refusal
   * (a 4xx when any refusal is temporary), naming the recipients that did get it, so nothing is
   * lost silently (a client retrying sends those a duplicate); `"accept"` answers 250 and lists
   * the refused recipients in the reply text. With LMTP every recipient gets its own reply. (The
   * transparent mode has no such case: each recipient's refusal is its RCPT reply.)
   */
  readonly partial?: "fail" | "accept" | undefined;
  /** Prepend this hop's `Received:` (RFC 5321 §4.4) to what goes upstream. Default true. */
  readonly traceHeaders?: boolean | undefined;
}

/** At most this many refused recipients are listed in a reply. */
const MAX_LISTED = 10;

/**
 * aiosmtpd's `Proxy`: relays every message to an upstream SMTP server, keeping the envelope
 * (sender and recipients exactly as received) and the message bytes (with `X-Peer: <client IP>`
 * inserted where aiosmtpd inserts it, CRLF line endings). The body is streamed through with
 * backpressure: a message of any size never sits in memory.
 *
 * Unlike aiosmtpd, which always answers `250 OK`, the replies are the truth. In the default
 * transparent mode the upstream session opens at MAIL (connect, EHLO, STARTTLS when offered, AUTH
 * when configured) and each command's reply is the upstream's own: a recipient the upstream
 * refuses is refused at RCPT, so the client knows per recipient before DATA, and the final reply
 * is the upstream's. DSN parameters, SMTPUTF8 and REQUIRETLS go on when the upstream offers them
 * (SMTPUTF8 and REQUIRETLS are refused when it does not); the upstream connection is reused for
 * the client's next transaction. `421` becomes `451` (the upstream closing is not this server
 * closing); an unreachable upstream gets `451 4.4.1`, a connection lost mid-transaction `451
 * 4.4.2`. See `ProxyOptions.mode` for the at-DATA mode.
 */
export class SmtpProxy implements Handler {
  // Handler's `auth_*` index signature (custom AUTH mechanisms); classes must restate it.
  [hook: `auth_${string}`]: unknown;
  readonly hostname: string;
  readonly port: number;
  readonly options: ProxyOptions;
  readonly mode: ProxyMode;
  /** Transparent mode: the upstream side of each client connection. */
  readonly #relays = new WeakMap<ServerContext, TransparentRelay>();
  /** Upstream connections opened (transparent mode), for statistics and tests. */
  upstreamConnections = 0;

  constructor(remoteHostname: string, remotePort: number, options: ProxyOptions = {}) {
    if (!Number.isInteger(remotePort) || remotePort < 1 || remotePort > 65535) {
      throw new RangeError(`Invalid port: ${remotePort}`);
    }
    this.hostname = remoteHostname;
    this.port = remotePort;
    this.options = options;
    const mode = options.mode ?? "transparent";
    if (mode !== "transparent" && mode !== "atData") {
      throw new RangeError(`Invalid Proxy mode: ${String(mode)}`);
    }
    this.mode = mode;
  }

  /** CLI: `-c Proxy HOST PORT [transparent|atData]`. */
  static fromCli(args: readonly string[]): SmtpProxy {
    if (args.length < 2) throw new UsageError("Proxy usage: HOST PORT [transparent|atData]");
    if (args.length > 3) throw new UsageError("Too many arguments for Proxy handler");
    const [host, portText, mode = "transparent"] = args as [string, string, string?];
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw new UsageError(`Invalid port for Proxy handler: ${portText}`);
    }
    if (mode !== "transparent" && mode !== "atData") {
      throw new UsageError(`Invalid mode for Proxy handler: ${mode} (transparent or atData)`);
    }
    return new SmtpProxy(host, port, { mode });
  }

  async handleMAIL(
    server: ServerContext,
    _session: Session,
    _envelope: Envelope,
    address: string,
    mailOptions: string[],
    signal: AbortSignal,
  ): Promise<HookResult> {
    if (this.mode !== "transparent") return undefined;
    let relay = this.#relays.get(server);
    if (!relay) {
      relay = new TransparentRelay(this.#upstreamOptions(), signal);
      const opened = relay;
      this.#relays.set(server, opened);
      signal.addEventListener("abort", () => void opened.close(), { once: true });
    }
    const before = relay.connections;
    try {
      return await relay.mail(address, mailOptions);
    } finally {
      this.upstreamConnections += relay.connections - before;
    }
  }

  async handleRCPT(
    server: ServerContext,
    _session: Session,
    _envelope: Envelope,
    address: string,
    rcptOptions: string[],
  ): Promise<HookResult> {
    if (this.mode !== "transparent") return undefined;
    const relay = this.#relays.get(server);
    // MAIL was accepted, so the relay exists; a hook replacing MAIL's may have skipped it.
    if (!relay) return makeReply(451, "Error: no upstream transaction", "4.4.2");
    return relay.rcpt(address, rcptOptions);
  }

  handleQUIT(server: ServerContext): HookResult {
    void this.#relays.get(server)?.close();
    return undefined;
  }

  async handleCLOSE(server: ServerContext): Promise<void> {
    const relay = this.#relays.get(server);
    this.#relays.delete(server);
    await relay?.close();
  }

  async handleDATAStream(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    body: MessageBody,
    signal?: AbortSignal,
  ): Promise<readonly ReplyLike[] | HookResult> {
    const lmtp = server.options?.lmtp === true;
    if (this.mode === "transparent") return this.#transparentData(server, session, envelope, body);
    const recipients = [...envelope.rcptTos];
    const reader = body.getReader();
    const trace = this.#trace(server, session, envelope);
    const message = Readable.from(
      withPeer(reader, peerHost(messagePeer(session, envelope)), trace),
      { objectMode: false },
    );
    let outcome: { info: SMTPConnectionSendInfo } | { error: UpstreamError };
    try {
      outcome = { info: await this.relay(upstreamEnvelope(envelope), message, signal) };
    } catch (error) {
      outcome = { error: error as UpstreamError };
    } finally {
      // Nodemailer stopped reading (refusal, failure): let go of the client's body stream.
      message.destroy();
      await reader.cancel().catch(() => undefined);
    }
    if ("error" in outcome) {
      const failure = errorReply(outcome.error);
      if (!lmtp) return failure;
      const refused = refusals(outcome.error.rejectedErrors);
      return recipients.map((rcpt) => refused.get(rcpt) ?? failure);
    }
    return this.replies(outcome.info, recipients, lmtp);
  }

  /** Transparent mode: the body to the upstream transaction opened at MAIL; its final reply. */
  async #transparentData(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    body: MessageBody,
  ): Promise<Reply | Reply[]> {
    const lmtp = server.options?.lmtp === true;
    const relay = this.#relays.get(server);
    if (!relay) {
      await body
        .getReader()
        .cancel()
        .catch(() => undefined);
      return makeReply(451, "Error: no upstream transaction", "4.4.2");
    }
    const recipients = [...envelope.rcptTos];
    const trace = this.#trace(server, session, envelope);
    const outcome = await relay.data(body, peerHost(messagePeer(session, envelope)), trace);
    if (!Array.isArray(outcome)) return lmtp ? recipients.map(() => outcome) : outcome;
    // An LMTP upstream: one reply per recipient it accepted, in order (the same as ours).
    const refused = new Map<string, Reply>();
    let accepted: Reply | undefined;
    for (const [i, rcpt] of recipients.entries()) {
      const reply = outcome[i] ?? makeReply(451, "Error: no reply from the upstream", "4.5.0");
      if (reply.code >= 200 && reply.code < 300) accepted ??= reply;
      else refused.set(rcpt, reply);
    }
    return this.combined(accepted ?? makeReply(250, "OK"), refused, recipients, lmtp);
  }

  /** The transparent mode's upstream client settings, from the constructor and `options`. */
  /** This hop's `Received:` line (CRLF-terminated), unless `traceHeaders: false`. */
  #trace(server: ServerContext, session: Session, envelope: Envelope): string | null {
    if (this.options.traceHeaders === false) return null;
    return `Received: ${receivedValue(server, session, envelope)}\r\n`;
  }

  #upstreamOptions(): UpstreamClientOptions {
    const c = this.options.connection ?? {};
    const auth = this.options.auth;
    return {
      host: this.hostname,
      port: this.port,
      secure: c.secure,
      name: c.name,
      tls: c.tls,
      ignoreTLS: c.ignoreTLS,
      requireTLS: c.requireTLS,
      lmtp: c.lmtp,
      connectionTimeout: c.connectionTimeout ?? c.greetingTimeout,
      commandTimeout: c.socketTimeout,
      dataTimeout: c.socketTimeout,
      auth:
        auth?.user !== undefined ? { user: auth.user, pass: String(auth.pass ?? "") } : undefined,
      limits: this.options.replyLimits,
    };
  }

  /** The reply (SMTP) or replies (LMTP) for a message the upstream took for some recipients. */
  protected replies(
    info: SMTPConnectionSendInfo,
    recipients: readonly string[],
    lmtp: boolean,
  ): Reply | Reply[] {
    const accepted = upstreamReply(info.response, 250) ?? makeReply(250, "OK");
    const refused = refusals(info.rejectedErrors as UpstreamError[] | undefined);
    return this.combined(accepted, refused, recipients, lmtp);
  }

  /**
   * The reply (SMTP) or replies (LMTP) when the message was `accepted` for the recipients not in
   * `refused`; in SMTP mode with some refused, as `partial` says.
   */
  protected combined(
    accepted: Reply,
    refused: ReadonlyMap<string, Reply>,
    recipients: readonly string[],
    lmtp: boolean,
  ): Reply | Reply[] {
    if (lmtp) return recipients.map((rcpt) => refused.get(rcpt) ?? accepted);
    if (refused.size === 0) return accepted;
    if (refused.size >= recipients.length) {
      return [...refused.values()].find((r) => r.code < 500) ?? ([...refused.values()][0] as Reply);
    }
    const listing = [...refused].slice(0, MAX_LISTED).map(([rcpt, r]) => describe(rcpt, r));
    if (refused.size > MAX_LISTED) listing.push(`... and ${refused.size - MAX_LISTED} more`);
    const took = listed(recipients.filter((rcpt) => !refused.has(rcpt)));
    if (this.options.partial === "accept") {
      return makeReply(250, [
        `${oneLine(accepted.lines.join(" "))}; relayed to ${recipients.length - refused.size} of ${recipients.length} recipients; refused:`,
        ...listing,
      ]);
    }
    const worst =
      [...refused.values()].find((r) => r.code < 500) ?? ([...refused.values()][0] as Reply);
    return makeReply(
      worst.code,
      [
        `Upstream refused ${refused.size} of ${recipients.length} recipients:`,
        ...listing,
        `Delivered to: ${took}`,
      ],
      worst.enhanced,
    );
  }

  /** One upstream transaction: connect, authenticate if asked, send, quit. */
  protected relay(
    envelope: SMTPEnvelope,
    message: Readable,
    signal?: AbortSignal,
  ): Promise<SMTPConnectionSendInfo> {
    return new Promise((resolve, reject) => {
      const connection = new SMTPConnection({
        ...this.options.connection,
        host: this.hostname,
        port: this.port,
      });
      let settled = false;
      const finish = (error: UpstreamError | null, info?: SMTPConnectionSendInfo) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (error || !info) {
          connection.close();
          reject(error ?? new Error("no result"));
        } else {
          connection.quit();
          resolve(info);
        }
      };
      const onAbort = () => finish(Object.assign(new Error("aborted"), { code: "EABORT" }));
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      connection.once("error", (error: UpstreamError) => finish(error));
      const send = () =>
        connection.send(envelope, message, (error, info) => finish(error, info ?? undefined));
      connection.connect((error) => {
        if (error) return finish(error);
        const auth = this.options.auth;
        if (auth && connection.allowsAuth) {
          connection.login(auth, (loginError) => (loginError ? finish(loginError) : send()));
        } else {
          send();
        }
      });
    });
  }
}

/** The envelope as received: `<>` becomes Nodemailer's empty sender; BODY=8BITMIME is kept. */
function upstreamEnvelope(envelope: Envelope): SMTPEnvelope {
  const from = envelope.mailFrom === null || envelope.mailFrom === "<>" ? "" : envelope.mailFrom;
  const body = envelope.mailParams.find((p) => p.keyword === "BODY")?.value?.toUpperCase();
  return {
    from,
    to: [...envelope.rcptTos],
    ...(body === "8BITMIME" || body === "BINARYMIME" ? { use8BitMime: true } : {}),
  };
}

/** aiosmtpd's `session.peer[0]`: the client's address (the socket path for a Unix socket). */
function peerHost(peer: PeerAddress | null): string {
  if (!peer) return "unknown";
  return peer.address || (peer.family === "unix" ? "unix" : "unknown");
}

async function* withPeer(
  reader: BodyReader,
  host: string,
  trace: string | null,
): AsyncGenerator<Uint8Array> {
  if (trace !== null) yield new TextEncoder().encode(trace);
  const inserter = new PeerInserter(host);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const part of inserter.push(value)) yield part;
  }
  for (const part of inserter.end()) yield part;
}

/**
 * An upstream reply (`"550 5.1.1 No such user"`, possibly several lines) as a reply to give our
 * client. A `421` becomes `451` (the upstream closing is not this server closing); anything that is
 * not a 4xx/5xx refusal where one is expected becomes `451 4.5.0`.
 */
export function upstreamReply(response: string | undefined, fallbackCode: number): Reply | null {
  if (!response) return null;
  const rawLines = response.split(/\r?\n/).filter((line) => line !== "");
  let code = 0;
  let enhanced: string | undefined;
  const lines: string[] = [];
  for (const [i, raw] of rawLines.entries()) {
    const match = /^(\d{3})(?:[ -](.*))?$/s.exec(raw);
    let text = match ? (match[2] ?? "") : raw;
    if (match && i === 0) code = Number(match[1]);
    const first = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/.exec(text);
    if (first?.[1]) {
      if (i === 0) enhanced = first[1];
      text = text.slice(first[0].length);
    }
    lines.push(text);
  }
  if (code === 0) code = fallbackCode;
  if (code === 421) code = 451;
  if (enhanced && enhanced[0] !== String(code)[0]) enhanced = undefined;
  return makeReply(code, lines.length > 0 ? lines : [""], enhanced);
}

/** The reply for a failed relay. */
function errorReply(error: UpstreamError): Reply {
  const transaction =
    error.command === "MAIL FROM" || error.command === "RCPT TO" || error.command === "DATA";
  if (transaction && error.response && error.responseCode) {
    const refusal = upstreamReply(error.response, error.responseCode);
    if (refusal && refusal.code >= 400 && refusal.code < 600) return refusal;
    return makeReply(451, `Upstream protocol error: ${oneLine(error.response)}`, "4.5.0");
  }
  const code = error.originalCode ?? error.code;
  const why = code && /^E[A-Z]+$/.test(code) ? ` (${code})` : "";
  return makeReply(451, `Error: cannot relay the message, upstream unavailable${why}`, "4.4.1");
}

/** Refused recipients with their replies, from Nodemailer's `rejectedErrors`. */
function refusals(errors: readonly UpstreamError[] | undefined): Map<string, Reply> {
  const out = new Map<string, Reply>();
  for (const error of errors ?? []) {
    if (error.recipient === undefined || out.has(error.recipient)) continue;
    out.set(error.recipient, errorReply(error));
  }
  return out;
}

function describe(rcpt: string, r: Reply): string {
  const text = [r.enhanced, ...r.lines].filter(Boolean).join(" ");
  return `<${rcpt}>: ${r.code} ${oneLine(text)}`.slice(0, 300);
}

/** Up to MAX_LISTED addresses, comma-separated. */
function listed(addresses: readonly string[]): string {
  const shown = addresses.slice(0, MAX_LISTED).join(", ");
  const more = addresses.length - MAX_LISTED;
  return more > 0 ? `${shown} and ${more} more` : shown;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").trim();
}
