import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import { type SmtpServer, serve } from "@smtpkit/node";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consumeToMaildir, HEADERS, JetStream, parseEnvelopeRecord } from "../src/index.js";
import { freePort, NatsServer, natsServerMissing } from "./nats-server.js";

interface StoredMessage {
  readonly id: string;
  readonly headers: Map<string, string>;
  readonly data: Uint8Array;
}

/** Every message in the stream, in order, read with an ordered consumer. */
async function readStream(nc: NatsConnection, stream: string): Promise<StoredMessage[]> {
  const jsm = await jetstreamManager(nc);
  const total = (await jsm.streams.info(stream)).state.messages;
  const out: StoredMessage[] = [];
  if (total === 0) return out;
  const consumer = await jetstream(nc).consumers.get(stream);
  const messages = await consumer.consume();
  for await (const msg of messages) {
    const headers = new Map<string, string>();
    for (const [key, values] of msg.headers ?? []) headers.set(key, values[0] ?? "");
    out.push({ id: msg.headers?.get("Nats-Msg-Id") ?? "", headers, data: msg.data });
    if (msg.info.pending === 0) break;
  }
  await messages.close();
  return out;
}

function transport(port: number, pool = false) {
  return nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    pool,
    maxConnections: 5,
    maxMessages: Number.POSITIVE_INFINITY,
  });
}

const raw = (seq: number | string, body = "hello") =>
  `From: a@example.com\r\nTo: b@example.com\r\nSubject: m ${seq}\r\nX-Test-Seq: ${seq}\r\n\r\n${body}\r\n`;

describe.skipIf(natsServerMissing)("JetStream handler against a real nats-server", () => {
  const nats = new NatsServer();
  let handler: JetStream;
  let smtp: SmtpServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    await nats.start();
    handler = new JetStream({ servers: nats.url, subject: "mail.in", timeout: 2000 });
    smtp = await serve(handler, { host: "127.0.0.1", port: 0 });
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  });
  afterAll(async () => {
    await smtp?.close();
    await handler?.close();
    await nc?.close();
    await nats.dispose();
  });

  it("creates the stream and publishes envelope and message, 250 after the ack", async () => {
    const info = await transport(smtp.port).sendMail({
      envelope: { from: "alice@example.com", to: ["bob@example.com", "carol@example.com"] },
      raw: raw("first"),
    });
    expect(info.response).toMatch(/^250 /);
    const jsm = await jetstreamManager(nc);
    const stream = await jsm.streams.info("MAIL_IN");
    expect(stream.config.subjects).toEqual(["mail.in"]);
    expect(stream.config.retention).toBe("limits");
    const [stored] = await readStream(nc, "MAIL_IN");
    expect(stored?.id).toMatch(/^[0-9a-f]{64}$/);
    const record = parseEnvelopeRecord(stored?.headers.get(HEADERS.envelope) ?? "");
    expect(record.mailFrom).toBe("alice@example.com");
    expect(record.rcptTos).toEqual(["bob@example.com", "carol@example.com"]);
    expect(record.peer?.address).toBe("127.0.0.1");
    expect(record.hostName).toBeTruthy();
    expect(new TextDecoder().decode(stored?.data)).toBe(raw("first"));
  });

  it("stores the same transaction once (Nats-Msg-Id), a different one again", async () => {
    const mail = { envelope: { from: "d@example.com", to: ["e@example.com"] }, raw: raw("dup") };
    const before = (await (await jetstreamManager(nc)).streams.info("MAIL_IN")).state.messages;
    await transport(smtp.port).sendMail(mail);
    await transport(smtp.port).sendMail(mail);
    await transport(smtp.port).sendMail({ ...mail, raw: raw("dup", "other body") });
    const after = (await (await jetstreamManager(nc)).streams.info("MAIL_IN")).state.messages;
    expect(after - before).toBe(2);
  });

  it("streams a 5 MB message through the object store, with a pointer in the stream", async () => {
    const bulk = randomBytes(5 * 1024 * 1024 * 0.75)
      .toString("base64")
      .replace(/.{76}/g, "$&\r\n");
    const message = raw("large", bulk);
    const info = await transport(smtp.port).sendMail({
      envelope: { from: "big@example.com", to: ["bob@example.com"] },
      raw: message,
    });
    expect(info.response).toMatch(/^250 /);
    const all = await readStream(nc, "MAIL_IN");
    const pointer = all.find((m) => m.headers.get(HEADERS.objectName));
    expect(pointer).toBeDefined();
    expect(pointer?.data.length).toBe(0);
    expect(pointer?.headers.get(HEADERS.objectBucket)).toBe("MAIL_IN_BODIES");
    expect(Number(pointer?.headers.get(HEADERS.size))).toBe(Buffer.byteLength(message));
    const store = await new Objm(nc).open("MAIL_IN_BODIES");
    const body = await store.getBlob(pointer?.headers.get(HEADERS.objectName) ?? "");
    expect(Buffer.from(body ?? []).equals(Buffer.from(message))).toBe(true);

    // The consumer delivers both kinds to a Maildir, acknowledging after the fsync.
    const mailDir = mkdtempSync(join(tmpdir(), "smtpkit-maildir-"));
    try {
      const delivered: string[] = [];
      const consumer = await consumeToMaildir({
        connection: nc,
        stream: "MAIL_IN",
        mailDir,
        onDelivered: (delivery) => delivered.push(delivery.path),
      });
      const deadline = Date.now() + 20_000;
      while (delivered.length < all.length && Date.now() < deadline) await sleep(50);
      await consumer.stop();
      expect(delivered.length).toBe(all.length);
      const files = readdirSync(join(mailDir, "new")).map((name) =>
        readFileSync(join(mailDir, "new", name), "latin1"),
      );
      const large = files.find((text) => text.includes("X-Test-Seq: large"));
      expect(large).toContain("X-MailFrom: big@example.com");
      expect(large).toContain(bulk.replace(/\r\n/g, "\n"));
      const jsm = await jetstreamManager(nc);
      expect((await jsm.consumers.info("MAIL_IN", "maildir")).num_ack_pending).toBe(0);
    } finally {
      rmSync(mailDir, { recursive: true, force: true });
    }
  });

  it("answers 451 within the timeout when the broker stalls (SIGSTOP), then recovers", async () => {
    nats.signal("SIGSTOP");
    try {
      const started = Date.now();
      const error = await transport(smtp.port)
        .sendMail({ envelope: { from: "s@example.com", to: ["t@example.com"] }, raw: raw("stall") })
        .catch((e: { responseCode?: number; response?: string }) => e);
      expect((error as { responseCode?: number }).responseCode).toBe(451);
      expect((error as { response?: string }).response).toMatch(/^451 4\.3\.0/);
      expect(Date.now() - started).toBeLessThan(2000 + 5000);
    } finally {
      nats.signal("SIGCONT");
    }
    const info = await transport(smtp.port).sendMail({
      envelope: { from: "s@example.com", to: ["t@example.com"] },
      raw: raw("after-stall"),
    });
    expect(info.response).toMatch(/^250 /);
  });

  it("1 000 messages across a broker restart: each 250 stored exactly once, the rest 4xx", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge("MAIL_IN");
    const client = transport(smtp.port, true);
    const accepted = new Set<number>();
    const refused = new Map<number, number | undefined>();
    let sent = 0;
    let restarted: Promise<void> | null = null;
    const firstPid = nats.pid;
    const send = async (seq: number) => {
      try {
        const info = await client.sendMail({
          envelope: { from: "load@example.com", to: ["bob@example.com"] },
          raw: raw(`load-${seq}`),
        });
        if (/^250 /.test(info.response)) accepted.add(seq);
        else refused.set(seq, Number(info.response.slice(0, 3)));
      } catch (error) {
        refused.set(seq, (error as { responseCode?: number }).responseCode);
      }
      sent++;
      if (sent === 300 && !restarted) {
        restarted = (async () => {
          await nats.stop(); // SIGTERM
          await sleep(300);
          await nats.start(); // same port, same store directory
        })();
      }
    };
    const queue = Array.from({ length: 1000 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        for (let seq = queue.shift(); seq !== undefined; seq = queue.shift()) await send(seq);
      }),
    );
    await restarted;
    client.close();
    expect(restarted).not.toBeNull();
    expect(nats.pid).not.toBe(firstPid);
    console.log(`broker restart: ${accepted.size} accepted, ${refused.size} refused with 4xx`);

    expect(accepted.size + refused.size).toBe(1000);
    for (const code of refused.values()) expect(code).toBeGreaterThanOrEqual(400);
    for (const code of refused.values()) expect(code).toBeLessThan(500);
    expect(accepted.size).toBeGreaterThan(500);

    const stored = await readStream(nc, "MAIL_IN");
    const bySeq = new Map<number, number>();
    const ids = new Set<string>();
    for (const message of stored) {
      const seq = Number(
        /X-Test-Seq: load-(\d+)/.exec(new TextDecoder().decode(message.data))?.[1],
      );
      bySeq.set(seq, (bySeq.get(seq) ?? 0) + 1);
      expect(ids.has(message.id)).toBe(false);
      ids.add(message.id);
    }
    for (const seq of accepted) expect(bySeq.get(seq)).toBe(1);
    // A refused message may have been stored (its ack lost) but never twice.
    for (const count of bySeq.values()) expect(count).toBe(1);
  }, 300_000);
});

describe.skipIf(natsServerMissing)("JetStream handler without a broker", () => {
  it("answers 451 4.3.0 quickly when nothing listens on the broker's port", async () => {
    const port = await freePort();
    const handler = new JetStream({
      servers: `nats://127.0.0.1:${port}`,
      subject: "mail.in",
      timeout: 1500,
    });
    const smtp = await serve(handler, { host: "127.0.0.1", port: 0 });
    try {
      const started = Date.now();
      const error = (await transport(smtp.port)
        .sendMail({
          envelope: { from: "a@example.com", to: ["b@example.com"] },
          raw: raw("nobroker"),
        })
        .catch((e: unknown) => e)) as { responseCode?: number; response?: string };
      expect(error.responseCode).toBe(451);
      expect(error.response).toMatch(/^451 4\.3\.0/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await smtp.close();
      await handler.close();
    }
  });

  it("takes its CLI arguments as -c JetStream nats://HOST:PORT SUBJECT", async () => {
    const handler = JetStream.fromCli(["nats://127.0.0.1:4222", "mail.in"]);
    expect(handler.subject).toBe("mail.in");
    expect(handler.streamName).toBe("MAIL_IN");
    await handler.close();
    expect(() => JetStream.fromCli(["nats://127.0.0.1:4222"])).toThrow(/server URL and a subject/);
    expect(() => JetStream.fromCli(["http://x", "mail.in"])).toThrow(/not a nats:/);
    expect(() => JetStream.fromCli(["nats://h:1", "mail.*"])).toThrow(/plain subject/);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
