// What the verification tests share: a DKIM key pair, the zone dnsmasq serves, a recording
// delivery, and servers that are stopped after each test.
import { generateKeyPairSync } from "node:crypto";
import type { Readable } from "node:stream";
import { compose, type Envelope, type Handler } from "@smtpkit/core/server";
import { type SmtpServer, serve } from "@smtpkit/node";
import { dkimSign } from "mailauth";
import nodemailer from "nodemailer";
import { afterEach } from "vitest";
import { type Authentication, authenticationOf } from "../src/index.js";
import type { Zone } from "./dnsmasq.js";

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
export const dkimPrivateKey = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const publicDer = publicKey.export({ type: "spki", format: "der" }).toString("base64");

/**
 * example.com: SPF allows 127.0.0.1 only (`-all`), DKIM selector `sel`, DMARC `p=reject`.
 * example.org: SPF `~all` (127.0.0.1 not listed), DMARC `p=none`.
 * down.example.net: its DNS never answers (forwarded to a closed port).
 * 127.0.0.1 ↔ mail.example.com (forward-confirmed); 127.0.0.2 → liar.example.com (→ 127.0.0.9).
 */
export const ZONE: Zone = {
  txt: {
    "example.com": "v=spf1 ip4:127.0.0.1 -all",
    "sel._domainkey.example.com": `v=DKIM1; k=rsa; p=${publicDer}`,
    "_dmarc.example.com": "v=DMARC1; p=reject",
    "example.org": "v=spf1 ip4:127.0.0.9 ~all",
    "_dmarc.example.org": "v=DMARC1; p=none",
    "sel._domainkey.example.org": `v=DKIM1; k=rsa; p=${publicDer}`,
    "arc._domainkey.relay.example.com": `v=DKIM1; k=rsa; p=${publicDer}`,
  },
  ptr: { "2.0.0.127.in-addr.arpa": "liar.example.com" },
  a: { "mail.example.com": "127.0.0.1", "liar.example.com": "127.0.0.9" },
  args: ["--server=/down.example.net/127.0.0.1#1"],
};

/** A message from `from`, DKIM-signed for `signingDomain` when given. */
export async function message(options: {
  from: string;
  subject?: string;
  body?: string;
  signingDomain?: string;
}): Promise<string> {
  const text =
    `From: ${options.from}\r\nTo: bob@example.net\r\nSubject: ${options.subject ?? "Hello"}\r\n` +
    `Date: Fri, 04 Dec 2026 01:00:00 +0000\r\nMessage-ID: <${Math.random()}@example.com>\r\n\r\n` +
    `${options.body ?? "Hello Bob.\r\n"}`;
  if (!options.signingDomain) return text;
  // mailauth's signer takes a list of signatures (its type declaration names only one form).
  const signed = await dkimSign(text, {
    canonicalization: "relaxed/relaxed",
    signatureData: [
      { signingDomain: options.signingDomain, selector: "sel", privateKey: dkimPrivateKey },
    ],
  } as unknown as Parameters<typeof dkimSign>[1]);
  if (signed.errors.length > 0) throw signed.errors[0];
  return signed.signatures + text;
}

export interface Stored {
  readonly text: string;
  readonly authentication: Authentication | null;
  readonly quarantine: unknown;
}

/** A delivery that keeps what it got, with the verdicts it was given. */
export function recorder(stored: Stored[]): Handler {
  return {
    async handleDATAStream(_server, _session, envelope: Envelope, body) {
      const text = new TextDecoder().decode(await body.bytes());
      stored.push({
        text,
        authentication: authenticationOf(envelope),
        quarantine: envelope.quarantine,
      });
      return "250 2.0.0 Stored";
    },
  };
}

export function serversForEachTest(options: Parameters<typeof serve>[1] = {}) {
  const servers: SmtpServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close({ timeout: 100 })));
  });
  return async (...fragments: Handler[]) => {
    const server = await serve(compose(...fragments), {
      host: "127.0.0.1",
      port: 0,
      hostname: "mx.test",
      ...options,
    });
    servers.push(server);
    return server;
  };
}

/** Nodemailer from `localAddress` (127.0.0.1 unless given), EHLO `client.example.com`. */
export function send(
  port: number,
  envelope: { from: string; to?: string },
  raw: string | Buffer | Readable,
  localAddress = "127.0.0.1",
): Promise<{ response: string }> {
  return nodemailer
    .createTransport({
      host: "127.0.0.1",
      port,
      secure: false,
      ignoreTLS: true,
      localAddress,
      name: "client.example.com",
    })
    .sendMail({ envelope: { from: envelope.from, to: [envelope.to ?? "bob@example.net"] }, raw });
}

/** The `Authentication-Results:` field of a stored message, unfolded. */
export function authResults(text: string): string {
  const match = /^Authentication-Results:(.*(?:\r\n[ \t].*)*)/m.exec(text);
  return (match?.[1] ?? "").replace(/\r\n[ \t]+/g, " ").trim();
}
