import { channel } from "node:diagnostics_channel";
import type { SmtpObserver } from "@smtpkit/core/server";

/**
 * The `node:diagnostics_channel` names the channel observer publishes on. Each message is the
 * observer's event object as the core made it (`session` included; see `SmtpObserver`).
 *
 * | channel | when | message |
 * | --- | --- | --- |
 * | `smtpkit:session:start` | a client connected | `{ session }` |
 * | `smtpkit:session:tls` | TLS is up (STARTTLS or SMTPS) | `{ session, tls, implicit }` |
 * | `smtpkit:session:command` | a command line was taken | `{ session, verb }` |
 * | `smtpkit:session:auth` | an AUTH verdict | `{ session, mechanism, success }` |
 * | `smtpkit:session:reply` | a reply was sent | `{ session, code }` |
 * | `smtpkit:session:reject` | a command was refused | `{ session, transactionId, command, code }` |
 * | `smtpkit:session:limit` | a limit was hit | `{ session, limit, code }` (`session` null for `maxConnections`) |
 * | `smtpkit:session:error` | a failure on the server's side | `{ session, message }` |
 * | `smtpkit:session:end` | the session is over | `{ session, reason, durationMs, bytesIn, bytesOut }` |
 * | `smtpkit:transaction:mail` | MAIL answered (`transactionId` set when accepted: the transaction starts) | `{ session, transactionId, address, code }` |
 * | `smtpkit:transaction:rcpt` | RCPT answered | `{ session, transactionId, address, code }` |
 * | `smtpkit:transaction:end` | the body ended | `{ session, transactionId, from, result, code, bytes, durationMs, recipients }` |
 */
export const CHANNELS = {
  sessionStart: "smtpkit:session:start",
  sessionTls: "smtpkit:session:tls",
  sessionCommand: "smtpkit:session:command",
  sessionAuth: "smtpkit:session:auth",
  sessionReply: "smtpkit:session:reply",
  sessionReject: "smtpkit:session:reject",
  sessionLimit: "smtpkit:session:limit",
  sessionError: "smtpkit:session:error",
  sessionEnd: "smtpkit:session:end",
  transactionMail: "smtpkit:transaction:mail",
  transactionRcpt: "smtpkit:transaction:rcpt",
  transactionEnd: "smtpkit:transaction:end",
} as const;

/** A method publishing on `name`, doing nothing while nobody subscribes. */
function publisher(name: string): (event: object) => void {
  const ch = channel(name);
  return (event) => {
    if (ch.hasSubscribers) ch.publish(event);
  };
}

/**
 * Publishes every session event on `node:diagnostics_channel` (see `CHANNELS`). Subscribe with
 * `diagnostics_channel.subscribe("smtpkit:session:start", (message) => ...)`; a channel nobody
 * subscribes to costs a property read per event.
 */
export function channelObserver(): SmtpObserver {
  return {
    connect: publisher(CHANNELS.sessionStart),
    tls: publisher(CHANNELS.sessionTls),
    command: publisher(CHANNELS.sessionCommand),
    auth: publisher(CHANNELS.sessionAuth),
    reply: publisher(CHANNELS.sessionReply),
    reject: publisher(CHANNELS.sessionReject),
    limit: publisher(CHANNELS.sessionLimit),
    error: publisher(CHANNELS.sessionError),
    close: publisher(CHANNELS.sessionEnd),
    mail: publisher(CHANNELS.transactionMail),
    rcpt: publisher(CHANNELS.transactionRcpt),
    data: publisher(CHANNELS.transactionEnd),
  };
}
