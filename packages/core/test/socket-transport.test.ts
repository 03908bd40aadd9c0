// SocketTransport over an in-memory RawSocket, for what real sockets cannot pin down: the exact
// order of queued writes around `drain`, when pause()/resume() happen, the handover to TLS
// (plaintext handed over during startTls()), and timers. The behaviour over real sockets is
// proven by the compliance suite on Node, Deno and Bun.
import { describe, expect, test, vi } from "vitest";
import {
  peerAddress,
  type RawListener,
  type RawSocket,
  type RawSocketEvents,
  SmtpListener,
  SocketTransport,
  type TlsInfo,
} from "../src/server/index.js";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array | null): string | null =>
  data === null ? null : new TextDecoder().decode(data);
const TLS: TlsInfo = {
  protocol: "TLSv1.3",
  cipher: "TLS_AES_128_GCM_SHA256",
  servername: null,
  alpnProtocol: null,
  implicit: false,
  peerCertificate: null,
  authorized: false,
};

/** A RawSocket the test drives: `events` is what the transport listens with. */
class FakeSocket implements RawSocket {
  readonly peer = peerAddress("192.0.2.1", 2525, "IPv4");
  readonly local = peerAddress("192.0.2.2", 25);
  events!: RawSocketEvents;
  readonly log: string[] = [];
  /** write() returns this. */
  accepting = true;
  written = "";
  /** Set by startTls(): the TLS layer and how to finish its handshake. */
  next: FakeSocket | null = null;
  finish: (info: TlsInfo) => void = () => undefined;
  /** Plaintext the runtime still holds, handed over during startTls(). */
  leftover: string | null = null;
  readonly startTls: RawSocket["startTls"];

  constructor(tls = true) {
    this.startTls = tls
      ? () => {
          this.log.push("startTls");
          if (this.leftover !== null) this.events.data(bytes(this.leftover));
          this.next = new FakeSocket(false);
          const handshake = new Promise<TlsInfo>((resolve) => {
            this.finish = resolve;
          });
          return { socket: this.next, handshake };
        }
      : undefined;
  }
  listen(events: RawSocketEvents): void {
    this.events = events;
  }
  pause(): void {
    this.log.push("pause");
  }
  resume(): void {
    this.log.push("resume");
  }
  write(data: Uint8Array): boolean {
    this.written += text(data);
    return this.accepting;
  }
  end(): void {
    this.log.push("end");
  }
  destroy(): void {
    this.log.push("destroy");
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe("SocketTransport", () => {
  test("addresses come from the raw socket; peerAddress guesses a missing family", () => {
    const transport = new SocketTransport(new FakeSocket());
    expect(transport.peer).toEqual({ address: "192.0.2.1", port: 2525, family: "IPv4" });
    expect(transport.local).toEqual({ address: "192.0.2.2", port: 25, family: "IPv4" });
    expect(transport.canStartTls).toBe(true);
    expect(new SocketTransport(new FakeSocket(false)).canStartTls).toBe(false);
    expect(new SocketTransport(new FakeSocket(), { tls: TLS }).canStartTls).toBe(false);
    expect(peerAddress("::1", 25)).toEqual({ address: "::1", port: 25, family: "IPv6" });
    expect(peerAddress("/run/smtp.sock", 0, "unix")?.family).toBe("unix");
    expect(peerAddress(undefined)).toBeNull();
  });

  test("chunks received while nobody reads are buffered; past 64 KiB the socket is paused", async () => {
    const raw = new FakeSocket();
    const transport = new SocketTransport(raw);
    const chunk = new Uint8Array(16 * 1024);
    for (let i = 0; i < 3; i++) raw.events.data(chunk);
    expect(raw.log).toEqual([]);
    raw.events.data(chunk);
    expect(raw.log).toEqual(["pause"]);
    expect(transport.bufferedBytes).toBe(64 * 1024);
    await transport.read();
    expect(raw.log).toEqual(["pause", "resume"]);
    // After FIN, what is buffered is still read, then null.
    raw.events.end();
    for (let i = 0; i < 3; i++) expect((await transport.read())?.length).toBe(16 * 1024);
    expect(await transport.read()).toBeNull();
  });

  test("writes past a full socket wait for drain, in order, and reject when the socket closes", async () => {
    const raw = new FakeSocket();
    const transport = new SocketTransport(raw);
    await transport.write(bytes("a"));
    raw.accepting = false;
    const settled: string[] = [];
    const b = transport.write(bytes("b")).then(() => settled.push("b"));
    const c = transport.write(bytes("c")).then(() => settled.push("c"));
    await tick();
    expect(raw.written).toBe("ab");
    expect(settled).toEqual([]);
    raw.accepting = true;
    raw.events.drain();
    await Promise.all([b, c]);
    expect(raw.written).toBe("abc");
    expect(settled).toEqual(["b", "c"]);

    raw.accepting = false;
    const d = transport.write(bytes("d")); // taken, waits for drain
    const e = transport.write(bytes("e")); // queued behind it
    raw.events.error(new Error("reset"));
    raw.events.close();
    await expect(d).rejects.toThrow("reset");
    await expect(e).rejects.toThrow("reset");
    expect(raw.written).toBe("abcd");
    await transport.closed;
    await expect(transport.write(bytes("f"))).rejects.toThrow();
  }, 1_000);

  test("close() flushes before FIN, and destroys the socket when the client never hangs up", async () => {
    vi.useFakeTimers();
    try {
      const raw = new FakeSocket();
      const transport = new SocketTransport(raw, { lingerTimeout: 100 });
      raw.accepting = false;
      void transport.write(bytes("221 bye\r\n"));
      const pending = transport.read();
      const closing = transport.close();
      expect(await pending).toBeNull();
      await vi.advanceTimersByTimeAsync(10);
      expect(raw.log).toEqual([]); // the reply is not out yet
      raw.events.drain();
      await vi.advanceTimersByTimeAsync(10);
      expect(raw.log).toEqual(["end"]);
      raw.events.data(bytes("ignored")); // input after close() is dropped
      await vi.advanceTimersByTimeAsync(100);
      expect(raw.log).toEqual(["end", "destroy"]);
      await closing;
      expect(transport.bufferedBytes).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  test("startTls(): buffered plaintext, and plaintext handed over during the upgrade, is discarded", async () => {
    const raw = new FakeSocket();
    const transport = new SocketTransport(raw);
    raw.events.data(bytes("STARTTLS\r\n"));
    expect(text(await transport.read())).toBe("STARTTLS\r\n");
    raw.events.data(bytes("NOOP 1\r\n"));
    raw.leftover = "NOOP 22\r\n";
    const upgraded = transport.startTls();
    await tick();
    expect(raw.log).toEqual(["startTls"]);
    const secure = raw.next as FakeSocket;
    // The plaintext socket may still report bytes while the handshake runs: dropped too.
    raw.events.data(bytes("x"));
    const reading = transport.read(); // waits for the handshake
    secure.events.data(bytes("EHLO after\r\n"));
    raw.finish(TLS);
    expect(await upgraded).toBe(TLS);
    expect(transport.tls).toBe(TLS);
    expect(transport.discardedBytes).toBe(8 + 9 + 1);
    expect(text(await reading)).toBe("EHLO after\r\n");
    await transport.write(bytes("250 ok\r\n"));
    expect(secure.written).toBe("250 ok\r\n");
    expect(raw.written).toBe("");
    await expect(transport.startTls()).rejects.toThrow(/already encrypted/);
  });

  test("startTls(): the handshake times out, or fails when the client leaves; the socket is destroyed", async () => {
    const slow = new FakeSocket();
    const timingOut = new SocketTransport(slow, { handshakeTimeout: 20 });
    const reading = timingOut.read();
    await expect(timingOut.startTls()).rejects.toThrow(/timed out/);
    expect(slow.next?.log).toEqual(["destroy"]);
    expect(await reading).toBeNull();
    expect(String(timingOut.error)).toMatch(/timed out/);
    await timingOut.closed;

    const leaving = new FakeSocket();
    const left = new SocketTransport(leaving);
    const upgrade = left.startTls();
    await tick();
    leaving.next?.events.end();
    await expect(upgrade).rejects.toThrow(/closed during the TLS handshake/);
    await left.closed;
  });
});

class FakeListener extends SmtpListener<{ handshakeTimeout?: number }> {
  accepted: FakeSocket[] = [];
  stopped = false;
  protected bind(): Promise<RawListener> {
    return Promise.resolve({
      address: { host: "127.0.0.1", port: 2525 },
      close: async () => {
        this.stopped = true;
      },
    });
  }
  connect(handshake?: Promise<TlsInfo>): FakeSocket {
    const socket = new FakeSocket(false);
    this.accepted.push(socket);
    this.accept(socket, handshake);
    return socket;
  }
}

describe("SmtpListener", () => {
  test("an SMTPS handshake that never finishes is destroyed after smtps.handshakeTimeout", async () => {
    const server = new FakeListener({}, { smtps: { handshakeTimeout: 20 } }, () => "mx.test");
    await server.listen();
    expect([server.host, server.port, server.listening]).toEqual(["127.0.0.1", 2525, true]);
    const socket = server.connect(new Promise(() => undefined));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(socket.log).toEqual(["destroy"]);
    expect(server.connections).toBe(0);
    await server.close();
    expect(server.stopped).toBe(true);
  });

  test("close() destroys connections still in their SMTPS handshake and refuses new ones", async () => {
    const server = new FakeListener({}, { smtps: {} }, () => "mx.test");
    await server.listen();
    const socket = server.connect(new Promise(() => undefined));
    await server.close();
    expect(socket.log).toEqual(["destroy"]);
    expect(server.connect().log).toEqual(["destroy"]);
    await expect(server.listen()).rejects.toThrow(/closed/);
    expect(() => new FakeListener({}, { port: 25, path: "/tmp/x" }, () => "")).toThrow(TypeError);
  });
});
