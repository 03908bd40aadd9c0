/**
 * Every handler hook over a real socket: called with the right arguments (server, session,
 * envelope, the hook's own arguments, an AbortSignal), and its reply reaching the client byte for
 * byte. Every Session and Envelope field is checked where it gets its value; aiosmtpd's PING
 * subclass example runs as `smtpClass`.
 */
import { SmtpError } from "@smtpkit/core";
import { MessageBody, SMTP, syntax } from "@smtpkit/core/server";
import type { Envelope, Handler, ServeOptions, Session, SmtpServer } from "@smtpkit/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CertFiles,
  type EnvelopeSnapshot,
  killChildren,
  LOCALHOST,
  makeCert,
  python,
  RawClient,
  requireBuilt,
  type SessionSnapshot,
  snapshotEnvelope,
  snapshotSession,
  withServerNamed,
} from "./helpers.js";

const HOSTNAME = "hooks.interop.test";
let cert: CertFiles;

beforeAll(() => {
  requireBuilt();
  cert = makeCert();
});
afterAll(() => {
  cert?.cleanup();
  killChildren();
});

interface Call {
  hook: string;
  server: unknown;
  args: unknown[];
  signal: unknown;
  session: SessionSnapshot;
  envelope: EnvelopeSnapshot;
}

/**
 * Wraps hooks so every call is recorded with a snapshot of session and envelope *before* the hook
 * ran, the server instance and the trailing AbortSignal.
 */
function recorded(hooks: Handler): { handler: Handler; calls: Call[] } {
  const calls: Call[] = [];
  const handler: Record<string, unknown> = {};
  for (const [name, hook] of Object.entries(hooks)) {
    if (typeof hook !== "function" || name === "handleException") {
      handler[name] = hook;
      continue;
    }
    handler[name] = (server: unknown, session: Session, envelope: Envelope, ...rest: unknown[]) => {
      const signal = rest[rest.length - 1];
      calls.push({
        hook: name,
        server,
        args: rest.slice(0, -1),
        signal,
        session: snapshotSession(session),
        envelope: snapshotEnvelope(envelope),
      });
      return (hook as (...a: unknown[]) => unknown)(server, session, envelope, ...rest);
    };
  }
  return { handler: handler as Handler, calls };
}

const withServer = <T>(
  handler: Handler,
  options: ServeOptions,
  body: (server: SmtpServer) => Promise<T>,
): Promise<T> => withServerNamed(HOSTNAME, handler, options, body);

/** Connects, checks the greeting, and runs `lines` one by one, returning each reply's text. */
async function dialog(port: number, lines: string[], options: { tls?: boolean } = {}) {
  const client = await RawClient.connect(port, options);
  const greeting = await client.reply();
  const replies: string[] = [];
  for (const line of lines) {
    const reply = await client.command(line);
    replies.push(reply === null ? "(none)" : reply.join("\n"));
  }
  return { client, greeting: greeting?.join("\n") ?? "(none)", replies };
}

const last = (calls: Call[], hook: string) => {
  const found = calls.filter((c) => c.hook === hook).pop();
  if (!found) throw new Error(`${hook} was not called`);
  return found;
};

// ---------------------------------------------------------------------------------------------

describe("hooks and their replies", () => {
  it("handleHELO, handleMAIL, handleRCPT, handleDATA, handleRSET, handleNOOP, handleVRFY, handleQUIT", async () => {
    const { handler, calls } = recorded({
      handleHELO: (_s, _ss, _e, hostname) => `250 Hello ${hostname}, I am custom`,
      handleMAIL: (_s, _ss, _e, address) =>
        address === "spammer@example.com" ? "550 5.7.1 Go away" : "250 2.1.0 Sender fine",
      handleRCPT: (_s, _ss, envelope, address) => {
        if (address === "nobody@example.org") return "550 5.1.1 No such user here";
        envelope.rcptTos.push(address.toUpperCase()); // a hook may do the state change itself
        return "251 2.1.5 Will forward";
      },
      handleDATA: (_s, _ss, envelope) =>
        `250 2.0.0 Stored ${(envelope.content as Uint8Array).length} bytes for ${envelope.rcptTos.join(",")}`,
      handleRSET: () => "250 2.0.0 Reset and clean",
      handleNOOP: (_s, _ss, _e, argument) => `250 2.0.0 noop(${argument ?? "null"})`,
      handleVRFY: (_s, _ss, _e, address) => `252 2.1.5 Maybe ${address}`,
      handleQUIT: () => "221 2.0.0 Custom goodbye",
    });
    await withServer(handler, {}, async (server) => {
      const { client, greeting, replies } = await dialog(server.port, [
        "HELO client.example",
        "NOOP",
        "NOOP some argument",
        "VRFY <someone@example.org>",
        "MAIL FROM:<spammer@example.com>",
        "MAIL FROM:<alice@example.com>",
        "RCPT TO:<nobody@example.org>",
        "RCPT TO:<bob@example.org>",
        "RSET",
        "MAIL FROM:<alice@example.com>",
        "RCPT TO:<carol@example.org>",
        "DATA",
      ]);
      expect(greeting).toMatch(new RegExp(`^220 ${HOSTNAME} `));
      expect(replies).toEqual([
        "250 Hello client.example, I am custom",
        "250 2.0.0 noop(null)",
        "250 2.0.0 noop(some argument)",
        "252 2.1.5 Maybe someone@example.org",
        "550 5.7.1 Go away",
        "250 2.1.0 Sender fine",
        "550 5.1.1 No such user here",
        "251 2.1.5 Will forward",
        "250 2.0.0 Reset and clean",
        "250 2.1.0 Sender fine",
        "251 2.1.5 Will forward",
        "354 End data with <CR><LF>.<CR><LF>",
      ]);
      client.write("Subject: x\r\n\r\nhello\r\n.\r\n");
      expect((await client.reply())?.join("\n")).toBe(
        "250 2.0.0 Stored 21 bytes for CAROL@EXAMPLE.ORG",
      );
      expect((await client.command("QUIT"))?.join("\n")).toBe("221 2.0.0 Custom goodbye");
      expect(await client.waitClosed()).toBe(true);

      // Every hook got the server instance and an AbortSignal.
      for (const call of calls) {
        expect(call.server, call.hook).toBeInstanceOf(SMTP);
        expect(call.signal, call.hook).toBeInstanceOf(AbortSignal);
      }
      expect(calls.map((c) => [c.hook, c.args])).toEqual([
        ["handleHELO", ["client.example"]],
        ["handleNOOP", [null]],
        ["handleNOOP", ["some argument"]],
        ["handleVRFY", ["someone@example.org"]],
        ["handleMAIL", ["spammer@example.com", []]],
        ["handleMAIL", ["alice@example.com", []]],
        ["handleRCPT", ["nobody@example.org", []]],
        ["handleRCPT", ["bob@example.org", []]],
        ["handleRSET", []],
        ["handleMAIL", ["alice@example.com", []]],
        ["handleRCPT", ["carol@example.org", []]],
        ["handleDATA", []],
        ["handleQUIT", []],
      ]);
      // Session: HELO recorded the host name (the hook did not set it, a 2xx reply does).
      expect(calls[0]?.session).toMatchObject({ hostName: null, extendedSmtp: false });
      expect(calls[1]?.session).toMatchObject({ hostName: "client.example", extendedSmtp: false });
      // A refused MAIL left no sender; the accepted one was recorded before RCPT.
      expect(calls[5]?.envelope.mailFrom).toBeNull();
      expect(calls[6]?.envelope.mailFrom).toBe("alice@example.com");
      // The hook's own push was kept and not doubled; RSET gave a fresh envelope.
      expect(calls[8]?.envelope).toMatchObject({ mailFrom: null, rcptTos: [] });
      const data = last(calls, "handleDATA");
      expect(data.envelope).toMatchObject({
        mailFrom: "alice@example.com",
        mailOptions: [],
        rcptTos: ["CAROL@EXAMPLE.ORG"],
        rcptOptions: [],
        smtpUtf8: false,
        content: "Subject: x\r\n\r\nhello\r\n",
      });
      // After DATA the envelope is fresh again.
      expect(last(calls, "handleQUIT").envelope).toMatchObject({ mailFrom: null, rcptTos: [] });
      // Peer: the client's own socket.
      expect(data.session.peer).toEqual({
        address: LOCALHOST,
        port: client.socket.localPort,
        family: "IPv4",
      });
    });
  });

  it("handleEHLO gets the planned responses and may replace them", async () => {
    const { handler, calls } = recorded({
      handleEHLO: (_s, _ss, _e, hostname) => {
        if (hostname === "plain.example") return undefined;
        return [`250-${HOSTNAME} greets ${hostname}`, "250-X-CUSTOM-EXTENSION yes", "250 HELP"];
      },
    });
    await withServer(handler, {}, async (server) => {
      const { replies } = await dialog(server.port, ["EHLO plain.example", "EHLO custom.example"]);
      expect(replies[1]).toBe(
        `250-${HOSTNAME} greets custom.example\n250-X-CUSTOM-EXTENSION yes\n250 HELP`,
      );
      // The responses the hook saw are what a hook-less server sends.
      const first = calls[0];
      expect(first?.args[0]).toBe("plain.example");
      const responses = first?.args[1] as string[];
      expect(responses.join("\n")).toBe(replies[0]);
      expect(responses[0]).toBe(`250-${HOSTNAME}`);
      expect(responses).toEqual(
        expect.arrayContaining([
          "250-SIZE 33554432",
          "250-8BITMIME",
          "250-SMTPUTF8",
          "250-PIPELINING",
        ]),
      );
      expect(responses[responses.length - 1]).toBe("250 HELP");
      expect(calls[1]?.session).toMatchObject({ hostName: "plain.example", extendedSmtp: true });
    });
  });

  it("handleMAIL / handleRCPT get the parameters; the envelope keeps them (SMTPUTF8, DSN)", async () => {
    const { handler, calls } = recorded({
      handleMAIL: () => undefined,
      handleRCPT: () => undefined,
      handleDATA: () => undefined,
    });
    await withServer(handler, { extensions: { dsn: true } }, async (server) => {
      const { client, replies } = await dialog(server.port, [
        "EHLO c",
        "MAIL FROM:<jösé@exämple.com> SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc",
        "RCPT TO:<ünï@exämple.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u@example.org",
        "RCPT TO:<second@example.org>",
        "DATA",
      ]);
      expect(replies.slice(1)).toEqual([
        "250 2.1.0 OK",
        "250 2.1.5 OK",
        "250 2.1.5 OK",
        "354 End data with <CR><LF>.<CR><LF>",
      ]);
      client.write("Subject: ü\r\n\r\n..dot\r\n.\r\n");
      expect((await client.reply())?.join("\n")).toBe("250 2.0.0 OK");
      client.close();
      const mail = last(calls, "handleMAIL");
      expect(mail.args).toEqual([
        "jösé@exämple.com",
        ["SIZE=1000", "BODY=8BITMIME", "SMTPUTF8", "RET=HDRS", "ENVID=abc"],
      ]);
      const rcpt = calls.filter((c) => c.hook === "handleRCPT");
      expect(rcpt.map((c) => c.args)).toEqual([
        ["ünï@exämple.org", ["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;u@example.org"]],
        ["second@example.org", []],
      ]);
      const data = last(calls, "handleDATA");
      expect(data.envelope.mailFrom).toBe("jösé@exämple.com");
      expect(data.envelope.mailOptions).toEqual(mail.args[1]);
      expect(data.envelope.smtpUtf8).toBe(true);
      expect(data.envelope.rcptTos).toEqual(["ünï@exämple.org", "second@example.org"]);
      expect(data.envelope.rcptOptions).toEqual([
        "NOTIFY=SUCCESS,DELAY",
        "ORCPT=rfc822;u@example.org",
      ]);
      expect(Buffer.from(data.envelope.contentBytes ?? []).toString()).toBe(
        "Subject: ü\r\n\r\n.dot\r\n",
      );
      expect(Buffer.from(data.envelope.originalContent ?? []).toString()).toBe(
        "Subject: ü\r\n\r\n.dot\r\n",
      );
      expect(data.session.extendedSmtp).toBe(true);
    });
  });

  it("handleDATA with decodeData: content is a string, originalContent the bytes", async () => {
    let seen: { content: unknown; original: unknown } | null = null;
    const handler: Handler = {
      handleDATA(_s, _ss, envelope) {
        seen = { content: envelope.content, original: envelope.originalContent };
        return "250 2.0.0 decoded";
      },
    };
    await withServer(handler, { decodeData: true }, async (server) => {
      const { client } = await dialog(server.port, [
        "EHLO c",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.org>",
        "DATA",
      ]);
      client.write("plain ascii\r\n.\r\n");
      expect((await client.reply())?.join("\n")).toBe("250 2.0.0 decoded");
      client.close();
    });
    const s = seen as unknown as { content: unknown; original: Uint8Array };
    expect(s.content).toBe("plain ascii\r\n");
    expect(Buffer.from(s.original).toString()).toBe("plain ascii\r\n");
  });

  it("handleDATAStream: streamed body for DATA and for BDAT chunks", async () => {
    const bodies: string[] = [];
    const { handler, calls } = recorded({
      async handleDATAStream(_s, _ss, _e, body) {
        const chunks: Uint8Array[] = [];
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
        bodies.push(Buffer.concat(chunks).toString());
        return `250 2.0.0 streamed ${bodies.length}`;
      },
    });
    await withServer(handler, {}, async (server) => {
      const { client, replies } = await dialog(server.port, [
        "EHLO c",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.org>",
        "DATA",
      ]);
      expect(replies[3]).toBe("354 End data with <CR><LF>.<CR><LF>");
      client.write("Subject: s\r\n\r\n..x\r\n.\r\n");
      expect((await client.reply())?.join("\n")).toBe("250 2.0.0 streamed 1");
      // BDAT: two chunks, the second LAST; the dot is not special in BDAT.
      expect((await client.command("MAIL FROM:<c@example.com>"))?.join()).toBe("250 2.1.0 OK");
      expect((await client.command("RCPT TO:<d@example.org>"))?.join()).toBe("250 2.1.5 OK");
      client.write("BDAT 9\r\nSubject: ");
      expect((await client.reply())?.join()).toMatch(/^250 2\.0\.0 /);
      client.write("BDAT 11 LAST\r\nb\r\n\r\n.dot\r\n");
      expect((await client.reply())?.join()).toBe("250 2.0.0 streamed 2");
      client.close();
    });
    expect(bodies).toEqual(["Subject: s\r\n\r\n.x\r\n", "Subject: b\r\n\r\n.dot\r\n"]);
    const streams = calls.filter((c) => c.hook === "handleDATAStream");
    expect(streams[0]?.envelope).toMatchObject({
      mailFrom: "a@example.com",
      rcptTos: ["b@example.org"],
    });
    expect(streams[1]?.envelope).toMatchObject({
      mailFrom: "c@example.com",
      rcptTos: ["d@example.org"],
    });
    expect(streams[0]?.args[0]).toBeInstanceOf(MessageBody);
  });

  it("handleQUIT default and a hook-less server: aiosmtpd's default replies", async () => {
    await withServer({}, { extensions: { enhancedStatusCodes: false } }, async (server) => {
      const { replies, client } = await dialog(server.port, [
        "HELO c",
        "NOOP",
        "VRFY x@example.org",
        "RSET",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.org>",
        "QUIT",
      ]);
      expect(replies).toEqual([
        `250 ${HOSTNAME}`,
        "250 OK",
        "252 Cannot VRFY user, but will accept message and attempt delivery",
        "250 OK",
        "250 OK",
        "250 OK",
        "221 Bye",
      ]);
      expect(await client.waitClosed()).toBe(true);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("handleAUTH and the authentication fields", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");

  it("a custom exchange with server.challengeAuth(); authData and authenticated", async () => {
    const challenges: (string | null)[] = [];
    const { handler, calls } = recorded({
      async handleAUTH(server, session, _e, args) {
        const answer = await (server as SMTP).challengeAuth("Who are you?");
        challenges.push(answer === null ? null : Buffer.from(answer).toString());
        if (answer === null) return undefined; // the 501 was sent already
        if (Buffer.from(answer).toString() === "friend") {
          session.authenticated = true;
          session.authData = { user: "friend", mechanism: args[0] };
          return "235 2.7.0 Welcome, friend";
        }
        return "535 5.7.8 Not a friend";
      },
      handleMAIL: () => undefined,
    });
    await withServer(handler, { authRequireTls: false }, async (server) => {
      const { client, replies } = await dialog(server.port, ["EHLO c", "AUTH PLAIN"]);
      expect(replies[0]).toContain("250-AUTH LOGIN PLAIN");
      expect(replies[1]).toBe(`334 ${b64("Who are you?")}`);
      expect((await client.command(b64("enemy")))?.join()).toBe("535 5.7.8 Not a friend");
      expect((await client.command(`AUTH LOGIN ${b64("ir")}`))?.join()).toBe(
        `334 ${b64("Who are you?")}`,
      );
      expect((await client.command("*"))?.join()).toBe("501 5.7.0 Auth aborted");
      expect((await client.command("AUTH plain"))?.join()).toBe(`334 ${b64("Who are you?")}`);
      expect((await client.command(b64("friend")))?.join()).toBe("235 2.7.0 Welcome, friend");
      expect((await client.command("AUTH PLAIN"))?.join()).toBe("503 5.5.1 Already authenticated");
      expect((await client.command("MAIL FROM:<a@example.com>"))?.join()).toBe("250 2.1.0 OK");
      client.close();
    });
    expect(challenges).toEqual(["enemy", null, "friend"]);
    const auths = calls.filter((c) => c.hook === "handleAUTH");
    // Mechanism names upper-cased; an initial response passed as the second word.
    expect(auths.map((c) => c.args)).toEqual([[["PLAIN"]], [["LOGIN", b64("ir")]], [["PLAIN"]]]);
    // A handleAUTH hook owns the exchange (aiosmtpd); when it does not set `authenticated` itself,
    // the reply decides: false after its 535 (README: false after a failed AUTH), true on 235.
    expect(auths.map((c) => c.session.authenticated)).toEqual([null, false, false]);
    expect(last(calls, "handleMAIL").session).toMatchObject({
      authenticated: true,
      authData: { user: "friend", mechanism: "PLAIN" },
    });
  });

  it("built-in PLAIN (initial response) with an authenticator", async () => {
    const seen: unknown[] = [];
    const { handler, calls } = recorded({
      handleMAIL: () => undefined,
      handleNOOP: () => undefined,
    });
    await withServer(
      handler,
      {
        authRequireTls: false,
        authenticator: (_s, _ss, _e, mechanism, data) => {
          const { login, password } = data as { login: Uint8Array; password: Uint8Array };
          seen.push([mechanism, Buffer.from(login).toString(), Buffer.from(password).toString()]);
          const ok = Buffer.from(password).toString() === "secret";
          return ok
            ? { success: true, authData: { login: Buffer.from(login).toString() } }
            : { success: false };
        },
      },
      async (server) => {
        const plain = (u: string, p: string) => Buffer.from(`\0${u}\0${p}`).toString("base64");
        const { client, replies } = await dialog(server.port, [
          "EHLO c",
          "NOOP",
          `AUTH PLAIN ${plain("anne", "wrong")}`,
          "NOOP",
          `AUTH PLAIN ${plain("anne", "secret")}`,
          "MAIL FROM:<anne@example.com>",
        ]);
        expect(replies.slice(1)).toEqual([
          "250 2.0.0 OK",
          "535 5.7.8 Authentication credentials invalid",
          "250 2.0.0 OK",
          "235 2.7.0 Authentication successful",
          "250 2.1.0 OK",
        ]);
        client.close();
      },
    );
    expect(seen).toEqual([
      ["PLAIN", "anne", "wrong"],
      ["PLAIN", "anne", "secret"],
    ]);
    // null before any AUTH, false after the failed one (beyond.md), true after success.
    const noops = calls.filter((c) => c.hook === "handleNOOP");
    expect(noops.map((c) => [c.session.authenticated, c.session.authData])).toEqual([
      [null, null],
      [false, null],
    ]);
    expect(last(calls, "handleMAIL").session).toMatchObject({
      authenticated: true,
      authData: { login: "anne" },
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("handlePROXY", () => {
  const v2Header = (tlvs: Buffer) => {
    const signature = Buffer.from("0d0a0d0a000d0a515549540a", "hex");
    const address = Buffer.alloc(12);
    Buffer.from([203, 0, 113, 7]).copy(address, 0);
    Buffer.from([192, 0, 2, 99]).copy(address, 4);
    address.writeUInt16BE(51234, 8);
    address.writeUInt16BE(587, 10);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(address.length + tlvs.length);
    return Buffer.concat([signature, Buffer.from([0x21, 0x11]), length, address, tlvs]);
  };

  it("v1 header then a pipelined EHLO; v2 with a TLV; refusal closes silently", async () => {
    const { handler, calls } = recorded({
      handlePROXY: (_s, _ss, _e, proxyData) => proxyData.srcAddress !== "198.18.0.66",
      handleEHLO: () => undefined,
    });
    await withServer(handler, { proxyProtocolTimeout: 5 }, async (server) => {
      // v1, with EHLO in the same packet.
      const v1 = await RawClient.connect(server.port);
      v1.write("PROXY TCP4 192.0.2.1 198.51.100.2 40001 25\r\nEHLO behind.proxy\r\n");
      expect((await v1.reply())?.join()).toMatch(new RegExp(`^220 ${HOSTNAME} `));
      expect((await v1.reply())?.[0]).toBe(`250-${HOSTNAME}`);
      v1.close();

      // v2 with an AUTHORITY TLV (type 0x02).
      const tlv = Buffer.concat([Buffer.from([0x02, 0x00, 11]), Buffer.from("example.net")]);
      const v2 = await RawClient.connect(server.port);
      v2.write(Buffer.concat([v2Header(tlv), Buffer.from("EHLO v2.proxy\r\n")]));
      expect((await v2.reply())?.join()).toMatch(/^220 /);
      expect((await v2.reply())?.[0]).toBe(`250-${HOSTNAME}`);
      v2.close();

      // A header the hook refuses: no greeting, the connection is closed.
      const refused = await RawClient.connect(server.port);
      refused.write("PROXY TCP4 198.18.0.66 198.51.100.2 40002 25\r\n");
      expect(await refused.reply(3_000)).toBeNull();
      expect(await refused.waitClosed()).toBe(true);

      // Not a PROXY header at all: closed without a greeting.
      const garbage = await RawClient.connect(server.port);
      garbage.write("EHLO no.proxy\r\n");
      expect(await garbage.reply(3_000)).toBeNull();
      expect(await garbage.waitClosed()).toBe(true);
    });
    const proxies = calls.filter((c) => c.hook === "handlePROXY");
    expect(proxies).toHaveLength(3);
    expect(proxies[0]?.args[0]).toMatchObject({
      version: 1,
      command: "PROXY",
      family: "INET",
      protocol: "STREAM",
      srcAddress: "192.0.2.1",
      dstAddress: "198.51.100.2",
      srcPort: 40001,
      dstPort: 25,
      error: null,
      valid: true,
    });
    expect(proxies[1]?.args[0]).toMatchObject({
      version: 2,
      command: "PROXY",
      family: "INET",
      srcAddress: "203.0.113.7",
      dstAddress: "192.0.2.99",
      srcPort: 51234,
      dstPort: 587,
      valid: true,
    });
    const v2 = proxies[1]?.args[0] as { tlvs: { type: number; name: string; value: Uint8Array }[] };
    expect(v2.tlvs).toHaveLength(1);
    expect(v2.tlvs[0]).toMatchObject({ type: 0x02, name: "AUTHORITY" });
    expect(Buffer.from(v2.tlvs[0]?.value ?? []).toString()).toBe("example.net");
    // session.proxyData is set for the later hooks; peer is the client the header names, the
    // socket's peer (the proxy) is transportPeer.
    const ehlos = calls.filter((c) => c.hook === "handleEHLO");
    expect(ehlos[0]?.session.proxyData).toMatchObject({ version: 1, srcAddress: "192.0.2.1" });
    expect(ehlos[1]?.session.proxyData).toMatchObject({ version: 2, srcAddress: "203.0.113.7" });
    expect(ehlos[0]?.session.peer).toMatchObject({ address: "192.0.2.1" });
    expect(ehlos[0]?.session.transportPeer).toMatchObject({ address: LOCALHOST });
  });
});

// ---------------------------------------------------------------------------------------------

describe("TLS: handleSTARTTLS and session.ssl", () => {
  it("handleSTARTTLS returning false: every later command but QUIT gets 554", async () => {
    const { handler, calls } = recorded({ handleSTARTTLS: () => false });
    await withServer(
      handler,
      { tls: { key: cert.key, cert: cert.cert }, extensions: { enhancedStatusCodes: false } },
      async (server) => {
        const { client, replies } = await dialog(server.port, ["EHLO c", "STARTTLS"]);
        expect(replies[0]).toContain("250-STARTTLS");
        expect(replies[1]).toBe("220 Ready to start TLS");
        await client.startTls();
        expect((await client.command("EHLO c"))?.join()).toBe(
          "554 Command refused due to lack of security",
        );
        expect((await client.command("NOOP"))?.join()).toBe(
          "554 Command refused due to lack of security",
        );
        expect((await client.command("QUIT"))?.join()).toBe("221 Bye");
      },
    );
    const starttls = last(calls, "handleSTARTTLS");
    expect(starttls.args).toEqual([]);
    expect(starttls.session.ssl).toMatchObject({ implicit: false });
    expect(starttls.session.hostName).toBeNull(); // a new session after the handshake
  });

  it("session.ssl after STARTTLS and with implicit TLS; a new session after STARTTLS", async () => {
    const { handler, calls } = recorded({
      handleEHLO: () => undefined,
      handleSTARTTLS: () => true,
      handleMAIL: () => undefined,
    });
    const tls = { key: cert.key, cert: cert.cert };
    await withServer(handler, { tls }, async (server) => {
      const { client } = await dialog(server.port, ["EHLO before.tls", "STARTTLS"]);
      await client.startTls();
      expect((await client.command("MAIL FROM:<a@example.com>"))?.join()).toBe(
        "503 5.5.1 Error: send HELO first",
      );
      expect((await client.command("EHLO after.tls"))?.[0]).toBe(`250-${HOSTNAME}`);
      const second = await client.command("STARTTLS");
      expect(second?.join()).toBe("503 5.5.1 Error: TLS already active");
      expect((await client.command("MAIL FROM:<a@example.com>"))?.join()).toBe("250 2.1.0 OK");
      client.close();
    });
    await withServer(handler, { smtps: tls }, async (server) => {
      const { client, replies } = await dialog(server.port, ["EHLO implicit"], { tls: true });
      expect(replies[0]).not.toContain("STARTTLS");
      expect((await client.command("MAIL FROM:<b@example.com>"))?.join()).toBe("250 2.1.0 OK");
      client.close();
    });
    const ehlos = calls.filter((c) => c.hook === "handleEHLO");
    expect(ehlos[0]?.session.ssl).toBeNull();
    expect(ehlos[1]?.session).toMatchObject({ hostName: null, ssl: { implicit: false } });
    expect(ehlos[1]?.session.ssl?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(ehlos[2]?.session.ssl).toMatchObject({ implicit: true });
    const mails = calls.filter((c) => c.hook === "handleMAIL");
    expect(mails.map((c) => c.session.hostName)).toEqual(["after.tls", "implicit"]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("handleException", () => {
  const failing = (extra: Partial<Handler>): Handler => ({
    handleNOOP: () => {
      throw new TypeError("noop exploded");
    },
    handleVRFY: () => {
      throw new SmtpError(550, "5.1.1", "Thrown as an SmtpError");
    },
    handleDATA: () => {
      throw new Error("disk full");
    },
    ...extra,
  });

  it("its reply reaches the client; the error object is passed", async () => {
    const errors: unknown[] = [];
    const handler = failing({
      handleException: (error) => {
        errors.push(error);
        return `451 4.3.0 Handled: ${(error as Error).message}`;
      },
    });
    await withServer(handler, {}, async (server) => {
      const { client, replies } = await dialog(server.port, [
        "EHLO c",
        "NOOP",
        "VRFY a@example.org",
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.org>",
        "DATA",
      ]);
      expect(replies.slice(1, 3)).toEqual([
        "451 4.3.0 Handled: noop exploded",
        "550 5.1.1 Thrown as an SmtpError",
      ]);
      client.write("x\r\n.\r\n");
      expect((await client.reply())?.join()).toBe("451 4.3.0 Handled: disk full");
      // The transaction ended with the error (beyond.md): a new MAIL works.
      expect((await client.command("MAIL FROM:<a@example.com>"))?.join()).toBe("250 2.1.0 OK");
      client.close();
    });
    expect(errors.map((e) => [(e as Error).name, (e as Error).message])).toEqual([
      ["TypeError", "noop exploded"],
      ["Error", "disk full"],
    ]);
  });

  it("returning nothing: 451 4.3.0 (beyond.md); no handleException: 500 Error: (Name) message", async () => {
    await withServer(failing({ handleException: () => undefined }), {}, async (server) => {
      const { client, replies } = await dialog(server.port, ["EHLO c", "NOOP", "NOOP"]);
      expect(replies[1]).toMatch(/^451 4\.3\.0 /);
      expect(replies[2]).toMatch(/^451 4\.3\.0 /);
      client.close();
    });
    await withServer(
      failing({}),
      { extensions: { enhancedStatusCodes: false } },
      async (server) => {
        const { client, replies } = await dialog(server.port, ["EHLO c", "NOOP"]);
        expect(replies[1]).toBe("500 Error: (TypeError) noop exploded");
        client.close();
      },
    );
  });

  // KNOWN BUG: a hook that returns something that is not a reply ("hello", "600 x", a number)
  // makes smtpkit close the connection without any reply, and handleException is not called.
  // aiosmtpd pushes a string verbatim, and a non-string push goes through handle_exception.
  // Remove `.fails` once a malformed hook reply becomes an exception reply.
  it("a hook returning a malformed reply: handleException answers", async () => {
    const errors: unknown[] = [];
    const handler: Handler = {
      handleNOOP: () => "hello",
      handleException: (error) => {
        errors.push(error);
        return "451 4.3.0 bad hook reply";
      },
    };
    await withServer(handler, {}, async (server) => {
      const { client, replies } = await dialog(server.port, ["NOOP"]);
      client.close();
      expect(replies[0]).toBe("451 4.3.0 bad hook reply");
    });
    expect(errors).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------

describe("aiosmtpd's PING subclass example as smtpClass", () => {
  it("PING, HELP listing PING, HELP PING", async () => {
    const pings: (string | null)[] = [];
    class PingServer extends SMTP {
      async smtpPING(arg: string | null) {
        pings.push(arg);
        await this.push("259 Pong");
      }
    }
    syntax("PING [ignored]")(PingServer.prototype.smtpPING);
    await withServer(
      {},
      { smtpClass: PingServer, extensions: { enhancedStatusCodes: false } },
      async (server) => {
        const { client, replies } = await dialog(server.port, [
          "PING",
          "ping with some words",
          "HELP",
          "HELP PING",
          "HELP ping",
          "EHLO c",
          "HELP PING",
        ]);
        expect(replies[0]).toBe("259 Pong");
        expect(replies[1]).toBe("259 Pong");
        expect(replies[2]).toMatch(/^250 Supported commands: /);
        const listed = replies[2]?.replace("250 Supported commands: ", "").split(" ") ?? [];
        expect(listed).toContain("PING");
        expect(listed).toEqual([...listed].sort());
        expect(replies[3]).toBe("250 Syntax: PING [ignored]");
        expect(replies[4]).toBe("250 Syntax: PING [ignored]");
        expect(replies[6]).toBe("250 Syntax: PING [ignored]");
        client.close();
      },
    );
    expect(pings).toEqual([null, "with some words"]);
  });

  it("PING over smtplib (docmd) with enhanced status codes on", async () => {
    class PingServer extends SMTP {
      async smtpPING(_arg: string | null) {
        await this.push("259 Pong");
      }
    }
    syntax("PING [ignored]")(PingServer.prototype.smtpPING);
    await withServer({}, { smtpClass: PingServer }, async (server) => {
      const result = await python<[number, string][]>(
        `
import json, smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
replies = [s.docmd("PING"), s.docmd("HELP", "PING")]
s.quit()
print(json.dumps([[c, t.decode()] for c, t in replies]))
`,
        [String(server.port)],
      );
      expect(result[0]?.[0]).toBe(259);
      expect(result[0]?.[1]).toMatch(/Pong$/);
      expect(result[1]).toEqual([250, expect.stringMatching(/Syntax: PING \[ignored\]$/)]);
    });
  });
});
