import { createHash, type Hash, randomUUID } from "node:crypto";
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type PubAck,
  RetentionPolicy,
} from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import type {
  Envelope,
  Handler,
  HookResult,
  MessageBody,
  Session,
  SMTP,
} from "@smtpkit/core/server";
import { UsageError } from "@smtpkit/handlers";
import { envelopeRecord, HEADERS } from "./envelope-record.js";

export type Retention = "limits" | "workqueue" | "interest";

export interface JetStreamOptions {
  /** `nats://host:port`, or several. */
  readonly servers: string | readonly string[];
  /** The subject every message is published on. */
  readonly subject: string;
  /** The stream created for the subject when none captures it. Default: the subject, upper-cased, `.` → `_`. */
  readonly stream?: string | undefined;
  /** Retention of a stream this handler creates. Default `"limits"` (`"workqueue"` for one consumer group). */
  readonly retention?: Retention | undefined;
  /** Object store bucket for bodies larger than the server's max payload. Default `<stream>_BODIES`. */
  readonly bucket?: string | undefined;
  /**
   * Milliseconds the broker has to acknowledge a message (connection, stream set-up and publish
   * with its retries), after which the client gets `451 4.3.0`. Keep it below the server's
   * `dataTimeout`. For a body going to the object store it bounds each chunk's acknowledgement.
   * Default 10000.
   */
  readonly timeout?: number | undefined;
  /** Seconds the stream remembers message ids to drop a republished one. Default 120. */
  readonly duplicateWindow?: number | undefined;
  /** Connection name shown by the server. Default `smtpkit`. */
  readonly name?: string | undefined;
}

/** Bytes kept for the headers of an inline message, on top of the envelope. */
const HEADER_ALLOWANCE = 1024;
/** Pause between two publish attempts while the broker is away. */
const RETRY_PAUSE = 200;

const REPLY_UNAVAILABLE = "451 4.3.0 Error: the message queue is unavailable, try again later";

class BrokerTimeout extends Error {
  override name = "BrokerTimeout";
}

/** The stream name derived from a subject: `mail.in` → `MAIL_IN`. */
export function streamNameFor(subject: string): string {
  return subject.replace(/[^A-Za-z0-9_-]+/g, "_").toUpperCase() || "SMTPKIT";
}

/**
 * The message id: the same transaction (envelope and body) always gets the same id, so a
 * publish retried after a lost acknowledgement, or a client resending the same message within
 * the stream's duplicate window, is stored once.
 */
function startDigest(envelope: Envelope): Hash {
  const hash = createHash("sha256");
  // Not the peer: a client resending from another connection sends the same transaction.
  hash.update(JSON.stringify([envelope.mailFrom, envelope.rcptTos, envelope.mailParams]));
  hash.update("\0");
  return hash;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Rejects with BrokerTimeout when `ms` pass first. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new BrokerTimeout("broker timeout")), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface Broker {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/**
 * Hands every accepted message to NATS JetStream: the envelope (in the `Smtp-Envelope` header)
 * and the message go to a stream subject, and the client gets `250` only once JetStream has
 * acknowledged the publish, so the message is stored by the broker. A body larger than the
 * server's max payload is streamed into JetStream's object store (chunk by chunk, each one
 * acknowledged before the next is read from the client) and the stream gets a small pointer
 * message. A broker that is down or slow gets the client `451 4.3.0` within `timeout`; the
 * connection reconnects on its own when the broker is back.
 */
export class JetStream implements Handler {
  [hook: `auth_${string}`]: unknown;
  readonly subject: string;
  readonly streamName: string;
  readonly bucketName: string;
  readonly timeout: number;
  readonly #options: JetStreamOptions;
  #broker: Promise<Broker> | null = null;
  #stream: Promise<void> | null = null;
  #bucket: Promise<ObjectStore> | null = null;
  #closed = false;

  constructor(options: JetStreamOptions) {
    this.#options = options;
    this.subject = options.subject;
    this.streamName = options.stream ?? streamNameFor(options.subject);
    this.bucketName = options.bucket ?? `${this.streamName}_BODIES`;
    this.timeout = options.timeout ?? 10_000;
    if (!/^[^\s*>]+$/.test(this.subject)) {
      throw new UsageError(
        `JetStream subject ${this.subject} must be a plain subject (no spaces, * or >)`,
      );
    }
  }

  /** CLI: `-c JetStream nats://HOST:PORT SUBJECT`. */
  static fromCli(args: readonly string[]): JetStream {
    if (args.length !== 2)
      throw new UsageError(
        "JetStream takes a server URL and a subject: -c JetStream nats://HOST:PORT SUBJECT",
      );
    const [url, subject] = args as [string, string];
    if (!/^(nats|tls):\/\/[^/\s]+$/.test(url))
      throw new UsageError(`JetStream server ${url} is not a nats://HOST:PORT URL`);
    return new JetStream({ servers: url, subject });
  }

  /** The connection, made once and kept: the client reconnects by itself after a broker restart. */
  #connect(): Promise<Broker> {
    if (this.#closed) return Promise.reject(new Error("closed"));
    this.#broker ??= connect({
      servers: this.#options.servers as string | string[],
      name: this.#options.name ?? "smtpkit",
      // Once connected, reconnect for ever (a broker restart); a failed first connection is
      // retried by the next transaction, which meanwhile gets 451.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: this.timeout,
    })
      .then(
        (nc) => ({ nc, js: jetstream(nc, { timeout: this.timeout }), jsm: undefined as never }),
        (error: unknown) => {
          this.#broker = null;
          throw error;
        },
      )
      .then(async (broker) => ({
        ...broker,
        jsm: await jetstreamManager(broker.nc, { timeout: this.timeout }),
      }));
    const pending = this.#broker;
    pending.catch(() => {
      if (this.#broker === pending) this.#broker = null;
    });
    return pending;
  }

  /** Creates the stream when no stream captures the subject yet. */
  #ensureStream(broker: Broker): Promise<void> {
    this.#stream ??= (async () => {
      const found = await broker.jsm.streams.find(this.subject).catch(() => null);
      if (found) return;
      try {
        await broker.jsm.streams.add({
          name: this.streamName,
          subjects: [this.subject],
          retention: RetentionPolicy[this.#retention()],
          duplicate_window: (this.#options.duplicateWindow ?? 120) * 1_000_000_000,
        });
      } catch (error) {
        // Another process created it in the meantime.
        const info = await broker.jsm.streams.info(this.streamName).catch(() => null);
        if (!info) throw error;
      }
    })();
    const pending = this.#stream;
    pending.catch(() => {
      if (this.#stream === pending) this.#stream = null;
    });
    return pending;
  }

  #retention(): "Limits" | "Workqueue" | "Interest" {
    const retention = this.#options.retention ?? "limits";
    return retention === "workqueue"
      ? "Workqueue"
      : retention === "interest"
        ? "Interest"
        : "Limits";
  }

  #objectStore(broker: Broker): Promise<ObjectStore> {
    this.#bucket ??= new Objm(broker.nc).create(this.bucketName);
    const pending = this.#bucket;
    pending.catch(() => {
      if (this.#bucket === pending) this.#bucket = null;
    });
    return pending;
  }

  /** Connects and sets up the stream, within the timeout. */
  async #ready(deadline: number): Promise<Broker> {
    const broker = await within(this.#connect(), deadline - Date.now());
    await within(this.#ensureStream(broker), deadline - Date.now());
    return broker;
  }

  /**
   * Publishes with the message id until the broker acknowledges or the deadline passes: an
   * attempt whose acknowledgement was lost (the broker restarting) is deduplicated by the id.
   */
  async #publish(
    broker: Broker,
    payload: Uint8Array,
    headers: ReturnType<typeof natsHeaders>,
    msgID: string,
    deadline: number,
  ): Promise<PubAck> {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new BrokerTimeout("broker timeout");
      try {
        return await within(
          broker.js.publish(this.subject, payload, { msgID, headers, timeout: left }),
          left,
        );
      } catch (error) {
        if (error instanceof BrokerTimeout || deadline - Date.now() <= RETRY_PAUSE) throw error;
        await sleep(RETRY_PAUSE);
        // The stream may have been deleted in the meantime; no harm in asking again.
        this.#stream = null;
        await within(this.#ensureStream(broker), deadline - Date.now());
      }
    }
  }

  async handleDATAStream(
    _server: SMTP,
    session: Session,
    envelope: Envelope,
    body: MessageBody,
    _signal?: AbortSignal,
  ): Promise<HookResult> {
    let broker: Broker;
    try {
      broker = await this.#ready(Date.now() + this.timeout);
    } catch {
      return REPLY_UNAVAILABLE;
    }
    const envelopeJson = JSON.stringify(envelopeRecord(session, envelope));
    const digest = startDigest(envelope);
    const maxPayload = broker.nc.info?.max_payload ?? 1024 * 1024;
    const inlineLimit = maxPayload - HEADER_ALLOWANCE - Buffer.byteLength(envelopeJson);

    // Read up to the inline limit; past it, the body goes to the object store.
    const iterator = body[Symbol.asyncIterator]();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let overflow = false;
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await iterator.next();
      } catch {
        return REPLY_UNAVAILABLE; // the engine sends its own reply (552, or none for an abort)
      }
      const { done, value } = next;
      if (done) break;
      digest.update(value);
      chunks.push(value);
      size += value.length;
      if (size > inlineLimit) {
        overflow = true;
        break;
      }
    }

    const headers = natsHeaders();
    headers.set(HEADERS.envelope, envelopeJson);
    try {
      if (!overflow) {
        headers.set(HEADERS.size, String(size));
        const payload = Buffer.concat(chunks, size);
        await this.#publish(
          broker,
          payload,
          headers,
          digest.digest("hex"),
          Date.now() + this.timeout,
        );
        return "250 2.0.0 OK queued";
      }
      return await this.#publishLarge(broker, headers, digest, chunks, iterator);
    } catch {
      // Broker down or slow, or the body failed (then the engine's own reply goes out instead).
      return REPLY_UNAVAILABLE;
    }
  }

  /** Streams the body into the object store, then publishes the pointer message. */
  async #publishLarge(
    broker: Broker,
    headers: ReturnType<typeof natsHeaders>,
    digest: Hash,
    head: Uint8Array[],
    rest: AsyncIterator<Uint8Array>,
  ): Promise<HookResult> {
    const store = await within(this.#objectStore(broker), this.timeout);
    const name = randomUUID();
    let size = 0;
    const pending = [...head];
    // Pulled by the object store one chunk at a time: the next client bytes are read only once
    // the previous chunk has been acknowledged.
    const source = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const queued = pending.shift();
          if (queued) {
            size += queued.length;
            controller.enqueue(queued);
            return;
          }
          const { done, value } = await rest.next();
          if (done) {
            controller.close();
            return;
          }
          digest.update(value);
          size += value.length;
          controller.enqueue(value);
        },
        async cancel() {
          await rest.return?.();
        },
      },
      { highWaterMark: 0 },
    );
    await store.put({ name }, source, { timeout: this.timeout });
    headers.set(HEADERS.objectBucket, this.bucketName);
    headers.set(HEADERS.objectName, name);
    headers.set(HEADERS.size, String(size));
    const ack = await this.#publish(
      broker,
      new Uint8Array(0),
      headers,
      digest.digest("hex"),
      Date.now() + this.timeout,
    );
    // The same message was queued before: its first copy keeps its own object.
    if (ack.duplicate) await store.delete(name).catch(() => undefined);
    return "250 2.0.0 OK queued";
  }

  /** Drains the connection (what was published is flushed) and closes it. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#broker;
    this.#broker = null;
    if (!pending) return;
    const broker = await within(pending, this.timeout).catch(() => null);
    if (broker) await broker.nc.drain().catch(() => broker.nc.close());
    else pending.then((late) => late.nc.close()).catch(() => undefined);
  }
}
