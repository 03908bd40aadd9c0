import { X509Certificate } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";
import { afterEach, describe, expect, test } from "vitest";
import { NodeTransport, type NodeTransportOptions } from "../src/index.js";
import { LineClient, makeCertificate, settle, waitFor } from "./helpers.js";

const certificate = makeCertificate();
const secureContext = tls.createSecureContext(certificate);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

const servers: net.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A raw server whose sessions are a fake `run()` over a NodeTransport. */
async function fakeServer(
  run: (transport: NodeTransport) => Promise<void>,
  options: NodeTransportOptions = {},
): Promise<{ port: number; transports: NodeTransport[]; sockets: net.Socket[] }> {
  const transports: NodeTransport[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    const transport = new NodeTransport(socket, options);
    transports.push(transport);
    void run(transport).finally(() => transport.close());
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as net.AddressInfo;
  return { port: address.port, transports, sockets };
}

/** Greets, then answers each line with "250 <line>" until QUIT or end of input. */
async function echo(transport: NodeTransport): Promise<void> {
  await transport.write(encoder.encode("220 fake ready\r\n"));
  let buffer = "";
  for (;;) {
    const chunk = await transport.read();
    if (chunk === null) return;
    buffer += decoder.decode(chunk);
    let index = buffer.indexOf("\r\n");
    while (index >= 0) {
      const line = buffer.slice(0, index);
      buffer = buffer.slice(index + 2);
      if (line === "QUIT") {
        await transport.write(encoder.encode("221 bye\r\n"));
        return;
      }
      if (line === "STARTTLS") {
        await transport.write(encoder.encode("220 go ahead\r\n"));
        buffer = ""; // what the engine does with its own buffer (RFC 3207 §6)
        await transport.startTls();
      } else {
        await transport.write(encoder.encode(`250 ${line}\r\n`));
      }
      index = buffer.indexOf("\r\n");
    }
  }
}

describe("NodeTransport", () => {
  test("reads and writes over TCP, reports the addresses, closes on QUIT", async () => {
    const { port, transports } = await fakeServer(echo);
    const client = await LineClient.connect(port);
    expect(await client.reply()).toBe("220 fake ready");
    expect(await client.command("HELLO there")).toBe("250 HELLO there");
    const transport = transports[0];
    expect(transport?.peer).toEqual({
      address: "127.0.0.1",
      port: client.socket.localPort,
      family: "IPv4",
    });
    expect(transport?.local).toEqual({ address: "127.0.0.1", port, family: "IPv4" });
    expect(transport?.tls).toBeNull();
    expect(transport?.canStartTls).toBe(false);
    expect(await client.command("QUIT")).toBe("221 bye");
    await client.closed();
    await transport?.closed;
  });

  test("read() resolves null at end of input, and a pending read() resolves null on close()", async () => {
    const results: (string | null)[] = [];
    const { port } = await fakeServer(async (transport) => {
      for (;;) {
        const chunk = await transport.read();
        results.push(chunk === null ? null : decoder.decode(chunk));
        if (chunk === null) return;
      }
    });
    const client = await LineClient.connect(port);
    await client.write("abc");
    client.socket.end();
    await waitFor(() => results.includes(null), 5000, "end of input");
    expect(results.join("")).toBe("abc");

    const pending: Promise<Uint8Array | null>[] = [];
    const second = await fakeServer(async (transport) => {
      pending.push(transport.read());
      await new Promise(() => undefined); // never returns by itself
    });
    const other = await LineClient.connect(second.port);
    await waitFor(() => pending.length === 1);
    void second.transports[0]?.close();
    expect(await pending[0]).toBeNull();
    await other.closed();
  });

  test("a second concurrent read() is refused", async () => {
    let error: unknown;
    const { port } = await fakeServer(async (transport) => {
      const first = transport.read();
      error = await transport.read().catch((e: unknown) => e);
      await first;
    });
    const client = await LineClient.connect(port);
    await waitFor(() => error !== undefined);
    expect(String(error)).toMatch(/already pending/);
    client.destroy();
  });

  test("backpressure: nobody reading means the socket is not read (bytesRead stays bounded)", async () => {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let total = 0;
    const { port, sockets } = await fakeServer(async (transport) => {
      const first = await transport.read();
      total += first?.length ?? 0;
      await released; // a slow consumer: does not ask for more
      for (;;) {
        const chunk = await transport.read();
        if (chunk === null) return;
        total += chunk.length;
      }
    });
    const client = await LineClient.connect(port);
    const size = 20 * 1024 * 1024;
    const sent = client.write(new Uint8Array(size).fill(0x61));
    await waitFor(() => sockets.length === 1);
    const socket = sockets[0] as net.Socket;
    const stalled = await settle(() => socket.bytesRead);
    // Node's readable buffer (16 KiB) is all that is read ahead of the consumer.
    expect(stalled).toBeLessThan(1024 * 1024);
    expect(client.socket.writableLength).toBeGreaterThan(0);
    release();
    await sent;
    client.socket.end();
    await waitFor(() => total === size, 20_000, "all bytes");
    expect(socket.bytesRead).toBe(size);
  });

  test("write() resolves only once the bytes are flushed (a client that does not read holds it)", async () => {
    const writes: Promise<void>[] = [];
    const { port } = await fakeServer(async (transport) => {
      writes.push(transport.write(new Uint8Array(32 * 1024 * 1024)));
      await writes[0];
    });
    const client = await LineClient.connect(port);
    client.socket.pause();
    await waitFor(() => writes.length === 1);
    let flushed = false;
    void writes[0]?.then(() => {
      flushed = true;
    });
    await settle(() => client.socket.bytesRead, 200);
    expect(flushed).toBe(false);
    client.socket.resume();
    await writes[0];
    expect(flushed).toBe(true);
    client.destroy();
  });

  test("write() rejects after the client reset the connection; no uncaught error", async () => {
    let transport: NodeTransport | undefined;
    const { port } = await fakeServer(async (t) => {
      transport = t;
      await t.read();
    });
    const client = await LineClient.connect(port);
    await waitFor(() => transport !== undefined);
    client.socket.resetAndDestroy();
    await transport?.closed;
    await expect(transport?.write(encoder.encode("250 late\r\n"))).rejects.toThrow();
  });

  test("STARTTLS: upgrades, drops plaintext sent before the handshake, fills in the TLS info", async () => {
    const { port, transports } = await fakeServer(echo, { startTls: { secureContext } });
    const client = await LineClient.connect(port);
    await client.reply();
    expect(transports[0]?.canStartTls).toBe(true);
    // The injection: a command pipelined behind STARTTLS in the same segment.
    await client.write("STARTTLS\r\nNOOP injected\r\n");
    expect(await client.reply()).toBe("220 go ahead");
    const secure = await client.upgrade();
    expect(await client.command("AFTER")).toBe("250 AFTER");
    expect(client.pending).toBe("");
    const transport = transports[0] as NodeTransport;
    const info = transport.tls;
    expect(info).not.toBeNull();
    expect(info?.implicit).toBe(false);
    expect(info?.protocol).toBe(secure.getProtocol());
    expect(info?.cipher).toBe(secure.getCipher().name);
    expect(info?.servername).toBe("localhost");
    expect(info?.alpnProtocol).toBeNull();
    expect(info?.peerCertificate).toBeNull();
    expect(info?.authorized).toBe(false);
    const der = new X509Certificate(certificate.cert).raw;
    expect(Buffer.from(info?.serverCertificate ?? [])).toEqual(der);
    const label = "EXPORTER-Channel-Binding";
    const server = info?.exportKeyingMaterial?.(32, label);
    expect(server).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(server ?? [])).toEqual(
      secure.exportKeyingMaterial(32, label, Buffer.alloc(0)),
    );
    expect(transport.peer?.family).toBe("IPv4");
    expect(await client.command("QUIT")).toBe("221 bye");
    await client.closed();
  });

  test("STARTTLS: plaintext still buffered in Node when the handshake starts is discarded", async () => {
    let transport: NodeTransport | undefined;
    let upgraded: Promise<unknown> | undefined;
    const { port } = await fakeServer(
      async (t) => {
        transport = t;
        await t.write(encoder.encode("220 go ahead\r\n"));
        await new Promise((resolve) => setTimeout(resolve, 100)); // let the bytes pile up unread
        upgraded = t.startTls();
        await upgraded;
        const line = await t.read();
        await t.write(encoder.encode(`250 ${decoder.decode(line ?? new Uint8Array()).trim()}\r\n`));
      },
      { startTls: { secureContext } },
    );
    const client = await LineClient.connect(port);
    await client.write("NOOP 1\r\nNOOP 2\r\n");
    expect(await client.reply()).toBe("220 go ahead");
    await waitFor(() => upgraded !== undefined);
    await client.upgrade();
    await upgraded;
    expect(transport?.discardedBytes).toBe(16);
    expect(await client.command("SECRET")).toBe("250 SECRET");
    client.destroy();
  });

  test("STARTTLS: a failed handshake rejects startTls() and ends the input", async () => {
    let result: unknown;
    let after: unknown = "unset";
    const { port } = await fakeServer(
      async (t) => {
        await t.write(encoder.encode("220 go ahead\r\n"));
        result = await t.startTls().catch((error: unknown) => error);
        after = await t.read();
      },
      { startTls: { secureContext } },
    );
    const client = await LineClient.connect(port);
    expect(await client.reply()).toBe("220 go ahead");
    await client.write("this is not a TLS client hello\r\n".repeat(4));
    await waitFor(() => after !== "unset");
    expect(result).toBeInstanceOf(Error);
    expect(after).toBeNull();
    await client.closed();
  });

  test("STARTTLS: a client that never starts the handshake times out", async () => {
    let result: unknown;
    const { port } = await fakeServer(
      async (t) => {
        await t.write(encoder.encode("220 go ahead\r\n"));
        result = await t.startTls().catch((error: unknown) => error);
      },
      { startTls: { secureContext, handshakeTimeout: 200 } },
    );
    const client = await LineClient.connect(port);
    expect(await client.reply()).toBe("220 go ahead");
    await client.closed();
    expect(String(result)).toMatch(/timed out/);
  });

  test("STARTTLS: a client that hangs up during the handshake rejects startTls()", async () => {
    let result: unknown;
    let transport: NodeTransport | undefined;
    const { port } = await fakeServer(
      async (t) => {
        transport = t;
        await t.write(encoder.encode("220 go ahead\r\n"));
        result = await t.startTls().catch((error: unknown) => error);
      },
      { startTls: { secureContext } },
    );
    const client = await LineClient.connect(port);
    expect(await client.reply()).toBe("220 go ahead");
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.socket.resetAndDestroy();
    await waitFor(() => result !== undefined);
    expect(result).toBeInstanceOf(Error);
    await transport?.closed;
  });

  test("STARTTLS: a client certificate is reported (authorized only when it verifies)", async () => {
    const clientCert = makeCertificate("client.example");
    for (const trusted of [false, true]) {
      const context = tls.createSecureContext({
        ...certificate,
        ...(trusted ? { ca: clientCert.cert } : {}),
      });
      const { port, transports } = await fakeServer(echo, {
        startTls: { secureContext: context, requestCert: true, rejectUnauthorized: false },
      });
      const client = await LineClient.connect(port);
      await client.reply();
      expect(await client.command("STARTTLS")).toBe("220 go ahead");
      await client.upgrade({ key: clientCert.key, cert: clientCert.cert });
      expect(await client.command("X")).toBe("250 X");
      const info = transports[0]?.tls;
      const peer = info?.peerCertificate as tls.PeerCertificate | null;
      expect(peer?.subject.CN).toBe("client.example");
      expect(info?.authorized).toBe(trusted);
      client.destroy();
    }
  });

  test("STARTTLS: rejectUnauthorized refuses a client without a valid certificate", async () => {
    let result: unknown;
    const { port } = await fakeServer(
      async (t) => {
        await t.write(encoder.encode("220 go ahead\r\n"));
        result = await t.startTls().catch((error: unknown) => error);
      },
      { startTls: { secureContext, requestCert: true } },
    );
    const client = await LineClient.connect(port);
    await client.reply();
    const bad = makeCertificate("intruder");
    await client.upgrade({ key: bad.key, cert: bad.cert }).catch(() => undefined);
    await waitFor(() => result !== undefined);
    expect(result).toBeInstanceOf(Error);
    client.destroy();
  });

  test("implicit TLS: the TLS info is there from the start", async () => {
    const transports: NodeTransport[] = [];
    const server = tls.createServer({ ...certificate, ALPNProtocols: ["smtp"] }, (socket) => {
      const transport = new NodeTransport(socket);
      transports.push(transport);
      void echo(transport).finally(() => transport.close());
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    const socket = tls.connect({
      port,
      host: "127.0.0.1",
      servername: "localhost",
      rejectUnauthorized: false,
      ALPNProtocols: ["smtp"],
    });
    const client = new LineClient(socket);
    expect(await client.reply()).toBe("220 fake ready");
    const info = transports[0]?.tls;
    expect(info?.implicit).toBe(true);
    expect(info?.servername).toBe("localhost");
    expect(info?.alpnProtocol).toBe("smtp");
    expect(info?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(transports[0]?.canStartTls).toBe(false);
    expect(transports[0]?.peer?.address).toBe("127.0.0.1");
    expect(await client.command("QUIT")).toBe("221 bye");
    await client.closed();
  });
});
