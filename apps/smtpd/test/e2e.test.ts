/**
 * End to end over real sockets on 127.0.0.1: the built `dist/cli.js` in a child process, mail sent
 * with Python's smtplib and with Nodemailer, the Debugging output compared with aiosmtpd's.
 */
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  APP_DIR,
  expectedDebugging,
  freePort,
  killAll,
  makeTlsFiles,
  python,
  runCli,
  SMTPLIB_SEND,
  startCli,
} from "./cli-helpers.js";

/** The version the command reports: its package.json's (changesets sets it). */
const VERSION = (
  JSON.parse(readFileSync(join(APP_DIR, "package.json"), "utf8")) as { version: string }
).version;

interface Files {
  cert: string;
  key: string;
  otherKey: string;
  junk: string;
  dir: string;
}

interface SendResult {
  peer: string;
  features?: string[];
  refused?: Record<string, unknown>;
  before_tls?: [number, string];
  error?: [string, number | Record<string, unknown>, string?];
}

const send = (port: number, mode: "ehlo" | "helo" | "starttls" | "smtps" | "lmtp") =>
  python<SendResult>(SMTPLIB_SEND, ["127.0.0.1", port, mode]);

const RAW = [
  "From: Carol <carol@example.com>",
  "To: Dave <dave@example.com>",
  "Subject: From Nodemailer",
  "Message-ID: <nm-1@example.com>",
  "",
  "Hello Dave,",
  "a second line.",
  "",
].join("\r\n");

/** Nodemailer over a socket we open ourselves, so the client port (the X-Peer) is known. */
function nodemailerPlain(port: number) {
  let socket: Socket | undefined;
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    getSocket(_options, callback) {
      const s = connect(port, "127.0.0.1", () => callback(null, { connection: s }));
      s.once("error", (error) => callback(error));
      socket = s;
    },
  });
  return { transport, localPort: () => socket?.localPort };
}

let dir = "";
let cert = "";
let key = "";
let otherKey = "";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "smtpkit-cli-"));
  ({ cert, key, otherKey } = makeTlsFiles(dir));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  killAll();
});

describe("the built CLI", () => {
  it("is an executable ESM file with a node shebang", () => {
    const text = readFileSync(join(APP_DIR, "dist/cli.js"), "utf8");
    expect(text.startsWith("#!/usr/bin/env node\n")).toBe(true);
  });

  it("-v prints `smtpkit <version>`", async () => {
    const { version } = JSON.parse(readFileSync(join(APP_DIR, "package.json"), "utf8")) as {
      version: string;
    };
    expect(await runCli(["-v"])).toEqual({ code: 0, stdout: `smtpkit ${version}\n`, stderr: "" });
  });

  it.each([
    [["-l", ":foo"], "Invalid port number: foo"],
    [["--tlscert", "x"], "--tlscert and --tlskey must be specified together"],
    [["--smtpscert", "x", "--smtpskey", "y"], "Cert file x not found"],
    [["-c", "Debugging", "stdfoo"], "Debugging usage: [stdout|stderr]"],
    [["-c", "Sink", "extra"], "Sink handler does not accept arguments"],
    [
      ["-c", "./test/fixtures/class-handler.mjs", "FOO"],
      "Handler class ./test/fixtures/class-handler.mjs takes no arguments",
    ],
    [["--frobnicate"], "unknown option '--frobnicate'"],
  ])("%j: one line on stderr, exit 2", async (args, message) => {
    expect(await runCli(["-n", ...args])).toEqual({
      code: 2,
      stdout: "",
      stderr: `smtpkit: error: ${message}\n`,
    });
  });

  it("--help ends with the built-in handlers and their arguments, within 80 columns", async () => {
    const { code, stdout } = await runCli(["--help"]);
    expect(code).toBe(0);
    const handlers = stdout.slice(stdout.indexOf("\nHandlers (-c NAME [CLASSARGS...]):\n"));
    for (const usage of [
      "Debugging [stdout|stderr]",
      "Sink",
      "Mailbox DIR",
      "Proxy HOST PORT",
      "JetStream URL SUBJECT",
      "Message, AsyncMessage",
    ]) {
      expect(handlers).toMatch(new RegExp(`\\n  ${usage.replace(/[[\]|]/g, "\\$&")} +\\S`));
    }
    expect(stdout.split("\n").filter((line) => line.length > 80)).toEqual([]);
  });

  it("bin/smtpkit.mjs (the npm bin entry) runs the built CLI", async () => {
    const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>(
      (resolve) => {
        execFile(process.execPath, [join(APP_DIR, "bin/smtpkit.mjs"), "-v"], (error, out) =>
          resolve({ stdout: out, code: error ? (error.code as number) : 0 }),
        );
      },
    );
    expect({ stdout, code }).toEqual({ stdout: `smtpkit ${VERSION}\n`, code: 0 });
    const pkg = JSON.parse(readFileSync(join(APP_DIR, "package.json"), "utf8")) as {
      bin: Record<string, string>;
      files: string[];
    };
    expect(pkg.bin).toEqual({ smtpkit: "bin/smtpkit.mjs" });
    expect(pkg.files).toContain("bin");
  });

  it("bin/smtpkit.mjs before the build: one line saying so, exit 2", async () => {
    const copy = join(dir, "unbuilt");
    mkdirSync(join(copy, "bin"), { recursive: true });
    copyFileSync(join(APP_DIR, "bin/smtpkit.mjs"), join(copy, "bin/smtpkit.mjs"));
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        execFile(process.execPath, [join(copy, "bin/smtpkit.mjs"), "--version"], (error, o, e) =>
          resolve({ code: error ? (error.code as number) : 0, stdout: o, stderr: e }),
        );
      },
    );
    expect(result).toEqual({
      code: 2,
      stdout: "",
      stderr: 'smtpkit: not built yet; run "npm run build" (or npm start) first\n',
    });
  });

  it.each([
    [
      (f: Files) => ["--tlscert", f.junk, "--tlskey", f.key],
      (f: Files) =>
        `argument --tlscert: Cert file ${f.junk} is not a certificate (expected PEM "BEGIN CERTIFICATE")`,
    ],
    [
      (f: Files) => ["--smtpscert", f.cert, "--smtpskey", f.cert],
      (f: Files) =>
        `argument --smtpskey: Key file ${f.cert} is not a private key (expected PEM "BEGIN PRIVATE KEY")`,
    ],
    [
      (f: Files) => ["--tlscert", f.cert, "--tlskey", f.otherKey],
      (f: Files) =>
        `argument --tlskey: Key file ${f.otherKey}: key does not match certificate ${f.cert}`,
    ],
    [
      (f: Files) => ["--tlscert", f.dir, "--tlskey", f.key],
      (f: Files) => `argument --tlscert: Cert file ${f.dir} cannot be read (EISDIR)`,
    ],
  ])(
    "bad TLS files: one line naming flag and file, exit 2, nothing listens",
    async (args, message) => {
      const junk = join(dir, "junk.pem");
      writeFileSync(junk, "-----BEGIN NOTHING-----\n");
      const files: Files = { cert, key, otherKey, junk, dir };
      expect(await runCli(["-n", "-l", "127.0.0.1:0", ...args(files)])).toEqual({
        code: 2,
        stdout: "",
        stderr: `smtpkit: error: ${message(files)}\n`,
      });
    },
  );

  it.each([
    [
      ["--auth-required"],
      "argument --auth-required: needs --auth-file (without a users file nobody can log in)",
    ],
    [
      ["--auth-mechanisms", "PLAIN"],
      "argument --auth-mechanisms: needs --auth-file (without a users file nobody can log in)",
    ],
    [
      ["--no-requiretls"],
      "argument --no-requiretls: needs --tlscert and --tlskey (it only relaxes STARTTLS)",
    ],
    [["-c", "Mailbox", "/proc/x"], "Mailbox directory /proc/x cannot be created (ENOENT)"],
    [
      ["-l", "[localhost]:25"],
      "argument -l/--listen: [localhost]:25: localhost is not an IPv6 address",
    ],
  ])("%j: one line on stderr, exit 2, before anything listens", async (args, message) => {
    expect(await runCli(["-n", "-l", "127.0.0.1:0", ...args])).toEqual({
      code: 2,
      stdout: "",
      stderr: `smtpkit: error: ${message}\n`,
    });
  });

  // process.features.typescript: "strip"/"transform" where Node runs .ts files (22.10+), else false.
  const typeStripping = Boolean((process.features as { typescript?: unknown }).typescript);
  it.skipIf(typeStripping)(
    `a .ts handler module on a Node without type stripping: one line, exit 2${typeStripping ? " [skip: this Node strips types]" : ""}`,
    async () => {
      expect(
        await runCli(["-n", "-l", "127.0.0.1:0", "-c", "./test/fixtures/ts-handler.ts"]),
      ).toEqual({
        code: 2,
        stdout: "",
        stderr: `smtpkit: error: Handler module ./test/fixtures/ts-handler.ts is TypeScript, which Node ${process.version} does not run: compile it to .js, or run under Node >= 22.6 with --experimental-strip-types\n`,
      });
    },
  );

  it("-l [::1]:PORT listens on the IPv6 loopback", async () => {
    const cli = await startCli(["-n", "-c", "Sink", "-l", "[::1]:0"]);
    expect(cli.host).toBe("::1");
    expect(cli.banner).toMatch(/^smtpkit \S+ listening on \[::1\]:\d+ \(SMTP, /);
    const greeting = await python<string>(
      "import json,smtplib,sys\nc=smtplib.SMTP()\nprint(json.dumps(c.connect(sys.argv[1], int(sys.argv[2]))[0]))\nc.quit()",
      ["::1", cli.port],
    );
    expect(greeting).toBe(220);
    expect(await cli.stop()).toBe(0);
  });

  it("the start-up line says what is on: STARTTLS required, AUTH, size, handler", async () => {
    const users = join(dir, "users.txt");
    writeFileSync(users, "alice:wonderland\n");
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--tlscert",
      cert,
      "--tlskey",
      key,
      "--auth-file",
      users,
      "--auth-mechanisms",
      "PLAIN,LOGIN,SCRAM-SHA-256",
    ]);
    expect(cli.banner).toBe(
      `smtpkit ${VERSION} listening on 127.0.0.1:${cli.port} (SMTP, STARTTLS required, AUTH PLAIN LOGIN SCRAM-SHA-256, size 33554432, handler Sink)`,
    );
    expect(await cli.stop()).toBe(0);
  });

  it("the start-up line with --lmtp and SMTPS", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--lmtp",
      "--smtpscert",
      cert,
      "--smtpskey",
      key,
    ]);
    expect(cli.banner).toMatch(/ \(LMTPS, size 33554432, handler Sink\)$/);
    expect(await cli.stop()).toBe(0);
  });

  it("a port in use: one line, exit 1", async () => {
    const cli = await startCli(["-n", "-c", "Sink", "-l", "127.0.0.1:0"]);
    const result = await runCli(["-n", "-l", `127.0.0.1:${cli.port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(
        `^smtpkit: error: cannot listen on 127\\.0\\.0\\.1:${cli.port}: .*EADDRINUSE.*\\n$`,
      ),
    );
    expect(await cli.stop()).toBe(0);
  });
});

describe("Debugging (default handler)", () => {
  it("smtplib over EHLO: aiosmtpd's exact output, on a port given with -l", async () => {
    const port = await freePort();
    const cli = await startCli(["-n", "-l", `127.0.0.1:${port}`]);
    expect(cli.banner).toBe(
      `smtpkit ${VERSION} listening on 127.0.0.1:${port} (SMTP, size 33554432, handler Debugging)`,
    );
    const result = await send(port, "ehlo");
    expect(result.refused).toEqual({});
    expect(result.features).toContain("size");
    await cli.waitForStdout("END MESSAGE");
    expect(cli.stdout()).toBe(expectedDebugging(result.peer, "['SIZE=102']"));
    expect(result.peer).toMatch(/^\('127\.0\.0\.1', \d+\)$/);
    expect(await cli.stop("SIGINT")).toBe(0);
  });

  it("smtplib over HELO: no mail options line", async () => {
    const cli = await startCli(["-n", "-l", "127.0.0.1:0"]);
    const result = await send(cli.port, "helo");
    await cli.waitForStdout("END MESSAGE");
    expect(cli.stdout()).toBe(expectedDebugging(result.peer, null));
    expect(await cli.stop()).toBe(0);
  });

  it("Nodemailer: the raw message between the frame lines, X-Peer before the body", async () => {
    const cli = await startCli(["-n", "-l", "127.0.0.1:0"]);
    const { transport, localPort } = nodemailerPlain(cli.port);
    const info = await transport.sendMail({
      envelope: { from: "carol@example.com", to: ["dave@example.com"] },
      raw: RAW,
    });
    expect(info.accepted).toEqual(["dave@example.com"]);
    expect(info.response).toMatch(/^250 /);
    await cli.waitForStdout("END MESSAGE");
    // Nodemailer sends no MAIL parameters for a 7-bit raw message, so no "mail options" line.
    expect(cli.stdout()).toBe(
      [
        "---------- MESSAGE FOLLOWS ----------",
        "From: Carol <carol@example.com>",
        "To: Dave <dave@example.com>",
        "Subject: From Nodemailer",
        "Message-ID: <nm-1@example.com>",
        `X-Peer: ('127.0.0.1', ${localPort()})`,
        "",
        "Hello Dave,",
        "a second line.",
        "------------ END MESSAGE ------------",
        "",
      ].join("\n"),
    );
    transport.close();
    expect(await cli.stop()).toBe(0);
  });

  it("Nodemailer: a composed message is printed with its headers first", async () => {
    const cli = await startCli(["-n", "-l", "127.0.0.1:0", "-c", "Debugging", "stdout"]);
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: cli.port,
      ignoreTLS: true,
    });
    await transport.sendMail({
      from: "carol@example.com",
      to: "dave@example.com",
      subject: "Composed",
      text: "Body text",
    });
    const out = await cli.waitForStdout("END MESSAGE");
    const lines = out.split("\n");
    expect(lines[0]).toBe("---------- MESSAGE FOLLOWS ----------");
    const peerAt = lines.findIndex((line) => line.startsWith("X-Peer: "));
    expect(lines[peerAt]).toMatch(/^X-Peer: \('127\.0\.0\.1', \d+\)$/);
    expect(lines[peerAt + 1]).toBe("");
    expect(lines.slice(0, peerAt)).toContain("Subject: Composed");
    expect(lines.slice(peerAt)).toContain("Body text");
    expect(lines.at(-2)).toBe("------------ END MESSAGE ------------");
    transport.close();
    expect(await cli.stop()).toBe(0);
  });

  it("`Debugging stderr` prints to stderr", async () => {
    const cli = await startCli(["-n", "-l", "127.0.0.1:0", "-c", "Debugging", "stderr"]);
    const result = await send(cli.port, "ehlo");
    expect(result.refused).toEqual({});
    const deadline = Date.now() + 5000;
    while (!cli.stderr().includes("END MESSAGE") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(cli.stderr()).toContain(expectedDebugging(result.peer, "['SIZE=102']"));
    expect(cli.stdout()).toBe("");
    expect(await cli.stop()).toBe(0);
  });
});

describe("other handlers", () => {
  it("-c Sink accepts and prints nothing", async () => {
    const cli = await startCli(["-n", "-c", "Sink", "-l", "127.0.0.1:0"]);
    expect(cli.banner).toMatch(/ \(SMTP, size 33554432, handler Sink\)$/);
    const result = await send(cli.port, "ehlo");
    expect(result).toMatchObject({ refused: {} });
    const { transport } = nodemailerPlain(cli.port);
    const info = await transport.sendMail({
      envelope: { from: "a@example.com", to: ["b@example.com"] },
      raw: RAW,
    });
    expect(info.accepted).toEqual(["b@example.com"]);
    transport.close();
    expect(await cli.stop()).toBe(0);
    expect(cli.stdout()).toBe("");
  });

  it("-c MODULE CLASSARGS: the module's fromCli gets the arguments", async () => {
    const cli = await startCli([
      "-n",
      "-l",
      "127.0.0.1:0",
      "-c",
      "./test/fixtures/reject-handler.mjs",
      "--",
      "550",
      "5.1.1",
      "No such user here",
    ]);
    expect(cli.banner).toMatch(/, handler \.\/test\/fixtures\/reject-handler\.mjs\)$/);
    const result = await send(cli.port, "ehlo");
    expect(result.error).toEqual([
      "SMTPRecipientsRefused",
      { "bart@example.com": [550, "5.1.1 No such user here"] },
    ]);
    expect(await cli.stop()).toBe(0);
  });
});

describe("TLS", () => {
  it("--tlscert/--tlskey: STARTTLS offered and required; smtplib sends after STARTTLS", async () => {
    const cli = await startCli(["-n", "-l", "127.0.0.1:0", "--tlscert", cert, "--tlskey", key]);
    const result = await send(cli.port, "starttls");
    expect(result.features).toContain("starttls");
    expect(result.before_tls?.[0]).toBe(530);
    expect(result.refused).toEqual({});
    await cli.waitForStdout("END MESSAGE");
    expect(cli.stdout()).toBe(expectedDebugging(result.peer, "['SIZE=102']"));
    expect(await cli.stop()).toBe(0);
  });

  it("--tlscert/--tlskey: Nodemailer upgrades with STARTTLS (requireTLS)", async () => {
    const cli = await startCli(["-n", "-l", "127.0.0.1:0", "--tlscert", cert, "--tlskey", key]);
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: cli.port,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
    });
    const info = await transport.sendMail({
      envelope: { from: "carol@example.com", to: ["dave@example.com"] },
      raw: RAW,
    });
    expect(info.accepted).toEqual(["dave@example.com"]);
    await cli.waitForStdout("END MESSAGE");
    expect(cli.stdout()).toContain(
      "Subject: From Nodemailer\nMessage-ID: <nm-1@example.com>\nX-Peer: ('127.0.0.1', ",
    );
    transport.close();
    expect(await cli.stop()).toBe(0);
  });

  it("--no-requiretls: mail without STARTTLS is accepted", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--tlscert",
      cert,
      "--tlskey",
      key,
      "--no-requiretls",
    ]);
    const result = await send(cli.port, "ehlo");
    expect(result.features).toContain("starttls");
    expect(result.refused).toEqual({});
    expect(await cli.stop()).toBe(0);
  });

  it("--smtpscert/--smtpskey: implicit TLS with Nodemailer (secure: true) and smtplib.SMTP_SSL", async () => {
    const cli = await startCli(["-n", "-l", "127.0.0.1:0", "--smtpscert", cert, "--smtpskey", key]);
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: cli.port,
      secure: true,
      tls: { rejectUnauthorized: false },
    });
    const info = await transport.sendMail({
      envelope: { from: "carol@example.com", to: ["dave@example.com"] },
      raw: RAW,
    });
    expect(info.accepted).toEqual(["dave@example.com"]);
    await cli.waitForStdout("END MESSAGE");
    transport.close();
    const result = await send(cli.port, "smtps");
    expect(result.refused).toEqual({});
    await cli.waitForStdout(`X-Peer: ${result.peer}\n`);
    expect(cli.stdout().endsWith(expectedDebugging(result.peer, "['SIZE=102']"))).toBe(true);
    expect(await cli.stop()).toBe(0);
  });
});

describe("limits and modes", () => {
  it("-s 100: SIZE 100 advertised; 552 at MAIL (SIZE=) and at DATA (HELO, no SIZE=)", async () => {
    const cli = await startCli(["-n", "-s", "100", "-l", "127.0.0.1:0"]);
    const ehlo = await send(cli.port, "ehlo");
    expect(ehlo.error?.[0]).toBe("SMTPSenderRefused");
    expect(ehlo.error?.[1]).toBe(552);
    const helo = await send(cli.port, "helo");
    expect(helo.error?.[0]).toBe("SMTPDataError");
    expect(helo.error?.[1]).toBe(552);
    expect(cli.stdout()).toBe("");
    expect(await cli.stop()).toBe(0);
  });

  it("--lmtp: smtplib.LMTP (LHLO) delivers", async () => {
    const cli = await startCli(["-n", "--lmtp", "-l", "127.0.0.1:0"]);
    const result = await send(cli.port, "lmtp");
    expect(result.refused).toEqual({});
    await cli.waitForStdout("END MESSAGE");
    expect(cli.stdout()).toContain("Subject: A test\nX-Peer: ");
    expect(await cli.stop()).toBe(0);
  });

  it("--hostname and --ident appear in the greeting", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--hostname",
      "mx.test",
      "--ident",
      "Hello-ESMTP",
    ]);
    const greeting = await python<string>(
      "import json,smtplib,sys\nc=smtplib.SMTP()\nprint(json.dumps(c.connect(sys.argv[1], int(sys.argv[2]))[1].decode()))\nc.quit()",
      ["127.0.0.1", cli.port],
    );
    expect(greeting).toBe("mx.test Hello-ESMTP");
    expect(await cli.stop()).toBe(0);
  });
});

/** Opens a raw connection, optionally writes `first`, and collects what the server says. */
async function rawDialog(port: number, first: string | null, waitMs = 400): Promise<string> {
  const socket = connect(port, "127.0.0.1");
  let received = "";
  socket.setEncoding("utf8").on("data", (chunk: string) => {
    received += chunk;
  });
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  if (first !== null) socket.write(first);
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  if (!socket.destroyed) socket.end("QUIT\r\n");
  await new Promise((resolve) =>
    socket.destroyed ? resolve(null) : socket.once("close", resolve),
  );
  return received;
}

describe("connection flags", () => {
  it("--proxy-protocol with --proxy-trust: a trusted PROXY header gets the greeting", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--proxy-protocol",
      "5",
      "--proxy-trust",
      "127.0.0.0/8",
    ]);
    const reply = await rawDialog(cli.port, "PROXY TCP4 192.0.2.1 192.0.2.2 40000 25\r\n");
    expect(reply).toMatch(/^220 /);
    expect(await cli.stop()).toBe(0);
  });

  it("--proxy-trust not matching the peer: no PROXY header is taken from it", async () => {
    const cli = await startCli([
      "-n",
      "-c",
      "Sink",
      "-l",
      "127.0.0.1:0",
      "--proxy-protocol",
      "5",
      "--proxy-trust",
      "10.0.0.0/8",
    ]);
    // core serves an untrusted peer as a direct client: its PROXY line is just an unknown command.
    const reply = await rawDialog(cli.port, "PROXY TCP4 192.0.2.1 192.0.2.2 40000 25\r\n");
    expect(reply).toMatch(/^220 [^\r]*\r\n500 5\.5\.1 Error: command "PROXY" not recognized\r\n/);
    expect(await cli.stop()).toBe(0);
  });

  it("--max-connections 1: a second simultaneous client gets 421", async () => {
    const cli = await startCli(["-n", "-c", "Sink", "-l", "127.0.0.1:0", "--max-connections", "1"]);
    const first = connect(cli.port, "127.0.0.1");
    first.on("error", () => {});
    await new Promise((resolve) => first.once("data", resolve));
    const second = await rawDialog(cli.port, null, 200);
    expect(second).toMatch(/^421 /);
    first.destroy();
    expect(await cli.stop()).toBe(0);
  });
});

describe("signals", () => {
  it.each(["SIGINT", "SIGTERM"] as const)("%s closes gracefully and exits 0", async (signal) => {
    const cli = await startCli(["-n", "-c", "Sink", "-l", "127.0.0.1:0"]);
    // An idle client connection is told 421 and closed; it does not hold up the exit.
    const idle = connect(cli.port, "127.0.0.1");
    let received = "";
    idle.setEncoding("utf8").on("data", (chunk: string) => {
      received += chunk;
    });
    await new Promise((resolve) => idle.once("data", resolve));
    expect(await cli.stop(signal)).toBe(0);
    await new Promise((resolve) => (idle.destroyed ? resolve(null) : idle.once("close", resolve)));
    expect(received).toMatch(/^220 /);
    expect(received).toMatch(/\r\n421 /);
  });
});

describe("setuid", () => {
  const isRoot = process.getuid?.() === 0;

  it.skipIf(!isRoot)(
    `as root without -n: binds, then runs as nobody${isRoot ? "" : " [skip: needs root]"}`,
    async () => {
      const cli = await startCli(["-c", "Sink", "-l", "127.0.0.1:0"]);
      const status = readFileSync(`/proc/${cli.child.pid}/status`, "utf8");
      const nobody = execFileSync("id", ["-u", "nobody"], { encoding: "utf8" }).trim();
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(nobody);
      const result = await send(cli.port, "ehlo");
      expect(result.refused).toEqual({});
      expect(await cli.stop()).toBe(0);
    },
  );

  it.skipIf(isRoot)(
    `not root, without -n: aiosmtpd's message, exit 1${isRoot ? " [skip: runs as root]" : ""}`,
    async () => {
      const result = await runCli(["-c", "Sink", "-l", "127.0.0.1:0"]);
      expect(result).toEqual({
        code: 1,
        stdout: "",
        stderr: 'Cannot setuid "nobody"; try running with -n option.\n',
      });
    },
  );
});
