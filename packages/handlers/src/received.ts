/**
 * Trace fields (RFC 5321 §4.4): the `Received:` line a server prepends to every message it
 * accepts, and the `Return-Path:` of final delivery. Runtime-free.
 */
import {
  type Envelope,
  type Handler,
  type ServerContext,
  type Session,
  transmissionType,
} from "@smtpkit/core/server";

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n: number) => String(n).padStart(2, "0");

/** An RFC 5322 date-time in UTC: `Fri, 04 Dec 2026 01:35:40 +0000`. */
export function rfc5322Date(date: Date): string {
  return (
    `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ` +
    `${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:` +
    `${two(date.getUTCSeconds())} +0000`
  );
}

/** Text from the client inside a trace field: no line breaks, no parentheses that end a comment. */
function clean(text: string): string {
  return text.replace(/[\r\n\t]+/g, " ").replace(/[()\\]/g, "");
}

/**
 * The `Received:` value: `from <helo> (<confirmed reverse name> [<ip>]) by <server> with <RFC
 * 3848 type> (<TLS version> <cipher>) id <session id> for <rcpt>; <date>`. The reverse name is
 * only written when forward-confirmed (`session.fcrdns`), `for` only with one recipient (more
 * would tell each recipient about the others).
 */
export function receivedValue(
  server: Pick<ServerContext, "hostname">,
  session: Session,
  envelope: Envelope,
  date: Date = new Date(),
): string {
  const peer = session.peer;
  const helo = clean(session.hostName ?? "unknown");
  let tcpInfo = "";
  if (peer && peer.family !== "unix") {
    const literal = peer.family === "IPv6" ? `[IPv6:${peer.address}]` : `[${peer.address}]`;
    const name =
      session.fcrdns === true && session.reverseName ? `${clean(session.reverseName)} ` : "";
    tcpInfo = ` (${name}${literal})`;
  }
  const tls = session.ssl;
  const tlsComment = tls
    ? ` (${[tls.protocol, tls.cipher].filter((part) => part).join(" ") || "TLS"})`
    : "";
  const id = session.id ? ` id ${session.id}` : "";
  const only =
    envelope.rcptTos.length === 1 ? ` for <${clean(envelope.rcptTos[0] as string)}>` : "";
  return (
    `from ${helo}${tcpInfo} by ${server.hostname} with ` +
    `${transmissionType(session, envelope)}${tlsComment}${id}${only}; ${rfc5322Date(date)}`
  );
}

/** `Return-Path:` of final delivery: the envelope sender, `<>` for the null reverse-path. */
export function returnPathValue(envelope: Pick<Envelope, "mailFrom">): string {
  const from = envelope.mailFrom ?? "";
  return from === "<>" || from === "" ? "<>" : `<${clean(from)}>`;
}

/**
 * The trace fields a handler prepends: `Return-Path:` (final delivery only) above `Received:`,
 * the order a message read top-down shows its newest hop first in.
 */
export function traceFields(
  server: Pick<ServerContext, "hostname">,
  session: Session,
  envelope: Envelope,
  options: { readonly returnPath?: boolean } = {},
): [string, string][] {
  const fields: [string, string][] = [];
  if (options.returnPath) fields.push(["Return-Path", returnPathValue(envelope)]);
  fields.push(["Received", receivedValue(server, session, envelope)]);
  return fields;
}

/**
 * `Received:` as a `compose()` body stage, for deliveries that do not add one themselves
 * (`compose(received(), new Sink())`; `Mailbox` and `Message` already do): the line is prepended
 * as the body starts, which then streams on unread.
 */
export function received(): Handler {
  return {
    filterBody(server, session, envelope) {
      return { prepend: `Received: ${receivedValue(server, session, envelope)}\r\n` };
    },
  };
}
