import type { HelloEvent, MailEvent, RcptEvent } from "../events.js";
import type { Envelope, Session } from "./session.js";

/**
 * What the session and envelope learn once the engine has accepted a step. The engine keeps the
 * dialog's sequencing (greeted, in a transaction, how many recipients); these records are the
 * handler's view of it, written here and nowhere else. A hook may have written a field itself
 * (aiosmtpd's handlers do): then it is left as the hook set it.
 */

/** The state a hook could change, taken before it runs. */
export function before(session: Session, envelope: Envelope): Snapshot {
  return { hostName: session.hostName, recipients: envelope.rcptTos.length };
}

export interface Snapshot {
  readonly hostName: string | null;
  readonly recipients: number;
}

export function recordHello(session: Session, event: HelloEvent, was: Snapshot): void {
  if (session.hostName !== was.hostName) return;
  session.hostName = event.hostname;
  session.extendedSmtp = event.extended;
}

export function recordMail(envelope: Envelope, event: MailEvent): void {
  if (envelope.mailFrom === null) envelope.mailFrom = event.address;
  if (envelope.mailOptions.length === 0) envelope.mailOptions.push(...event.options);
  envelope.mailParams = [...event.params];
  envelope.smtpUtf8 = event.smtpUtf8;
}

export function recordRcpt(envelope: Envelope, event: RcptEvent, was: Snapshot): void {
  if (envelope.rcptTos.length !== was.recipients) return;
  envelope.rcptTos.push(event.address);
  envelope.rcptOptions.push(...event.options);
  envelope.rcptParams.push([...event.params]);
}

export function isPositive(code: number): boolean {
  return code >= 200 && code < 300;
}
