#!/usr/bin/env node
/**
 * `smtpkit`: aiosmtpd's command line on smtpkit. Parse (pure, `options.ts`) → load the handler
 * (`load-handler.ts`) → read the TLS files → bind → drop to `nobody` (unless `-n`) → print one
 * "listening" line on stderr → serve until SIGINT/SIGTERM, then close gracefully and exit 0.
 */
import cluster from "node:cluster";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname as machineHostname } from "node:os";
import { compose, type Handler } from "@smtpkit/core/server";
import { type SmtpServer, serve } from "@smtpkit/node";
import { type MetricsServer, serveMetrics } from "@smtpkit/observability";
import { WorkerSupervisor } from "@smtpkit/workers";
import { watchCertificates } from "./certificate-watch.js";
import { loadHandler } from "./load-handler.js";
import { cliObservation } from "./observe.js";
import {
  CliUsageError,
  describeServer,
  formatUsageError,
  PROGRAM,
  parseArgs,
  toServeOptions,
} from "./options.js";
import { policyFragments } from "./policy-flags.js";
import { dropToNobody, SETUID_FAILED } from "./privileges.js";
import { verifyFragments } from "./verify-flags.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

function fail(code: number, text: string): void {
  process.stderr.write(text);
  process.exitCode = code;
}

/** `host:port`, with brackets around an IPv6 host. */
function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `serve()`, and for "every interface" without IPv6 on the machine, 0.0.0.0 instead of ::. */
async function listen(
  handler: Handler,
  options: ReturnType<typeof toServeOptions>,
): Promise<SmtpServer> {
  try {
    return await serve(handler, options);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (options.host !== "::" || (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL")) throw error;
    return serve(handler, { ...options, host: "0.0.0.0" });
  }
}

async function main(argv: readonly string[]): Promise<void> {
  const parsed = parseArgs(argv, { version, exists: existsSync });
  if (parsed.kind === "exit") {
    process.stdout.write(parsed.stdout);
    process.stderr.write(parsed.stderr);
    process.exitCode = parsed.code;
    return;
  }
  const options = parsed.options;
  const observation = cliObservation(options, (line) => process.stderr.write(line));
  const log = observation.log;
  if (options.logFormat === "json") jsonLog = log;

  let loaded: Awaited<ReturnType<typeof loadHandler>>;
  let serveOptions: ReturnType<typeof toServeOptions>;
  try {
    loaded = await loadHandler(options.handler, { cwd: process.cwd() });
    serveOptions = toServeOptions(options, (path) => readFileSync(path), {
      hostname: machineHostname(),
    });
  } catch (error) {
    if (error instanceof CliUsageError)
      return fail(error.exitCode, formatUsageError(error.message));
    throw error;
  }

  const where = options.path ?? hostPort(options.host, options.port);
  // --metrics: served by the primary (summed over the workers with --workers), not by workers.
  let metrics: MetricsServer | null = null;
  if (options.metrics && cluster.isPrimary) {
    try {
      metrics = await serveMetrics({ ...options.metrics, cluster: options.workers > 1 });
    } catch (error) {
      const at = hostPort(options.metrics.host, options.metrics.port);
      return fail(
        1,
        `${PROGRAM}: error: cannot serve metrics on ${at}: ${(error as Error).message}\n`,
      );
    }
  }
  const metricsNote = metrics
    ? `, metrics on http://${hostPort(options.metrics?.host ?? "", metrics.port)}/metrics`
    : "";
  if (options.workers > 1 && cluster.isPrimary) {
    // --workers: this process supervises; each worker runs this same main() and serves.
    const supervisor = new WorkerSupervisor({
      workers: options.workers,
      onEvent: (event) => log.info(`workers: ${JSON.stringify(event)}`),
    });
    try {
      await supervisor.start();
    } catch (error) {
      await supervisor.stop();
      return fail(
        1,
        `${PROGRAM}: error: cannot start the workers on ${where}: ${(error as Error).message}\n`,
      );
    }
    const bound =
      options.path ??
      hostPort(options.host === "" ? "*" : options.host, supervisor.port ?? options.port);
    const summary = describeServer(options, serveOptions, loaded.label);
    // The supervisor's shutdown ends when the workers have exited: the metrics must not hold it.
    metrics?.server.unref();
    listening(`${bound} (${summary}, ${options.workers} workers${metricsNote})`);
    return;
  }
  log.debug(`Attempting to start server on ${where}`);
  let server: SmtpServer;
  try {
    const fragments = [...policyFragments(options), ...verifyFragments(options)];
    const handler = compose(...fragments, loaded.handler);
    server = await listen(handler, { ...serveOptions, ...observation.session });
  } catch (error) {
    return fail(1, `${PROGRAM}: error: cannot listen on ${where}: ${(error as Error).message}\n`);
  }

  if (options.setuid && !dropToNobody(process, () => readFileSync("/etc/passwd", "utf8"))) {
    process.stderr.write(`${SETUID_FAILED}\n`);
    await server.close();
    process.exit(1);
  }

  const bound = options.path ?? hostPort(options.host === "" ? "*" : options.host, server.port);
  log.info(`Server is listening on ${bound}`);
  // Certificate reloads are reported whatever -d says; as JSON lines with --log-format json.
  const json = options.logFormat === "json";
  const certificates = watchCertificates(server, options, serveOptions, {
    info: (message) =>
      json ? log.info(message) : process.stderr.write(`${PROGRAM}: ${message}\n`),
    error: (message) =>
      json ? log.error(message) : process.stderr.write(`${PROGRAM}: error: ${message}\n`),
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second Ctrl-C: do not wait for open sessions any longer.
      log.info(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    certificates?.close();
    log.info(`${signal}: closing the server`);
    Promise.all([server.close(), metrics?.close()]).then(
      () => {
        log.debug("Server closed");
        process.exitCode = 0;
        // Anything a handler left running (timers, sockets) must not keep the process alive.
        setTimeout(() => process.exit(0), 1000).unref();
      },
      (error: unknown) => {
        process.stderr.write(`${PROGRAM}: error while closing: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  if (cluster.isWorker) {
    // The supervisor decides: a terminal's Ctrl-C and hang-up reach the whole process group.
    process.on("SIGINT", () => undefined);
    process.on("SIGHUP", () => undefined);
    process.on("disconnect", () => stop("SIGTERM"));
  } else {
    process.on("SIGINT", stop);
    if (certificates) process.on("SIGHUP", () => certificates.reload("SIGHUP"));
  }
  // Only now: the line tells scripts the server is up, so a signal sent on seeing it must find
  // the handlers installed (stderr to a pipe is written synchronously).
  const summary = describeServer(options, serveOptions, loaded.label);
  if (cluster.isPrimary) listening(`${bound} (${summary}${metricsNote})`);
}

/** The start-up line scripts wait for: plain text, or a JSON line with `--log-format json`. */
function listening(text: string): void {
  if (jsonLog) jsonLog.info(`${PROGRAM} ${version} listening on ${text}`);
  else process.stderr.write(`${PROGRAM} ${version} listening on ${text}\n`);
}
let jsonLog: { info(message: string): void } | null = null;

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${PROGRAM}: error: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
