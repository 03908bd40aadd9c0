/**
 * Real SMTP clients against `serve()`: swaks, curl, Python's smtplib and Nodemailer, in clear,
 * with STARTTLS and with implicit TLS. Every test checks both sides: what the server's hooks saw
 * (envelope, session, exact bytes) and what the client reported.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Handler, ServeOptions, SmtpServer } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CertFiles,
  decode,
  killChildren,
  LOCALHOST,
  makeCert,
  python,
  recordingHandler,
  requireBuilt,
  requirePrograms,
  run,
  SYSTEM_PYTHON,
  sha256,
  swaksHasTls,
  tempDir,
  withServerNamed,
} from "./helpers.js";

const HOSTNAME = "mx.interop.test";
let cert: CertFiles;
let work: string;

beforeAll(async () => {
  requireBuilt();
  requirePrograms({ swaks: "swaks", curl: "curl", openssl: "openssl", [SYSTEM_PYTHON]: "python3" });
  if (!swaksHasTls()) {
    throw new Error("swaks cannot do TLS: install Debian's libnet-ssleay-perl");
  }
  cert = makeCert();
  work = tempDir();
});

afterAll(() => {
  cert?.cleanup();
  killChildren();
});

const withServer = <T>(
  handler: Handler,
  options: ServeOptions,
  body: (server: SmtpServer) => Promise<T>,
): Promise<T> => withServerNamed(HOSTNAME, handler, options, body);

const tlsOptions = () => ({ key: cert.key, cert: cert.cert });
const crlf = (text: string) => text.replace(/\r?\n/g, "\r\n");

// ---------------------------------------------------------------------------------------------

describe("swaks", () => {
  const swaks = (port: number, ...args: string[]) =>
    run("swaks", ["--server", `${LOCALHOST}:${port}`, "--timeout", "20", ...args]);

  it("plain: envelope, exact bytes and the client's transcript", async () => {
    const rec = recordingHandler({ handleDATA: () => "250 Queued as SWAKS1" });
    await withServer(rec.handler, {}, async (server) => {
      const result = await swaks(
        server.port,
        "--ehlo",
        "client.example",
        "--from",
        "alice@example.com",
        "--to",
        "bob@example.org,carol@example.net",
        "--data",
        "Subject: plain\\nX-Test: 1\\n\\nHello from swaks\\n",
      );
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain(`<-  220 ${HOSTNAME}`);
      expect(result.stdout).toContain("<-  250 2.1.0 OK");
      expect(result.stdout).toContain("<-  354 End data with <CR><LF>.<CR><LF>");
      expect(result.stdout).toContain("<-  250 2.0.0 Queued as SWAKS1");
      expect(result.stdout).toContain("<-  221 2.0.0 Bye");
      const [message] = await rec.waitForMessages(1);
      expect(message?.mailFrom).toBe("alice@example.com");
      expect(message?.rcptTos).toEqual(["bob@example.org", "carol@example.net"]);
      expect(message?.mailOptions).toEqual([]);
      expect(message?.session.hostName).toBe("client.example");
      expect(message?.session.extendedSmtp).toBe(true);
      expect(message?.session.ssl).toBeNull();
      expect(message?.content.toString("latin1")).toBe(
        // swaks ends the data with its own CRLF before the final dot.
        "Subject: plain\r\nX-Test: 1\r\n\r\nHello from swaks\r\n\r\n",
      );
      const hooks = rec.calls.map((call) => call.hook);
      expect(hooks).toEqual([
        "handleEHLO",
        "handleMAIL",
        "handleRCPT",
        "handleRCPT",
        "handleDATA",
        "handleQUIT",
      ]);
    });
  });

  it("STARTTLS (-tls): the message arrives over TLS", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { tls: tlsOptions(), requireStartTls: true }, async (server) => {
      const result = await swaks(
        server.port,
        "-tls",
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
        "--data",
        "Subject: tls\\n\\nover STARTTLS\\n",
      );
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain("<-  250-STARTTLS");
      expect(result.stdout).toContain("<-  220 2.0.0 Ready to start TLS");
      expect(result.stdout).toMatch(/=== TLS started with cipher/);
      expect(result.stdout).toContain("<~  250 2.0.0 OK");
      const [message] = await rec.waitForMessages(1);
      expect(message?.session.ssl).toMatchObject({ implicit: false });
      expect(message?.session.ssl?.protocol).toMatch(/^TLSv1\.[23]$/);
      expect(message?.content.toString()).toBe("Subject: tls\r\n\r\nover STARTTLS\r\n\r\n");
      // The EHLO before STARTTLS and the one after it both reached the handler.
      const ehlos = rec.calls.filter((call) => call.hook === "handleEHLO");
      expect(ehlos.map((call) => call.session.ssl !== null)).toEqual([false, true]);
    });
  });

  it("implicit TLS (--tls-on-connect)", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { smtps: tlsOptions() }, async (server) => {
      const result = await swaks(
        server.port,
        "--tls-on-connect",
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
        "--data",
        "Subject: smtps\\n\\nimplicit\\n",
      );
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain(`<~  220 ${HOSTNAME}`);
      expect(result.stdout).not.toContain("STARTTLS");
      const [message] = await rec.waitForMessages(1);
      expect(message?.session.ssl).toMatchObject({ implicit: true });
      expect(message?.content.toString()).toBe("Subject: smtps\r\n\r\nimplicit\r\n\r\n");
    });
  });

  it("--pipeline: MAIL, RCPT, RCPT and DATA go in one batch", async () => {
    const rec = recordingHandler({
      handleRCPT: (_s, _ss, _e, address) =>
        address.startsWith("nobody@") ? "550 5.1.1 No such user" : undefined,
    });
    await withServer(rec.handler, {}, async (server) => {
      const result = await swaks(
        server.port,
        "--pipeline",
        "--from",
        "a@example.com",
        "--to",
        "b@example.org,nobody@example.org",
        "--data",
        "Subject: pipelined\\n\\nbody\\n",
      );
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain("<-  250-PIPELINING");
      // swaks prints the whole batch, then the replies in order.
      const transcript = result.stdout.split("\n").filter((l) => /^( ->|<-|<\*\*)/.test(l));
      const at = (prefix: string) => transcript.findIndex((line) => line.startsWith(prefix));
      const mail = at(" -> MAIL FROM");
      expect(transcript.slice(mail, mail + 4)).toEqual([
        " -> MAIL FROM:<a@example.com>",
        " -> RCPT TO:<b@example.org>",
        " -> RCPT TO:<nobody@example.org>",
        " -> DATA",
      ]);
      expect(transcript.slice(mail + 4, mail + 8)).toEqual([
        "<-  250 2.1.0 OK",
        "<-  250 2.1.5 OK",
        "<** 550 5.1.1 No such user",
        "<-  354 End data with <CR><LF>.<CR><LF>",
      ]);
      const [message] = await rec.waitForMessages(1);
      expect(message?.rcptTos).toEqual(["b@example.org"]);
      expect(message?.content.toString()).toBe("Subject: pipelined\r\n\r\nbody\r\n\r\n");
    });
  });

  // No client on these machines sends BDAT (Debian's swaks 20201014 predates its --bdat; smtplib,
  // curl and Nodemailer never chunk): BDAT is exercised with a raw client in every-hook.test.ts.

  it("8-bit body and --add-header arrive byte for byte", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, {}, async (server) => {
      const result = await swaks(
        server.port,
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
        "--add-header",
        "X-Added: by swaks",
        "--add-header",
        "Content-Type: text/plain; charset=utf-8",
        "--header",
        "Subject: Grüße",
        "--body",
        "Grüße aus Köln ✓\n.leading dot\nend",
      );
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(result.stdout).toContain("<-  250-8BITMIME");
      const [message] = await rec.waitForMessages(1);
      const text = message?.content.toString("utf8") ?? "";
      expect(text).toMatch(/^Date: /);
      expect(text).toContain("\r\nSubject: Grüße\r\n");
      expect(text).toContain("\r\nX-Added: by swaks\r\n");
      expect(text).toContain("\r\nContent-Type: text/plain; charset=utf-8\r\n");
      // swaks stuffed the leading dot; the server removed it again.
      expect(text).toMatch(/\r\n\r\nGrüße aus Köln ✓\r\n\.leading dot\r\nend\r\n/);
      expect(message?.content.includes(Buffer.from("Köln ✓", "utf8"))).toBe(true);
    });
  });

  it("--proxy (PROXY v1 and v2): session.proxyData", async () => {
    const seen: unknown[] = [];
    const rec = recordingHandler({
      handlePROXY: (_s, _session, _e, proxyData) => {
        seen.push(proxyData);
        return true;
      },
    });
    await withServer(rec.handler, { proxyProtocolTimeout: 5 }, async (server) => {
      for (const version of ["1", "2"]) {
        const result = await swaks(
          server.port,
          "--proxy-version",
          version,
          "--proxy-family",
          version === "1" ? "TCP4" : "AF_INET",
          "--proxy-source",
          "192.0.2.10",
          "--proxy-source-port",
          "40000",
          "--proxy-dest",
          "198.51.100.20",
          "--proxy-dest-port",
          "25",
          "--from",
          "a@example.com",
          "--to",
          "b@example.org",
        );
        expect(result.code, result.stderr + result.stdout).toBe(0);
      }
      const messages = await rec.waitForMessages(2);
      expect(seen).toHaveLength(2);
      for (const [index, message] of messages.entries()) {
        expect(message.session.proxyData).toMatchObject({
          version: index + 1,
          family: "INET",
          protocol: "STREAM",
          srcAddress: "192.0.2.10",
          srcPort: 40000,
          dstAddress: "198.51.100.20",
          dstPort: 25,
        });
        // session.peer is the client the trusted header names (aiosmtpd keeps the proxy there);
        // the socket's own peer stays in session.transportPeer.
        expect(message.session.peer).toMatchObject({ address: "192.0.2.10", port: 40000 });
        expect(message.session.transportPeer).toMatchObject({ address: LOCALHOST });
      }
    });
  });

  it("LMTP over a Unix socket (--socket --protocol LMTP)", async () => {
    const path = join(work, "swaks-lmtp.sock");
    const rec = recordingHandler({
      handleDATA: (_s, _ss, envelope) =>
        envelope.rcptTos.map((rcpt) =>
          rcpt.startsWith("full@") ? "452 4.2.2 Mailbox full" : `250 2.0.0 Delivered to ${rcpt}`,
        ),
    });
    await withServer(rec.handler, { path, port: undefined, lmtp: true }, async () => {
      const result = await run("swaks", [
        "--socket",
        path,
        "--protocol",
        "LMTP",
        "--from",
        "a@example.com",
        "--to",
        "x@example.org,full@example.org",
        "--timeout",
        "20",
      ]);
      expect(result.stdout).toContain(" -> LHLO");
      expect(result.stdout).toContain("<-  250 2.0.0 Delivered to x@example.org");
      expect(result.stdout).toContain("<** 452 4.2.2 Mailbox full");
      const [message] = await rec.waitForMessages(1);
      expect(message?.rcptTos).toEqual(["x@example.org", "full@example.org"]);
      expect(message?.session.peer).toMatchObject({ family: "unix" });
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("curl", () => {
  const MESSAGE = crlf(
    "From: a@example.com\nTo: b@example.org\nSubject: curl\n\nline one\n.starts with a dot\n..two dots\n.\nlast\n",
  );
  let file: string;
  beforeAll(() => {
    file = join(work, "msg.eml");
    writeFileSync(file, MESSAGE);
  });

  const curl = (url: string, ...args: string[]) =>
    run("curl", [
      "-sS",
      "-v",
      "--max-time",
      "20",
      url,
      "--mail-from",
      "a@example.com",
      "--mail-rcpt",
      "b@example.org",
      "--mail-rcpt",
      "c@example.net",
      "--upload-file",
      file,
      ...args,
    ]);

  const expectDelivered = async (rec: ReturnType<typeof recordingHandler>, tls: boolean | null) => {
    const [message] = await rec.waitForMessages(1);
    expect(message?.mailFrom).toBe("a@example.com");
    expect(message?.rcptTos).toEqual(["b@example.org", "c@example.net"]);
    // curl stuffs the dots; the server unstuffs: the file arrives exactly.
    expect(message?.content.toString("latin1")).toBe(MESSAGE);
    if (tls === null) expect(message?.session.ssl).toBeNull();
    else expect(message?.session.ssl).toMatchObject({ implicit: tls });
  };

  it("smtp:// in clear", async () => {
    const rec = recordingHandler({ handleDATA: () => "250 2.0.0 Queued as CURL1" });
    await withServer(rec.handler, {}, async (server) => {
      const result = await curl(`smtp://${LOCALHOST}:${server.port}/client.example`);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain("> EHLO client.example");
      expect(result.stderr).toContain("< 250 2.0.0 Queued as CURL1");
      await expectDelivered(rec, null);
      expect(rec.calls.find((c) => c.hook === "handleEHLO")?.args[0]).toBe("client.example");
    });
  });

  it("--ssl-reqd: STARTTLS", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { tls: tlsOptions(), requireStartTls: true }, async (server) => {
      const result = await curl(`smtp://${LOCALHOST}:${server.port}`, "--ssl-reqd", "-k");
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain("> STARTTLS");
      expect(result.stderr).toContain("< 220 2.0.0 Ready to start TLS");
      await expectDelivered(rec, false);
    });
  });

  it("--ssl-reqd against a server without STARTTLS: curl refuses to send", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, {}, async (server) => {
      const result = await curl(`smtp://${LOCALHOST}:${server.port}`, "--ssl-reqd", "-k");
      expect(result.code).toBe(64); // CURLE_USE_SSL_FAILED
      expect(rec.messages).toHaveLength(0);
    });
  });

  it("smtps:// implicit TLS", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { smtps: tlsOptions() }, async (server) => {
      const result = await curl(`smtps://${LOCALHOST}:${server.port}`, "-k");
      expect(result.code, result.stderr).toBe(0);
      await expectDelivered(rec, true);
    });
  });

  it("a recipient refused by handleRCPT: curl fails with 55 and nothing is delivered", async () => {
    const rec = recordingHandler({
      handleRCPT: (_s, _ss, _e, address) =>
        address === "c@example.net" ? "550 5.1.1 c is unknown" : undefined,
    });
    await withServer(rec.handler, {}, async (server) => {
      const result = await curl(`smtp://${LOCALHOST}:${server.port}`);
      expect(result.code).toBe(55); // CURLE_SEND_ERROR: curl gives up on any refused RCPT
      expect(result.stderr).toContain("< 550 5.1.1 c is unknown");
      expect(rec.messages).toHaveLength(0);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("smtplib", () => {
  const PREAMBLE = `
import json, smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def out(value):
    print(json.dumps(value, ensure_ascii=False))
`;
  const py = <T>(body: string, ...args: (string | number)[]) =>
    python<T>(PREAMBLE + body, args.map(String));

  it("sendmail to several recipients, one refused", async () => {
    const rec = recordingHandler({
      handleRCPT: (_s, _ss, _e, address) =>
        address.startsWith("bad@") ? "550 5.1.1 bad is unknown" : undefined,
      handleDATA: () => "250 2.0.0 Queued as PY1",
    });
    await withServer(rec.handler, {}, async (server) => {
      const result = await py<{ refused: Record<string, [number, string]>; noop: unknown }>(
        `
s = smtplib.SMTP("127.0.0.1", port, local_hostname="py.example")
refused = s.sendmail("a@example.com", ["one@example.org", "bad@example.org", "two@example.org"],
                     b"Subject: many\\r\\n\\r\\nHi all\\r\\n")
noop = s.noop()
s.quit()
out({"refused": {k: [v[0], v[1].decode()] for k, v in refused.items()}, "noop": [noop[0], noop[1].decode()]})
`,
        server.port,
      );
      expect(result.refused).toEqual({ "bad@example.org": [550, "5.1.1 bad is unknown"] });
      expect(result.noop).toEqual([250, "2.0.0 OK"]);
      const [message] = await rec.waitForMessages(1);
      expect(message?.rcptTos).toEqual(["one@example.org", "two@example.org"]);
      expect(message?.session.hostName).toBe("py.example");
      expect(message?.content.toString()).toBe("Subject: many\r\n\r\nHi all\r\n");
    });
  });

  it("starttls()", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { tls: tlsOptions() }, async (server) => {
      const result = await py<{ before: boolean; tls: number; after: boolean; version: string }>(
        `
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo()
before = s.has_extn("starttls")
code, _ = s.starttls(context=ctx)
s.ehlo()
after = s.has_extn("starttls")
s.sendmail("a@example.com", ["b@example.org"], b"Subject: py tls\\r\\n\\r\\nsecret\\r\\n")
version = s.sock.version()
s.quit()
out({"before": before, "tls": code, "after": after, "version": version})
`,
        server.port,
      );
      expect(result).toMatchObject({ before: true, tls: 220, after: false });
      const [message] = await rec.waitForMessages(1);
      expect(message?.session.ssl).toMatchObject({ implicit: false, protocol: result.version });
      expect(message?.content.toString()).toBe("Subject: py tls\r\n\r\nsecret\r\n");
    });
  });

  it("SMTP_SSL", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { smtps: tlsOptions() }, async (server) => {
      const result = await py<{ code: number; starttls: boolean }>(
        `
s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx)
code, _ = s.ehlo()
starttls = s.has_extn("starttls")
s.sendmail("a@example.com", ["b@example.org"], b"Subject: py ssl\\r\\n\\r\\nimplicit\\r\\n")
s.quit()
out({"code": code, "starttls": starttls})
`,
        server.port,
      );
      expect(result).toEqual({ code: 250, starttls: false });
      const [message] = await rec.waitForMessages(1);
      expect(message?.session.ssl).toMatchObject({ implicit: true });
    });
  });

  const UTF8_MESSAGE = `
from email.message import EmailMessage
msg = EmailMessage()
msg["From"] = "jösé@exämple.com"
msg["To"] = "ünï@exämple.org"
msg["Subject"] = "Grüße"
msg.set_content("Hällo wörld\\n")
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo()
utf8 = s.has_extn("smtputf8")
`;

  it("send_message with SMTPUTF8 addresses and rcpt_options (DSN on)", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { extensions: { dsn: true } }, async (server) => {
      // send_message() itself adds SMTPUTF8 and BODY=8BITMIME for non-ASCII addresses.
      const result = await py<{ refused: unknown; utf8: boolean }>(
        `${UTF8_MESSAGE}
refused = s.send_message(msg, rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
s.quit()
out({"refused": refused, "utf8": utf8})
`,
        server.port,
      );
      expect(result).toEqual({ refused: {}, utf8: true });
      const [message] = await rec.waitForMessages(1);
      expect(message?.mailFrom).toBe("jösé@exämple.com");
      expect(message?.rcptTos).toEqual(["ünï@exämple.org"]);
      expect(message?.smtpUtf8).toBe(true);
      // smtplib declares the exact size (SIZE is advertised), then the parameters it adds.
      expect(message?.mailOptions).toEqual([
        `SIZE=${message?.content.length}`,
        "SMTPUTF8",
        "BODY=8BITMIME",
      ]);
      expect(message?.rcptOptions).toEqual(["NOTIFY=SUCCESS,FAILURE"]);
      const text = message?.content.toString("utf8") ?? "";
      expect(text).toContain("From: jösé@exämple.com\r\n");
      expect(text).toContain("Subject: Grüße\r\n");
      expect(text).toContain("Hällo wörld\r\n");
    });
  });

  it("sendmail with mail_options=['SMTPUTF8'] and a UTF-8 body", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, {}, async (server) => {
      const result = await py<{ refused: unknown }>(
        `
s = smtplib.SMTP("127.0.0.1", port)
refused = s.sendmail("jösé@exämple.com", ["ünï@exämple.org"],
                     "Subject: Grüße\\r\\n\\r\\nHällo\\r\\n".encode(), mail_options=["SMTPUTF8"])
s.quit()
out({"refused": refused})
`,
        server.port,
      );
      expect(result).toEqual({ refused: {} });
      const [message] = await rec.waitForMessages(1);
      expect(message?.mailOptions).toEqual([`SIZE=${message?.content.length}`, "SMTPUTF8"]);
      expect(message?.smtpUtf8).toBe(true);
      expect(message?.content.toString("utf8")).toBe("Subject: Grüße\r\n\r\nHällo\r\n");
    });
  });

  // KNOWN BUG (see intended-differences.ts REPORTED_DIFFERENCES "duplicate MAIL parameter"): smtplib's
  // send_message(mail_options=["SMTPUTF8"]) sends "SMTPUTF8 SMTPUTF8 BODY=8BITMIME"; aiosmtpd
  // accepts repeated parameters, smtpkit answers 501. Remove `.fails` once smtpkit accepts it.
  it("send_message(mail_options=['SMTPUTF8']) repeats SMTPUTF8: the last one wins, as aiosmtpd", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, {}, async (server) => {
      const result = await py<{ refused: unknown }>(
        `${UTF8_MESSAGE}
refused = s.send_message(msg, mail_options=["SMTPUTF8"])
s.quit()
out({"refused": refused})
`,
        server.port,
      );
      expect(result).toEqual({ refused: {} });
    });
  });

  it("dot-unstuffing end to end: lines starting with '.' survive", async () => {
    const rec = recordingHandler();
    const message = crlf("Subject: dots\n\n.\n..\n.hidden\n..double\n. space\nnormal\n.\n");
    await withServer(rec.handler, {}, async (server) => {
      const result = await py<[number, string]>(
        `
msg = sys.argv[2].encode()
s = smtplib.SMTP("127.0.0.1", port)
s.ehlo()
s.mail("a@example.com")
s.rcpt("b@example.org")
code, text = s.data(msg)
s.quit()
out([code, text.decode()])
`,
        server.port,
        message,
      );
      expect(result).toEqual([250, "2.0.0 OK"]);
      const [received] = await rec.waitForMessages(1);
      expect(received?.content.toString("latin1")).toBe(message);
    });
  });

  it("LMTP over a Unix socket: one reply per recipient", async () => {
    const path = join(work, "smtplib-lmtp.sock");
    const rec = recordingHandler({
      handleDATA: (_s, _ss, envelope) =>
        envelope.rcptTos.map((rcpt) => {
          if (rcpt.startsWith("full@")) return "452 4.2.2 Mailbox full";
          if (rcpt.startsWith("gone@")) return "550 5.1.1 No such mailbox";
          return `250 2.0.0 <${rcpt}> delivered`;
        }),
    });
    await withServer(rec.handler, { path, port: undefined, lmtp: true }, async () => {
      const result = await py<{
        lhlo: number;
        features: string[];
        replies: [number, string][];
        error: [number, string];
      }>(
        `
path = sys.argv[2]
s = smtplib.LMTP(path)
code, _ = s.ehlo("lmtp.client")
features = sorted(s.esmtp_features)
s.mail("a@example.com")
for rcpt in ["x@example.org", "full@example.org", "gone@example.org"]:
    s.rcpt(rcpt)
first = s.data(b"Subject: lmtp\\r\\n\\r\\nbody\\r\\n")
# smtplib reads only the first reply (cpython#76984): the others follow.
replies = [first, s.getreply(), s.getreply()]
# sendmail() raises on a first per-recipient failure.
try:
    s.sendmail("a@example.com", ["full@example.org", "x@example.org"], b"Subject: 2\\r\\n\\r\\nx\\r\\n")
    error = [0, ""]
except smtplib.SMTPDataError as e:
    error = [e.smtp_code, e.smtp_error.decode()]
s.getreply()  # the second recipient's reply
s.quit()
out({"lhlo": code, "features": features, "replies": [[c, t.decode()] for c, t in replies], "error": error})
`,
        0,
        path,
      );
      expect(result.lhlo).toBe(250);
      expect(result.features).toEqual(
        expect.arrayContaining(["pipelining", "enhancedstatuscodes"]),
      );
      expect(result.replies).toEqual([
        [250, "2.0.0 <x@example.org> delivered"],
        [452, "4.2.2 Mailbox full"],
        [550, "5.1.1 No such mailbox"],
      ]);
      expect(result.error).toEqual([452, "4.2.2 Mailbox full"]);
      const messages = await rec.waitForMessages(2);
      expect(messages[0]?.rcptTos).toEqual([
        "x@example.org",
        "full@example.org",
        "gone@example.org",
      ]);
      expect(messages[0]?.session.hostName).toBe("lmtp.client");
      expect(messages[0]?.content.toString()).toBe("Subject: lmtp\r\n\r\nbody\r\n");
      expect(messages[1]?.rcptTos).toEqual(["full@example.org", "x@example.org"]);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("Nodemailer", () => {
  const transport = (port: number, extra: Record<string, unknown> = {}) =>
    nodemailer.createTransport({
      host: LOCALHOST,
      port,
      name: "nodemailer.example",
      tls: { rejectUnauthorized: false },
      connectionTimeout: 20_000,
      ...extra,
    });

  it("plain", async () => {
    const rec = recordingHandler({ handleDATA: () => "250 2.0.0 Queued as NM1" });
    await withServer(rec.handler, {}, async (server) => {
      const info = await transport(server.port, { ignoreTLS: true }).sendMail({
        from: "Alice <alice@example.com>",
        to: ["bob@example.org", "carol@example.net"],
        cc: "dave@example.com",
        subject: "Nodemailer",
        text: "Hello\n.dot line\n",
        messageId: "<fixed@nodemailer.example>",
      });
      expect(info.accepted).toEqual(["bob@example.org", "carol@example.net", "dave@example.com"]);
      expect(info.rejected).toEqual([]);
      expect(info.response).toBe("250 2.0.0 Queued as NM1");
      const [message] = await rec.waitForMessages(1);
      expect(message?.mailFrom).toBe("alice@example.com");
      expect(message?.rcptTos).toEqual([
        "bob@example.org",
        "carol@example.net",
        "dave@example.com",
      ]);
      expect(message?.session.hostName).toBe("nodemailer.example");
      const text = message?.content.toString() ?? "";
      expect(text).toContain("Message-ID: <fixed@nodemailer.example>\r\n");
      expect(text).toContain("Subject: Nodemailer\r\n");
      expect(text).toMatch(/\r\n\r\nHello\r\n\.dot line\r\n$/);
      expect(message?.session.ssl).toBeNull();
    });
  });

  it("STARTTLS (requireTLS)", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { tls: tlsOptions(), requireStartTls: true }, async (server) => {
      const info = await transport(server.port, { requireTLS: true }).sendMail({
        from: "a@example.com",
        to: "b@example.org",
        subject: "tls",
        text: "over STARTTLS",
      });
      expect(info.accepted).toEqual(["b@example.org"]);
      const [message] = await rec.waitForMessages(1);
      expect(message?.session.ssl).toMatchObject({ implicit: false });
    });
  });

  it("implicit TLS (secure: true)", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, { smtps: tlsOptions() }, async (server) => {
      const info = await transport(server.port, { secure: true }).sendMail({
        from: "a@example.com",
        to: "b@example.org",
        subject: "smtps",
        text: "implicit",
      });
      expect(info.accepted).toEqual(["b@example.org"]);
      const [message] = await rec.waitForMessages(1);
      expect(message?.session.ssl).toMatchObject({ implicit: true });
    });
  });

  it("pooled: several messages over one connection (RSET between them)", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, {}, async (server) => {
      const pool = transport(server.port, {
        pool: true,
        maxConnections: 1,
        maxMessages: 10,
        ignoreTLS: true,
      });
      const infos = await Promise.all(
        [1, 2, 3, 4, 5].map((n) =>
          pool.sendMail({
            from: `s${n}@example.com`,
            to: `r${n}@example.org`,
            text: `message ${n}`,
          }),
        ),
      );
      pool.close();
      expect(infos.map((info) => info.accepted)).toEqual(
        [1, 2, 3, 4, 5].map((n) => [`r${n}@example.org`]),
      );
      const messages = await rec.waitForMessages(5);
      expect(messages.map((m) => m.mailFrom).sort()).toEqual(
        [1, 2, 3, 4, 5].map((n) => `s${n}@example.com`),
      );
      // One connection: one EHLO, one peer port.
      expect(rec.calls.filter((c) => c.hook === "handleEHLO")).toHaveLength(1);
      expect(new Set(messages.map((m) => JSON.stringify(m.session.peer))).size).toBe(1);
      // Each message had exactly its own recipient: the envelope was reset in between.
      for (const message of messages) expect(message.rcptTos).toHaveLength(1);
    });
  });

  it("LMTP (lmtp: true): per-recipient results after DATA", async () => {
    const rec = recordingHandler({
      handleDATA: (_s, _ss, envelope) =>
        envelope.rcptTos.map((rcpt) =>
          rcpt.startsWith("bad@") ? "550 5.1.1 No mailbox" : `250 2.0.0 Delivered to ${rcpt}`,
        ),
    });
    await withServer(rec.handler, { lmtp: true }, async (server) => {
      const info = await transport(server.port, { lmtp: true, ignoreTLS: true }).sendMail({
        from: "a@example.com",
        to: ["good@example.org", "bad@example.org"],
        subject: "lmtp",
        text: "per recipient",
      });
      expect(info.accepted).toEqual(["good@example.org"]);
      expect(info.rejected).toEqual(["bad@example.org"]);
      expect(info.rejectedErrors?.[0]).toMatchObject({
        responseCode: 550,
        recipient: "bad@example.org",
      });
      const [message] = await rec.waitForMessages(1);
      expect(message?.rcptTos).toEqual(["good@example.org", "bad@example.org"]);
      expect(message?.session.hostName).toBe("nodemailer.example");
    });
  });

  for (const mode of ["handleDATA", "handleDATAStream"] as const) {
    it(`a 5 MB attachment arrives intact (${mode})`, async () => {
      const blob = randomBytes(5 * 1024 * 1024);
      let received: Buffer | null = null;
      const handler: Handler =
        mode === "handleDATA"
          ? {
              handleDATA(_s, _ss, envelope) {
                received = Buffer.from(envelope.content as Uint8Array);
                return "250 2.0.0 Got it";
              },
            }
          : {
              async handleDATAStream(_s, _ss, _e, body) {
                const chunks: Uint8Array[] = [];
                for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
                  chunks.push(chunk);
                }
                received = Buffer.concat(chunks);
                return "250 2.0.0 Streamed";
              },
            };
      await withServer(handler, {}, async (server) => {
        const info = await transport(server.port, { ignoreTLS: true }).sendMail({
          from: "a@example.com",
          to: "b@example.org",
          subject: "big",
          text: "see attachment",
          attachments: [{ filename: "blob.bin", content: blob }],
        });
        expect(info.response).toBe(
          mode === "handleDATA" ? "250 2.0.0 Got it" : "250 2.0.0 Streamed",
        );
        const raw = (received as Buffer | null)?.toString("latin1") ?? "";
        expect(attachment(raw, "blob.bin")).toSatisfy(
          (decoded: Buffer) => sha256(decoded) === sha256(blob),
        );
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe("AUTH with real clients (over STARTTLS, authenticator accepts user/secret)", () => {
  const authOptions = (): ServeOptions => ({
    tls: tlsOptions(),
    requireStartTls: true,
    authRequired: true,
    authenticator: (_s, _ss, _e, mechanism, data) => {
      const { login, password } = data as { login: Uint8Array; password: Uint8Array };
      const user = Buffer.from(login).toString();
      const ok = user === "user" && Buffer.from(password).toString() === "secret";
      return ok ? { success: true, authData: { user, mechanism } } : { success: false };
    },
  });
  const authedMail = (rec: ReturnType<typeof recordingHandler>) =>
    rec.calls.filter((c) => c.hook === "handleMAIL").map((c) => c.session);

  for (const mechanism of ["PLAIN", "LOGIN"]) {
    it(`swaks -a ${mechanism}`, async () => {
      const rec = recordingHandler();
      await withServer(rec.handler, authOptions(), async (server) => {
        const good = await run("swaks", [
          "--server",
          `${LOCALHOST}:${server.port}`,
          "-tls",
          "-a",
          mechanism,
          "-au",
          "user",
          "-ap",
          "secret",
          "--from",
          "a@example.com",
          "--to",
          "b@example.org",
        ]);
        expect(good.code, good.stdout).toBe(0);
        expect(good.stdout).toContain("<~  235 2.7.0 Authentication successful");
        const bad = await run("swaks", [
          "--server",
          `${LOCALHOST}:${server.port}`,
          "-tls",
          "-a",
          mechanism,
          "-au",
          "user",
          "-ap",
          "wrong",
          "--from",
          "a@example.com",
          "--to",
          "b@example.org",
        ]);
        expect(bad.stdout).toContain("<~* 535 5.7.8 Authentication credentials invalid");
        expect(bad.code).not.toBe(0);
        await rec.waitForMessages(1);
        expect(authedMail(rec)).toEqual([
          expect.objectContaining({ authenticated: true, authData: { user: "user", mechanism } }),
        ]);
      });
    });
  }

  it("swaks without AUTH: 530 Authentication required", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, authOptions(), async (server) => {
      const result = await run("swaks", [
        "--server",
        `${LOCALHOST}:${server.port}`,
        "-tls",
        "--from",
        "a@example.com",
        "--to",
        "b@example.org",
      ]);
      expect(result.stdout).toContain("<~* 530 5.7.0 Authentication required");
      expect(rec.messages).toHaveLength(0);
    });
  });

  it("curl --user with --ssl-reqd", async () => {
    const rec = recordingHandler();
    const file = join(work, "auth.eml");
    writeFileSync(file, "Subject: auth\r\n\r\nauthenticated\r\n");
    await withServer(rec.handler, authOptions(), async (server) => {
      const result = await run("curl", [
        "-sS",
        "-v",
        "-k",
        "--ssl-reqd",
        "--max-time",
        "20",
        `smtp://${LOCALHOST}:${server.port}`,
        "--user",
        "user:secret",
        "--mail-from",
        "a@example.com",
        "--mail-rcpt",
        "b@example.org",
        "--upload-file",
        file,
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/> AUTH (PLAIN|LOGIN)/);
      expect(result.stderr).toContain("< 235 2.7.0 Authentication successful");
      const [message] = await rec.waitForMessages(1);
      expect(message?.session).toMatchObject({ authenticated: true, authData: { user: "user" } });
    });
  });

  it("smtplib login() after starttls()", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, authOptions(), async (server) => {
      const result = await python<{ login: [number, string]; bad: [number, string] }>(
        `
import json, smtplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.starttls(context=ctx)
try:
    s.login("user", "nope")
    bad = [0, ""]
except smtplib.SMTPAuthenticationError as e:
    bad = [e.smtp_code, e.smtp_error.decode()]
code, text = s.login("user", "secret")
s.sendmail("a@example.com", ["b@example.org"], b"Subject: py auth\\r\\n\\r\\nx\\r\\n")
s.quit()
print(json.dumps({"login": [code, text.decode()], "bad": bad}))
`,
        [String(server.port)],
      );
      expect(result.login).toEqual([235, "2.7.0 Authentication successful"]);
      expect(result.bad).toEqual([535, "5.7.8 Authentication credentials invalid"]);
      const [message] = await rec.waitForMessages(1);
      expect(message?.session).toMatchObject({ authenticated: true, authData: { user: "user" } });
    });
  });

  it("Nodemailer auth: { user, pass }", async () => {
    const rec = recordingHandler();
    await withServer(rec.handler, authOptions(), async (server) => {
      const transport = nodemailer.createTransport({
        host: LOCALHOST,
        port: server.port,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: "user", pass: "secret" },
      });
      const info = await transport.sendMail({
        from: "a@example.com",
        to: "b@example.org",
        subject: "auth",
        text: "authenticated",
      });
      expect(info.accepted).toEqual(["b@example.org"]);
      const [message] = await rec.waitForMessages(1);
      expect(message?.session).toMatchObject({ authenticated: true, authData: { user: "user" } });
      const bad = nodemailer.createTransport({
        host: LOCALHOST,
        port: server.port,
        requireTLS: true,
        tls: { rejectUnauthorized: false },
        auth: { user: "user", pass: "wrong" },
      });
      await expect(
        bad.sendMail({ from: "a@example.com", to: "b@example.org", text: "x" }),
      ).rejects.toMatchObject({ code: "EAUTH", responseCode: 535 });
    });
  });
});

/** The base64 body of the MIME part named `filename`, decoded. */
function attachment(raw: string, filename: string): Buffer {
  const boundary = /boundary="?([^";\r\n]+)"?/.exec(raw)?.[1];
  if (!boundary) throw new Error("no MIME boundary");
  const part = raw
    .split(`--${boundary}`)
    .find((section) => section.includes(`filename=${filename}`));
  if (!part) throw new Error(`no part ${filename}`);
  const body = part.slice(part.indexOf("\r\n\r\n") + 4);
  return Buffer.from(body.replace(/\s+/g, ""), "base64");
}

void decode;
