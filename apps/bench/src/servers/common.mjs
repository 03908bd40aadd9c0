// Shared by the Node server children: report readiness, answer the orchestrator over IPC.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";

let inspector = null;
const post = (method, params) =>
  new Promise((resolve, reject) =>
    inspector.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
  );

export const SIZE_LIMIT = 33_554_432;

/** Counters the handler updates; read back over IPC to cross-check the load generator. */
export const counters = { messages: 0, bytes: 0, recipients: 0, rejected: 0 };

/** Largest process.memoryUsage() figures seen (sampled every 50 ms): is a peak heap or buffers? */
const peaks = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
setInterval(() => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peaks)) if (m[k] > peaks[k]) peaks[k] = m[k];
}, 50).unref();

export function ready(port, extra = {}) {
  process.send?.({ ready: true, port, ...extra });
  process.on("message", (m) => {
    switch (m?.cmd) {
      case "stats":
        process.send?.({ stats: { ...counters, memory: process.memoryUsage(), peaks } });
        break;
      case "gc":
        // Two full collections (the second one frees what the first one's finalizers released).
        globalThis.gc?.();
        globalThis.gc?.();
        setTimeout(() => {
          const spaces = Object.fromEntries(
            getHeapSpaceStatistics().map((sp) => [
              sp.space_name,
              { size: sp.space_size, used: sp.space_used_size },
            ]),
          );
          process.send?.({ gcDone: true, memory: process.memoryUsage(), spaces });
        }, 50);
        break;
      case "heapSnapshot":
        process.send?.({ heapSnapshot: writeHeapSnapshot(m.path) });
        break;
      case "allocStart":
        // Sampling allocation profile that keeps objects already collected (what is allocated,
        // not only what survives), for --alloc-prof.
        inspector ??= new Session();
        inspector.connect();
        post("HeapProfiler.enable")
          .then(() =>
            post("HeapProfiler.startSampling", {
              samplingInterval: 1024,
              includeObjectsCollectedByMajorGC: true,
              includeObjectsCollectedByMinorGC: true,
            }),
          )
          .then(() => process.send?.({ allocStarted: true }));
        break;
      case "allocStop":
        post("HeapProfiler.stopSampling").then(({ profile }) => {
          writeFileSync(m.path, JSON.stringify(profile));
          inspector.disconnect();
          process.send?.({ allocStopped: m.path });
        });
        break;
      case "stop":
        // A normal exit, so that --cpu-prof writes its profile.
        process.exit(0);
        break;
    }
  });
  process.on("disconnect", () => process.exit(0));
}
