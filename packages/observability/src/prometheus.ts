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
  });
  return {
    counter(name, help, labelNames): CounterMetric {
      const c = existing<Counter>(name) ?? new Counter(options(name, help, labelNames));
      return {
        inc: (labels?: Labels, value = 1) => (labels ? c.inc(labels, value) : c.inc(value)),
        bind: (labels: Labels) => c.labels(labels),
      };
    },
    gauge(name, help, labelNames): GaugeMetric {
      const g = existing<Gauge>(name) ?? new Gauge(options(name, help, labelNames));
      return {
        inc: (labels?: Labels, value = 1) => (labels ? g.inc(labels, value) : g.inc(value)),
        dec: (labels?: Labels, value = 1) => (labels ? g.dec(labels, value) : g.dec(value)),
      };
    },
    histogram(name, help, labelNames, buckets): HistogramMetric {
      const h =
        existing<Histogram>(name) ??
        new Histogram({
          ...options(name, help, labelNames),
          ...(buckets && { buckets: [...buckets] }),
        });
      return {
        observe: (labels: Labels | undefined, value: number) =>
          labels ? h.observe(labels, value) : h.observe(value),
        bind: (labels: Labels) => h.labels(labels),
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
