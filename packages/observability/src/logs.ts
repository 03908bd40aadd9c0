import type { PeerAddress, Session, SmtpObserver } from "@smtpkit/core/server";

/** One leveled method: an object of fields first, then the message (pino's order). */
export type LogMethod = (fields: Record<string, unknown>, message?: string) => void;

/**
 * The logger the log observer writes to: pino's shape (`child(bindings)`, leveled methods taking
 * an object and a message), so a pino logger, or anything compatible, is passed as it is.
 */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  error: LogMethod;
  warn: LogMethod;
  info: LogMethod;
  debug: LogMethod;
  /** pino's: when it says debug is off, the debug-level events are not even subscribed to. */
  isLevelEnabled?(level: string): boolean;
}

export interface LogObserverOptions {
  /** Log every dialog line (`event: "transcript"`, level debug), AUTH payloads masked. Default false. */
  readonly transcript?: boolean;
}

/** `addr:port`, a Unix socket's path (or `unix`), or `null` when unknown. */
export function peerText(peer: PeerAddress | null): string | null {
  if (!peer) return null;
  if (peer.family === "unix") return peer.address || "unix";
  return peer.family === "IPv6" ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
}

/**
 * The logger for lines outside any session (start-up, shutdown, a connection refused before it
 * became a session): every line carries `sessionId: null`.
 */
export function serverLogger(logger: Logger): Logger {
  return logger.child({ sessionId: null });
}

/**
 * Logs each session as structured lines. Every line of a session carries `sessionId` (the
 * session's id) and `peer` (the client's `addr:port` at connect), lines about a transaction also
 * `transactionId`; `event` names what happened (the message says it in words):
 *
 * | event | level | fields |
 * | --- | --- | --- |
 * | `connect` | info | `local` (`addr:port` the client connected to) |
 * | `tls` | info | `implicit`, `protocol`, `cipher` |
 * | `auth` | info (warn on failure) | `mechanism`, `success` |
 * | `mail` | debug | `transactionId` (when accepted), `address`, `code` |
 * | `rcpt` | debug | `transactionId`, `address`, `code` |
 * | `data` | info | `transactionId`, `from` (the accepted MAIL's address), `result` (accepted/rejected/aborted), `code`, `bytes`, `durationMs`, `recipients` |
 * | `reject` | info | `command`, `code` |
 * | `limit` | warn | `limit` (the option's name), `code` |
 * | `error` | error | `error` (the message) |
 * | `close` | info | `reason`, `durationMs`, `bytesIn`, `bytesOut` |
 * | `command` | debug | `command` |
 * | `reply` | debug | `code` |
 * | `transcript` | debug | `from` (client/server), `line` (only with `transcript: true`) |
 *
 * At info a message is one line (`data`), a refused MAIL or RCPT one more (`reject`). The
 * debug-level events are subscribed to only when the logger has debug on when this is called
 * (pino's `isLevelEnabled`), so an info-level log costs nothing per command.
 * Credentials never reach it: AUTH arguments and responses are not in the events, and the
 * transcript masks them.
 */
export function logObserver(logger: Logger, options: LogObserverOptions = {}): SmtpObserver {
  /** Each session's logger: a child with its `sessionId` and `peer`. */
  const sessions = new Map<string, Logger>();
  const server = serverLogger(logger);
  const of = (session: Session): Logger => {
    let log = sessions.get(session.id);
    if (!log) {
      log = logger.child({ sessionId: session.id, peer: peerText(session.peer) });
      sessions.set(session.id, log);
    }
    return log;
  };
  const observer: SmtpObserver = {
    connect({ session }) {
      const local =
        session.localAddress === null ? null : `${session.localAddress}:${session.localPort}`;
      of(session).info({ event: "connect", local }, "connected");
    },
    tls({ session, tls, implicit }) {
      const fields = {
        event: "tls",
        implicit,
        protocol: tls.protocol ?? null,
        cipher: tls.cipher ?? null,
      };
      of(session).info(fields, implicit ? "implicit TLS" : "STARTTLS done");
    },
    auth({ session, mechanism, success }) {
      const log = of(session);
      const fields = { event: "auth", mechanism, success };
      if (success) log.info(fields, `AUTH ${mechanism} succeeded`);
      else log.warn(fields, `AUTH ${mechanism} failed`);
    },
    data({ session, transactionId, from, result, code, bytes, durationMs, recipients }) {
      const fields = {
        event: "data",
        transactionId,
        from,
        result,
        code,
        bytes,
        durationMs: Math.round(durationMs * 1000) / 1000, // to the microsecond
        recipients,
      };
      of(session).info(
        fields,
        `message ${result}${code === null ? "" : ` (${code})`}, ${bytes} bytes`,
      );
    },
    reject({ session, transactionId, command, code }) {
      of(session).info(
        { event: "reject", transactionId, command, code },
        `${command || "line"} refused with ${code}`,
      );
    },
    limit({ session, limit, code }) {
      (session ? of(session) : server).warn({ event: "limit", limit, code }, `${limit} reached`);
    },
    error({ session, message }) {
      of(session).error({ event: "error", error: message }, message.split("\n", 1)[0] ?? "");
    },
    close({ session, reason, durationMs, bytesIn, bytesOut }) {
      of(session).info(
        { event: "close", reason, durationMs, bytesIn, bytesOut },
        `closed (${reason})`,
      );
      sessions.delete(session.id);
    },
  };
  // Debug lines cost an event per command and reply: only when they would be written.
  if (logger.isLevelEnabled?.("debug") === false) return observer;
  observer.mail = (event) => {
    const { session, transactionId, address, code } = event;
    of(session).debug(
      { event: "mail", transactionId, address, code },
      `MAIL FROM:<${address}> ${code}`,
    );
  };
  observer.rcpt = ({ session, transactionId, address, code }) => {
    of(session).debug(
      { event: "rcpt", transactionId, address, code },
      `RCPT TO:<${address}> ${code}`,
    );
  };
  observer.command = ({ session, verb }) => {
    of(session).debug({ event: "command", command: verb }, verb || "line");
  };
  observer.reply = ({ session, code }) => {
    of(session).debug({ event: "reply", code }, String(code));
  };
  if (options.transcript) {
    observer.transcript = ({ session, from, line }) => {
      of(session).debug({ event: "transcript", from, line }, line);
    };
  }
  return observer;
}
