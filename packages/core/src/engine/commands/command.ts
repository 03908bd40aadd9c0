/** What every command module shares: the command shape and small helpers. */
import type { Reply } from "../../reply.js";
import type { Dialog } from "../dialog.js";
import type { CatalogueReply } from "../replies.js";
import { COMMAND_RULES } from "../states.js";

/** A failed syntax step: the reply refusing the command. */
export interface Refusal {
  readonly refused: CatalogueReply | Reply;
}
export const refuse = (reply: CatalogueReply | Reply): Refusal => ({ refused: reply });

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === "object" && value !== null && "refused" in value;
}

/** One built-in command: an optional syntax step (the `"syntax"` check) and its behaviour. */
export interface Command<T = unknown> {
  /** Whether the command exists with these options (else it is an unknown command). */
  available?(d: Dialog): boolean;
  parse?(d: Dialog, verb: string, argument: string | null): T | Refusal;
  run(d: Dialog, verb: string, argument: string | null, parsed: T): void;
  /** A failed check; the default rejects the line (BDAT still reads its chunk). */
  refuse?(d: Dialog, verb: string, reply: CatalogueReply | Reply, parsed: T | undefined): void;
}

/** A built-in verb of this dialect (LMTP has LHLO instead of HELO and EHLO). */
export function isBuiltin(d: Dialog, verb: string): boolean {
  return (
    verb in COMMAND_RULES && (d.options.lmtp ? verb !== "HELO" && verb !== "EHLO" : verb !== "LHLO")
  );
}

/** The session is ESMTP (EHLO or LHLO accepted). */
export function extended(d: Dialog): boolean {
  return d.state.helloVerb === "EHLO" || d.state.helloVerb === "LHLO";
}

/** The first word of AUTH's argument, upper case ("" when none). */
export function mechanismOf(argument: string | null): string {
  if (!argument) return "";
  const end = argument.search(/\s/);
  return (end === -1 ? argument : argument.slice(0, end)).toUpperCase();
}

export function addressOptions(d: Dialog): { smtpUtf8: boolean; localPartLimit: number } {
  return { smtpUtf8: d.options.smtpUtf8, localPartLimit: d.options.localPartLimit };
}
