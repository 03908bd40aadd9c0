/**
 * A small SMTP client for the Proxy's upstream, with a command per call so a relay can answer its
 * own client step by step: connect, greeting, EHLO (HELO when EHLO is refused), STARTTLS when
 * offered, AUTH PLAIN/LOGIN when configured, then commands one at a time or pipelined, and a body
 * written with backpressure. Every wait has a timeout; every reply goes through `ReplyReader`'s
 * limits; any failure closes the connection and rejects every waiting command with an
 * `UpstreamError`.
 */
import { once } from "node:events";
import * as net from "node:net";
import { hostname as osHostname } from "node:os";
import * as tls from "node:tls";
import type { Reply } from "@smtpkit/core";
import { ReplyReader, type ReplyReaderLimits, UpstreamProtocolError } from "./upstream-reply.js";

export interface UpstreamAuth {
  readonly user: string;
  readonly pass: string;
}

export interface UpstreamClientOptions {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (SMTPS) from the first byte. Default false. */
  readonly secure?: boolean | undefined;
  /** The EHLO name. Default the machine's host name. */
  readonly name?: string | undefined;
  /** `tls.connect` options for STARTTLS or implicit TLS (`ca`, `rejectUnauthorized`, `servername`...). */
  readonly tls?: tls.ConnectionOptions | undefined;
  /** Never STARTTLS, even when offered. */
  readonly ignoreTLS?: boolean | undefined;
  /** Fail (`ETLS`) when the upstream does not offer STARTTLS. */
  readonly requireTLS?: boolean | undefined;
  readonly auth?: UpstreamAuth | undefined;
  /** The upstream speaks LMTP (RFC 2033): LHLO, and one reply per accepted recipient after a body. */
  readonly lmtp?: boolean | undefined;
  /** Milliseconds for the TCP connection and the greeting. Default 30 000. */
  readonly connectionTimeout?: number | undefined;
  /** Milliseconds for each reply to a command. Default 300 000 (RFC 5321 §4.5.3.2 asks for 5 minutes). */
  readonly commandTimeout?: number | undefined;
  /** Milliseconds for the reply to the end of a body. Default 600 000 (RFC 5321: 10 minutes). */
  readonly dataTimeout?: number | undefined;
  readonly limits?: ReplyReaderLimits | undefined;
}

/** Why the upstream cannot be used: a socket error code, `ETIMEDOUT`, `EPROTOCOL`, `ETLS`, `EAUTH`, `EGREETING`. */
export class UpstreamError extends Error {
  readonly code: string;
  /** The upstream's reply, when it sent one that ended the connection (a 421 greeting, a refused AUTH). */
  readonly reply: Reply | undefined;
  constructor(code: string, message: string, reply?: Reply) {
    super(message);
    this.code = code;
    this.reply = reply;
  }
}

/** At most this many replies may arrive that nothing asked for (a 421 while idle) before giving up. */
const MAX_UNSOLICITED = 4;
const ENCODER = new TextEncoder();

interface Waiter {
  resolve(reply: Reply): void;
  reject(error: UpstreamError): void;
  timer: ReturnType<typeof setTimeout> | null;
}

export class UpstreamClient {
  readonly options: UpstreamClientOptions;
  /** EHLO keywords (upper case) and their parameters. */
  extensions = new Map<string, string>();
  #socket: net.Socket;
  #reader: ReplyReader;
  #replies: Reply[] = [];
  #waiters: Waiter[] = [];
  #error: UpstreamError | null = null;
  /** Writers waiting for `drain`, told when the connection fails instead. */
  readonly #onFailure = new Set<(error: UpstreamError) => void>();
  #tls = false;
  #authorized = false;
  readonly #onData = (data: Buffer) => this.#received(data);
  readonly #onError = (error: NodeJS.ErrnoException) =>
    this.#fail(new UpstreamError(error.code ?? "ECONNRESET", error.message));
  readonly #onClose = () =>
    this.#fail(new UpstreamError("ECONNRESET", "upstream closed the connection"));

  private constructor(options: UpstreamClientOptions, socket: net.Socket) {
    this.options = options;
    this.#reader = new ReplyReader(options.limits);
    this.#socket = socket;
    this.#attach(socket);
  }

  /**
   * Connects and gets the session ready for MAIL: greeting, EHLO, STARTTLS (when offered, unless
   * `ignoreTLS`), AUTH (when configured and offered). Rejects with an `UpstreamError`; the signal
   * aborts it (`EABORT`).
   */
  static async open(options: UpstreamClientOptions, signal?: AbortSignal): Promise<UpstreamClient> {
    const timeout = options.connectionTimeout ?? 30_000;
    const socket = await connectSocket(options, timeout, signal);
    const client = new UpstreamClient(options, socket);
    if (options.secure) client.#secured(socket as tls.TLSSocket);
    const onAbort = () => client.destroy(new UpstreamError("EABORT", "aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const greeting = await client.read(timeout);
      if (greeting.code !== 220) {
        throw new UpstreamError("EGREETING", `upstream greeting: ${greeting.code}`, greeting);
      }
      await client.#hello();
      if (!client.#tls && !options.ignoreTLS && client.extensions.has("STARTTLS")) {
        await client.#startTls(timeout);
        await client.#hello();
      } else if (!client.#tls && options.requireTLS) {
        throw new UpstreamError("ETLS", "upstream does not offer STARTTLS");
      }
      if (options.auth && client.extensions.has("AUTH")) await client.#authenticate(options.auth);
      return client;
    } catch (error) {
      const failure = asUpstreamError(error);
      client.destroy(failure);
      throw failure;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Under TLS (STARTTLS done, or implicit). */
  get tls(): boolean {
    return this.#tls;
  }

  /** Under TLS with the upstream's certificate verified. */
  get authorized(): boolean {
    return this.#authorized;
  }

  /** Connected, and nothing arrived unasked (a reused connection the upstream has not given up on). */
  get usable(): boolean {
    return this.#error === null && this.#replies.length === 0 && !this.#socket.destroyed;
  }

  /** The EHLO keyword is offered. */
  offers(keyword: string): boolean {
    return this.extensions.has(keyword);
  }

  /** One command, its reply. */
  async command(line: string, timeout = this.options.commandTimeout ?? 300_000): Promise<Reply> {
    this.#write(ENCODER.encode(`${line}\r\n`));
    return this.read(timeout);
  }

  /** Several commands in one write (RFC 2920), their replies in order. */
  async pipeline(lines: readonly string[]): Promise<Reply[]> {
    this.#write(ENCODER.encode(lines.map((line) => `${line}\r\n`).join("")));
    const timeout = this.options.commandTimeout ?? 300_000;
    // Every reply is read (and waited for) even when an earlier one fails the caller.
    return Promise.all(lines.map(() => this.read(timeout)));
  }

  /** Body bytes, in order; settles when the socket can take more (the backpressure towards our client). */
  async writeBody(parts: readonly Uint8Array[]): Promise<void> {
    if (this.#error) throw this.#error;
    let full = false;
    for (const part of parts) full = !this.#socket.write(part);
    if (!full) return;
    let listener: ((error: UpstreamError) => void) | undefined;
    const failed = new Promise<never>((_, reject) => {
      listener = reject;
      this.#onFailure.add(reject);
    });
    try {
      await Promise.race([once(this.#socket, "drain"), failed]);
    } finally {
      if (listener) this.#onFailure.delete(listener);
    }
  }

  /** A reply that arrived unasked (an upstream refusing a body early, then closing), if any. */
  takeUnsolicited(): Reply | undefined {
    return this.#replies.shift();
  }

  /** The next reply. */
  read(timeout: number): Promise<Reply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: null };
      if (timeout > 0) {
        waiter.timer = setTimeout(
          () => this.destroy(new UpstreamError("ETIMEDOUT", "upstream timed out")),
          timeout,
        );
      }
      this.#waiters.push(waiter);
    });
  }

  /** QUIT, then close; never rejects. */
  async quit(timeout = 5_000): Promise<void> {
    if (this.#error) return;
    try {
      await this.command("QUIT", timeout);
    } catch {
      // Closing anyway.
    }
    this.destroy();
  }

  /** Closes now; waiting commands reject with `error`. */
  destroy(error = new UpstreamError("ECLOSED", "upstream connection closed")): void {
    this.#fail(error);
  }

  #write(data: Uint8Array): void {
    if (this.#error) throw this.#error;
    this.#socket.write(data);
  }

  #received(data: Buffer): void {
    let replies: Reply[];
    try {
      replies = this.#reader.push(data);
    } catch (error) {
      this.#fail(asUpstreamError(error));
      return;
    }
    for (const reply of replies) {
      const waiter = this.#waiters.shift();
      if (waiter) {
        if (waiter.timer) clearTimeout(waiter.timer);
        waiter.resolve(reply);
      } else if (this.#replies.push(reply) > MAX_UNSOLICITED) {
        this.#fail(new UpstreamError("EPROTOCOL", "upstream sent replies nobody asked for"));
        return;
      }
    }
  }

  #fail(error: UpstreamError): void {
    if (this.#error) return;
    this.#error = error;
    this.#socket.destroy();
    for (const waiter of this.#waiters.splice(0)) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    for (const listener of this.#onFailure) listener(error);
    this.#onFailure.clear();
  }

  #attach(socket: net.Socket): void {
    socket.on("data", this.#onData);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  #detach(socket: net.Socket): void {
    socket.off("data", this.#onData);
    socket.off("error", this.#onError);
    socket.off("close", this.#onClose);
  }

  #secured(socket: tls.TLSSocket): void {
    this.#tls = true;
    this.#authorized = socket.authorized;
  }

  async #hello(): Promise<void> {
    const name = this.options.name ?? osHostname();
    const ehlo = await this.command(`${this.options.lmtp ? "LHLO" : "EHLO"} ${name}`);
    this.extensions = new Map();
    if (ehlo.code === 250) {
      for (const line of ehlo.lines.slice(1)) {
        const [keyword = "", ...rest] = line.trim().split(/\s+/);
        if (keyword) this.extensions.set(keyword.toUpperCase(), rest.join(" "));
      }
      return;
    }
    if (ehlo.code === 421) throw new UpstreamError("EGREETING", "upstream closing", ehlo);
    if (this.options.lmtp) throw new UpstreamError("EPROTOCOL", `LHLO refused: ${ehlo.code}`, ehlo);
    const helo = await this.command(`HELO ${name}`);
    if (helo.code !== 250) throw new UpstreamError("EPROTOCOL", `HELO refused: ${helo.code}`, helo);
  }

  async #startTls(timeout: number): Promise<void> {
    const reply = await this.command("STARTTLS");
    if (reply.code !== 220) {
      if (this.options.requireTLS) throw new UpstreamError("ETLS", "STARTTLS refused", reply);
      return;
    }
    // Anything the server sent after its 220, before the handshake, is an injection attempt.
    if (this.#replies.length > 0 || this.#reader.pending) {
      throw new UpstreamError("EPROTOCOL", "upstream sent data after its STARTTLS reply");
    }
    const plain = this.#socket;
    this.#detach(plain);
    const secure = tls.connect({
      servername: net.isIP(this.options.host) ? undefined : this.options.host,
      ...this.options.tls,
      socket: plain,
    });
    this.#socket = secure;
    try {
      await withTimeout(once(secure, "secureConnect"), timeout);
    } catch (error) {
      secure.destroy();
      const why = (error as Error).message;
      throw new UpstreamError("ETLS", `upstream TLS handshake failed: ${why}`);
    }
    this.#reader = new ReplyReader(this.options.limits);
    this.#attach(secure);
    this.#secured(secure);
  }

  async #authenticate(auth: UpstreamAuth): Promise<void> {
    const offered = (this.extensions.get("AUTH") ?? "").toUpperCase().split(/\s+/);
    let reply: Reply;
    if (offered.includes("PLAIN") || !offered.includes("LOGIN")) {
      reply = await this.command(`AUTH PLAIN ${base64(`\0${auth.user}\0${auth.pass}`)}`);
    } else {
      reply = await this.command("AUTH LOGIN");
      if (reply.code === 334) reply = await this.command(base64(auth.user));
      if (reply.code === 334) reply = await this.command(base64(auth.pass));
    }
    if (reply.code !== 235)
      throw new UpstreamError("EAUTH", "upstream refused the credentials", reply);
  }
}

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function asUpstreamError(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error instanceof UpstreamProtocolError) return new UpstreamError("EPROTOCOL", error.message);
  const e = error as NodeJS.ErrnoException;
  return new UpstreamError(e?.code ?? "EUNKNOWN", String(e?.message ?? error));
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamError("ETIMEDOUT", "upstream timed out")), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function connectSocket(
  options: UpstreamClientOptions,
  timeout: number,
  signal?: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new UpstreamError("EABORT", "aborted"));
    const socket = options.secure
      ? tls.connect({
          host: options.host,
          port: options.port,
          servername: net.isIP(options.host) ? undefined : options.host,
          ...options.tls,
        })
      : net.connect({ host: options.host, port: options.port });
    const ready = options.secure ? "secureConnect" : "connect";
    const done = (error: UpstreamError | null) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off(ready, onReady);
      socket.off("error", onError);
      if (error) {
        socket.destroy();
        reject(error);
      } else resolve(socket);
    };
    const onReady = () => {
      // Commands are small writes answered one by one: Nagle's delay would only add latency.
      socket.setNoDelay(true);
      done(null);
    };
    const onError = (error: NodeJS.ErrnoException) =>
      done(new UpstreamError(error.code ?? "ECONNECTION", error.message));
    const onAbort = () => done(new UpstreamError("EABORT", "aborted"));
    const timer = setTimeout(
      () => done(new UpstreamError("ETIMEDOUT", "upstream connection timed out")),
      timeout,
    );
    socket.once(ready, onReady);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
