/**
 * AUTH (RFC 4954): the command's own checks, the challenge/response lines (decoded base64, `*`
 * cancels) and the abort replies. The exchange itself is the program's (`challenge()`,
 * `completeAuth()`). COMMAND_RULES: greeting (send EHLO first), an ESMTP session, the mechanism
 * usable on this connection (538), not yet authenticated, then the arguments (`parse`).
 */
import type { AuthAbortedEvent } from "../../events.js";
import { decodeBase64 } from "../../syntax/base64.js";
import { type Dialog, PENDING } from "../dialog.js";
import { type CatalogueReply, REPLIES } from "../replies.js";
import { type Command, mechanismOf, refuse } from "./command.js";

interface AuthArgs {
  readonly mechanism: string;
  readonly initialResponse: Uint8Array | null;
}

export const auth: Command<AuthArgs> = {
  parse(d, _verb, argument) {
    const words = argument ? argument.split(/\s+/) : [];
    if (words.length === 0) return refuse(REPLIES.authNotEnough);
    if (words.length > 2) return refuse(REPLIES.authTooMany);
    const mechanism = mechanismOf(argument);
    if (!d.mechanisms.includes(mechanism)) return refuse(REPLIES.authUnknownMechanism);
    const initial = words[1];
    if (initial === undefined) return { mechanism, initialResponse: null };
    const initialResponse = initial === "=" ? new Uint8Array(0) : decodeBase64(initial);
    if (initialResponse === null) return refuse(REPLIES.authBadBase64);
    return { mechanism, initialResponse };
  },
  run(d, _verb, _argument, { mechanism, initialResponse }) {
    d.await(PENDING.auth, { type: "auth", mechanism, initialResponse });
  },
};

/** A line in the "authResponse" phase: the client's answer to a 334 challenge. */
export function authResponse(d: Dialog, text: string): void {
  if (text === "*") return abortAuth(d, "cancelled", REPLIES.authAborted);
  const response = text === "" || text === "=" ? new Uint8Array(0) : decodeBase64(text);
  if (response === null) return abortAuth(d, "badBase64", REPLIES.authBadBase64);
  d.await(PENDING.auth, { type: "authResponse", response });
}

/** Ends the exchange from the client's side (or for an over-long response line). */
export function abortAuth(
  d: Dialog,
  reason: AuthAbortedEvent["reason"],
  entry: CatalogueReply,
): void {
  d.write(entry);
  d.transition("authAborted");
  d.emit({ type: "authAborted", reason });
}
