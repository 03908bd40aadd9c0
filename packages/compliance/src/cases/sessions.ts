import type { Authenticator, Handler, LoginPassword } from "@smtpkit/core/server";
import { ComplianceError, equal, match, ok, waitFor, within } from "../assert.js";
import { show } from "../client.js";
import { nodemailer } from "../real-clients.js";
import { type CaseKit, decoder, HOST, sink } from "./kit.js";

/** AUTH, LMTP, timeouts, graceful close, disconnects and the connection limit. */
export function addSessionCases(kit: CaseKit): void {
  const { add, withServer, openData, pem, runtime, node } = kit;
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
}
