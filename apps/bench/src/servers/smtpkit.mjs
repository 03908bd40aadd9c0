// smtpkit (@smtpkit/node) with a streaming sink: consumes and counts the body; the server
// enforces the 32 MiB size limit (dataSizeLimit). Public API only.
import { serve } from "@smtpkit/node";
import { counters, ready, SIZE_LIMIT } from "./common.mjs";

/**
 * Counts the body's bytes. `for await` when the body is async-iterable (a web ReadableStream is in
 * Node 20, and so is a body object with its own `[Symbol.asyncIterator]`), else `getReader()`, else
 * `.stream()` (a body object that only hands out a ReadableStream).
 */
async function drain(body) {
  let bytes = 0;
  if (body != null && typeof body[Symbol.asyncIterator] === "function") {
    for await (const chunk of body) bytes += chunk.byteLength;
    return bytes;
  }
  const stream = typeof body?.getReader === "function" ? body : body.stream();
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.byteLength;
  }
}

const handler = {
  async handleDATAStream(_server, _session, envelope, body) {
    const bytes = await drain(body);
    counters.messages++;
    counters.bytes += bytes;
    counters.recipients += envelope.rcptTos.length;
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
