export {
  type ConsumeOptions,
  type ConsumerHandle,
  consumeToMaildir,
} from "./consume-to-maildir.js";
export {
  type EnvelopeRecord,
  envelopeRecord,
  HEADERS,
  parseEnvelopeRecord,
} from "./envelope-record.js";
export { JetStream, type JetStreamOptions, type Retention, streamNameFor } from "./jetstream.js";
