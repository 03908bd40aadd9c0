/**
 * The storage and relaying handlers from the command line, end to end: the built CLI in a child
 * process (`-c Mailbox DIR`, `-c Proxy HOST PORT`), Python's smtplib and Nodemailer as clients,
 * the Maildir read back with Python's `mailbox.Maildir`, aiosmtpd itself as an upstream.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Memory } from "@smtpkit/handlers";
import { serve } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, killAll, runCli, startCli } from "./cli-helpers.js";

/** Debian's python3, which has python3-aiosmtpd. */
const PYTHON = "/usr/bin/python3";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "smtpkit-cli-handlers-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => killAll());

function py<T>(script: string, args: readonly (string | number)[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      ["-c", script, ...args.map(String)],
      { timeout: 30_000 },
      (error, out, err) => {
        if (error) reject(new Error(`${error.message}\n${err}`));
        else resolve(JSON.parse(out) as T);
      },
    );
  });
}

const SEND = `
import json, smtplib, sys
client = smtplib.SMTP(sys.argv[1], int(sys.argv[2]))
result = {"sockname": repr(client.sock.getsockname())}
try:
    result["refused"] = {k: [v[0], v[1].decode()] for k, v in client.sendmail(sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]).items()}
except smtplib.SMTPResponseException as e:
    result["error"] = [type(e).__name__, e.smtp_code, e.smtp_error.decode()]
client.quit()
print(json.dumps(result))
`;

interface Sent {
  sockname: string;
  refused?: Record<string, [number, string]>;
  error?: [string, number, string];
}

const send = (port: number, to: string[], message: string, from = "anne@example.com") =>
  py<Sent>(SEND, ["127.0.0.1", port, from, JSON.stringify(to), message]);

const READ_MAILDIR = `
import json, mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
print(json.dumps(sorted(([[k, str(v)] for k, v in m.items()], m.get_payload()) for m in box)))
`;

const readMaildir = (path: string) => py<[[string, string][], string][]>(READ_MAILDIR, [path]);

const MESSAGE =
  "From: Anne Person <anne@example.com>\nTo: Bart Person <bart@example.com>\nSubject: A test\nMessage-ID: <ant>\n\nHi Bart, this is Anne.\n";

describe("-c Mailbox DIR", () => {
  it("delivers into the Maildir; Python's mailbox.Maildir reads it", async () => {
    const box = join(dir, "box1");
    const cli = await startCli(["-n", "-l", "127.0.0.1:0", "-c", "Mailbox", box]);
    expect(cli.banner).toMatch(/ \(SMTP, size 33554432, handler Mailbox\)$/);
    const sent = await send(cli.port, ["bart@example.com"], MESSAGE);
    expect(sent.refused).toEqual({});
    const messages = await readMaildir(box);
    expect(messages).toHaveLength(1);
    const [headers, payload] = messages[0] as [[string, string][], string];
    expect(headers).toEqual([
      ["Return-Path", "<anne@example.com>"],
      [
        "Received",
        expect.stringMatching(
          /^from \S+ \(\[127\.0\.0\.1\]\) by \S+ with ESMTP id \S+ for <bart@example\.com>; /,
        ),
      ],
      ["From", "Anne Person <anne@example.com>"],
      ["To", "Bart Person <bart@example.com>"],
      ["Subject", "A test"],
      ["Message-ID", "<ant>"],
      ["X-Peer", sent.sockname],
      ["X-MailFrom", "anne@example.com"],
      ["X-RcptTo", "bart@example.com"],
    ]);
    expect(payload).toBe("Hi Bart, this is Anne.\n");
    expect(await cli.stop()).toBe(0);
  });

  it("aiosmtpd's dotted name, a relative DIR (from the cwd), and Nodemailer", async () => {
    const cli = await startCli(
      ["-n", "-l", "127.0.0.1:0", "-c", "aiosmtpd.handlers.Mailbox", "box2"],
      { cwd: dir },
    );
    const transport = nodemailer.createTransport({
      host: "127.0.0.1",
      port: cli.port,
      ignoreTLS: true,
    });
    await transport.sendMail({
      from: "a@example.com",
      to: "b@example.com",
      subject: "nm",
      text: "x",
    });
    const messages = await readMaildir(join(dir, "box2"));
    expect(messages.map(([headers]) => Object.fromEntries(headers).Subject)).toEqual(["nm"]);
    await cli.stop();
  });

  it("usage errors are aiosmtpd's, exit code 2", async () => {
    for (const [args, message] of [
      [["-c", "Mailbox"], "The directory for the maildir is required"],
      [["-c", "Mailbox", "a", "b", "c"], "Too many arguments for Mailbox handler"],
      [["-c", "Proxy", "host"], "Proxy usage: HOST PORT [transparent|atData]"],
      [
        ["-c", "Proxy", "host", "25", "x"],
        "Invalid mode for Proxy handler: x (transparent or atData)",
      ],
      [["-c", "Proxy", "host", "25", "atData", "x"], "Too many arguments for Proxy handler"],
      [["-c", "Proxy", "host", "smtp"], "Invalid port for Proxy handler: smtp"],
      [
        ["-c", "Message"],
        "Message is an abstract handler: subclass it (handleMessage) in a module and pass -c ./my-handler.js",
      ],
    ] as const) {
      const result = await runCli(["-n", "-l", "127.0.0.1:0", ...args]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`smtpkit: error: ${message}\n`);
    }
  });

  it("a crash mid-DATA (SIGKILL) leaves no message in new/: a Maildir reader sees nothing", async () => {
    const box = join(dir, "box3");
    const cli = await startCli(["-n", "-l", "127.0.0.1:0", "-s", "0", "-c", "Mailbox", box]);
    const socket = connect(cli.port, "127.0.0.1");
    socket.on("error", () => undefined);
    const write = (data: string) =>
      new Promise<void>((resolve) => socket.write(data, () => resolve()));
    await new Promise((resolve) => socket.once("data", resolve));
    await write("EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    await write("Subject: half\r\n\r\n");
    const line = `${"z".repeat(998)}\r\n`;
    for (let i = 0; i < 2000; i++) await write(line);
    // Some of it reached the disk, in tmp/.
    const deadline = Date.now() + 5000;
    while (readdirSync(join(box, "tmp")).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(readdirSync(join(box, "tmp"))).toHaveLength(1);
    expect(await cli.stop("SIGKILL")).toBe("SIGKILL");
    socket.destroy();
    expect(readdirSync(join(box, "new"))).toEqual([]);
    expect(await readMaildir(box)).toEqual([]);
  });
});

describe("-c Proxy HOST PORT", () => {
  it("relays to aiosmtpd (its Mailbox), envelope and X-Peer as aiosmtpd's Proxy", async () => {
    const box = join(dir, "upstream-box");
    const port = await freePort();
    const upstream: ChildProcess = spawn(
      PYTHON,
      ["-m", "aiosmtpd", "-n", "-l", `127.0.0.1:${port}`, "-c", "aiosmtpd.handlers.Mailbox", box],
      { stdio: "ignore" },
    );
    try {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const up = await new Promise<boolean>((resolve) => {
          const s = connect(port, "127.0.0.1", () => {
            s.destroy();
            resolve(true);
          });
          s.on("error", () => resolve(false));
        });
        if (up) break;
        if (Date.now() > deadline) throw new Error("aiosmtpd did not start");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const cli = await startCli([
        "-n",
        "-l",
        "127.0.0.1:0",
        "-c",
        "Proxy",
        "127.0.0.1",
        String(port),
      ]);
      expect(cli.banner).toMatch(/, handler Proxy\)$/);
      const sent = await send(cli.port, ["bart@example.com", "carl@example.com"], MESSAGE);
      expect(sent.refused).toEqual({});
      const [[headers, payload]] = (await readMaildir(box)) as [[[string, string][], string]];
      const get = (name: string) => headers.filter(([k]) => k === name).map(([, v]) => v);
      expect(get("Subject")).toEqual(["A test"]);
      // smtpkit's Proxy adds the client's IP; aiosmtpd's Mailbox then adds its own three fields.
      expect(get("X-Peer")).toEqual([
        "127.0.0.1",
        expect.stringMatching(/^\('127\.0\.0\.1', \d+\)$/),
      ]);
      expect(get("X-MailFrom")).toEqual(["anne@example.com"]);
      expect(get("X-RcptTo")).toEqual(["bart@example.com, carl@example.com"]);
      // This hop's trace line (two recipients: no `for`); aiosmtpd's Mailbox adds none.
      expect(get("Received")).toEqual([
        expect.stringMatching(/^from \S+ \(\[127\.0\.0\.1\]\) by /),
      ]);
      expect(payload).toBe("Hi Bart, this is Anne.\n");
      await cli.stop();
    } finally {
      upstream.kill("SIGTERM");
    }
  });

  it("upstream refusals reach the client; an unreachable upstream is 451 4.4.1", async () => {
    const memory = new Memory().rejectRecipient("nobody@example.com", "550 5.1.1 No such user");
    const upstream = await serve(memory, { host: "127.0.0.1", port: 0 });
    try {
      const cli = await startCli([
        "-n",
        "-l",
        "127.0.0.1:0",
        "-c",
        "Proxy",
        "127.0.0.1",
        String(upstream.port),
      ]);
      // The default (transparent) Proxy: the upstream's refusal is the reply to that RCPT, and
      // the message goes to the other recipient.
      const partly = await send(cli.port, ["nobody@example.com", "bart@example.com"], MESSAGE);
      expect(partly.refused).toEqual({ "nobody@example.com": [550, "5.1.1 No such user"] });
      expect(memory.all.map((m) => [m.subject, m.rcptTos])).toEqual([
        ["A test", ["bart@example.com"]],
      ]);
      await cli.stop();
    } finally {
      await upstream.close({ timeout: 1000 });
    }
    const closed = await freePort();
    const cli = await startCli([
      "-n",
      "-l",
      "127.0.0.1:0",
      "-c",
      "Proxy",
      "127.0.0.1",
      String(closed),
    ]);
    const failed = await send(cli.port, ["bart@example.com"], MESSAGE);
    // Transparent: the upstream is needed from MAIL on.
    expect(failed.error?.slice(0, 2)).toEqual(["SMTPSenderRefused", 451]);
    expect(failed.error?.[2]).toMatch(/^4\.4\.1 /);
    await cli.stop();
  });
});
