import type { SmtpObserver } from "@smtpkit/core/server";

/** One line of a session's dialog, as `-dd` prints it (`> ` client, `< ` server). */
export interface TranscriptLine {
  readonly sessionId: string;
  readonly from: "client" | "server";
  readonly line: string;
}

/**
 * A transcript sink: `write` gets every line of every session's dialog, AUTH payloads masked as
 * `********`. Lines of one session come in order; sessions interleave (group by `sessionId`).
 */
export function transcriptObserver(write: (line: TranscriptLine) => void): SmtpObserver {
  return {
    transcript({ session, from, line }) {
      write({ sessionId: session.id, from, line });
    },
  };
}
