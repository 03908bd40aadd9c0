import cluster from "node:cluster";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  register as globalRegistry,
  Histogram,
  type Metric,
  type Registry,
} from "prom-client";
import type { CounterMetric, GaugeMetric, HistogramMetric, Labels, Metrics } from "./metrics.js";

/**
 * Series bound to fixed labels count in plain numbers on the session's path; prom-client learns
 * of them when it is read (a scrape, or a cluster primary asking), through the metric's
 * `collect`. A counter's `inc` is then an addition, a histogram's `observe` a push into a small
 * queue (applied at once when 256 are waiting, so memory stays bounded without scrapes).
 */
interface Pending {
  flush(): void;
}

/**
 * What each metric this module created holds back until it is read: one accumulator per label
 * set, shared by every observer that binds it (so their number stays that of the series).
 */
const PENDING = new WeakMap<object, Map<string, Pending>>();

function flushAll(this: object): void {
  for (const pending of PENDING.get(this)?.values() ?? []) pending.flush();
}

/**
 * The accumulator for `labels` of `metric`, made by `make` the first time; `null` for a metric
 * made elsewhere (without our collect), which is then counted directly.
 */
function heldBack<T extends Pending>(metric: object, labels: Labels, make: () => T): T | null {
  const series = PENDING.get(metric);
  if (!series) return null;
  const key = JSON.stringify(Object.entries(labels).sort());
  let pending = series.get(key) as T | undefined;
  if (!pending) {
    pending = make();
    series.set(key, pending);
  }
  return pending;
}

const HISTOGRAM_QUEUE = 256;

/**
 * The metrics interface on prom-client, in `registry` (default: prom-client's global registry,
 * the one `AggregatorRegistry` collects from cluster workers). A metric already registered under
 * the same name is reused, so several servers in one process share their series. In a
 * `node:cluster` worker it also answers the primary's `AggregatorRegistry` (`serveMetrics({
 * cluster: true })`) with the global registry's metrics.
 */
export function promMetrics(registry: Registry = globalRegistry): Metrics {
  // prom-client's workers answer the primary's requests once an AggregatorRegistry exists.
  if (cluster.isWorker) new AggregatorRegistry();
  const existing = <T>(name: string): T | undefined =>
    registry.getSingleMetric(name) as unknown as T | undefined;
  const options = (name: string, help: string, labelNames?: readonly string[]) => ({
    name,
    help,
    labelNames: [...(labelNames ?? [])],
    registers: [registry],
    collect: flushAll,
  });
  const created = <T extends object>(metric: T): T => {
    PENDING.set(metric, new Map());
    return metric;
  };
  return {
    counter(name, help, labelNames): CounterMetric {
      const c = existing<Counter>(name) ?? created(new Counter(options(name, help, labelNames)));
      return {
        inc: (labels?: Labels, value = 1) => (labels ? c.inc(labels, value) : c.inc(value)),
        bind: (labels: Labels) => {
          const series = c.labels(labels);
          const held = heldBack(c, labels, () => {
            let count = 0;
            return {
              flush() {
                if (count === 0) return;
                series.inc(count);
                count = 0;
              },
              inc(value = 1) {
                // prom-client's own checks, kept: a counter only goes up, by a number.
                if (!Number.isFinite(value))
                  throw new TypeError(`Value is not a valid number: ${value}`);
                if (value < 0) throw new Error("It is not possible to decrease a counter");
                count += value;
              },
            };
          });
          return held ?? series;
        },
      };
    },
    gauge(name, help, labelNames): GaugeMetric {
      const g = existing<Gauge>(name) ?? created(new Gauge(options(name, help, labelNames)));
      return {
        inc: (labels?: Labels, value = 1) => (labels ? g.inc(labels, value) : g.inc(value)),
        dec: (labels?: Labels, value = 1) => (labels ? g.dec(labels, value) : g.dec(value)),
      };
    },
    histogram(name, help, labelNames, buckets): HistogramMetric {
      const h =
        existing<Histogram>(name) ??
        created(
          new Histogram({
            ...options(name, help, labelNames),
            ...(buckets && { buckets: [...buckets] }),
          }),
        );
      return {
        observe: (labels: Labels | undefined, value: number) =>
          labels ? h.observe(labels, value) : h.observe(value),
        bind: (labels: Labels) => {
          const series = h.labels(labels);
          const held = heldBack(h, labels, () => {
            const queue: number[] = [];
            const flush = () => {
              for (const value of queue) series.observe(value);
              queue.length = 0;
            };
            return {
              flush,
              observe(value: number) {
                if (!Number.isFinite(value))
                  throw new TypeError(`Value is not a valid number: ${value}`);
                if (queue.push(value) >= HISTOGRAM_QUEUE) flush();
              },
            };
          });
          return held ?? series;
        },
      };
    },
  };
}

export interface MetricsServerOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Default 9464; 0 picks a free port (see `port` on the result). */
  readonly port?: number;
  /** Where `/metrics` reads from (default: prom-client's global registry). */
  readonly registry?: Registry;
  /**
   * In a `node:cluster` primary: `/metrics` sums what every worker's global registry holds
   * (prom-client's `AggregatorRegistry`; counters and histograms added up, gauges too) instead
   * of reading `registry`.
   */
  readonly cluster?: boolean;
}

export interface MetricsServer {
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * An HTTP server with `GET /metrics` (Prometheus text format) and `GET /healthz` (`ok`); anything
 * else is 404. Resolves once it listens.
 */
export async function serveMetrics(options: MetricsServerOptions = {}): Promise<MetricsServer> {
  const registry = options.registry ?? globalRegistry;
  const aggregator = options.cluster ? new AggregatorRegistry() : null;
  const collect = async (): Promise<{ body: string; type: string }> => {
    if (!aggregator) return { body: await registry.metrics(), type: registry.contentType };
    return { body: await aggregator.clusterMetrics(), type: aggregator.contentType };
  };
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?", 1)[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (path !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    collect().then(
      ({ body, type }) => response.writeHead(200, { "content-type": type }).end(body),
      (error: unknown) =>
        response
          .writeHead(500, { "content-type": "text/plain" })
          .end(`metrics unavailable: ${(error as Error)?.message ?? String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 9464, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export type { Metric, Registry };
