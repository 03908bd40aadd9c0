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
import { WorkerSupervisor } from "@smtpkit/workers";
import { loadHandler } from "./load-handler.js";
import { createLogger } from "./log.js";
import {
  CliUsageError,
  describeServer,
  formatUsageError,
  logLevel,
  PROGRAM,
  parseArgs,
  toServeOptions,
} from "./options.js";
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
  const log = createLogger(logLevel(options.debug), (line) => process.stderr.write(line));

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
    process.stderr.write(
      `${PROGRAM} ${version} listening on ${bound} (${summary}, ${options.workers} workers)\n`,
    );
    return;
  }
  log.debug(`Attempting to start server on ${where}`);
  let server: SmtpServer;
  try {
    // With -d the sessions report to the same log (credentials are masked by the server).
    const logger = options.debug > 0 ? log : undefined;
    const handler = compose(...verifyFragments(options), loaded.handler);
    server = await listen(handler, logger ? { ...serveOptions, logger } : serveOptions);
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
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second Ctrl-C: do not wait for open sessions any longer.
      log.info(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: closing the server`);
    server.close().then(
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
  }
  // Only now: the line tells scripts the server is up, so a signal sent on seeing it must find
  // the handlers installed (stderr to a pipe is written synchronously).
  const summary = describeServer(options, serveOptions, loaded.label);
  if (cluster.isPrimary)
    process.stderr.write(`${PROGRAM} ${version} listening on ${bound} (${summary})\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${PROGRAM}: error: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
