import type { Handler } from "@smtpkit/core/server";
import { UsageError } from "./cli.js";

/**
 * aiosmtpd's `Sink`: no hooks at all, so every default applies: messages are accepted with
 * `250 OK` and discarded (and, having no `handleDATA`, never assembled in memory).
 */
export class Sink implements Handler {
  // Handler's `auth_*` index signature (custom AUTH mechanisms); classes must restate it.
  [hook: `auth_${string}`]: unknown;

  /** CLI: `-c Sink`, no arguments. */
  static fromCli(args: readonly string[]): Sink {
    if (args.length > 0) throw new UsageError("Sink handler does not accept arguments");
    return new Sink();
  }
}
