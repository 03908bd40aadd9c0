import type { Handler } from "@smtpkit/core/server";

/**
 * Thrown by a handler's `fromCli()` for bad command-line arguments. The CLI prints the message as
 * a one-line usage error and exits with code 2, as aiosmtpd's `parser.error()` does.
 */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * The command-line convention (aiosmtpd's `from_cli` class method): a handler class that takes
 * arguments from the command line implements `static fromCli(args)`, which returns the handler or
 * throws (preferably a `UsageError`) with a one-line message.
 */
export interface CliHandlerClass<H extends Handler = Handler> {
  fromCli(args: readonly string[]): H | Promise<H>;
}

/** Anything with a `write(text)` method: `process.stdout`, a file stream, a test collector. */
export interface TextOutput {
  write(text: string): unknown;
}
