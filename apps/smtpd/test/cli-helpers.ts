/** Helpers for the end-to-end tests: the built CLI as a child process, python3's smtplib. */
import {
  type ChildProcessWithoutNullStreams,
  execFile,
  execFileSync,
  spawn,
} from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const APP_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
export const CLI = join(APP_DIR, "dist", "cli.js");

export interface RunningCli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly host: string;
  readonly port: number;
  /** The listening line, e.g. `smtpkit 0.1.0 listening on 127.0.0.1:40123 (SMTP, size 33554432, handler Debugging)`. */
  readonly banner: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** Waits until stdout contains `text`. */
  waitForStdout(text: string, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** Kills whatever a failed test left running (registered in afterEach). */
export function killAll(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

async function until(check: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs the CLI to completion (for usage errors, -v, ...). */
export function runCli(
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: options.cwd ?? APP_DIR, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts the CLI and waits for its listening line. */
export async function startCli(
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<RunningCli> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? APP_DIR,
    stdio: ["pipe", "pipe", "pipe"],
  });
  running.add(child);
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? -1);
    });
  });
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  const LISTENING = /^smtpkit \S+ listening on (\[[^\]]+\]|[^\s]+):(\d+) \(.+\)$/m;
  await until(
    () => LISTENING.test(err) || ended,
    () => `the listening line; stderr so far: ${JSON.stringify(err)}`,
    15_000,
  );
  const match = LISTENING.exec(err);
  if (!match?.[1] || !match[2]) throw new Error(`the CLI exited early: ${JSON.stringify(err)}`);
  return {
    child,
    host: match[1].replace(/^\[|\]$/g, ""),
    port: Number(match[2]),
    banner: match[0],
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForStdout(text, timeoutMs = 10_000) {
      await until(
        () => out.includes(text),
        () => `${JSON.stringify(text)} on stdout; got ${JSON.stringify(out)}`,
        timeoutMs,
      );
      return out;
    },
    stop(signal = "SIGINT") {
      child.kill(signal);
      return exited;
    },
  };
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

/**
 * Runs a python3 script; `sys.argv[1:]` are `args`. The script prints one JSON value, which is
 * returned.
 */
export function python<T = unknown>(
  script: string,
  args: readonly (string | number)[] = [],
): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      "python3",
      ["-c", script, ...args.map(String)],
      { timeout: 20_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`python3 failed: ${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as T);
      },
    );
  });
}

/**
 * Python smtplib script: sends aiosmtpd's TestDebugging message and prints
 * `{"peer": repr(getsockname()), ...}` or the SMTP error.
 * argv: host port mode(ehlo|helo|starttls|smtps|lmtp)
 */
export const SMTPLIB_SEND = `
import json, smtplib, ssl, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
msg = "From: Anne Person <anne@example.com>\\nTo: Bart Person <bart@example.com>\\nSubject: A test\\n\\nTesting\\n"
ctx = ssl._create_unverified_context()
result = {}
try:
    if mode == "smtps":
        client = smtplib.SMTP_SSL(host, port, context=ctx)
    elif mode == "lmtp":
        client = smtplib.LMTP(host, port)
    else:
        client = smtplib.SMTP(host, port)
    result["peer"] = repr(client.sock.getsockname())
    if mode == "helo":
        client.helo("client.example")
    else:
        client.ehlo("client.example")  # LHLO for smtplib.LMTP
        result["features"] = sorted(client.esmtp_features)
    if mode == "starttls":
        result["before_tls"] = list(client.mail("anne@example.com"))
        result["before_tls"][1] = result["before_tls"][1].decode()
        client.rset()
        client.starttls(context=ctx)
        client.ehlo("client.example")
    result["refused"] = client.sendmail("anne@example.com", ["bart@example.com"], msg)
    client.quit()
except smtplib.SMTPResponseException as e:
    result["error"] = [type(e).__name__, e.smtp_code, e.smtp_error.decode()]
except smtplib.SMTPRecipientsRefused as e:
    result["error"] = ["SMTPRecipientsRefused", {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}]
print(json.dumps(result))
`;

/** aiosmtpd's expected Debugging block for SMTPLIB_SEND's message. */
export function expectedDebugging(peer: string, mailOptions: string | null): string {
  return [
    "---------- MESSAGE FOLLOWS ----------",
    ...(mailOptions === null ? [] : [`mail options: ${mailOptions}`, ""]),
    "From: Anne Person <anne@example.com>",
    "To: Bart Person <bart@example.com>",
    "Subject: A test",
    `X-Peer: ${peer}`,
    "",
    "Testing",
    "------------ END MESSAGE ------------",
    "",
  ].join("\n");
}

/** PEM files made with openssl in `dir`: a certificate, its key, another key, an encrypted key. */
export function makeTlsFiles(dir: string): {
  cert: string;
  key: string;
  otherKey: string;
  encryptedKey: string;
} {
  const files = {
    cert: join(dir, "cert.pem"),
    key: join(dir, "key.pem"),
    otherKey: join(dir, "other-key.pem"),
    encryptedKey: join(dir, "encrypted-key.pem"),
  };
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    files.key,
    "-out",
    files.cert,
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
  );
  openssl(
    "genpkey",
    "-algorithm",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-out",
    files.otherKey,
  );
  openssl(
    "pkey",
    "-in",
    files.key,
    "-aes256",
    "-passout",
    "pass:secret",
    "-out",
    files.encryptedKey,
  );
  return files;
}
