import type { SmtpEvent } from "../events.js";
import { printable } from "../reply.js";
import type { SmtpLogger } from "./smtp-options.js";
import type { PeerAddress } from "./transport.js";

export type LogLevel = "error" | "info" | "debug";

/** Writes one line to the logger, prefixed with the peer (`addr:port`, the socket path, or `-`). */
export function logLine(
  logger: SmtpLogger | undefined,
  peer: PeerAddress | null | undefined,
  level: LogLevel,
  message: string,
): void {
  if (!logger) return;
  const who = peer
    ? peer.family === "unix"
      ? peer.address || "unix"
      : `${peer.address}:${peer.port}`
    : "-";
  logger[level](`${who} ${message}`);
}

/** One line per event for the debug log; AUTH data is never shown. */
export function describeEvent(event: SmtpEvent): string {
  switch (event.type) {
    case "hello":
      return `> ${event.verb} ${event.hostname}`;
    case "mail":
      return `> MAIL FROM:<${event.address}>${withOptions(event.options)}`;
    case "rcpt":
      return `> RCPT TO:<${event.address}>${withOptions(event.options)}`;
    case "auth":
      return `> AUTH ${event.mechanism}${event.initialResponse ? " ********" : ""}`;
    case "authResponse":
      return "> ********";
    case "bodyEnd":
      return event.error
        ? `body refused: ${event.error} (${event.size} octets)`
        : `body received (${event.size} octets)`;
    case "rejected":
      // The reply itself is logged as it is sent (`< ...`).
      return `> ${event.verb} (refused with ${event.reply.code})`;
    case "command":
      return `> ${event.verb}${event.argument === null ? "" : ` ${event.argument}`}`;
    case "proxyHeader":
      return `PROXY v${event.proxy.version} from ${event.proxy.srcAddress}:${event.proxy.srcPort}`;
    case "vrfy":
      return `> vrfy ${event.address}`;
    case "dataStart":
      return `> dataStart (${event.via})`;
    default:
      return `> ${event.type}`;
  }
}

function withOptions(options: readonly string[]): string {
  return options.length > 0 ? ` ${options.join(" ")}` : "";
}

const DECODER = new TextDecoder();

/** The reply lines in bytes about to be sent, printable (control bytes escaped). */
export function sentLines(bytes: Uint8Array): string[] {
  return DECODER.decode(bytes)
    .split("\r\n")
    .filter((line) => line.length > 0)
    .map(printable);
}

/** The debug log's server side: each reply line sent, as `< 250 2.0.0 OK`. */
export function logSent(
  logger: SmtpLogger,
  peer: PeerAddress | null | undefined,
  bytes: Uint8Array,
): void {
  for (const line of sentLines(bytes)) logLine(logger, peer, "debug", `< ${line}`);
}
