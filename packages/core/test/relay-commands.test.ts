/**
 * XCLIENT and XFORWARD in the engine (Postfix's XCLIENT_README / XFORWARD_README): the attribute
 * grammar, the checks and their order, advertising, the session restart, and properties: any
 * split of the input gives the same events, random input only ever gives replies.
 */
import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { ServerConnection } from "../src/engine/connection.js";
import type { SmtpEvent } from "../src/events.js";
import type { ConnectionOptions } from "../src/options.js";
import {
  decodeValue,
  isHostname,
  parseAttributeList,
  parsePort,
  parseRelayAddress,
} from "../src/syntax/relay-attributes.js";
import { Dialog, dialog, policy } from "./helpers/dialog.js";

const TRUSTED: ConnectionOptions = {
  hostname: "mx.test",
  xclient: true,
  xforward: true,
  xclientTrusted: true,
  xforwardTrusted: true,
};
const UNTRUSTED: ConnectionOptions = { hostname: "mx.test", xclient: true, xforward: true };
const XCLIENT_KEYWORD = "250-XCLIENT NAME ADDR PROTO HELO PORT LOGIN DESTADDR DESTPORT";
const XFORWARD_KEYWORD = "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT";

const lastReply = (d: Dialog) => d.replyLines.at(-1);
const ofType = <T extends SmtpEvent["type"]>(d: Dialog, type: T) =>
  d.events.filter((e): e is Extract<SmtpEvent, { type: T }> => e.type === type);

describe("the attribute grammar", () => {
  it("splits NAME=value tokens, upper-cases names and decodes xtext", () => {
    expect(parseAttributeList("addr=192.0.2.1  HELO=a+20b\tlogin=x=y")).toEqual([
      { name: "ADDR", value: "192.0.2.1" },
      { name: "HELO", value: "a b" },
      { name: "LOGIN", value: "x=y" },
    ]);
  });

  it.each(["", "ADDR", "ADDR=", "=x", "A=1 B"])("refuses %j: attribute=value expected", (text) => {
    expect(parseAttributeList(text)).toEqual({ kind: "expected" });
  });

  it("refuses a value over 255 characters as sent", () => {
    expect(parseAttributeList(`HELO=${"a".repeat(255)}`)).toHaveLength(1);
    expect(parseAttributeList(`HELO=${"a".repeat(256)}`)).toEqual({ kind: "tooLong" });
  });

  it("decodes xtext as Postfix: bad xtext is taken as sent, unprintable bytes become ?", () => {
    expect(decodeValue("a+2Bb+3d")).toBe("a+b=");
    expect(decodeValue("a+0Db")).toBe("a?b");
    expect(decodeValue("100+")).toBe("100+");
    expect(decodeValue("+zz")).toBe("+zz");
    expect(decodeValue("caf\u00e9")).toBe("caf?");
  });

  it("takes host names as Postfix's valid_hostname()", () => {
    for (const name of ["a", "mx.example.org", "under_score.example", "a-b.c", "x1.2"]) {
      expect(isHostname(name), name).toBe(true);
    }
    for (const name of [
      "",
      "-a.example",
      "a-.example",
      "a..b",
      "1.2.3.4",
      "a b",
      `${"a".repeat(64)}.x`,
    ]) {
      expect(isHostname(name), name).toBe(false);
    }
  });

  it("takes IPv4 and IPV6:-prefixed addresses, normalised", () => {
    expect(parseRelayAddress("192.0.2.1")).toEqual({ address: "192.0.2.1", family: "IPv4" });
    expect(parseRelayAddress("ipv6:2001:DB8:0::1")).toEqual({
      address: "2001:db8::1",
      family: "IPv6",
    });
    expect(parseRelayAddress("IPv6:::ffff:192.0.2.9")).toEqual({
      address: "192.0.2.9",
      family: "IPv4",
    });
    for (const bad of ["2001:db8::1", "192.0.2", "192.0.2.256", "[192.0.2.1]", "IPV6:1.2.3.4"]) {
      expect(parseRelayAddress(bad), bad).toBeNull();
    }
  });

  it("takes ports from 0 to 65535", () => {
    expect(parsePort("0")).toBe(0);
    expect(parsePort("65535")).toBe(65535);
    for (const bad of ["65536", "-1", "1e3", "", "123456"]) expect(parsePort(bad), bad).toBeNull();
  });
});

describe("XCLIENT", () => {
  it("is an unknown command unless the options enable it", () => {
    const d = dialog("EHLO c\r\nXCLIENT ADDR=192.0.2.1\r\nHELP\r\n", { options: {} });
    expect(d.replyLines).not.toContain(XCLIENT_KEYWORD);
    expect(d.replyLines).toContain('500 5.5.1 Error: command "XCLIENT" not recognized');
    expect(lastReply(d)).not.toContain("XCLIENT");
  });

  it("is advertised to a trusted client and listed by HELP", () => {
    const d = dialog("EHLO c\r\nHELP\r\n", { options: TRUSTED });
    expect(d.replyLines).toContain(XCLIENT_KEYWORD);
    expect(d.replyLines).toContain(XFORWARD_KEYWORD);
    expect(lastReply(d)).toContain(" XCLIENT XFORWARD");
  });

  it("answers an untrusted client 550, after the transaction and argument checks", () => {
    const d = new Dialog({ options: UNTRUSTED });
    expect(d.lines("EHLO c")).not.toContain("XCLIENT");
    expect(d.lines("XCLIENT ADDR=192.0.2.1")).toBe(
      "550 5.7.0 Error: insufficient authorization\r\n",
    );
    expect(d.lines("XCLIENT")).toBe("501 5.5.4 Syntax: XCLIENT attribute=value...\r\n");
    d.lines("MAIL FROM:<a@example.com>");
    expect(d.lines("XCLIENT ADDR=192.0.2.1")).toBe(
      "503 5.5.1 Error: MAIL transaction in progress\r\n",
    );
    expect(ofType(d, "xclient")).toEqual([]);
  });

  it("accepted, greets again and starts a fresh session; LOGIN= authenticates it", () => {
    const d = new Dialog({
      options: { ...TRUSTED, implicitTls: true, auth: { mechanisms: ["PLAIN"], required: true } },
    });
    d.lines("EHLO c");
    expect(d.lines("XCLIENT ADDR=192.0.2.1 PORT=2525 LOGIN=alice PROTO=ESMTP")).toBe(
      "220 mx.test smtpkit\r\n",
    );
    expect(d.conn.greeted).toBe(false);
    expect(d.conn.isAuthenticated).toBe(true);
    expect(d.lines("MAIL FROM:<a@example.com>")).toBe("503 5.5.1 Error: send HELO first\r\n");
    d.lines("EHLO c");
    expect(d.lines("AUTH PLAIN")).toBe("503 5.5.1 Already authenticated\r\n");
    expect(d.lines("MAIL FROM:<a@example.com>")).toBe("250 2.1.0 OK\r\n");
    expect(ofType(d, "xclient")).toEqual([
      {
        type: "xclient",
        attributes: { ADDR: "192.0.2.1", PORT: "2525", LOGIN: "alice", PROTO: "ESMTP" },
        address: { address: "192.0.2.1", family: "IPv4" },
        port: 2525,
        name: undefined,
        helo: undefined,
        proto: "ESMTP",
        login: "alice",
        destAddress: undefined,
        destPort: undefined,
      },
    ]);
  });

  it("[UNAVAILABLE] and [TEMPUNAVAIL] are null, in any case", () => {
    const d = dialog(
      "XCLIENT ADDR=[unavailable] NAME=[TempUnavail] HELO=[UNAVAILABLE] LOGIN=[UNAVAILABLE] PORT=[UNAVAILABLE]\r\n",
      { options: TRUSTED },
    );
    expect(ofType(d, "xclient")[0]).toMatchObject({
      address: null,
      name: null,
      helo: null,
      login: null,
      port: null,
    });
    expect(d.conn.isAuthenticated).toBe(false);
  });

  it.each([
    ["XCLIENT NAME=bad_host-", "501 5.5.4 Bad NAME syntax: bad_host-"],
    ["XCLIENT ADDR=1.2.3", "501 5.5.4 Bad ADDR syntax: 1.2.3"],
    ["XCLIENT DESTADDR=x", "501 5.5.4 Bad DESTADDR syntax: x"],
    ["XCLIENT DESTPORT=99999", "501 5.5.4 Bad DESTPORT syntax: 99999"],
    ["XCLIENT PROTO=smtps", "501 5.5.4 Bad PROTO syntax: smtps"],
    ["XCLIENT REVERSE_NAME=a.example", "501 5.5.4 Bad XCLIENT attribute name: REVERSE_NAME"],
    ["XCLIENT ADDR=192.0.2.1 NAME", "501 5.5.4 Error: attribute=value expected"],
    ["XCLIENT NAME=a+0Ab", "501 5.5.4 Bad NAME syntax: a?b"],
  ])("%s → %s", (line, reply) => {
    const d = dialog(`EHLO c\r\n${line}\r\n`, { options: TRUSTED });
    expect(lastReply(d)).toBe(reply);
    expect(ofType(d, "xclient")).toEqual([]);
    expect(d.conn.greeted).toBe(true);
  });

  it("HELO= is neutered: characters special in headers become ?", () => {
    const d = dialog("XCLIENT HELO=<a>(b)+22c+40d\r\n", { options: TRUSTED });
    expect(ofType(d, "xclient")[0]?.helo).toBe("?a??b??c?d");
  });

  it("a refusal keeps the session as it was", () => {
    const d = dialog("EHLO c\r\nXCLIENT ADDR=192.0.2.1\r\nMAIL FROM:<a@example.com>\r\n", {
      options: TRUSTED,
      policy: policy({ xclient: (_e, conn) => void conn.reply("421 4.7.0 not now") }),
    });
    expect(d.replyLines.at(-1)).toBe("421 4.7.0 not now");
    expect(d.closedReason).toBe("closedByServer");
    const kept = dialog("EHLO c\r\nXCLIENT ADDR=192.0.2.1\r\nMAIL FROM:<a@example.com>\r\n", {
      options: TRUSTED,
      policy: policy({ xclient: (_e, conn) => void conn.reply("550 5.7.1 no") }),
    });
    expect(kept.replyLines.slice(-2)).toEqual(["550 5.7.1 no", "250 2.1.0 OK"]);
  });

  it("with deferGreeting, the new session's greeting is a connect decision", () => {
    const conn = new ServerConnection({ ...TRUSTED, deferGreeting: true });
    conn.receiveData(new TextEncoder().encode("EHLO c\r\nXCLIENT ADDR=192.0.2.1\r\nEHLO c\r\n"));
    const types: string[] = [];
    for (let event = conn.nextEvent(); event.type !== "needData"; event = conn.nextEvent()) {
      types.push(event.type);
      if (event.type === "connect" && types.length > 1) conn.reply("554 5.7.1 not you");
      else if (event.type !== "rejected") conn.accept();
    }
    expect(types).toEqual(["connect", "hello", "xclient", "connect", "rejected"]);
    const output = new TextDecoder().decode(conn.dataToSend()).split("\r\n");
    expect(output.filter((line) => /^(220|554) /.test(line))).toEqual([
      "220 mx.test smtpkit",
      "554 5.7.1 not you",
    ]);
    // A refused session (RFC 5321 §3.1) answers 503 until QUIT.
    expect(output.at(-2)).toBe("503 5.5.1 Error: session refused, send QUIT");
  });

  it("is allowed before STARTTLS, XFORWARD is not", () => {
    const d = new Dialog({ options: { ...TRUSTED, startTls: true, requireStartTls: true } });
    d.lines("EHLO c");
    expect(d.lines("XFORWARD ADDR=192.0.2.1")).toBe(
      "530 5.7.0 Must issue a STARTTLS command first\r\n",
    );
    expect(d.lines("XCLIENT ADDR=192.0.2.1")).toBe("220 mx.test smtpkit\r\n");
  });

  it("trustRelay() changes what the client may use and sees", () => {
    const d = new Dialog({ options: UNTRUSTED });
    d.send({ act: (conn) => conn.trustRelay({ xclient: true }) });
    const ehlo = d.lines("EHLO c");
    expect(ehlo).toContain(XCLIENT_KEYWORD);
    expect(ehlo).not.toContain("XFORWARD");
    d.send({ act: (conn) => conn.trustRelay({ xclient: false, xforward: true }) });
    const again = d.lines("EHLO c");
    expect(again).not.toContain("XCLIENT");
    expect(again).toContain(XFORWARD_KEYWORD);
    // Trust cannot switch on a command the options leave off.
    const off = new Dialog({ options: {} });
    off.send({ act: (conn) => conn.trustRelay({ xclient: true }) });
    expect(off.lines("EHLO c")).not.toContain("XCLIENT");
  });
});

describe("XFORWARD", () => {
  it("answers 250 2.0.0 Ok with the attributes as an event", () => {
    const d = dialog(
      "EHLO c\r\nXFORWARD NAME=up.example ADDR=IPV6:2001:db8::5 PORT=25 PROTO=x+2Dproto IDENT=[UNAVAILABLE] SOURCE=Local\r\n",
      { options: TRUSTED },
    );
    expect(lastReply(d)).toBe("250 2.0.0 Ok");
    expect(ofType(d, "xforward")[0]).toMatchObject({
      name: "up.example",
      address: { address: "2001:db8::5", family: "IPv6" },
      port: 25,
      proto: "x-proto",
      ident: null,
      source: "LOCAL",
      helo: undefined,
    });
    expect(d.conn.greeted).toBe(true);
  });

  it.each([
    ["XFORWARD NAME=a..b", "501 5.5.4 Bad NAME syntax: a..b"],
    ["XFORWARD SOURCE=inside", "501 5.5.4 Bad SOURCE syntax: inside"],
    ["XFORWARD DESTADDR=192.0.2.1", "501 5.5.4 Bad XFORWARD attribute name: DESTADDR"],
    ["XFORWARD", "501 5.5.4 Syntax: XFORWARD attribute=value..."],
  ])("%s → %s", (line, reply) => {
    expect(lastReply(dialog(`EHLO c\r\n${line}\r\n`, { options: TRUSTED }))).toBe(reply);
  });

  it("untrusted: 550; disabled: unknown", () => {
    expect(lastReply(dialog("XFORWARD ADDR=192.0.2.1\r\n", { options: UNTRUSTED }))).toBe(
      "550 5.7.0 Error: insufficient authorization",
    );
    expect(lastReply(dialog("XFORWARD ADDR=192.0.2.1\r\n", { options: { xclient: true } }))).toBe(
      '500 5.5.1 Error: command "XFORWARD" not recognized',
    );
  });
});

// -------------------------------------------------------------------------------------------------
// Properties.

const sizesArb = fc.array(fc.integer({ min: 1, max: 48 }), { minLength: 1, maxLength: 8 });
/** Attribute-ish text: names, `=`, xtext escapes, the special values, spaces. */
const attributeTextArb = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "ADDR=",
        "NAME=",
        "PORT=",
        "HELO=",
        "PROTO=",
        "LOGIN=",
        "DESTADDR=",
        "DESTPORT=",
        "IDENT=",
        "SOURCE=",
        "[UNAVAILABLE]",
        "[TEMPUNAVAIL]",
        "IPV6:",
        "::1",
        "192.0.2.1",
        "+20",
        "+",
        "=",
        " ",
        "ESMTP",
        "host.example",
        "65535",
      ),
      fc.string({ maxLength: 12 }),
    ),
    { maxLength: 12 },
  )
  .map((parts) => parts.join("").replace(/[\r\n]/g, ""));

const relayPieceArb = fc.oneof(
  fc.constantFrom(
    "EHLO c\r\n",
    "MAIL FROM:<a@example.com>\r\n",
    "RCPT TO:<b@example.com>\r\n",
    "DATA\r\nbody\r\n.\r\n",
    "RSET\r\n",
    "XCLIENT ADDR=192.0.2.1 NAME=c.example\r\n",
    "XCLIENT LOGIN=alice HELO=h PROTO=SMTP\r\n",
    "XCLIENT\r\n",
    "XFORWARD ADDR=198.51.100.1 IDENT=q1\r\n",
    "XFORWARD SOURCE=REMOTE\r\n",
    "XFORWARD BAD=1\r\n",
    "AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=\r\n",
  ),
  attributeTextArb.map((text) => `XCLIENT ${text}\r\n`),
  attributeTextArb.map((text) => `XFORWARD ${text}\r\n`),
);
const relayScriptArb = fc.array(relayPieceArb, { maxLength: 20 }).map((pieces) => pieces.join(""));

describe("properties", () => {
  test.prop([attributeTextArb])("parseAttributeList never throws; names are upper case", (text) => {
    const result = parseAttributeList(text);
    if (Array.isArray(result)) {
      for (const { name, value } of result) {
        expect(name).toBe(name.toUpperCase());
        expect(value).toMatch(/^[\x20-\x7e]*$/);
      }
    } else expect(["expected", "tooLong"]).toContain(result.kind);
  });

  const printableArb = fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x21-\x7e]/g, "x"));
  test.prop([printableArb])(
    "xtext-encoding then decoding is the identity (printable ASCII)",
    (text) => {
      const encoded = Array.from(text, (c) =>
        c === "+" || c === "=" ? `+${c.charCodeAt(0).toString(16).toUpperCase()}` : c,
      ).join("");
      expect(decodeValue(encoded)).toBe(text);
    },
  );

  test.prop([relayScriptArb, sizesArb, fc.boolean()])(
    "a relay dialog, split anyhow, gives the same events and output",
    (script, sizes, trusted) => {
      const options: ConnectionOptions = {
        ...(trusted ? TRUSTED : UNTRUSTED),
        auth: { mechanisms: ["PLAIN"] },
        implicitTls: true,
      };
      const whole = dialog(script, { options });
      const split = dialog(script, { options, chunks: sizes });
      expect(split.output).toBe(whole.output);
      expect(split.events).toEqual(whole.events);
    },
  );

  test.prop([attributeTextArb, fc.constantFrom("XCLIENT", "XFORWARD"), fc.boolean()])(
    "random attributes give the event or one 5xx reply, never an exception",
    (text, verb, trusted) => {
      const d = dialog(`EHLO c\r\n${verb} ${text}\r\n`, {
        options: trusted ? TRUSTED : UNTRUSTED,
      });
      const last = d.events.at(-1);
      const reply = lastReply(d) ?? "";
      if (last?.type === "xclient") expect(reply).toBe("220 mx.test smtpkit");
      else if (last?.type === "xforward") expect(reply).toBe("250 2.0.0 Ok");
      else {
        expect(last?.type).toBe("rejected");
        expect(reply).toMatch(trusted ? /^501 5\.5\.4 / : /^(501|550) 5\.[57]\.[04] /);
      }
    },
  );

  test.prop([fc.uint8Array({ maxLength: 200 }), sizesArb])(
    "random bytes after XCLIENT/XFORWARD only give events and replies",
    (bytes, sizes) => {
      const prefix = new TextEncoder().encode("EHLO c\r\nXCLIENT ");
      const input = new Uint8Array(prefix.length + bytes.length + 2);
      input.set(prefix);
      input.set(bytes, prefix.length);
      input.set([13, 10], prefix.length + bytes.length);
      const d = dialog([input, "XFORWARD ADDR=192.0.2.1\r\nQUIT\r\n"], {
        options: TRUSTED,
        chunks: sizes,
      });
      expect(d.status).toBe("closed");
    },
  );
});
