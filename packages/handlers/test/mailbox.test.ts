/**
 * Mailbox: Maildir delivery over real sockets, read back with Python's `mailbox.Maildir`, compared
 * byte for byte with aiosmtpd's own Mailbox, and its crash safety.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SmtpServer, serve } from "@smtpkit/node";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Mailbox, UsageError, uniqueName } from "../src/index.js";
import {
  eventually,
  nodemailerTo,
  RawClient,
  readMaildir,
  smtplibSend,
  startAiosmtpd,
} from "./support.js";

const root = mkdtempSync(join(tmpdir(), "smtpkit-mailbox-"));
let count = 0;
const newDir = () => join(root, `box${++count}`);

const servers: SmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close({ timeout: 1000 })));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function start(handler: Mailbox, options: Parameters<typeof serve>[1] = {}) {
  const server = await serve(handler, { host: "127.0.0.1", port: 0, ...options });
  servers.push(server);
  return server;
}

const files = (dir: string) => readdirSync(dir).sort();

// aiosmtpd's TestMailbox messages.
const MESSAGES: [string, string, string][] = [
  [
    "aperson@example.com",
    "bperson@example.com",
    "Anne Person <anne@example.com>|Bart Person <bart@example.com>|<ant>|Hi Bart, this is Anne.",
  ],
  [
    "cperson@example.com",
    "dperson@example.com",
    "Cate Person <cate@example.com>|Dave Person <dave@example.com>|<bee>|Hi Dave, this is Cate.",
  ],
  [
    "eperson@example.com",
    "fperson@example.com",
    "Elle Person <elle@example.com>|Fred Person <fred@example.com>|<cat>|Hi Fred, this is Elle.",
  ],
];

function source(spec: string): string {
  const [from, to, id, body] = spec.split("|");
  return `From: ${from}\nTo: ${to}\nSubject: A test\nMessage-ID: ${id}\n\n${body}\n`;
}

describe("Mailbox", () => {
  it("test_mailbox: three messages, read back with Python's mailbox.Maildir", async () => {
    const dir = newDir();
    const server = await start(new Mailbox(dir));
    const socknames: string[] = [];
    for (const [from, to, spec] of MESSAGES) {
      const result = await smtplibSend(server.port, from, [to], source(spec));
      expect(result.refused).toEqual({});
      socknames.push(result.sockname as string);
    }
    const { messages, tmp } = await readMaildir(dir);
    expect(tmp).toEqual([]);
    expect(messages.map((m) => m.subdir)).toEqual(["new", "new", "new"]);
    const byId = new Map(messages.map((m) => [Object.fromEntries(m.headers)["Message-ID"], m]));
    expect([...byId.keys()].sort()).toEqual(["<ant>", "<bee>", "<cat>"]);
    const ant = Object.fromEntries(byId.get("<ant>")?.headers ?? []);
    expect(ant["X-Peer"]).toBe(socknames[0]);
    expect(ant["X-MailFrom"]).toBe("aperson@example.com");
    expect(ant["X-RcptTo"]).toBe("bperson@example.com");
    expect(byId.get("<ant>")?.payload).toBe("Hi Bart, this is Anne.\n");
    // Unix line endings, like Python's Maildir.add().
    expect(byId.get("<ant>")?.bytes).not.toContain("\r");
    for (const m of messages) {
      expect(m.key).toMatch(/^\d+\.M\d+P\d+Q\d+R[0-9a-f]{8}\.[^/:]+$/);
      expect(statSync(join(dir, "new", m.key)).mode & 0o777).toBe(0o600);
    }
  });

  it("writes what aiosmtpd's Mailbox writes, byte for byte", async () => {
    const ours = newDir();
    const theirs = newDir();
    // aiosmtpd's Mailbox adds no trace fields.
    const server = await start(new Mailbox(ours, { traceHeaders: false }));
    const aiosmtpd = await startAiosmtpd(["aiosmtpd.handlers.Mailbox", theirs]);
    const cases = [
      source(MESSAGES[0]?.[2] as string),
      "Subject: no separator\nbody line: looks like a header but is not first\n",
      "Subject: x\nbody line without separator\nsecond\n",
      "Subject: folded\n  continuation\n\tmore\nX-Other: y\n\nbody\n\n\ntrailing empty lines\n",
      "",
      "\nbody only\n",
      "From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: mbox From_ line\n\nbody\n",
      "Subject: dots\n\n.\n..\n.leading dot\nFrom inside the body\n",
      "Subject: no final newline\n\nlast line",
    ];
    try {
      for (const [i, text] of cases.entries()) {
        const a = await smtplibSend(
          server.port,
          "anne@example.com",
          [`r${i}@example.com`, "z@example.com"],
          text,
        );
        const b = await smtplibSend(
          aiosmtpd.port,
          "anne@example.com",
          [`r${i}@example.com`, "z@example.com"],
          text,
        );
        expect([a.refused, b.refused]).toEqual([{}, {}]);
      }
    } finally {
      await aiosmtpd.stop();
    }
    const peerless = (bytes: string) => bytes.replace(/^X-Peer: .*$/m, "X-Peer: PEER");
    const mine = (await readMaildir(ours)).messages;
    const python = (await readMaildir(theirs)).messages;
    const order = (list: typeof mine) =>
      list
        .map((m) => peerless(m.bytes))
        .sort(
          (x, y) =>
            /X-RcptTo: r(\d+)/
              .exec(x)?.[1]
              ?.localeCompare(/X-RcptTo: r(\d+)/.exec(y)?.[1] ?? "", undefined, {
                numeric: true,
              }) ?? 0,
        );
    expect(order(mine)).toEqual(order(python));
    expect(mine).toHaveLength(cases.length);
  });

  it("lineEndings: 'received' stores the bytes as received; addHeaders and traceHeaders false add nothing", async () => {
    const dir = newDir();
    const server = await start(
      new Mailbox(dir, { lineEndings: "received", addHeaders: false, traceHeaders: false }),
    );
    await smtplibSend(server.port, "a@example.com", ["b@example.com"], "Subject: crlf\n\nline\n");
    const [message] = (await readMaildir(dir)).messages;
    expect(message?.bytes).toBe("Subject: crlf\r\n\r\nline\r\n");
  });

  it("Nodemailer, 20 messages at once: 20 files, each complete and distinct", async () => {
    const dir = newDir();
    const server = await start(new Mailbox(dir));
    const transport = nodemailerTo(server.port);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        transport.sendMail({
          from: "a@example.com",
          to: "b@example.com",
          subject: `message ${i}`,
          text: `body ${i}\n`.repeat(1000),
        }),
      ),
    );
    const { messages, tmp } = await readMaildir(dir);
    expect(tmp).toEqual([]);
    expect(new Set(messages.map((m) => Object.fromEntries(m.headers).Subject))).toEqual(
      new Set(Array.from({ length: 20 }, (_, i) => `message ${i}`)),
    );
    for (const m of messages) {
      const i = /message (\d+)/.exec(Object.fromEntries(m.headers).Subject ?? "")?.[1];
      expect(m.payload).toBe(`body ${i}\n`.repeat(1000));
    }
  });

  it("a 12 MB message is streamed to disk intact", async () => {
    const dir = newDir();
    const server = await start(new Mailbox(dir, { lineEndings: "received" }), { dataSizeLimit: 0 });
    const line = `${"0123456789abcdef".repeat(4)}\r\n`;
    const body = line.repeat(Math.ceil((12 * 1024 * 1024) / line.length));
    await nodemailerTo(server.port).sendMail({
      envelope: { from: "a@example.com", to: ["b@example.com"] },
      raw: `Subject: big\r\n\r\n${body}`,
    });
    const [key] = files(join(dir, "new"));
    const stored = readFileSync(join(dir, "new", key as string));
    const bodyStart = stored.indexOf("\r\n\r\n") + 4;
    const digest = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
    expect(digest(stored.subarray(bodyStart))).toBe(digest(body));
    expect(stored.subarray(0, bodyStart).toString()).toMatch(
      /^Return-Path: <a@example\.com>\r\nReceived: from .* for <b@example\.com>; .*\r\nSubject: big\r\nX-Peer: .*\r\nX-MailFrom: a@example.com\r\nX-RcptTo: b@example.com\r\n\r\n$/,
    );
  });

  it("LMTP: 250 for every recipient once the message is on disk", async () => {
    const dir = newDir();
    const server = await start(new Mailbox(dir), { lmtp: true });
    const result = await smtplibSend(
      server.port,
      "a@example.com",
      ["b@example.com", "c@example.com"],
      "Subject: lmtp\n\nhi\n",
      { lmtp: true },
    );
    expect(result.refused).toEqual({});
    expect((await readMaildir(dir)).messages).toHaveLength(1);
  });

  it("reset() (test_mailbox_reset) and keys()", async () => {
    const dir = newDir();
    const mailbox = new Mailbox(dir);
    const server = await start(mailbox);
    await smtplibSend(
      server.port,
      "a@example.com",
      ["b@example.com"],
      source(MESSAGES[0]?.[2] as string),
    );
    expect(await mailbox.keys()).toHaveLength(1);
    await mailbox.reset();
    expect(await mailbox.keys()).toEqual([]);
    expect((await readMaildir(dir)).messages).toEqual([]);
  });

  it("unique names: distinct, with the host name's / and : escaped", () => {
    const names = new Set(Array.from({ length: 1000 }, () => uniqueName()));
    expect(names.size).toBe(1000);
    for (const name of names) expect(name).not.toMatch(/[/:]/);
  });
});

describe("Mailbox crash safety: no partial message in new/, nothing left in tmp/", () => {
  /** Fails the second write to the file, after a first 256 KiB went to disk. */
  class FailingDisk extends Mailbox {
    writes = 0;
    protected override async writeChunk(file: FileHandle, data: Uint8Array): Promise<void> {
      if (++this.writes === 2) {
        throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
      }
      await super.writeChunk(file, data);
    }
  }

  it("a write error mid-message: 451 4.3.0, tmp file removed; the next message works", async () => {
    const dir = newDir();
    const mailbox = new FailingDisk(dir);
    const server = await start(mailbox);
    const client = await RawClient.connect(server.port);
    await client.startData("a@example.com", ["b@example.com"]);
    await client.write(`Subject: big\r\n\r\n${"x".repeat(998)}\r\n`.repeat(600));
    await client.write(".\r\n");
    expect(await client.reply()).toBe("451 4.3.0 Error: cannot store the message (ENOSPC)");
    expect(mailbox.writes).toBe(2);
    expect(files(join(dir, "new"))).toEqual([]);
    expect(files(join(dir, "tmp"))).toEqual([]);
    // The session goes on; the next message is stored.
    expect(await client.command("MAIL FROM:<a@example.com>")).toMatch(/^250/);
    expect(await client.command("RCPT TO:<b@example.com>")).toMatch(/^250/);
    expect(await client.command("DATA")).toMatch(/^354/);
    expect(await client.command("Subject: small\r\n\r\nok\r\n.")).toBe("250 2.0.0 OK");
    expect(files(join(dir, "new"))).toHaveLength(1);
    client.destroy();
  });

  it("the client hangs up mid-DATA: the partial file is removed, nothing reaches new/", async () => {
    const dir = newDir();
    const server = await start(new Mailbox(dir));
    const client = await RawClient.connect(server.port);
    await client.startData("a@example.com", ["b@example.com"]);
    await client.write(`Subject: cut\r\n\r\n${"y".repeat(998)}\r\n`.repeat(2000));
    // Part of it is on disk by now.
    await eventually(() => files(join(dir, "tmp")).length === 1);
    client.destroy();
    await eventually(() => files(join(dir, "tmp")).length === 0);
    expect(files(join(dir, "new"))).toEqual([]);
    expect((await readMaildir(dir)).messages).toEqual([]);
  });

  it("over the size limit mid-DATA: 552, and no file anywhere", async () => {
    const dir = newDir();
    const server = await start(new Mailbox(dir), { dataSizeLimit: 10_000 });
    const client = await RawClient.connect(server.port);
    await client.startData("a@example.com", ["b@example.com"]); // no SIZE= announced
    await client.write(`Subject: s\r\n\r\n${"z".repeat(900)}\r\n`.repeat(30));
    expect(await client.command(".")).toMatch(/^552 /);
    await eventually(() => files(join(dir, "tmp")).length === 0);
    expect(files(join(dir, "new"))).toEqual([]);
    client.destroy();
  });
});

describe("Mailbox.fromCli (aiosmtpd's TestCLI)", () => {
  it("no directory", () => {
    expect(() => Mailbox.fromCli([])).toThrow(
      new UsageError("The directory for the maildir is required"),
    );
  });
  it("too many arguments", () => {
    expect(() => Mailbox.fromCli(["foo", "bar", "baz"])).toThrow(
      new UsageError("Too many arguments for Mailbox handler"),
    );
  });
  it("one directory: created as a Maildir (tmp, new, cur; mode 0700)", () => {
    const dir = newDir();
    const mailbox = Mailbox.fromCli([dir]);
    expect(mailbox).toBeInstanceOf(Mailbox);
    expect(mailbox.mailDir).toBe(dir);
    expect(files(dir)).toEqual(["cur", "new", "tmp"]);
    expect(statSync(join(dir, "new")).mode & 0o777).toBe(0o700);
  });
});
