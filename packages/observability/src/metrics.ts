import type { SmtpObserver } from "@smtpkit/core/server";

export type Labels = Readonly<Record<string, string>>;

/** A counter; `bind(labels)` gives the series for fixed labels (no label lookup per `inc`). */
export interface CounterMetric {
  inc(labels?: Labels, value?: number): void;
  bind(labels: Labels): { inc(value?: number): void };
}
export interface GaugeMetric {
  inc(labels?: Labels, value?: number): void;
  dec(labels?: Labels, value?: number): void;
}
export interface HistogramMetric {
  observe(labels: Labels | undefined, value: number): void;
  bind(labels: Labels): { observe(value: number): void };
}

/** `bind(labels)` once per distinct value of one label, kept. */
function boundBy<T>(bind: (value: string) => T): (value: string) => T {
  const cache = new Map<string, T>();
  return (value) => {
    let bound = cache.get(value);
    if (bound === undefined) {
      bound = bind(value);
      cache.set(value, bound);
    }
    return bound;
  };
}

/**
 * The small metrics interface the metrics observer writes to: counters, gauges and histograms by
 * name, with label names. `promMetrics()` implements it on prom-client; any other backend needs
 * these three methods.
 */
export interface Metrics {
  counter(name: string, help: string, labelNames?: readonly string[]): CounterMetric;
  gauge(name: string, help: string, labelNames?: readonly string[]): GaugeMetric;
  histogram(
    name: string,
    help: string,
    labelNames?: readonly string[],
    buckets?: readonly number[],
  ): HistogramMetric;
}

/** The commands counted by name; any other verb is counted as `OTHER` (labels stay few). */
const KNOWN_COMMANDS = new Set([
  "HELO",
  "EHLO",
  "LHLO",
  "MAIL",
  "RCPT",
  "DATA",
  "BDAT",
  "RSET",
  "NOOP",
  "QUIT",
  "VRFY",
  "EXPN",
  "HELP",
  "AUTH",
  "STARTTLS",
  "PROXY",
  "XCLIENT",
  "XFORWARD",
]);

/** Known SASL mechanism names are kept; anything else is `OTHER`. */
const KNOWN_MECHANISMS =
  /^(PLAIN|LOGIN|CRAM-MD5|SCRAM-SHA-(1|256)(-PLUS)?|XOAUTH2|OAUTHBEARER|EXTERNAL)$/;

const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];
const SIZE_BUCKETS = [1024, 10_240, 102_400, 1_048_576, 10_485_760, 33_554_432];

const commandLabel = (verb: string): string => (KNOWN_COMMANDS.has(verb) ? verb : "OTHER");
const codeClass = (code: number): string => `${Math.floor(code / 100)}xx`;

/**
 * Counts what the sessions do, under names prefixed `smtpkit_`:
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `smtpkit_connections_total` | counter | `tls` (`yes` for SMTPS, else `no`) |
 * | `smtpkit_connections_open` | gauge | `tls` (a STARTTLS moves one from `no` to `yes`) |
 * | `smtpkit_starttls_total` | counter | |
 * | `smtpkit_commands_total` | counter | `command` (known verbs, else `OTHER`) |
 * | `smtpkit_replies_total` | counter | `class` (`2xx`, `3xx`, `4xx`, `5xx`) |
 * | `smtpkit_rejections_total` | counter | `command`, `code` |
 * | `smtpkit_messages_total` | counter | `result` (`accepted`, `rejected`, `aborted`) |
 * | `smtpkit_message_size_bytes` | histogram | `result` |
 * | `smtpkit_received_bytes_total` | counter | (every octet read from clients, at session end) |
 * | `smtpkit_auth_total` | counter | `mechanism`, `result` (`success`, `failure`) |
 * | `smtpkit_session_duration_seconds` | histogram | `reason` |
 * | `smtpkit_data_duration_seconds` | histogram | `result` |
 * | `smtpkit_limits_total` | counter | `limit` (the option's name: `maxRecipients`, `dataSizeLimit`, `timeout`, ...) |
 * | `smtpkit_errors_total` | counter | |
 */
export function metricsObserver(metrics: Metrics): SmtpObserver {
  const connections = metrics.counter("smtpkit_connections_total", "Connections accepted.", [
    "tls",
  ]);
  const open = metrics.gauge("smtpkit_connections_open", "Connections open now.", ["tls"]);
  const starttls = metrics.counter("smtpkit_starttls_total", "STARTTLS handshakes completed.");
  const commands = metrics.counter("smtpkit_commands_total", "Commands received.", ["command"]);
  const replies = metrics.counter("smtpkit_replies_total", "Replies sent, by code class.", [
    "class",
  ]);
  const rejections = metrics.counter(
    "smtpkit_rejections_total",
    "Commands refused with 4xx or 5xx.",
    ["command", "code"],
  );
  const messages = metrics.counter("smtpkit_messages_total", "Message bodies received.", [
    "result",
  ]);
  const sizes = metrics.histogram(
    "smtpkit_message_size_bytes",
    "Size of message bodies.",
    ["result"],
    SIZE_BUCKETS,
  );
  const received = metrics.counter("smtpkit_received_bytes_total", "Octets read from clients.");
  const auth = metrics.counter("smtpkit_auth_total", "AUTH verdicts.", ["mechanism", "result"]);
  const sessionTime = metrics.histogram(
    "smtpkit_session_duration_seconds",
    "Session durations.",
    ["reason"],
    SECONDS_BUCKETS,
  );
  const dataTime = metrics.histogram(
    "smtpkit_data_duration_seconds",
    "Time from DATA (or the first BDAT) to the reply.",
    ["result"],
    SECONDS_BUCKETS,
  );
  const limits = metrics.counter("smtpkit_limits_total", "Limits hit.", ["limit"]);
  const errors = metrics.counter("smtpkit_errors_total", "Failures on the server's side.");
  // The series touched per command and per message, bound once.
  const commandSeries = boundBy((command) => commands.bind({ command }));
  const replySeries = [1, 2, 3, 4, 5].map((digit) => replies.bind({ class: `${digit}xx` }));
  const messageSeries = boundBy((result) => ({
    count: messages.bind({ result }),
    size: sizes.bind({ result }),
    time: dataTime.bind({ result }),
  }));
  const NO = { tls: "no" };
  const YES = { tls: "yes" };
  /** Sessions under TLS now, so close decrements the right series. */
  const secure = new Set<string>();
  return {
    connect({ session }) {
      const labels = session.ssl ? YES : NO;
      if (session.ssl) secure.add(session.id);
      connections.inc(labels);
      open.inc(labels);
    },
    tls({ session, implicit }) {
      if (implicit) return;
      starttls.inc();
      secure.add(session.id);
      open.dec(NO);
      open.inc(YES);
    },
    command({ verb }) {
      commandSeries(commandLabel(verb)).inc();
    },
    reply({ code }) {
      const series = replySeries[Math.floor(code / 100) - 1];
      if (series) series.inc();
      else replies.inc({ class: codeClass(code) });
    },
    reject({ command, code }) {
      rejections.inc({ command: commandLabel(command), code: String(code) });
    },
    auth({ mechanism, success }) {
      const name = KNOWN_MECHANISMS.test(mechanism) ? mechanism : "OTHER";
      auth.inc({ mechanism: name, result: success ? "success" : "failure" });
    },
    data({ result, bytes, durationMs }) {
      const series = messageSeries(result);
      series.count.inc();
      series.size.observe(bytes);
      series.time.observe(durationMs / 1000);
    },
    limit({ limit }) {
      limits.inc({ limit });
    },
    error() {
      errors.inc();
    },
    close({ session, reason, durationMs, bytesIn }) {
      open.dec(secure.delete(session.id) ? YES : NO);
      received.inc(undefined, bytesIn);
      sessionTime.observe({ reason }, durationMs / 1000);
    },
  };
}
