import { SmtpError } from "../errors.js";
import type { CommandSpec } from "../options.js";
import { defaultEnhancedCode, type EnhancedContext, formatReply, type Reply } from "../reply.js";

/**
 * The reply catalogue: every reply the engine composes itself, the enhanced-code policy, the
 * replies pre-formatted as bytes, and the canonical errors a handler can throw (`SMTP_ERRORS`).
 * No other engine file spells out a reply text.
 *
 * Every reply the engine composes itself. Texts are aiosmtpd's, so people moving over recognise
 * them; `enhanced` is the RFC 3463 code sent when ENHANCEDSTATUSCODES is on, and `inPlain` marks the
 * replies whose aiosmtpd text already carries that code (they keep it in plain mode).
 */
export interface CatalogueReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
  readonly inPlain?: boolean;
}

const r = (code: number, enhanced: string, text: string, inPlain = false): CatalogueReply => ({
  code,
  enhanced,
  text,
  inPlain,
});

export const REPLIES = {
  ok: r(250, "2.0.0", "OK"),
  mailOk: r(250, "2.1.0", "OK"),
  rcptOk: r(250, "2.1.5", "OK"),
  bye: r(221, "2.0.0", "Bye"),
  startData: r(354, "", "End data with <CR><LF>.<CR><LF>"),
  vrfyCannot: r(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"),
  readyTls: r(220, "2.0.0", "Ready to start TLS"),
  authOk: r(235, "2.7.0", "Authentication successful", true),
  authInvalid: r(535, "5.7.8", "Authentication credentials invalid", true),
  authAborted: r(501, "5.7.0", "Auth aborted", true),
  authBadBase64: r(501, "5.5.2", "Can't decode base64", true),
  authUnknownMechanism: r(504, "5.5.4", "Unrecognized authentication type", true),
  authEncryptionRequired: r(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
    true,
  ),
  authAlready: r(503, "5.5.1", "Already authenticated"),
  authNotEnough: r(501, "5.5.4", "Not enough value"),
  authTooMany: r(501, "5.5.4", "Too many values"),
  authSendEhlo: r(503, "5.5.1", "Error: send EHLO first"),
  authAfterHelo: r(500, "5.5.1", "Error: command 'AUTH' not recognized"),
  authLineTooLong: r(500, "5.5.6", "Authentication Exchange line is too long", true),
  authRequired: r(530, "5.7.0", "Authentication required", true),
  sendHelo: r(503, "5.5.1", "Error: send HELO first"),
  nestedMail: r(503, "5.5.1", "Error: nested MAIL command"),
  needMail: r(503, "5.5.1", "Error: need MAIL command"),
  needRcpt: r(503, "5.5.1", "Error: need RCPT command"),
  malformedAddress: r(553, "5.1.3", "Error: malformed address", true),
  bodyValue: r(501, "5.5.4", "Error: BODY can only be one of 7BIT, 8BITMIME"),
  smtpUtf8Argument: r(501, "5.5.4", "Error: SMTPUTF8 takes no arguments"),
  smtpUtf8Disabled: r(501, "5.5.4", "Error: SMTPUTF8 disabled"),
  sizeExceeded: r(552, "5.3.4", "Error: message size exceeds fixed maximum message size"),
  mailParams: r(555, "5.5.4", "MAIL FROM parameters not recognized or not implemented"),
  rcptParams: r(555, "5.5.4", "RCPT TO parameters not recognized or not implemented"),
  tooManyRecipients: r(452, "4.5.3", "Error: too many recipients"),
  lineTooLong: r(500, "5.5.2", "Line too long (see RFC5321 4.5.3.1.6)"),
  tooMuchData: r(552, "5.3.4", "Error: Too much mail data"),
  bareLineEnding: r(554, "5.6.0", "Error: bare <CR> or <LF> in message data (see RFC5321 2.3.8)"),
  strictAscii: r(500, "5.5.2", "Error: strict ASCII mode"),
  badUtf8: r(500, "5.6.7", "Error: invalid UTF-8 in command"),
  commandTooLong: r(500, "5.5.2", "Command line too long"),
  badSyntax: r(500, "5.5.2", "Error: bad syntax"),
  lackOfSecurity: r(554, "5.7.0", "Command refused due to lack of security"),
  refusedSession: r(503, "5.5.1", "Error: session refused, send QUIT"),
  earlyTalker: r(521, "5.5.1", "Error: talked before the greeting"),
  untrustedPeer: r(554, "5.7.1", "Error: connections are accepted only through a trusted proxy"),
  mustStartTls: r(530, "5.7.0", "Must issue a STARTTLS command first"),
  tlsNotAvailable: r(454, "4.7.0", "TLS not available"),
  tlsAlreadyActive: r(503, "5.5.1", "Error: TLS already active"),
  expnNotImplemented: r(502, "5.5.1", "EXPN not implemented"),
  tooManyUnknown: r(502, "5.5.1", "Too many unrecognized commands, goodbye.", true),
  bdatSyntax: r(501, "5.5.4", "Syntax: BDAT <size> [LAST]"),
  bdatAfterData: r(503, "5.5.1", "Error: BDAT and DATA cannot be mixed"),
  commandNoReply: r(451, "4.3.0", "Error: the command produced no reply"),
  internalError: r(451, "4.3.0", "Error: internal error"),
  // Replies the server layer sends (src/server), kept here so one file holds every text.
  authTemporaryFailure: r(454, "4.7.0", "Temporary authentication failure", true),
  noDeliveryStatus: r(451, "4.3.0", "Error: no delivery status for this recipient", true),
  strictAsciiBody: r(500, "5.6.7", "Error: strict ASCII mode"),
  // `{host}` is the server's host name (see `hostReply`).
  shuttingDown: r(421, "4.3.2", "{host} Service shutting down", true),
  timeout: r(421, "4.4.2", "{host} Error: timeout exceeded", true),
  tooManyConnections: r(421, "4.7.0", "{host} Error: too many connections", true),
  retValue: r(501, "5.5.4", "Error: RET can only be one of FULL, HDRS"),
  envidValue: r(501, "5.5.4", "Error: bad ENVID value"),
  notifyValue: r(501, "5.5.4", "Error: bad NOTIFY value"),
  orcptValue: r(501, "5.5.4", "Error: bad ORCPT value"),
} as const;

/** Replies whose text carries a value (a verb, a size, the client's argument). */
export const TEMPLATES = {
  /** Echoes the verb: `formatReply` escapes anything unprintable in it. */
  notRecognized: (verb: string): CatalogueReply =>
    r(500, "5.5.1", `Error: command "${verb}" not recognized`),
  /** aiosmtpd's `501 Syntax: ...` from the command's `@syntax`. */
  syntax: (verb: string, extended: boolean): CatalogueReply =>
    r(501, "5.5.4", `Syntax: ${syntaxText(BUILTIN_SYNTAX[verb] ?? {}, extended)}`),
  helpSyntax: (spec: CommandSpec, extended: boolean): CatalogueReply =>
    r(250, "2.0.0", `Syntax: ${syntaxText(spec, extended)}`),
  supportedCommands: (code: 250 | 501, verbs: readonly string[]): CatalogueReply =>
    r(code, code === 250 ? "2.0.0" : "5.5.4", `Supported commands: ${verbs.join(" ")}`),
  /** Echoes the argument: `formatReply` escapes anything unprintable in it. */
  couldNotVrfy: (argument: string): CatalogueReply => r(502, "5.1.3", `Could not VRFY ${argument}`),
  octetsReceived: (size: number): CatalogueReply => r(250, "2.0.0", `OK: ${size} octets received`),
  /** Not an aiosmtpd text (its limit is per server), so the code stays in plain mode too. */
  tooManyCalls: (verb: string): CatalogueReply =>
    r(421, "4.7.0", `${verb} sent too many times`, true),
  greeting: (hostname: string, ident: string): Reply => ({
    code: 220,
    enhanced: undefined,
    lines: [`${hostname} ${ident}`],
  }),
  challenge: (base64: string): Reply => ({ code: 334, enhanced: undefined, lines: [base64] }),
} as const;

/** aiosmtpd's `@syntax` texts for the built-in commands; `extended` is added in ESMTP sessions. */
export const BUILTIN_SYNTAX: Readonly<Record<string, CommandSpec>> = {
  AUTH: { syntax: "AUTH <mechanism>" },
  BDAT: { syntax: "BDAT <size> [LAST]" },
  DATA: { syntax: "DATA" },
  EHLO: { syntax: "EHLO hostname" },
  HELO: { syntax: "HELO hostname" },
  HELP: { syntax: "HELP [command]" },
  LHLO: { syntax: "LHLO hostname" },
  MAIL: { syntax: "MAIL FROM: <address>", extendedSyntax: " [SP <mail-parameters>]" },
  NOOP: { syntax: "NOOP [ignored]" },
  QUIT: { syntax: "QUIT" },
  RCPT: { syntax: "RCPT TO: <address>", extendedSyntax: " [SP <mail-parameters>]" },
  RSET: { syntax: "RSET" },
  STARTTLS: { syntax: "STARTTLS" },
  VRFY: { syntax: "VRFY <address>" },
};

export function syntaxText(spec: CommandSpec, extended: boolean): string {
  return `${spec.syntax ?? ""}${extended ? (spec.extendedSyntax ?? "") : ""}`;
}

// -------------------------------------------------------------------------------------------------
// The enhanced-code policy.
//
// With ENHANCEDSTATUSCODES on (the default, always in LMTP) every reply carries an RFC 3463 code:
// the catalogue's, or one derived from the reply class and the command (`defaultEnhancedCode`);
// replies to HELO/EHLO/LHLO and 3xx replies carry none. With it off, the catalogue sends
// aiosmtpd's plain texts: only entries marked `inPlain` keep their code.

/** A catalogue entry as a `Reply` under the connection's enhanced-code mode. */
export function catalogueReply(entry: CatalogueReply, enhancedOn: boolean): Reply {
  const withCode = entry.enhanced !== "" && (enhancedOn || entry.inPlain === true);
  return { code: entry.code, enhanced: withCode ? entry.enhanced : undefined, lines: [entry.text] };
}

/** A catalogue entry naming the server (`{host}`), with its enhanced code. */
export function hostReply(entry: CatalogueReply, hostname: string): Reply {
  return {
    code: entry.code,
    enhanced: entry.enhanced,
    lines: [entry.text.replace("{host}", hostname)],
  };
}

/** Fills in the default enhanced code of a reply that has none (enhanced mode only). */
export function withDefaultCode(
  reply: Reply,
  context: EnhancedContext | "hello",
  enhancedOn: boolean,
): Reply {
  if (reply.enhanced !== undefined || !enhancedOn || context === "hello") return reply;
  const enhanced = defaultEnhancedCode(reply.code, context);
  return enhanced ? { ...reply, enhanced } : reply;
}

const ENCODER = new TextEncoder();
/** Catalogue replies formatted once per enhanced-code mode: [plain, enhanced]. */
const BYTES: readonly [WeakMap<CatalogueReply, Uint8Array>, WeakMap<CatalogueReply, Uint8Array>] = [
  new WeakMap(),
  new WeakMap(),
];

/** A catalogue entry on the wire, formatted and encoded once per mode. */
export function catalogueBytes(entry: CatalogueReply, enhancedOn: boolean): Uint8Array {
  const cache = BYTES[enhancedOn ? 1 : 0];
  let bytes = cache.get(entry);
  if (bytes === undefined) {
    bytes = encodeReply(catalogueReply(entry, enhancedOn), "other", enhancedOn);
    cache.set(entry, bytes);
  }
  return bytes;
}

/** Any reply on the wire, its default enhanced code filled in. */
export function encodeReply(
  reply: Reply,
  context: EnhancedContext | "hello",
  enhancedOn: boolean,
): Uint8Array {
  return ENCODER.encode(formatReply(withDefaultCode(reply, context, enhancedOn)));
}

// -------------------------------------------------------------------------------------------------
// Canonical errors (go-smtp's `ErrDataTooLarge` and friends), for handlers to throw or return.

const error = (entry: CatalogueReply): SmtpError =>
  Object.freeze(new SmtpError(entry.code, entry.enhanced || undefined, entry.text));

/** Ready-made `SmtpError`s with the catalogue's texts: `throw SMTP_ERRORS.dataTooLarge`. */
export const SMTP_ERRORS = Object.freeze({
  /** 552 5.3.4: the message is over the size limit. */
  dataTooLarge: error(REPLIES.tooMuchData),
  /** 552 5.3.4: MAIL FROM's SIZE is over the limit. */
  sizeExceeded: error(REPLIES.sizeExceeded),
  /** 530 5.7.0: authentication required. */
  authRequired: error(REPLIES.authRequired),
  /** 535 5.7.8: bad credentials. */
  authFailed: error(REPLIES.authInvalid),
  /** 504 5.5.4: unknown mechanism. */
  authUnknownMechanism: error(REPLIES.authUnknownMechanism),
  /** 538 5.7.11: the mechanism needs an encrypted connection. */
  authEncryptionRequired: error(REPLIES.authEncryptionRequired),
  /** 452 4.5.3: too many recipients. */
  tooManyRecipients: error(REPLIES.tooManyRecipients),
  /** 553 5.1.3: malformed address. */
  malformedAddress: error(REPLIES.malformedAddress),
  /** 530 5.7.0: STARTTLS first. */
  tlsRequired: error(REPLIES.mustStartTls),
  /** 554 5.6.0: bare CR or LF in the body. */
  bareLineEnding: error(REPLIES.bareLineEnding),
  /** 451 4.3.0: a local error; try again later. */
  internalError: error(REPLIES.internalError),
});
