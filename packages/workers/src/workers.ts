/**
 * Every core: N worker processes (node:cluster) sharing one listening socket, under a supervisor
 * that restarts a crashed worker with backoff, passes SIGTERM/SIGINT on as a graceful shutdown
 * (each worker finishes its open transactions, then exits) and turns SIGHUP into a rolling
 * restart. Node only: Deno has no cluster, Bun's `reusePort` is Linux-only (see the README).
 */
import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import type { Handler } from "@smtpkit/core/server";
import { type ServeOptions, type SmtpServer, serve } from "@smtpkit/node";

export type WorkerEvent =
  | { readonly type: "listening"; readonly pid: number; readonly port: number | null }
  | {
      readonly type: "exit";
      readonly pid: number;
      readonly code: number | null;
      readonly signal: string | null;
      /** Milliseconds until its replacement starts; absent when the supervisor is stopping. */
      readonly restartIn?: number;
    }
  | { readonly type: "signal"; readonly signal: NodeJS.Signals };

export interface SupervisorOptions {
  /** Worker processes; `"auto"`: `os.availableParallelism()`. */
  readonly workers: number | "auto";
  /** First restart delay after a crash in ms; doubles per crash in a row. Default 100. */
  readonly restartDelay?: number | undefined;
  /** Longest restart delay in ms. Default 10000. */
  readonly maxRestartDelay?: number | undefined;
  /** A worker that ran this long (ms) before crashing restarts after `restartDelay` again. Default 30000. */
  readonly stableAfter?: number | undefined;
  /** Milliseconds a worker gets to drain before SIGKILL on shutdown. Default 35000. */
  readonly killTimeout?: number | undefined;
  /** Handle SIGTERM, SIGINT and SIGHUP in this process. Default true. */
  readonly handleSignals?: boolean | undefined;
  readonly onEvent?: ((event: WorkerEvent) => void) | undefined;
}

/** `"auto"` → the number of cores this process may use. */
export function workerCount(workers: number | "auto"): number {
  const count = workers === "auto" ? availableParallelism() : workers;
  if (!Number.isSafeInteger(count) || count < 1)
    throw new RangeError(`workers must be at least 1, got ${workers}`);
  return count;
}

/** The primary's side: forks the workers and keeps them running until `stop()`. */
export class WorkerSupervisor {
  readonly count: number;
  readonly #options: SupervisorOptions;
  readonly #live = new Map<Worker, { started: number; listening: boolean }>();
  /** Workers being replaced or stopped on purpose: their exit is no crash. */
  readonly #retiring = new Set<Worker>();
  #crashes = 0;
  #stopping: Promise<void> | null = null;
  #port: number | null = null;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #signals: [NodeJS.Signals, () => void][] = [];

  constructor(options: SupervisorOptions) {
    if (!cluster.isPrimary) throw new Error("WorkerSupervisor runs in the primary process");
    this.#options = options;
    this.count = workerCount(options.workers);
  }

  /** The workers' process ids. */
  get pids(): number[] {
    return [...this.#live.keys()].map((worker) => worker.process.pid ?? 0);
  }

  /** The port the workers listen on (known once one listens). */
  get port(): number | null {
    return this.#port;
  }

  /** Forks the workers; resolves once all of them listen (rejects if one exits first). */
  start(): Promise<void> {
    if (this.#options.handleSignals !== false) {
      const on = (signal: NodeJS.Signals, run: () => void) => {
        const listener = () => {
          this.#options.onEvent?.({ type: "signal", signal });
          run();
        };
        process.on(signal, listener);
        this.#signals.push([signal, listener]);
      };
      let signalled = false;
      const shutdown = () => {
        if (signalled) {
          // A second signal: stop waiting for the workers to drain.
          for (const worker of this.#live.keys()) worker.process.kill("SIGKILL");
          process.exit(1);
        }
        signalled = true;
        void this.stop().then(() => {
          process.exitCode = 0;
        });
      };
      on("SIGTERM", shutdown);
      on("SIGINT", shutdown);
      on("SIGHUP", () => void this.reload());
    }
    const forks = Array.from({ length: this.count }, () => this.#fork());
    return Promise.all(forks).then(() => undefined);
  }

  #fork(): Promise<Worker> {
    const worker = cluster.fork();
    this.#live.set(worker, { started: Date.now(), listening: false });
    return new Promise((resolve, reject) => {
      worker.once("listening", (address) => {
        const state = this.#live.get(worker);
        if (state) state.listening = true;
        this.#port = typeof address.port === "number" ? address.port : this.#port;
        this.#options.onEvent?.({
          type: "listening",
          pid: worker.process.pid ?? 0,
          port: this.#port,
        });
        resolve(worker);
      });
      worker.once("exit", (code, signal) => {
        reject(
          new Error(`worker ${worker.process.pid} exited (${signal ?? code}) before listening`),
        );
        this.#exited(worker, code, signal);
      });
    });
  }

  #exited(worker: Worker, code: number | null, signal: string | null): void {
    const state = this.#live.get(worker);
    this.#live.delete(worker);
    const pid = worker.process.pid ?? 0;
    if (this.#retiring.delete(worker) || this.#stopping) {
      this.#options.onEvent?.({ type: "exit", pid, code, signal });
      return;
    }
    const base = this.#options.restartDelay ?? 100;
    if (state && Date.now() - state.started > (this.#options.stableAfter ?? 30_000))
      this.#crashes = 0;
    const restartIn = Math.min(base * 2 ** this.#crashes, this.#options.maxRestartDelay ?? 10_000);
    this.#crashes++;
    this.#options.onEvent?.({ type: "exit", pid, code, signal, restartIn });
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#stopping) this.#fork().catch(() => undefined); // its own exit schedules the next try
    }, restartIn);
    this.#timers.add(timer);
  }

  /** Rolling restart: each worker is replaced by a new one, which listens before the old one drains. */
  async reload(): Promise<void> {
    for (const old of [...this.#live.keys()]) {
      if (this.#stopping) return;
      await this.#fork().catch(() => undefined);
      if (!this.#live.has(old)) continue;
      this.#retiring.add(old);
      await this.#drain(old);
    }
  }

  /** SIGTERM to one worker, SIGKILL after `killTimeout`; resolves when it has exited. */
  #drain(worker: Worker): Promise<void> {
    if (worker.process.exitCode !== null || worker.process.signalCode !== null)
      return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => worker.process.kill("SIGKILL"),
        this.#options.killTimeout ?? 35_000,
      );
      worker.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      worker.process.kill("SIGTERM");
    });
  }

  /** Graceful shutdown: no more restarts, every worker drains its open transactions and exits. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const timer of this.#timers) clearTimeout(timer);
      this.#timers.clear();
      await Promise.all([...this.#live.keys()].map((worker) => this.#drain(worker)));
      for (const [signal, listener] of this.#signals) process.off(signal, listener);
    })();
    return this.#stopping;
  }
}

/**
 * The worker's side of `serveWorkers()`: serves, and on SIGTERM (sent by the supervisor) closes
 * gracefully (open transactions finish and get their reply), then exits 0. SIGINT and SIGHUP are
 * the supervisor's to act on: a terminal's Ctrl-C reaches the whole process group.
 */
export async function serveInWorker(handler: Handler, options: ServeOptions): Promise<SmtpServer> {
  const server = await serve(handler, options);
  let closing = false;
  const close = () => {
    if (closing) return;
    closing = true;
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", close);
  process.on("SIGINT", () => undefined);
  process.on("SIGHUP", () => undefined);
  // The supervisor is gone: do not linger as an orphan.
  process.on("disconnect", close);
  return server;
}

/**
 * `serve()` on every core: in the primary, starts a supervisor with `options.workers` worker
 * processes and resolves once they all listen; in a worker (the same script, run again by
 * node:cluster), builds the handler with `createHandler()` and serves on the shared socket.
 */
export async function serveWorkers(
  createHandler: () => Handler | Promise<Handler>,
  options: ServeOptions & SupervisorOptions,
): Promise<WorkerSupervisor | SmtpServer> {
  const {
    workers,
    restartDelay,
    maxRestartDelay,
    stableAfter,
    killTimeout,
    handleSignals,
    onEvent,
    ...serveOptions
  } = options;
  if (cluster.isPrimary) {
    const supervisor = new WorkerSupervisor({
      workers,
      restartDelay,
      maxRestartDelay,
      stableAfter,
      killTimeout,
      handleSignals,
      onEvent,
    });
    await supervisor.start();
    return supervisor;
  }
  return serveInWorker(await createHandler(), serveOptions);
}
