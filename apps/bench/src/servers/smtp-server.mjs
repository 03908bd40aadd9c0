// Nodemailer's smtp-server as a correct application would run it: `size` set, the stream consumed
// in onData, and `stream.sizeExceeded` turned into a 552 (smtp-server keeps reading the body but
// leaves the rejection to the application).
import { SMTPServer } from "smtp-server";
import { counters, ready, SIZE_LIMIT } from "./common.mjs";

const server = new SMTPServer({
  name: "bench.smtp-server.example",
  size: SIZE_LIMIT,
  authOptional: true,
  // smtpkit does no reverse DNS either; with it on, every connection waits for dns.reverse().
  disableReverseLookup: true,
  logger: false,
  maxClients: 10_000,
  onData(stream, session, callback) {
    let bytes = 0;
    stream.on("data", (chunk) => {
      bytes += chunk.length;
    });
    stream.on("end", () => {
      if (stream.sizeExceeded) {
        counters.rejected++;
        const error = new Error(`Message exceeds fixed maximum message size ${SIZE_LIMIT}`);
        error.responseCode = 552;
        callback(error);
        return;
      }
      counters.messages++;
      counters.bytes += bytes;
      counters.recipients += session.envelope.rcptTo.length;
      callback();
    });
  },
});
server.on("error", () => {});
server.listen(0, "127.0.0.1", () => ready(server.server.address().port));
