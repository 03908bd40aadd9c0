import {
  type Authenticator,
  type Envelope,
  type Handler,
  type LoginPassword,
  type Session,
  SMTP,
  type SmtpTransport,
  type TlsInfo,
} from "@smtpkit/core/server";
import { ComplianceError, equal, match, ok, settle, waitFor, within } from "./assert.js";
import { SmtpClient, show } from "./client.js";
import { makeCertificate, nodemailer, smtplib } from "./real-clients.js";
import type {
  ComplianceCase,
  ComplianceOptions,
  ComplianceServeOptions,
  ComplianceServer,
  PemKeyPair,
} from "./types.js";

/** Only the loopback address: no case ever reaches further. */
const HOST = "127.0.0.1";
const HOSTNAME = "mx.compliance.test";
const GREETING = /^220 mx\.compliance\.test /;
const decoder = new TextDecoder();
const MiB = 1024 * 1024;

interface Received {
  readonly mailFrom: string | null;
  readonly rcptTos: string[];
  readonly content: string;
  readonly ssl: TlsInfo | null;
  readonly peer: Session["peer"];
  readonly authenticated: boolean | null;
  readonly authData: unknown;
}

/** aiosmtpd's Sink that remembers what it got. */
function sink(): Handler & { messages: Received[] } {
  const messages: Received[] = [];
  return {
    messages,
    handleRCPT(_server, _session, _envelope, address) {
      return address.startsWith("nobody@") ? "550 5.1.1 No such user" : undefined;
    },
    handleDATA(_server: SMTP, session: Session, envelope: Envelope) {
      const content = envelope.content;
      messages.push({
        mailFrom: envelope.mailFrom,
        rcptTos: [...envelope.rcptTos],
        content: typeof content === "string" ? content : decoder.decode(content ?? undefined),
        ssl: session.ssl,
        peer: session.peer,
        authenticated: session.authenticated,
        authData: session.authData,
      });
      return "250 2.0.0 OK";
    },
  };
}

/** The SmtpTransport as the session sees it, counting the bytes it reads. */
function counting(transport: SmtpTransport, add: (bytes: number) => void): SmtpTransport {
  return {
    get peer() {
      return transport.peer;
    },
    get local() {
      return transport.local;
    },
    get tls() {
      return transport.tls;
    },
    get canStartTls() {
      return transport.canStartTls;
    },
    async read() {
      const chunk = await transport.read();
      if (chunk) add(chunk.length);
      return chunk;
    },
    write: (data) => transport.write(data),
    startTls: () => transport.startTls(),
    close: () => transport.close(),
    destroy: () => transport.destroy(),
  };
}

/** 32-bit FNV-1a, to compare a 20 MB body on both ends without keeping it. */
function fnv1a(hash: number, data: Uint8Array): number {
  let h = hash;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ (data[i] as number), 0x01000193);
  return h >>> 0;
}
const FNV_OFFSET = 0x811c9dc5;

/** `lines` numbered 80-octet CRLF lines (none starts with a dot). */
function numberedLines(lines: number): Uint8Array {
  const template = new TextEncoder().encode(`00000000 ${"x".repeat(69)}\r\n`);
  const out = new Uint8Array(lines * template.length);
  for (let i = 0; i < lines; i++) {
    const offset = i * template.length;
    out.set(template, offset);
    const digits = String(i).padStart(8, "0");
    for (let d = 0; d < 8; d++) out[offset + d] = digits.charCodeAt(d);
  }
  return out;
}

/**
 * The adapter compliance suite: named cases that run the adapter's `serve()` against real
 * clients (Nodemailer and smtplib in child processes) and a minimal client on the runtime's own
 * sockets. Every case starts its own server on 127.0.0.1 and closes it.
 */
export function complianceCases(options: ComplianceOptions): ComplianceCase[] {
  const { serve, runtime } = options;
  const node = options.node ?? "node";
  const python = options.python ?? "python3";
  let certificate: Promise<PemKeyPair> | null = null;
  const pem = (): Promise<PemKeyPair> => {
    certificate ??= makeCertificate(runtime);
    return certificate;
  };

  interface Context {
    readonly server: ComplianceServer;
    connect(): Promise<SmtpClient>;
    greeted(): Promise<SmtpClient>;
  }

  async function withServer(
    handler: Handler,
    serveOptions: ComplianceServeOptions,
    body: (context: Context) => Promise<void>,
  ): Promise<void> {
    const server = await serve(handler, {
      host: HOST,
      port: 0,
      hostname: HOSTNAME,
      ...serveOptions,
    });
    const clients: SmtpClient[] = [];
    const connect = async (): Promise<SmtpClient> => {
      const client = await SmtpClient.connect(runtime, HOST, server.port);
      clients.push(client);
      return client;
    };
    const greeted = async (): Promise<SmtpClient> => {
      const client = await connect();
      match(await client.reply(), GREETING, "greeting");
      return client;
    };
    try {
      await body({ server, connect, greeted });
    } finally {
      for (const client of clients) client.close();
      await within(server.close({ timeout: 500 }), 10_000, "server.close() after the case");
    }
  }

  /** Opens a transaction up to the 354 reply. */
  async function openData(client: SmtpClient): Promise<void> {
    match(await client.command("EHLO client.compliance.test"), /^250[- ]/, "EHLO");
    match(await client.command("MAIL FROM:<alice@example.org>"), /^250 /, "MAIL");
    match(await client.command("RCPT TO:<bob@example.net>"), /^250 /, "RCPT");
    match(await client.command("DATA"), /^354 /, "DATA");
  }

  const cases: ComplianceCase[] = [];
  const add = (name: string, timeout: number, run: () => Promise<void>): void => {
    const skip = options.skip?.[name];
    cases.push({ name, timeout, run, ...(skip === undefined ? {} : { skip }) });
  };

  add("greeting", 30_000, () =>
    withServer({}, {}, async ({ server, greeted }) => {
      const client = await greeted();
      await waitFor(() => server.connections === 1, "server.connections to be 1");
      match(
        await client.command("EHLO client.compliance.test"),
        /^250-mx\.compliance\.test\n/,
        "EHLO",
      );
      match(await client.command("QUIT"), /^221 /, "QUIT");
      await client.closed();
      await waitFor(() => server.connections === 0, "server.connections to be 0 after QUIT");
    }),
  );

  add("a full transaction (Nodemailer)", 30_000, () => {
    const handler = sink();
    return withServer(handler, {}, async ({ server }) => {
      const result = await nodemailer(runtime, node, {
        host: HOST,
        port: server.port,
        ignoreTLS: true,
        from: "alice@example.org",
        to: ["bob@example.net", "carol@example.net"],
        subject: "compliance",
        text: "Hello from the compliance suite.\n.a line with a leading dot\nbye\n",
      });
      ok(result.ok, `Nodemailer failed: ${show(result.error)}`);
      equal(result.accepted, ["bob@example.net", "carol@example.net"], "accepted recipients");
      const message = handler.messages[0];
      ok(message, "the handler got the message");
      equal(message.mailFrom, "alice@example.org", "envelope.mailFrom");
      equal(message.rcptTos, ["bob@example.net", "carol@example.net"], "envelope.rcptTos");
      ok(message.content.includes("Subject: compliance\r\n"), "the Subject header arrived");
      ok(
        message.content.includes("\r\n.a line with a leading dot\r\n"),
        `the body is dot-unstuffed: ${show(message.content)}`,
      );
      equal(message.ssl, null, "session.ssl in clear");
      equal(message.peer?.address, HOST, "session.peer.address");
    });
  });

  add("a full transaction (smtplib)", 30_000, () => {
    const handler = sink();
    return withServer(handler, {}, async ({ server }) => {
      const result = await smtplib(runtime, python, {
        host: HOST,
        port: server.port,
        mode: "plain",
        from: "alice@example.org",
        to: ["bob@example.net", "nobody@example.net"],
        message: "Subject: smtplib\r\n\r\n..two dots\r\n",
      });
      ok(result.ok, `smtplib failed: ${result.error}`);
      equal(Object.keys(result.refused ?? {}), ["nobody@example.net"], "refused recipients");
      equal(handler.messages[0]?.rcptTos, ["bob@example.net"], "envelope.rcptTos");
      ok(handler.messages[0]?.content.includes("\r\n..two dots\r\n"), "body with leading dots");
    });
  });

  add("pipelining: a batch in one write gets its replies in order", 30_000, () => {
    const handler = sink();
    return withServer(handler, {}, async ({ greeted }) => {
      const client = await greeted();
      await client.send(
        "EHLO client.compliance.test\r\nMAIL FROM:<alice@example.org>\r\n" +
          "RCPT TO:<bob@example.net>\r\nRCPT TO:<nobody@example.net>\r\n" +
          "RCPT TO:<carol@example.net>\r\nDATA\r\n",
      );
      const [ehlo, mail, rcpt1, rcpt2, rcpt3, data] = await client.replies(6);
      match(
        ehlo,
        /^250-mx\.compliance\.test\n[\s\S]*^250[- ]PIPELINING$/m,
        "EHLO offers PIPELINING",
      );
      match(mail, /^250 /, "MAIL");
      match(rcpt1, /^250 /, "first RCPT");
      match(rcpt2, /^550 5\.1\.1 /, "refused RCPT");
      match(rcpt3, /^250 /, "third RCPT");
      match(data, /^354 /, "DATA");
      await client.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n");
      const [stored, noop, quit] = await client.replies(3);
      match(stored, /^250 2\.0\.0 OK$/, "message stored");
      match(noop, /^250 /, "NOOP");
      match(quit, /^221 /, "QUIT");
      await client.closed();
      equal(client.pending, "", "nothing after the 221");
      equal(handler.messages[0]?.rcptTos, ["bob@example.net", "carol@example.net"], "rcptTos");
    });
  });

  add("a 20 MB body streamed with backpressure", 180_000, async () => {
    const body = numberedLines((20 * MiB) / 80);
    const expectedHash = fnv1a(FNV_OFFSET, body);
    let consumed = 0;
    let pulled = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    class CountingSMTP extends SMTP {
      override run(transport: SmtpTransport): Promise<void> {
        return super.run(counting(transport, (bytes) => (pulled += bytes)));
      }
    }
    const handler: Handler = {
      async handleDATAStream(_server, _session, _envelope, stream) {
        const reader = stream.getReader();
        let hash = FNV_OFFSET;
        for (let first = true; ; first = false) {
          const { done, value } = await reader.read();
          if (done) return `250 2.0.0 OK ${consumed} ${hash}`;
          consumed += value.length;
          hash = fnv1a(hash, value);
          if (first) await gate; // a consumer that lags far behind
        }
      },
    };
    await withServer(handler, { smtpClass: CountingSMTP }, async ({ greeted }) => {
      const client = await greeted();
      await openData(client);
      let sent = 0;
      const chunk = 256 * 1024;
      const sending = (async () => {
        for (let offset = 0; offset < body.length; offset += chunk) {
          const part = body.subarray(offset, offset + chunk);
          await client.send(part);
          sent += part.length;
        }
      })();
      sending.catch(() => undefined);
      const stalled = await settle(() => sent);
      const stalledPulled = pulled;
      ok(consumed > 0, "the consumer got the first chunk");
      // The adapter must stop reading the socket: else the client could send it all.
      ok(
        stalled < body.length,
        `the client sent the whole ${body.length} octets while the consumer was stuck: no backpressure`,
      );
      // What the session pulled beyond the consumer: the body stream's high-water mark and a read.
      ok(
        stalledPulled - consumed <= 2 * MiB,
        `the session read ${stalledPulled - consumed} octets beyond what the consumer took`,
      );
      // What the client got rid of: that plus the kernel's socket buffers on both ends.
      ok(
        stalled - consumed <= 16 * MiB,
        `${stalled - consumed} octets sent beyond what the consumer took (adapter buffering?)`,
      );
      release();
      await sending;
      equal(
        await client.command("."),
        `250 2.0.0 OK ${body.length} ${expectedHash}`,
        "every octet arrived, in order",
      );
      match(await client.command("QUIT"), /^221 /, "QUIT");
    });
  });

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

  add("AUTH PLAIN over TLS with an authenticator", 30_000, async () => {
    const keyPair = await pem();
    const handler = sink();
    const text = (data: Uint8Array): string => decoder.decode(data);
    const authenticator: Authenticator = (_server, _session, _envelope, mechanism, authData) => {
      const { login, password } = authData as LoginPassword;
      const good = mechanism === "PLAIN" && text(login) === "user" && text(password) === "s3cret";
      return good ? { success: true, authData: `${mechanism}:${text(login)}` } : { success: false };
    };
    await withServer(handler, { tls: keyPair, authenticator }, async ({ server, greeted }) => {
      const client = await greeted();
      ok(!/AUTH/.test(await client.command("EHLO plain")), "AUTH is not offered in clear");
      match(await client.command("AUTH PLAIN AHVzZXIAczNjcmV0"), /^538 /, "AUTH in clear");
      client.close();
      const job = {
        host: HOST,
        port: server.port,
        requireTLS: true,
        ca: keyPair.cert,
        authMethod: "PLAIN",
        from: "alice@example.org",
        to: ["bob@example.net"],
        subject: "authenticated",
        text: "hi\n",
      };
      const good = await nodemailer(runtime, node, {
        ...job,
        auth: { user: "user", pass: "s3cret" },
      });
      ok(good.ok, `Nodemailer failed: ${show(good.error)}`);
      equal(handler.messages[0]?.authenticated, true, "session.authenticated");
      equal(handler.messages[0]?.authData, "PLAIN:user", "session.authData");
      const bad = await nodemailer(runtime, node, {
        ...job,
        auth: { user: "user", pass: "wrong" },
      });
      ok(!bad.ok, "a wrong password is refused");
      equal(bad.error?.responseCode, 535, `response code (${show(bad.error)})`);
      equal(handler.messages.length, 1, "no message without authentication");
    });
  });

  add("LMTP: one reply per recipient", 30_000, async () => {
    const handler: Handler = {
      handleDATA(_server, _session, envelope) {
        return envelope.rcptTos.map((rcpt) =>
          rcpt.startsWith("full@") ? `452 4.2.2 <${rcpt}> mailbox full` : `250 2.0.0 <${rcpt}> OK`,
        );
      },
    };
    await withServer(handler, { lmtp: true }, async ({ server, greeted }) => {
      const client = await greeted();
      match(await client.command("LHLO client.compliance.test"), /^250[- ]/, "LHLO");
      await client.command("MAIL FROM:<alice@example.org>");
      await client.command("RCPT TO:<bob@example.net>");
      await client.command("RCPT TO:<full@example.net>");
      await client.command("RCPT TO:<carol@example.net>");
      match(await client.command("DATA"), /^354 /, "DATA");
      await client.send("Subject: lmtp\r\n\r\nhi\r\n.\r\n");
      equal(
        await client.replies(3),
        [
          "250 2.0.0 <bob@example.net> OK",
          "452 4.2.2 <full@example.net> mailbox full",
          "250 2.0.0 <carol@example.net> OK",
        ],
        "per-recipient replies, in RCPT order",
      );
      match(await client.command("QUIT"), /^221 /, "QUIT");
      const result = await nodemailer(runtime, node, {
        host: HOST,
        port: server.port,
        lmtp: true,
        ignoreTLS: true,
        from: "alice@example.org",
        to: ["bob@example.net", "full@example.net"],
        subject: "lmtp",
        text: "hi\n",
      });
      ok(result.ok, `Nodemailer (LMTP) failed: ${show(result.error)}`);
      equal(result.accepted, ["bob@example.net"], "Nodemailer's accepted recipients");
      equal(result.rejected, ["full@example.net"], "Nodemailer's rejected recipients");
    });
  });

  add("idle timeout: 421 and close", 30_000, () =>
    withServer({}, { timeout: 0.3 }, async ({ server, greeted }) => {
      const client = await greeted();
      match(await client.command("EHLO idle"), /^250[- ]/, "EHLO");
      match(await client.reply(), /^421 4\.4\.2 /, "the timeout reply");
      await client.closed();
      await waitFor(() => server.connections === 0, "the session to end");
    }),
  );

  add("graceful close: mid-DATA completes with 250, idle gets 421", 30_000, () => {
    const handler = sink();
    return withServer(handler, {}, async ({ server, greeted, connect }) => {
      const busy = await greeted();
      const idle = await greeted();
      match(await idle.command("EHLO idle"), /^250[- ]/, "EHLO (idle)");
      await openData(busy);
      await busy.send("Subject: draining\r\n\r\nfirst half\r\n");
      await waitFor(() => server.connections === 2, "two sessions");

      const closed = server.close({ timeout: 10_000 });
      match(await idle.reply(), /^421 /, "the idle session gets 421");
      await idle.closed();
      let refused = false;
      try {
        const late = await connect();
        refused = (await late.reply(2_000)) === null;
      } catch {
        refused = true;
      }
      ok(refused, "a connection after close() is refused (or closed unanswered)");

      await busy.send("second half\r\n.\r\n");
      equal(await busy.reply(), "250 2.0.0 OK", "the transaction in progress completes");
      match(await busy.reply(), /^421 /, "then 421");
      await busy.closed();
      await within(closed, 10_000, "close() to resolve");
      equal(server.connections, 0, "server.connections after close()");
      equal(
        handler.messages[0]?.content,
        "Subject: draining\r\n\r\nfirst half\r\nsecond half\r\n",
        "the message",
      );
    });
  });

  add("close() timeout: a transaction that does not finish is aborted with 421", 30_000, () =>
    withServer({}, {}, async ({ server, greeted }) => {
      const client = await greeted();
      await openData(client);
      await client.send("never finished\r\n");
      await within(server.close({ timeout: 300 }), 10_000, "close() to resolve");
      match(await client.reply(), /^421 /, "421 on abort");
      await client.closed();
      equal(server.connections, 0, "server.connections");
    }),
  );

  add("client disconnect mid-DATA: the signal fires, the server keeps serving", 30_000, () => {
    let signalled = false;
    let streamFailed = false;
    const handler: Handler = {
      async handleDATAStream(_server, _session, _envelope, body, signal) {
        signal.addEventListener("abort", () => {
          signalled = true;
        });
        const reader = body.getReader();
        try {
          while (!(await reader.read()).done);
        } catch {
          streamFailed = true;
          throw new ComplianceError("the stream failed, as it should");
        }
        return "250 2.0.0 OK";
      },
    };
    return withServer(handler, {}, async ({ server, greeted }) => {
      const client = await greeted();
      await openData(client);
      await client.send("partial body\r\n".repeat(1000));
      client.close();
      await waitFor(() => signalled, "the hook's abort signal");
      await waitFor(() => streamFailed, "the body stream to error");
      await waitFor(() => server.connections === 0, "the session to end");

      const next = await greeted();
      await openData(next);
      equal(await next.command("fine\r\n."), "250 2.0.0 OK", "the next session works");
      match(await next.command("QUIT"), /^221 /, "QUIT");
    });
  });

  add("maxConnections: an extra client gets 421 4.7.0", 30_000, () =>
    withServer({}, { maxConnections: 1 }, async ({ server, greeted, connect }) => {
      const first = await greeted();
      await waitFor(() => server.connections === 1, "one session");
      const extra = await connect();
      match(await extra.reply(), /^421 4\.7\.0 /, "the extra client's reply");
      await extra.closed();
      match(await first.command("NOOP"), /^250 /, "the first session still works");
      match(await first.command("QUIT"), /^221 /, "QUIT");
    }),
  );

  return cases;
}
