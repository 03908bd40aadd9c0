import { type Handler, SMTP, type SmtpTransport } from "@smtpkit/core/server";
import { equal, match, ok, waitFor } from "../assert.js";
import { show } from "../client.js";
import { nodemailer, smtplib } from "../real-clients.js";
import { type CaseKit, HOST, sink } from "./kit.js";

/** STARTTLS and SMTPS: real clients, injected plaintext, a client gone mid-handshake. */
export function addTlsCases(kit: CaseKit): void {
  const { add, withServer, pem, runtime, node, python } = kit;
  add("STARTTLS (Nodemailer)", 30_000, async () => {
    const keyPair = await pem();
    const handler = sink();
    await withServer(handler, { tls: keyPair }, async ({ server, greeted }) => {
      const client = await greeted();
      match(await client.command("EHLO plain"), /^250[- ]STARTTLS$/m, "EHLO offers STARTTLS");
      client.close();
      const result = await nodemailer(runtime, node, {
        host: HOST,
        port: server.port,
        requireTLS: true,
        ca: keyPair.cert,
        from: "alice@example.org",
        to: ["bob@example.net"],
        subject: "over STARTTLS",
        text: "secret\n",
      });
      ok(result.ok, `Nodemailer failed: ${show(result.error)}`);
      const ssl = handler.messages[0]?.ssl;
      ok(ssl, "session.ssl is set after STARTTLS");
      equal(ssl.implicit, false, "session.ssl.implicit");
      ok(ssl.protocol === null || /^TLSv1\.[23]$/.test(ssl.protocol), `protocol ${ssl.protocol}`);
    });
  });

  add("STARTTLS (smtplib)", 30_000, async () => {
    const keyPair = await pem();
    const handler = sink();
    await withServer(handler, { tls: keyPair }, async ({ server }) => {
      const result = await smtplib(runtime, python, {
        host: HOST,
        port: server.port,
        mode: "starttls",
        ca: keyPair.cert,
        from: "alice@example.org",
        to: ["bob@example.net"],
        message: "Subject: smtplib over STARTTLS\r\n\r\nsecret\r\n",
      });
      ok(result.ok, `smtplib failed: ${result.error}`);
      match(result.tls ?? "", /^TLSv1\.[23]$/, "the client's TLS version");
      equal(handler.messages[0]?.ssl?.implicit, false, "session.ssl.implicit");
    });
  });

  add(
    "STARTTLS injection: a command pipelined behind STARTTLS is never answered",
    30_000,
    async () => {
      const keyPair = await pem();
      let noops = 0;
      const handler: Handler = {
        handleNOOP() {
          noops++;
          return undefined;
        },
      };
      await withServer(handler, { tls: keyPair }, async ({ greeted }) => {
        const client = await greeted();
        match(await client.command("EHLO before"), /STARTTLS/, "EHLO offers STARTTLS");
        await client.send("STARTTLS\r\nNOOP injected\r\n");
        match(await client.reply(), /^220 /, "STARTTLS accepted");
        equal(client.pending, "", "nothing after the 220");
        await client.startTls(keyPair.cert);
        // The first reply under TLS must be this EHLO's, not a 250 for the injected NOOP.
        const ehlo = await client.command("EHLO after");
        match(ehlo, /^250-mx\.compliance\.test\n/, "the EHLO reply comes first");
        ok(!/STARTTLS/.test(ehlo), "STARTTLS is no longer offered");
        match(await client.command("QUIT"), /^221 /, "QUIT");
        equal(client.pending, "", "no stray reply");
        equal(noops, 0, "handleNOOP calls");
      });
    },
  );

  add(
    "STARTTLS injection: plaintext that arrives before the handshake is discarded unread",
    30_000,
    async () => {
      const keyPair = await pem();
      const injected = "NOOP injected\r\n";
      let noops = 0;
      let transport: (SmtpTransport & { discardedBytes?: number; bufferedBytes?: number }) | null =
        null;
      let discarded: number | undefined;
      let release: () => void = () => undefined;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Holds STARTTLS between reading it and answering, so the injected bytes come in a later
      // read: only the transport can drop them (the engine never saw them).
      class SlowStartTls extends SMTP {
        override async smtpSTARTTLS(argument: string | null): Promise<void> {
          transport = this.transport;
          await released;
          await super.smtpSTARTTLS(argument);
          discarded = transport.discardedBytes;
        }
      }
      const handler: Handler = {
        handleNOOP() {
          noops++;
          return undefined;
        },
      };
      await withServer(handler, { tls: keyPair, smtpClass: SlowStartTls }, async ({ greeted }) => {
        const client = await greeted();
        await client.command("EHLO before");
        await client.send("STARTTLS\r\n");
        await waitFor(() => transport !== null, "the server to read STARTTLS");
        await client.send(injected);
        await waitFor(
          () => (transport?.bufferedBytes ?? 0) >= injected.length,
          "the injected bytes to reach the transport",
        );
        release();
        match(await client.reply(), /^220 /, "STARTTLS accepted");
        equal(client.pending, "", "nothing after the 220");
        await client.startTls(keyPair.cert);
        match(await client.command("EHLO after"), /^250-mx\.compliance\.test\n/, "EHLO first");
        match(await client.command("QUIT"), /^221 /, "QUIT");
        equal(client.pending, "", "no stray reply");
        equal(noops, 0, "handleNOOP calls");
        equal(discarded, injected.length, "transport.discardedBytes");
      });
    },
  );

  add(
    "STARTTLS injection: plaintext sent after the 220 is never taken as commands",
    30_000,
    async () => {
      const keyPair = await pem();
      let mails = 0;
      const handler: Handler = {
        handleMAIL() {
          mails++;
          return undefined;
        },
      };
      await withServer(handler, { tls: keyPair }, async ({ server, greeted }) => {
        const client = await greeted();
        await client.command("EHLO before");
        match(await client.command("STARTTLS"), /^220 /, "STARTTLS accepted");
        // Plaintext where the ClientHello should be: at most a failed handshake, never commands.
        await client.send("NOOP\r\nMAIL FROM:<evil@example.com>\r\n");
        await client.closed();
        ok(!/\d{3}[ -]/.test(client.pending), `no reply in clear: ${show(client.pending)}`);
        equal(mails, 0, "handleMAIL calls");
        await waitFor(() => server.connections === 0, "the session to end");
      });
    },
  );

  add("STARTTLS: a client gone during the handshake ends the session", 30_000, async () => {
    const keyPair = await pem();
    await withServer({}, { tls: keyPair }, async ({ server, greeted }) => {
      const client = await greeted();
      await client.command("EHLO leaving");
      match(await client.command("STARTTLS"), /^220 /, "STARTTLS accepted");
      await waitFor(() => server.connections === 1, "the session");
      client.close();
      await waitFor(() => server.connections === 0, "the session to end", 5_000);
    });
  });

  add("SMTPS (Nodemailer)", 30_000, async () => {
    const keyPair = await pem();
    const handler = sink();
    await withServer(handler, { smtps: keyPair }, async ({ server }) => {
      const result = await nodemailer(runtime, node, {
        host: HOST,
        port: server.port,
        secure: true,
        ca: keyPair.cert,
        from: "alice@example.org",
        to: ["bob@example.net"],
        subject: "over SMTPS",
        text: "secret\n",
      });
      ok(result.ok, `Nodemailer failed: ${show(result.error)}`);
      const ssl = handler.messages[0]?.ssl;
      ok(ssl, "session.ssl is set from the start");
      equal(ssl.implicit, true, "session.ssl.implicit");
    });
  });

  add("SMTPS (smtplib)", 30_000, async () => {
    const keyPair = await pem();
    const handler = sink();
    await withServer(handler, { smtps: keyPair }, async ({ server }) => {
      const result = await smtplib(runtime, python, {
        host: HOST,
        port: server.port,
        mode: "smtps",
        ca: keyPair.cert,
        from: "alice@example.org",
        to: ["bob@example.net"],
        message: "Subject: smtplib over SMTPS\r\n\r\nsecret\r\n",
      });
      ok(result.ok, `smtplib failed: ${result.error}`);
      match(result.tls ?? "", /^TLSv1\.[23]$/, "the client's TLS version");
      equal(handler.messages[0]?.ssl?.implicit, true, "session.ssl.implicit");
    });
  });
}
