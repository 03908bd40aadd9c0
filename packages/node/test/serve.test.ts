import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import nodemailer from "nodemailer";
import { afterEach, describe, expect, test } from "vitest";
import {
  createServer,
  type Envelope,
  type Handler,
  handleSocket,
  type Session,
  SMTP,
  type SmtpServer,
  serve,
  type TlsInfo,
} from "../src/index.js";
import { delay, LineClient, makeCertificate, settle, waitFor } from "./helpers.js";

const certificate = makeCertificate();
const decoder = new TextDecoder();

interface Received {
  mailFrom: string | null;
  rcptTos: string[];
  content: string;
  ssl: TlsInfo | null;
  peer: Session["peer"];
}

/** aiosmtpd's Sink, keeping what it got. */
function sink(): Handler & { messages: Received[] } {
  const messages: Received[] = [];
  return {
    messages,
    handleDATA(_server: SMTP, session: Session, envelope: Envelope) {
      const content = envelope.content;
      messages.push({
        mailFrom: envelope.mailFrom,
        rcptTos: [...envelope.rcptTos],
        content:
          typeof content === "string" ? content : decoder.decode(content ?? new Uint8Array()),
        ssl: session.ssl,
        peer: session.peer,
      });
      return "250 OK";
    },
  };
}

const open: SmtpServer[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close({ timeout: 200 })));
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function start(
  handler: Handler,
  options: Parameters<typeof serve>[1] = {},
): Promise<SmtpServer> {
  const server = await serve(handler, { port: 0, hostname: "mx.test", ...options });
  open.push(server);
  return server;
}

async function greeted(server: SmtpServer): Promise<LineClient> {
  const client = await LineClient.connect(server.port);
  expect(await client.reply()).toMatch(/^220 mx\.test /);
  return client;
}

function refused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
  });
}

describe("serve()", () => {
  test("plain TCP: greeting and a whole dialog over node:net", async () => {
    const handler = sink();
    const server = await start(handler);
    expect(server.host).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
    expect(server.path).toBeUndefined();
    const client = await greeted(server);
    expect(server.connections).toBe(1);
    const ehlo = await client.command("EHLO client.test");
    expect(ehlo).toMatch(/^250-mx\.test\n/);
    expect(ehlo).toContain("SMTPUTF8"); // the Controller's default
    expect(ehlo).not.toContain("STARTTLS");
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250 /);
    expect(await client.command("RCPT TO:<b@example.com>")).toMatch(/^250 /);
    expect(await client.command("DATA")).toMatch(/^354 /);
    expect(await client.command("Subject: hi\r\n\r\nbody\r\n.")).toBe("250 2.0.0 OK");
    expect(await client.command("QUIT")).toMatch(/^221 /);
    await client.closed();
    expect(handler.messages).toHaveLength(1);
    expect(handler.messages[0]).toMatchObject({
      mailFrom: "a@example.com",
      rcptTos: ["b@example.com"],
      content: "Subject: hi\r\n\r\nbody\r\n",
      ssl: null,
      peer: { address: "127.0.0.1", family: "IPv4" },
    });
    await waitFor(() => server.connections === 0);
  });

  test("defaults: hostname is os.hostname(), enableSmtpUtf8 can be turned off", async () => {
    const server = await serve({}, { port: 0, enableSmtpUtf8: false });
    open.push(server);
    const client = await LineClient.connect(server.port);
    expect(await client.reply()).toMatch(new RegExp(`^220 ${hostname().replace(/\./g, "\\.")} `));
    expect(await client.command("EHLO c")).not.toContain("SMTPUTF8");
    client.destroy();
  });

  test("Nodemailer sends over plain SMTP", async () => {
    const handler = sink();
    const server = await start(handler);
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: server.port,
      secure: false,
      ignoreTLS: true,
    });
    const info = await transport.sendMail({
      from: "sender@example.com",
      to: "rcpt@example.com",
      subject: "plain",
      text: "Hello over plain SMTP",
    });
    expect(info.accepted).toEqual(["rcpt@example.com"]);
    expect(info.response).toMatch(/^250 /);
    expect(handler.messages[0]?.content).toContain("Hello over plain SMTP");
    expect(handler.messages[0]?.ssl).toBeNull();
  });

  test("Nodemailer sends over STARTTLS", async () => {
    const handler = sink();
    const server = await start(handler, { tls: certificate });
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: server.port,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false, servername: "localhost" },
    });
    const info = await transport.sendMail({
      from: "sender@example.com",
      to: ["one@example.com", "two@example.com"],
      subject: "starttls",
      text: "Hello over STARTTLS",
    });
    expect(info.accepted).toEqual(["one@example.com", "two@example.com"]);
    const message = handler.messages[0];
    expect(message?.content).toContain("Hello over STARTTLS");
    expect(message?.ssl?.implicit).toBe(false);
    expect(message?.ssl?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(message?.ssl?.servername).toBe("localhost");
  });

  test("Nodemailer sends over implicit TLS (smtps)", async () => {
    const handler = sink();
    const server = await start(handler, { smtps: certificate });
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: server.port,
      secure: true,
      tls: { rejectUnauthorized: false },
    });
    const info = await transport.sendMail({
      from: "sender@example.com",
      to: "rcpt@example.com",
      subject: "smtps",
      text: "Hello over SMTPS",
    });
    expect(info.accepted).toEqual(["rcpt@example.com"]);
    const message = handler.messages[0];
    expect(message?.content).toContain("Hello over SMTPS");
    expect(message?.ssl?.implicit).toBe(true);
    expect(message?.ssl?.cipher).toBeTruthy();
    expect(message?.peer?.address).toBe("127.0.0.1");
  });

  test("implicit TLS: garbage instead of a handshake is dropped; the 421 of maxConnections comes over TLS", async () => {
    const server = await start({}, { smtps: certificate, maxConnections: 1 });
    const garbage = await LineClient.connect(server.port);
    await garbage.write("EHLO plaintext\r\n");
    await garbage.closed();
    expect(garbage.pending).not.toMatch(/\d{3} /);

    const connectTls = (): Promise<LineClient> =>
      new Promise((resolve, reject) => {
        const socket = tls.connect({
          port: server.port,
          host: "127.0.0.1",
          rejectUnauthorized: false,
        });
        socket.once("error", reject);
        socket.once("secureConnect", () => resolve(new LineClient(socket)));
      });
    const first = await connectTls();
    expect(await first.reply()).toMatch(/^220 mx\.test /);
    const second = await connectTls();
    expect(await second.reply()).toBe("421 4.7.0 mx.test Error: too many connections");
    await second.closed();
    expect(await first.command("NOOP")).toMatch(/^250 /);
    first.destroy();
  });

  test("the idle timeout closes the connection with 421 4.4.2", async () => {
    const server = await start({}, { timeout: 0.2 });
    const client = await greeted(server);
    expect(await client.reply()).toMatch(/^421 4\.4\.2 mx\.test /);
    await client.closed();
    await waitFor(() => server.connections === 0);
  });

  test("STARTTLS with requestCert: the client certificate reaches session.ssl", async () => {
    const clientCert = makeCertificate("client.example");
    let ssl: TlsInfo | null = null;
    const server = await start(
      {
        handleNOOP(_server: SMTP, session: Session) {
          ssl = session.ssl;
          return "250 seen";
        },
      },
      { tls: { ...certificate, ca: clientCert.cert, requestCert: true } },
    );
    const client = await greeted(server);
    await client.command("EHLO c");
    expect(await client.command("STARTTLS")).toMatch(/^220 /);
    await client.upgrade({ key: clientCert.key, cert: clientCert.cert });
    expect(await client.command("NOOP")).toMatch(/^250 /);
    const info = ssl as TlsInfo | null;
    expect(info?.authorized).toBe(true);
    expect((info?.peerCertificate as { subject?: { CN?: string } } | null)?.subject?.CN).toBe(
      "client.example",
    );
    client.destroy();
  });

  test("Unix socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "smtpkit-unix-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "smtp.sock");
    const handler = sink();
    const server = await serve(handler, { path, hostname: "mx.test" });
    open.push(server);
    expect(server.path).toBe(path);
    expect(server.port).toBe(0);
    const client = await LineClient.connectPath(path);
    expect(await client.reply()).toMatch(/^220 mx\.test /);
    await client.command("HELO unix");
    await client.command("MAIL FROM:<a@example.com>");
    await client.command("RCPT TO:<b@example.com>");
    await client.command("DATA");
    expect(await client.command("over a unix socket\r\n.")).toBe("250 2.0.0 OK");
    expect(handler.messages[0]?.peer).toEqual({ address: "", port: 0, family: "unix" });
    expect(await client.command("QUIT")).toMatch(/^221 /);
  });

  test("maxConnections: the extra connection reads 421 and is closed", async () => {
    const server = await start({}, { maxConnections: 1 });
    const first = await greeted(server);
    const second = await LineClient.connect(server.port);
    expect(await second.reply()).toBe("421 4.7.0 mx.test Error: too many connections");
    await second.closed();
    expect(server.connections).toBe(1);
    // The first session is unaffected, and its slot frees up when it ends.
    expect(await first.command("NOOP")).toMatch(/^250 /);
    expect(await first.command("QUIT")).toMatch(/^221 /);
    await waitFor(() => server.connections === 0);
    const third = await greeted(server);
    third.destroy();
  });

  test("graceful close: a session mid-DATA completes and gets 250, an idle one gets 421, new connections are refused", async () => {
    const handler = sink();
    const server = await start(handler);
    const busy = await greeted(server);
    const idle = await greeted(server);
    await idle.command("EHLO idle");
    await busy.command("EHLO busy");
    await busy.command("MAIL FROM:<a@example.com>");
    await busy.command("RCPT TO:<b@example.com>");
    expect(await busy.command("DATA")).toMatch(/^354 /);
    await busy.write("Subject: draining\r\n\r\nfirst half\r\n");

    const closed = server.close();
    expect(await idle.reply()).toMatch(/^421 /);
    await idle.closed();
    expect(await refused(server.port)).toBe("ECONNREFUSED");

    await busy.write("second half\r\n.\r\n");
    expect(await busy.reply()).toBe("250 2.0.0 OK");
    expect(await busy.reply()).toMatch(/^421 /);
    await busy.closed();
    await closed;
    expect(server.connections).toBe(0);
    expect(server.listening).toBe(false);
    expect(handler.messages[0]?.content).toBe(
      "Subject: draining\r\n\r\nfirst half\r\nsecond half\r\n",
    );
  });

  test("close() timeout: a transaction that does not finish in time is aborted", async () => {
    const server = await start({}, { closeTimeout: 200 });
    const client = await greeted(server);
    await client.command("EHLO slow");
    await client.command("MAIL FROM:<a@example.com>");
    await client.command("RCPT TO:<b@example.com>");
    await client.command("DATA");
    await client.write("never finished\r\n");
    await server.close();
    expect(await client.reply()).toMatch(/^421 /);
    await client.closed();
    expect(server.connections).toBe(0);
  });

  test("close() gives up on a client that does not read: sockets are destroyed", async () => {
    const server = await start({});
    const client = await greeted(server);
    client.socket.pause();
    // Fill the reply path: a client that pipelines a lot and never reads.
    const flood = "NOOP\r\n".repeat(200_000);
    void client.write(flood).catch(() => undefined);
    await delay(200);
    await server.close({ timeout: 100 });
    expect(server.connections).toBe(0);
    client.destroy();
  });

  test("STARTTLS injection: a command pipelined behind STARTTLS is never answered", async () => {
    const server = await start({}, { tls: certificate });
    const client = await greeted(server);
    expect(await client.command("EHLO before")).toContain("STARTTLS");
    await client.write("STARTTLS\r\nNOOP\r\n");
    expect(await client.reply()).toMatch(/^220 /);
    expect(client.pending).toBe("");
    await client.upgrade();
    // The first reply under TLS must be this EHLO's, not a 250 for the injected NOOP.
    const ehlo = await client.command("EHLO after");
    expect(ehlo).toMatch(/^250-mx\.test\n/);
    expect(ehlo).not.toContain("STARTTLS");
    expect(client.pending).toBe("");
    expect(await client.command("QUIT")).toMatch(/^221 /);
  });

  test("STARTTLS injection, the bytes arriving separately before the handshake: still never answered", async () => {
    const server = await start({}, { tls: certificate });
    const client = await greeted(server);
    await client.command("EHLO before");
    expect(await client.command("STARTTLS")).toMatch(/^220 /);
    // Plaintext where the ClientHello should be: taken as (bad) TLS, never as commands.
    await client.write("NOOP\r\nMAIL FROM:<evil@example.com>\r\n");
    await client.closed();
    expect(client.pending).not.toMatch(/\d{3}[ -]/);
    await waitFor(() => server.connections === 0);
  });

  test("a client that resets mid-DATA does not crash the server, which keeps serving", async () => {
    let signalled = false;
    const handler: Handler = {
      async handleDATAStream(_server, _session, _envelope, body, signal) {
        signal.addEventListener("abort", () => {
          signalled = true;
        });
        const reader = body.getReader();
        for (;;) {
          const { done } = await reader.read();
          if (done) return "250 OK";
        }
      },
    };
    const server = await start(handler);
    const client = await greeted(server);
    await client.command("EHLO reset");
    await client.command("MAIL FROM:<a@example.com>");
    await client.command("RCPT TO:<b@example.com>");
    await client.command("DATA");
    await client.write("partial body\r\n".repeat(1000));
    client.socket.resetAndDestroy();
    await waitFor(() => signalled, 5000, "the abort signal");
    await waitFor(() => server.connections === 0);

    const next = await greeted(server);
    await next.command("EHLO again");
    await next.command("MAIL FROM:<a@example.com>");
    await next.command("RCPT TO:<b@example.com>");
    await next.command("DATA");
    expect(await next.command("fine\r\n.")).toBe("250 2.0.0 OK");
    next.destroy();
  });

  test("backpressure: a slow handleDATAStream keeps the bytes read from the socket bounded (20 MB body)", async () => {
    let consumed = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handler: Handler = {
      async handleDATAStream(_server, _session, _envelope, body) {
        const reader = body.getReader();
        const first = await reader.read();
        consumed += first.value?.length ?? 0;
        await gate; // a slow consumer
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return `250 OK ${consumed}`;
          consumed += value.length;
        }
      },
    };
    const server = await start(handler);
    const sockets: net.Socket[] = [];
    server.server.on("connection", (socket: net.Socket) => sockets.push(socket));
    const client = await greeted(server);
    await client.command("EHLO big");
    await client.command("MAIL FROM:<a@example.com>");
    await client.command("RCPT TO:<b@example.com>");
    expect(await client.command("DATA")).toMatch(/^354 /);
    const line = `${"x".repeat(78)}\r\n`;
    const body = Buffer.from(line.repeat(Math.ceil((20 * 1024 * 1024) / line.length)));
    const sent = client.write(body);
    const socket = sockets[0] as net.Socket;
    const stalled = await settle(() => socket.bytesRead);
    // While the handler is stuck, the server has read only a bounded prefix of the 20 MB.
    expect(stalled).toBeLessThan(4 * 1024 * 1024);
    expect(stalled - consumed).toBeLessThan(2 * 1024 * 1024);
    expect(client.socket.writableLength).toBeGreaterThan(0);
    release();
    await sent;
    expect(await client.command(".")).toBe(`250 2.0.0 OK ${body.length}`);
    client.destroy();
  });

  test("an SMTP subclass (smtpClass) adds a command", async () => {
    class PingSMTP extends SMTP {
      async smtpPING(argument: string | null): Promise<string> {
        return `250 PONG ${argument ?? ""}`.trimEnd();
      }
    }
    const server = await start({}, { smtpClass: PingSMTP });
    const client = await greeted(server);
    expect(await client.command("PING me")).toBe("250 2.0.0 PONG me");
    client.destroy();
  });

  test("bad SMTP options throw at creation, not at the first connection", async () => {
    await expect(serve({}, { port: 0, proxyProtocolTimeout: -1 })).rejects.toThrow(RangeError);
    expect(() => createServer({}, { port: 25, path: "/tmp/x.sock" })).toThrow(TypeError);
    expect(() => createServer({}, { maxConnections: -1 })).toThrow(RangeError);
  });

  test("createServer() does not listen until listen(); a taken port rejects", async () => {
    const server = createServer({}, { port: 0, hostname: "mx.test" });
    expect(server.listening).toBe(false);
    expect(server.port).toBe(0);
    await server.listen();
    open.push(server);
    expect(server.port).toBeGreaterThan(0);
    const clash = createServer({}, { port: server.port });
    await expect(clash.listen()).rejects.toMatchObject({ code: "EADDRINUSE" });
  });

  test("await using: Symbol.asyncDispose closes the server", async () => {
    let port = 0;
    {
      const server = await serve({}, { port: 0 });
      port = server.port;
      await server[Symbol.asyncDispose]();
      expect(server.listening).toBe(false);
    }
    expect(await refused(port)).toBe("ECONNREFUSED");
  });

  test("clients vanishing at every step never crash the server", async () => {
    const server = await start({}, { tls: certificate });
    for (let i = 0; i < 20; i++) {
      const client = await LineClient.connect(server.port);
      if (i % 4 === 1) await client.reply();
      if (i % 4 === 2) await client.write("EHLO x\r\nSTARTTLS\r\n");
      if (i % 4 === 3) await client.write(randomBytes(3000));
      if (i % 2 === 0) client.socket.resetAndDestroy();
      else client.socket.destroy();
    }
    await waitFor(() => server.connections === 0);
    const client = await greeted(server);
    expect(await client.command("NOOP")).toMatch(/^250 /);
    client.destroy();
  });
});

describe("handleSocket()", () => {
  test("serves sockets of a user's own net.Server, and shuts down on its signal", async () => {
    const handler = sink();
    const controller = new AbortController();
    const done: Promise<void>[] = [];
    const own = net.createServer((socket) => {
      done.push(handleSocket(socket, handler, { hostname: "own.test", signal: controller.signal }));
    });
    await new Promise<void>((resolve) => own.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => own.close());
    const { port } = own.address() as net.AddressInfo;
    const client = await LineClient.connect(port);
    expect(await client.reply()).toMatch(/^220 own\.test /);
    await client.command("HELO me");
    await client.command("MAIL FROM:<a@example.com>");
    await client.command("RCPT TO:<b@example.com>");
    await client.command("DATA");
    expect(await client.command("mine\r\n.")).toBe("250 2.0.0 OK");
    controller.abort();
    expect(await client.reply()).toMatch(/^421 /);
    await client.closed();
    await Promise.all(done);
    expect(handler.messages).toHaveLength(1);
  });

  test("STARTTLS with the tls option", async () => {
    const handler = sink();
    const own = net.createServer((socket) => {
      void handleSocket(socket, handler, { hostname: "own.test", tls: certificate });
    });
    await new Promise<void>((resolve) => own.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => own.close());
    const { port } = own.address() as net.AddressInfo;
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
    });
    await transport.sendMail({ from: "a@example.com", to: "b@example.com", text: "own tls" });
    expect(handler.messages[0]?.ssl?.implicit).toBe(false);
  });
});
