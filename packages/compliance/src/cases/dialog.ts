import { type Handler, SMTP, type SmtpTransport } from "@smtpkit/core/server";
import { equal, match, ok, settle, waitFor } from "../assert.js";
import { show } from "../client.js";
import { nodemailer, smtplib } from "../real-clients.js";
import {
  type CaseKit,
  counting,
  FNV_OFFSET,
  fnv1a,
  HOST,
  MiB,
  numberedLines,
  sink,
} from "./kit.js";

/** Greeting, whole transactions with real clients, pipelining, and a 20 MB body under backpressure. */
export function addDialogCases(kit: CaseKit): void {
  const { add, withServer, openData, runtime, node, python } = kit;
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
}
