/**
 * The built `smtpkit` command (apps/smtpd/dist/cli.js) with real clients: the Debugging handler's
 * output compared with aiosmtpd's own, Sink, -s, STARTTLS and SMTPS certificates, LMTP,
 * --max-connections, --command-call-limit and a clean exit on SIGINT.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CertFiles,
  CLI,
  type Daemon,
  freePort,
  killChildren,
  LOCALHOST,
  makeCert,
  RawClient,
  REPO,
  requireBuilt,
  requirePrograms,
  run,
  SYSTEM_PYTHON,
  startDaemon,
  swaksHasTls,
  tempDir,
  waitForPort,
} from "./helpers.js";

let cert: CertFiles;
let work: string;
const daemons: Daemon[] = [];

beforeAll(() => {
  requireBuilt();
  requirePrograms({ swaks: "swaks", curl: "curl", openssl: "openssl", [SYSTEM_PYTHON]: "python3" });
  if (!swaksHasTls()) throw new Error("swaks cannot do TLS: install Debian's libnet-ssleay-perl");
  cert = makeCert();
  work = tempDir();
});

afterEach(async () => {
  for (const daemon of daemons.splice(0)) await daemon.stop("SIGKILL");
});

afterAll(() => {
  cert?.cleanup();
  killChildren();
});

interface Cli {
  readonly daemon: Daemon;
  readonly port: number;
}

/** Starts `smtpkit -n -l 127.0.0.1:0 ARGS` and waits for its "listening" line on stderr. */
async function startCli(...args: string[]): Promise<Cli> {
  const daemon = startDaemon(process.execPath, [CLI, "-n", "-l", `${LOCALHOST}:0`, ...args]);
  daemons.push(daemon);
  const stderr = await daemon.waitFor("stderr", /listening on \S+:\d+/);
  const port = Number(/listening on \S+:(\d+)/.exec(stderr)?.[1]);
  return { daemon, port };
}

const swaks = (port: number, ...args: string[]) =>
  run("swaks", ["--server", `${LOCALHOST}:${port}`, "--timeout", "20", ...args]);

/** Sends one message over a raw socket from a known local port (for X-Peer). */
async function sendRaw(
  port: number,
  lines: string[],
): Promise<{ localPort: number; replies: string[] }> {
  const client = await RawClient.connect(port);
  const replies = [(await client.reply())?.join("\n") ?? "(none)"];
  let inData = false;
  for (const line of lines) {
    client.write(`${line}\r\n`);
    // Body lines get no reply: only commands and the final dot do.
    if (inData && line !== ".") continue;
    const reply = (await client.reply())?.join("\n") ?? "(none)";
    replies.push(reply);
    inData = reply.startsWith("354");
  }
  const localPort = client.socket.localPort ?? 0;
  client.close();
  return { localPort, replies };
}

const MESSAGE = [
  "From: anne@example.com",
  "Subject: A test",
  "",
  "Testing",
  "..a stuffed dot",
  "ünïcödé",
];
const TRANSACTION = [
  "EHLO client.example",
  "MAIL FROM:<anne@example.com> BODY=8BITMIME",
  "RCPT TO:<bart@example.org>",
  "DATA",
  ...MESSAGE.slice(0, 3),
  ...MESSAGE.slice(3),
  ".",
  "QUIT",
];

describe("smtpkit CLI", () => {
  it("-c Debugging prints aiosmtpd's format on stdout, as aiosmtpd's Debugging does", async () => {
    const ours = await startCli("-c", "Debugging");
    const sent = await sendRaw(ours.port, TRANSACTION);
    expect(sent.replies.slice(-2)).toEqual(["250 2.0.0 OK", "221 2.0.0 Bye"]);
    const expected = [
      "---------- MESSAGE FOLLOWS ----------",
      "mail options: ['BODY=8BITMIME']",
      "",
      "From: anne@example.com",
      "Subject: A test",
      `X-Peer: ('127.0.0.1', ${sent.localPort})`,
      "",
      "Testing",
      ".a stuffed dot",
      "ünïcödé",
      "------------ END MESSAGE ------------",
      "",
    ].join("\n");
    const stdout = await ours.daemon.waitFor("stdout", "END MESSAGE");
    expect(stdout).toBe(expected);

    // aiosmtpd's own Debugging handler, same dialog: the same text but for the peer's port.
    const port = await freePort();
    const theirs = startDaemon(SYSTEM_PYTHON, [
      "-m",
      "aiosmtpd",
      "-n",
      "-l",
      `${LOCALHOST}:${port}`,
    ]);
    daemons.push(theirs);
    await waitForPort(port);
    const sentToThem = await sendRaw(port, TRANSACTION);
    const theirOutput = await theirs.waitFor("stdout", "END MESSAGE");
    expect(theirOutput.replace(`, ${sentToThem.localPort})`, ", PORT)")).toBe(
      expected.replace(`, ${sent.localPort})`, ", PORT)"),
    );
  });

  it("-c Debugging with swaks: the message as swaks sent it, stdout only", async () => {
    const { daemon, port } = await startCli("-c", "Debugging");
    const localPort = await freePort();
    const result = await swaks(
      port,
      "--local-interface",
      LOCALHOST,
      "--local-port",
      String(localPort),
      "--from",
      "a@example.com",
      "--to",
      "b@example.org",
      "--data",
      "Subject: swaks\\nX-Test: yes\\n\\nbody line\\n",
    );
    expect(result.code, result.stdout).toBe(0);
    expect(await daemon.waitFor("stdout", "END MESSAGE")).toBe(
      [
        "---------- MESSAGE FOLLOWS ----------",
        "Subject: swaks",
        "X-Test: yes",
        `X-Peer: ('127.0.0.1', ${localPort})`,
        "",
        "body line",
        "",
        "------------ END MESSAGE ------------",
        "",
      ].join("\n"),
    );
    expect(daemon.stderr()).toMatch(
      /^smtpkit \S+ listening on 127\.0\.0\.1:\d+ \(SMTP, size 33554432, handler Debugging\)\n$/,
    );
  });

  it("-c Sink accepts and prints nothing", async () => {
    const { daemon, port } = await startCli("-c", "Sink");
    const result = await swaks(port, "--from", "a@example.com", "--to", "b@example.org");
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain("<-  250 2.0.0 OK");
    expect(daemon.stdout()).toBe("");
  });

  it("-s 100: SIZE 100 advertised; a bigger declared SIZE gets 552 (curl), bigger data too (swaks)", async () => {
    const { port } = await startCli("-c", "Sink", "-s", "100");
    const big = join(work, "big.eml");
    writeFileSync(big, `Subject: big\r\n\r\n${"x".repeat(200)}\r\n`);
    const curl = await run("curl", [
      "-sS",
      "-v",
      "--max-time",
      "20",
      `smtp://${LOCALHOST}:${port}`,
      "--mail-from",
      "a@example.com",
      "--mail-rcpt",
      "b@example.org",
      "--upload-file",
      big,
    ]);
    expect(curl.stderr).toContain("< 250-SIZE 100");
    expect(curl.stderr).toMatch(/> MAIL FROM:<a@example\.com> SIZE=\d+/);
    expect(curl.stderr).toContain(
      "< 552 5.3.4 Error: message size exceeds fixed maximum message size",
    );
    expect(curl.code).not.toBe(0);

    const result = await swaks(
      port,
      "--from",
      "a@example.com",
      "--to",
      "b@example.org",
      "--body",
      "y".repeat(300),
    );
    expect(result.stdout).toContain("<** 552 5.3.4 Error: Too much mail data");
    expect(result.code).not.toBe(0);
  });

  it("--tlscert/--tlskey: STARTTLS required (swaks without -tls gets 530), with -tls delivered", async () => {
    const { daemon, port } = await startCli(
      "-c",
      "Debugging",
      "--tlscert",
      cert.certPath,
      "--tlskey",
      cert.keyPath,
    );
    const clear = await swaks(port, "--from", "a@example.com", "--to", "b@example.org");
    expect(clear.stdout).toContain("<-  250-STARTTLS");
    expect(clear.stdout).toContain("<** 530 5.7.0 Must issue a STARTTLS command first");
    expect(clear.code).not.toBe(0);
    const secure = await swaks(
      port,
      "-tls",
      "--from",
      "a@example.com",
      "--to",
      "b@example.org",
      "--data",
      "Subject: over tls\\n\\nsecret\\n",
    );
    expect(secure.code, secure.stdout).toBe(0);
    expect(secure.stdout).toContain("<~  250 2.0.0 OK");
    const stdout = await daemon.waitFor("stdout", "END MESSAGE");
    expect(stdout).toContain("Subject: over tls\nX-Peer: ('127.0.0.1', ");
    expect(stdout.match(/MESSAGE FOLLOWS/g)).toHaveLength(1);
  });

  it("-dd logs both directions (> client, < server) and masks AUTH data", async () => {
    const users = join(work, "dd-users.txt");
    writeFileSync(users, "alice:wonderland\n");
    const { daemon, port } = await startCli(
      "-c",
      "Sink",
      "-dd",
      "--auth-file",
      users,
      "--no-auth-require-tls",
    );
    const auth = Buffer.from("\0alice\0wonderland").toString("base64");
    const { replies } = await sendRaw(port, [
      "EHLO client.example",
      `AUTH PLAIN ${auth}`,
      "MAIL FROM:<anne@example.com>",
      "NONSENSE",
      "QUIT",
    ]);
    expect(replies[2]).toMatch(/^235 /);
    const stderr = await daemon.waitFor("stderr", /< 221 /);
    expect(stderr).toMatch(/> EHLO client\.example/);
    expect(stderr).toMatch(/< 250-PIPELINING/);
    expect(stderr).toMatch(/> AUTH PLAIN \*{8}/);
    expect(stderr).toMatch(/< 235 2\.7\.0 Authentication successful/);
    expect(stderr).toMatch(/> MAIL FROM:<anne@example\.com>/);
    expect(stderr).toMatch(/< 250 2\.1\.0 OK/);
    expect(stderr).toMatch(/< 500 5\.5\.1 Error: command "NONSENSE" not recognized/);
    expect(stderr).not.toContain(auth);
    expect(stderr).not.toContain("wonderland");
  });

  it("--smtpscert/--smtpskey: implicit TLS with curl smtps://", async () => {
    const { daemon, port } = await startCli(
      "-c",
      "Debugging",
      "--smtpscert",
      cert.certPath,
      "--smtpskey",
      cert.keyPath,
    );
    const file = join(work, "smtps.eml");
    writeFileSync(file, "Subject: smtps\r\n\r\nover implicit TLS\r\n");
    const result = await run("curl", [
      "-sS",
      "-v",
      "-k",
      "--max-time",
      "20",
      `smtps://${LOCALHOST}:${port}`,
      "--mail-from",
      "a@example.com",
      "--mail-rcpt",
      "b@example.org",
      "--upload-file",
      file,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/SSL connection using TLSv1\.[23]/);
    // AUTH is offered: an implicit-TLS connection counts as encrypted (beyond.md).
    expect(result.stderr).toContain("< 250-AUTH LOGIN PLAIN");
    const stdout = await daemon.waitFor("stdout", "END MESSAGE");
    expect(stdout).toContain("Subject: smtps\nX-Peer: ('127.0.0.1', ");
    expect(stdout).toContain("\nover implicit TLS\n");
    // A plain-text client gets nothing useful.
    const plain = await run("curl", [
      "-sS",
      "--max-time",
      "2",
      `smtp://${LOCALHOST}:${port}`,
      "--mail-from",
      "a@example.com",
      "--mail-rcpt",
      "b@example.org",
      "--upload-file",
      file,
    ]);
    expect(plain.code).not.toBe(0);
  });

  it("--lmtp over TCP: LHLO, one reply per recipient (swaks --protocol LMTP)", async () => {
    const { daemon, port } = await startCli("-c", "Debugging", "--lmtp");
    const result = await swaks(
      port,
      "--protocol",
      "LMTP",
      "--from",
      "a@example.com",
      "--to",
      "one@example.org,two@example.org",
      "--data",
      "Subject: lmtp\\n\\nbody\\n",
    );
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain(" -> LHLO");
    expect(result.stdout).toContain("<-  250-PIPELINING");
    expect(result.stdout).toContain("<-  250-ENHANCEDSTATUSCODES");
    const dataReplies = result.stdout
      .slice(result.stdout.indexOf(" -> .\n"))
      .split("\n")
      .filter((line) => line.startsWith("<-  250 2.0.0"));
    expect(dataReplies).toHaveLength(2);
    expect(await daemon.waitFor("stdout", "END MESSAGE")).toContain("Subject: lmtp\n");
    const helo = await sendRaw(port, ["HELO client.example", "EHLO client.example", "QUIT"]);
    expect(helo.replies.slice(1)).toEqual([
      '500 5.5.1 Error: command "HELO" not recognized',
      '500 5.5.1 Error: command "EHLO" not recognized',
      "221 2.0.0 Bye",
    ]);
  });

  // The README documents `npx smtpkit -n --lmtp -l /var/run/lmtp.sock`: -l takes a path too.
  it("--lmtp -l /path/to.sock (README example): a Unix socket", async () => {
    const path = join(work, "cli-lmtp.sock");
    const daemon = startDaemon(process.execPath, [CLI, "-n", "--lmtp", "-c", "Sink", "-l", path]);
    daemons.push(daemon);
    await daemon.waitFor("stderr", /listening on/, 5_000);
    const result = await run("swaks", [
      "--socket",
      path,
      "--protocol",
      "LMTP",
      "--from",
      "a@example.com",
      "--to",
      "b@example.org",
    ]);
    expect(result.code, result.stdout).toBe(0);
  });

  it("--max-connections 1: a second client gets 421 while the first is connected", async () => {
    const { port } = await startCli("-c", "Sink", "--max-connections", "1");
    const first = await RawClient.connect(port);
    expect((await first.reply())?.join()).toMatch(/^220 /);
    const refused = await swaks(port, "--from", "a@example.com", "--to", "b@example.org");
    expect(refused.stdout).toMatch(/<\*\* 421 4\.7\.0 \S+ Error: too many connections/);
    expect(refused.code).not.toBe(0);
    expect((await first.command("QUIT"))?.join()).toBe("221 2.0.0 Bye");
    expect(await first.waitClosed()).toBe(true);
    // The slot is free again.
    const result = await swaks(port, "--from", "a@example.com", "--to", "b@example.org");
    expect(result.code, result.stdout).toBe(0);
  });

  it("--command-call-limit 2: the third RCPT gets 421 4.7.0 and the connection closes", async () => {
    const { port } = await startCli("-c", "Sink", "--command-call-limit", "2");
    const result = await swaks(
      port,
      "--from",
      "a@example.com",
      "--to",
      "one@example.org,two@example.org,three@example.org",
    );
    expect(result.stdout).toContain(" -> RCPT TO:<two@example.org>");
    expect(result.stdout).toContain("<** 421 4.7.0 RCPT sent too many times");
    expect(result.code).not.toBe(0);
    const raw = await sendRaw(port, ["NOOP", "NOOP", "NOOP"]);
    expect(raw.replies.slice(1)).toEqual([
      "250 2.0.0 OK",
      "250 2.0.0 OK",
      "421 4.7.0 NOOP sent too many times",
    ]);
  });

  it("SIGINT: an idle client gets 421, the process exits 0", async () => {
    const { daemon, port } = await startCli("-c", "Sink");
    const idle = await RawClient.connect(port);
    expect((await idle.reply())?.join()).toMatch(/^220 /);
    daemon.child.kill("SIGINT");
    expect((await idle.reply())?.join()).toMatch(/^421 4\.3\.2 \S+ Service shutting down$/);
    expect(await idle.waitClosed()).toBe(true);
    const exit = await daemon.exited;
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it("runs from the repository root as `node apps/smtpd/dist/cli.js` (npm start's command)", async () => {
    const result = await run(process.execPath, [CLI, "--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^smtpkit \d+\.\d+\.\d+/);
    expect(REPO).toBeTruthy();
  });
});
