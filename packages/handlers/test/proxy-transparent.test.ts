/**
 * The Proxy's transparent mode over real sockets: a second smtpkit server (refusing chosen
 * recipients) and aiosmtpd as upstreams, Nodemailer, smtplib and a raw client in front. The
 * client learns each recipient's fate at RCPT time, from the upstream itself.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Envelope, Handler, MessageBody, Session, SMTP } from "@smtpkit/core/server";
import { type SmtpServer, serve } from "@smtpkit/node";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type ProxyOptions, SmtpProxy } from "../src/index.js";
import {
  eventually,
  freePort,
  nodemailerTo,
  python,
  RawClient,
  smtplibSend,
  startAiosmtpd,
} from "./support.js";
import { makeCertificate } from "./tls-certificate.js";

const root = mkdtempSync(join(tmpdir(), "smtpkit-proxy-transparent-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const servers: SmtpServer[] = [];
const rawServers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 1000 })));
  for (const s of rawServers.splice(0)) s.close();
});

async function start(handler: Handler, options: Parameters<typeof serve>[1] = {}) {
  const server = await serve(handler, { host: "127.0.0.1", port: 0, ...options });
  servers.push(server);
  return server;
}

interface Received {
  from: string | null;
  mailOptions: string[];
  to: string[];
  rcptOptions: string[];
  bytes: string;
  authenticated: boolean | null;
}

/**
 * An upstream that refuses `bad@…` (550) and `later@…` (451) at RCPT, and records connections,
 * RSETs, closes and every message it takes.
 */
class Upstream implements Handler {
  [hook: `auth_${string}`]: unknown;
  connections = 0;
  resets = 0;
  closes: string[] = [];
  messages: Received[] = [];
  constructor(private readonly final = "250 2.0.0 Ok: queued as ABC123") {}
  handleCONNECT() {
    this.connections++;
  }
  handleCLOSE(_server: SMTP, _session: Session, reason: string) {
    this.closes.push(reason);
  }
  handleRSET() {
    this.resets++;
  }
  handleRCPT(
    _server: SMTP,
    _session: Session,
    _envelope: Envelope,
    address: string,
  ): string | undefined {
    if (address.startsWith("bad@")) return "550 5.1.1 <bad@example.com>: no such user";
    if (address.startsWith("later@")) return "451 4.2.1 Mailbox busy, try later";
    return undefined;
  }
  handleDATA(_server: SMTP, session: Session, envelope: Envelope): string | string[] {
    this.messages.push({
      from: envelope.mailFrom,
      mailOptions: [...envelope.mailOptions],
      to: [...envelope.rcptTos],
      rcptOptions: [...envelope.rcptOptions],
      bytes: new TextDecoder().decode(envelope.originalContent ?? new Uint8Array()),
      authenticated: session.authenticated,
    });
    return this.final;
  }
}

async function proxyTo(
  upstreamPort: number,
  options: ProxyOptions = {},
  serveOptions: Parameters<typeof serve>[1] = {},
) {
  // The relayed bytes are compared with what was sent: no Received: line (proxy.test.ts has its test).
  const proxy = new SmtpProxy("127.0.0.1", upstreamPort, { traceHeaders: false, ...options });
  return { proxy, server: await start(proxy, serveOptions) };
}

const SOURCE = "From: a@example.com\nTo: good@example.com\nSubject: per recipient\n\nHello\n";

describe("per-recipient replies at RCPT time", () => {
  it("Nodemailer: each RCPT's upstream reply, the message only for the accepted ones", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port);
    const info = await nodemailerTo(server.port).sendMail({
      envelope: {
        from: "a@example.com",
        to: ["good@example.com", "bad@example.com", "later@example.com", "also@example.com"],
      },
      raw: SOURCE,
    });
    expect(info.accepted).toEqual(["good@example.com", "also@example.com"]);
    expect(info.rejected).toEqual(["bad@example.com", "later@example.com"]);
    // Refused at RCPT, with the upstream's own code, enhanced code and text.
    expect(info.rejectedErrors?.map((e) => [e.command, e.response])).toEqual([
      ["RCPT TO", "550 5.1.1 <bad@example.com>: no such user"],
      ["RCPT TO", "451 4.2.1 Mailbox busy, try later"],
    ]);
    expect(info.response).toBe("250 2.0.0 Ok: queued as ABC123");
    expect(upstream.messages.map((m) => m.to)).toEqual([["good@example.com", "also@example.com"]]);
    expect(upstream.connections).toBe(1);
  });

  it("smtplib: sendmail reports the refused recipients, the message goes to the others", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port);
    const result = await smtplibSend(
      server.port,
      "a@example.com",
      ["bad@example.com", "good@example.com", "later@example.com"],
      SOURCE,
    );
    expect(result.refused).toEqual({
      "bad@example.com": [550, "5.1.1 <bad@example.com>: no such user"],
      "later@example.com": [451, "4.2.1 Mailbox busy, try later"],
    });
    expect(upstream.messages.map((m) => m.to)).toEqual([["good@example.com"]]);
    expect(upstream.messages[0]?.bytes).toBe(
      "From: a@example.com\r\nTo: good@example.com\r\nSubject: per recipient\r\nX-Peer: 127.0.0.1\r\n\r\nHello\r\n",
    );
  });

  it("smtplib: every recipient refused: SMTPRecipientsRefused, nothing sent upstream", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port);
    const result = await smtplibSend(
      server.port,
      "a@example.com",
      ["bad@example.com", "later@example.com"],
      SOURCE,
    );
    expect(result.error).toEqual([
      "SMTPRecipientsRefused",
      {
        "bad@example.com": [550, "5.1.1 <bad@example.com>: no such user"],
        "later@example.com": [451, "4.2.1 Mailbox busy, try later"],
      },
    ]);
    expect(upstream.messages).toEqual([]);
  });

  it("a pipelining client: MAIL, RCPTs and DATA in one write, the replies in order", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port);
    const client = await RawClient.connect(server.port);
    await client.reply();
    expect(await client.command("EHLO client.example")).toContain("PIPELINING");
    await client.write(
      "MAIL FROM:<a@example.com>\r\nRCPT TO:<bad@example.com>\r\nRCPT TO:<good@example.com>\r\nRCPT TO:<later@example.com>\r\nDATA\r\n",
    );
    expect(await client.reply()).toBe("250 2.1.0 OK");
    expect(await client.reply()).toBe("550 5.1.1 <bad@example.com>: no such user");
    expect(await client.reply()).toBe("250 2.1.5 OK");
    expect(await client.reply()).toBe("451 4.2.1 Mailbox busy, try later");
    expect(await client.reply()).toMatch(/^354/);
    expect(await client.command("Subject: x\r\n\r\n..leading dot\r\n.")).toBe(
      "250 2.0.0 Ok: queued as ABC123",
    );
    expect(await client.command("QUIT")).toMatch(/^221/);
    client.destroy();
    expect(upstream.messages.map((m) => m.to)).toEqual([["good@example.com"]]);
    // The dot-stuffing survives the relay: the upstream unstuffs what the proxy stuffed.
    expect(upstream.messages[0]?.bytes).toBe(
      "Subject: x\r\nX-Peer: 127.0.0.1\r\n\r\n.leading dot\r\n",
    );
  });

  it("BDAT from the client is relayed (as DATA) with the upstream's final reply", async () => {
    const upstream = new Upstream("250 2.0.0 Ok: queued as BDAT1");
    const up = await start(upstream);
    const { server } = await proxyTo(up.port);
    const client = await RawClient.connect(server.port);
    await client.reply();
    await client.command("EHLO client.example");
    await client.command("MAIL FROM:<a@example.com>");
    await client.command("RCPT TO:<good@example.com>");
    const first = "Subject: chunks\r\n\r\n";
    await client.write(`BDAT ${first.length}\r\n${first}`);
    expect(await client.reply()).toMatch(/^250/);
    const last = ".dot\r\nend\r\n";
    await client.write(`BDAT ${last.length} LAST\r\n${last}`);
    expect(await client.reply()).toBe("250 2.0.0 Ok: queued as BDAT1");
    client.destroy();
    expect(upstream.messages[0]?.bytes).toBe(
      "Subject: chunks\r\nX-Peer: 127.0.0.1\r\n\r\n.dot\r\nend\r\n",
    );
  });

  it("LMTP in front: RCPT refusals at RCPT time, then the upstream's reply for each accepted recipient", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port, {}, { lmtp: true });
    const info = await nodemailerTo(server.port, { lmtp: true }).sendMail({
      envelope: {
        from: "a@example.com",
        to: ["good@example.com", "bad@example.com", "also@example.com"],
      },
      raw: SOURCE,
    });
    expect(info.accepted).toEqual(["good@example.com", "also@example.com"]);
    expect(info.rejected).toEqual(["bad@example.com"]);
    expect(upstream.messages.map((m) => m.to)).toEqual([["good@example.com", "also@example.com"]]);
  });

  it("an LMTP upstream (connection.lmtp): its reply for each recipient after the body", async () => {
    const upstream = new Upstream();
    // After the body, the LMTP upstream refuses full@ (over quota) and takes the others.
    upstream.handleDATA = (_server: SMTP, _session: Session, envelope: Envelope) => {
      upstream.messages.push({
        from: envelope.mailFrom,
        mailOptions: [],
        to: envelope.rcptTos.filter((r) => !r.startsWith("full@")),
        rcptOptions: [],
        bytes: "",
        authenticated: null,
      });
      return envelope.rcptTos.map((r) =>
        r.startsWith("full@") ? "452 4.2.2 Over quota" : "250 2.0.0 Delivered",
      );
    };
    const up = await start(upstream, { lmtp: true });
    // LMTP in front: every recipient its own final reply, from the upstream.
    const lmtp = await proxyTo(up.port, { connection: { lmtp: true } }, { lmtp: true });
    const info = await nodemailerTo(lmtp.server.port, { lmtp: true }).sendMail({
      envelope: {
        from: "a@example.com",
        to: ["good@example.com", "bad@example.com", "full@example.com", "also@example.com"],
      },
      raw: SOURCE,
    });
    expect(info.accepted).toEqual(["good@example.com", "also@example.com"]);
    expect(info.rejectedErrors?.map((e) => [e.recipient, e.response])).toEqual([
      ["bad@example.com", "550 5.1.1 <bad@example.com>: no such user"],
      ["full@example.com", "452 4.2.2 Over quota"],
    ]);
    // SMTP in front: one reply, the refusal after the body named with those who got it.
    const smtp = await proxyTo(up.port, { connection: { lmtp: true } });
    const client = await RawClient.connect(smtp.server.port);
    await client.startData("a@example.com", ["good@example.com", "full@example.com"]);
    expect(await client.command("Subject: x\r\n\r\nbody\r\n.")).toBe(
      [
        "452-4.2.2 Upstream refused 1 of 2 recipients:",
        "452-4.2.2 <full@example.com>: 452 4.2.2 Over quota",
        "452 4.2.2 Delivered to: good@example.com",
      ].join("\r\n"),
    );
    client.destroy();
    expect(upstream.messages.map((m) => m.to)).toEqual([
      ["good@example.com", "also@example.com"],
      ["good@example.com"],
    ]);
  });

  it("aiosmtpd as the upstream, refusing recipients in handle_RCPT", async () => {
    const dir = mkdtempSync(join(root, "aiosmtpd-"));
    const out = join(dir, "captured.jsonl");
    writeFileSync(
      join(dir, "refusing.py"),
      `import json
class Refusing:
    def __init__(self, path):
        self.path = path
    @classmethod
    def from_cli(cls, parser, *args):
        return cls(args[0])
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bad@"):
            return "550 5.1.1 No such user here"
        if address.startswith("later@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        with open(self.path, "a") as f:
            f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                "content": envelope.original_content.decode("latin-1")}) + "\\n")
        return "250 2.0.0 Stored by aiosmtpd"
`,
    );
    const aiosmtpd = await startAiosmtpd(["refusing.Refusing", out], { pythonPath: dir });
    try {
      const { server } = await proxyTo(aiosmtpd.port);
      const info = await nodemailerTo(server.port).sendMail({
        envelope: {
          from: "a@example.com",
          to: ["bad@example.com", "good@example.com", "later@example.com"],
        },
        raw: SOURCE,
      });
      expect(info.accepted).toEqual(["good@example.com"]);
      expect(info.rejectedErrors?.map((e) => e.response)).toEqual([
        "550 5.1.1 No such user here",
        "451 4.3.0 Try again later",
      ]);
      expect(info.response).toBe("250 2.0.0 Stored by aiosmtpd");
      const lines = readFileSync(out, "utf8").trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0] as string)).toEqual({
        from: "a@example.com",
        to: ["good@example.com"],
        content:
          "From: a@example.com\r\nTo: good@example.com\r\nSubject: per recipient\r\nX-Peer: 127.0.0.1\r\n\r\nHello\r\n",
      });
    } finally {
      await aiosmtpd.stop();
    }
  });
});

/** One smtplib session, several transactions: each step's `[code, text]`. */
const SESSION = `
import json, smtplib, sys
port = int(sys.argv[1])
steps = []
c = smtplib.SMTP("127.0.0.1", port)
c.ehlo("client.example")
def step(name, result):
    steps.append([name, result[0], result[1].decode()])
step("mail1", c.mail("a@example.com"))
step("rcpt1", c.rcpt("good@example.com"))
step("data1", c.data(b"Subject: one\\r\\n\\r\\nfirst\\r\\n"))
step("mail2", c.mail("a@example.com"))
step("rcpt2", c.rcpt("bad@example.com"))
step("rset", c.rset())
step("mail3", c.mail("b@example.com"))
step("rcpt3", c.rcpt("also@example.com"))
step("data3", c.data(b"Subject: three\\r\\n\\r\\nthird\\r\\n"))
step("quit", c.quit())
print(json.dumps(steps))
`;

describe("one upstream connection per client session", () => {
  it("three transactions, one upstream connection (RSET upstream after the abandoned one), closed at QUIT", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server, proxy } = await proxyTo(up.port);
    const steps = await python<[string, number, string][]>(SESSION, [server.port]);
    expect(steps.map(([name, code]) => [name, code])).toEqual([
      ["mail1", 250],
      ["rcpt1", 250],
      ["data1", 250],
      ["mail2", 250],
      ["rcpt2", 550],
      ["rset", 250],
      ["mail3", 250],
      ["rcpt3", 250],
      ["data3", 250],
      ["quit", 221],
    ]);
    expect(upstream.messages.map((m) => [m.from, m.to])).toEqual([
      ["a@example.com", ["good@example.com"]],
      ["b@example.com", ["also@example.com"]],
    ]);
    expect(upstream.connections).toBe(1);
    expect(proxy.upstreamConnections).toBe(1);
    // The transaction left open upstream (mail2) is reset before the next MAIL; a completed one is not.
    expect(upstream.resets).toBe(1);
    await eventually(() => upstream.closes.length === 1);
    expect(upstream.closes).toEqual(["quit"]);
  });

  it("two client sessions get two upstream connections", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server, proxy } = await proxyTo(up.port);
    await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(upstream.connections).toBe(2);
    expect(proxy.upstreamConnections).toBe(2);
    expect(upstream.messages).toHaveLength(2);
  });

  it("an upstream that closed the idle connection: the next MAIL opens a new one", async () => {
    const upstream = new Upstream();
    // The upstream gives up on an idle client after 1 s.
    const up = await start(upstream, { timeout: 1 });
    const { server } = await proxyTo(up.port);
    const client = await RawClient.connect(server.port);
    await client.reply();
    await client.command("EHLO client.example");
    for (const round of [1, 2]) {
      expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250/);
      expect(await client.command("RCPT TO:<good@example.com>")).toMatch(/^250/);
      expect(await client.command("DATA")).toMatch(/^354/);
      expect(await client.command(`Subject: ${round}\r\n\r\nx\r\n.`)).toMatch(/^250/);
      if (round === 1) await eventually(() => upstream.closes.includes("timeout"), 5000);
    }
    client.destroy();
    expect(upstream.connections).toBe(2);
    expect(upstream.messages).toHaveLength(2);
  });

  it("the client leaving: the upstream connection is closed too", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port);
    const client = await RawClient.connect(server.port);
    await client.reply();
    await client.command("EHLO client.example");
    await client.command("MAIL FROM:<a@example.com>");
    await eventually(() => up.connections === 1);
    client.destroy();
    await eventually(() => up.connections === 0);
    expect(upstream.closes).toHaveLength(1);
  });
});

describe("upstream failures are temporary refusals, never 250", () => {
  it("upstream unreachable: 451 4.4.1 at MAIL", async () => {
    const { server } = await proxyTo(await freePort());
    const result = await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(result.error).toEqual([
      "SMTPSenderRefused",
      451,
      "4.4.1 Error: cannot relay the message, upstream unavailable (ECONNREFUSED)",
    ]);
  });

  it("upstream refusing connections (421 greeting): 451 4.4.1 at MAIL", async () => {
    const up = await start(new Upstream(), { maxConnections: 0 });
    const { server } = await proxyTo(up.port);
    const result = await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(result.error).toEqual([
      "SMTPSenderRefused",
      451,
      "4.4.1 Error: cannot relay the message, upstream unavailable (EGREETING)",
    ]);
  });

  it("an upstream that never greets: 451 4.4.1 after the connection timeout", async () => {
    const silent = createServer(() => undefined);
    rawServers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    const { server } = await proxyTo(port, { connection: { connectionTimeout: 300 } });
    const result = await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(result.error).toEqual([
      "SMTPSenderRefused",
      451,
      "4.4.1 Error: cannot relay the message, upstream unavailable (ETIMEDOUT)",
    ]);
  });

  it("an upstream that stops answering mid-transaction: 451 4.4.2 at RCPT", async () => {
    const sockets: Socket[] = [];
    // Greets, answers EHLO and MAIL, then goes quiet.
    const mute = createServer((socket) => {
      sockets.push(socket);
      socket.write("220 mute.example ESMTP\r\n");
      let seen = "";
      socket.on("data", (data) => {
        seen += data.toString("latin1");
        if (/EHLO[^\n]*\n$/.test(seen)) socket.write("250 mute.example\r\n");
        if (/MAIL FROM[^\n]*\n$/.test(seen)) socket.write("250 2.1.0 Ok\r\n");
      });
    });
    rawServers.push(mute);
    await new Promise<void>((resolve) => mute.listen(0, "127.0.0.1", resolve));
    const port = (mute.address() as { port: number }).port;
    const { server } = await proxyTo(port, { connection: { socketTimeout: 300 } });
    const client = await RawClient.connect(server.port);
    await client.reply();
    await client.command("EHLO client.example");
    expect(await client.command("MAIL FROM:<a@example.com>")).toBe("250 2.1.0 Ok");
    expect(await client.command("RCPT TO:<good@example.com>")).toBe(
      "451 4.4.2 Error: upstream connection lost (ETIMEDOUT)",
    );
    client.destroy();
    for (const socket of sockets) socket.destroy();
  });

  it("an upstream reply past the line limit: a protocol error, 451", async () => {
    const sockets: Socket[] = [];
    const chatty = createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => undefined);
      socket.write(`220 ${"x".repeat(5000)}\r\n`);
    });
    rawServers.push(chatty);
    await new Promise<void>((resolve) => chatty.listen(0, "127.0.0.1", resolve));
    const port = (chatty.address() as { port: number }).port;
    const { server } = await proxyTo(port, { replyLimits: { maxLineLength: 1024 } });
    const result = await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(result.error).toEqual([
      "SMTPSenderRefused",
      451,
      "4.4.1 Error: cannot relay the message, upstream unavailable (EPROTOCOL)",
    ]);
    for (const socket of sockets) socket.destroy();
  });

  /** A scripted upstream on a raw socket: `answer(line, socket)` for every command line. */
  async function scripted(greeting: string, answer: (line: string, socket: Socket) => void) {
    const sockets: Socket[] = [];
    const fake = createServer((socket) => {
      sockets.push(socket);
      socket.on("error", () => undefined);
      socket.write(greeting);
      let pending = "";
      socket.on("data", (data) => {
        pending += data.toString("latin1");
        for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
          const line = pending.slice(0, nl + 1);
          pending = pending.slice(nl + 1);
          answer(line.trimEnd(), socket);
        }
      });
    });
    rawServers.push(fake);
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    return {
      port: (fake.address() as { port: number }).port,
      destroy: () => {
        for (const socket of sockets) socket.destroy();
      },
    };
  }

  it("an upstream refusing the body before its end: its reply, not a 250", async () => {
    let inBody = false;
    let refused = false;
    const fake = await scripted("220 fake ESMTP\r\n", (line, socket) => {
      if (inBody) {
        if (line === ".") {
          inBody = false;
        } else if (!refused) {
          refused = true;
          socket.write("552 5.3.4 Message too big for this mailbox\r\n");
        }
        return;
      }
      if (line.startsWith("EHLO")) socket.write("250-fake\r\n250 PIPELINING\r\n");
      else if (line === "DATA") {
        inBody = true;
        socket.write("354 go ahead\r\n");
      } else if (line === "QUIT") socket.end("221 bye\r\n");
      else socket.write("250 2.0.0 Ok\r\n");
    });
    const { server } = await proxyTo(fake.port);
    const result = await smtplibSend(
      server.port,
      "a@example.com",
      ["good@example.com"],
      `Subject: big\n\n${"x".repeat(70)}\n`.repeat(3000),
    );
    expect(result.error).toEqual(["SMTPDataError", 552, "5.3.4 Message too big for this mailbox"]);
    fake.destroy();
  });

  it("RSET and the next MAIL go upstream in one pipelined write when PIPELINING is offered", async () => {
    const seen: string[] = [];
    let resetPending = false;
    // Answers RSET only once the MAIL after it has arrived: a proxy waiting for the RSET reply
    // before sending MAIL would time out here.
    const fake = await scripted("220 fake ESMTP\r\n", (line, socket) => {
      seen.push(line);
      if (line.startsWith("EHLO")) socket.write("250-fake\r\n250 PIPELINING\r\n");
      else if (line === "RSET") resetPending = true;
      else if (line.startsWith("MAIL") && resetPending) {
        resetPending = false;
        socket.write("250 2.0.0 reset\r\n250 2.1.0 sender ok after reset\r\n");
      } else if (line === "QUIT") socket.end("221 bye\r\n");
      else socket.write("250 2.0.0 Ok\r\n");
    });
    const { server } = await proxyTo(fake.port, { connection: { socketTimeout: 2000 } });
    const client = await RawClient.connect(server.port);
    await client.reply();
    await client.command("EHLO client.example");
    expect(await client.command("MAIL FROM:<a@example.com>")).toBe("250 2.0.0 Ok");
    expect(await client.command("RSET")).toMatch(/^250/);
    expect(await client.command("MAIL FROM:<b@example.com>")).toBe(
      "250 2.1.0 sender ok after reset",
    );
    client.destroy();
    expect(seen.filter((l) => !l.startsWith("EHLO"))).toEqual([
      "MAIL FROM:<a@example.com>",
      "RSET",
      "MAIL FROM:<b@example.com>",
    ]);
    fake.destroy();
  });

  it("an upstream that sends more after its STARTTLS 220 (injection): refused, 451", async () => {
    const fake = await scripted("220 fake ESMTP\r\n", (line, socket) => {
      if (line.startsWith("EHLO")) socket.write("250-fake\r\n250 STARTTLS\r\n");
      else if (line === "STARTTLS") socket.write("220 ready\r\n250 injected\r\n");
    });
    const { server } = await proxyTo(fake.port);
    const result = await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(result.error).toEqual([
      "SMTPSenderRefused",
      451,
      "4.4.1 Error: cannot relay the message, upstream unavailable (EPROTOCOL)",
    ]);
    fake.destroy();
  });

  it("the upstream closing (421 to RCPT) becomes 451, and the next MAIL reconnects", async () => {
    let refuse = true;
    const upstream = new Upstream();
    upstream.handleRCPT = (): string | undefined => {
      if (!refuse) return undefined;
      refuse = false;
      return "421 4.3.2 Going down";
    };
    const up = await start(upstream);
    const { server } = await proxyTo(up.port);
    const client = await RawClient.connect(server.port);
    await client.reply();
    await client.command("EHLO client.example");
    await client.command("MAIL FROM:<a@example.com>");
    expect(await client.command("RCPT TO:<good@example.com>")).toBe("451 4.3.2 Going down");
    await client.command("RSET");
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250/);
    expect(await client.command("RCPT TO:<good@example.com>")).toMatch(/^250/);
    client.destroy();
    expect(upstream.connections).toBe(2);
  });
});

describe("extensions passed on when the upstream offers them", () => {
  const DSN_SESSION = `
import json, smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
c.ehlo("client.example")
steps = []
for r in [c.mail("a@example.com", ["RET=HDRS", "ENVID=id+2B42"]),
          c.rcpt("good@example.com", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;good@example.com"]),
          c.data(b"Subject: dsn\\r\\n\\r\\nbody\\r\\n")]:
    steps.append(r[0])
c.quit()
print(json.dumps(steps))
`;

  it("DSN: RET, ENVID, NOTIFY and ORCPT reach a DSN upstream", async () => {
    const upstream = new Upstream();
    const up = await start(upstream, { extensions: { dsn: true } });
    const { server } = await proxyTo(up.port, {}, { extensions: { dsn: true } });
    expect(await python(DSN_SESSION, [server.port])).toEqual([250, 250, 250]);
    expect(upstream.messages[0]?.mailOptions).toEqual(["RET=HDRS", "ENVID=id+2B42"]);
    expect(upstream.messages[0]?.rcptOptions).toEqual([
      "NOTIFY=SUCCESS,FAILURE",
      "ORCPT=rfc822;good@example.com",
    ]);
  });

  it("DSN: dropped for an upstream without DSN (it would refuse them)", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port, {}, { extensions: { dsn: true } });
    expect(await python(DSN_SESSION, [server.port])).toEqual([250, 250, 250]);
    expect(upstream.messages[0]?.mailOptions).toEqual([]);
    expect(upstream.messages[0]?.rcptOptions).toEqual([]);
  });

  it("SMTPUTF8: passed on when offered, refused (553 5.6.7) when not", async () => {
    const script = `
import json, smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
c.ehlo("client.example")
r = c.mail("zoë@example.com", ["SMTPUTF8"])
out = [r[0], r[1].decode()]
if r[0] == 250:
    c.rcpt("good@example.com")
    out.append(c.data("Subject: ü\\r\\n\\r\\nbody\\r\\n".encode())[0])
c.quit()
print(json.dumps(out))
`;
    const utf8 = new Upstream();
    const up = await start(utf8);
    const { server } = await proxyTo(up.port);
    expect(await python(script, [server.port])).toEqual([250, "2.1.0 OK", 250]);
    expect(utf8.messages[0]?.from).toBe("zoë@example.com");
    expect(utf8.messages[0]?.mailOptions).toContain("SMTPUTF8");

    const ascii = new Upstream();
    const asciiUp = await start(ascii, { enableSmtpUtf8: false });
    const second = await proxyTo(asciiUp.port);
    expect(await python(script, [second.server.port])).toEqual([
      553,
      "5.6.7 Error: the upstream does not support SMTPUTF8",
    ]);
    expect(ascii.messages).toEqual([]);
  });

  it("AUTH to the upstream when configured; refused credentials are a 451", async () => {
    const upstream = new Upstream();
    const up = await start(upstream, {
      authRequireTls: false,
      authenticator: (_server, _session, _envelope, _mechanism, data) => {
        const { login, password } = data as { login: Uint8Array; password: Uint8Array };
        const ok =
          new TextDecoder().decode(login) === "relay" &&
          new TextDecoder().decode(password) === "secret";
        return { success: ok };
      },
    });
    const good = await proxyTo(up.port, { auth: { user: "relay", pass: "secret" } });
    const sent = await smtplibSend(good.server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(sent.refused).toEqual({});
    expect(upstream.messages[0]?.authenticated).toBe(true);
    // An upstream offering only LOGIN gets LOGIN.
    const loginOnly = await start(upstream, {
      authRequireTls: false,
      authExcludeMechanism: ["PLAIN"],
      authenticator: (_server, _session, _envelope, mechanism, data) => {
        const { login, password } = data as { login: Uint8Array; password: Uint8Array };
        const ok =
          mechanism === "LOGIN" &&
          new TextDecoder().decode(login) === "relay" &&
          new TextDecoder().decode(password) === "secret";
        return { success: ok };
      },
    });
    const viaLogin = await proxyTo(loginOnly.port, { auth: { user: "relay", pass: "secret" } });
    const sentLogin = await smtplibSend(
      viaLogin.server.port,
      "a@example.com",
      ["good@example.com"],
      SOURCE,
    );
    expect(sentLogin.refused).toEqual({});
    expect(upstream.messages[1]?.authenticated).toBe(true);
    const bad = await proxyTo(up.port, { auth: { user: "relay", pass: "wrong" } });
    const refused = await smtplibSend(
      bad.server.port,
      "a@example.com",
      ["good@example.com"],
      SOURCE,
    );
    expect(refused.error).toEqual([
      "SMTPSenderRefused",
      451,
      "4.7.0 Error: the upstream refused this relay's credentials",
    ]);
    expect(upstream.messages).toHaveLength(2);
  });
});

describe("TLS to the upstream and REQUIRETLS", () => {
  const certificate = makeCertificate();
  const clientTls = { ca: certificate.cert };
  // The client: STARTTLS to the proxy, then MAIL with REQUIRETLS (or without), RCPT, DATA.
  const REQUIRETLS = `
import json, smtplib, ssl, sys
port, require = int(sys.argv[1]), sys.argv[2] == "1"
c = smtplib.SMTP("127.0.0.1", port)
c.starttls(context=ssl._create_unverified_context())
c.ehlo("client.example")
r = c.mail("a@example.com", ["REQUIRETLS"] if require else [])
out = [r[0], r[1].decode()]
if r[0] == 250:
    c.rcpt("good@example.com")
    out.append(c.data(b"Subject: tls\\r\\n\\r\\nbody\\r\\n")[0])
c.quit()
print(json.dumps(out))
`;
  const proxyServe = { tls: certificate, extensions: { requireTls: true } };

  it("REQUIRETLS over verified STARTTLS to an upstream that offers it: relayed, with the parameter", async () => {
    const upstream = new Upstream();
    const up = await start(upstream, { tls: certificate, extensions: { requireTls: true } });
    const { server } = await proxyTo(up.port, { connection: { tls: clientTls } }, proxyServe);
    expect(await python(REQUIRETLS, [server.port, "1"])).toEqual([250, "2.1.0 OK", 250]);
    expect(upstream.messages[0]?.mailOptions).toEqual(["REQUIRETLS"]);
  });

  it("REQUIRETLS to an upstream without STARTTLS: 550 5.7.30, and plain mail still relayed", async () => {
    const upstream = new Upstream();
    const up = await start(upstream);
    const { server } = await proxyTo(up.port, {}, proxyServe);
    expect(await python(REQUIRETLS, [server.port, "1"])).toEqual([
      550,
      "5.7.30 REQUIRETLS support required: the upstream is not reached over verified TLS",
    ]);
    expect(await python(REQUIRETLS, [server.port, "0"])).toEqual([250, "2.1.0 OK", 250]);
    expect(upstream.messages.map((m) => m.mailOptions)).toEqual([[]]);
  });

  it("REQUIRETLS to an upstream under TLS that does not offer REQUIRETLS: 550 5.7.30", async () => {
    const up = await start(new Upstream(), { tls: certificate });
    const { server } = await proxyTo(up.port, { connection: { tls: clientTls } }, proxyServe);
    expect(await python(REQUIRETLS, [server.port, "1"])).toEqual([
      550,
      "5.7.30 REQUIRETLS support required: the upstream does not offer REQUIRETLS",
    ]);
  });

  it("REQUIRETLS with an unverified upstream certificate: 550 5.7.30", async () => {
    const up = await start(new Upstream(), { tls: certificate, extensions: { requireTls: true } });
    const { server } = await proxyTo(
      up.port,
      { connection: { tls: { rejectUnauthorized: false } } },
      proxyServe,
    );
    expect(await python(REQUIRETLS, [server.port, "1"])).toEqual([
      550,
      "5.7.30 REQUIRETLS support required: the upstream is not reached over verified TLS",
    ]);
  });

  it("implicit TLS to the upstream (connection.secure), REQUIRETLS included", async () => {
    const upstream = new Upstream();
    const up = await start(upstream, { smtps: certificate, extensions: { requireTls: true } });
    const { server } = await proxyTo(
      up.port,
      { connection: { secure: true, tls: clientTls } },
      proxyServe,
    );
    expect(await python(REQUIRETLS, [server.port, "1"])).toEqual([250, "2.1.0 OK", 250]);
    expect(upstream.messages[0]?.mailOptions).toEqual(["REQUIRETLS"]);
  });

  it("STARTTLS is used when offered: a certificate that does not verify is a 451 4.7.0", async () => {
    const up = await start(new Upstream(), { tls: certificate });
    const { server } = await proxyTo(up.port);
    const result = await smtplibSend(server.port, "a@example.com", ["good@example.com"], SOURCE);
    expect(result.error?.slice(0, 2)).toEqual(["SMTPSenderRefused", 451]);
    expect(result.error?.[2]).toMatch(/^4\.7\.0 Error: upstream TLS failed: /);
  });
});

describe("big messages", () => {
  it("20 MB streamed through with backpressure: intact, and the proxy holds no more than buffers", async () => {
    const MB = 1024 * 1024;
    let received = 0;
    let digest = "";
    let release = () => undefined as void;
    const resumed = new Promise<void>((resolve) => {
      release = resolve;
    });
    let stalled = false;
    // An upstream that hashes the body as it arrives, and stops reading for a while at 2 MB.
    const slow: Handler = {
      async handleDATAStream(_s: SMTP, _session: Session, _e: Envelope, body: MessageBody) {
        const hash = createHash("sha256");
        for await (const chunk of body) {
          hash.update(chunk);
          received += chunk.length;
          if (!stalled && received >= 2 * MB) {
            stalled = true;
            await resumed;
          }
        }
        digest = hash.digest("hex");
        return "250 2.0.0 hashed";
      },
    };
    const up = await start(slow, { dataSizeLimit: 0 });
    const { server } = await proxyTo(up.port, {}, { dataSizeLimit: 0 });
    const line = `${"0123456789abcdef".repeat(4)}\r\n`;
    const block = line.repeat(1024); // 66 KB
    const blocks = Math.ceil((20 * MB) / block.length);
    const expected = createHash("sha256").update("Subject: big\r\nX-Peer: 127.0.0.1\r\n\r\n");
    for (let i = 0; i < blocks; i++) expected.update(block);

    const client = await RawClient.connect(server.port);
    await client.startData("a@example.com", ["good@example.com"]);
    // Each write settles once the socket took it: the client goes as fast as the proxy reads.
    let written = 0;
    const writing = (async () => {
      await client.write("Subject: big\r\n\r\n");
      for (let i = 0; i < blocks; i++) {
        await client.write(block);
        written += block.length;
      }
      await client.write(".\r\n");
    })();
    await eventually(() => stalled, 20_000);
    // While the upstream does not read, the client soon cannot write either.
    let last = -1;
    await eventually(async () => {
      const now = written;
      await new Promise((resolve) => setTimeout(resolve, 300));
      const stable = now === last && now === written;
      last = now;
      return stable;
    }, 20_000);
    const inFlight = written - received;
    release();
    await writing;
    expect(await client.reply(30_000)).toBe("250 2.0.0 hashed");
    client.destroy();
    expect(digest).toBe(expected.digest("hex"));
    // Socket buffers on both sides of the proxy, not the message: a proxy that read ahead would
    // have taken the remaining 18 MB.
    expect(inFlight).toBeLessThan(14 * MB);
    console.log(`in flight while the upstream stalled: ${(inFlight / MB).toFixed(1)} MB`);
  });
});
