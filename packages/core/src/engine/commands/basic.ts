/** NOOP, RSET, QUIT, VRFY, EXPN and HELP. Their preconditions are in COMMAND_RULES (states.ts). */
import type { CommandSpec } from "../../options.js";
import { parseVrfyArgument } from "../../syntax/address.js";
import type { Dialog } from "../dialog.js";
import { PENDING } from "../dialog.js";
import { BUILTIN_SYNTAX, REPLIES, TEMPLATES } from "../replies.js";
import { addressOptions, type Command, extended, isBuiltin, refuse } from "./command.js";
import { relayTrusted } from "./relay.js";

/** The argument goes to the program as is (aiosmtpd's `handle_NOOP(arg)`); 250 OK by default. */
export const noop: Command = {
  run(d, _verb, argument) {
    d.await(PENDING.noop, { type: "noop", argument });
  },
};

/** 221 Bye, then the connection closes whatever the reply; the transaction ends at once. */
export const quit: Command = {
  run(d) {
    d.await(PENDING.quit, QUIT_EVENT, "quit");
  },
};

/** The "rset" transition resets the transaction before the event. */
export const rset: Command = {
  run(d) {
    d.await(PENDING.rset, RSET_EVENT, "rset");
  },
};

/** `502 Could not VRFY <arg>` for what is not an address, else 252 by default. */
export const vrfy: Command<string> = {
  parse(d, _verb, argument) {
    const address = parseVrfyArgument(argument as string, addressOptions(d));
    return address ?? refuse(TEMPLATES.couldNotVrfy(argument as string));
  },
  run(d, _verb, _argument, address) {
    d.await(PENDING.vrfy, { type: "vrfy", address });
  },
};

export const expn: Command = {
  run(d, verb) {
    d.reject(verb, REPLIES.expnNotImplemented);
  },
};

/** `HELP` lists the commands, `HELP VERB` gives its syntax (501 and the list for unknown ones). */
export const help: Command = {
  run(d, _verb, argument) {
    const listed = helpTable(d);
    if (argument) {
      const spec = listed.get(argument.toUpperCase());
      if (spec) return d.write(TEMPLATES.helpSyntax(spec, extended(d)));
      return d.reject("HELP", TEMPLATES.supportedCommands(501, [...listed.keys()]));
    }
    d.write(TEMPLATES.supportedCommands(250, [...listed.keys()]));
  },
};

/** Commands listed by HELP, alphabetically: built-ins available here plus added ones with a syntax. */
function helpTable(d: Dialog): Map<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const [verb, spec] of Object.entries(BUILTIN_SYNTAX)) {
    if (!isBuiltin(d, verb)) continue;
    if (verb === "STARTTLS" && !d.options.startTls) continue;
    if (verb === "BDAT" && !d.options.chunking) continue;
    if ((verb === "XCLIENT" || verb === "XFORWARD") && !relayTrusted(d, verb)) continue;
    table.set(verb, spec);
  }
  for (const [verb, spec] of d.options.commands) {
    if (spec.syntax) table.set(verb, spec);
  }
  return new Map([...table].sort(([a], [b]) => (a < b ? -1 : 1)));
}

const QUIT_EVENT = Object.freeze({ type: "quit" as const });
const RSET_EVENT = Object.freeze({ type: "rset" as const });
