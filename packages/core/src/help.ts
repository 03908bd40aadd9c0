import type { CommandSpec } from "./options.js";

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
