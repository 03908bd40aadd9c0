/**
 * smtpkit behind a real load balancer: HAProxy in TCP mode with `send-proxy-v2` and SMTP health
 * checks in front of two `smtpkit -c Mailbox` instances that trust only the balancer. Clients
 * connect from 127.0.0.2, so the balancer's address (127.0.0.1) and theirs differ.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import nodemailer from "nodemailer";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CLI,
  type Daemon,
  freePort,
  killChildren,
  LOCALHOST,
  RawClient,
  replyText,
  requireBuilt,
  requirePrograms,
  sleep,
  startDaemon,
  tempDir,
} from "./helpers.js";

const CLIENT_ADDRESS = "127.0.0.2";
const daemons: Daemon[] = [];

beforeAll(() => {
  requireBuilt();
  requirePrograms({ haproxy: "haproxy" });
});

afterEach(async () => {
  for (const daemon of daemons.splice(0)) await daemon.stop("SIGKILL");
});

afterAll(() => killChildren());

interface Instance {
  readonly daemon: Daemon;
  readonly port: number;
  readonly maildir: string;
}

/** `smtpkit -c Mailbox DIR` taking PROXY v2 headers from the balancer only. */
async function startInstance(...extra: string[]): Promise<Instance> {
  const maildir = join(tempDir("smtpkit-lb-"), "Maildir");
  const port = await freePort();
  const daemon = startDaemon(process.execPath, [
    CLI,
    "-n",
    "-l",
    `${LOCALHOST}:${port}`,
    "--proxy-protocol",
    "5",
    "--proxy-trust",
    `${LOCALHOST}/32`,
    "--proxy-untrusted",
    "refuse",
    ...extra,
    "-c",
    "Mailbox",
    maildir,
  ]);
  daemons.push(daemon);
  await daemon.waitFor("stderr", /listening on /);
  return { daemon, port, maildir };
}

/** The configuration the README shows, with the ports of this run. */
function haproxyConfig(front: number, backends: readonly Instance[]): string {
  return `global
  maxconn 1000

defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch

frontend smtp
  bind ${LOCALHOST}:${front}
  default_backend smtpkit

backend smtpkit
  balance roundrobin
  option smtpchk EHLO haproxy.test
${backends
  .map(
    (b, i) =>
      `  server mx${i + 1} ${LOCALHOST}:${b.port} send-proxy-v2 check check-send-proxy inter 300 fall 1 rise 2`,
  )
  .join("\n")}
`;
}

async function startHaproxy(backends: readonly Instance[]): Promise<number> {
  const front = await freePort();
  const config = join(tempDir("smtpkit-haproxy-"), "haproxy.cfg");
  writeFileSync(config, haproxyConfig(front, backends));
  const daemon = startDaemon("haproxy", ["-db", "-f", config]);
  daemons.push(daemon);
  // Ready when the frontend accepts and every backend passed its health checks.
  for (let i = 0; i < 100; i++) {
    if (await throughBalancer(front, "ready@example.com", "ready").catch(() => false)) break;
    await sleep(100);
  }
  await sleep(1000);
  return front;
}

/** One message through the balancer from 127.0.0.2; resolves with the reply, rejects on failure. */
async function throughBalancer(port: number, to: string, subject: string): Promise<string> {
  const transport = nodemailer.createTransport({
    host: LOCALHOST,
    port,
    localAddress: CLIENT_ADDRESS,
    connectionTimeout: 5000,
    greetingTimeout: 5000,
  });
  const info = await transport.sendMail({
    from: "anne@example.com",
    to,
    subject,
    text: `message ${subject}`,
  });
  return info.response;
}

function stored(instance: Instance): string[] {
  const dir = join(instance.maildir, "new");
  return readdirSync(dir).map((name) => readFileSync(join(dir, name), "utf8"));
}

const subjectOf = (message: string) => /^Subject: (.*)$/m.exec(message)?.[1]?.trim() ?? "";

describe("behind HAProxy with send-proxy-v2", () => {
  it("spreads clients over both instances, and each message names the client, not the balancer", async () => {
    const a = await startInstance();
    const b = await startInstance();
    const front = await startHaproxy([a, b]);
    for (let i = 0; i < 10; i++) {
      expect(await throughBalancer(front, "bart@example.org", `spread-${i}`)).toMatch(/^250 /);
    }
    const messages = [...stored(a), ...stored(b)].filter((m) => subjectOf(m).startsWith("spread-"));
    expect(messages).toHaveLength(10);
    expect(stored(a).some((m) => subjectOf(m).startsWith("spread-"))).toBe(true);
    expect(stored(b).some((m) => subjectOf(m).startsWith("spread-"))).toBe(true);
    for (const message of messages) {
      const peer = /^X-Peer: (.*)$/m.exec(message)?.[1] ?? "";
      expect(peer).toContain(CLIENT_ADDRESS);
      // The trace header names the client too (RFC 5321 §4.4: its address in brackets).
      expect(message).toMatch(/^Received: from \S+ \((?:\S+ )?\[127\.0\.0\.2\]\)/m);
    }
  });

  it("refuses a client that connects to an instance directly (not through the trusted balancer)", async () => {
    const a = await startInstance();
    const client = await RawClient.connect(a.port, { localAddress: CLIENT_ADDRESS });
    expect(replyText(await client.reply())).toBe(
      "554 5.7.1 Error: connections are accepted only through a trusted proxy",
    );
    client.write("MAIL FROM:<anne@example.com>\r\n");
    expect(replyText(await client.reply())).toMatch(/^503 5\.5\.1 /);
    client.write("QUIT\r\n");
    expect(replyText(await client.reply())).toMatch(/^221 /);
    client.close();
    expect(readdirSync(join(a.maildir, "new"))).toEqual([]);
  });

  it("connection policy counts the client's address, not the balancer's", async () => {
    const a = await startInstance("--max-connections-per-ip", "1");
    const front = await startHaproxy([a]);
    const first = await RawClient.connect(front, { localAddress: CLIENT_ADDRESS });
    expect(replyText(await first.reply())).toMatch(/^220 /);
    // The same client again: over its limit of one connection.
    const second = await RawClient.connect(front, { localAddress: CLIENT_ADDRESS });
    expect(replyText(await second.reply())).toMatch(/^421 4\.7\.0 /);
    second.close();
    // Another client behind the same balancer has its own budget.
    const other = await RawClient.connect(front, { localAddress: "127.0.0.3" });
    expect(replyText(await other.reply())).toMatch(/^220 /);
    other.write("QUIT\r\n");
    expect(replyText(await other.reply())).toMatch(/^221 /);
    other.close();
    first.write("QUIT\r\n");
    expect(replyText(await first.reply())).toMatch(/^221 /);
    first.close();
  });

  it("loses no accepted message when one instance is stopped (SIGTERM) mid-load", async () => {
    const a = await startInstance();
    const b = await startInstance();
    const front = await startHaproxy([a, b]);
    const total = 120;
    const accepted = new Set<string>();
    const failed: { subject: string; error: string }[] = [];
    let next = 0;
    let stopping: Promise<unknown> | null = null;
    const sender = async () => {
      while (next < total) {
        const subject = `load-${next++}`;
        try {
          const reply = await throughBalancer(front, "bart@example.org", subject);
          if (/^250 /.test(reply)) accepted.add(subject);
          else failed.push({ subject, error: reply });
        } catch (error) {
          failed.push({ subject, error: String((error as Error).message) });
        }
        if (accepted.size >= 30 && stopping === null) stopping = a.daemon.stop("SIGTERM");
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    const exit = await stopping;
    // A graceful stop: the drained instance exits by itself, with status 0.
    expect(exit).toEqual({ code: 0, signal: null });
    // What a client was refused, it sends again (4xx or a dropped connection: never a 5xx).
    for (const { subject, error } of failed) {
      expect(error).not.toMatch(/\b5\d\d\b/);
      let reply = "";
      for (let attempt = 0; attempt < 5 && !/^250 /.test(reply); attempt++) {
        reply = await throughBalancer(front, "bart@example.org", subject).catch(() => "");
        if (!/^250 /.test(reply)) await sleep(300);
      }
      expect(reply).toMatch(/^250 /);
      accepted.add(subject);
    }
    const subjects = [...stored(a), ...stored(b)]
      .map(subjectOf)
      .filter((s) => s.startsWith("load-"));
    // Every message that got a 250 is stored, exactly once.
    for (const subject of accepted) expect(subjects.filter((s) => s === subject)).toHaveLength(1);
    expect(accepted.size).toBe(total);
    expect(stored(a).some((m) => subjectOf(m).startsWith("load-"))).toBe(true);
  }, 120_000);
});
