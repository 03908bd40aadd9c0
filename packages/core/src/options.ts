import type { LineEndingPolicy } from "./syntax/data-reader.js";

/** A command added or replaced by the program (aiosmtpd: an `smtp_VERB` method with `@syntax`). */
export interface CommandSpec {
  /** Shown by `HELP VERB`, e.g. `"PING [ignored]"`. Commands without it are not listed by `HELP`. */
  readonly syntax?: string;
  /** Appended to the syntax text in an ESMTP session. */
  readonly extendedSyntax?: string;
}

/** Switchable service extensions, each advertised in the EHLO/LHLO reply when on. */
export interface Extensions {
  /** RFC 1870; the limit itself is `dataSizeLimit`. Default true. */
  readonly size?: boolean;
  /** RFC 6152 `BODY=7BIT|8BITMIME`. aiosmtpd turns it off with `decode_data`. Default true. */
  readonly eightBitMime?: boolean;
  /** RFC 6531. Default false, as aiosmtpd's SMTP class. */
  readonly smtpUtf8?: boolean;
  /** RFC 2920 (always on in LMTP). Default true. */
  readonly pipelining?: boolean;
  /** RFC 2034: an enhanced code on every reply (always on in LMTP). Default true; false sends aiosmtpd's plain texts. */
  readonly enhancedStatusCodes?: boolean;
  /** RFC 3030 BDAT. Default true. */
  readonly chunking?: boolean;
  /** RFC 3461 parameters (RET, ENVID, NOTIFY, ORCPT), validated and passed to the program. Default false. */
  readonly dsn?: boolean;
  /** RFC 8689 `REQUIRETLS` MAIL parameter, offered only under TLS. Default false. */
  readonly requireTls?: boolean;
  /** RFC 3030 `BODY=BINARYMIME`, offered only with `chunking` and `eightBitMime`; such a body must come by BDAT. Default false. */
  readonly binaryMime?: boolean;
  /** RFC 9422 `LIMITS RCPTMAX=… MAILMAX=…` from `maxRecipients` and the MAIL call limit. Default true. */
  readonly limits?: boolean;
  /** RFC 6710 `MT-PRIORITY=-9…9`; a string also names the priority profile (`"MIXER"`, `"STANAG4406"`, `"NSEP"`). Default false. */
  readonly mtPriority?: boolean | string;
  /** RFC 2852 `BY=<seconds>;N|R[T]`; `{ minimum }` advertises the shortest `R` time accepted, in seconds. Default false. */
  readonly deliverBy?: boolean | { readonly minimum?: number };
  /**
   * RFC 4865 `HOLDFOR=` / `HOLDUNTIL=`: `{ maxInterval }` is the longest hold in seconds (true: 7 days);
   * `now` the clock that `HOLDUNTIL` and the advertised latest date are measured against. Default false.
   */
  readonly futureRelease?: boolean | { readonly maxInterval?: number; readonly now?: () => number };
  /** RFC 7293 `RRVS=<date-time>[;C|R]` on RCPT. Default false. */
  readonly rrvs?: boolean;
  /** Extra EHLO keywords to advertise, e.g. `"XCLIENT ADDR NAME"`. */
  readonly keywords?: readonly string[];
  /** Extra MAIL / RCPT parameter keywords the program accepts (passed through unvalidated). */
  readonly mailParameters?: readonly string[];
  readonly rcptParameters?: readonly string[];
}

export interface AuthOptions {
  /** Mechanism names offered, e.g. `["PLAIN", "LOGIN"]`; matched case-insensitively. */
  readonly mechanisms: readonly string[];
  /** Offer AUTH only on encrypted connections (STARTTLS or implicit TLS). Default true. */
  readonly requireTls?: boolean;
  /** Mechanisms still offered in clear when `requireTls` is on (ones that never reveal the secret). */
  readonly clearTextMechanisms?: readonly string[];
  /** MAIL, RCPT, DATA, BDAT, HELP and VRFY answer 530 until authenticated. Default false. */
  readonly required?: boolean;
}

export interface ConnectionOptions {
  /** First word of the greeting and of the HELO/EHLO reply. Default `"localhost"`. */
  readonly hostname?: string;
  /** Rest of the greeting. Default `"smtpkit"`. */
  readonly ident?: string;
  /** LMTP (RFC 2033): LHLO instead of HELO/EHLO and one reply per recipient after the body. */
  readonly lmtp?: boolean;
  /** Maximum message size in octets; 0 or null for none. Default 33554432 (aiosmtpd's). */
  readonly dataSizeLimit?: number | null;
  /** Command line limit without CRLF, before ESMTP allowances. Default 512. */
  readonly commandSizeLimit?: number;
  /** DATA line limit including CRLF. Default 1001. */
  readonly lineLengthLimit?: number;
  /** Bare CR / bare LF in message bodies. Default `"allow"` (aiosmtpd's behaviour). */
  readonly lineEndings?: LineEndingPolicy;
  /** Local-part length limit (553 past it); 0 = none. Default 0. */
  readonly localPartLimit?: number;
  /** Accepted recipients per transaction (452 4.5.3 past it); 0 = none. Default 1000. */
  readonly maxRecipients?: number;
  /** Unknown commands allowed before the one that gets 502 and closes. Default 5, as aiosmtpd. */
  readonly maxUnknownCommands?: number;
  /** Per-verb call limit per connection: a number for all verbs, or by verb with `"*"` as default (missing keys: 20). */
  readonly commandCallLimit?: number | Readonly<Record<string, number>> | null;
  readonly extensions?: Extensions;
  /** STARTTLS is offered when true. */
  readonly startTls?: boolean;
  /** Before TLS only NOOP, EHLO, LHLO, STARTTLS and QUIT are allowed. */
  readonly requireStartTls?: boolean;
  /** The connection is already encrypted (implicit TLS, SMTPS). */
  readonly implicitTls?: boolean;
  readonly auth?: AuthOptions;
  /** Expect a PROXY protocol v1/v2 header before the greeting. */
  readonly proxyProtocol?: boolean;
  /**
   * Hold the greeting until the program decides (a `connect` event): greet with `accept()`,
   * refuse with `reply()`. For connection policy (block lists, greet pause).
   */
  readonly deferGreeting?: boolean;
  /** Added or replaced commands, by upper-case verb. */
  readonly commands?: Readonly<Record<string, CommandSpec>>;
  /**
   * XCLIENT and XFORWARD (Postfix) exist: clients not trusted with them get `550 5.7.0`, trusted
   * ones see them in the EHLO reply. Without this they are unknown commands.
   */
  readonly xclient?: boolean;
  readonly xforward?: boolean;
  /** The client starts trusted with XCLIENT / XFORWARD (`trustRelay()` changes it later). */
  readonly xclientTrusted?: boolean;
  readonly xforwardTrusted?: boolean;
}

/** Marks options already resolved, so a server can share one resolved set across connections. */
export const RESOLVED: unique symbol = Symbol("smtpkit.resolvedOptions");

export interface ResolvedOptions {
  readonly [RESOLVED]: true;
  readonly hostname: string;
  readonly ident: string;
  readonly lmtp: boolean;
  readonly dataSizeLimit: number;
  readonly commandSizeLimit: number;
  readonly lineLengthLimit: number;
  readonly lineEndings: LineEndingPolicy;
  readonly localPartLimit: number;
  readonly maxRecipients: number;
  readonly maxUnknownCommands: number;
  readonly commandCallLimit: number | Readonly<Record<string, number>> | null;
  readonly size: boolean;
  readonly eightBitMime: boolean;
  readonly smtpUtf8: boolean;
  readonly pipelining: boolean;
  readonly enhancedStatusCodes: boolean;
  readonly chunking: boolean;
  readonly dsn: boolean;
  readonly requireTlsParam: boolean;
  readonly binaryMime: boolean;
  readonly limits: boolean;
  /** MT-PRIORITY: `null` when off, else the profile advertised ("" for none). */
  readonly mtPriority: string | null;
  /** DELIVERBY: `null` when off, else the minimum `R` time in seconds (0: none advertised). */
  readonly deliverByMinimum: number | null;
  readonly futureRelease: { readonly maxInterval: number; readonly now: () => number } | null;
  readonly rrvs: boolean;
  readonly keywords: readonly string[];
  readonly mailParameters: ReadonlySet<string>;
  readonly rcptParameters: ReadonlySet<string>;
  readonly startTls: boolean;
  readonly requireStartTls: boolean;
  readonly implicitTls: boolean;
  readonly authMechanisms: readonly string[];
  readonly authRequireTls: boolean;
  readonly authClearText: ReadonlySet<string>;
  readonly authRequired: boolean;
  readonly proxyProtocol: boolean;
  readonly deferGreeting: boolean;
  readonly commands: ReadonlyMap<string, CommandSpec>;
  readonly xclient: boolean;
  readonly xforward: boolean;
  readonly xclientTrusted: boolean;
  readonly xforwardTrusted: boolean;
}

export const DEFAULT_DATA_SIZE_LIMIT = 33554432;
/** aiosmtpd's CALL_LIMIT_DEFAULT: the limit for verbs missing from a per-verb table. */
export const DEFAULT_CALL_LIMIT = 20;

export function resolveOptions(options: ConnectionOptions = {}): ResolvedOptions {
  const ext = options.extensions ?? {};
  const lmtp = options.lmtp ?? false;
  const upper = (list: readonly string[] | undefined) =>
    new Set((list ?? []).map((item) => item.toUpperCase()));
  const commands = new Map<string, CommandSpec>();
  for (const [verb, spec] of Object.entries(options.commands ?? {})) {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(verb))
      throw new TypeError(`Invalid command verb: ${verb}`);
    commands.set(verb.toUpperCase(), spec);
  }
  const limit = options.commandCallLimit ?? null;
  if (limit !== null && typeof limit !== "number" && typeof limit !== "object") {
    throw new TypeError("commandCallLimit must be a number or a record of numbers");
  }
  if (limit !== null && typeof limit === "object") {
    for (const value of Object.values(limit)) {
      if (typeof value !== "number")
        throw new TypeError("All commandCallLimit values must be numbers");
    }
  }
  return {
    [RESOLVED]: true,
    hostname: options.hostname ?? "localhost",
    ident: options.ident ?? "smtpkit",
    lmtp,
    dataSizeLimit:
      options.dataSizeLimit === undefined ? DEFAULT_DATA_SIZE_LIMIT : (options.dataSizeLimit ?? 0),
    commandSizeLimit: options.commandSizeLimit ?? 512,
    lineLengthLimit: options.lineLengthLimit ?? 1001,
    lineEndings: options.lineEndings ?? "allow",
    localPartLimit: options.localPartLimit ?? 0,
    maxRecipients: options.maxRecipients ?? 1000,
    maxUnknownCommands: options.maxUnknownCommands ?? 5,
    commandCallLimit: limit,
    size: ext.size ?? true,
    eightBitMime: ext.eightBitMime ?? true,
    smtpUtf8: ext.smtpUtf8 ?? false,
    pipelining: lmtp || (ext.pipelining ?? true),
    enhancedStatusCodes: lmtp || (ext.enhancedStatusCodes ?? true),
    chunking: ext.chunking ?? true,
    dsn: ext.dsn ?? false,
    requireTlsParam: ext.requireTls ?? false,
    binaryMime: (ext.binaryMime ?? false) && (ext.chunking ?? true) && (ext.eightBitMime ?? true),
    limits: ext.limits ?? true,
    mtPriority: resolveMtPriority(ext.mtPriority),
    deliverByMinimum: resolveDeliverBy(ext.deliverBy),
    futureRelease: resolveFutureRelease(ext.futureRelease),
    rrvs: ext.rrvs ?? false,
    keywords: ext.keywords ?? [],
    mailParameters: upper(ext.mailParameters),
    rcptParameters: upper(ext.rcptParameters),
    startTls: options.startTls ?? false,
    requireStartTls: (options.startTls ?? false) && (options.requireStartTls ?? false),
    implicitTls: options.implicitTls ?? false,
    authMechanisms: (options.auth?.mechanisms ?? []).map((name) => name.toUpperCase()),
    authRequireTls: options.auth?.requireTls ?? true,
    authClearText: upper(options.auth?.clearTextMechanisms),
    authRequired: options.auth?.required ?? false,
    proxyProtocol: options.proxyProtocol ?? false,
    deferGreeting: options.deferGreeting ?? false,
    commands,
    xclient: options.xclient ?? false,
    xforward: options.xforward ?? false,
    xclientTrusted: (options.xclient ?? false) && (options.xclientTrusted ?? false),
    xforwardTrusted: (options.xforward ?? false) && (options.xforwardTrusted ?? false),
  };
}

/** Seven days: the longest FUTURERELEASE hold when the option is just `true`. */
export const DEFAULT_MAX_HOLD = 7 * 24 * 3600;

function resolveMtPriority(value: boolean | string | undefined): string | null {
  if (value === undefined || value === false) return null;
  if (value === true) return "";
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(value)) {
    throw new TypeError(`Invalid MT-PRIORITY profile: ${value}`);
  }
  return value.toUpperCase();
}

function resolveDeliverBy(value: Extensions["deliverBy"]): number | null {
  if (value === undefined || value === false) return null;
  const minimum = value === true ? 0 : (value.minimum ?? 0);
  // RFC 2852 min-by-time = 1*9DIGIT.
  if (!Number.isInteger(minimum) || minimum < 0 || minimum > 999_999_999) {
    throw new TypeError("deliverBy.minimum must be a whole number of seconds below 10^9");
  }
  return minimum;
}

function resolveFutureRelease(
  value: Extensions["futureRelease"],
): ResolvedOptions["futureRelease"] {
  if (value === undefined || value === false) return null;
  const options = value === true ? {} : value;
  const maxInterval = options.maxInterval ?? DEFAULT_MAX_HOLD;
  // RFC 4865 max-future-release-interval = 1*9DIGIT.
  if (!Number.isInteger(maxInterval) || maxInterval < 1 || maxInterval > 999_999_999) {
    throw new TypeError(
      "futureRelease.maxInterval must be a whole number of seconds, 1 to 999999999",
    );
  }
  return { maxInterval, now: options.now ?? Date.now };
}
