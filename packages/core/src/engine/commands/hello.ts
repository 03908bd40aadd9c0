/** HELO, EHLO and LHLO, and the EHLO/LHLO keywords (the service extensions advertised). */
import type { ResolvedOptions } from "../../options.js";
import { formatReply, type Reply } from "../../reply.js";
import type { Dialog } from "../dialog.js";
import { extensionKeywords, keywordsChangeWithTime } from "../extension-keywords.js";
import type { Command } from "./command.js";
import { relayKeywords, relayOffer } from "./relay.js";

const ENCODER = new TextEncoder();

type HelloVerb = "HELO" | "EHLO" | "LHLO";

/**
 * COMMAND_RULES: the host name is required (501 Syntax: HELO hostname); the "hello" transition
 * resets the transaction (aborting an open body) before the event. The greeting counts once the
 * program accepts the reply (a 2xx).
 */
export const hello: Command = {
  run(d, verb, argument) {
    const planned = plannedReply(d, verb as HelloVerb);
    d.await(
      {
        kind: "hello",
        verb: verb as HelloVerb,
        defaultReply: planned.reply,
        defaultBytes: planned.bytes,
      },
      {
        type: "hello",
        verb: verb as HelloVerb,
        hostname: argument as string,
        extended: verb !== "HELO",
        responses: planned.responses,
      },
      "hello",
    );
  },
};

interface Planned {
  readonly reply: Reply;
  /** The reply on the wire (HELO/EHLO replies carry no enhanced code). */
  readonly bytes: Uint8Array;
  /** The reply's lines as aiosmtpd's `responses` list (`250-...`, `250 ...`). */
  readonly responses: readonly string[];
}

/**
 * Planned replies per resolved options, for the default mechanisms: [HELO, EHLO clear, EHLO TLS],
 * once per set of relay commands offered.
 */
const PLANNED = new WeakMap<ResolvedOptions, (Planned | undefined)[]>();

function plannedReply(d: Dialog, verb: HelloVerb): Planned {
  const slot = (verb === "HELO" ? 0 : d.state.tls ? 2 : 1) + 3 * relayOffer(d);
  const shareable = d.mechanisms === d.options.authMechanisms && !keywordsChangeWithTime(d.options);
  let cache = shareable ? PLANNED.get(d.options) : undefined;
  const cached = cache?.[slot];
  if (cached) return cached;
  const lines = verb === "HELO" ? [d.options.hostname] : ehloKeywords(d);
  const reply: Reply = { code: 250, enhanced: undefined, lines };
  const planned: Planned = {
    reply,
    bytes: ENCODER.encode(formatReply(reply)),
    responses: Object.freeze(
      lines.map((text, i) => `250${i === lines.length - 1 ? " " : "-"}${text}`),
    ),
  };
  if (shareable) {
    if (!cache) {
      cache = [];
      PLANNED.set(d.options, cache);
    }
    cache[slot] = planned;
  }
  return planned;
}

/** The EHLO/LHLO reply lines: aiosmtpd's order, our extensions after 8BITMIME/SMTPUTF8. */
export function ehloKeywords(d: Dialog): string[] {
  const o = d.options;
  const tls = d.state.tls;
  const keywords: string[] = [];
  if (o.size && o.dataSizeLimit > 0) keywords.push(`SIZE ${o.dataSizeLimit}`);
  if (o.eightBitMime) keywords.push("8BITMIME");
  if (o.smtpUtf8) keywords.push("SMTPUTF8");
  if (o.pipelining) keywords.push("PIPELINING");
  if (o.enhancedStatusCodes) keywords.push("ENHANCEDSTATUSCODES");
  if (o.chunking) keywords.push("CHUNKING");
  keywords.push(...extensionKeywords(o));
  if (o.dsn) keywords.push("DSN");
  if (o.requireTlsParam && tls) keywords.push("REQUIRETLS");
  keywords.push(...o.keywords);
  keywords.push(...relayKeywords(d));
  if (o.startTls && !tls) keywords.push("STARTTLS");
  const mechanisms = offeredMechanisms(d);
  if (mechanisms.length > 0) keywords.push(`AUTH ${[...mechanisms].sort().join(" ")}`);
  keywords.push("HELP");
  return [o.hostname, ...keywords];
}

/** Mechanisms advertised now: in clear text only the clear-text ones when AUTH needs TLS. */
export function offeredMechanisms(d: Dialog): readonly string[] {
  const o = d.options;
  if (d.state.tls || !o.authRequireTls) return d.mechanisms;
  return d.mechanisms.filter((name) => o.authClearText.has(name));
}
