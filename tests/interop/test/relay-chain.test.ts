/**
 * The relay chain over real sockets: XCLIENT from swaks (trusted and untrusted peers on
 * loopback), XFORWARD from a raw client, XCLIENT behind a trusted PROXY header, and the CLI's
 * --xclient / --xforward flags, checked in what the hooks saw (session.peer, login, the
 * XCLIENT attributes) and in the X-Peer field the Debugging handler prints.
 */
import { Debugging } from "@smtpkit/handlers";
import type { Envelope, Handler, Session } from "@smtpkit/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CLI,
  type Daemon,
  killChildren,
  LOCALHOST,
  makeCert,
  RawClient,
  recordingHandler,
  requireBuilt,
  requirePrograms,
  run,
  startDaemon,
  swaksHasTls,
  withServerNamed,
} from "./helpers.js";

const HOSTNAME = "mx.relay.test";
/** A second loopback address: a peer outside a 127.0.0.1/32 trust list. */
const OTHER_LOOPBACK = "127.0.0.2";
const daemons: Daemon[] = [];
const clients: RawClient[] = [];

beforeAll(() => {
  requireBuilt();
  requirePrograms({ swaks: "swaks", openssl: "openssl" });
  if (!swaksHasTls()) throw new Error("swaks cannot do TLS: install Debian's libnet-ssleay-perl");
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const daemon of daemons.splice(0)) await daemon.stop("SIGKILL");
});

afterAll(() => killChildren());

const swaks = (port: number, ...args: string[]) =>
  run("swaks", [
    "--server",
    `${LOCALHOST}:${port}`,
    "--timeout",
    "20",
    "--from",
    "anne@example.com",
    "--to",
    "bart@example.com",
    ...args,
  ]);

async function connect(port: number, localAddress?: string): Promise<RawClient> {
  const client = await RawClient.connect(port, localAddress ? { localAddress } : {});
  clients.push(client);
  return client;
}

/** What a hook saw of the session, including the relay fields. */
interface SeenSession {
  peer: unknown;
  transportPeer: unknown;
  hostName: string | null;
  login: string | null;
  authenticated: boolean | null;
  xclient: unknown;
  transmissionType: string;
  localAddress: string | null;
  localPort: number | null;
}

const seen = (session: Session): SeenSession => ({
  peer: session.peer ? { ...session.peer } : null,
  transportPeer: session.transportPeer ? { ...session.transportPeer } : null,
  hostName: session.hostName,
  login: session.login,
  authenticated: session.authenticated,
  xclient: session.xclient ? { ...session.xclient } : null,
  transmissionType: session.transmissionType,
  localAddress: session.localAddress,
  localPort: session.localPort,
});

/** A handler that records the session at each greeting decision and at each message. */
function sessionRecorder(): {
  handler: Handler;
  connects: SeenSession[];
  messages: { session: SeenSession; xforward: Envelope["xforward"] }[];
} {
  const connects: SeenSession[] = [];
  const messages: { session: SeenSession; xforward: Envelope["xforward"] }[] = [];
  return {
    connects,
    messages,
    handler: {
      handleCONNECT(_server, session) {
        connects.push(seen(session));
      },
      handleDATA(_server, session, envelope) {
        messages.push({ session: seen(session), xforward: envelope.xforward });
      },
    },
  };
}

/** Debugging's output, collected. */
function debuggingOutput(): { handler: Debugging; text: () => string } {
  let out = "";
  const handler = new Debugging({ write: (text: string) => (out += text) });
  return { handler, text: () => out };
}

describe("XCLIENT with swaks", () => {
  it("a trusted client names the client it relays for; the session restarts as that client", async () => {
    const recorder = sessionRecorder();
    await withServerNamed(
      HOSTNAME,
      recorder.handler,
      { xclient: ["127.0.0.1/32"] },
      async (server) => {
        const result = await swaks(
          server.port,
          "--ehlo",
          "filter.example",
          "--xclient-addr",
          "192.0.2.7",
          "--xclient-port",
          "40000",
          "--xclient-name",
          "client.example.org",
          "--xclient-helo",
          "relayed.example",
          "--xclient-login",
          "alice",
        );
        expect(result.code, result.stdout + result.stderr).toBe(0);
        expect(result.stdout).toMatch(
          /<- {2}250-XCLIENT NAME ADDR PROTO HELO PORT LOGIN DESTADDR DESTPORT\r?\n/,
        );
        expect(result.stdout).toContain(
          " -> XCLIENT ADDR=192.0.2.7 PORT=40000 NAME=client.example.org HELO=relayed.example LOGIN=alice",
        );
        // The answer to XCLIENT is a new greeting, and swaks says EHLO again.
        expect(result.stdout).toMatch(/XCLIENT [^\n]*\n<- {2}220 mx\.relay\.test smtpkit/);
      },
    );
    // handleCONNECT ran again for the relayed client, before its EHLO.
    expect(recorder.connects).toHaveLength(2);
    expect(recorder.connects[0]?.peer).toMatchObject({ address: LOCALHOST });
    const relayed = recorder.connects[1];
    expect(relayed).toMatchObject({
      peer: { address: "192.0.2.7", port: 40000, family: "IPv4" },
      transportPeer: { address: LOCALHOST },
      hostName: "relayed.example",
      login: "alice",
      authenticated: true,
      xclient: {
        ADDR: "192.0.2.7",
        PORT: "40000",
        NAME: "client.example.org",
        HELO: "relayed.example",
        LOGIN: "alice",
      },
    });
    // The message: the relayed client, EHLO's name (it came after XCLIENT), authenticated.
    expect(recorder.messages).toHaveLength(1);
    expect(recorder.messages[0]?.session).toMatchObject({
      peer: { address: "192.0.2.7", port: 40000 },
      transportPeer: { address: LOCALHOST },
      hostName: "filter.example",
      login: "alice",
      authenticated: true,
      transmissionType: "ESMTPA",
    });
  });

  it("X-Peer names the XCLIENT client (Debugging)", async () => {
    const output = debuggingOutput();
    await withServerNamed(HOSTNAME, output.handler, { xclient: ["127.0.0.1"] }, async (server) => {
      const result = await swaks(
        server.port,
        "--xclient-addr",
        "IPV6:2001:DB8::0:1",
        "--xclient-port",
        "2526",
      );
      expect(result.code, result.stdout + result.stderr).toBe(0);
    });
    expect(output.text()).toContain("X-Peer: ('2001:db8::1', 2526, 0, 0)\n");
  });

  it("after STARTTLS: TLS stays with the new session, STARTTLS is not offered again", async () => {
    const cert = makeCert();
    const tlsSeen: (string | null)[] = [];
    const recorder = sessionRecorder();
    const handler: Handler = {
      ...recorder.handler,
      handleDATA(server, session, envelope) {
        tlsSeen.push(session.ssl?.protocol ?? null);
        return recorder.handler.handleDATA?.(server, session, envelope, server.signal);
      },
    };
    try {
      const options = { xclient: ["127.0.0.1/32"], tls: { key: cert.key, cert: cert.cert } };
      await withServerNamed(HOSTNAME, handler, options, async (server) => {
        const result = await swaks(server.port, "--tls", "--xclient-addr", "192.0.2.9");
        expect(result.code, result.stdout + result.stderr).toBe(0);
        const afterXclient = result.stdout.slice(result.stdout.indexOf("XCLIENT ADDR="));
        expect(afterXclient).toContain("220 mx.relay.test smtpkit");
        expect(afterXclient).not.toContain("250-STARTTLS");
      });
    } finally {
      cert.cleanup();
    }
    expect(tlsSeen).toHaveLength(1);
    expect(tlsSeen[0]).toMatch(/^TLSv1\.[23]$/);
    expect(recorder.messages[0]?.session).toMatchObject({
      peer: { address: "192.0.2.9" },
      transmissionType: "ESMTPS",
    });
  });

  it("a client outside the trust list neither sees XCLIENT nor may use it", async () => {
    const recorder = sessionRecorder();
    await withServerNamed(
      HOSTNAME,
      recorder.handler,
      { xclient: ["127.0.0.1/32"] },
      async (server) => {
        const result = await swaks(
          server.port,
          "--local-interface",
          OTHER_LOOPBACK,
          "--xclient-addr",
          "192.0.2.7",
        );
        expect(result.code).not.toBe(0);
        expect(result.stdout).not.toContain("XCLIENT NAME");
        // swaks refuses to send what the server did not advertise; a raw client tries anyway.
        expect(result.stdout + result.stderr).toMatch(/XCLIENT/);
        const client = await connect(server.port, OTHER_LOOPBACK);
        expect((await client.reply())?.[0]).toMatch(/^220 /);
        const ehlo = await client.command("EHLO other.example");
        expect(ehlo?.join("\n")).not.toMatch(/XCLIENT|XFORWARD/);
        expect(await client.command("XCLIENT ADDR=192.0.2.7")).toEqual([
          "550 5.7.0 Error: insufficient authorization",
        ]);
        expect(await client.command("HELP")).toEqual([
          "250 2.0.0 Supported commands: AUTH BDAT DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY",
        ]);
        expect((await client.command("QUIT"))?.[0]).toMatch(/^221 /);
      },
    );
    expect(recorder.connects.map((s) => s.peer)).toEqual([
      expect.objectContaining({ address: OTHER_LOOPBACK }),
      expect.objectContaining({ address: OTHER_LOOPBACK }),
    ]);
  });

  it("answers syntax errors with 501, in a transaction with 503, and ADDR ends the trust", async () => {
    await withServerNamed(HOSTNAME, {}, { xclient: ["127.0.0.1/32"] }, async (server) => {
      const client = await connect(server.port);
      await client.reply();
      await client.command("EHLO filter.example");
      const cases: [string, string][] = [
        ["XCLIENT", "501 5.5.4 Syntax: XCLIENT attribute=value..."],
        ["XCLIENT ADDR", "501 5.5.4 Error: attribute=value expected"],
        ["XCLIENT ADDR=", "501 5.5.4 Error: attribute=value expected"],
        [`XCLIENT HELO=${"h".repeat(256)}`, "501 5.5.4 Error: attribute value too long"],
        ["XCLIENT FOO=bar", "501 5.5.4 Bad XCLIENT attribute name: FOO"],
        ["XCLIENT ADDR=300.1.1.1", "501 5.5.4 Bad ADDR syntax: 300.1.1.1"],
        ["XCLIENT ADDR=2001:db8::1", "501 5.5.4 Bad ADDR syntax: 2001:db8::1"],
        ["XCLIENT PORT=65536", "501 5.5.4 Bad PORT syntax: 65536"],
        ["XCLIENT NAME=-bad-.example", "501 5.5.4 Bad NAME syntax: -bad-.example"],
        ["XCLIENT PROTO=LMTP", "501 5.5.4 Bad PROTO syntax: LMTP"],
      ];
      for (const [line, reply] of cases)
        expect([line, await client.command(line)]).toEqual([line, [reply]]);
      await client.command("MAIL FROM:<a@example.com>");
      expect(await client.command("XCLIENT NAME=x.example")).toEqual([
        "503 5.5.1 Error: MAIL transaction in progress",
      ]);
      await client.command("RSET");
      // xtext: +20 is a space, which HELO neuters to "?"; NAME=[TEMPUNAVAIL] is allowed.
      const greeting = await client.command(
        "XCLIENT NAME=[TEMPUNAVAIL] HELO=two+20words PROTO=esmtp ADDR=198.51.100.1",
      );
      expect(greeting).toEqual(["220 mx.relay.test smtpkit"]);
      // A fresh session: MAIL needs a greeting again, and 198.51.100.1 is not trusted.
      expect(await client.command("MAIL FROM:<a@example.com>")).toEqual([
        "503 5.5.1 Error: send HELO first",
      ]);
      const ehlo = await client.command("EHLO filter.example");
      expect(ehlo?.join("\n")).not.toContain("XCLIENT");
      expect(await client.command("XCLIENT ADDR=127.0.0.1")).toEqual([
        "550 5.7.0 Error: insufficient authorization",
      ]);
    });
  });

  it("LOGIN= satisfies authRequired; a later XCLIENT without LOGIN forgets it", async () => {
    await withServerNamed(
      HOSTNAME,
      {},
      { xclient: ["127.0.0.0/8"], authRequired: true },
      async (server) => {
        const client = await connect(server.port);
        await client.reply();
        await client.command("EHLO filter.example");
        expect((await client.command("MAIL FROM:<a@example.com>"))?.[0]).toMatch(/^530 /);
        expect(await client.command("XCLIENT LOGIN=alice")).toEqual(["220 mx.relay.test smtpkit"]);
        await client.command("EHLO filter.example");
        expect(await client.command("MAIL FROM:<a@example.com>")).toEqual(["250 2.1.0 OK"]);
        await client.command("RSET");
        expect(await client.command("XCLIENT NAME=host.example")).toEqual([
          "220 mx.relay.test smtpkit",
        ]);
        await client.command("EHLO filter.example");
        expect((await client.command("MAIL FROM:<a@example.com>"))?.[0]).toMatch(/^530 /);
      },
    );
  });
});

describe("XFORWARD", () => {
  async function send(client: RawClient, subject: string): Promise<void> {
    expect((await client.command("MAIL FROM:<anne@example.com>"))?.[0]).toMatch(/^250 /);
    expect((await client.command("RCPT TO:<bart@example.com>"))?.[0]).toMatch(/^250 /);
    expect((await client.command("DATA"))?.[0]).toMatch(/^354 /);
    expect((await client.command(`Subject: ${subject}\r\n\r\nbody\r\n.`))?.[0]).toMatch(/^250 /);
  }

  it("records the up-stream client for one transaction; X-Peer names it", async () => {
    const recorder = recordingHandler();
    const output = debuggingOutput();
    const messages: Envelope["xforward"][] = [];
    const handler: Handler = {
      ...recorder.handler,
      handleDATA(server, session, envelope) {
        messages.push(envelope.xforward);
        return output.handler.handleDATA(server as never, session, envelope);
      },
    };
    await withServerNamed(HOSTNAME, handler, { xforward: ["127.0.0.1/32"] }, async (server) => {
      const client = await connect(server.port);
      await client.reply();
      const ehlo = await client.command("EHLO filter.example");
      expect(ehlo).toContain("250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT");
      expect(ehlo?.join("\n")).not.toContain("XCLIENT");
      expect(
        await client.command("XFORWARD NAME=up.example ADDR=198.51.100.9 PORT=2525 PROTO=ESMTP"),
      ).toEqual(["250 2.0.0 Ok"]);
      expect(await client.command("XFORWARD HELO=up-helo IDENT=Q+2B123 SOURCE=remote")).toEqual([
        "250 2.0.0 Ok",
      ]);
      await send(client, "forwarded");
      // The next transaction has no XFORWARD: the session's own peer again.
      await send(client, "direct");
      expect(await client.command("XFORWARD ADDR=[UNAVAILABLE] NAME=x.example")).toEqual([
        "250 2.0.0 Ok",
      ]);
      await client.command("MAIL FROM:<anne@example.com>");
      expect(await client.command("XFORWARD NAME=y.example")).toEqual([
        "503 5.5.1 Error: MAIL transaction in progress",
      ]);
      expect(await client.command("RSET")).toEqual(["250 2.0.0 OK"]);
      // RSET forgot it too.
      await send(client, "after reset");
      expect(await client.command("XFORWARD SOURCE=elsewhere")).toEqual([
        "501 5.5.4 Bad SOURCE syntax: elsewhere",
      ]);
      expect(await client.command(`XFORWARD PROTO=${"P".repeat(65)}`)).toEqual([
        `501 5.5.4 Bad PROTO syntax: ${"P".repeat(65)}`,
      ]);
      expect(await client.command("XFORWARD LOGIN=alice")).toEqual([
        "501 5.5.4 Bad XFORWARD attribute name: LOGIN",
      ]);
      // Not trusted with XCLIENT, and it is not on this server: an unknown command.
      expect((await client.command("XCLIENT ADDR=192.0.2.1"))?.[0]).toMatch(/^500 /);
    });
    expect(messages[0]).toEqual({
      address: { address: "198.51.100.9", family: "IPv4" },
      port: 2525,
      name: "up.example",
      helo: "up-helo",
      proto: "ESMTP",
      ident: "Q+123",
      source: "REMOTE",
      attributes: {
        NAME: "up.example",
        ADDR: "198.51.100.9",
        PORT: "2525",
        PROTO: "ESMTP",
        HELO: "up-helo",
        IDENT: "Q+123",
        SOURCE: "remote",
      },
    });
    expect(messages.slice(1)).toEqual([null, null]);
    const text = output.text();
    const peers = [...text.matchAll(/^X-Peer: (.*)$/gm)].map((m) => m[1]);
    expect(peers[0]).toBe("('198.51.100.9', 2525)");
    expect(peers[1]).toMatch(/^\('127\.0\.0\.1', \d+\)$/);
    expect(peers[2]).toMatch(/^\('127\.0\.0\.1', \d+\)$/);
    // The session itself never changed.
    expect(
      recorder.calls.every(
        (call) => (call.session.peer as { address: string }).address === LOCALHOST,
      ),
    ).toBe(true);
  });

  it("is refused to a client outside its trust list", async () => {
    await withServerNamed(HOSTNAME, {}, { xforward: ["127.0.0.1/32"] }, async (server) => {
      const client = await connect(server.port, OTHER_LOOPBACK);
      await client.reply();
      expect((await client.command("EHLO other.example"))?.join("\n")).not.toContain("XFORWARD");
      expect(await client.command("XFORWARD ADDR=198.51.100.9")).toEqual([
        "550 5.7.0 Error: insufficient authorization",
      ]);
    });
  });
});

describe("XCLIENT behind a trusted PROXY header", () => {
  it("trust follows the client the header names, then the one XCLIENT names", async () => {
    const recorder = sessionRecorder();
    const options = {
      proxyProtocolTimeout: 5,
      proxyTrust: [LOCALHOST],
      xclient: ["10.1.0.0/16"],
    };
    await withServerNamed(HOSTNAME, recorder.handler, options, async (server) => {
      // The proxy passes on a filter at 10.1.2.3, which is trusted with XCLIENT.
      const filter = await connect(server.port);
      filter.write("PROXY TCP4 10.1.2.3 10.0.0.25 5555 25\r\n");
      expect(await filter.reply()).toEqual(["220 mx.relay.test smtpkit"]);
      expect(await filter.command("EHLO filter.example")).toContain(
        "250-XCLIENT NAME ADDR PROTO HELO PORT LOGIN DESTADDR DESTPORT",
      );
      expect(
        await filter.command("XCLIENT ADDR=192.0.2.50 PORT=1234 DESTADDR=192.0.2.25 DESTPORT=25"),
      ).toEqual(["220 mx.relay.test smtpkit"]);
      expect((await filter.command("EHLO filter.example"))?.join("\n")).not.toContain("XCLIENT");
      expect((await filter.command("MAIL FROM:<anne@example.com>"))?.[0]).toMatch(/^250 /);
      await filter.command("RCPT TO:<bart@example.com>");
      await filter.command("DATA");
      expect((await filter.command("Subject: hi\r\n\r\nhi\r\n."))?.[0]).toMatch(/^250 /);
      // Another client through the same proxy, not in the XCLIENT list.
      const other = await connect(server.port);
      other.write("PROXY TCP4 10.9.9.9 10.0.0.25 6666 25\r\n");
      await other.reply();
      expect((await other.command("EHLO other.example"))?.join("\n")).not.toContain("XCLIENT");
      expect(await other.command("XCLIENT ADDR=192.0.2.51")).toEqual([
        "550 5.7.0 Error: insufficient authorization",
      ]);
    });
    expect(recorder.connects[0]).toMatchObject({
      peer: { address: "10.1.2.3", port: 5555 },
      transportPeer: { address: LOCALHOST },
    });
    expect(recorder.connects[1]).toMatchObject({
      peer: { address: "192.0.2.50", port: 1234, family: "IPv4" },
      transportPeer: { address: LOCALHOST },
      localAddress: "192.0.2.25",
      localPort: 25,
    });
    expect(recorder.messages[0]?.session).toMatchObject({
      peer: { address: "192.0.2.50", port: 1234 },
      xclient: { ADDR: "192.0.2.50", PORT: "1234", DESTADDR: "192.0.2.25", DESTPORT: "25" },
    });
  });
});

describe("smtpkit --xclient / --xforward", () => {
  it("trusts the given blocks; X-Peer in the Debugging output names the relayed client", async () => {
    const daemon = startDaemon(process.execPath, [
      CLI,
      "-n",
      "-l",
      `${LOCALHOST}:0`,
      "--xclient",
      "127.0.0.1/32",
      "--xforward",
      "127.0.0.1/32,::1",
      "--",
    ]);
    daemons.push(daemon);
    const stderr = await daemon.waitFor("stderr", /listening on \S+:\d+/);
    const port = Number(/listening on \S+:(\d+)/.exec(stderr)?.[1]);
    const result = await swaks(port, "--xclient-addr", "203.0.113.8", "--xclient-port", "4321");
    expect(result.code, result.stdout + result.stderr).toBe(0);
    await daemon.waitFor("stdout", "X-Peer: ('203.0.113.8', 4321)");
    const client = await connect(port);
    await client.reply();
    expect(await client.command("EHLO filter.example")).toContain(
      "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT",
    );
    const untrusted = await connect(port, OTHER_LOOPBACK);
    await untrusted.reply();
    expect((await untrusted.command("EHLO other.example"))?.join("\n")).not.toMatch(
      /XCLIENT|XFORWARD/,
    );
  });

  it("refuses a bad block", async () => {
    const result = await run(process.execPath, [CLI, "-n", "--xclient", "10.0.0.0/33"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("argument --xclient: Invalid trusted proxy entry");
  });
});
