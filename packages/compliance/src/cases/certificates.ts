import { equal, match, ok } from "../assert.js";
import type { SmtpClient } from "../client.js";
import { makeCertificate, presentedCertificate } from "../real-clients.js";
import type { PemKeyPair } from "../types.js";
import { type CaseKit, GREETING, sink } from "./kit.js";

const OLD = "old.compliance.test";
const NEW = "new.compliance.test";

/** Certificates that rotate (`server.setTls()`) and a certificate per host name (SNI). */
export function addCertificateCases(kit: CaseKit): void {
  const { add, withServer, runtime } = kit;
  let pairs: Promise<Record<string, PemKeyPair>> | null = null;
  /** Certificates named after their common name, made once per suite. */
  const certificates = () => {
    pairs ??= (async () => {
      const names = [OLD, NEW, "mx.compliance.test", "*.wild.compliance.test", "default.test"];
      const made = await Promise.all(names.map((name) => makeCertificate(runtime, name)));
      return Object.fromEntries(names.map((name, i) => [name, made[i] as PemKeyPair]));
    })();
    return pairs;
  };
  const pair = (all: Record<string, PemKeyPair>, name: string): PemKeyPair => {
    const found = all[name];
    ok(found, `certificate ${name}`);
    return found;
  };

  /** A transaction up to the end of RCPT, to be finished after the reload. */
  const begin = async (client: SmtpClient): Promise<void> => {
    match(await client.command("EHLO held.compliance.test"), /^250[- ]/, "EHLO");
    match(await client.command("MAIL FROM:<alice@example.org>"), /^250 /, "MAIL");
  };
  const finish = async (client: SmtpClient): Promise<void> => {
    match(await client.command("RCPT TO:<bob@example.net>"), /^250 /, "RCPT after the reload");
    match(await client.command("DATA"), /^354 /, "DATA after the reload");
    match(await client.command("Subject: held\r\n\r\nacross the reload\r\n."), /^250 /, "250");
    match(await client.command("QUIT"), /^221 /, "QUIT");
  };

  for (const starttls of [true, false]) {
    const mode = starttls ? "STARTTLS" : "SMTPS";
    add(
      `certificate reload (${mode}): handshakes before and after setTls() see the old and the new certificate; a session held open finishes its transaction`,
      60_000,
      async () => {
        const all = await certificates();
        const [before, after] = [pair(all, OLD), pair(all, NEW)];
        const handler = sink();
        const tlsOption = starttls ? { tls: before } : { smtps: before };
        await withServer(handler, tlsOption, async ({ server, connect, greeted }) => {
          const seen = () => presentedCertificate(runtime, server.port, { starttls });
          const held = starttls ? await greeted() : await connect();
          if (starttls) {
            await held.command("EHLO before.compliance.test");
            match(await held.command("STARTTLS"), /^220 /, "STARTTLS");
          }
          await held.startTls(before.cert); // verifies against the old certificate only
          if (!starttls) match(await held.reply(), GREETING, "greeting over TLS");
          await begin(held);
          equal(await seen(), OLD, "certificate before the reload");

          server.setTls(after);
          equal(await seen(), NEW, "certificate after the reload");
          // A client that trusts only the new certificate gets through.
          const fresh = starttls ? await greeted() : await connect();
          if (starttls) {
            await fresh.command("EHLO fresh.compliance.test");
            match(await fresh.command("STARTTLS"), /^220 /, "STARTTLS after the reload");
          }
          await fresh.startTls(after.cert);
          if (!starttls) match(await fresh.reply(), GREETING, "greeting over TLS");
          match(await fresh.command("EHLO fresh.compliance.test"), /^250[- ]/, "EHLO over TLS");

          await finish(held);
          equal(handler.messages.length, 1, "messages delivered");
          match(handler.messages[0]?.content ?? "", /across the reload/, "the held session's body");
        });
      },
    );
  }

  add(
    "certificate reload: a bad new certificate throws and the current one stays",
    60_000,
    async () => {
      const all = await certificates();
      const [before, after] = [pair(all, OLD), pair(all, NEW)];
      await withServer({}, { tls: before }, async ({ server }) => {
        let refused: unknown = null;
        try {
          server.setTls({ key: before.key, cert: after.cert }); // a key of another certificate
        } catch (error) {
          refused = error;
        }
        ok(refused instanceof Error, "setTls() throws for a key that does not match");
        let garbage: unknown = null;
        try {
          server.setTls({ key: "not a key", cert: "not a certificate" });
        } catch (error) {
          garbage = error;
        }
        ok(garbage instanceof Error, "setTls() throws for text that is no PEM");
        const seen = await presentedCertificate(runtime, server.port, { starttls: true });
        equal(seen, OLD, "the certificate after the refused reloads");
      });
    },
  );

  add(
    "tls.minVersion TLSv1.3: a TLS 1.2 client gets no handshake, a TLS 1.3 one does",
    60_000,
    async () => {
      const all = await certificates();
      const tls = { ...pair(all, NEW), minVersion: "TLSv1.3" as const };
      await withServer({}, { tls }, async ({ server }) => {
        const seen = (version: string) =>
          presentedCertificate(runtime, server.port, { starttls: true, args: [version] }).then(
            (name) => name,
            () => "(no handshake)",
          );
        equal(await seen("-tls1_2"), "(no handshake)", "TLS 1.2 client");
        equal(await seen("-tls1_3"), NEW, "TLS 1.3 client");
      });
    },
  );

  add(
    "SNI: a certificate per host name, *.domain wildcards, the default otherwise; session.ssl.servername",
    60_000,
    async () => {
      const all = await certificates();
      const tls = {
        default: pair(all, "default.test"),
        sni: {
          "mx.compliance.test": pair(all, "mx.compliance.test"),
          "*.wild.compliance.test": pair(all, "*.wild.compliance.test"),
        },
      };
      const handler = sink();
      await withServer(handler, { tls }, async ({ server, greeted }) => {
        const seen = (servername?: string) =>
          presentedCertificate(runtime, server.port, {
            starttls: true,
            ...(servername === undefined ? {} : { servername }),
          });
        equal(await seen("mx.compliance.test"), "mx.compliance.test", "exact name");
        equal(await seen("MX.Compliance.Test"), "mx.compliance.test", "names ignore case");
        equal(await seen("a.wild.compliance.test"), "*.wild.compliance.test", "wildcard");
        equal(await seen("b.a.wild.compliance.test"), "default.test", "a wildcard is one label");
        equal(await seen("wild.compliance.test"), "default.test", "the wildcard's own domain");
        equal(await seen("other.test"), "default.test", "a name not in the map");
        equal(await seen(), "default.test", "no SNI");

        const client = await greeted();
        await client.command("EHLO sni.compliance.test");
        match(await client.command("STARTTLS"), /^220 /, "STARTTLS");
        await client.startTls(pair(all, "mx.compliance.test").cert, "mx.compliance.test");
        await kit.openData(client);
        match(await client.command("Subject: sni\r\n\r\nhello\r\n."), /^250 /, "250");
        equal(handler.messages[0]?.ssl?.servername, "mx.compliance.test", "session.ssl.servername");
      });
    },
  );
}
