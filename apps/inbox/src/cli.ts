#!/usr/bin/env node
/**
 * `smtpkit-inbox`: a test inbox in one process. Parse the flags, start SMTP and HTTP, print both
 * URLs, serve until SIGINT/SIGTERM.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Command, InvalidArgumentError, Option } from "commander";
import { type InboxOptions, startInbox } from "./inbox.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** `HOST:PORT`, `:PORT` or `PORT` (IPv6 in brackets). */
export function parseAddress(
  value: string,
  defaultHost = "127.0.0.1",
): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$|^(\d+)$/.exec(value);
  if (!match) throw new InvalidArgumentError("expected HOST:PORT, :PORT or PORT");
  const port = Number(match[3] ?? match[4]);
  if (port > 65535) throw new InvalidArgumentError("the port must be 0-65535");
  return { host: match[1] ?? (match[2] || defaultHost), port };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected an integer >= 0");
  return n;
}

/** `30s`, `15m`, `24h`, `7d` or milliseconds. */
function duration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value);
  if (!match) throw new InvalidArgumentError("expected a duration such as 90s, 15m, 24h, 7d");
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "ms"] ?? 1;
  return Number(match[1]) * unit;
}

const program = new Command("smtpkit-inbox")
  .description("A test inbox: SMTP in, SQLite storage, a Mailpit-compatible HTTP API and a web UI.")
  .version(version)
  .addOption(
    new Option("--smtp <address>", "SMTP (or LMTP) listen address").default("127.0.0.1:1025"),
  )
  .addOption(
    new Option("--http <address>", "HTTP listen address (API and UI)").default("127.0.0.1:8025"),
  )
  .addOption(new Option("--db <file>", 'SQLite database file, or ":memory:"').default(":memory:"))
  .option("--tlscert <file>", "certificate (PEM) for STARTTLS")
  .option("--tlskey <file>", "private key (PEM) for STARTTLS")
  .addOption(
    new Option("--auth-any", "offer AUTH PLAIN/LOGIN and accept any login").conflicts("authFile"),
  )
  .option("--auth-file <file>", "offer AUTH, checked against a users file (user:password lines)")
  .option("--lmtp", "speak LMTP instead of SMTP", false)
  .option("--size <bytes>", "largest message accepted (0: no limit)", positiveInt, 32 * 1024 * 1024)
  .option("--max-messages <n>", "keep at most this many messages", positiveInt)
  .option("--max-age <duration>", "delete messages older than this (90s, 15m, 24h, 7d)", duration);

program.parse();
const flags = program.opts<{
  smtp: string;
  http: string;
  db: string;
  tlscert?: string;
  tlskey?: string;
  authAny?: boolean;
  authFile?: string;
  lmtp: boolean;
  size: number;
  maxMessages?: number;
  maxAge?: number;
}>();

function fail(message: string): never {
  process.stderr.write(`smtpkit-inbox: error: ${message}\n`);
  process.exit(2);
}

let smtpAddress: { host: string; port: number };
let httpAddress: { host: string; port: number };
try {
  smtpAddress = parseAddress(flags.smtp);
  httpAddress = parseAddress(flags.http);
} catch (error) {
  fail((error as Error).message);
}
if (Boolean(flags.tlscert) !== Boolean(flags.tlskey)) fail("--tlscert and --tlskey go together");
const read = (file: string, flag: string) => {
  try {
    return readFileSync(file);
  } catch (error) {
    fail(`${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
};
const options: InboxOptions = {
  smtpHost: smtpAddress.host,
  smtpPort: smtpAddress.port,
  httpHost: httpAddress.host,
  httpPort: httpAddress.port,
  path: flags.db,
  lmtp: flags.lmtp,
  size: flags.size,
  ...(flags.maxMessages !== undefined && { maxMessages: flags.maxMessages }),
  ...(flags.maxAge !== undefined && { maxAge: flags.maxAge }),
  ...(flags.tlscert &&
    flags.tlskey && {
      tls: { cert: read(flags.tlscert, "--tlscert"), key: read(flags.tlskey, "--tlskey") },
    }),
  ...(flags.authAny && { auth: { any: true as const } }),
  ...(flags.authFile && { auth: { usersFile: String(read(flags.authFile, "--auth-file")) } }),
};

const inbox = await startInbox(options).catch((error: Error) => fail(error.message));
let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  inbox.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.stdout.write(
  `smtpkit-inbox ${version}\n  ${flags.lmtp ? "LMTP" : "SMTP"}: ${inbox.smtpUrl}\n  HTTP: ${inbox.httpUrl} (web UI and API)\n  database: ${flags.db}\n`,
);
