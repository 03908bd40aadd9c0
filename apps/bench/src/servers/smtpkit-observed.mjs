// smtpkit as in smtpkit.mjs (streaming sink, 32 MiB limit) with an observer, for the
// observability scenario (src/observe.mjs): SMTPKIT_OBSERVE says which, a comma-separated list of
//   logs       JSON lines at info level (pino), to /dev/null in 4 KiB writes (logDestination(), as the CLI's --log-format json)
//   logs-sync  the same with a write per line (pino.destination()'s default)
//   metrics    the prom-client counters and histograms (promMetrics(), global registry)
//   busy3      no output: 3 µs of busy loop per message (the control: what any such work costs here)
// The -observed variants are thin files that set it and import this one.
import { serve } from "@smtpkit/node";
import { logDestination, observe, promMetrics } from "@smtpkit/observability";
import { pino } from "pino";
import { counters, ready, SIZE_LIMIT } from "./common.mjs";

const handler = {
  async handleDATAStream(_server, _session, envelope, body) {
    let bytes = 0;
    for await (const chunk of body) bytes += chunk.byteLength;
    counters.messages++;
    counters.bytes += bytes;
    counters.recipients += envelope.rcptTos.length;
    return undefined;
  },
};

/** Keeps the CPU busy for `ms` milliseconds (wall clock). */
function busy(ms) {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

export async function start(what) {
  const parts = new Set(what.split(","));
  const logger =
    parts.has("logs") || parts.has("logs-sync")
      ? pino(
          { level: "info" },
          parts.has("logs-sync")
            ? pino.destination({ dest: "/dev/null", sync: true })
            : logDestination({ dest: "/dev/null" }),
        )
      : undefined;
  const observer = observe({
    ...(logger && { logger }),
    ...(parts.has("metrics") && { metrics: promMetrics() }),
    ...(parts.has("busy3") && { observers: [{ data: () => busy(0.003) }] }),
    channels: false,
  });
  const server = await serve(handler, {
    host: "127.0.0.1",
    port: 0,
    hostname: "bench.smtpkit.example",
    dataSizeLimit: SIZE_LIMIT,
    maxConnections: 10_000,
    observer,
  });
  ready(server.port);
}
