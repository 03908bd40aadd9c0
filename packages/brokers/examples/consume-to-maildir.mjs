// Delivers the JetStream handler's stream into a Maildir, acknowledging each message after fsync.
//   node examples/consume-to-maildir.mjs nats://127.0.0.1:4222 MAIL_IN /tmp/maildir
import { connect } from "@nats-io/transport-node";
import { consumeToMaildir } from "@smtpkit/brokers";

const [servers = "nats://127.0.0.1:4222", stream = "MAIL_IN", mailDir = "/tmp/smtpkit-maildir"] =
  process.argv.slice(2);
const connection = await connect({ servers, maxReconnectAttempts: -1 });
const consumer = await consumeToMaildir({
  connection,
  stream,
  mailDir,
  onDelivered: (delivery, envelope) => console.log(`${envelope.mailFrom} → ${delivery.path}`),
  onError: (error) => console.error(error),
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await consumer.stop();
    await connection.drain();
  });
}
