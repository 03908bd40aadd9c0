// smtpkit (@smtpkit/node) with a streaming sink: consumes and counts the body; the server
// enforces the 32 MiB size limit (dataSizeLimit).
import { serve } from "@smtpkit/node";
import { counters, ready, SIZE_LIMIT } from "./common.mjs";

const handler = {
  async handleDATAStream(_server, _session, _envelope, body) {
    let bytes = 0;
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
    }
    counters.messages++;
    counters.bytes += bytes;
    return undefined; // default reply: 250
  },
};

const server = await serve(handler, {
  host: "127.0.0.1",
  port: 0,
  hostname: "bench.smtpkit.example",
  dataSizeLimit: SIZE_LIMIT,
  maxConnections: 10_000,
});
ready(server.port);
