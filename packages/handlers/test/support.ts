/** Real clients and servers for the end-to-end tests: Python's smtplib and mailbox, aiosmtpd, Nodemailer. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import nodemailer from "nodemailer";

/** Debian's python3: it has python3-aiosmtpd (the pyenv one does not). */
export const PYTHON = "/usr/bin/python3";

/** Runs a Python script (`sys.argv[1:]` = args); it prints one JSON value, which is returned. */
export function python<T = unknown>(
  script: string,
  args: readonly (string | number)[] = [],
  input?: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      PYTHON,
      ["-c", script, ...args.map(String)],
      { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`python3 failed: ${error.message}\n${stderr}`));
        else {
          try {
            resolve(JSON.parse(stdout) as T);
          } catch {
            reject(new Error(`python3 printed no JSON: ${stdout}\n${stderr}`));
          }
        }
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export interface SmtplibResult {
  /** `sendmail()`'s dict of refused recipients (`[code, text]`), or LMTP's per-recipient failures. */
  refused?: Record<string, [number, string]>;
  /** `[exception class, code, text]` or `["SMTPRecipientsRefused", {rcpt: [code, text]}]`. */
  error?: [string, unknown, string?];
  /** The client's own address, `repr(sock.getsockname())`. */
  sockname?: string;
}

const SMTPLIB = `
import json, smtplib, sys
host, port, lmtp, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], json.loads(sys.argv[5])
msg = sys.stdin.buffer.read()
if msg.isascii():
    msg = msg.decode()  # a str: smtplib turns every line ending into CRLF, as in aiosmtpd's tests
result = {}
try:
    client = smtplib.LMTP(host, port) if lmtp else smtplib.SMTP(host, port)
    result["sockname"] = repr(client.sock.getsockname())
    refused = client.sendmail(sender, rcpts, msg)
    result["refused"] = {k: [v[0], v[1].decode()] for k, v in refused.items()}
    client.quit()
except smtplib.SMTPRecipientsRefused as e:
    result["error"] = ["SMTPRecipientsRefused", {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}]
except smtplib.SMTPResponseException as e:
    result["error"] = [type(e).__name__, e.smtp_code, e.smtp_error.decode()]
print(json.dumps(result))
`;

/**
 * Sends one message with Python's smtplib (`sendmail`): an ASCII message as a `str` (smtplib makes
 * every line ending CRLF), anything else as bytes, sent as they are.
 */
export function smtplibSend(
  port: number,
  sender: string,
  recipients: readonly string[],
  message: string,
  options: { lmtp?: boolean } = {},
): Promise<SmtplibResult> {
  return python<SmtplibResult>(
    SMTPLIB,
    ["127.0.0.1", port, options.lmtp ? "1" : "0", sender, JSON.stringify(recipients)],
    message,
  );
}

export interface MaildirEntry {
  key: string;
  subdir: string;
  /** The file's bytes, latin-1 decoded (byte for byte). */
  bytes: string;
  headers: [string, string][];
  payload: string;
}

/** Reads a Maildir with Python's `mailbox.Maildir`, plus what is left in tmp/. */
export function readMaildir(dir: string): Promise<{ messages: MaildirEntry[]; tmp: string[] }> {
  return python(
    `
import json, mailbox, os, sys
box = mailbox.Maildir(sys.argv[1], create=False)
out = []
for key in box.keys():
    msg = box[key]
    with box.get_file(key) as f:
        raw = f.read()
    out.append({"key": key, "subdir": msg.get_subdir(), "bytes": raw.decode("latin-1"),
                "headers": [[k, str(v)] for k, v in msg.items()],
                "payload": msg.get_payload(decode=True).decode("utf-8", "replace") if not msg.is_multipart() else ""})
out.sort(key=lambda m: m["key"])
print(json.dumps({"messages": out, "tmp": sorted(os.listdir(os.path.join(sys.argv[1], "tmp")))}))
`,
    [dir],
  );
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Aiosmtpd {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts the real aiosmtpd (`python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c HANDLER ARGS`). */
export async function startAiosmtpd(
  handler: readonly string[],
  options: { pythonPath?: string; extra?: readonly string[] } = {},
): Promise<Aiosmtpd> {
  const port = await freePort();
  const args = [
    "-m",
    "aiosmtpd",
    "-n",
    ...(options.extra ?? []),
    "-l",
    `127.0.0.1:${port}`,
    "-c",
    ...handler,
  ];
  const child = spawn(PYTHON, args, {
    stdio: ["ignore", "ignore", "pipe"],
    env: options.pythonPath ? { ...process.env, PYTHONPATH: options.pythonPath } : process.env,
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  try {
    await waitForPort(port, child);
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`aiosmtpd did not start: ${(error as Error).message}\n${stderr}`);
  }
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** A plain Nodemailer SMTP transport to 127.0.0.1:port (no TLS). */
export function nodemailerTo(port: number, options: { lmtp?: boolean } = {}) {
  return nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    ...(options.lmtp ? { lmtp: true } : {}),
  });
}

export const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
export const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Splits `data` into chunks at the given cut points (for streaming tests). */
export function cut(data: Uint8Array, points: readonly number[]): Uint8Array[] {
  const sorted = [...new Set(points.filter((p) => p > 0 && p < data.length))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let start = 0;
  for (const p of sorted) {
    out.push(data.slice(start, p));
    start = p;
  }
  out.push(data.slice(start));
  return out;
}

/** A hand-driven SMTP client on a raw socket, for what real clients will not do (hang up mid-DATA). */
export class RawClient {
  readonly socket: Socket;
  #buffer = "";
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on("error", () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  /** The next complete reply (all its lines), e.g. `"250 OK"`. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buffer);
      if (match) {
        this.#buffer = this.#buffer.slice(match[0].length);
        return match[0].trimEnd();
      }
      if (this.#closed)
        throw new Error(`connection closed; buffer: ${JSON.stringify(this.#buffer)}`);
      if (Date.now() > deadline)
        throw new Error(`no reply; buffer: ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.write(data, (error) => (error ? reject(error) : resolve())),
    );
  }

  async command(line: string): Promise<string> {
    await this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Greeting, EHLO, MAIL, RCPTs, DATA: ready for the body. */
  async startData(from: string, to: readonly string[]): Promise<void> {
    await this.reply();
    await this.command("EHLO client.example");
    await this.command(`MAIL FROM:<${from}>`);
    for (const rcpt of to) await this.command(`RCPT TO:<${rcpt}>`);
    const data = await this.command("DATA");
    if (!data.startsWith("354")) throw new Error(`DATA refused: ${data}`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
