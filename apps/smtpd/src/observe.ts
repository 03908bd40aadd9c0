/**
 * What the CLI logs and counts: `--log-format text` keeps aiosmtpd's `LEVEL:mail.log:` lines
 * (sessions with `-d`, the dialog with `-dd`); `--log-format json` writes pino's JSON lines, the
 * sessions' through `@smtpkit/observability`; `--metrics` adds the prom-client counters.
 */
import type { SmtpLogger, SmtpObserver } from "@smtpkit/core/server";
import { logDestination, observe, promMetrics, serverLogger } from "@smtpkit/observability";
import { pino } from "pino";
import { createLogger, type Logger } from "./log.js";
import { type CliOptions, logLevel } from "./options.js";

export interface CliObservation {
  /** The CLI's own lines (start-up, shutdown): outside any session. */
  readonly log: Logger;
  /** What every session reports to. */
  readonly session: { readonly logger?: SmtpLogger; readonly observer?: SmtpObserver };
}

/** The loggers and observer for `options`; text lines go to `writeText`, JSON lines to fd 2. */
export function cliObservation(
  options: Pick<CliOptions, "debug" | "logFormat" | "metrics">,
  writeText: (line: string) => void,
): CliObservation {
  // The metrics are in prom-client's global registry: the one a cluster primary aggregates.
  const metrics = options.metrics ? { metrics: promMetrics() } : {};
  if (options.logFormat === "text") {
    const log = createLogger(logLevel(options.debug), writeText);
    // With -d the sessions report to the same log (credentials are masked by the server).
    return {
      log,
      session: {
        ...(options.debug > 0 && { logger: log }),
        ...(options.metrics && { observer: observe({ ...metrics, channels: false }) }),
      },
    };
  }
  const level = options.debug > 0 ? "debug" : "info";
  // Lines leave in writes of 4 KiB (a write per line would cost more than the session's own
  // work; see the bench's observability scenario), at least every 250 ms so a quiet server's
  // lines are not held back, and synchronously: a slow reader of stderr slows the server down
  // rather than growing a queue in memory. What is held is written at exit.
  const destination = logDestination({ dest: 2 });
  process.once("exit", () => {
    try {
      destination.flushSync();
    } catch {
      // stderr is gone.
    }
  });
  const json = pino({ level }, destination);
  const server = serverLogger(json);
  const log: Logger = {
    level,
    error: (message) => server.error({}, message),
    info: (message) => server.info({}, message),
    debug: (message) => server.debug({}, message),
  };
  const observer = observe({
    logger: json,
    transcript: options.debug >= 2,
    ...metrics,
    channels: false,
  });
  return { log, session: { observer } };
}
