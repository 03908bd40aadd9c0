import { combineObservers, type SmtpObserver } from "@smtpkit/core/server";
import { channelObserver } from "./channels.js";
import { type Logger, type LogObserverOptions, logObserver } from "./logs.js";
import { type Metrics, metricsObserver } from "./metrics.js";

export { CHANNELS, channelObserver } from "./channels.js";
export {
  type LogDestination,
  type LogDestinationOptions,
  logDestination,
} from "./log-destination.js";
export {
  type Logger,
  type LogMethod,
  type LogObserverOptions,
  logObserver,
  peerText,
  serverLogger,
} from "./logs.js";
export {
  type CounterMetric,
  type GaugeMetric,
  type HistogramMetric,
  type Labels,
  type Metrics,
  metricsObserver,
} from "./metrics.js";
export { openTelemetryObserver } from "./opentelemetry.js";
export {
  type MetricsServer,
  type MetricsServerOptions,
  promMetrics,
  serveMetrics,
} from "./prometheus.js";
export { type TranscriptLine, transcriptObserver } from "./transcript.js";

export interface ObserveOptions {
  /** Structured logs to this pino (or compatible) logger. */
  readonly logger?: Logger;
  /** With `logger`: the transcript lines too (debug level). */
  readonly transcript?: LogObserverOptions["transcript"];
  /** Metrics to this backend (`promMetrics()` for prom-client). */
  readonly metrics?: Metrics;
  /** Publish on `node:diagnostics_channel` (`CHANNELS`). Default true. */
  readonly channels?: boolean;
  /** More observers (e.g. `openTelemetryObserver()`), called after these. */
  readonly observers?: readonly SmtpObserver[];
}

/** One observer for `serve(handler, { observer })`: logs, metrics and channels as asked. */
export function observe(options: ObserveOptions = {}): SmtpObserver {
  const observers: SmtpObserver[] = [];
  if (options.logger)
    observers.push(logObserver(options.logger, { transcript: options.transcript ?? false }));
  if (options.metrics) observers.push(metricsObserver(options.metrics));
  if (options.channels ?? true) observers.push(channelObserver());
  observers.push(...(options.observers ?? []));
  return combineObservers(...observers);
}
