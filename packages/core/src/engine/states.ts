/**
 * The engine's state machine, as data (h11's `_state.py`): the phases, the dialog state, every
 * transition between phases and what it resets, and per command what it needs before it runs.
 *
 * Two rules, as h11 writes its own at the top of its state file:
 *  1. The phase changes only through `TRANSITIONS` (the connection's `transition()`); no other
 *     code assigns it. A transition not listed for the current phase is a bug in the engine.
 *  2. A transition that resets the transaction while a body is open (a non-LAST BDAT chunk was
 *     read, or DATA is being read) and does not end that body itself aborts it: the connection
 *     emits `bodyEnd` with error `"aborted"` before the event that follows (this happens in one
 *     place, the connection's `transition()`). So no body ever outlives its transaction.
 *
 * `COMMAND_RULES` says per verb which preconditions it needs and in which order they are
 * checked (aiosmtpd's reply order: the golden dialogs and the differential test pin it), where
 * the command's own syntax check runs among them, and which transition it triggers.
 */
import type { DataReader } from "../syntax/data-reader.js";

/** Where the engine is in the dialog. */
export type Phase =
  | "proxy" // waiting for a PROXY header
  | "command" // reading command lines
  | "reply" // an event awaits the program's decision
  | "data" // reading a DATA body
  | "bdat" // reading a BDAT chunk
  | "authResponse" // reading the answer to a 334 challenge
  | "paused" // STARTTLS accepted, waiting for tlsEstablished()
  | "closed";

export const PHASES: readonly Phase[] = [
  "proxy",
  "command",
  "reply",
  "data",
  "bdat",
  "authResponse",
  "paused",
  "closed",
];

/** A BDAT chunk being read. */
export interface BdatChunk {
  remaining: number;
  readonly last: boolean;
  readonly size: number;
  /** When set, the chunk is read and thrown away, then this reply is sent. */
  readonly rejectWith: import("../reply.js").Reply | null;
  /** The rejection also ends the transaction's body (a limit was crossed mid-message). */
  readonly abortsBody: boolean;
}

/** The message body of the open transaction, from `dataStart` to `bodyEnd`. */
export interface Body {
  readonly via: "DATA" | "BDAT";
  /** DATA: the body reader; BDAT: null. */
  reader: DataReader | null;
  /** BDAT: octets accepted in earlier chunks. */
  size: number;
}

/** All of the dialog's state, in one place. */
export interface DialogState {
  phase: Phase;
  // Session (reset by the TLS handshake after STARTTLS).
  helloVerb: "HELO" | "EHLO" | "LHLO" | null;
  tls: boolean;
  tlsRefused: boolean;
  /** The greeting was refused with a 5xx (RFC 5321 §3.1): everything but QUIT gets 503. */
  greetingRefused: boolean;
  authenticated: boolean;
  /** XCLIENT / XFORWARD may be used by this client (the program decides, `trustRelay()`). */
  xclientTrusted: boolean;
  xforwardTrusted: boolean;
  // Transaction (reset by HELO/EHLO/LHLO, RSET, STARTTLS, QUIT, the end of a body, closing).
  mailFrom: string | null;
  recipients: string[];
  /** The transaction's MAIL had BODY=BINARYMIME: its body may only come by BDAT (RFC 3030). */
  binaryMime: boolean;
  /** The open body; `null` when none (or the transaction has not reached DATA/BDAT). */
  body: Body | null;
  /** The BDAT chunk being read, accepted or refused (its bytes are read either way). */
  chunk: BdatChunk | null;
}

export type Trigger =
  | "proxyHeader"
  | "proxyAccepted"
  | "connect"
  | "await"
  | "hello"
  | "rset"
  | "quit"
  | "decided"
  | "dataStart"
  | "bdatChunk"
  | "chunkDone"
  | "bodyComplete"
  | "bodyFailed"
  | "bodyAnswered"
  | "challenge"
  | "authAborted"
  | "startTls"
  | "tlsEstablished"
  | "xclientAccepted"
  | "close";

export interface Transition {
  readonly from: readonly Phase[] | "*";
  readonly to: Phase;
  /** Transaction: MAIL FROM, recipients; an open body is aborted unless `body` is "end". */
  readonly transaction?: true;
  /** Session: greeting, authentication, TLS refusal (the transaction goes too). */
  readonly session?: true;
  /** The body: "open" starts one (`dataStart`), "end" closes it (`bodyEnd` already emitted). */
  readonly body?: "open" | "end";
  /** Buffered input is thrown away unread (STARTTLS, closing). */
  readonly discardInput?: true;
  readonly note: string;
}

export const TRANSITIONS: Readonly<Record<Trigger, Transition>> = {
  proxyHeader: { from: ["proxy"], to: "reply", note: "PROXY header" },
  proxyAccepted: { from: ["reply"], to: "command", note: "accept(): 220 greeting" },
  connect: {
    from: ["command"],
    to: "reply",
    note: "deferGreeting: the greeting awaits a decision",
  },
  await: { from: ["command", "authResponse"], to: "reply", note: "event awaits a decision" },
  hello: { from: ["command"], to: "reply", transaction: true, note: "HELO/EHLO/LHLO" },
  rset: { from: ["command"], to: "reply", transaction: true, note: "RSET" },
  quit: { from: ["command"], to: "reply", transaction: true, note: "QUIT" },
  decided: { from: ["reply"], to: "command", note: "accept() / reply()" },
  dataStart: { from: ["command"], to: "data", body: "open", note: "DATA: 354" },
  bdatChunk: { from: ["command"], to: "bdat", note: "BDAT n [LAST]" },
  chunkDone: { from: ["bdat"], to: "command", note: "chunk read" },
  bodyComplete: { from: ["data", "bdat"], to: "reply", body: "end", note: "bodyEnd" },
  bodyFailed: {
    from: ["data", "bdat"],
    to: "command",
    transaction: true,
    body: "end",
    note: "bodyEnd with a limit error",
  },
  bodyAnswered: { from: ["reply"], to: "command", transaction: true, note: "body answered" },
  challenge: { from: ["reply"], to: "authResponse", note: "challenge(): 334" },
  authAborted: { from: ["authResponse"], to: "command", note: "* / bad base64 / long line" },
  startTls: {
    from: ["command"],
    to: "paused",
    transaction: true,
    discardInput: true,
    note: "STARTTLS: 220",
  },
  tlsEstablished: {
    from: ["paused"],
    to: "command",
    session: true,
    transaction: true,
    discardInput: true,
    note: "tlsEstablished()",
  },
  xclientAccepted: {
    from: ["reply"],
    to: "command",
    session: true,
    transaction: true,
    note: "XCLIENT accepted: a fresh session, greeted again",
  },
  close: {
    from: "*",
    to: "closed",
    transaction: true,
    discardInput: true,
    note: "QUIT answered, EOF, 421, limits",
  },
};

/**
 * A precondition a command may need. Each maps to the reply sent when it fails (see `CHECKS` in
 * `commands/index.ts`); `"syntax"` marks where the command's own argument check runs.
 */
export type Check =
  | "greeting" // HELO/EHLO/LHLO accepted, else 503 send HELO first
  | "greetingEhlo" // the same, with AUTH's text (503 send EHLO first)
  | "extended" // EHLO/LHLO, not HELO (AUTH: 500 command 'AUTH' not recognized)
  | "auth" // authenticated, when auth.required (530)
  | "authTls" // AUTH: the mechanism may be used on this connection (538)
  | "notAuthenticated" // AUTH: not already (503)
  | "transaction" // MAIL accepted (503 need MAIL)
  | "noTransaction" // no MAIL yet (503 nested MAIL)
  | "recipients" // a recipient accepted (503 need RCPT)
  | "argument" // an argument is given (501 Syntax)
  | "noArgument" // no argument (501 Syntax), aiosmtpd's `if arg:` after stripping
  | "notBdatBody" // DATA: no BDAT body open (503)
  | "notBinaryMime" // DATA: MAIL had no BODY=BINARYMIME (503)
  | "tlsOffered" // STARTTLS offered (454)
  | "notTls" // not under TLS yet (503)
  | "noMailTransaction" // XCLIENT/XFORWARD: no MAIL yet (503 MAIL transaction in progress)
  | "relayTrusted" // XCLIENT/XFORWARD: this client may use it (550 insufficient authorization)
  | "syntax"; // the command's own parse step

export interface CommandRule {
  /** Checked in this order; the first failure is the reply. */
  readonly checks: readonly Check[];
  /** Allowed before STARTTLS when `requireStartTls` is on. */
  readonly beforeStartTls: boolean;
  /** Allowed after the program refused the TLS session (`tlsEstablished({ accepted: false })`). */
  readonly whenTlsRefused: boolean;
  /** The transition the command triggers when its checks pass (and so what it resets). */
  readonly trigger: Trigger | null;
}

const rule = (
  checks: readonly Check[],
  trigger: Trigger | null = "await",
  beforeStartTls = false,
  whenTlsRefused = false,
): CommandRule => ({ checks, trigger, beforeStartTls, whenTlsRefused });

/**
 * Built-in verbs. Line-level checks run first, for every verb, in this order: line length,
 * `whenTlsRefused`, `beforeStartTls`, the call limit; then `checks`.
 */
export const COMMAND_RULES: Readonly<Record<string, CommandRule>> = {
  HELO: rule(["argument"], "hello"),
  EHLO: rule(["argument"], "hello", true),
  // LHLO is allowed before STARTTLS, as EHLO is (README: From aiosmtpd).
  LHLO: rule(["argument"], "hello", true),
  NOOP: rule([], "await", true),
  QUIT: rule(["noArgument"], "quit", true, true),
  RSET: rule(["noArgument"], "rset"),
  VRFY: rule(["auth", "argument", "syntax"]),
  EXPN: rule([], null),
  HELP: rule(["auth"], null),
  MAIL: rule(["greeting", "auth", "syntax", "noTransaction"]),
  RCPT: rule(["greeting", "auth", "transaction", "syntax"]),
  DATA: rule(
    ["greeting", "auth", "recipients", "noArgument", "notBdatBody", "notBinaryMime"],
    "dataStart",
  ),
  // BDAT: a failed check after the syntax still reads (and drops) the chunk.
  BDAT: rule(["syntax", "greeting", "auth", "recipients"], "bdatChunk"),
  AUTH: rule(["greetingEhlo", "extended", "authTls", "notAuthenticated", "syntax"]),
  STARTTLS: rule(["noArgument", "tlsOffered", "notTls"], "startTls", true),
  // Postfix's order; XCLIENT is allowed before STARTTLS (a proxy may speak it in clear).
  XCLIENT: rule(["noMailTransaction", "argument", "relayTrusted", "syntax"], "await", true),
  XFORWARD: rule(["noMailTransaction", "argument", "relayTrusted", "syntax"]),
};

/** The rule for verbs not in the table (unknown and added commands). */
export const DEFAULT_RULE: CommandRule = rule([], null);

/** A fresh dialog state. */
export function initialState(tls: boolean, proxy: boolean): DialogState {
  return {
    phase: proxy ? "proxy" : "command",
    helloVerb: null,
    tls,
    tlsRefused: false,
    greetingRefused: false,
    authenticated: false,
    xclientTrusted: false,
    xforwardTrusted: false,
    mailFrom: null,
    recipients: [],
    binaryMime: false,
    body: null,
    chunk: null,
  };
}

/** Renders the phases and `TRANSITIONS` as a Mermaid `stateDiagram-v2` (the README's diagram). */
export function stateDiagram(): string {
  const lines = ["stateDiagram-v2", "  [*] --> proxy: proxyProtocol", "  [*] --> command"];
  for (const [trigger, t] of Object.entries(TRANSITIONS) as [Trigger, Transition][]) {
    const from = t.from === "*" ? PHASES.filter((phase) => phase !== t.to) : t.from;
    const resets = [
      t.session ? "session" : "",
      t.transaction ? "transaction" : "",
      t.body ? `body ${t.body}` : "",
      t.discardInput ? "input" : "",
    ].filter(Boolean);
    const label = `${trigger}${resets.length > 0 ? ` [${resets.join(", ")}]` : ""}`;
    for (const phase of from) lines.push(`  ${phase} --> ${t.to}: ${label}`);
  }
  lines.push("  closed --> [*]");
  return `${lines.join("\n")}\n`;
}

/** Renders `COMMAND_RULES` as a Markdown table. */
export function commandTable(): string {
  const rows = [
    "| verb | checks, in order | before STARTTLS | after TLS refused | trigger |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const [verb, r] of Object.entries(COMMAND_RULES)) {
    rows.push(
      `| ${verb} | ${r.checks.join(", ") || "-"} | ${r.beforeStartTls ? "yes" : "no"} | ${r.whenTlsRefused ? "yes" : "no"} | ${r.trigger ?? "-"} |`,
    );
  }
  return `${rows.join("\n")}\n`;
}
