import type { EsmtpParam } from "@smtpkit/core";
import type { Envelope, Session } from "@smtpkit/core/server";

/** What travels with each message: the envelope and where it came from. */
export interface EnvelopeRecord {
  readonly mailFrom: string | null;
  readonly rcptTos: readonly string[];
  readonly mailParams: readonly EsmtpParam[];
  readonly rcptParams: readonly (readonly EsmtpParam[])[];
  readonly smtpUtf8: boolean;
  readonly peer: { address: string | null; port: number | null; family: string | null } | null;
  readonly hostName: string | null;
}

/** Header names on every stream message. */
export const HEADERS = {
  /** The envelope as JSON (`EnvelopeRecord`). */
  envelope: "Smtp-Envelope",
  /** Set on a pointer message: the object store bucket holding the body. */
  objectBucket: "Smtp-Object-Bucket",
  /** Set on a pointer message: the object's name in that bucket. */
  objectName: "Smtp-Object-Name",
  /** The body's size in bytes. */
  size: "Smtp-Size",
} as const;

export function envelopeRecord(session: Session, envelope: Envelope): EnvelopeRecord {
  const peer = session.peer as {
    address?: string | null;
    port?: number | null;
    family?: string | null;
  } | null;
  return {
    mailFrom: envelope.mailFrom,
    rcptTos: [...envelope.rcptTos],
    mailParams: envelope.mailParams,
    rcptParams: envelope.rcptParams,
    smtpUtf8: Boolean(envelope.smtpUtf8),
    peer: peer
      ? { address: peer.address ?? null, port: peer.port ?? null, family: peer.family ?? null }
      : null,
    hostName: session.hostName,
  };
}

/** Parses the `Smtp-Envelope` header; throws on anything that is not one. */
export function parseEnvelopeRecord(text: string): EnvelopeRecord {
  const value = JSON.parse(text) as EnvelopeRecord;
  if (
    typeof value !== "object" ||
    value === null ||
    !Array.isArray(value.rcptTos) ||
    (value.mailFrom !== null && typeof value.mailFrom !== "string")
  ) {
    throw new TypeError("not an smtpkit envelope record");
  }
  return value;
}
