/**
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
  mustStartTls: r(530, "5.7.0", "Must issue a STARTTLS command first"),
  tlsNotAvailable: r(454, "4.7.0", "TLS not available"),
  tlsAlreadyActive: r(503, "5.5.1", "Error: TLS already active"),
  expnNotImplemented: r(502, "5.5.1", "EXPN not implemented"),
  tooManyUnknown: r(502, "5.5.1", "Too many unrecognized commands, goodbye.", true),
  bdatSyntax: r(501, "5.5.4", "Syntax: BDAT <size> [LAST]"),
  bdatAfterData: r(503, "5.5.1", "Error: BDAT and DATA cannot be mixed"),
  commandNoReply: r(451, "4.3.0", "Error: the command produced no reply"),
} as const;

export type ReplyName = keyof typeof REPLIES;
