import type { Reply } from "./reply.js";

/**
 * The peer broke the protocol. Carries the reply the server sends for it. The engine turns these
 * into replies itself; they escape `nextEvent()` never (random input yields events, not throws).
 */
export class RemoteProtocolError extends Error {
  override readonly name = "RemoteProtocolError";
  constructor(
    message: string,
    readonly reply: Reply,
  ) {
    super(message);
  }
}

/**
 * The program driving the engine asked for something illegal in the current state: replying when
 * no reply is awaited, sending data after close, and so on. Always a bug in the caller.
 */
export class LocalProtocolError extends Error {
  override readonly name = "LocalProtocolError";
}

/**
 * An SMTP error a hook can throw to answer with a specific reply (go-smtp's `SMTPError`):
 * `throw new SmtpError(550, "5.1.1", "No such user")`.
 */
export class SmtpError extends Error {
  override readonly name = "SmtpError";
  readonly reply: Reply;
  constructor(code: number, enhanced: string | undefined, message: string) {
    super(message);
    this.reply = { code, enhanced, lines: message.split(/\r?\n/) };
  }
}
