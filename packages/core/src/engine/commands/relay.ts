/**
 * What XCLIENT and XFORWARD share: whether they exist here and are offered to this client, their
 * EHLO keywords, and the 501 replies for a bad attribute list.
 */
import type { AttributeError, RelayAttribute } from "../../syntax/relay-attributes.js";
import type { Dialog } from "../dialog.js";
import { type CatalogueReply, REPLIES, TEMPLATES } from "../replies.js";

export type RelayVerb = "XCLIENT" | "XFORWARD";

/** Attributes as Postfix advertises them (without REVERSE_NAME, which smtpkit does not take). */
export const XCLIENT_ATTRIBUTES = [
  "NAME",
  "ADDR",
  "PROTO",
  "HELO",
  "PORT",
  "LOGIN",
  "DESTADDR",
  "DESTPORT",
] as const;
export const XFORWARD_ATTRIBUTES = [
  "NAME",
  "ADDR",
  "PROTO",
  "HELO",
  "SOURCE",
  "PORT",
  "IDENT",
] as const;

/** The command exists on this server (else it is an unknown command). */
export function relayEnabled(d: Dialog, verb: RelayVerb): boolean {
  return verb === "XCLIENT" ? d.options.xclient : d.options.xforward;
}

/** This client may use the command (and sees it in the EHLO reply and HELP). */
export function relayTrusted(d: Dialog, verb: RelayVerb): boolean {
  return verb === "XCLIENT" ? d.state.xclientTrusted : d.state.xforwardTrusted;
}

/** The EHLO/LHLO keywords for the relay commands this client may use. */
export function relayKeywords(d: Dialog): string[] {
  const keywords: string[] = [];
  if (d.state.xclientTrusted) keywords.push(`XCLIENT ${XCLIENT_ATTRIBUTES.join(" ")}`);
  if (d.state.xforwardTrusted) keywords.push(`XFORWARD ${XFORWARD_ATTRIBUTES.join(" ")}`);
  return keywords;
}

/** Which relay keywords are in the EHLO reply, as a number (0-3) for the reply cache. */
export function relayOffer(d: Dialog): number {
  return (d.state.xclientTrusted ? 1 : 0) + (d.state.xforwardTrusted ? 2 : 0);
}

/** The 501 for a bad attribute list or value (Postfix's texts). */
export function attributeRefusal(verb: RelayVerb, error: AttributeError): CatalogueReply {
  switch (error.kind) {
    case "expected":
      return REPLIES.attributeExpected;
    case "tooLong":
      return REPLIES.attributeTooLong;
    case "badName":
      return TEMPLATES.badAttributeName(verb, error.name);
    case "badValue":
      return TEMPLATES.badAttributeValue(error.name, error.value);
  }
}

/** The attributes as sent, by name (a repeated name: the last one, as Postfix applies them). */
export function attributeRecord(attributes: readonly RelayAttribute[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const { name, value } of attributes) record[name] = value;
  return record;
}
