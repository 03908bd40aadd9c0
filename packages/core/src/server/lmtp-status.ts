import type { ServerConnection } from "../engine/connection.js";
import { catalogueReply, REPLIES } from "../engine/replies.js";
import { type Reply, toReply } from "../reply.js";
import type { Handler } from "./handler.js";
import { type ErrorLog, failure, type Outcome } from "./hooks.js";

/** What a recipient without a status of its own gets: temporary, so the client tries it again. */
export const NO_STATUS: Reply = Object.freeze(catalogueReply(REPLIES.noDeliveryStatus, true));

/**
 * LMTP's one reply per accepted recipient (RFC 2033 §4.2), from whatever the body hook gave
 * (go-smtp's StatusCollector idea): the client always gets exactly `count` replies.
 *
 * - a single reply (or a hook failure's reply) stands for every recipient;
 * - a list maps in recipient order; recipients past its end get `NO_STATUS`, extra entries are
 *   dropped, and an entry that is not a reply counts as missing;
 * - `problem` says what was wrong with the list, for the log.
 */
export function recipientReplies(
  value: unknown,
  count: number,
): { replies: Reply[]; problem: string | null } {
  if (!Array.isArray(value)) {
    const single = toReply(value as Reply);
    return { replies: new Array<Reply>(count).fill(single), problem: null };
  }
  const replies: Reply[] = [];
  let malformed = 0;
  for (let i = 0; i < count; i++) {
    const entry: unknown = value[i];
    let reply = NO_STATUS;
    if (entry !== undefined && entry !== null) {
      try {
        reply = toReply(entry as Reply);
      } catch {
        malformed++;
      }
    }
    replies.push(reply);
  }
  const problems: string[] = [];
  if (value.length < count) problems.push(`${count - value.length} missing`);
  if (value.length > count) problems.push(`${value.length - count} extra dropped`);
  if (malformed > 0) problems.push(`${malformed} not a reply`);
  const problem =
    problems.length === 0
      ? null
      : `LMTP body hook gave ${value.length} replies for ${count} recipients (${problems.join(", ")})`;
  return { replies, problem };
}

/** Answers an LMTP body: exactly one reply per accepted recipient; returns the first code. */
export async function answerRecipients(
  connection: ServerConnection,
  outcome: Outcome,
  count: number,
  handler: Handler,
  logError: ErrorLog,
): Promise<number> {
  let value: unknown = outcome.error ?? outcome.value;
  if (value === undefined || value === null) return connection.accept();
  let replies: Reply[];
  try {
    const collected = recipientReplies(value, count);
    if (collected.problem) logError(collected.problem);
    replies = collected.replies;
  } catch (error) {
    // A single value that is not a reply: the hook's failure, for every recipient.
    value = await failure(error, handler, logError);
    replies = recipientReplies(value, count).replies;
  }
  return connection.replyPerRecipient(replies);
}
