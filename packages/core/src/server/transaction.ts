import type { HelloEvent, MailEvent, RcptEvent, Rrvs } from "../events.js";
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

/** MAIL's extension values, on the envelope before `handleMAIL` runs so it can check them. */
export function presentMail(envelope: Envelope, event: MailEvent): void {
  envelope.bodyType = event.body;
  const auth = event.auth;
  envelope.auth = auth === null ? undefined : auth.trusted ? auth.submitter : null;
  envelope.mtPriority = event.mtPriority;
  envelope.deliverBy = event.deliverBy;
  envelope.futureRelease = event.futureRelease;
}

/** A refused MAIL leaves none of its values behind. */
export function withdrawMail(envelope: Envelope): void {
  envelope.bodyType = null;
  envelope.auth = undefined;
  envelope.mtPriority = null;
  envelope.deliverBy = null;
  envelope.futureRelease = null;
}

/** RCPT's extension values, before `handleRCPT` runs; returns what a refusal restores. */
export function presentRcpt(envelope: Envelope, event: RcptEvent): Rrvs | undefined {
  const earlier = envelope.rrvs.get(event.address);
  if (event.rrvs !== null) envelope.rrvs.set(event.address, event.rrvs);
  return earlier;
}

/** A refused RCPT leaves the envelope's RRVS for that address as it was. */
export function withdrawRcpt(envelope: Envelope, event: RcptEvent, earlier: Rrvs | undefined) {
  if (event.rrvs === null) return;
  if (earlier === undefined) envelope.rrvs.delete(event.address);
  else envelope.rrvs.set(event.address, earlier);
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
