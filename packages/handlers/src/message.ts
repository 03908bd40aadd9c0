import {
  type Envelope,
  type Handler,
  type HookResult,
  messagePeer,
  type PeerAddress,
  type Session,
  type SMTP,
} from "@smtpkit/core/server";
import PostalMime, { type Address, type Email, type PostalMimeOptions } from "postal-mime";
import { insertHeaders } from "./header-insert.js";
import { pyPeerRepr } from "./python-repr.js";
import { traceFields } from "./received.js";

const ENCODER = new TextEncoder();
const COMMASPACE = ", ";

/**
 * A received message, parsed by postal-mime (`subject`, `from`, `to`, `text`, `html`,
 * `attachments`, `headers`, ...), with the SMTP envelope and aiosmtpd's three added fields.
 */
export type ParsedMessage = Email & {
  /** The bytes that were parsed: the message as received plus the `X-Peer`, `X-MailFrom` and `X-RcptTo` lines. */
  readonly raw: Uint8Array;
  /** The envelope sender (`MAIL FROM`), `"<>"` for the null reverse-path. */
  readonly mailFrom: string | null;
  /** The envelope recipients (`RCPT TO`), in order. */
  readonly rcptTos: readonly string[];
  /** The MAIL parameters as sent (`SIZE=123`, `BODY=8BITMIME`). */
  readonly mailOptions: readonly string[];
  /** The connected client. */
  readonly peer: PeerAddress | null;
  /** The first value of a header field, case-insensitively, like Python's `message[name]`. */
  header(name: string): string | undefined;
  /** Every value of a header field, in order. */
  headerAll(name: string): string[];
};

/** The envelope fields a parsed message records. */
export type EnvelopeFields = Pick<Envelope, "mailFrom" | "rcptTos"> &
  Partial<Pick<Envelope, "mailOptions">>;

/**
 * aiosmtpd's three fields: `X-Peer` is `str(session.peer)` (`('127.0.0.1', 54321)`; the socket
 * path for a Unix socket), `X-MailFrom` the envelope sender, `X-RcptTo` the recipients joined
 * with `", "`.
 */
export function peerFields(
  session: Pick<Session, "peer">,
  envelope: Pick<Envelope, "mailFrom" | "rcptTos"> & Partial<Pick<Envelope, "xforward">>,
): [string, string][] {
  return [
    // XFORWARD's up-stream client when a relay sent one, else the session's.
    ["X-Peer", peerString(messagePeer(session, envelope))],
    ["X-MailFrom", envelope.mailFrom ?? ""],
    ["X-RcptTo", envelope.rcptTos.join(COMMASPACE)],
  ];
}

/** Python's `str(session.peer)`: the tuple repr, or the bare path of a Unix socket. */
export function peerString(peer: PeerAddress | null | undefined): string {
  if (peer?.family === "unix") return peer.address ?? "";
  return pyPeerRepr(peer);
}

/** The message bytes of an envelope: `content` (bytes, or a string from `decodeData`). */
export function contentBytes(envelope: Pick<Envelope, "content">): Uint8Array {
  const data: unknown = envelope.content;
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return ENCODER.encode(data);
  throw new TypeError(`Expected str or bytes, got ${describeType(data)}`);
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return typeof value;
}

/**
 * Parses message bytes with postal-mime and adds the envelope, the peer and a header accessor.
 * `raw` should already carry the `X-Peer`/`X-MailFrom`/`X-RcptTo` fields when wanted.
 */
export async function parseMessage(
  raw: Uint8Array,
  session: Pick<Session, "peer">,
  envelope: EnvelopeFields,
  options?: PostalMimeOptions,
): Promise<ParsedMessage> {
  const email = await PostalMime.parse(raw, options);
  const header = (name: string) => {
    const key = name.toLowerCase();
    return email.headers.find((h) => h.key === key)?.value;
  };
  const headerAll = (name: string) => {
    const key = name.toLowerCase();
    return email.headers.filter((h) => h.key === key).map((h) => h.value);
  };
  return {
    ...email,
    raw,
    mailFrom: envelope.mailFrom,
    rcptTos: [...envelope.rcptTos],
    mailOptions: [...(envelope.mailOptions ?? [])],
    peer: session.peer,
    header,
    headerAll,
  };
}

/** The plain addresses of a postal-mime address list (groups flattened). */
export function addressesOf(list: Address | readonly Address[] | undefined): string[] {
  if (!list) return [];
  const out: string[] = [];
  for (const item of Array.isArray(list) ? list : [list]) {
    if (item.group) for (const member of item.group) out.push(member.address);
    else if (item.address) out.push(item.address);
  }
  return out;
}

export interface MessageOptions {
  /** Passed to postal-mime (attachment encoding, nesting and header size limits). */
  readonly parser?: PostalMimeOptions | undefined;
  /** Prepend a `Received:` field (RFC 5321 §4.4) to the message. Default true. */
  readonly traceHeaders?: boolean | undefined;
}

/**
 * aiosmtpd's abstract `Message` handler: on DATA the message is parsed (with postal-mime) by
 * `prepareMessage()`, which appends `X-Peer`, `X-MailFrom` and `X-RcptTo` fields, then handed
 * to `handleMessage()`, which a subclass implements; the reply is `250 OK`. An exception in
 * either becomes the server's error reply.
 *
 * ```ts
 * class Printer extends Message {
 *   handleMessage(message: ParsedMessage) {
 *     console.log(message.subject, message.header("X-RcptTo"));
 *   }
 * }
 * ```
 */
export abstract class Message implements Handler {
  // Handler's `auth_*` index signature (custom AUTH mechanisms); classes must restate it.
  [hook: `auth_${string}`]: unknown;
  readonly options: MessageOptions;

  constructor(options: MessageOptions = {}) {
    this.options = options;
  }

  async handleDATA(
    server: SMTP,
    session: Session,
    envelope: Envelope,
    _signal?: AbortSignal,
  ): Promise<HookResult> {
    const trace = this.options.traceHeaders === false ? [] : traceFields(server, session, envelope);
    const message = await this.prepareMessage(session, envelope, trace);
    await this.handleMessage(message);
    return "250 OK";
  }

  /**
   * Parses `envelope.content` (bytes, or the string `decodeData` makes) with the three fields
   * appended at the end of the header section, as aiosmtpd's `prepare_message()`, and the
   * `trace` fields (`Received:`) before it. Throws a `TypeError` when there is no content.
   */
  prepareMessage(
    session: Pick<Session, "peer">,
    envelope: EnvelopeFields & Pick<Envelope, "content">,
    trace: readonly (readonly [string, string])[] = [],
  ): Promise<ParsedMessage> {
    let raw: Uint8Array;
    try {
      raw = insertHeaders(contentBytes(envelope), peerFields(session, envelope), trace);
    } catch (error) {
      return Promise.reject(error);
    }
    return parseMessage(raw, session, envelope, this.options.parser);
  }

  /** What to do with each message (aiosmtpd: synchronous; a returned promise is awaited). */
  abstract handleMessage(message: ParsedMessage): void | Promise<void>;
}

/**
 * aiosmtpd's `AsyncMessage`: the same as `Message`, with an asynchronous `handleMessage()` whose
 * promise settles before the client gets its `250 OK`.
 */
export abstract class AsyncMessage extends Message {
  abstract override handleMessage(message: ParsedMessage): Promise<void>;
}
