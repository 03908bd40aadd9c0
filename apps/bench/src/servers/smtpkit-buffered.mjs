// Diagnostic variant (not in the default run): smtpkit with the buffered `handleDATA` hook instead
// of the streaming one, to measure what the per-message web ReadableStream costs.
import { serve } from "@smtpkit/node";
import { counters, ready, SIZE_LIMIT } from "./common.mjs";

const handler = {
  async handleDATA(_server, _session, envelope) {
    counters.messages++;
    counters.bytes += envelope.content.length;
    return undefined;
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
