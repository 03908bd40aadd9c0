/**
 * Sender verification as a `compose()` fragment: SPF when MAIL arrives, DKIM, ARC and DMARC over
 * the streamed message (kept in a `Spool` meanwhile), then `Authentication-Results:` (RFC 8601)
 * before the message and the verdicts on the envelope, and a policy.
 */
import { Readable } from "node:stream";
import type {
  BodyFilterResult,
  Envelope,
  Handler,
  HookResult,
  MessageBody,
  ServerContext,
  Session,
} from "@smtpkit/core/server";
import type { ARCResult, ARCSealOptions, DKIMResult, DMARCResult, SPFResult } from "mailauth";
import { type DnsResolver, dnsResolver } from "./resolver.js";
import { DEFAULT_SPOOL_THRESHOLD, Spool } from "./spool.js";

export type Check = "spf" | "dkim" | "dmarc" | "arc";
export const ALL_CHECKS: readonly Check[] = ["spf", "dkim", "dmarc", "arc"];

/**
 * What to do with the verdicts: `tag` only adds `Authentication-Results:`; `quarantine` also
 * marks a message failing DMARC whose domain asks for quarantine or rejection (`X-Quarantine:`,
 * `envelope.quarantine`); `reject` refuses (`550 5.7.1`) a message failing DMARC whose domain
 * publishes `p=reject` and quarantines on `p=quarantine`.
 */
export type VerifyPolicy = "tag" | "quarantine" | "reject";

export interface VerifyOptions {
  /** The checks to run (default all four). DMARC uses SPF's and DKIM's results when they run. */
  readonly checks?: readonly Check[] | undefined;
  /** Default `"tag"`. */
  readonly policy?: VerifyPolicy | undefined;
  /** The DNS server for every lookup, `"127.0.0.1:5353"` (default: the system's). */
  readonly dnsServer?: string | undefined;
  /** Milliseconds a DNS lookup may take in all (default 5000). */
  readonly dnsTimeout?: number | undefined;
  /** A resolver of your own (`dnsResolver()` or mailauth's shape); replaces `dnsServer`. */
  readonly resolver?: DnsResolver | undefined;
  /** The authserv-id in `Authentication-Results:` (default: the server's host name). */
  readonly authservId?: string | undefined;
  /**
   * A DNS failure (SPF, DKIM or DMARC `temperror`): `"defer"` (default) answers `451 4.7.x` so
   * the client retries later; `"tag"` accepts and records the temperror.
   */
  readonly onTempError?: "defer" | "tag" | undefined;
  /** Bytes of a message kept in memory during verification before it goes to a file (1 MiB). */
  readonly spoolThreshold?: number | undefined;
  /** Where the spool files go (default the system's temporary directory). */
  readonly spoolDir?: string | undefined;
  /** Shortest RSA key accepted for DKIM and ARC (default 1024). */
  readonly minBitLength?: number | undefined;
  /** ARC-seal every message whose chain is valid or absent, as this domain and selector. */
  readonly arcSeal?: ARCSealOptions | undefined;
}

/** The verdicts, on `envelope.authentication` for the delivery (`authenticationOf(envelope)`). */
export interface Authentication {
  readonly spf: SPFResult | null;
  /** One result per DKIM signature (a single `none` one for an unsigned message). */
  readonly dkim: readonly DKIMResult[] | null;
  readonly dmarc: DMARCResult | null;
  readonly arc: ARCResult | null;
  /** The `Authentication-Results:` field's value (what follows the colon, unfolded). */
  readonly header: string;
  /** What the policy decided. */
  readonly action: "accept" | "quarantine" | "reject" | "defer";
}

/** mailauth, loaded on first use: a server that verifies nothing does not pay its start-up. */
let mailauthModule: Promise<typeof import("mailauth")> | undefined;
const mailauth = () => {
  mailauthModule ??= import("mailauth");
  return mailauthModule;
};

/** SPF's verdict from MAIL, until the body arrives (one per transaction's envelope). */
const spfAtMail = new WeakMap<Envelope, SPFResult | null>();

/** The verdicts the verifier left on an envelope, or null (not verified yet). */
export function authenticationOf(envelope: Envelope): Authentication | null {
  return (envelope.authentication as Authentication | undefined) ?? null;
}

/** The sender-verification fragment: `compose(verifier({ dnsServer }), delivery)`. */
export function verifier(options: VerifyOptions = {}): Handler {
  return new Verifier(options);
}

export class Verifier implements Handler {
  [hook: `auth_${string}`]: unknown;
  readonly #checks: ReadonlySet<Check>;
  readonly #policy: VerifyPolicy;
  readonly #resolver: DnsResolver;
  readonly #options: VerifyOptions;

  constructor(options: VerifyOptions = {}) {
    this.#options = options;
    this.#checks = new Set(options.checks ?? ALL_CHECKS);
    for (const check of this.#checks) {
      if (!ALL_CHECKS.includes(check)) throw new TypeError(`verify: unknown check ${check}`);
    }
    this.#policy = options.policy ?? "tag";
    if (!["tag", "quarantine", "reject"].includes(this.#policy)) {
      throw new TypeError(`verify: unknown policy ${this.#policy}`);
    }
    this.#resolver =
      options.resolver ??
      dnsResolver({ server: options.dnsServer, timeout: options.dnsTimeout ?? 5000 });
  }

  async handleMAIL(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    address: string,
  ): Promise<HookResult> {
    spfAtMail.delete(envelope);
    if (!this.#checks.has("spf")) return undefined;
    let result: SPFResult | null;
    try {
      result = await this.#spf(server, session, address);
    } catch {
      // mailauth reports DNS trouble as temperror itself; anything else is no pass either.
      result = null;
      if (this.#defers) return "451 4.7.24 Temporary failure checking SPF, try again later";
    }
    spfAtMail.set(envelope, result);
    if (result?.status.result === "temperror" && this.#defers) {
      return "451 4.7.24 Temporary DNS failure checking SPF, try again later";
    }
    return undefined;
  }

  async filterBody(
    server: ServerContext,
    session: Session,
    envelope: Envelope,
    body: MessageBody,
  ): Promise<BodyFilterResult | HookResult> {
    const id = this.#options.authservId ?? server.hostname;
    const spfResult =
      spfAtMail.get(envelope) ??
      (this.#checks.has("spf") && envelope.mailFrom !== null
        ? await this.#spf(server, session, envelope.mailFrom)
        : null);
    const readsBody =
      this.#checks.has("dkim") || this.#checks.has("dmarc") || this.#checks.has("arc");
    if (!readsBody) {
      // SPF alone needs nothing from the body: it streams on unread.
      return this.#decide(envelope, id, spfResult, null, null, null);
    }

    const spool = new Spool(
      this.#options.spoolThreshold ?? DEFAULT_SPOOL_THRESHOLD,
      this.#options.spoolDir,
    );
    const tee = new BodyTee(body, spool);
    let handedOn = false;
    try {
      const { arc, createSeal, dkimVerify, dmarc } = await mailauth();
      const seal = this.#options.arcSeal;
      let dkim: Awaited<ReturnType<typeof import("mailauth")["dkimVerify"]>>;
      try {
        dkim = await dkimVerify(Readable.from(tee.chunks()), {
          resolver: this.#resolver,
          ...(envelope.mailFrom && envelope.mailFrom !== "<>" && { sender: envelope.mailFrom }),
          ...(this.#options.minBitLength !== undefined && {
            minBitLength: this.#options.minBitLength,
          }),
          ...(seal && { seal }),
        });
      } catch (error) {
        // The body did not complete (a limit, the client leaving): the server's reply stands.
        if (tee.error !== undefined) throw tee.error;
        throw error;
      }
      // mailauth stops reading at the end of the parse; what is left still belongs to the copy.
      await tee.finish();
      if (tee.error !== undefined) throw tee.error;

      const arcResult = this.#checks.has("arc")
        ? await arc(dkim.arc as Parameters<typeof arc>[0], {
            resolver: this.#resolver,
            ...(this.#options.minBitLength !== undefined && {
              minBitLength: this.#options.minBitLength,
            }),
          })
        : null;
      let dmarcResult: DMARCResult | null = null;
      if (this.#checks.has("dmarc") && dkim.headerFrom) {
        dmarcResult =
          (await dmarc({
            headerFrom: dkim.headerFrom,
            spfDomains:
              spfResult?.status.result === "pass" && spfResult.domain ? [spfResult.domain] : [],
            dkimDomains: (dkim.results ?? [])
              .filter((r) => r.status.result === "pass")
              .map((r) => ({
                id: r.id,
                domain: r.signingDomain,
                aligned: r.status.aligned,
                underSized: r.status.underSized,
              })),
            ...(arcResult && { arcResult }),
            resolver: this.#resolver,
          } as Parameters<typeof dmarc>[0])) || null;
      }
      const dkimResults = this.#checks.has("dkim") ? (dkim.results ?? []) : null;
      const decision = this.#decide(envelope, id, spfResult, dkimResults, dmarcResult, arcResult);
      if (isReply(decision)) return decision;
      if (seal && dkim.seal && arcResult && canSeal(arcResult)) {
        const sealed = await createSeal(false, {
          headers: dkim.headers,
          arc: dkim.arc,
          seal: {
            i: (arcResult.i || 0) + 1,
            cv: arcResult.status.result,
            authResults: `${id};\r\n ${arHeaderParts(spfResult, dkimResults, dmarcResult, arcResult).join(";\r\n ")}`,
            signTime: new Date(),
            ...dkim.seal,
          },
        });
        // The seal goes above Authentication-Results, the newest trace field on top.
        decision.prepend = `${sealed.headers.map((h) => h.replace(/\r?\n$/, "")).join("\r\n")}\r\n${decision.prepend}`;
      }
      handedOn = true;
      return { prepend: decision.prepend, body: spool.replay() };
    } catch (error) {
      if (tee.error !== undefined) throw tee.error;
      // A malformed message or a mailauth failure: never a silent pass, never a crash.
      void error;
      return "451 4.7.0 Temporary failure verifying the message, try again later";
    } finally {
      if (!handedOn) await spool.dispose();
    }
  }

  get #defers(): boolean {
    return (this.#options.onTempError ?? "defer") === "defer";
  }

  async #spf(server: ServerContext, session: Session, address: string): Promise<SPFResult | null> {
    const ip = session.peer?.family === "unix" ? undefined : session.peer?.address;
    if (!ip) return null;
    const helo = session.hostName ?? undefined;
    const { spf } = await mailauth();
    return spf({
      // The null reverse-path is checked as postmaster@<HELO name> (RFC 7208 §2.4).
      ...(address !== "<>" && address !== "" && { sender: address }),
      ip,
      ...(helo && { helo }),
      mta: this.#options.authservId ?? server.hostname,
      resolver: this.#resolver,
    } as Parameters<typeof spf>[0]);
  }

  /** The policy over the verdicts: a reply, or the lines to prepend (`prepend` set). */
  #decide(
    envelope: Envelope,
    id: string,
    spfResult: SPFResult | null,
    dkim: readonly DKIMResult[] | null,
    dmarcResult: DMARCResult | null,
    arcResult: ARCResult | null,
  ): { prepend: string } | string {
    const parts = arHeaderParts(spfResult, dkim, dmarcResult, arcResult);
    const header = `${id}; ${parts.length > 0 ? parts.join("; ") : "none"}`;
    const temporary =
      spfResult?.status.result === "temperror" ||
      (dkim ?? []).some((r) => r.status.result === "temperror") ||
      dmarcResult?.status.result === "temperror" ||
      arcResult?.status.result === "temperror";
    let action: Authentication["action"] = "accept";
    const failed = dmarcResult?.status.result === "fail";
    const domainPolicy = dmarcResult?.policy;
    if (temporary && this.#defers) action = "defer";
    else if (failed && this.#policy === "reject" && domainPolicy === "reject") action = "reject";
    else if (
      failed &&
      this.#policy !== "tag" &&
      (domainPolicy === "quarantine" || domainPolicy === "reject")
    )
      action = "quarantine";
    const verdicts: Authentication = {
      spf: spfResult,
      dkim,
      dmarc: dmarcResult,
      arc: arcResult,
      header,
      action,
    };
    envelope.authentication = verdicts;
    envelope.quarantine = action === "quarantine";
    if (action === "defer") {
      return "451 4.7.0 Temporary DNS failure verifying the sender, try again later";
    }
    if (action === "reject") {
      const domain = dmarcResult?.domain ?? "the sender's domain";
      return `550 5.7.1 Unauthenticated mail from ${domain} is refused by its DMARC policy`;
    }
    let prepend = `Authentication-Results: ${fold(id, parts)}\r\n`;
    if (action === "quarantine") {
      prepend += `X-Quarantine: DMARC policy ${domainPolicy} of ${dmarcResult?.domain}\r\n`;
    }
    return { prepend };
  }
}

/** RFC 8601 resinfo parts, mailauth's formatting: `spf=pass (comment) smtp.mailfrom=...`. */
function arHeaderParts(
  spfResult: SPFResult | null,
  dkim: readonly DKIMResult[] | null,
  dmarcResult: DMARCResult | null,
  arcResult: ARCResult | null,
): string[] {
  const parts: string[] = [];
  for (const result of dkim ?? []) if (result.info) parts.push(unfold(result.info));
  if (spfResult?.info) parts.push(unfold(spfResult.info));
  if (arcResult?.info) parts.push(unfold(arcResult.info));
  if (dmarcResult?.info) parts.push(unfold(dmarcResult.info));
  return parts;
}

/** One resinfo per line: short enough for any line limit, readable in a mail client. */
function fold(id: string, parts: readonly string[]): string {
  if (parts.length === 0) return `${id}; none`;
  return `${id};\r\n\t${parts.join(";\r\n\t")}`;
}

function unfold(text: string): string {
  return text.replace(/\r?\n[ \t]*/g, " ").trim();
}

function canSeal(result: ARCResult): boolean {
  return ["none", "pass"].includes(result.status.result) || result.status.shouldSeal === true;
}

function isReply(value: unknown): value is string {
  return typeof value === "string";
}

/**
 * The body on its way to mailauth, copied into the spool as it goes. Records the body's own
 * failure, so it is told apart from a verification failure.
 */
class BodyTee {
  readonly #spool: Spool;
  readonly #reader: ReturnType<MessageBody["getReader"]>;
  error: unknown;
  #done = false;

  constructor(body: MessageBody, spool: Spool) {
    this.#spool = spool;
    this.#reader = body.getReader();
  }

  async *chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const chunk = await this.#next();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** Reads (and keeps) whatever mailauth left unread. */
  async finish(): Promise<void> {
    while ((await this.#next()) !== null) {
      // kept in the spool
    }
  }

  async #next(): Promise<Uint8Array | null> {
    if (this.#done) return null;
    let result: Awaited<ReturnType<MessageBody["read"]>>;
    try {
      result = await this.#reader.read();
    } catch (error) {
      this.error = error;
      this.#done = true;
      throw error;
    }
    if (result.done) {
      this.#done = true;
      return null;
    }
    await this.#spool.write(result.value);
    return result.value;
  }
}
