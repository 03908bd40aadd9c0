import { describe, expect, test } from "vitest";
import type { SaslMechanism } from "../src/sasl.js";
import type { AuthVerdict, Handler } from "../src/server/handler.js";
import { type Envelope, type Session, SMTP, syntax } from "../src/server/index.js";
import type { SmtpOptions } from "../src/server/smtp-options.js";
import { MemoryTransport } from "./helpers/memory-transport.js";

const decoder = new TextDecoder();

function start(
  handler: Handler = {},
  options: SmtpOptions = {},
  transport = new MemoryTransport(),
) {
  const server = new SMTP(handler, { hostname: "mx.test", ...options });
  const done = server.run(transport);
  return { server, transport, done };
}

async function greet(transport: MemoryTransport, verb = "EHLO") {
  await transport.replies(1);
  return transport.command(`${verb} client.test`);
}

async function sendMessage(transport: MemoryTransport, body = "Subject: hi\r\n\r\nHello\r\n") {
  expect(await transport.command("MAIL FROM:<a@example.com>")).toEqual(["250 2.1.0 OK"]);
  expect(await transport.command("RCPT TO:<b@example.com>")).toEqual(["250 2.1.5 OK"]);
  expect(await transport.command("DATA")).toEqual(["354 End data with <CR><LF>.<CR><LF>"]);
  return transport.command(`${body}.`);
}

describe("SMTP with handler hooks", () => {
  test("handleDATA sees the envelope and its reply is sent", async () => {
    const seen: { envelope?: Envelope; session?: Session } = {};
    const { transport, done } = start({
      async handleDATA(_server, session, envelope) {
        seen.envelope = envelope;
        seen.session = session;
        return "250 Message accepted for delivery";
      },
    });
    await greet(transport);
    expect(await sendMessage(transport, "Subject: hi\r\n\r\n..dotted\r\n")).toEqual([
      "250 2.0.0 Message accepted for delivery",
    ]);
    expect(seen.envelope?.mailFrom).toBe("a@example.com");
    expect(seen.envelope?.rcptTos).toEqual(["b@example.com"]);
    expect(decoder.decode(seen.envelope?.content as Uint8Array)).toBe(
      "Subject: hi\r\n\r\n.dotted\r\n",
    );
    expect(seen.envelope?.originalContent).toEqual(seen.envelope?.content);
    expect(seen.session?.hostName).toBe("client.test");
    expect(seen.session?.extendedSmtp).toBe(true);
    expect(seen.session?.peer).toEqual({ address: "127.0.0.1", port: 40000, family: "IPv4" });
    expect(await transport.command("QUIT")).toEqual(["221 2.0.0 Bye"]);
    await done;
    expect(transport.closed).toBe(true);
  });

  test("a hook returning nothing falls back to the default reply", async () => {
    const calls: string[] = [];
    const { transport } = start({
      handleHELO: () => void calls.push("HELO"),
      handleMAIL: () => void calls.push("MAIL"),
      handleRCPT: () => void calls.push("RCPT"),
      handleDATA: () => void calls.push("DATA"),
      handleRSET: () => void calls.push("RSET"),
      handleNOOP: () => void calls.push("NOOP"),
      handleVRFY: () => void calls.push("VRFY"),
      handleQUIT: () => void calls.push("QUIT"),
    });
    await transport.replies(1);
    expect(await transport.command("HELO client.test")).toEqual(["250 mx.test"]);
    expect(await sendMessage(transport)).toEqual(["250 2.0.0 OK"]);
    expect(await transport.command("RSET")).toEqual(["250 2.0.0 OK"]);
    expect(await transport.command("NOOP")).toEqual(["250 2.0.0 OK"]);
    expect(await transport.command("VRFY <x@y.z>")).toEqual([
      "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
    ]);
    expect(await transport.command("QUIT")).toEqual(["221 2.0.0 Bye"]);
    expect(calls).toEqual(["HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "QUIT"]);
  });

  test("a rejected MAIL leaves no transaction; a rejected RCPT adds no recipient", async () => {
    const { transport } = start({
      handleMAIL: (_s, _session, _e, address) =>
        address.startsWith("spam") ? "550 5.7.1 Go away" : undefined,
      handleRCPT: (_s, _session, _e, address) =>
        address.startsWith("nobody") ? "550 5.1.1 No such user" : undefined,
      handleDATA: (_s, _session, envelope) => `250 OK ${envelope.rcptTos.join(",")}`,
    });
    await greet(transport);
    expect(await transport.command("MAIL FROM:<spam@x.test>")).toEqual(["550 5.7.1 Go away"]);
    expect(await transport.command("RCPT TO:<b@x.test>")).toEqual([
      "503 5.5.1 Error: need MAIL command",
    ]);
    expect(await transport.command("MAIL FROM:<a@x.test>")).toEqual(["250 2.1.0 OK"]);
    expect(await transport.command("RCPT TO:<nobody@x.test>")).toEqual(["550 5.1.1 No such user"]);
    expect(await transport.command("RCPT TO:<b@x.test>")).toEqual(["250 2.1.5 OK"]);
    expect(await transport.command("DATA")).toEqual(["354 End data with <CR><LF>.<CR><LF>"]);
    expect(await transport.command("x\r\n.")).toEqual(["250 2.0.0 OK b@x.test"]);
  });

  test("handleEHLO can replace the EHLO reply", async () => {
    const { transport } = start({
      handleEHLO: (_s, session, _e, hostname, responses) => {
        session.hostName = `seen:${hostname}`;
        return [...responses.slice(0, -1), "250-XFOO", "250 HELP"];
      },
      handleDATA: (_s, session) => `250 ${session.hostName}`,
    });
    await transport.replies(1);
    const lines = await transport.command("EHLO c.test");
    expect(lines[0]).toBe("250-mx.test");
    expect(lines.slice(-2)).toEqual(["250-XFOO", "250 HELP"]);
    expect(await sendMessage(transport)).toEqual(["250 2.0.0 seen:c.test"]);
  });

  test("the envelope is renewed after DATA, RSET and EHLO, not the session", async () => {
    const envelopes: Envelope[] = [];
    const { transport } = start({
      handleMAIL: (_s, _session, envelope) => void envelopes.push(envelope),
    });
    await greet(transport);
    await sendMessage(transport);
    await sendMessage(transport);
    expect(await transport.command("MAIL FROM:<c@x.test>")).toEqual(["250 2.1.0 OK"]);
    expect(await transport.command("RSET")).toEqual(["250 2.0.0 OK"]);
    expect(await transport.command("MAIL FROM:<d@x.test>")).toEqual(["250 2.1.0 OK"]);
    await transport.command("EHLO again.test");
    expect(await transport.command("RCPT TO:<e@x.test>")).toEqual([
      "503 5.5.1 Error: need MAIL command",
    ]);
    expect(new Set(envelopes).size).toBe(4);
    expect(envelopes.map((e) => e.mailFrom)).toEqual([
      "a@example.com",
      "a@example.com",
      "c@x.test",
      "d@x.test",
    ]);
  });

  test("handleDATAStream receives the body as a stream with backpressure", async () => {
    let received = 0;
    let chunks = 0;
    const { transport } = start({
      async handleDATAStream(_s, _session, _envelope, body) {
        for await (const chunk of body) {
          received += chunk.byteLength;
          chunks++;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        return `250 2.0.0 got ${received}`;
      },
    });
    await greet(transport);
    await transport.command("MAIL FROM:<a@x.test>");
    await transport.command("RCPT TO:<b@x.test>");
    await transport.command("DATA");
    const line = `${"x".repeat(998)}\r\n`;
    for (let i = 0; i < 2000; i++) transport.send(line);
    expect(await transport.command(".")).toEqual([`250 2.0.0 got ${2000 * 1000}`]);
    expect(chunks).toBeGreaterThan(0);
  });

  test("a streaming hook that refuses early gets its reply after the whole body", async () => {
    const { transport } = start({
      handleDATAStream: async () => "554 5.7.1 Not today",
    });
    await greet(transport);
    await transport.command("MAIL FROM:<a@x.test>");
    await transport.command("RCPT TO:<b@x.test>");
    await transport.command("DATA");
    for (let i = 0; i < 100; i++) transport.send(`${"y".repeat(500)}\r\n`);
    expect(await transport.command(".")).toEqual(["554 5.7.1 Not today"]);
    expect(await transport.command("NOOP")).toEqual(["250 2.0.0 OK"]);
  });

  test("an over-size body errors the stream and the client gets 552", async () => {
    let streamError: unknown = null;
    const { transport } = start(
      {
        async handleDATAStream(_s, _session, _envelope, body) {
          try {
            for await (const _chunk of body) {
              // consume
            }
          } catch (error) {
            streamError = error;
          }
          return "250 OK";
        },
      },
      { dataSizeLimit: 1000 },
    );
    await greet(transport);
    await transport.command("MAIL FROM:<a@x.test>");
    await transport.command("RCPT TO:<b@x.test>");
    await transport.command("DATA");
    transport.send(`${"z".repeat(600)}\r\n${"z".repeat(600)}\r\n`);
    expect(await transport.command(".")).toEqual(["552 5.3.4 Error: Too much mail data"]);
    expect(streamError).toBeInstanceOf(Error);
  });

  test("handleException: default text, custom reply, and 451 when it returns nothing", async () => {
    const boom = {
      handleNOOP: () => {
        throw new TypeError("bad thing");
      },
    };
    let t = start(boom).transport;
    await t.replies(1);
    expect(await t.command("NOOP")).toEqual(["500 5.0.0 Error: (TypeError) bad thing"]);
    t = start({ ...boom, handleException: () => "451 4.3.0 Try later" }).transport;
    await t.replies(1);
    expect(await t.command("NOOP")).toEqual(["451 4.3.0 Try later"]);
    t = start({ ...boom, handleException: () => undefined }).transport;
    await t.replies(1);
    expect(await t.command("NOOP")).toEqual(["451 4.3.0 Error: internal error"]);
    expect(await t.command("NOOP")).toEqual(["451 4.3.0 Error: internal error"]);
  });

  test("after a handleDATA exception the transaction is over and the next MAIL works", async () => {
    let first = true;
    const { transport } = start({
      handleDATA: () => {
        if (first) {
          first = false;
          throw new Error("disk full");
        }
        return "250 OK";
      },
    });
    await greet(transport);
    expect(await sendMessage(transport)).toEqual(["500 5.0.0 Error: (Error) disk full"]);
    expect(await sendMessage(transport)).toEqual(["250 2.0.0 OK"]);
  });

  test("decodeData gives a string body; non-ASCII without SMTPUTF8 is refused", async () => {
    let content: unknown;
    const { transport } = start(
      {
        handleDATA: (_s, _session, e) => {
          content = e.content;
        },
      },
      { decodeData: true },
    );
    const ehlo = await greet(transport);
    expect(ehlo).not.toContain("250-8BITMIME");
    await sendMessage(transport, "plain text\r\n");
    expect(content).toBe("plain text\r\n");
    expect(await sendMessage(transport, "caf\u00e9\r\n")).toEqual([
      "500 5.6.7 Error: strict ASCII mode",
    ]);
  });

  test("LMTP: handleDATA returns one reply per recipient", async () => {
    const { transport } = start(
      {
        handleDATA: (_s, _session, envelope) =>
          envelope.rcptTos.map((rcpt) =>
            rcpt.startsWith("full") ? "452 4.2.2 Mailbox full" : "250 2.0.0 Delivered",
          ),
      },
      { lmtp: true },
    );
    await transport.replies(1);
    const lhlo = await transport.command("LHLO c.test");
    expect(lhlo).toContain("250-PIPELINING");
    expect(lhlo).toContain("250-ENHANCEDSTATUSCODES");
    await transport.command("MAIL FROM:<a@x.test>");
    await transport.command("RCPT TO:<one@x.test>");
    await transport.command("RCPT TO:<full@x.test>");
    await transport.command("RCPT TO:<two@x.test>");
    await transport.command("DATA");
    expect(await transport.command("hi\r\n.", 3)).toEqual([
      "250 2.0.0 Delivered",
      "452 4.2.2 Mailbox full",
      "250 2.0.0 Delivered",
    ]);
  });

  test("idle timeout sends 421 4.4.2 and closes", async () => {
    const { transport, done } = start({}, { timeout: 0.05 });
    await transport.replies(1);
    expect(await transport.replies(1)).toEqual(["421 4.4.2 mx.test Error: timeout exceeded"]);
    await done;
    expect(transport.closed).toBe(true);
  });

  test("shutdown(): an idle session gets 421 at once", async () => {
    const { server, transport, done } = start();
    await greet(transport);
    server.shutdown();
    expect(await transport.replies(1)).toEqual(["421 4.3.2 mx.test Service shutting down"]);
    await done;
  });

  test("shutdown(): a session mid-transaction finishes its message first", async () => {
    const { server, transport, done } = start({ handleDATA: () => "250 2.0.0 Queued" });
    await greet(transport);
    await transport.command("MAIL FROM:<a@x.test>");
    server.shutdown();
    await transport.command("RCPT TO:<b@x.test>");
    await transport.command("DATA");
    expect(await transport.command("body\r\n.", 2)).toEqual([
      "250 2.0.0 Queued",
      "421 4.3.2 mx.test Service shutting down",
    ]);
    await done;
  });

  test("the signal fires when the client goes away", async () => {
    let signal: AbortSignal | null = null;
    const { transport, done } = start({
      handleNOOP: (_s, _session, _e, _arg, s) => {
        signal = s;
      },
    });
    await transport.replies(1);
    await transport.command("NOOP");
    expect((signal as AbortSignal | null)?.aborted).toBe(false);
    transport.end();
    await done;
    expect((signal as AbortSignal | null)?.aborted).toBe(true);
  });
});

describe("subclassing and added commands", () => {
  class PingServer extends SMTP {
    async smtpPING(_argument: string | null) {
      await this.push("259 Pong");
    }
  }
  syntax("PING [ignored]")(PingServer.prototype.smtpPING);

  test("a subclass adds PING, listed by HELP with its syntax", async () => {
    const transport = new MemoryTransport();
    void new PingServer({}, { hostname: "mx.test" }).run(transport);
    await transport.replies(1);
    // Replies without an enhanced code get one while ENHANCEDSTATUSCODES is on.
    expect(await transport.command("PING")).toEqual(["259 2.0.0 Pong"]);
    expect(await transport.command("PING whatever")).toEqual(["259 2.0.0 Pong"]);
    expect((await transport.command("HELP"))[0]).toBe(
      "250 2.0.0 Supported commands: AUTH BDAT DATA EHLO HELO HELP MAIL NOOP PING QUIT RCPT RSET VRFY",
    );
    expect(await transport.command("HELP PING")).toEqual(["250 2.0.0 Syntax: PING [ignored]"]);
  });

  test("a subclass replaces MAIL and calls the built-in through super", async () => {
    class Picky extends SMTP {
      override async smtpMAIL(argument: string | null) {
        if (argument?.includes("blocked")) return "550 5.7.1 Sender blocked";
        return super.smtpMAIL(argument);
      }
    }
    const transport = new MemoryTransport();
    void new Picky({}, { hostname: "mx.test" }).run(transport);
    await greet(transport);
    expect(await transport.command("MAIL FROM:<blocked@x.test>")).toEqual([
      "550 5.7.1 Sender blocked",
    ]);
    expect(await transport.command("MAIL FROM:<ok@x.test>")).toEqual(["250 2.1.0 OK"]);
    expect(await transport.command("MAIL FROM:<again@x.test>")).toEqual([
      "503 5.5.1 Error: nested MAIL command",
    ]);
  });

  test("options.commands adds a command without subclassing", async () => {
    const { transport } = start(
      {},
      {
        commands: {
          XSTATS: {
            syntax: "XSTATS",
            run: (server) => `250 2.0.0 ${server.session.hostName ?? "nobody"}`,
          },
        },
      },
    );
    await greet(transport);
    expect(await transport.command("XSTATS")).toEqual(["250 2.0.0 client.test"]);
    expect(await transport.command("HELP XSTATS")).toEqual(["250 2.0.0 Syntax: XSTATS"]);
  });
});

describe("AUTH through the server", () => {
  const b64 = (text: string) => btoa(text);
  const authenticator: SmtpOptions["authenticator"] = (_s, _session, _e, _mechanism, data) => {
    const { login, password } = data as { login: Uint8Array; password: Uint8Array };
    const ok = decoder.decode(login) === "alice" && decoder.decode(password) === "secret";
    return ok ? { success: true, authData: "alice" } : { success: false };
  };

  test("PLAIN and LOGIN over implicit TLS; session fields are set", async () => {
    let session: Session | null = null;
    const { transport } = start(
      {
        handleMAIL: (_s, s) => {
          session = s;
        },
      },
      { authenticator },
      new MemoryTransport({ implicitTls: true }),
    );
    const ehlo = await greet(transport);
    expect(ehlo).toContain("250-AUTH LOGIN PLAIN");
    expect(await transport.command(`AUTH PLAIN ${b64("\0alice\0wrong")}`)).toEqual([
      "535 5.7.8 Authentication credentials invalid",
    ]);
    expect(await transport.command("AUTH login")).toEqual(["334 VXNlciBOYW1lAA=="]);
    expect(await transport.command(b64("alice"))).toEqual(["334 UGFzc3dvcmQA"]);
    expect(await transport.command(b64("secret"))).toEqual(["235 2.7.0 Authentication successful"]);
    expect(await transport.command(`AUTH PLAIN ${b64("\0alice\0secret")}`)).toEqual([
      "503 5.5.1 Already authenticated",
    ]);
    await transport.command("MAIL FROM:<a@x.test>");
    expect((session as Session | null)?.authenticated).toBe(true);
    expect((session as Session | null)?.authData).toBe("alice");
  });

  test("PLAIN with a challenge, cancel with *, bad base64", async () => {
    const { transport } = start({}, { authenticator }, new MemoryTransport({ implicitTls: true }));
    await greet(transport);
    expect(await transport.command("AUTH PLAIN")).toEqual(["334 "]);
    expect(await transport.command("*")).toEqual(["501 5.7.0 Auth aborted"]);
    expect(await transport.command("AUTH PLAIN")).toEqual(["334 "]);
    expect(await transport.command("not base64!")).toEqual(["501 5.5.2 Can't decode base64"]);
    expect(await transport.command(`AUTH PLAIN ${b64("nonul")}`)).toEqual([
      "501 5.5.2 Can't split auth value",
    ]);
    expect(await transport.command("AUTH PLAIN")).toEqual(["334 "]);
    expect(await transport.command(b64("\0alice\0secret"))).toEqual([
      "235 2.7.0 Authentication successful",
    ]);
  });

  test("AUTH is refused in clear text by default (538) and not advertised", async () => {
    const { transport } = start({}, { authenticator });
    const ehlo = await greet(transport);
    expect(ehlo.some((line) => line.includes("AUTH"))).toBe(false);
    expect(await transport.command("AUTH PLAIN")).toEqual([
      "538 5.7.11 Encryption required for requested authentication mechanism",
    ]);
  });

  test("a handler mechanism auth_NAME is offered and used", async () => {
    const handler: Handler & { auth_NULL__TOKEN(server: SMTP, args: string[]): Promise<unknown> } =
      {
        async auth_NULL__TOKEN(server: SMTP, args: string[]) {
          const answer = args[1]
            ? decoder.decode(Uint8Array.from(atob(args[1]), (c) => c.charCodeAt(0)))
            : "";
          const response =
            answer || decoder.decode((await server.challengeAuth("token?")) ?? new Uint8Array());
          return { success: response === "letmein", authData: "token-user" };
        },
      };
    const { transport } = start(handler, {
      authRequireTls: false,
      authExcludeMechanism: ["LOGIN"],
    });
    const ehlo = await greet(transport);
    expect(ehlo).toContain("250-AUTH NULL-TOKEN PLAIN");
    expect(await transport.command("AUTH NULL-TOKEN")).toEqual([`334 ${b64("token?")}`]);
    expect(await transport.command(b64("letmein"))).toEqual([
      "235 2.7.0 Authentication successful",
    ]);
  });

  test("authRequired gates MAIL until AUTH succeeds", async () => {
    const { transport } = start(
      {},
      { authenticator, authRequired: true },
      new MemoryTransport({ implicitTls: true }),
    );
    await greet(transport);
    expect(await transport.command("MAIL FROM:<a@x.test>")).toEqual([
      "530 5.7.0 Authentication required",
    ]);
    await transport.command(`AUTH PLAIN ${b64("\0alice\0secret")}`);
    expect(await transport.command("MAIL FROM:<a@x.test>")).toEqual(["250 2.1.0 OK"]);
  });
});

describe("STARTTLS through the server", () => {
  test("a new session after the handshake; injected plaintext is dropped", async () => {
    const sessions: Session[] = [];
    const { transport } = start(
      { handleEHLO: (_s, session) => void sessions.push(session) },
      {},
      new MemoryTransport({ startTls: true }),
    );
    const ehlo = await greet(transport);
    expect(ehlo).toContain("250-STARTTLS");
    transport.send("STARTTLS\r\nNOOP\r\nEHLO evil\r\n");
    expect(await transport.replies(1)).toEqual(["220 2.0.0 Ready to start TLS"]);
    await transport.handshake();
    expect(await transport.command("MAIL FROM:<a@x.test>")).toEqual([
      "503 5.5.1 Error: send HELO first",
    ]);
    const again = await transport.command("EHLO client.test");
    expect(again).not.toContain("250-STARTTLS");
    expect(await transport.command("STARTTLS")).toEqual(["503 5.5.1 Error: TLS already active"]);
    expect(sessions).toHaveLength(2);
    expect(sessions[0]).not.toBe(sessions[1]);
    expect(sessions[1]?.ssl?.protocol).toBe("TLSv1.3");
  });

  test("handleSTARTTLS returning false refuses every command but QUIT", async () => {
    const { transport } = start(
      { handleSTARTTLS: () => false },
      {},
      new MemoryTransport({ startTls: true }),
    );
    await greet(transport);
    await transport.command("STARTTLS");
    await transport.handshake();
    expect(await transport.command("EHLO c.test")).toEqual([
      "554 5.7.0 Command refused due to lack of security",
    ]);
    expect(await transport.command("QUIT")).toEqual(["221 2.0.0 Bye"]);
  });
});

describe("logging", () => {
  test("the logger sees the dialog but never credentials", async () => {
    const lines: string[] = [];
    const logger = {
      error: (m: string) => lines.push(`ERROR ${m}`),
      info: (m: string) => lines.push(`INFO ${m}`),
      debug: (m: string) => lines.push(`DEBUG ${m}`),
    };
    const secret = "s3cr3t-password";
    const { transport, done } = start(
      {},
      {
        logger,
        authenticator: () => ({ success: false }),
      },
      new MemoryTransport({ implicitTls: true }),
    );
    await greet(transport);
    await transport.command(`AUTH PLAIN ${btoa(`\0alice\0${secret}`)}`);
    await transport.command("AUTH LOGIN");
    await transport.command(btoa("alice"));
    await transport.command(btoa(secret));
    await transport.command("MAIL FROM:<a@x.test> SIZE=10");
    await transport.command("QUIT");
    await done;
    const text = lines.join("\n");
    expect(text).toContain("INFO 127.0.0.1:40000 connected");
    expect(text).toContain("DEBUG 127.0.0.1:40000 > MAIL FROM:<a@x.test> SIZE=10");
    expect(text).toContain("DEBUG 127.0.0.1:40000 > AUTH PLAIN ********");
    expect(text).toContain("INFO 127.0.0.1:40000 closed (quit)");
    expect(text).not.toContain(secret);
    expect(text).not.toContain(btoa(`\0alice\0${secret}`));
    expect(text).not.toContain(btoa(secret));
  });
});

describe("hook results that are not replies", () => {
  test.each([["hello"], ["600 x"], [42], [{ code: 250 }]])(
    "%j goes to handleException and the session goes on",
    async (bad) => {
      const errors: unknown[] = [];
      const { transport } = start({
        handleNOOP: () => bad as never,
        handleException: (error) => {
          errors.push(error);
          return "451 4.3.0 Bad hook";
        },
      });
      await transport.replies(1);
      expect(await transport.command("NOOP")).toEqual(["451 4.3.0 Bad hook"]);
      expect(await transport.command("RSET")).toEqual(["250 2.0.0 OK"]);
      expect(errors[0]).toBeInstanceOf(TypeError);
    },
  );

  test("handleAUTH answering 535 leaves session.authenticated false", async () => {
    let session: Session | null = null;
    const { transport } = start(
      {
        handleAUTH: (_s, s) => {
          session = s;
          return "535 5.7.8 Nope";
        },
      },
      { authRequireTls: false },
    );
    await greet(transport);
    expect(await transport.command("AUTH PLAIN")).toEqual(["535 5.7.8 Nope"]);
    expect((session as Session | null)?.authenticated).toBe(false);
  });
});

describe("421 closes the connection (RFC 5321 §3.8)", () => {
  test("a hook answering 421 gets its reply sent, then the session ends", async () => {
    const { transport, done } = start({ handleMAIL: () => "421 4.3.0 mx.test Try again later" });
    await greet(transport);
    expect(await transport.command("MAIL FROM:<a@x.test>")).toEqual([
      "421 4.3.0 mx.test Try again later",
    ]);
    await done;
    expect(transport.closed).toBe(true);
  });

  test("an AUTH result of 421 ends the session too", async () => {
    const { transport, done } = start(
      {},
      {
        authRequireTls: false,
        authenticator: () => ({ success: false, message: "421 4.7.0 Too many failed attempts" }),
      },
    );
    await greet(transport);
    expect(await transport.command(`AUTH PLAIN ${btoa("\0a\0b")}`)).toEqual([
      "421 4.7.0 Too many failed attempts",
    ]);
    await done;
    expect(transport.closed).toBe(true);
  });
});

describe("AUTH verdicts on an exchange the mechanism refused before it ended", () => {
  /** A mechanism that refuses at once and says why in a challenge, as SCRAM's `e=invalid-proof`. */
  const refusesWithReason: SaslMechanism = {
    name: "X-REFUSE",
    safeWithoutTls: true,
    start: () => {
      let said = false;
      return {
        step() {
          if (said) return { type: "failure", login: "alice" };
          said = true;
          return {
            type: "challenge",
            challenge: new TextEncoder().encode("e=invalid-proof"),
            verdict: "failure",
            login: "alice",
          };
        },
      };
    },
  };
  const verdicts: AuthVerdict[] = [];
  const handler: Handler = {
    handleAUTHResult(_server, _session, _envelope, verdict) {
      verdicts.push(verdict);
    },
  };

  for (const [name, ending, send] of [
    ["Cancel", "cancels with *", (t: MemoryTransport) => t.command("*")],
    ["HangUp", "hangs up", (t: MemoryTransport) => t.end()],
    ["Answer", "answers", (t: MemoryTransport) => t.command("")],
  ] as const) {
    test(`TestServer_authRefusedThen${name}: a failed verdict for alice when the client ${ending}`, async () => {
      verdicts.length = 0;
      const { server, transport, done } = start(handler, { mechanisms: [refusesWithReason] });
      await greet(transport);
      expect(await transport.command("AUTH X-REFUSE")).toEqual(["334 ZT1pbnZhbGlkLXByb29m"]);
      const final = await send(transport);
      if (ending === "cancels with *") expect(final).toEqual(["501 5.7.0 Auth aborted"]);
      if (ending === "answers") expect(final?.[0]).toMatch(/^535 /);
      if (ending !== "hangs up") await transport.command("QUIT");
      await done;
      expect(verdicts).toEqual([{ mechanism: "X-REFUSE", success: false, login: "alice" }]);
      expect(server.session.authenticated).toBe(false);
    });
  }
});
