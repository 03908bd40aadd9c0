// Trace fields: Received: (RFC 5321 §4.4) and Return-Path: from Mailbox, Message and the received()
// body stage, over real sockets with Nodemailer (STARTTLS included).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test as propTest } from "@fast-check/vitest";
import { Envelope, type Handler, Session } from "@smtpkit/core/server";
import { compose, type SmtpServer, serve } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { makeCertificate } from "../../node/test/helpers.js";
import {
  HeaderInserter,
  insertHeaders,
  Mailbox,
  Message,
  type ParsedMessage,
  received,
  receivedValue,
  rfc5322Date,
} from "../src/index.js";
import { cut, decode, encode } from "./support.js";

const root = mkdtempSync(join(tmpdir(), "smtpkit-received-"));
let count = 0;
const servers: SmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 1000 })));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function start(handler: Handler, options: Parameters<typeof serve>[1] = {}) {
  const server = await serve(handler, {
    host: "127.0.0.1",
    port: 0,
    hostname: "mx.test",
    ...options,
  });
  servers.push(server);
  return server;
}

const RAW = "Subject: traced\r\n\r\nbody\r\n";
const send = (port: number, to: string[], extra: Record<string, unknown> = {}) =>
  nodemailer
    .createTransport({
      host: "127.0.0.1",
      port,
      ignoreTLS: true,
      name: "client.example.com",
      ...extra,
    })
    .sendMail({ envelope: { from: "alice@example.com", to }, raw: RAW });

/** Records the session id, and plays a reverse DNS lookup's result. */
function session(ids: string[], reverse?: { name: string; fcrdns: boolean }): Handler {
  return {
    handleCONNECT(_server, s) {
      if (reverse) {
        s.reverseName = reverse.name;
        s.fcrdns = reverse.fcrdns;
      }
    },
    handleMAIL(_server, s) {
      ids.push(s.id);
    },
  };
}

function stored(dir: string): string[] {
  return readdirSync(join(dir, "new")).map((name) => readFileSync(join(dir, "new", name), "utf8"));
}

const DATE = String.raw`[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000`;

describe("Mailbox trace fields", () => {
  test("Return-Path and Received on top: helo, [ip], ESMTP, session id, the one recipient, date", async () => {
    const dir = join(root, `box${++count}`);
    const ids: string[] = [];
    const server = await start(compose(session(ids), new Mailbox(dir)));
    await send(server.port, ["bob@example.net"]);
    const [text] = stored(dir);
    const expected = new RegExp(
      `^Return-Path: <alice@example\\.com>\\nReceived: from client\\.example\\.com \\(\\[127\\.0\\.0\\.1\\]\\) by mx\\.test with ESMTP id ${ids[0]} for <bob@example\\.net>; ${DATE}\\nSubject: traced\\n`,
    );
    expect(text).toMatch(expected);
    expect(ids[0]).toMatch(/^\S+$/);
  });

  test("no `for` with two recipients; a forward-confirmed reverse name is written", async () => {
    const dir = join(root, `box${++count}`);
    const server = await start(
      compose(session([], { name: "mail.example.com", fcrdns: true }), new Mailbox(dir)),
    );
    await send(server.port, ["bob@example.net", "carol@example.net"]);
    const [text] = stored(dir);
    expect(text).toMatch(
      /\nReceived: from client\.example\.com \(mail\.example\.com \[127\.0\.0\.1\]\) by mx\.test with ESMTP id \S+; /,
    );
  });

  test("a reverse name that is not forward-confirmed is left out", async () => {
    const dir = join(root, `box${++count}`);
    const server = await start(
      compose(session([], { name: "liar.example.com", fcrdns: false }), new Mailbox(dir)),
    );
    await send(server.port, ["bob@example.net"]);
    const [text] = stored(dir);
    expect(text).toMatch(/\nReceived: from client\.example\.com \(\[127\.0\.0\.1\]\) by /);
    expect(text).not.toMatch(/liar/);
  });

  test("after STARTTLS: with ESMTPS and the TLS version and cipher in a comment", async () => {
    const dir = join(root, `box${++count}`);
    const server = await start(new Mailbox(dir), { tls: makeCertificate() });
    await send(server.port, ["bob@example.net"], {
      ignoreTLS: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
    });
    const [text] = stored(dir);
    expect(text).toMatch(
      /\nReceived: from client\.example\.com \(\[127\.0\.0\.1\]\) by mx\.test with ESMTPS \(TLSv1\.[23] [A-Z0-9_-]+\) id \S+ for <bob@example\.net>; /,
    );
  });

  test("traceHeaders: false writes neither", async () => {
    const dir = join(root, `box${++count}`);
    const server = await start(new Mailbox(dir, { traceHeaders: false }));
    await send(server.port, ["bob@example.net"]);
    const [text] = stored(dir);
    expect(text?.startsWith("Subject: traced\n")).toBe(true);
  });
});

describe("Message and received()", () => {
  test("Message prepends Received to what it parses", async () => {
    const parsed: ParsedMessage[] = [];
    class Keep extends Message {
      handleMessage(message: ParsedMessage) {
        parsed.push(message);
      }
    }
    const server = await start(new Keep());
    await send(server.port, ["bob@example.net"]);
    expect(decode(parsed[0]?.raw ?? new Uint8Array())).toMatch(
      /^Received: from client\.example\.com \(\[127\.0\.0\.1\]\) by mx\.test with ESMTP id \S+ for <bob@example\.net>; .*\r\nSubject: traced\r\n/,
    );
    expect(parsed[0]?.header("X-Peer")).toMatch(/^\('127\.0\.0\.1', \d+\)$/);
  });

  test("received() as a body stage before a delivery that adds none", async () => {
    const bodies: string[] = [];
    const delivery: Handler = {
      async handleDATAStream(_s, _ss, _e, body) {
        bodies.push(await body.text());
        return "250 OK";
      },
    };
    const server = await start(compose(received(), delivery));
    await send(server.port, ["bob@example.net"]);
    expect(bodies[0]).toMatch(
      new RegExp(
        `^Received: from client\\.example\\.com \\(\\[127\\.0\\.0\\.1\\]\\) by mx\\.test with ESMTP id \\S+ for <bob@example\\.net>; ${DATE}\\r\\n${RAW}$`,
      ),
    );
  });
});

describe("receivedValue", () => {
  const at = new Date(Date.UTC(2026, 11, 4, 1, 2, 3));
  const sessionFor = (peer: Session["peer"]) => {
    const s = new Session(peer, null, new AbortController().signal);
    s.id = "ABC";
    s.hostName = "helo.example";
    s.extendedSmtp = true;
    return s;
  };

  test("IPv6 literal, SMTPUTF8, authenticated; a Unix socket has no TCP info", () => {
    const envelope = new Envelope();
    envelope.rcptTos.push("bob@example.net");
    envelope.smtpUtf8 = true;
    const v6 = sessionFor({ address: "::1", port: 25, family: "IPv6" });
    v6.authenticated = true;
    expect(receivedValue({ hostname: "mx.test" }, v6, envelope, at)).toBe(
      "from helo.example ([IPv6:::1]) by mx.test with UTF8SMTPA id ABC for <bob@example.net>; Fri, 04 Dec 2026 01:02:03 +0000",
    );
    const unix = sessionFor({ address: "/run/smtp.sock", port: 0, family: "unix" });
    expect(receivedValue({ hostname: "mx.test" }, unix, new Envelope(), at)).toBe(
      "from helo.example by mx.test with ESMTP id ABC; Fri, 04 Dec 2026 01:02:03 +0000",
    );
  });

  test("client text cannot break out of the field or its comment", () => {
    const s = sessionFor({ address: "127.0.0.1", port: 1, family: "IPv4" });
    s.hostName = "evil)\r\nX-Injected: yes (";
    expect(receivedValue({ hostname: "mx.test" }, s, new Envelope(), at)).toBe(
      "from evil X-Injected: yes  ([127.0.0.1]) by mx.test with ESMTP id ABC; Fri, 04 Dec 2026 01:02:03 +0000",
    );
  });

  test("rfc5322Date pads and names in English", () => {
    expect(rfc5322Date(new Date(Date.UTC(2027, 0, 9, 8, 7, 6)))).toBe(
      "Sat, 09 Jan 2027 08:07:06 +0000",
    );
  });
});

describe("HeaderInserter with prepended fields", () => {
  const parts = [
    "Subject: a\r\n",
    "X: b\n",
    " folded\r\n",
    "\r\n",
    "body\r\n",
    "From x\r\n",
    "\n",
    "plain line\r",
    "",
  ];
  propTest.prop([
    fc.array(fc.constantFrom(...parts), { maxLength: 8 }),
    fc.array(fc.nat(200), { maxLength: 6 }),
    fc.boolean(),
  ])(
    "any split of the message gives the same bytes, the prepended lines first",
    (pieces, points, append) => {
      const content = encode(pieces.join(""));
      const fields: [string, string][] = append ? [["X-Peer", "p"]] : [];
      const prepend: [string, string][] = [["Received", "from a by b; now"]];
      const whole = decode(insertHeaders(content, fields, prepend));
      const inserter = new HeaderInserter(fields, prepend);
      const streamed = [
        ...cut(content, points).flatMap((c) => inserter.push(c)),
        ...inserter.end(),
      ];
      expect(streamed.map(decode).join("")).toBe(whole);
      expect(whole.startsWith("Received: from a by b; now\r\n")).toBe(true);
      if (!append) expect(whole).toBe(`Received: from a by b; now\r\n${pieces.join("")}`);
    },
  );
});
