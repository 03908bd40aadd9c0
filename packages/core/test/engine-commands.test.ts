/**
 * The command side of the engine at the event level: which events come out, what they carry,
 * which of them await a decision, what the program's answers do to the session, and how misuse
 * of the API is reported (LocalProtocolError). Exact reply texts are pinned by the golden files.
 */
import { describe, expect, it } from "vitest";
import { ServerConnection } from "../src/engine/connection.js";
import { LocalProtocolError, RemoteProtocolError } from "../src/errors.js";
import type { SmtpEvent } from "../src/events.js";
import type { ConnectionOptions } from "../src/options.js";
import {
  bin,
  Dialog,
  deferAll,
  dialog,
  GOOD_PLAIN_B64,
  latin1,
  policy,
  replyCodes,
} from "./helpers/dialog.js";

const ENVELOPE = "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n";

function types(events: readonly SmtpEvent[]): string[] {
  return events.map((event) => event.type);
}

function ofType<T extends SmtpEvent["type"]>(
  events: readonly SmtpEvent[],
  type: T,
): Extract<SmtpEvent, { type: T }>[] {
  return events.filter((event): event is Extract<SmtpEvent, { type: T }> => event.type === type);
}

describe("connection start", () => {
  it("queues the greeting at construction and then needs data", () => {
    const conn = new ServerConnection();
    expect(latin1(conn.dataToSend())).toBe("220 localhost smtpkit\r\n");
    expect(conn.dataToSend().length).toBe(0);
    expect(conn.nextEvent()).toEqual({ type: "needData" });
    expect(conn.phase).toBe("command");
    expect(conn.bufferedBytes).toBe(0);
    expect(conn.greeted).toBe(false);
    expect(conn.extended).toBe(false);
    expect(conn.isTls).toBe(false);
    expect(conn.isAuthenticated).toBe(false);
    expect(conn.inTransaction).toBe(false);
  });

  it("with PROXY protocol sends nothing until the header", () => {
    const conn = new ServerConnection({ proxyProtocol: true });
    expect(conn.dataToSend().length).toBe(0);
    expect(conn.phase).toBe("proxy");
    expect(conn.nextEvent().type).toBe("needData");
  });

  it("implicit TLS is TLS from the start (beyond.md)", () => {
    const conn = new ServerConnection({ implicitTls: true });
    expect(conn.isTls).toBe(true);
  });
});

describe("hello", () => {
  it("HELO: event fields, and the default reply", () => {
    const d = dialog("HELO client.example\r\n");
    expect(d.events).toEqual([
      {
        type: "hello",
        verb: "HELO",
        hostname: "client.example",
        extended: false,
        responses: ["250 localhost"],
      },
    ]);
    expect(d.conn.greeted).toBe(true);
    expect(d.conn.extended).toBe(false);
  });

  it("EHLO: responses are every planned line", () => {
    const d = dialog("EHLO client.example\r\n");
    const [hello] = ofType(d.events, "hello");
    expect(hello?.verb).toBe("EHLO");
    expect(hello?.extended).toBe(true);
    expect(hello?.responses).toEqual([
      "250-localhost",
      "250-SIZE 33554432",
      "250-8BITMIME",
      "250-PIPELINING",
      "250-ENHANCEDSTATUSCODES",
      "250-CHUNKING",
      "250-LIMITS RCPTMAX=1000",
      "250 HELP",
    ]);
    expect(d.output).toBe(`220 localhost smtpkit\r\n${hello?.responses.join("\r\n")}\r\n`);
    expect(d.conn.extended).toBe(true);
  });

  it("keeps the whole argument as the host name (it may contain spaces)", () => {
    const d = dialog("HELO two  words \r\n");
    expect(ofType(d.events, "hello")[0]?.hostname).toBe("two  words");
  });

  it("a list of lines replaces the EHLO reply", () => {
    const d = dialog("EHLO c\r\n", {
      policy: policy({
        hello: (_e, conn) => void conn.reply("250-mx.example Hi\r\n250 SIZE 10"),
      }),
    });
    expect(d.replyLines.slice(1)).toEqual(["250-mx.example Hi", "250 SIZE 10"]);
    expect(d.conn.greeted).toBe(true);
  });

  it("a refused HELO leaves the session without a host name", () => {
    const d = dialog("HELO c\r\nMAIL FROM:<a@example.com>\r\n", {
      policy: policy({ hello: (_e, conn) => void conn.reply("550 5.7.1 Go away") }),
    });
    expect(d.replyLines.slice(1)).toEqual([
      "550 5.7.1 Go away",
      "503 5.5.1 Error: send HELO first",
    ]);
    expect(d.conn.greeted).toBe(false);
  });

  it("LMTP: LHLO is the greeting verb, HELO and EHLO are rejected events", () => {
    const d = dialog("HELO c\r\nEHLO c\r\nLHLO c\r\n", { options: { lmtp: true } });
    expect(types(d.events)).toEqual(["rejected", "rejected", "hello"]);
    expect(ofType(d.events, "rejected").map((e) => e.reply.code)).toEqual([500, 500]);
    expect(ofType(d.events, "hello")[0]?.verb).toBe("LHLO");
  });
});

describe("MAIL and RCPT", () => {
  it("MAIL: event fields", () => {
    const d = dialog("EHLO c\r\nMAIL FROM:<a@example.com> SIZE=100 BODY=8bitmime\r\n");
    const [mail] = ofType(d.events, "mail");
    expect(mail).toEqual({
      type: "mail",
      address: "a@example.com",
      params: [
        { keyword: "SIZE", value: "100" },
        { keyword: "BODY", value: "8bitmime" },
      ],
      options: ["SIZE=100", "BODY=8bitmime"],
      smtpUtf8: false,
      body: "8BITMIME",
      size: 100,
      requireTls: false,
      dsn: null,
      auth: null,
      mtPriority: null,
      deliverBy: null,
      futureRelease: null,
    });
    expect(d.conn.inTransaction).toBe(true);
  });

  it("MAIL: the null reverse-path is the string <>", () => {
    const d = dialog("HELO c\r\nMAIL FROM:<>\r\n");
    expect(ofType(d.events, "mail")[0]?.address).toBe("<>");
  });

  it("MAIL: SMTPUTF8 when enabled", () => {
    const d = dialog("EHLO c\r\nMAIL FROM:<a@example.com> SMTPUTF8\r\n", {
      options: { extensions: { smtpUtf8: true } },
    });
    expect(ofType(d.events, "mail")[0]?.smtpUtf8).toBe(true);
  });

  it("MAIL: SMTPUTF8 allows a UTF-8 address", () => {
    const d = dialog(
      new TextEncoder().encode("EHLO c\r\nMAIL FROM:<jösé@exämple.com> SMTPUTF8\r\n"),
      {
        options: { extensions: { smtpUtf8: true } },
      },
    );
    expect(ofType(d.events, "mail")[0]?.address).toBe("jösé@exämple.com");
  });

  it("MAIL: a refusal opens no transaction", () => {
    const d = dialog(`${ENVELOPE}`, {
      policy: policy({ mail: (_e, conn) => void conn.reply("550 5.7.1 Sender refused") }),
    });
    expect(d.replyLines.slice(-2)).toEqual([
      "550 5.7.1 Sender refused",
      "503 5.5.1 Error: need MAIL command",
    ]);
    expect(d.conn.inTransaction).toBe(false);
  });

  it("RCPT: event fields; refused recipients are not recipients", () => {
    const d = dialog(
      `${ENVELOPE}RCPT TO:<nobody@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n.\r\n`,
      {
        policy: policy({
          rcpt: (event, conn) => {
            if (event.type === "rcpt" && event.address.startsWith("nobody"))
              conn.reply("550 5.1.1 No such user");
            else conn.accept();
          },
        }),
      },
    );
    const rcpts = ofType(d.events, "rcpt");
    expect(rcpts[0]).toEqual({
      type: "rcpt",
      address: "b@example.com",
      params: [],
      options: [],
      dsn: null,
      rrvs: null,
    });
    expect(rcpts.map((e) => e.address)).toEqual([
      "b@example.com",
      "nobody@example.com",
      "c@example.com",
    ]);
    expect(ofType(d.events, "bodyEnd")[0]?.recipients).toEqual(["b@example.com", "c@example.com"]);
  });

  it("RCPT: DSN fields when the extension is on", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com> RET=HDRS ENVID=QQ+2B1\r\nRCPT TO:<b@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+40example.com\r\nRCPT TO:<c@example.com>\r\n",
      { options: { extensions: { dsn: true } } },
    );
    expect(ofType(d.events, "mail")[0]?.dsn).toEqual({ ret: "HDRS", envelopeId: "QQ+1" });
    const rcpts = ofType(d.events, "rcpt");
    expect(rcpts[0]?.dsn).toEqual({
      notify: ["SUCCESS", "DELAY"],
      originalRecipient: { type: "rfc822", address: "b@example.com" },
    });
    expect(rcpts[1]?.dsn).toEqual({ notify: null, originalRecipient: null });
  });

  it("declared extra parameters are passed through", () => {
    const d = dialog(
      "EHLO c\r\nMAIL FROM:<a@example.com> XTRACE=1\r\nRCPT TO:<b@example.com> XPRIO=high\r\n",
      {
        options: { extensions: { mailParameters: ["xtrace"], rcptParameters: ["XPRIO"] } },
      },
    );
    expect(ofType(d.events, "mail")[0]?.params).toEqual([{ keyword: "XTRACE", value: "1" }]);
    expect(ofType(d.events, "rcpt")[0]?.options).toEqual(["XPRIO=high"]);
  });

  it("a reply without an enhanced code gets the context's default; plain mode sends it as given", () => {
    const answer = policy({
      mail: (_e, conn) => void conn.reply("451 Try again later"),
      rcpt: (_e, conn) => void conn.reply("450 Mailbox busy"),
    });
    const enhanced = dialog("HELO c\r\nMAIL FROM:<a@example.com>\r\n", { policy: answer });
    expect(enhanced.replyLines.at(-1)).toBe("451 4.1.0 Try again later");
    const plain = dialog("HELO c\r\nMAIL FROM:<a@example.com>\r\n", {
      policy: answer,
      options: { extensions: { enhancedStatusCodes: false } },
    });
    expect(plain.replyLines.at(-1)).toBe("451 Try again later");
  });

  it("rejected events carry the verb, the reply, and a RemoteProtocolError with it", () => {
    const d = dialog("MAIL FROM:<a@example.com>\r\n");
    const reply = { code: 503, enhanced: "5.5.1", lines: ["Error: send HELO first"] };
    expect(d.events).toMatchObject([{ type: "rejected", verb: "MAIL", reply }]);
    const [event] = d.events;
    if (event?.type !== "rejected") throw new Error("expected a rejected event");
    expect(event.error).toBeInstanceOf(RemoteProtocolError);
    expect(event.error.reply).toEqual(reply);
  });
});

describe("DATA", () => {
  it("dataStart, body chunks, bodyEnd with size and recipients", () => {
    const d = dialog(`${ENVELOPE}DATA\r\nSubject: x\r\n\r\n..body\r\n.\r\n`);
    expect(types(d.events)).toEqual(["hello", "mail", "rcpt", "dataStart", "bodyChunk", "bodyEnd"]);
    expect(ofType(d.events, "dataStart")[0]).toEqual({ type: "dataStart", via: "DATA" });
    expect(d.bodies).toEqual(["Subject: x\r\n\r\n.body\r\n"]);
    expect(ofType(d.events, "bodyEnd")[0]).toEqual({
      type: "bodyEnd",
      error: null,
      size: "Subject: x\r\n\r\n..body\r\n".length,
      recipients: ["b@example.com"],
    });
    expect(d.conn.inTransaction).toBe(false);
  });

  it("a refused body still ends the transaction (beyond.md: the next MAIL works)", () => {
    const d = dialog(`${ENVELOPE}DATA\r\nx\r\n.\r\nMAIL FROM:<a@example.com>\r\n`, {
      policy: policy({ bodyEnd: (_e, conn) => void conn.reply("554 5.6.0 Content refused") }),
    });
    expect(d.replyLines.slice(-2)).toEqual(["554 5.6.0 Content refused", "250 2.1.0 OK"]);
  });

  it("a body over a limit: bodyEnd with the error, no decision awaited, transaction ended", () => {
    const d = dialog(`${ENVELOPE}DATA\r\n12345678901\r\n.\r\n`, { options: { dataSizeLimit: 10 } });
    const [end] = ofType(d.events, "bodyEnd");
    expect(end?.error).toBe("tooMuchData");
    expect(d.conn.phase).toBe("command");
    expect(d.conn.inTransaction).toBe(false);
    expect(d.replyLines.at(-1)).toBe("552 5.3.4 Error: Too much mail data");
  });

  it("BDAT: dataStart via BDAT once, chunks as body, bodyEnd after LAST", () => {
    const d = dialog(`${ENVELOPE}BDAT 5\r\nhelloBDAT 6 LAST\r\n world`);
    expect(types(d.events)).toEqual(["hello", "mail", "rcpt", "dataStart", "bodyChunk", "bodyEnd"]);
    expect(ofType(d.events, "dataStart")[0]?.via).toBe("BDAT");
    expect(d.bodies).toEqual(["hello world"]);
    expect(ofType(d.events, "bodyEnd")[0]?.size).toBe(11);
  });

  it("BDAT refused: a rejected event, no body events", () => {
    const d = dialog("EHLO c\r\nBDAT 4\r\nQUIT");
    expect(types(d.events)).toEqual(["hello", "rejected"]);
    expect(d.status).toBe("needData");
  });

  // Changed by a defect fix: EOF mid-body used to close without ending the body; now the body
  // ends as "aborted" (no reply) before `closed` (TestServer_eofMidDataAbortsBody).
  it("EOF in the middle of a body ends it as aborted, then closes", () => {
    const d = dialog([`${ENVELOPE}DATA\r\npartial`, { eof: true }]);
    expect(types(d.events)).toEqual([
      "hello",
      "mail",
      "rcpt",
      "dataStart",
      "bodyChunk",
      "bodyEnd",
      "closed",
    ]);
    expect(d.events.find((e) => e.type === "bodyEnd")).toMatchObject({ error: "aborted" });
    expect(d.closedReason).toBe("eof");
  });
});

describe("the other commands", () => {
  it("NOOP carries its argument (null when none)", () => {
    const d = dialog("NOOP\r\nNOOP  some thing  \r\n");
    expect(d.events).toEqual([
      { type: "noop", argument: null },
      { type: "noop", argument: "some thing" },
    ]);
  });

  it("RSET ends the transaction before its event", () => {
    const d = new Dialog({
      policy: policy({
        rset: (_e, conn) => {
          expect(conn.inTransaction).toBe(false);
          conn.accept();
        },
      }),
    });
    d.send("HELO c\r\nMAIL FROM:<a@example.com>\r\n");
    expect(d.conn.inTransaction).toBe(true);
    d.send("RSET\r\n");
    expect(ofType(d.events, "rset")).toHaveLength(1);
  });

  it("VRFY carries the parsed address", () => {
    const d = dialog("VRFY <User@Example.com>\r\n");
    expect(d.events).toEqual([{ type: "vrfy", address: "User@Example.com" }]);
  });

  it("QUIT: the reply, then closed", () => {
    const d = dialog("QUIT\r\nNOOP\r\n");
    expect(types(d.events)).toEqual(["quit", "closed"]);
    expect(d.closedReason).toBe("quit");
    expect(d.replyLines).toEqual(["220 localhost smtpkit", "221 2.0.0 Bye"]);
    expect(d.conn.nextEvent().type).toBe("closed");
  });

  it("QUIT with a custom reply still closes", () => {
    const d = dialog("QUIT\r\n", {
      policy: policy({ quit: (_e, conn) => void conn.reply("221 2.0.0 See you") }),
    });
    expect(d.replyLines.at(-1)).toBe("221 2.0.0 See you");
    expect(d.closedReason).toBe("quit");
  });

  it("HELP and EXPN answer without an event awaiting a decision", () => {
    const d = dialog("HELP\r\nEXPN x\r\n");
    expect(types(d.events)).toEqual(["rejected"]);
    expect(replyCodes(d.output)).toEqual([220, 250, 502]);
  });
});

describe("push()", () => {
  it("a pushed reply replaces the default one", () => {
    const d = dialog("HELO c\r\nMAIL FROM:<a@example.com>\r\n", {
      policy: policy({
        mail: (_e, conn) => {
          conn.push("250 2.1.0 Pushed");
          conn.accept();
        },
      }),
    });
    expect(d.replyLines.slice(2)).toEqual(["250 2.1.0 Pushed"]);
    expect(d.conn.inTransaction).toBe(true);
  });

  it("a pushed refusal opens no transaction", () => {
    const d = dialog("HELO c\r\nMAIL FROM:<a@example.com>\r\n", {
      policy: policy({
        mail: (_e, conn) => {
          conn.push("550 5.7.1 Pushed refusal");
          conn.accept();
        },
      }),
    });
    expect(d.replyLines.slice(2)).toEqual(["550 5.7.1 Pushed refusal"]);
    expect(d.conn.inTransaction).toBe(false);
  });

  it("push() after close is a LocalProtocolError", () => {
    const d = dialog("QUIT\r\n");
    expect(() => d.conn.push("250 OK")).toThrow(LocalProtocolError);
  });
});

describe("AUTH", () => {
  const auth = { implicitTls: true, auth: { mechanisms: ["PLAIN", "LOGIN", "XOAUTH2"] } } as const;

  it("the auth event: upper-case mechanism, decoded initial response, empty for =, null for none", () => {
    const events: SmtpEvent[] = [];
    const record = policy({
      auth: (event, conn) => {
        events.push(event);
        conn.completeAuth(false);
      },
    });
    dialog(`EHLO c\r\nAUTH plain ${GOOD_PLAIN_B64}\r\nAUTH PLAIN =\r\nAUTH login\r\n`, {
      options: auth,
      policy: record,
    });
    expect(events).toEqual([
      { type: "auth", mechanism: "PLAIN", initialResponse: bin("\0user\0password") },
      { type: "auth", mechanism: "PLAIN", initialResponse: new Uint8Array(0) },
      { type: "auth", mechanism: "LOGIN", initialResponse: null },
    ]);
  });

  it("a LOGIN exchange: two challenges, two responses, success", () => {
    const step = { n: 0 };
    const login = policy({
      auth: (_e, conn) => conn.challenge("User Name\0"),
      authResponse: (event, conn) => {
        if (event.type !== "authResponse") return;
        step.n++;
        if (step.n === 1) {
          expect(latin1(event.response)).toBe("user");
          conn.challenge(bin("Password\0"));
        } else {
          expect(latin1(event.response)).toBe("secret");
          conn.completeAuth(true);
        }
      },
    });
    const d = dialog(
      `EHLO c\r\nAUTH LOGIN\r\n${btoa("user")}\r\n${btoa("secret")}\r\nAUTH PLAIN\r\n`,
      {
        options: auth,
        policy: login,
      },
    );
    expect(d.replyLines.slice(-4)).toEqual([
      "334 VXNlciBOYW1lAA==",
      "334 UGFzc3dvcmQA",
      "235 2.7.0 Authentication successful",
      "503 5.5.1 Already authenticated",
    ]);
    expect(d.conn.isAuthenticated).toBe(true);
  });

  it("completeAuth with the program's own reply", () => {
    const d = dialog("EHLO c\r\nAUTH PLAIN AAAA\r\n", {
      options: auth,
      policy: policy({
        auth: (_e, conn) => conn.completeAuth(false, "454 4.7.0 Temporary authentication failure"),
      }),
    });
    expect(d.replyLines.at(-1)).toBe("454 4.7.0 Temporary authentication failure");
    expect(d.conn.isAuthenticated).toBe(false);
  });

  it("authAborted events: cancelled, bad base64; an empty line is an empty response", () => {
    const responses: Uint8Array[] = [];
    const d = dialog("EHLO c\r\nAUTH XOAUTH2\r\n*\r\nAUTH XOAUTH2\r\n!!!\r\nAUTH XOAUTH2\r\n\r\n", {
      options: auth,
      policy: policy({
        auth: (_e, conn) => conn.challenge(""),
        authResponse: (event, conn) => {
          if (event.type === "authResponse") responses.push(event.response);
          conn.completeAuth(false);
        },
      }),
    });
    expect(ofType(d.events, "authAborted").map((e) => e.reason)).toEqual([
      "cancelled",
      "badBase64",
    ]);
    expect(responses).toEqual([new Uint8Array(0)]);
    expect(d.replyLines.slice(-6)).toEqual([
      "334 ",
      "501 5.7.0 Auth aborted",
      "334 ",
      "501 5.5.2 Can't decode base64",
      "334 ",
      "535 5.7.8 Authentication credentials invalid",
    ]);
  });

  it("mechanisms allowed in clear are offered and accepted without TLS", () => {
    const d = dialog("EHLO c\r\nAUTH XOAUTH2 AAAA\r\nAUTH PLAIN AAAA\r\n", {
      options: { auth: { mechanisms: ["PLAIN", "XOAUTH2"], clearTextMechanisms: ["xoauth2"] } },
    });
    expect(d.replyLines).toContain("250-AUTH XOAUTH2");
    expect(ofType(d.events, "auth").map((e) => e.mechanism)).toEqual(["XOAUTH2"]);
    expect(d.replyLines.at(-1)).toBe(
      "538 5.7.11 Encryption required for requested authentication mechanism",
    );
  });
});

describe("STARTTLS", () => {
  it("startTls event, then paused; input is dropped until tlsEstablished()", () => {
    const d = new Dialog({ options: { startTls: true } });
    d.send("EHLO c\r\nSTARTTLS\r\nNOOP\r\n");
    expect(types(d.events)).toEqual(["hello", "startTls"]);
    expect(d.status).toBe("paused");
    expect(d.conn.phase).toBe("paused");
    expect(d.conn.bufferedBytes).toBe(0);
    d.send("NOOP\r\n");
    expect(d.conn.bufferedBytes).toBe(0);
    expect(d.conn.nextEvent().type).toBe("paused");
    d.send({ tls: true });
    expect(d.conn.isTls).toBe(true);
    expect(d.conn.greeted).toBe(false);
    expect(d.send("NOOP\r\n")).toBe("250 2.0.0 OK\r\n");
  });

  it("tlsEstablished() without STARTTLS is a LocalProtocolError", () => {
    const conn = new ServerConnection({ startTls: true });
    expect(() => conn.tlsEstablished()).toThrow(LocalProtocolError);
  });

  it("STARTTLS forgets authentication", () => {
    const d = dialog([`EHLO c\r\nAUTH PLAIN ${GOOD_PLAIN_B64}\r\nSTARTTLS\r\n`, { tls: true }], {
      options: { startTls: true, auth: { mechanisms: ["PLAIN"], requireTls: false } },
    });
    expect(d.replyLines).toContain("235 2.7.0 Authentication successful");
    expect(d.conn.isAuthenticated).toBe(false);
  });
});

describe("added and replaced commands", () => {
  it("an added command: command event, the program's reply, listed by HELP with its syntax", () => {
    const d = dialog("PING\r\nPING  a b \r\nHELP\r\nHELP ping\r\nEHLO c\r\nHELP PING\r\n", {
      options: { commands: { PING: { syntax: "PING [ignored]", extendedSyntax: " [more]" } } },
      policy: policy({ command: (_e, conn) => void conn.reply("259 Pong") }),
    });
    expect(ofType(d.events, "command")).toEqual([
      { type: "command", verb: "PING", argument: null, builtin: false },
      { type: "command", verb: "PING", argument: "a b", builtin: false },
    ]);
    const lines = d.replyLines;
    expect(lines[1]).toBe("259 2.0.0 Pong");
    expect(lines[3]).toBe(
      "250 2.0.0 Supported commands: AUTH BDAT DATA EHLO HELO HELP MAIL NOOP PING QUIT RCPT RSET VRFY",
    );
    expect(lines[4]).toBe("250 2.0.0 Syntax: PING [ignored]");
    expect(lines.at(-1)).toBe("250 2.0.0 Syntax: PING [ignored] [more]");
  });

  it("an added command without a reply gets 451 4.3.0", () => {
    const d = dialog("XYZ\r\n", { options: { commands: { XYZ: {} } } });
    expect(d.replyLines.at(-1)).toBe("451 4.3.0 Error: the command produced no reply");
  });

  it("a replaced built-in: command event with builtin true; runBuiltin() runs aiosmtpd's logic", () => {
    const d = dialog("HELO c\r\nMAIL FROM:<a@example.com>\r\n", {
      options: { commands: { MAIL: {} } },
    });
    expect(types(d.events)).toEqual(["hello", "command", "mail"]);
    expect(ofType(d.events, "command")[0]).toEqual({
      type: "command",
      verb: "MAIL",
      argument: "FROM:<a@example.com>",
      builtin: true,
    });
    expect(d.replyLines.at(-1)).toBe("250 2.1.0 OK");
  });

  it("an invalid verb in options is a TypeError", () => {
    expect(() => new ServerConnection({ commands: { "BAD VERB": {} } })).toThrow(TypeError);
  });
});

describe("closing", () => {
  it("closeConnection() with a last reply", () => {
    const d = dialog([
      "HELO c\r\n",
      { act: (conn) => conn.closeConnection("421 4.4.2 localhost Error: timeout exceeded") },
    ]);
    expect(d.replyLines.at(-1)).toBe("421 4.4.2 localhost Error: timeout exceeded");
    expect(d.closedReason).toBe("closedByServer");
    expect(d.conn.phase).toBe("closed");
  });

  it("closeConnection() while an event awaits a reply", () => {
    const d = new Dialog({ policy: deferAll });
    d.send("NOOP\r\n");
    expect(d.conn.phase).toBe("reply");
    d.conn.closeConnection();
    expect(d.conn.nextEvent()).toEqual({ type: "closed", reason: "closedByServer" });
  });

  it("end of input: closed eof; more input after it is a LocalProtocolError", () => {
    const d = dialog(["NOOP\r\n", { eof: true }]);
    expect(d.closedReason).toBe("eof");
    expect(() => d.conn.receiveData(bin("NOOP\r\n"))).toThrow(LocalProtocolError);
  });

  it("end of input answers the complete lines before it", () => {
    const conn = new ServerConnection();
    conn.receiveData(bin("NOOP\r\nNOOP\r\n"));
    conn.receiveData(new Uint8Array(0));
    expect(conn.nextEvent().type).toBe("noop");
    conn.accept();
    expect(conn.nextEvent().type).toBe("noop");
    conn.accept();
    expect(conn.nextEvent()).toEqual({ type: "closed", reason: "eof" });
  });

  it("input after close is ignored", () => {
    const d = dialog("QUIT\r\n");
    d.conn.receiveData(bin("NOOP\r\n"));
    expect(d.conn.bufferedBytes).toBe(0);
    expect(d.conn.nextEvent().type).toBe("closed");
  });

  it("maxUnknownCommands sets the limit", () => {
    const d = dialog("A\r\nB\r\nC\r\n", { options: { maxUnknownCommands: 2 } });
    expect(replyCodes(d.output)).toEqual([220, 500, 502]);
    expect(d.closedReason).toBe("tooManyUnknownCommands");
  });
});

describe("API misuse is a LocalProtocolError", () => {
  it("accept() with nothing pending", () => {
    expect(() => new ServerConnection().accept()).toThrow(LocalProtocolError);
  });

  it("nextEvent() while an event awaits its reply", () => {
    const conn = new ServerConnection();
    conn.receiveData(bin("NOOP\r\nNOOP\r\n"));
    expect(conn.nextEvent().type).toBe("noop");
    expect(() => conn.nextEvent()).toThrow(LocalProtocolError);
  });

  it("rejectProxy() outside proxyHeader", () => {
    const conn = new ServerConnection();
    conn.receiveData(bin("NOOP\r\n"));
    conn.nextEvent();
    expect(() => conn.rejectProxy()).toThrow(LocalProtocolError);
  });

  it("challenge() and completeAuth() outside AUTH", () => {
    const conn = new ServerConnection();
    conn.receiveData(bin("NOOP\r\n"));
    conn.nextEvent();
    expect(() => conn.challenge("x")).toThrow(LocalProtocolError);
    expect(() => conn.completeAuth(true)).toThrow(LocalProtocolError);
  });

  it("a malformed reply string is a TypeError", () => {
    const conn = new ServerConnection();
    conn.receiveData(bin("NOOP\r\n"));
    conn.nextEvent();
    expect(() => conn.reply("OK")).toThrow(TypeError);
  });

  it("bad commandCallLimit values are TypeErrors", () => {
    expect(() => new ServerConnection({ commandCallLimit: "5" as unknown as number })).toThrow(
      TypeError,
    );
    expect(
      () => new ServerConnection({ commandCallLimit: { NOOP: "5" as unknown as number } }),
    ).toThrow(TypeError);
  });
});

describe("PROXY", () => {
  it("proxyHeader event with the parsed data, then the greeting", () => {
    const d = dialog("PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nNOOP\r\n", {
      options: { proxyProtocol: true },
    });
    expect(types(d.events)).toEqual(["proxyHeader", "noop"]);
    const [header] = ofType(d.events, "proxyHeader");
    expect(header?.proxy).toMatchObject({
      version: 1,
      family: "INET",
      srcAddress: "192.0.2.1",
      dstAddress: "198.51.100.2",
      srcPort: 56324,
      dstPort: 25,
      valid: true,
    });
    expect(d.replyLines).toEqual(["220 localhost smtpkit", "250 2.0.0 OK"]);
  });

  it("a PROXY v2 header", () => {
    const header = concatBytes([
      bin("\r\n\r\n\0\r\nQUIT\n"),
      Uint8Array.of(0x21, 0x11, 0x00, 0x0c),
      Uint8Array.of(192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x00, 0x19),
      bin("NOOP\r\n"),
    ]);
    const d = dialog(header, { options: { proxyProtocol: true } });
    expect(types(d.events)).toEqual(["proxyHeader", "noop"]);
    expect(ofType(d.events, "proxyHeader")[0]?.proxy).toMatchObject({
      version: 2,
      srcAddress: "192.0.2.1",
      srcPort: 56324,
      dstPort: 25,
    });
  });

  it("rejectProxy() closes without output", () => {
    const d = dialog("PROXY UNKNOWN\r\n", {
      options: { proxyProtocol: true },
      policy: policy({ proxyHeader: (_e, conn) => void conn.rejectProxy() }),
    });
    expect(d.output).toBe("");
    expect(d.closedReason).toBe("proxyRejected");
  });
});

describe("call limits and gates produce rejected events", () => {
  it("a call limit closes with reason callLimit", () => {
    const d = dialog("NOOP\r\nNOOP\r\n", { options: { commandCallLimit: 1 } });
    expect(types(d.events)).toEqual(["noop", "closed"]);
    expect(d.closedReason).toBe("callLimit");
  });

  it("530 before STARTTLS is a rejected event", () => {
    const d = dialog("MAIL FROM:<a@example.com>\r\n", {
      options: { startTls: true, requireStartTls: true },
    });
    expect(ofType(d.events, "rejected")[0]?.reply.code).toBe(530);
  });
});

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe("deferred answers (a hook that takes its time)", () => {
  it("pipelined commands wait for the pending answer, then run in order", () => {
    const d = new Dialog({ policy: policy({ mail: deferAll }) });
    const out = d.send(
      "HELO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nNOOP\r\n",
    );
    expect(out).toBe("250 localhost\r\n");
    expect(d.status).toBe("deferred");
    expect(d.conn.bufferedBytes).toBe("RCPT TO:<b@example.com>\r\nNOOP\r\n".length);
    d.conn.accept();
    expect(d.resume()).toBe("250 2.1.0 OK\r\n250 2.1.5 OK\r\n250 2.0.0 OK\r\n");
  });

  it("accept() returns the code it sent", () => {
    const d = new Dialog({ policy: deferAll });
    d.send("HELO c\r\n");
    expect(d.conn.accept()).toBe(250);
    d.resume();
    d.send("MAIL FROM:<a@example.com>\r\n");
    expect(d.conn.reply("451 4.3.0 Later")).toBe(451);
  });
});

describe("a LocalProtocolError leaves the pending event answerable (misuse is atomic)", () => {
  it("accept() to an auth event", () => {
    const d = new Dialog({
      options: { implicitTls: true, auth: { mechanisms: ["PLAIN"] } },
      policy: policy({ auth: deferAll }),
    });
    d.send("EHLO c\r\nAUTH PLAIN\r\n");
    expect(d.status).toBe("deferred");
    expect(() => d.conn.accept()).toThrow(LocalProtocolError);
    expect(d.conn.phase).toBe("reply");
    d.conn.completeAuth(false);
    expect(d.resume()).toBe("535 5.7.8 Authentication credentials invalid\r\n");
  });

  it("rejectProxy() to a NOOP", () => {
    const d = new Dialog({ policy: deferAll });
    d.send("NOOP\r\n");
    expect(() => d.conn.rejectProxy()).toThrow(LocalProtocolError);
    expect(d.conn.phase).toBe("reply");
    d.conn.accept();
    expect(d.resume()).toBe("250 2.0.0 OK\r\n");
  });

  it("runBuiltin() for an added verb", () => {
    const d = new Dialog({ options: { commands: { PING: {} } }, policy: deferAll });
    d.send("PING\r\n");
    expect(() => d.conn.runBuiltin()).toThrow(LocalProtocolError);
    expect(d.conn.phase).toBe("reply");
    d.conn.reply("250 Pong");
    expect(d.resume()).toBe("250 2.0.0 Pong\r\n");
  });

  it("an LMTP list of the wrong length", () => {
    const d = new Dialog({ options: { lmtp: true }, policy: policy({ bodyEnd: deferAll }) });
    d.send(
      "LHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n.\r\n",
    );
    expect(() => d.conn.replyPerRecipient(["250 OK"])).toThrow(LocalProtocolError);
    expect(d.conn.phase).toBe("reply");
    d.conn.replyPerRecipient(["250 2.0.0 one", "450 4.2.0 two"]);
    expect(d.resume()).toBe("250 2.0.0 one\r\n450 4.2.0 two\r\n");
  });
});

describe("extension options", () => {
  it("REQUIRETLS is offered only under TLS, and sets requireTls on the mail event", () => {
    const options: ConnectionOptions = { implicitTls: true, extensions: { requireTls: true } };
    const d = dialog("EHLO c\r\nMAIL FROM:<a@example.com> REQUIRETLS\r\n", { options });
    expect(d.replyLines).toContain("250-REQUIRETLS");
    expect(d.events.find((e) => e.type === "mail")).toMatchObject({ requireTls: true });
    const clear = dialog("EHLO c\r\n", { options: { extensions: { requireTls: true } } });
    expect(clear.replyLines).not.toContain("250-REQUIRETLS");
  });

  it("extra EHLO keywords come after the built-in ones, before STARTTLS/AUTH/HELP", () => {
    const d = dialog("EHLO c\r\n", {
      options: { startTls: true, extensions: { keywords: ["XCLIENT ADDR NAME"] } },
    });
    expect(d.replyLines.slice(-3)).toEqual(["250-XCLIENT ADDR NAME", "250-STARTTLS", "250 HELP"]);
  });
});
