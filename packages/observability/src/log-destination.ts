import { pino } from "pino";

export interface LogDestinationOptions {
  /** A file descriptor (default 1, stdout) or a path; what `pino.destination()` takes as `dest`. */
  readonly dest?: number | string;
  /** Lines are held until this many characters are waiting, then written at once. Default 4096. */
  readonly bytes?: number;
  /** Held lines are written at least this often, in milliseconds (0: only by size). Default 250. */
  readonly intervalMs?: number;
}

/** A pino destination (a stream pino writes its lines to) that batches them. */
export interface LogDestination {
  write(line: string): boolean;
  /** Writes the held lines now, then calls `callback` (pino's `logger.flush(cb)`). */
  flush(callback?: (error?: Error | null) => void): void;
  /** Writes the held lines and waits until they are out (at exit). */
  flushSync(): void;
  /** Flushes, stops the timer and closes the file. */
  end(): void;
}

/**
 * The destination for JSON logs on a busy server: `pino(options, logDestination({ dest: 2 }))`.
 * pino's own buffered destination (`minLength`) measures its whole buffer again on every line,
 * which costs more than the line; this one keeps the lines as they come and hands them to a
 * `pino.destination()` 4 KiB at a time, so a message's log line costs little more than pino
 * formatting it. At most `bytes` characters (plus one line) wait in memory; they are written by
 * size, by the timer, and on `flushSync()` (call it at exit). Writes are synchronous, as pino's
 * default destination's: a slow reader of the log slows the server down rather than growing a
 * queue of lines in memory.
 */
export function logDestination(options: LogDestinationOptions = {}): LogDestination {
  const bytes = options.bytes ?? 4096;
  if (!(Number.isInteger(bytes) && bytes >= 0))
    throw new RangeError("bytes must be an integer >= 0");
  const stream = pino.destination({ dest: options.dest ?? 1, sync: true });
  let lines: string[] = [];
  let waiting = 0;
  const write = () => {
    if (lines.length === 0) return;
    const text = lines.length === 1 ? (lines[0] as string) : lines.join("");
    lines = [];
    waiting = 0;
    stream.write(text);
  };
  const intervalMs = options.intervalMs ?? 250;
  const timer = intervalMs > 0 ? setInterval(write, intervalMs) : null;
  timer?.unref();
  return {
    write(line) {
      lines.push(line);
      waiting += line.length;
      if (waiting >= bytes) write();
      return true;
    },
    flush(callback) {
      write();
      callback?.();
    },
    flushSync() {
      write();
      stream.flushSync();
    },
    end() {
      if (timer) clearInterval(timer);
      write();
      stream.end();
    },
  };
}
