import type { ReplyLike } from "../reply.js";

/**
 * The built-in commands as methods, so that a subclass of `SMTP` can replace one and still call
 * `super.smtpVERB(argument)` for the default: each asks the engine to run its own behaviour.
 */
export abstract class BuiltinCommands {
  /** Runs the engine's behaviour for the command being dispatched. */
  protected abstract runBuiltin(): Promise<void>;

  async smtpHELO(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpEHLO(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpLHLO(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpMAIL(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpRCPT(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpDATA(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpBDAT(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpRSET(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpNOOP(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpQUIT(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpVRFY(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpEXPN(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpHELP(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpAUTH(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
  async smtpSTARTTLS(_argument: string | null): Promise<ReplyLike | void> {
    await this.runBuiltin();
  }
}
