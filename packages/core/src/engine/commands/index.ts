/**
 * The verb table and the one place preconditions are checked: a command line's checks run in
 * `COMMAND_RULES` order (states.ts), then the command's `run`. Commands never re-check them.
 */
import type { Reply } from "../../reply.js";
import type { Dialog } from "../dialog.js";
import type { LineReader } from "../line-reader.js";
import { type CatalogueReply, REPLIES, TEMPLATES } from "../replies.js";
import { type Check, COMMAND_RULES, type CommandRule, DEFAULT_RULE } from "../states.js";
import { auth } from "./auth.js";
import { expn, help, noop, quit, rset, vrfy } from "./basic.js";
import { type Command, extended, isBuiltin, isRefusal, mechanismOf } from "./command.js";
import { bdat, data } from "./data.js";
import { hello } from "./hello.js";
import { mail } from "./mail.js";
import { rcpt } from "./rcpt.js";
import { type RelayVerb, relayTrusted } from "./relay.js";
import { startTls } from "./starttls.js";
import { xclient } from "./xclient.js";
import { xforward } from "./xforward.js";

// biome-ignore lint/suspicious/noExplicitAny: each command has its own parsed type.
export const COMMANDS: Readonly<Record<string, Command<any>>> = {
  HELO: hello,
  EHLO: hello,
  LHLO: hello,
  NOOP: noop,
  QUIT: quit,
  RSET: rset,
  VRFY: vrfy,
  EXPN: expn,
  HELP: help,
  MAIL: mail,
  RCPT: rcpt,
  DATA: data,
  BDAT: bdat,
  AUTH: auth,
  STARTTLS: startTls,
  XCLIENT: xclient,
  XFORWARD: xforward,
};

function ruleFor(d: Dialog, verb: string): CommandRule {
  if (verb === "LHLO" && !d.options.lmtp) return DEFAULT_RULE;
  if (COMMANDS[verb]?.available?.(d) === false) return DEFAULT_RULE;
  return COMMAND_RULES[verb] ?? DEFAULT_RULE;
}

/** Each check: the reply when it fails, `null` when it passes. */
const CHECKS: Readonly<
  Record<Exclude<Check, "syntax">, (d: Dialog, verb: string, argument: string | null) => unknown>
> = {
  greeting: (d) => (d.state.helloVerb === null ? REPLIES.sendHelo : null),
  greetingEhlo: (d) => (d.state.helloVerb === null ? REPLIES.authSendEhlo : null),
  extended: (d) => (d.state.helloVerb === "HELO" ? REPLIES.authAfterHelo : null),
  auth: (d) => (d.options.authRequired && !d.state.authenticated ? REPLIES.authRequired : null),
  authTls: (d, _verb, argument) =>
    !d.state.tls && d.options.authRequireTls && !d.options.authClearText.has(mechanismOf(argument))
      ? REPLIES.authEncryptionRequired
      : null,
  notAuthenticated: (d) => (d.state.authenticated ? REPLIES.authAlready : null),
  transaction: (d) => (d.state.mailFrom === null ? REPLIES.needMail : null),
  noTransaction: (d) => (d.state.mailFrom !== null ? REPLIES.nestedMail : null),
  recipients: (d) => (d.state.recipients.length === 0 ? REPLIES.needRcpt : null),
  argument: (d, verb, argument) => (argument ? null : TEMPLATES.syntax(verb, extended(d))),
  noArgument: (d, verb, argument) => (argument ? TEMPLATES.syntax(verb, extended(d)) : null),
  notBdatBody: (d) => (d.state.body?.via === "BDAT" ? REPLIES.bdatAfterData : null),
  // RFC 3030 §3: DATA after BODY=BINARYMIME MUST get 503; the client resets with RSET.
  notBinaryMime: (d) => (d.state.binaryMime ? REPLIES.binaryMimeNeedsBdat : null),
  tlsOffered: (d) => (d.options.startTls ? null : REPLIES.tlsNotAvailable),
  notTls: (d) => (d.state.tls ? REPLIES.tlsAlreadyActive : null),
  noMailTransaction: (d) => (d.state.mailFrom !== null ? REPLIES.relayInTransaction : null),
  relayTrusted: (d, verb) =>
    relayTrusted(d, verb as RelayVerb) ? null : REPLIES.relayUnauthorized,
};

/**
 * A command line, already split: line-level checks (length, TLS refused, STARTTLS required,
 * call limit), then an added command's event, or the built-in.
 */
export function dispatch(d: Dialog, lines: LineReader, verb: string, argument: string | null) {
  if (lines.lineLength > lines.maxCommandSize(verb, extended(d))) {
    return d.reject(verb, REPLIES.commandTooLong);
  }
  const rule = ruleFor(d, verb);
  if (d.state.tlsRefused && !rule.whenTlsRefused) return d.reject(verb, REPLIES.lackOfSecurity);
  if (d.state.greetingRefused && verb !== "QUIT") return d.reject(verb, REPLIES.refusedSession);
  if (d.options.requireStartTls && !d.state.tls && !rule.beforeStartTls) {
    return d.reject(verb, REPLIES.mustStartTls);
  }
  if (!lines.takeCall(verb)) {
    d.write(TEMPLATES.tooManyCalls(verb));
    return d.finish("callLimit");
  }
  if (d.options.commands.has(verb)) {
    const builtin = isBuiltin(d, verb);
    return d.await(
      { kind: "command", verb, argument, builtin },
      { type: "command", verb, argument, builtin },
    );
  }
  runCommand(d, verb, argument);
}

/** Runs a built-in command (also for `runBuiltin()`): its checks in order, then the command. */
export function runCommand(d: Dialog, verb: string, argument: string | null): void {
  if (d.options.lmtp && (verb === "HELO" || verb === "EHLO")) {
    return d.reject(verb, TEMPLATES.notRecognized(verb));
  }
  const command = isBuiltin(d, verb) ? COMMANDS[verb] : undefined;
  if (command === undefined || (verb === "BDAT" && !d.options.chunking)) return d.unknown(verb);
  if (command.available?.(d) === false) return d.unknown(verb);
  const rule = COMMAND_RULES[verb] ?? DEFAULT_RULE;
  let parsed: unknown;
  for (const check of rule.checks) {
    let failure: unknown;
    if (check === "syntax") {
      const result = command.parse?.(d, verb, argument);
      if (isRefusal(result)) failure = result.refused;
      else parsed = result;
    } else {
      failure = CHECKS[check](d, verb, argument);
    }
    if (failure) {
      const reply = failure as CatalogueReply | Reply;
      if (command.refuse) return command.refuse(d, verb, reply, parsed);
      return d.reject(verb, reply);
    }
  }
  command.run(d, verb, argument, parsed);
}
