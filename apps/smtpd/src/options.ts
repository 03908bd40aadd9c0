/**
 * Command line → options, without side effects: aiosmtpd's `parseargs()` (flags, defaults, the
 * `-l [HOST][:PORT]` rules and its exact error messages) plus smtpkit's extra flags. Nothing here
 * touches the process; file checks and reads are passed in, so every rule is unit-tested.
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { isIPv6 } from "node:net";
import { availableParallelism } from "node:os";
import {
  type AuthServerOptions,
  authOptions,
  KNOWN_MECHANISMS,
  parseMechanismList,
  parseUsersFile,
  type UserDatabase,
} from "@smtpkit/auth";
import { type Extensions, parseCidrList } from "@smtpkit/core";
import { pyStrRepr } from "@smtpkit/handlers";
import { Command, CommanderError, Option } from "commander";
import { describeExtensions, EXTENSIONS_HELP, parseExtensionList } from "./extensions.js";
import {
  type PolicyFlags,
  policyFlags,
  policyOptions,
  type RawPolicyFlags,
} from "./policy-flags.js";
import { addVerifyFlags, parseVerifyFlags, type VerifyFlags } from "./verify-flags.js";

export const PROGRAM = "smtpkit";
export const DEFAULT_HOST = "localhost";
export const DEFAULT_PORT = 8025;
export const DEFAULT_HANDLER = "Debugging";
/** smtpkit's default message size limit; unlike aiosmtpd's CLI (no limit), the help text is true. */
export const DEFAULT_SIZE = 33_554_432;

/** Everything the command line decided, before any file is read or socket opened. */
export interface CliOptions {
  /** Switch to user `nobody` after binding (no `-n`). */
  readonly setuid: boolean;
  /** `-c` value (built-in name or module path) and the positional CLASSARGS. */
  readonly handler: { readonly name: string; readonly args: readonly string[] };
  /** `-s`: the SIZE limit in bytes; 0 means none. */
  readonly size: number;
  readonly smtputf8: boolean;
  /** Number of `-d` flags. */
  readonly debug: number;
  /** `""` means every interface (Python's `create_server(host="")`). */
  readonly host: string;
  readonly port: number;
  /** A Unix socket path given to `-l` (then host and port are unused). */
  readonly path: string | null;
  /** STARTTLS certificate and key paths (both or neither). */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  /** `require_starttls`: true unless `--no-requiretls`; only meaningful with `tls`. */
  readonly requireTls: boolean;
  /** Implicit-TLS (SMTPS) certificate and key paths (both or neither). */
  readonly smtps: { readonly cert: string; readonly key: string } | null;
  /** `--tls-min-version`, `--tls-ciphers`: for STARTTLS and SMTPS alike. */
  readonly tlsSettings?: TlsSettings;
  readonly lmtp: boolean;
  readonly hostname: string | null;
  readonly ident: string | null;
  /** Seconds for each whole command line (idle time included). */
  readonly timeout: number | null;
  /** Seconds of credit a message body starts with. */
  readonly dataTimeout: number | null;
  /** Bytes per second a message body must average (0: no minimum). */
  readonly minDataRate: number | null;
  /** PROXY protocol header timeout in seconds; enables the PROXY protocol. */
  readonly proxyProtocol: number | null;
  readonly proxyTrust: readonly string[];
  /** `--proxy-untrusted refuse`: peers outside `--proxy-trust` get 554 instead of being served. */
  readonly proxyUntrusted: "serve" | "refuse";
  /** `--xclient`, `--xforward`: addresses or CIDR blocks trusted with XCLIENT / XFORWARD. */
  readonly xclient: readonly string[];
  readonly xforward: readonly string[];
  readonly commandCallLimit: number | null;
  readonly maxConnections: number | null;
  /** `--workers N|auto`: worker processes sharing the listening socket (1: no cluster). */
  readonly workers: number;
  /** `--log-format text|json`: aiosmtpd's `LEVEL:mail.log:` lines, or pino's JSON lines. */
  readonly logFormat: "text" | "json";
  /** `--metrics HOST:PORT`: where `/metrics` and `/healthz` are served; `null`: not served. */
  readonly metrics: { readonly host: string; readonly port: number } | null;
  /** `--auth-file`, `--auth-mechanisms`, `--auth-required`, `--no-auth-require-tls`. */
  readonly auth: {
    readonly file: string | null;
    readonly mechanisms: string[] | null;
    readonly required: boolean;
    readonly requireTls: boolean;
  };
  /** `--extensions`: the off-by-default ESMTP parameter extensions turned on. */
  readonly extensions: Extensions;
  /** `--max-connections-per-ip`, `--rate-limit-*`, `--max-auth-failures`, `--redis`. */
  readonly policy: PolicyFlags;
  /** `--verify`, `--verify-policy`, `--dns-server`. */
  readonly verify: VerifyFlags;
}

/** `run` with options, or `exit` after `--help`/`--version` or a usage error (code 2). */
export type ParseResult =
  | { readonly kind: "run"; readonly options: CliOptions }
  | {
      readonly kind: "exit";
      readonly code: number;
      readonly stdout: string;
      readonly stderr: string;
    };

export interface ParseEnvironment {
  /** Shown by `-v`; default `"0.0.0"`. */
  readonly version?: string;
  /** Whether a path exists (aiosmtpd's `Path.exists()`), relative paths against the cwd. */
  readonly exists: (path: string) => boolean;
}

/** A command-line mistake: printed as `smtpkit: error: <message>`, exit code 2 (argparse's). */
export class CliUsageError extends Error {
  override name = "CliUsageError";
  readonly exitCode = 2;
}

/** argparse's `parser.error()` line. */
export function formatUsageError(message: string): string {
  return `${PROGRAM}: error: ${message.replace(/\s*\n\s*/g, " ")}\n`;
}

interface RawOptions extends RawPolicyFlags {
  nosetuid?: boolean;
  class: string;
  size?: string;
  smtputf8?: boolean;
  debug: number;
  listen?: string | boolean;
  smtpscert?: string;
  smtpskey?: string;
  tlscert?: string;
  tlskey?: string;
  tlsMinVersion?: string;
  tlsCiphers?: string;
  requiretls: boolean;
  lmtp?: boolean;
  hostname?: string;
  ident?: string;
  timeout?: string;
  dataTimeout?: string;
  minDataRate?: string;
  proxyProtocol?: string;
  proxyTrust?: string[];
  proxyUntrusted?: "serve" | "refuse";
  xclient?: string[];
  xforward?: string[];
  commandCallLimit?: string;
  maxConnections?: string;
  workers?: string;
  logFormat?: string;
  metrics?: string;
  authFile?: string;
  authMechanisms?: string;
  authRequired?: boolean;
  authRequireTls: boolean;
  extensions?: string;
  verify?: string;
  verifyPolicy?: string;
  dnsServer?: string;
}

/** The end of `--help`: every built-in handler with its CLASSARGS, and what a module exports. */
const HANDLERS_HELP = `
Handlers (-c NAME [CLASSARGS...]):
  Debugging [stdout|stderr]   print each message (default handler, to stdout)
  Sink                        accept every message and discard it
  Mailbox DIR                 deliver into the Maildir DIR (created if missing)
  Proxy HOST PORT [MODE]      relay every message to the SMTP server HOST:PORT;
                              MODE transparent (default: the upstream's reply to
                              each command, per recipient) or atData
  JetStream URL SUBJECT       publish to NATS JetStream (URL nats://HOST:PORT)
  Message, AsyncMessage       abstract: subclass them in a module
  ./MODULE.js [ARGS...]       your module (relative to the current directory):
                              its default or \`handler\` export or MODULE.js#NAME;
                              a handler object, or a class with an optional
                              static fromCli(ARGS). Compile .ts to .js first (or
                              run Node >= 22.6 with --experimental-strip-types)
`;

/** The commander program; `out`/`err` collect what commander would print. */
export function buildProgram(
  version: string,
  out: (text: string) => void,
  err: (text: string) => void,
): Command {
  const program = new Command(PROGRAM)
    .description("An RFC 5321 SMTP server with extensions (aiosmtpd's command line, on smtpkit).")
    .version(`${PROGRAM} ${version}`, "-v, --version", "show the program's version number and exit")
    .option(
      "-n, --nosetuid",
      'do not switch to user "nobody" (without -n the server does, and exits if it cannot, e.g. when not run as root)',
    )
    .option(
      "-c, --class <HANDLER>",
      "the handler: a built-in (see Handlers below) or a path to a .js/.mjs/.cjs module",
      DEFAULT_HANDLER,
    )
    .option(
      "-s, --size <SIZE>",
      `restrict the total size of the incoming message to SIZE bytes via the RFC 1870 SIZE extension (0: no limit) (default: ${DEFAULT_SIZE})`,
    )
    .option("-u, --smtputf8", "enable the SMTPUTF8 extension as defined in RFC 6531")
    .option(
      "-d, --debug",
      "increase debugging output; every -d increases the level by one",
      (_value: string, previous: number) => previous + 1,
      0,
    )
    .option(
      "-l, --listen [HOST][:PORT]",
      `where to listen: HOST:PORT, :PORT (on ${DEFAULT_HOST}), HOST (port ${DEFAULT_PORT}), [IPV6]:PORT such as [::1]:25 or [::]:25, or a Unix socket path containing a / (default: ${DEFAULT_HOST}:${DEFAULT_PORT})`,
    )
    .option("--smtpscert <CERTFILE>", "certificate file for SMTPS (implicit TLS); needs --smtpskey")
    .option("--smtpskey <KEYFILE>", "key file for SMTPS (implicit TLS); needs --smtpscert")
    .option("--tlscert <CERTFILE>", "certificate file for STARTTLS; needs --tlskey")
    .option("--tlskey <KEYFILE>", "key file for STARTTLS; needs --tlscert")
    .addOption(
      new Option(
        "--tls-min-version <VERSION>",
        "oldest TLS version accepted (default: TLSv1.2)",
      ).choices(TLS_VERSIONS),
    )
    .option("--tls-ciphers <LIST>", "TLS 1.2 cipher suites, in OpenSSL's cipher list format")
    .option(
      "--no-requiretls",
      "do not require STARTTLS before mail transactions (by default it is required when --tlscert is given); needs --tlscert",
    )
    .option("--lmtp", "speak LMTP (RFC 2033) instead of SMTP")
    .option(
      "--hostname <NAME>",
      "the server's host name in the greeting and EHLO reply (default: this machine's)",
    )
    .option("--ident <TEXT>", "the software name in the 220 greeting (default: smtpkit)")
    .option(
      "--timeout <SECONDS>",
      "seconds a client has for each whole command line, idle time included, before 421 and close (default: 300)",
    )
    .option(
      "--data-timeout <SECONDS>",
      "seconds of credit a message body starts with; each chunk adds its size / --min-data-rate (default: 180)",
    )
    .option(
      "--min-data-rate <BYTES>",
      "bytes per second a message body must average, 0 for no minimum (default: 500)",
    )
    .option(
      "--proxy-protocol <SECONDS>",
      "expect a PROXY protocol v1/v2 header first, waiting at most SECONDS for it",
    )
    .addOption(
      new Option(
        "--proxy-trust <CIDR...>",
        "addresses or CIDR blocks allowed to send PROXY headers (comma-separated or repeated; default: any); put -- before CLASSARGS that follow it",
      ),
    )
    .addOption(
      new Option(
        "--proxy-untrusted <WHAT>",
        "what peers outside --proxy-trust get: served as direct clients, or refused with 554 (default: serve)",
      ).choices(["serve", "refuse"]),
    )
    .addOption(
      new Option(
        "--xclient <CIDR...>",
        "addresses or CIDR blocks trusted with XCLIENT (Postfix): they may name the client they relay for",
      ),
    )
    .addOption(
      new Option(
        "--xforward <CIDR...>",
        "addresses or CIDR blocks trusted with XFORWARD (Postfix): the up-stream client of each message",
      ),
    )
    .option("--command-call-limit <N>", "how often one command may be used per connection")
    .option("--max-connections <N>", "maximum simultaneous connections (default: unlimited)")
    .option(
      "--workers <N|auto>",
      "serve with N worker processes sharing the socket (auto: one per core; Node only)",
    )
    .option(
      "--log-format <text|json>",
      "text: aiosmtpd's LEVEL:mail.log:message lines (sessions logged with -d); json: one JSON object per line (pino), sessions at info, -d adds commands and replies, -dd the transcript (default: text)",
    )
    .option(
      "--metrics <HOST:PORT>",
      "serve Prometheus metrics on http://HOST:PORT/metrics (and /healthz); with --workers, summed over the workers",
    )
    .option(
      "--auth-file <FILE>",
      "users for AUTH: `user:password` lines, or hashed ({SCRAM-SHA-256}…, bcrypt $2b$…)",
    )
    .option(
      "--auth-mechanisms <LIST>",
      "AUTH mechanisms to offer, comma separated; needs --auth-file (default: PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-1, and their -PLUS, and CRAM-MD5 with plain-text passwords)",
    )
    .option(
      "--auth-required",
      "require AUTH before MAIL, RCPT, DATA, VRFY and HELP; needs --auth-file",
    )
    .option("--no-auth-require-tls", "offer PLAIN and LOGIN without TLS too; needs --auth-file")
    .option("--extensions <LIST>", EXTENSIONS_HELP)
    .argument("[CLASSARGS...]", "additional arguments passed to the handler's fromCli()")
    .helpOption("-h, --help", "show this help message and exit")
    .addHelpText("after", HANDLERS_HELP)
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err, outputError: () => {} });
  for (const option of policyOptions()) program.addOption(option);
  addVerifyFlags(program);
  return program;
}

/** Python's `int()` on a command-line string (whitespace, sign and `_` between digits allowed). */
function pyInt(text: string): number | null {
  return /^\s*[+-]?\d+(?:_\d+)*\s*$/.test(text) ? Number(text.replace(/_/g, "")) : null;
}

function positiveInt(flag: string, text: string | undefined, min: number): number | null {
  if (text === undefined) return null;
  const value = pyInt(text);
  if (value === null || !Number.isSafeInteger(value)) {
    throw new CliUsageError(`argument ${flag}: invalid int value: ${pyStrRepr(text)}`);
  }
  if (value < min) throw new CliUsageError(`argument ${flag}: must be at least ${min}`);
  return value;
}

function seconds(flag: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  const value = /^\s*[+]?(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(value)) {
    throw new CliUsageError(`argument ${flag}: invalid float value: ${pyStrRepr(text)}`);
  }
  if (value <= 0) throw new CliUsageError(`argument ${flag}: must be greater than 0`);
  return value;
}

function listenPort(portText: string): number {
  if (portText === "") return DEFAULT_PORT;
  const value = pyInt(portText);
  // Python's int() accepts any size; an out-of-range port would only fail later at bind time.
  if (value === null || value < 0 || value > 65535) {
    throw new CliUsageError(`Invalid port number: ${portText}`);
  }
  return value;
}

/**
 * aiosmtpd's `-l` rule: split on the last `:`; no colon → HOST with port 8025; empty host →
 * localhost; empty port → 8025. (`::0:25` → `::0` port 25; `::1` alone → host `:` port 1.)
 * smtpkit's additions: `[IPV6]`, `[IPV6]:PORT` (`[::1]:25`, `[::]:25`) and a Unix socket path.
 */
export function parseListen(listen: string | boolean | undefined): {
  host: string;
  port: number;
  path?: string;
} {
  if (listen === undefined || listen === true || listen === false) {
    return { host: DEFAULT_HOST, port: DEFAULT_PORT };
  }
  // smtpkit's addition: a value with a "/" is a Unix socket path (`-l /run/lmtp.sock`).
  if (listen.includes("/")) return { host: DEFAULT_HOST, port: DEFAULT_PORT, path: listen };
  if (listen.startsWith("[")) {
    const match = /^\[([^\]]*)\](?::(.*))?$/.exec(listen);
    if (!match) {
      throw new CliUsageError(
        `argument -l/--listen: ${listen}: expected [IPV6] or [IPV6]:PORT, e.g. [::1]:8025`,
      );
    }
    const address = match[1] ?? "";
    if (!isIPv6(address)) {
      throw new CliUsageError(
        address === ""
          ? `argument -l/--listen: ${listen}: no IPv6 address between the brackets`
          : `argument -l/--listen: ${listen}: ${address} is not an IPv6 address`,
      );
    }
    return { host: address, port: listenPort(match[2] ?? "") };
  }
  const colon = listen.lastIndexOf(":");
  if (colon === -1) return { host: listen, port: DEFAULT_PORT };
  const host = listen.slice(0, colon);
  const port = listenPort(listen.slice(colon + 1));
  return { host: host === "" ? DEFAULT_HOST : host, port };
}

function logFormat(format: string | undefined): "text" | "json" {
  if (format === undefined || format === "text" || format === "json") return format ?? "text";
  throw new CliUsageError(
    `argument --log-format: invalid choice: ${pyStrRepr(format)} (choose from 'text', 'json')`,
  );
}

/** `--metrics HOST:PORT` (`:PORT` is localhost; `[IPV6]:PORT` as for -l). */
function metricsAddress(value: string | undefined): { host: string; port: number } | null {
  if (value === undefined) return null;
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new CliUsageError(
      `argument --metrics: ${value}: expected HOST:PORT, e.g. 127.0.0.1:9464`,
    );
  }
  return { host: match[1] ?? (match[2] || "localhost"), port };
}

function authFile(path: string | undefined, exists: (path: string) => boolean): string | null {
  if (path === undefined) return null;
  if (!exists(path)) throw new CliUsageError(`Auth file ${path} not found`);
  return path;
}

function authMechanisms(list: string | undefined): string[] | null {
  if (list === undefined) return null;
  const names = parseMechanismList(list);
  const unknown = names.filter((name) => !(KNOWN_MECHANISMS as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new CliUsageError(
      `argument --auth-mechanisms: unknown mechanism ${unknown[0] ?? "(none)"}; choose from ${KNOWN_MECHANISMS.join(", ")}`,
    );
  }
  return names;
}

const TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;

/** What `--tls-min-version` and `--tls-ciphers` set on every certificate. */
export interface TlsSettings {
  readonly minVersion?: (typeof TLS_VERSIONS)[number];
  readonly ciphers?: string;
}

function tlsSettings(raw: RawOptions, withTls: boolean): { tlsSettings?: TlsSettings } {
  const { tlsMinVersion: minVersion, tlsCiphers: ciphers } = raw;
  if (minVersion === undefined && ciphers === undefined) return {};
  const flag = minVersion !== undefined ? "--tls-min-version" : "--tls-ciphers";
  if (!withTls) throw new CliUsageError(`argument ${flag}: needs --tlscert or --smtpscert`);
  return {
    tlsSettings: {
      ...(minVersion !== undefined && { minVersion: minVersion as (typeof TLS_VERSIONS)[number] }),
      ...(ciphers !== undefined && { ciphers }),
    },
  };
}

/** aiosmtpd's cert/key pairing and existence checks, in its order. */
function certPair(
  prefix: "smtps" | "tls",
  cert: string | undefined,
  key: string | undefined,
  exists: (path: string) => boolean,
): { cert: string; key: string } | null {
  // Python's `bool(Path(""))` is True (Path("") is "."), so only an absent flag counts as absent.
  if ((cert === undefined) !== (key === undefined)) {
    throw new CliUsageError(`--${prefix}cert and --${prefix}key must be specified together`);
  }
  if (cert === undefined || key === undefined) return null;
  if (!exists(cert)) throw new CliUsageError(`Cert file ${cert} not found`);
  if (!exists(key)) throw new CliUsageError(`Key file ${key} not found`);
  return { cert, key };
}

function validate(raw: RawOptions, classargs: string[], env: ParseEnvironment): CliOptions {
  // argparse converts `-s` while parsing, so its error comes before the others.
  const size = positiveInt("-s/--size", raw.size, 0) ?? DEFAULT_SIZE;
  const { host, port, path } = parseListen(raw.listen);
  const smtps = certPair("smtps", raw.smtpscert, raw.smtpskey, env.exists);
  const tls = certPair("tls", raw.tlscert, raw.tlskey, env.exists);
  const proxyProtocol = seconds("--proxy-protocol", raw.proxyProtocol);
  const proxyTrust = (raw.proxyTrust ?? [])
    .flatMap((entry) => entry.split(","))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (raw.proxyTrust !== undefined) {
    if (proxyProtocol === null) throw new CliUsageError("--proxy-trust requires --proxy-protocol");
    if (proxyTrust.length === 0)
      throw new CliUsageError("argument --proxy-trust: expected an address or CIDR block");
    try {
      parseCidrList(proxyTrust);
    } catch (error) {
      throw new CliUsageError(`argument --proxy-trust: ${(error as Error).message}`);
    }
  }
  if (raw.proxyUntrusted === "refuse" && proxyTrust.length === 0)
    throw new CliUsageError("--proxy-untrusted refuse requires --proxy-trust");
  const xclient = cidrList("--xclient", raw.xclient);
  const xforward = cidrList("--xforward", raw.xforward);
  // Flags that only mean something with STARTTLS or with a users file: without them the flag
  // would silently do nothing (or, for AUTH, leave a server nobody can log in to).
  if (raw.requiretls === false && tls === null) {
    throw new CliUsageError(
      "argument --no-requiretls: needs --tlscert and --tlskey (it only relaxes STARTTLS)",
    );
  }
  if (raw.authFile === undefined) {
    const flag =
      raw.authRequired === true
        ? "--auth-required"
        : raw.authMechanisms !== undefined
          ? "--auth-mechanisms"
          : raw.authRequireTls === false
            ? "--no-auth-require-tls"
            : null;
    if (flag !== null) {
      // An unknown mechanism name is the more precise error.
      authMechanisms(raw.authMechanisms);
      throw new CliUsageError(
        `argument ${flag}: needs --auth-file (without a users file nobody can log in)`,
      );
    }
  }
  // Channel binding (SCRAM-*-PLUS) binds to a TLS connection: without TLS it is never offered.
  const plus = (authMechanisms(raw.authMechanisms) ?? []).find((name) => name.endsWith("-PLUS"));
  if (plus !== undefined && tls === null && smtps === null) {
    throw new CliUsageError(
      `argument --auth-mechanisms: ${plus} needs TLS (--tlscert/--tlskey or --smtpscert/--smtpskey)`,
    );
  }
  if (raw.hostname !== undefined && !/^[^\s]+$/.test(raw.hostname)) {
    throw new CliUsageError(`argument --hostname: invalid host name: ${pyStrRepr(raw.hostname)}`);
  }
  return {
    setuid: raw.nosetuid !== true,
    handler: { name: raw.class, args: classargs },
    size,
    smtputf8: raw.smtputf8 === true,
    debug: raw.debug,
    host,
    port,
    path: path ?? null,
    tls,
    requireTls: raw.requiretls,
    smtps,
    ...tlsSettings(raw, tls !== null || smtps !== null),
    lmtp: raw.lmtp === true,
    hostname: raw.hostname ?? null,
    ident: raw.ident ?? null,
    timeout: seconds("--timeout", raw.timeout),
    dataTimeout: seconds("--data-timeout", raw.dataTimeout),
    minDataRate: positiveInt("--min-data-rate", raw.minDataRate, 0),
    proxyProtocol,
    proxyTrust,
    proxyUntrusted: raw.proxyUntrusted ?? "serve",
    xclient,
    xforward,
    commandCallLimit: positiveInt("--command-call-limit", raw.commandCallLimit, 1),
    maxConnections: positiveInt("--max-connections", raw.maxConnections, 1),
    workers:
      raw.workers === "auto"
        ? availableParallelism()
        : (positiveInt("--workers", raw.workers, 1) ?? 1),
    logFormat: logFormat(raw.logFormat),
    metrics: metricsAddress(raw.metrics),
    auth: {
      file: authFile(raw.authFile, env.exists),
      mechanisms: authMechanisms(raw.authMechanisms),
      required: raw.authRequired === true,
      requireTls: raw.authRequireTls,
    },
    extensions: extensionList(raw.extensions),
    policy: policyFlags(raw),
    verify: parseVerifyFlags(raw, (message) => {
      throw new CliUsageError(message);
    }),
  };
}

function extensionList(list: string | undefined): Extensions {
  if (list === undefined) return {};
  try {
    return parseExtensionList(list);
  } catch (error) {
    throw new CliUsageError(`argument --extensions: ${(error as Error).message}`);
  }
}

/**
 * Parses `argv` (without `node` and the script). Never throws for user mistakes and never exits:
 * the caller prints `stdout`/`stderr` and exits with `code`.
 */
export function parseArgs(argv: readonly string[], env: ParseEnvironment): ParseResult {
  let stdout = "";
  let stderr = "";
  const program = buildProgram(
    env.version ?? "0.0.0",
    (text) => {
      stdout += text;
    },
    (text) => {
      stderr += text;
    },
  );
  try {
    program.parse([...argv], { from: "user" });
    return { kind: "run", options: validate(program.opts<RawOptions>(), program.args, env) };
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version: commander already wrote the text through writeOut.
      if (error.exitCode === 0) return { kind: "exit", code: 0, stdout, stderr };
      const message = error.message.replace(/^error: /, "");
      return { kind: "exit", code: 2, stdout, stderr: stderr + formatUsageError(message) };
    }
    if (error instanceof CliUsageError) {
      return {
        kind: "exit",
        code: error.exitCode,
        stdout,
        stderr: stderr + formatUsageError(error.message),
      };
    }
    throw error;
  }
}

/** The TLS material `serve()` takes (`tls.SecureContextOptions` subset). */
export interface TlsFiles extends TlsSettings {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

/** What the CLI hands to `@smtpkit/node`'s `serve()`. */
export interface CliServeOptions extends Partial<AuthServerOptions> {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  /** Session logging (`-d`); the server masks credentials. */
  readonly logger?: { error(m: string): void; info(m: string): void; debug(m: string): void };
  readonly hostname?: string;
  readonly ident?: string;
  readonly dataSizeLimit: number;
  readonly enableSmtpUtf8: boolean;
  readonly lmtp: boolean;
  readonly timeout?: number;
  readonly dataTimeout?: number;
  readonly minDataRate?: number;
  readonly proxyProtocolTimeout?: number;
  readonly proxyTrust?: readonly string[];
  readonly proxyUntrusted?: "refuse";
  readonly xclient?: readonly string[];
  readonly xforward?: readonly string[];
  readonly commandCallLimit?: number;
  readonly maxConnections?: number;
  readonly tls?: TlsFiles;
  readonly requireStartTls: boolean;
  readonly smtps?: TlsFiles;
  readonly extensions?: Extensions;
}

/**
 * Options → `serve()` options. `readFile` loads the PEM files (before privileges are dropped);
 * its errors become usage errors naming the file.
 */
export function toServeOptions(
  options: CliOptions,
  readFile: (path: string) => string | Buffer,
  defaults: { readonly hostname?: string } = {},
): CliServeOptions {
  const settings = options.tlsSettings;
  const load = (prefix: "smtps" | "tls", files: CliOptions["tls"]): TlsFiles | undefined =>
    files ? { ...loadTlsPair(prefix, files, readFile), ...settings } : undefined;
  const tls = load("tls", options.tls);
  const smtps = load("smtps", options.smtps);
  const hostname = options.hostname ?? defaults.hostname;
  return {
    // "" is every interface (Python's create_server(host="")): "::" is dual-stack where IPv6
    // exists; the CLI falls back to "0.0.0.0" where it does not.
    ...(options.path === null
      ? { host: options.host === "" ? "::" : options.host, port: options.port }
      : { path: options.path }),
    ...(hostname !== undefined && { hostname }),
    ...(options.ident !== null && { ident: options.ident }),
    dataSizeLimit: options.size,
    // aiosmtpd's CLI builds SMTP directly, so SMTPUTF8 is off unless -u (serve() defaults it on).
    enableSmtpUtf8: options.smtputf8,
    lmtp: options.lmtp,
    ...(options.timeout !== null && { timeout: options.timeout }),
    ...(options.dataTimeout !== null && { dataTimeout: options.dataTimeout }),
    ...(options.minDataRate !== null && { minDataRate: options.minDataRate }),
    ...(options.proxyProtocol !== null && { proxyProtocolTimeout: options.proxyProtocol }),
    ...(options.proxyTrust.length > 0 && { proxyTrust: options.proxyTrust }),
    ...(options.proxyUntrusted === "refuse" && { proxyUntrusted: "refuse" as const }),
    ...(options.xclient.length > 0 && { xclient: options.xclient }),
    ...(options.xforward.length > 0 && { xforward: options.xforward }),
    ...(options.commandCallLimit !== null && { commandCallLimit: options.commandCallLimit }),
    ...(options.maxConnections !== null && { maxConnections: options.maxConnections }),
    ...authServeOptions(options.auth, readFile),
    ...(tls && { tls }),
    // aiosmtpd: `require_starttls = tls_context and require_starttls`.
    requireStartTls: tls !== undefined && options.requireTls,
    ...(smtps && { smtps }),
    ...(Object.keys(options.extensions).length > 0 && { extensions: options.extensions }),
  };
}

/**
 * Reads a certificate/key pair and checks it before anything listens: the certificate parses, the
 * key parses (unencrypted), and the key belongs to the certificate. Errors name the flag and file.
 */
export function loadTlsPair(
  prefix: "smtps" | "tls",
  files: { readonly cert: string; readonly key: string },
  readFile: (path: string) => string | Buffer,
): TlsFiles {
  const load = (kind: "Cert" | "Key", path: string) => {
    try {
      return readFile(path);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CliUsageError(
        `argument --${prefix}${kind.toLowerCase()}: ${kind} file ${path} cannot be read (${reason})`,
      );
    }
  };
  const cert = load("Cert", files.cert);
  const key = load("Key", files.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new CliUsageError(
      `argument --${prefix}cert: Cert file ${files.cert} is not a certificate (expected PEM "BEGIN CERTIFICATE")`,
    );
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (error) {
    // Without a passphrase OpenSSL reports "interrupted or cancelled" (its prompt callback).
    const encrypted =
      /ENCRYPTED PRIVATE KEY|Proc-Type: 4,ENCRYPTED/.test(String(key)) ||
      (error as NodeJS.ErrnoException).code === "ERR_MISSING_PASSPHRASE";
    throw new CliUsageError(
      encrypted
        ? `argument --${prefix}key: Key file ${files.key} is an encrypted private key (no passphrase can be given; decrypt it)`
        : `argument --${prefix}key: Key file ${files.key} is not a private key (expected PEM "BEGIN PRIVATE KEY")`,
    );
  }
  if (!x509.checkPrivateKey(keyObject)) {
    throw new CliUsageError(
      `argument --${prefix}key: Key file ${files.key}: key does not match certificate ${files.cert}`,
    );
  }
  return { cert, key };
}

/**
 * The start-up line's summary of what is on, e.g. `SMTP, STARTTLS required, AUTH PLAIN LOGIN,
 * size 33554432, handler Debugging`.
 */
export function describeServer(
  options: CliOptions,
  serve: CliServeOptions,
  handlerLabel: string,
): string {
  const protocol = options.lmtp ? "LMTP" : "SMTP";
  // SMTPS/LMTPS: implicit TLS from the first byte.
  const parts: string[] = [serve.smtps ? `${protocol}S` : protocol];
  if (serve.tls && !serve.smtps) {
    parts.push(serve.requireStartTls ? "STARTTLS required" : "STARTTLS offered");
  }
  if (serve.mechanisms !== undefined) parts.push(describeAuth(serve));
  if (options.smtputf8) parts.push("SMTPUTF8");
  parts.push(...describeExtensions(options.extensions));
  parts.push(options.size > 0 ? `size ${options.size}` : "no size limit");
  if (options.proxyProtocol !== null) parts.push("PROXY protocol");
  parts.push(`handler ${handlerLabel}`);
  return parts.join(", ");
}

/**
 * The mechanisms a client can use, as the server offers them: without TLS only those that keep
 * the password safe in clear (unless `--no-auth-require-tls`), never a -PLUS one; with STARTTLS
 * offered, the rest after it: `AUTH SCRAM-SHA-256, more after STARTTLS: PLAIN LOGIN`.
 */
function describeAuth(serve: CliServeOptions): string {
  const excluded = serve.authExcludeMechanism ?? [];
  const mechanisms = [
    ...["PLAIN", "LOGIN"]
      .filter((name) => !excluded.includes(name))
      .map((name) => ({ name, safeWithoutTls: false })),
    ...(serve.mechanisms ?? []),
  ];
  const inClear = mechanisms
    .filter(
      (m) =>
        !m.name.endsWith("-PLUS") && (serve.authRequireTls === false || m.safeWithoutTls === true),
    )
    .map((m) => m.name);
  const all = mechanisms.map((m) => m.name);
  const head = `AUTH${serve.authRequired ? " required" : ""}`;
  const list = (names: readonly string[]) => (names.length > 0 ? names.join(" ") : "(none)");
  // TLS from the first byte, or before any command: every mechanism.
  if (serve.smtps || (serve.tls && serve.requireStartTls)) return `${head} ${list(all)}`;
  if (!serve.tls) return `${head} ${inClear.length > 0 ? list(inClear) : "(none without TLS)"}`;
  const later = all.filter((name) => !inClear.includes(name));
  return later.length === 0
    ? `${head} ${list(inClear)}`
    : `${head} ${list(inClear)}, more after STARTTLS: ${later.join(" ")}`;
}

/** The AUTH flags as server options (nothing when no AUTH flag was given: aiosmtpd's defaults). */
function authServeOptions(
  auth: CliOptions["auth"],
  readFile: (path: string) => string | Buffer,
): Partial<AuthServerOptions> {
  if (auth.file === null && auth.mechanisms === null && !auth.required && auth.requireTls)
    return {};
  let users: UserDatabase | undefined;
  if (auth.file !== null) {
    try {
      users = parseUsersFile(String(readFile(auth.file)));
    } catch (error) {
      throw new CliUsageError(`Auth file ${auth.file}: ${(error as Error).message}`);
    }
  }
  return authOptions({
    ...(users && { users }),
    ...(auth.mechanisms && { mechanisms: auth.mechanisms }),
    required: auth.required,
    requireTls: auth.requireTls,
  });
}

/** `-d` count → log level: 0 errors only, 1 info, 2+ debug (aiosmtpd's `mail.log` levels). */
export function logLevel(debug: number): "error" | "info" | "debug" {
  if (debug <= 0) return "error";
  return debug === 1 ? "info" : "debug";
}

/** A `--xclient` / `--xforward` list: comma-separated or repeated, each entry checked. */
function cidrList(flag: string, raw: readonly string[] | undefined): string[] {
  if (raw === undefined) return [];
  const list = raw
    .flatMap((entry) => entry.split(","))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (list.length === 0)
    throw new CliUsageError(`argument ${flag}: expected an address or CIDR block`);
  try {
    parseCidrList(list);
  } catch (error) {
    throw new CliUsageError(`argument ${flag}: ${(error as Error).message}`);
  }
  return list;
}
