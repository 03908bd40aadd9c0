import {
  type Envelope,
  type Handler,
  messagePeer,
  type Session,
  type SMTP,
} from "@smtpkit/core/server";
import { type TextOutput, UsageError } from "./cli.js";
import { splitByteLines, splitTextLines } from "./lines.js";
import { pyListRepr, pyPeerRepr } from "./python-repr.js";

const MESSAGE_FOLLOWS = "---------- MESSAGE FOLLOWS ----------";
const END_MESSAGE = "------------ END MESSAGE ------------";

interface ProcessLike {
  stdout?: TextOutput;
  stderr?: TextOutput;
}

function stdio(name: "stdout" | "stderr"): TextOutput {
  const proc = (globalThis as { process?: ProcessLike }).process;
  const stream = proc?.[name];
  if (stream) return stream;
  // No `process` (browser, worker): fall back to the console, one call per write.
  const log = name === "stdout" ? console.log : console.error;
  return { write: (text: string) => log(text.replace(/\n$/, "")) };
}

/**
 * aiosmtpd's `Debugging` handler: prints every message to a stream (stdout by default) in exactly
 * aiosmtpd's format, with `X-Peer: <repr of the peer>` inserted before the first empty line.
 *
 * ```text
 * ---------- MESSAGE FOLLOWS ----------
 * mail options: ['SIZE=102']
 *
 * From: Anne Person <anne@example.com>
 * Subject: A test
 * X-Peer: ('127.0.0.1', 54321)
 *
 * Testing
 * ------------ END MESSAGE ------------
 * ```
 *
 * The whole block is written with a single `write()` so that concurrent sessions do not interleave.
 */
export class Debugging implements Handler {
  // Handler's `auth_*` index signature (custom AUTH mechanisms); classes must restate it.
  [hook: `auth_${string}`]: unknown;
  readonly stream: TextOutput;

  constructor(stream?: TextOutput | null) {
    this.stream = stream ?? stdio("stdout");
  }

  /** CLI: `-c Debugging [stdout|stderr]`. */
  static fromCli(args: readonly string[]): Debugging {
    if (args.length === 0) return new Debugging();
    if (args.length === 1 && (args[0] === "stdout" || args[0] === "stderr")) {
      return new Debugging(stdio(args[0]));
    }
    throw new UsageError("Debugging usage: [stdout|stderr]");
  }

  /** The text `handleDATA` writes for one message (aiosmtpd's `print` calls, joined). */
  static format(session: Pick<Session, "peer">, envelope: Envelope): string {
    let out = `${MESSAGE_FOLLOWS}\n`;
    let separator = false;
    if (envelope.mailOptions.length > 0) {
      out += `mail options: ${pyListRepr(envelope.mailOptions)}\n`;
      separator = true;
    }
    // `any(rcpt_options)`: at least one non-empty option.
    if (envelope.rcptOptions.some((option) => option !== "")) {
      out += `rcpt options: ${pyListRepr(envelope.rcptOptions)}\n`;
      separator = true;
    }
    if (separator) out += "\n";
    // XFORWARD's up-stream client when a relay sent one, else the session's.
    out += formatContent(pyPeerRepr(messagePeer(session, envelope)), envelope.content);
    return `${out}${END_MESSAGE}\n`;
  }

  handleDATA(_server: SMTP, session: Session, envelope: Envelope): string {
    this.stream.write(Debugging.format(session, envelope));
    return "250 OK";
  }
}

function formatContent(peer: string, content: Uint8Array | string | null): string {
  if (content === null) return "";
  let lines: string[];
  if (typeof content === "string") {
    lines = splitTextLines(content);
  } else {
    // Python decodes each line on its own with errors="replace"; a BOM is kept, not eaten.
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    lines = splitByteLines(content).map((line) => decoder.decode(line));
  }
  let out = "";
  let inHeaders = true;
  for (const line of lines) {
    if (inHeaders && line === "") {
      out += `X-Peer: ${peer}\n`;
      inHeaders = false;
    }
    out += `${line}\n`;
  }
  return out;
}
