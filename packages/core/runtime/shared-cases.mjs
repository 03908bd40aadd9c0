// Runtime-neutral dialog cases for @smtpkit/core's built output. Plain JS, web globals only
// (TextEncoder/TextDecoder, Uint8Array, Promise, ReadableStream): no Buffer, no node:*, no npm deps.
// Node, Deno and Bun all run these same cases (runtime/smoke.mjs, deno.test.ts, bun.test.ts).
//
// Every case is { name, run() }. run() throws on failure; it returns undefined, except the case
// that drives the async SMTP class, whose run() returns a Promise (runners await every result).

import { LocalProtocolError, ServerConnection } from "../dist/index.js";
import { SMTP } from "../dist/server/index.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EOF = new Uint8Array(0);

// -------------------------------------------------------------------------------------------------
// Assertions.

function fail(message) {
  throw new Error(message);
}
function show(value) {
  return JSON.stringify(value, (_k, v) =>
    v instanceof Uint8Array ? `<bytes ${decoder.decode(v)}>` : v,
  );
}
function equal(actual, expected, what) {
  const a = show(actual);
  const e = show(expected);
  if (a !== e) fail(`${what}:\n  expected ${e}\n  actual   ${a}`);
}
function ok(condition, what) {
  if (!condition) fail(what);
}
function includes(text, part, what) {
  if (!text.includes(part)) fail(`${what}: ${show(part)} not found in ${show(text)}`);
}
function excludes(text, part, what) {
  if (text.includes(part)) fail(`${what}: ${show(part)} unexpectedly found in ${show(text)}`);
}
function throws(fn, type, what) {
  try {
    fn();
  } catch (error) {
    if (type && !(error instanceof type)) fail(`${what}: threw ${error} instead of ${type.name}`);
    return;
  }
  fail(`${what}: did not throw`);
}

// -------------------------------------------------------------------------------------------------
// Helpers.

const bytes = (text) => encoder.encode(text);
const text = (data) => decoder.decode(data);

function concat(chunks) {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Splits `data` into fresh arrays at the given cut points (sorted, in 1..length-1). */
function splitAt(data, cuts) {
  const out = [];
  let start = 0;
  for (const cut of cuts) {
    if (cut > start && cut < data.length) {
      out.push(data.slice(start, cut));
      start = cut;
    }
  }
  out.push(data.slice(start));
  return out;
}

function chunked(data, size) {
  const out = [];
  for (let i = 0; i < data.length; i += size) out.push(data.slice(i, i + size));
  return out;
}

/** mulberry32: a tiny seeded PRNG, so every runtime sees the same "random" splits. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function b64(textValue) {
  return btoa(textValue);
}

const AWAITS = new Set([
  "proxyHeader",
  "hello",
  "mail",
  "rcpt",
  "rset",
  "noop",
  "quit",
  "vrfy",
  "command",
]);

function summarize(event) {
  switch (event.type) {
    case "hello":
      return `hello ${event.verb} ${event.hostname}`;
    case "mail":
      return `mail ${event.address} [${event.options.join(" ")}]`;
    case "rcpt":
      return `rcpt ${event.address}`;
    case "dataStart":
      return `dataStart ${event.via}`;
    case "bodyEnd":
      return `bodyEnd ${event.error} ${event.size} [${event.recipients.join(" ")}]`;
    case "rejected":
      return `rejected ${event.verb} ${event.reply.code}`;
    case "noop":
      return `noop ${event.argument}`;
    case "vrfy":
      return `vrfy ${event.address}`;
    case "auth":
      return `auth ${event.mechanism} ${event.initialResponse === null ? "-" : text(event.initialResponse)}`;
    case "authResponse":
      return `authResponse ${text(event.response)}`;
    case "authAborted":
      return `authAborted ${event.reason}`;
    case "proxyHeader":
      return `proxyHeader v${event.proxy.version} ${event.proxy.srcAddress}:${event.proxy.srcPort}`;
    case "command":
      return `command ${event.verb} ${event.argument}`;
    case "closed":
      return `closed ${event.reason}`;
    default:
      return event.type;
  }
}

/**
 * Drives a ServerConnection through `steps`: byte chunks (or strings) to receive, or functions
 * called with the connection between chunks. After every step the events are pumped until the
 * engine needs data. Events that await a decision go to `decide(event, conn)`, which answers them
 * (accept / reply / replyPerRecipient / challenge / completeAuth) or returns false to get the default `accept()`.
 * At the end, EOF is delivered unless `eof: false`.
 */
function drive(options, steps, decide = () => false, { eof = true } = {}) {
  const conn = new ServerConnection(options);
  const log = [];
  const bodies = [];
  let body = null;
  let output = text(conn.dataToSend());
  let state = "needData";
  const pump = () => {
    if (state === "closed") return;
    for (;;) {
      const event = conn.nextEvent();
      if (event.type === "needData" || event.type === "paused") {
        state = event.type;
        break;
      }
      if (event.type === "bodyChunk") {
        if (body === null) fail("bodyChunk outside a body");
        body.push(event.data.slice());
        continue;
      }
      log.push(summarize(event));
      if (event.type === "closed") {
        state = "closed";
        break;
      }
      if (event.type === "dataStart") body = [];
      if (event.type === "bodyEnd") {
        bodies.push(text(concat(body ?? [])));
        body = null;
        if (event.error === null && !decide(event, conn)) conn.accept();
      } else if (event.type === "auth" || event.type === "authResponse") {
        if (!decide(event, conn)) fail(`no decision for ${event.type}`);
      } else if (AWAITS.has(event.type)) {
        if (!decide(event, conn)) conn.accept();
      } else {
        decide(event, conn);
      }
      output += text(conn.dataToSend());
    }
    output += text(conn.dataToSend());
  };
  pump();
  for (const step of steps) {
    if (typeof step === "function") step(conn, { log, output: () => output });
    else if (state !== "closed") conn.receiveData(typeof step === "string" ? bytes(step) : step);
    pump();
  }
  if (eof && state !== "closed") {
    conn.receiveData(EOF);
    pump();
  }
  return { conn, log, bodies, output, state };
}

/** Final reply lines ("250 ..." not "250-...") in the output. */
function finalLines(output) {
  return output.split("\r\n").filter((line) => /^\d{3}( |$)/.test(line));
}

// -------------------------------------------------------------------------------------------------
// Cases.

/** @type {{ name: string, run: () => void | Promise<void> }[]} */
const cases = [];
const test = (name, run) => cases.push({ name, run });

test("pipelined SMTP transaction", () => {
  const client =
    "EHLO client.example\r\n" +
    // One pipelined burst: MAIL, three RCPTs (one refused), DATA and the whole body, then QUIT.
    "MAIL FROM:<alice@example.org> SIZE=42 BODY=8BITMIME\r\n" +
    "RCPT TO:<bob@example.net>\r\nRCPT TO:<nobody@example.net>\r\nRCPT TO:<carol@example.net>\r\n" +
    "DATA\r\nSubject: hi\r\n\r\nHello.\r\n.\r\nQUIT\r\n";
  const { log, bodies, output, state } = drive(
    { hostname: "mx.example" },
    [client],
    (event, conn) => {
      if (event.type === "rcpt" && event.address.startsWith("nobody")) {
        conn.reply("550 5.1.1 No such user");
        return true;
      }
      if (event.type === "bodyEnd") {
        equal(event.recipients, ["bob@example.net", "carol@example.net"], "accepted recipients");
        conn.reply("250 2.0.0 Queued as 1234");
        return true;
      }
      return false;
    },
  );
  equal(
    output,
    "220 mx.example smtpkit\r\n" +
      "250-mx.example\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n250-PIPELINING\r\n" +
      "250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-LIMITS RCPTMAX=1000\r\n250 HELP\r\n" +
      "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 No such user\r\n250 2.1.5 OK\r\n" +
      "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Queued as 1234\r\n221 2.0.0 Bye\r\n",
    "server output",
  );
  equal(
    log,
    [
      "hello EHLO client.example",
      "mail alice@example.org [SIZE=42 BODY=8BITMIME]",
      "rcpt bob@example.net",
      "rcpt nobody@example.net",
      "rcpt carol@example.net",
      "dataStart DATA",
      "bodyEnd null 23 [bob@example.net carol@example.net]",
      "quit",
      "closed quit",
    ],
    "events",
  );
  equal(bodies, ["Subject: hi\r\n\r\nHello.\r\n"], "body");
  equal(state, "closed", "state");
});

test("DATA dot-unstuffing and SMTP smuggling", () => {
  const head = "EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n";
  // Dot-stuffing: a leading dot is removed once; a lone stuffed dot line survives as ".".
  const stuffed = drive({}, [head, "..leading dot\r\n...\r\n..\r\nmid.dle\r\n.\r\n", "QUIT\r\n"]);
  equal(stuffed.bodies, [".leading dot\r\n..\r\n.\r\nmid.dle\r\n"], "unstuffed body");

  // Smuggling: only CRLF . CRLF ends the data. "\n.\r\n", "\r\n.\n", "\r.\r" and "\n.\n" are body,
  // so the MAIL/RCPT/DATA hidden after them must never be parsed as commands.
  const smuggled =
    "Subject: s\r\n\r\nA\n.\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@y.example>\r\nDATA\r\nforged\r\n" +
    "B\r\n.\nC\r.\rD\n.\nE\r\n.\r\n";
  // The only transformation: "\r\n.\n" starts a real line whose stuffing dot is removed ("\r\n\n").
  const expectedBody = smuggled.slice(0, -3).replace("B\r\n.\nC", "B\r\n\nC");
  const allow = drive({}, [head, smuggled, "QUIT\r\n"]);
  equal(allow.bodies, [expectedBody], "smuggled text stays in the body");
  ok(
    !allow.log.some((line) => line.includes("evil") || line.includes("victim")),
    "no smuggled command was parsed",
  );
  equal(allow.log.filter((line) => line.startsWith("bodyEnd")).length, 1, "exactly one message");
  equal(
    finalLines(allow.output).slice(-2),
    ["250 2.0.0 OK", "221 2.0.0 Bye"],
    "one 250 for one message",
  );

  // The same bytes arriving one octet at a time.
  const slow = drive({}, [head, ...chunked(bytes(smuggled), 1), "QUIT\r\n"]);
  equal(slow.bodies, allow.bodies, "byte-by-byte body");
  equal(slow.output, allow.output, "byte-by-byte output");

  // Commands pipelined right after the terminator, in the same chunk, are parsed normally.
  const after = drive({}, [`${head}x\r\n.\r\nNOOP after\r\nQUIT\r\n`]);
  ok(after.log.includes("noop after"), "NOOP after the body");
});

test("BDAT chunks", () => {
  const session = drive({}, [
    "EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n",
    // A chunk's bytes are raw: a "\r\n.\r\n" or a command inside it is body, never a terminator.
    "BDAT 13\r\nHi\r\n.\r\nQUIT\r\n",
    "BDAT 5 LAST\r\n",
    "en",
    "d\r\n",
    "NOOP x\r\n",
    // Errors: a bad argument, BDAT without a transaction, DATA after BDAT.
    "BDAT nope\r\nQUIT\r\n",
  ]);
  equal(session.bodies, ["Hi\r\n.\r\nQUIT\r\nend\r\n"], "body of both chunks, unmodified");
  equal(
    session.log,
    [
      "hello EHLO c",
      "mail a@example.org []",
      "rcpt b@example.net",
      "dataStart BDAT",
      "bodyEnd null 18 [b@example.net]",
      "noop x",
      "rejected BDAT 501",
      "quit",
      "closed quit",
    ],
    "events",
  );
  equal(
    finalLines(session.output).slice(-6),
    [
      "250 2.1.5 OK",
      "250 2.0.0 OK: 13 octets received",
      "250 2.0.0 OK",
      "250 2.0.0 OK",
      "501 5.5.4 Syntax: BDAT <size> [LAST]",
      "221 2.0.0 Bye",
    ],
    "replies",
  );

  // A refused BDAT still consumes its chunk: the bytes are not parsed as commands.
  const refused = drive({}, ["EHLO c\r\nBDAT 15\r\nMAIL FROM:<x>\r\nQUIT\r\n"]);
  equal(
    refused.log,
    ["hello EHLO c", "rejected BDAT 503", "quit", "closed quit"],
    "refused BDAT events",
  );
  includes(refused.output, "503 5.5.1 Error: need RCPT command", "refusal reply");
});

test("LMTP per-recipient replies", () => {
  const client =
    "LHLO c\r\nMAIL FROM:<a@example.org>\r\n" +
    "RCPT TO:<one@example.net>\r\nRCPT TO:<nobody@example.net>\r\nRCPT TO:<two@example.net>\r\n" +
    "DATA\r\nhello\r\n.\r\n" +
    // Second transaction: default reply, one 250 per recipient.
    "MAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.net>\r\nRCPT TO:<y@example.net>\r\nDATA\r\nbye\r\n.\r\n" +
    "EHLO c\r\nQUIT\r\n";
  let checked = false;
  const session = drive({ lmtp: true }, [client], (event, conn) => {
    if (event.type === "rcpt" && event.address.startsWith("nobody")) {
      conn.reply("550 5.1.1 No such user");
      return true;
    }
    if (
      event.type === "bodyEnd" &&
      event.recipients.length === 2 &&
      event.recipients[0] === "one@example.net"
    ) {
      equal(event.recipients, ["one@example.net", "two@example.net"], "LMTP recipients");
      throws(
        () => conn.nextEvent(),
        LocalProtocolError,
        "nextEvent() while bodyEnd awaits its replies",
      );
      const first = conn.replyPerRecipient([
        "250 2.0.0 <one@example.net> delivered",
        "452 4.2.2 <two@example.net> over quota",
      ]);
      equal(first, 250, "first code");
      checked = true;
      return true;
    }
    return false;
  });
  ok(checked, "the first bodyEnd was seen");
  includes(session.output, "250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n", "LHLO reply");
  includes(
    session.output,
    "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 <one@example.net> delivered\r\n452 4.2.2 <two@example.net> over quota\r\n",
    "one reply per accepted recipient",
  );
  includes(
    session.output,
    "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n",
    "default LMTP replies",
  );
  includes(
    session.output,
    '500 5.5.1 Error: command "EHLO" not recognized\r\n',
    "EHLO is not LMTP",
  );
  equal(session.bodies, ["hello\r\n", "bye\r\n"], "bodies");
});

test("STARTTLS pause discards injected bytes", () => {
  const session = drive({ startTls: true }, [
    "EHLO c\r\n",
    // The injection: commands pipelined after STARTTLS in the same packet (CVE-2011-0411 class).
    "STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRCPT TO:<inj@evil.example>\r\nEH",
    (conn) => {
      equal(conn.phase, "paused", "phase after STARTTLS");
      equal(conn.nextEvent().type, "paused", "nextEvent while paused");
    },
    // More plaintext before the handshake completes: dropped as well.
    "LO evil\r\nNOOP injected\r\n",
    (conn) => {
      equal(conn.bufferedBytes, 0, "nothing buffered while paused");
      conn.tlsEstablished();
      ok(conn.isTls, "isTls after the handshake");
      ok(!conn.greeted, "session reset after the handshake");
    },
    "MAIL FROM:<a@example.org>\r\n",
    "EHLO c\r\nSTARTTLS\r\nQUIT\r\n",
  ]);
  equal(
    session.log,
    [
      "hello EHLO c",
      "startTls",
      "rejected MAIL 503",
      "hello EHLO c",
      "rejected STARTTLS 503",
      "quit",
      "closed quit",
    ],
    "events",
  );
  excludes(session.output, "injected", "no trace of the injected commands");
  const [firstEhlo, secondEhlo] = session.output.split("220 2.0.0 Ready to start TLS\r\n");
  includes(firstEhlo, "250-STARTTLS\r\n", "STARTTLS offered in clear");
  excludes(secondEhlo, "STARTTLS\r\n250", "STARTTLS not offered under TLS");
  includes(secondEhlo, "503 5.5.1 Error: send HELO first\r\n", "the injected EHLO did not count");
  includes(secondEhlo, "503 5.5.1 Error: TLS already active\r\n", "second STARTTLS refused");
});

test("AUTH PLAIN framing", () => {
  const good = b64("\0user\0secret");
  const wrong = b64("\0user\0wrong");
  const decide = (event, conn) => {
    if (event.type === "auth") {
      if (event.initialResponse === null)
        conn.challenge(event.mechanism === "LOGIN" ? "Username:" : "");
      else conn.completeAuth(text(event.initialResponse) === "\0user\0secret");
      return true;
    }
    if (event.type === "authResponse") {
      conn.completeAuth(text(event.response) === "\0user\0secret");
      return true;
    }
    return false;
  };
  const session = drive(
    { auth: { mechanisms: ["PLAIN", "LOGIN"], requireTls: false } },
    [
      "EHLO c\r\n",
      "AUTH LOGIN\r\n*\r\n", // cancelled
      "AUTH PLAIN\r\n!!notbase64\r\n", // bad base64
      "AUTH PLAIN\r\n",
      wrong.slice(0, 5), // a response split across reads
      `${wrong.slice(5)}\r\n`,
      "AUTH PLAIN\r\n",
      `${good.slice(0, 7)}`,
      `${good.slice(7)}\r\n`,
      (conn) => ok(conn.isAuthenticated, "authenticated after 235"),
      `AUTH PLAIN ${good}\r\n`, // already authenticated
      "QUIT\r\n",
    ],
    decide,
  );
  equal(
    session.log,
    [
      "hello EHLO c",
      "auth LOGIN -",
      "authAborted cancelled",
      "auth PLAIN -",
      "authAborted badBase64",
      "auth PLAIN -",
      "authResponse \0user\0wrong",
      "auth PLAIN -",
      "authResponse \0user\0secret",
      "rejected AUTH 503",
      "quit",
      "closed quit",
    ],
    "events",
  );
  includes(session.output, "250-AUTH LOGIN PLAIN\r\n", "mechanisms advertised");
  equal(
    session.output.split("250 HELP\r\n")[1],
    "334 VXNlcm5hbWU6\r\n501 5.7.0 Auth aborted\r\n" +
      "334 \r\n501 5.5.2 Can't decode base64\r\n" +
      "334 \r\n535 5.7.8 Authentication credentials invalid\r\n" +
      "334 \r\n235 2.7.0 Authentication successful\r\n" +
      "503 5.5.1 Already authenticated\r\n221 2.0.0 Bye\r\n",
    "AUTH replies",
  );

  // Initial response on the AUTH line (RFC 4954), and "=" for an empty one.
  const initial = drive(
    { auth: { mechanisms: ["PLAIN"], requireTls: false } },
    [`EHLO c\r\nAUTH PLAIN =\r\nAUTH PLAIN ${good}\r\nQUIT\r\n`],
    (event, conn) => {
      if (event.type === "auth" && event.initialResponse?.length === 0) {
        conn.completeAuth(false, "535 5.7.8 empty");
        return true;
      }
      return decide(event, conn);
    },
  );
  ok(initial.log.includes("auth PLAIN "), "empty initial response");
  ok(initial.log.includes("auth PLAIN \0user\0secret"), "initial response decoded");
  includes(
    initial.output,
    "535 5.7.8 empty\r\n235 2.7.0 Authentication successful\r\n",
    "initial response replies",
  );

  // A response line over the RFC 4954 limit (12288) aborts the exchange without buffering it all.
  const long = drive(
    { auth: { mechanisms: ["PLAIN"], requireTls: false } },
    ["EHLO c\r\nAUTH PLAIN\r\n", ...chunked(bytes(`${"A".repeat(40000)}\r\nNOOP\r\n`), 4096)],
    decide,
  );
  ok(long.log.includes("authAborted lineTooLong"), "over-long AUTH response aborted");
  ok(long.log.includes("noop null"), "session continues");
  ok(long.conn.bufferedBytes === 0, "nothing left buffered");
});

test("PROXY protocol v1 and v2 headers", () => {
  const header = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n";
  let proxy = null;
  const v1 = drive(
    { proxyProtocol: true },
    [
      (_conn, { output }) => equal(output(), "", "no greeting before the PROXY header"),
      header.slice(0, 9),
      header.slice(9, 30),
      `${header.slice(30)}EHLO c\r\nQUIT\r\n`,
    ],
    (event) => {
      if (event.type === "proxyHeader") proxy = event.proxy;
      return false;
    },
  );
  ok(proxy !== null, "proxyHeader event");
  equal(
    [
      proxy.version,
      proxy.command,
      proxy.family,
      proxy.protocol,
      proxy.srcAddress,
      proxy.dstAddress,
      proxy.srcPort,
      proxy.dstPort,
      proxy.valid,
    ],
    [1, "PROXY", "INET", "STREAM", "192.0.2.1", "198.51.100.2", 56324, 25, true],
    "v1 fields",
  );
  ok(
    v1.output.startsWith("220 localhost smtpkit\r\n250-localhost\r\n"),
    "greeting comes after the header",
  );
  equal(
    v1.log,
    ["proxyHeader v1 192.0.2.1:56324", "hello EHLO c", "quit", "closed quit"],
    "v1 events",
  );

  // v2: binary header with an AUTHORITY TLV, sent in awkward pieces.
  const authority = bytes("mx.example");
  const tlv = [0x02, 0x00, authority.length, ...authority];
  const v2Header = new Uint8Array([
    0x0d,
    0x0a,
    0x0d,
    0x0a,
    0x00,
    0x0d,
    0x0a,
    0x51,
    0x55,
    0x49,
    0x54,
    0x0a, // signature
    0x21, // version 2, PROXY
    0x11, // INET, STREAM
    0x00,
    12 + tlv.length,
    192,
    0,
    2,
    1,
    198,
    51,
    100,
    2,
    0xdc,
    0x04,
    0x00,
    0x19,
    ...tlv,
  ]);
  const stream = concat([v2Header, bytes("EHLO c\r\nQUIT\r\n")]);
  proxy = null;
  const v2 = drive({ proxyProtocol: true }, splitAt(stream, [1, 13, 17, 30]), (event) => {
    if (event.type === "proxyHeader") proxy = event.proxy;
    return false;
  });
  equal(
    [
      proxy.version,
      proxy.command,
      proxy.family,
      proxy.protocol,
      proxy.srcAddress,
      proxy.dstAddress,
      proxy.srcPort,
      proxy.dstPort,
      proxy.valid,
    ],
    [2, "PROXY", "INET", "STREAM", "192.0.2.1", "198.51.100.2", 56324, 25, true],
    "v2 fields",
  );
  equal(
    proxy.tlvs?.map((t) => `${t.name}=${text(t.value)}`),
    ["AUTHORITY=mx.example"],
    "v2 TLVs",
  );
  equal(
    v2.log,
    ["proxyHeader v2 192.0.2.1:56324", "hello EHLO c", "quit", "closed quit"],
    "v2 events",
  );

  // Refusals: by the program (rejectProxy()) and for a malformed header. No greeting either way.
  const refused = drive({ proxyProtocol: true }, [`${header}EHLO c\r\n`], (event, conn) => {
    if (event.type !== "proxyHeader") return false;
    conn.rejectProxy();
    return true;
  });
  equal(refused.log, ["proxyHeader v1 192.0.2.1:56324", "closed proxyRejected"], "rejectProxy()");
  equal(refused.output, "", "nothing sent to a refused proxy");
  const bad = drive({ proxyProtocol: true }, [
    "PROXY TCP4 999.0.2.1 198.51.100.2 1 25\r\nEHLO c\r\n",
  ]);
  equal(bad.log, ["closed proxyRejected"], "malformed v1");
  const notProxy = drive({ proxyProtocol: true }, ["EHLO c\r\n"]);
  equal(notProxy.log, ["closed proxyRejected"], "no PROXY signature");
});

test("1 MB over-long command line", () => {
  const huge = bytes(`EHLO ${"a".repeat(1024 * 1024)}\r\nNOOP still here\r\nQUIT\r\n`);
  let maxBuffered = 0;
  const steps = [];
  for (const piece of chunked(huge, 64 * 1024)) {
    steps.push(piece, (conn) => {
      maxBuffered = Math.max(maxBuffered, conn.bufferedBytes);
    });
  }
  const session = drive({}, steps);
  equal(session.log, ["rejected  500", "noop still here", "quit", "closed quit"], "events");
  equal(
    session.output,
    "220 localhost smtpkit\r\n500 5.5.2 Command line too long\r\n250 2.0.0 OK\r\n221 2.0.0 Bye\r\n",
    "replies",
  );
  ok(maxBuffered < 4096, `the engine must not buffer the long line (held ${maxBuffered} bytes)`);

  // A DATA line over the limit: the whole body is read, then a delayed 500.
  const body = drive({}, [
    "EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
    ...chunked(bytes(`${"x".repeat(1024 * 1024)}\r\n.\r\nQUIT\r\n`), 64 * 1024),
  ]);
  ok(
    body.log.includes(`bodyEnd lineTooLong ${1024 * 1024 + 2} [b@example.net]`),
    "DATA line too long",
  );
  includes(
    body.output,
    "500 5.5.2 Line too long (see RFC5321 4.5.3.1.6)\r\n221 2.0.0 Bye\r\n",
    "DATA line reply",
  );
});

const PROPERTY_DIALOG =
  "EHLO client.example\r\n" +
  "MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<bad@example.net>\r\n" +
  "DATA\r\nSubject: split\r\n\r\n..stuffed\r\n..\r\n\r\nA\n.\r\nsmuggled?\r\nB\r.\rC\r\n.. \r\n.\r\n" +
  "NOOP between\r\n" +
  "MAIL FROM:<> \r\nRCPT TO:<d@example.net>\r\nBDAT 10\r\n0123\r\n.\r\n9BDAT 3 LAST\r\nxyz" +
  "RSET\r\nVRFY <v@example.net>\r\nHELP MAIL\r\nbogus command\r\nMAIL FROM:<broken\r\n" +
  "AUTH PLAIN\r\nDATA\r\nQUIT\r\n";

/**
 * Feeds `dialog` whole, then in `runs` seeded random splits (few large pieces, many small ones,
 * and every 50th run single octets), and checks that output, events and bodies never change.
 * Returns the reference result.
 */
function checkSplitInvariance(dialog, { seed, runs, options = {} }) {
  const decide = (event, conn) => {
    if (event.type === "rcpt" && event.address.startsWith("bad")) {
      conn.reply("550 5.1.1 No such user");
      return true;
    }
    return false;
  };
  const run = (chunks) => {
    const result = drive(options, chunks, decide);
    return show({ output: result.output, log: result.log, bodies: result.bodies });
  };
  const reference = run([dialog]);
  const random = prng(seed);
  for (let i = 0; i < runs; i++) {
    const single = i % 50 === 49;
    const pieces = single ? dialog.length : 1 + Math.floor(random() * (i % 2 ? 8 : 120));
    const cuts = [];
    for (let c = 0; c < pieces - 1; c++) cuts.push(1 + Math.floor(random() * (dialog.length - 1)));
    cuts.sort((a, b) => a - b);
    const got = run(single ? chunked(dialog, 1) : splitAt(dialog, cuts));
    if (got !== reference) {
      const where = single
        ? "single octets"
        : `cuts ${cuts.slice(0, 20).join(",")}${cuts.length > 20 ? ",..." : ""}`;
      fail(`split #${i} (${where}) differs:\n  got       ${got}\n  reference ${reference}`);
    }
  }
  return JSON.parse(reference);
}

test("200 seeded random splits give identical results", () => {
  const reference = checkSplitInvariance(bytes(PROPERTY_DIALOG), { seed: 0x5eed2025, runs: 200 });
  // The reference itself is the dialog we meant.
  equal(
    reference.bodies,
    [
      "Subject: split\r\n\r\n.stuffed\r\n.\r\n\r\nA\n.\r\nsmuggled?\r\nB\r.\rC\r\n. \r\n",
      "0123\r\n.\r\n9xyz",
    ],
    "reference bodies",
  );
  equal(
    reference.log,
    [
      "hello EHLO client.example",
      "mail a@example.org [SIZE=1000 BODY=8BITMIME]",
      "rcpt b@example.net",
      "rcpt bad@example.net",
      "dataStart DATA",
      "bodyEnd null 63 [b@example.net]",
      "noop between",
      "mail <> []",
      "rcpt d@example.net",
      "dataStart BDAT",
      "bodyEnd null 13 [d@example.net]",
      "rset",
      "vrfy v@example.net",
      "rejected BOGUS 500",
      "mail broken []", // aiosmtpd-compatible leniency: a missing ">" is accepted
      "rejected AUTH 538",
      "rejected DATA 503",
      "quit",
      "closed quit",
    ],
    "reference events",
  );
});

// -------------------------------------------------------------------------------------------------
// Regressions: bugs these cases found in the engine (fixed), kept as plain cases.

cases.push({
  name: 'lineEndings "reject" and "normalize" end the message at CRLF.CRLF',
  run: () => {
    const head = "EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n";
    for (const lineEndings of ["reject", "normalize"]) {
      const clean = drive({ lineEndings }, [head, "Subject: t\r\n\r\nclean\r\n.\r\n", "QUIT\r\n"]);
      equal(
        clean.bodies,
        ["Subject: t\r\n\r\nclean\r\n"],
        `${lineEndings}: a clean body is unchanged`,
      );
      equal(
        finalLines(clean.output).slice(-2),
        ["250 2.0.0 OK", "221 2.0.0 Bye"],
        `${lineEndings}: accepted`,
      );
    }
    const smuggled = "A\n.\r\nMAIL FROM:<evil@x.example>\r\nB\r.\rC\r\n.\r\n";
    const reject = drive({ lineEndings: "reject" }, [head, smuggled, "QUIT\r\n"]);
    includes(reject.output, "554 5.6.0 Error: bare <CR> or <LF> in message data", "reject reply");
    ok(
      reject.log.some((line) => line.startsWith("bodyEnd bareLineEnding")),
      "bodyEnd carries the error",
    );
    ok(!reject.log.some((line) => line.includes("evil")), "nothing smuggled");
    equal(finalLines(reject.output).at(-1), "221 2.0.0 Bye", "session continues after the refusal");
    // Bare CR / LF become CRLF but still never start a line (the dot after them is body).
    const normalize = drive({ lineEndings: "normalize" }, [
      head,
      "A\n.\r\nB\r.\rC\r\n.\r\n",
      "QUIT\r\n",
    ]);
    equal(normalize.bodies, ["A\r\n.\r\nB\r\n.\r\nC\r\n"], "normalized body");
    equal(
      normalize.log.filter((line) => line.startsWith("bodyEnd null")).length,
      1,
      "one accepted message",
    );
    // Bare CR / LF policy decisions must not depend on where the reads split (CR at a read's end).
    for (const lineEndings of ["normalize", "reject"]) {
      const reference = checkSplitInvariance(bytes(PROPERTY_DIALOG), {
        seed: 0x1e7d,
        runs: 100,
        options: { lineEndings },
      });
      equal(reference.log.at(-1), "closed quit", `${lineEndings}: the dialog completes`);
    }
  },
});

cases.push({
  name: "an over-long command line read together with its LF",
  run: () => {
    const huge = bytes(`EHLO ${"a".repeat(1024 * 1024)}\r\nNOOP still here\r\nQUIT\r\n`);
    const single = drive({}, [huge]);
    equal(
      single.output,
      "220 localhost smtpkit\r\n500 5.5.2 Command line too long\r\n250 2.0.0 OK\r\n221 2.0.0 Bye\r\n",
      "1 MB line in one read",
    );
    const withLongLine = PROPERTY_DIALOG.replace(
      "NOOP between\r\n",
      `NOOP ${"z".repeat(3000)}\r\n`,
    );
    checkSplitInvariance(bytes(withLongLine), { seed: 0xb16, runs: 200 });
  },
});

// -------------------------------------------------------------------------------------------------
// The runtime-free SMTP class over an in-memory transport.

/**
 * An SmtpTransport (src/server/transport.ts) backed by arrays: `read()` hands out the client's
 * chunks one per call (then null = EOF), `write()` collects the server's bytes.
 */
function memoryTransport(chunks) {
  const incoming = chunks.map((chunk) => (typeof chunk === "string" ? bytes(chunk) : chunk));
  let written = "";
  let closed = false;
  return {
    peer: { address: "192.0.2.10", port: 40000, family: "IPv4" },
    local: { address: "192.0.2.25", port: 25, family: "IPv4" },
    tls: null,
    canStartTls: false,
    async read() {
      if (closed) return null;
      return incoming.shift() ?? null;
    },
    async write(data) {
      if (closed) throw new Error("write after close");
      written += text(data);
    },
    async startTls() {
      throw new Error("no TLS in memory");
    },
    async close() {
      closed = true;
    },
    destroy() {
      closed = true;
    },
    get output() {
      return written;
    },
    get closed() {
      return closed;
    },
    get unread() {
      return incoming.length;
    },
  };
}

function bigBody(lines) {
  // 78-octet lines, every 7th starting with a dot (stuffed on the wire).
  const wire = [];
  const plain = [];
  for (let i = 0; i < lines; i++) {
    const line = `${i % 7 === 0 ? "." : ""}line ${String(i).padStart(6, "0")} `.padEnd(
      76,
      "abcdefghij"[i % 10],
    );
    wire.push(line.startsWith(".") ? `.${line}\r\n` : `${line}\r\n`);
    plain.push(`${line}\r\n`);
  }
  return { wire: wire.join(""), plain: plain.join("") };
}

test("runtime-free SMTP class: handleDATA and handleDATAStream", async () => {
  const envelopeHead =
    "EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n";
  const { wire, plain } = bigBody(8000); // ~625 KB: more than the body stream's 256 KiB high-water mark

  // 1. handleDATA: the whole message collected in envelope.content.
  const seen = {};
  const collecting = {
    async handleRCPT(_server, _session, _envelope, address) {
      return address.startsWith("nobody") ? "550 5.1.1 No such user" : undefined;
    },
    async handleDATA(_server, session, envelope) {
      seen.peer = session.peer?.address;
      seen.host = session.hostName;
      seen.from = envelope.mailFrom;
      seen.to = [...envelope.rcptTos];
      seen.content = text(envelope.content);
      return "250 2.0.0 Message accepted for delivery";
    },
  };
  const transport1 = memoryTransport([
    envelopeHead.replace("DATA\r\n", "RCPT TO:<nobody@example.net>\r\nDATA\r\n"),
    ...chunked(bytes(`${wire}.\r\n`), 64 * 1024),
    "QUIT\r\n",
  ]);
  await new SMTP(collecting, { hostname: "mx.example" }).run(transport1);
  equal(seen.peer, "192.0.2.10", "session.peer from the transport");
  equal(seen.host, "client.example", "session.hostName");
  equal(seen.from, "alice@example.org", "envelope.mailFrom");
  equal(seen.to, ["bob@example.net"], "envelope.rcptTos");
  ok(seen.content === plain, "handleDATA content is the unstuffed body");
  equal(
    finalLines(transport1.output),
    [
      "220 mx.example smtpkit",
      "250 HELP",
      "250 2.1.0 OK",
      "250 2.1.5 OK",
      "550 5.1.1 No such user",
      "354 End data with <CR><LF>.<CR><LF>",
      "250 2.0.0 Message accepted for delivery",
      "221 2.0.0 Bye",
    ],
    "handleDATA replies",
  );
  ok(transport1.closed, "transport closed after QUIT");

  // 2. handleDATAStream: the body (asked for as a web ReadableStream), read late and slowly. Backpressure:
  // while the consumer sleeps, the server must stop pulling from the transport once the stream
  // holds its high-water mark (256 KiB), so socket reads are still pending when reading starts.
  const transport2 = memoryTransport([
    envelopeHead,
    ...chunked(bytes(`${wire}.\r\n`), 64 * 1024),
    "QUIT\r\n",
  ]);
  let streamed = "";
  let reads = 0;
  let unreadWhenConsumerStarted = -1;
  const streaming = {
    async handleDATAStream(_server, _session, envelope, body) {
      ok(typeof body[Symbol.asyncIterator] === "function", "body is async-iterable");
      const webStream = body.stream();
      ok(webStream instanceof ReadableStream, "body.stream() is a web ReadableStream");
      await new Promise((resolve) => setTimeout(resolve, 20));
      unreadWhenConsumerStarted = transport2.unread;
      const reader = webStream.getReader();
      const streamDecoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        reads++;
        streamed += streamDecoder.decode(value, { stream: true });
        if (reads % 128 === 0) await new Promise((resolve) => setTimeout(resolve, 0)); // a slow consumer
      }
      streamed += streamDecoder.decode();
      return `250 2.0.0 Streamed ${envelope.rcptTos.length} recipient(s)`;
    },
    handleDATA() {
      throw new Error("handleDATA must not run when handleDATAStream exists");
    },
  };
  await new SMTP(streaming, { hostname: "mx.example" }).run(transport2);
  ok(
    streamed === plain,
    `streamed body is the unstuffed body (${streamed.length} vs ${plain.length} chars)`,
  );
  ok(reads > 1, "the body arrived in several reads");
  // 625 KB in 64 KiB reads: at most ~5 reads fit under the mark, so >= 4 of 11 must be waiting.
  ok(
    unreadWhenConsumerStarted >= 4,
    `backpressure held the transport (${unreadWhenConsumerStarted} reads pending)`,
  );
  equal(
    finalLines(transport2.output).slice(-3),
    ["354 End data with <CR><LF>.<CR><LF>", "250 2.0.0 Streamed 1 recipient(s)", "221 2.0.0 Bye"],
    "handleDATAStream replies",
  );

  // 3. LMTP through the class: one reply per recipient from handleDATA's list.
  const lmtp = {
    async handleDATA(_server, _session, envelope) {
      return envelope.rcptTos.map((rcpt, i) =>
        i === 0 ? `250 2.0.0 <${rcpt}> ok` : `450 4.2.0 <${rcpt}> later`,
      );
    },
  };
  const transport3 = memoryTransport([
    "LHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<one@example.net>\r\nRCPT TO:<two@example.net>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
  ]);
  await new SMTP(lmtp, { lmtp: true }).run(transport3);
  includes(
    transport3.output,
    "250 2.0.0 <one@example.net> ok\r\n450 4.2.0 <two@example.net> later\r\n221 2.0.0 Bye\r\n",
    "LMTP replies through the class",
  );

  // 4. EOF in the middle of the body: run() settles, the stream consumer sees an error.
  let streamError = null;
  const transport4 = memoryTransport([envelopeHead, "partial body\r\n"]);
  await new SMTP({
    async handleDATAStream(_server, _session, _envelope, body) {
      try {
        for (const reader = body.getReader(); !(await reader.read()).done; );
      } catch (error) {
        streamError = error;
      }
    },
  }).run(transport4);
  ok(transport4.closed, "closed at EOF");
  ok(streamError !== null, "stream errored when the client vanished mid-body");
});

export { cases };
export default cases;

cases.push({
  name: "the README's core-alone example",
  run: async () => {
    const printed = [];
    const log = console.log;
    console.log = (...args) => printed.push(args.join(" "));
    try {
      await import("./readme-example.mjs");
    } finally {
      console.log = log;
    }
    const output = printed.join("\n");
    for (const line of [
      "220 mx.example.com smtpkit",
      "354 End data",
      "250 2.0.0 Queued",
      "221 2.0.0 Bye",
    ]) {
      includes(output, line, `README example prints ${line}`);
    }
  },
});
