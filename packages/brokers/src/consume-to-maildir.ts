import { AckPolicy, type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { type Delivery, Mailbox, peerString } from "@smtpkit/handlers";
import { type EnvelopeRecord, HEADERS, parseEnvelopeRecord } from "./envelope-record.js";

export interface ConsumeOptions {
  /** An open connection (the caller owns it). */
  readonly connection: NatsConnection;
  /** The stream the JetStream handler publishes to. */
  readonly stream: string;
  /** Durable consumer name: several processes with the same name share the work. Default `maildir`. */
  readonly durable?: string | undefined;
  /** The Maildir to deliver to (created when missing). */
  readonly mailDir: string;
  /** Called after each message is in `new/` and acknowledged. */
  readonly onDelivered?: ((delivery: Delivery, envelope: EnvelopeRecord) => void) | undefined;
  /** Called for a message that could not be delivered (it is redelivered later, or dropped if malformed). */
  readonly onError?: ((error: unknown) => void) | undefined;
  /** Milliseconds the broker waits for an ack before redelivering. Default 60000. */
  readonly ackWait?: number | undefined;
}

export interface ConsumerHandle {
  /** Stops taking messages; resolves when the one being delivered is done. */
  stop(): Promise<void>;
  /** Settles when the consumer stops. */
  readonly done: Promise<void>;
}

/**
 * Reads the stream with a durable pull consumer and delivers each message into a Maildir
 * (`tmp/` → fsync → `new/` → fsync of the directory) with aiosmtpd's `X-Peer`, `X-MailFrom` and
 * `X-RcptTo` fields, and acknowledges it only then: a crash before the acknowledgement
 * redelivers the message (at least once; `Nats-Msg-Id` in `X-Smtpkit-Id` tells copies apart).
 * Bodies in the object store are streamed from it, never held whole.
 */
export async function consumeToMaildir(options: ConsumeOptions): Promise<ConsumerHandle> {
  const { connection, stream } = options;
  const durable = options.durable ?? "maildir";
  const jsm = await jetstreamManager(connection);
  const js = jetstream(connection);
  const existing = await jsm.consumers.info(stream, durable).catch(() => null);
  if (!existing) {
    await jsm.consumers.add(stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: (options.ackWait ?? 60_000) * 1_000_000,
    });
  }
  const mailbox = new Mailbox(options.mailDir, { fsync: true });
  const objm = new Objm(connection);
  const consumer = await js.consumers.get(stream, durable);
  const messages = await consumer.consume({ max_messages: 16 });

  const deliverOne = async (msg: JsMsg): Promise<void> => {
    let record: EnvelopeRecord;
    try {
      record = parseEnvelopeRecord(msg.headers?.get(HEADERS.envelope) ?? "");
    } catch (error) {
      msg.term("not an smtpkit message");
      options.onError?.(error);
      return;
    }
    const fields: [string, string][] = [
      ["X-Peer", peerString(record.peer as Parameters<typeof peerString>[0])],
      ["X-MailFrom", record.mailFrom ?? ""],
      ["X-RcptTo", record.rcptTos.join(", ")],
    ];
    const id = msg.headers?.get("Nats-Msg-Id");
    if (id) fields.push(["X-Smtpkit-Id", id]);
    const bucket = msg.headers?.get(HEADERS.objectBucket);
    const name = msg.headers?.get(HEADERS.objectName);
    let delivery: Delivery;
    if (bucket && name) {
      const store = await objm.open(bucket);
      const object = await store.get(name);
      if (!object) {
        msg.term("body missing from the object store");
        options.onError?.(new Error(`object ${bucket}/${name} not found`));
        return;
      }
      delivery = await mailbox.deliver(object.data, fields);
      const failed = await object.error;
      if (failed) throw failed;
    } else {
      delivery = await mailbox.deliver(msg.data, fields);
    }
    // Acknowledged only now that the file and new/ are on disk; ackAck waits for the server.
    await msg.ackAck();
    options.onDelivered?.(delivery, record);
  };

  const done = (async () => {
    for await (const msg of messages) {
      try {
        await deliverOne(msg);
      } catch (error) {
        msg.nak(1000);
        options.onError?.(error);
      }
    }
  })();

  return {
    done,
    async stop() {
      await messages.close();
      await done;
    },
  };
}
