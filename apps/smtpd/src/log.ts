/**
 * The CLI's log lines, in Python logging's default `LEVEL:logger:message` form as aiosmtpd's
 * `logging.basicConfig()` prints them (`INFO:mail.log:Server is listening on localhost:8025`).
 */
export type Level = "error" | "info" | "debug";

const RANK: Record<Level, number> = { error: 40, info: 20, debug: 10 };

export interface Logger {
  readonly level: Level;
  error(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export function createLogger(
  level: Level,
  write: (line: string) => void,
  name = "mail.log",
): Logger {
  const emit = (at: Level) => (message: string) => {
    if (RANK[at] >= RANK[level]) write(`${at.toUpperCase()}:${name}:${message}\n`);
  };
  return { level, error: emit("error"), info: emit("info"), debug: emit("debug") };
}
