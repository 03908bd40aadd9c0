/**
 * Shared plumbing for the interop tests: free ports, throwaway certificates, running real client
 * programs (swaks, curl, python3), a raw line client over TCP/TLS/Unix sockets, and a handler that
 * records every hook call.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import {
  type Envelope,
  type Handler,
  type ServeOptions,
  type Session,
  type SmtpServer,
  serve,
} from "@smtpkit/node";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, "..", "..", "..");
export const CLI = join(REPO, "apps", "smtpd", "dist", "cli.js");
/** Debian's python: the one with python3-aiosmtpd (pyenv's python3 on PATH lacks it). */
export const SYSTEM_PYTHON = "/usr/bin/python3";
export const LOCALHOST = "127.0.0.1";

// ---------------------------------------------------------------------------------------------
// Environment checks: the tests need these programs; a missing one is a failure, never a skip.

export function which(program: string): string | null {
  try {
    return execFileSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/** Throws with a clear message naming the Debian package when a client program is missing. */
export function requirePrograms(programs: Record<string, string>): void {
  const missing = Object.entries(programs).filter(([program]) => which(program) === null);
  if (missing.length > 0) {
    throw new Error(
      `missing client programs: ${missing.map(([p, pkg]) => `${p} (Debian package ${pkg})`).join(", ")}`,
    );
  }
}

/** Whether swaks can do TLS (it needs Net::SSLeay, Debian's libnet-ssleay-perl). */
export function swaksHasTls(): boolean {
  try {
    const out = execFileSync("swaks", ["--support"], { encoding: "utf8", stdio: "pipe" });
    return /=== TLS supported/.test(out);
  } catch (error) {
    const out = String((error as { stdout?: unknown }).stdout ?? "");
    return /=== TLS supported/.test(out);
  }
}

export function requireBuilt(): void {
  const node = join(REPO, "packages", "node", "dist", "index.js");
  for (const file of [node, CLI]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx turbo run build\` first`);
  }
}

// ---------------------------------------------------------------------------------------------
// Ports, files, certificates.

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, LOCALHOST, () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

export function tempDir(prefix = "smtpkit-interop-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CertFiles {
  readonly dir: string;
  readonly keyPath: string;
  readonly certPath: string;
  readonly key: string;
  readonly cert: string;
  cleanup(): void;
}

/** A self-signed RSA certificate for `localhost`, made with openssl into a temp directory. */
export function makeCert(): CertFiles {
  const dir = tempDir("smtpkit-cert-");
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-days",
      "2",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    { stdio: "ignore" },
  );
  return {
    dir,
    keyPath,
    certPath,
    key: readFileSync(keyPath, "utf8"),
    cert: readFileSync(certPath, "utf8"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export const decode = (bytes: Uint8Array | string | null | undefined): string =>
  bytes === null || bytes === undefined
    ? ""
    : typeof bytes === "string"
      ? bytes
      : Buffer.from(bytes).toString("utf8");

// ---------------------------------------------------------------------------------------------
// Child processes.

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();

/** Python's output unbuffered and in UTF-8 whatever the caller's environment (turbo strips it). */
const PYTHON_ENV = { PYTHONUNBUFFERED: "1", PYTHONIOENCODING: "utf-8" };

/** Kills every child process this module started that is still running (for afterAll). */
export function killChildren(): void {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
}

/** Runs a program to completion (killed after `timeoutMs`). Never rejects. */
export function run(
  command: string,
  args: readonly string[],
  options: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, [...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
    });
    children.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", (error) => {
      err.push(Buffer.from(String(error)));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(options.input ?? "");
  });
}

/**
 * Runs a Python snippet with Debian's python3; the snippet prints one JSON document as the last
 * line of stdout, which is returned parsed.
 */
export async function python<T = unknown>(
  script: string,
  args: readonly string[] = [],
  timeoutMs = 30_000,
): Promise<T> {
  const result = await run(SYSTEM_PYTHON, ["-c", script, ...args], {
    timeoutMs,
    env: { ...process.env, ...PYTHON_ENV },
  });
  const last = result.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(
      `python failed (code ${result.code}):\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
}

/** A long-running child (a server) with its output collected. */
export interface Daemon {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(
    stream: "stdout" | "stderr",
    pattern: RegExp | string,
    timeoutMs?: number,
  ): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startDaemon(
  command: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): Daemon {
  const child = spawn(command, [...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: options.cwd ?? REPO,
    // aiosmtpd's Debugging handler prints to a pipe: unbuffered, or nothing shows up until exit.
    env: { ...process.env, ...PYTHON_ENV },
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const daemon: Daemon = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitFor(stream, pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = stream === "stdout" ? out : err;
        const found = typeof pattern === "string" ? text.includes(pattern) : pattern.test(text);
        if (found) return text;
        if (done) {
          throw new Error(
            `${command} exited before printing ${String(pattern)} on ${stream}\nstdout: ${out}\nstderr: ${err}`,
          );
        }
        if (Date.now() > deadline) {
          throw new Error(
            `timed out waiting for ${String(pattern)} on ${stream}\nstdout: ${out}\nstderr: ${err}`,
          );
        }
        await sleep(20);
      }
    },
    async stop(signal = "SIGTERM") {
      if (!done) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  return daemon;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until a TCP port accepts connections. */
/**
 * Whether process `pid` holds the listening TCP socket on `port` (Linux /proc). A port picked by
 * `freePort()` can be taken by another server before a slow-starting daemon binds it; then the
 * port answers, but not from the daemon.
 */
export function listensOn(pid: number, port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
      if (fields[1]?.endsWith(`:${hex}`) && fields[3] === "0A" && fields[9]) inodes.add(fields[9]);
    }
  }
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (inodes.has(/^socket:\[(\d+)\]$/.exec(target)?.[1] ?? "")) return true;
    } catch {
      // The descriptor closed meanwhile.
    }
  }
  return false;
}

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: LOCALHOST });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on port ${port}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// A raw SMTP line client.

/** One server reply: its lines without CRLF, e.g. `["250-host", "250 HELP"]`. */
export type ReplyLines = string[];

export class RawClient {
  socket: net.Socket;
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  static connect(
    port: number,
    options: { tls?: boolean; localAddress?: string } = {},
  ): Promise<RawClient> {
    const from = options.localAddress === undefined ? {} : { localAddress: options.localAddress };
    return new Promise((resolve, reject) => {
      const socket = options.tls
        ? tls.connect({
            port,
            host: LOCALHOST,
            rejectUnauthorized: false,
            servername: "localhost",
            ...from,
          })
        : net.connect({ port, host: LOCALHOST, ...from });
      const ready = options.tls ? "secureConnect" : "connect";
      socket.once("error", reject);
      socket.once(ready, () => {
        socket.off("error", reject);
        resolve(new RawClient(socket));
      });
    });
  }

  static connectPath(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path });
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawClient(socket));
      });
    });
  }

  private attach(socket: net.Socket): void {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("end", () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  private waitForActivity(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(done);
    });
  }

  /** Takes one complete reply out of the buffer, if there is one. */
  private takeReply(): ReplyLines | null {
    const lines: string[] = [];
    let offset = 0;
    for (;;) {
      const end = this.buffer.indexOf("\r\n", offset);
      if (end === -1) return null;
      const line = this.buffer.subarray(offset, end).toString("utf8");
      lines.push(line);
      offset = end + 2;
      if (!/^\d{3}-/.test(line)) {
        this.buffer = this.buffer.subarray(offset);
        return lines;
      }
    }
  }

  /** The next reply, or `null` when none arrived within `timeoutMs` or the connection closed. */
  async reply(timeoutMs = 5_000): Promise<ReplyLines | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.takeReply();
      if (reply) return reply;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await this.waitForActivity(left);
    }
  }

  /** Bytes received and not yet taken as a reply (a partial line). */
  pending(): string {
    return this.buffer.toString("utf8");
  }

  /** Waits until the server closes the connection; true if it did within `timeoutMs`. */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.waitForActivity(left);
    }
    return true;
  }

  write(data: string | Uint8Array): void {
    if (!this.closed)
      this.socket.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
  }

  /** Sends one line (CRLF added) and returns the reply. */
  async command(line: string, timeoutMs = 5_000): Promise<ReplyLines | null> {
    this.write(`${line}\r\n`);
    return this.reply(timeoutMs);
  }

  /** Upgrades the connection to TLS (after the server's 220 to STARTTLS). */
  startTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    plain.removeAllListeners("end");
    return new Promise((resolve, reject) => {
      const secure = tls.connect({
        socket: plain,
        rejectUnauthorized: false,
        servername: "localhost",
      });
      secure.once("error", reject);
      secure.once("secureConnect", () => {
        secure.off("error", reject);
        this.socket = secure;
        this.buffer = Buffer.alloc(0);
        this.attach(secure);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The text of a reply's lines joined with "\n" (or a marker when there was none). */
export function replyText(reply: ReplyLines | null): string {
  return reply === null ? "(no reply)" : reply.join("\n");
}

export const code = (reply: ReplyLines | null): number =>
  reply === null ? 0 : Number.parseInt(reply[reply.length - 1]?.slice(0, 3) ?? "0", 10);

// ---------------------------------------------------------------------------------------------
// A handler that records every hook call.

export interface HookCall {
  readonly hook: string;
  readonly args: unknown[];
  /** A snapshot of the session and envelope when the hook ran. */
  readonly session: SessionSnapshot;
  readonly envelope: EnvelopeSnapshot;
}

export interface SessionSnapshot {
  peer: unknown;
  transportPeer: unknown;
  ssl: { implicit: boolean; protocol: string | null } | null;
  hostName: string | null;
  extendedSmtp: boolean;
  authData: unknown;
  authenticated: boolean | null;
  proxyData: unknown;
}

export interface EnvelopeSnapshot {
  mailFrom: string | null;
  mailOptions: string[];
  smtpUtf8: boolean;
  content: string | null;
  contentBytes: Uint8Array | null;
  originalContent: Uint8Array | null;
  rcptTos: string[];
  rcptOptions: string[];
}

export function snapshotSession(session: Session): SessionSnapshot {
  return {
    peer: session.peer ? { ...session.peer } : null,
    transportPeer: session.transportPeer ? { ...session.transportPeer } : null,
    ssl: session.ssl ? { implicit: session.ssl.implicit, protocol: session.ssl.protocol } : null,
    hostName: session.hostName,
    extendedSmtp: session.extendedSmtp,
    authData: session.authData,
    authenticated: session.authenticated,
    proxyData: session.proxyData,
  };
}

export function snapshotEnvelope(envelope: Envelope): EnvelopeSnapshot {
  const content = envelope.content;
  return {
    mailFrom: envelope.mailFrom,
    mailOptions: [...envelope.mailOptions],
    smtpUtf8: envelope.smtpUtf8,
    content: content === null ? null : decode(content),
    contentBytes: content instanceof Uint8Array ? Uint8Array.from(content) : null,
    originalContent: envelope.originalContent ? Uint8Array.from(envelope.originalContent) : null,
    rcptTos: [...envelope.rcptTos],
    rcptOptions: [...envelope.rcptOptions],
  };
}

/** A received message, as `handleDATA` saw it. */
export interface Received {
  readonly mailFrom: string | null;
  readonly rcptTos: string[];
  readonly mailOptions: string[];
  readonly rcptOptions: string[];
  readonly smtpUtf8: boolean;
  readonly content: Buffer;
  readonly session: SessionSnapshot;
}

/**
 * A handler recording `calls` for every hook (`handleDATA` keeps the message in `messages`); each
 * hook returns nothing, so the defaults apply, unless `overrides` supplies a hook.
 */
export function recordingHandler(overrides: Partial<Handler> = {}): {
  handler: Handler;
  calls: HookCall[];
  messages: Received[];
  waitForMessages(count: number, timeoutMs?: number): Promise<Received[]>;
} {
  const calls: HookCall[] = [];
  const messages: Received[] = [];
  const record =
    (hook: string) =>
    (_server: unknown, session: Session, envelope: Envelope, ...args: unknown[]) => {
      calls.push({
        hook,
        args: args.filter((a) => !(a instanceof AbortSignal)),
        session: snapshotSession(session),
        envelope: snapshotEnvelope(envelope),
      });
    };
  const hooks = ["HELO", "EHLO", "MAIL", "RCPT", "RSET", "NOOP", "QUIT", "VRFY"] as const;
  const handler: Record<string, unknown> = {};
  for (const name of hooks) {
    const key = `handle${name}`;
    const recorder = record(key);
    const override = (overrides as Record<string, unknown>)[key] as
      | ((...a: unknown[]) => unknown)
      | undefined;
    handler[key] = (...args: unknown[]) => {
      (recorder as (...a: unknown[]) => void)(...args);
      return override?.(...args);
    };
  }
  const dataOverride = overrides.handleDATA;
  handler.handleDATA = (server: never, session: Session, envelope: Envelope, signal: never) => {
    record("handleDATA")(server, session, envelope);
    messages.push({
      mailFrom: envelope.mailFrom,
      rcptTos: [...envelope.rcptTos],
      mailOptions: [...envelope.mailOptions],
      rcptOptions: [...envelope.rcptOptions],
      smtpUtf8: envelope.smtpUtf8,
      content: Buffer.from(
        envelope.originalContent ?? (envelope.content as Uint8Array | null) ?? new Uint8Array(),
      ),
      session: snapshotSession(session),
    });
    return dataOverride?.(server, session, envelope, signal);
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in handler)) handler[key] = value;
  }
  return {
    handler: handler as Handler,
    calls,
    messages,
    async waitForMessages(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`expected ${count} messages, got ${messages.length}`);
        }
        await sleep(10);
      }
      return messages;
    },
  };
}

/** Runs `body` against a server on a free port of 127.0.0.1, closed afterwards whatever happens. */
export async function withServerNamed<T>(
  hostname: string,
  handler: Handler,
  options: ServeOptions,
  body: (server: SmtpServer) => Promise<T>,
): Promise<T> {
  const server = await serve(handler, {
    host: LOCALHOST,
    port: 0,
    hostname,
    closeTimeout: 2_000,
    ...options,
  });
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}
