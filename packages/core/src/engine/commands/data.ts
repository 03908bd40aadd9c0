/**
 * Message bodies: DATA and BDAT (RFC 3030), their readers, the SIZE limit on the body (the DATA
 * reader counts octets; BDAT adds chunk sizes before reading them), and the answer to a body,
 * including LMTP's one reply per accepted recipient (RFC 2033 §4.2).
 */
import type { BodyEndEvent } from "../../events.js";
import type { Reply } from "../../reply.js";
import { DataReader } from "../../syntax/data-reader.js";
import { type Dialog, PENDING, rejection } from "../dialog.js";
import { type CatalogueReply, REPLIES, TEMPLATES } from "../replies.js";
import type { Command } from "./command.js";
import { refuse } from "./command.js";

const BDAT_ARGUMENT = /^(\d{1,15})(?: +(LAST))?$/i;
const DATA_START = Object.freeze({ type: "dataStart" as const, via: "DATA" as const });
const BDAT_START = Object.freeze({ type: "dataStart" as const, via: "BDAT" as const });

/** COMMAND_RULES: greeting, auth, recipients, no argument, no BDAT body open. */
export const data: Command = {
  run(d) {
    d.write(REPLIES.startData);
    const o = d.options;
    d.state.body = {
      via: "DATA",
      reader: new DataReader({
        maxSize: o.dataSizeLimit,
        maxLineLength: o.lineLengthLimit,
        lineEndings: o.lineEndings,
      }),
      size: 0,
    };
    d.transition("dataStart");
    d.emit(DATA_START);
  },
};

interface BdatArgs {
  readonly size: number;
  readonly last: boolean;
}

/**
 * COMMAND_RULES: the size argument first (501 with nothing read: the size is unknown), then
 * greeting, auth, recipients. Whatever the verdict after the syntax, the chunk's bytes follow
 * and are read, never parsed as commands.
 */
export const bdat: Command<BdatArgs> = {
  parse(_d, _verb, argument) {
    const match = argument === null ? null : BDAT_ARGUMENT.exec(argument);
    if (!match) return refuse(REPLIES.bdatSyntax);
    return { size: Number(match[1]), last: match[2] !== undefined };
  },
  refuse(d, verb, reply, chunk) {
    if (chunk === undefined) return d.reject(verb, reply);
    refuseChunk(d, chunk, reply, false);
  },
  run(d, _verb, _argument, chunk) {
    const body = d.state.body;
    // The SIZE limit for BDAT: checked before the chunk is read, so it is never buffered.
    const limit = d.options.dataSizeLimit;
    if (limit > 0 && (body?.size ?? 0) + chunk.size > limit) {
      return refuseChunk(d, chunk, REPLIES.tooMuchData, true);
    }
    d.state.chunk = { remaining: chunk.size, ...chunk, rejectWith: null, abortsBody: false };
    if (body) {
      body.size += chunk.size;
      d.transition("bdatChunk");
    } else {
      d.state.body = { via: "BDAT", reader: null, size: chunk.size };
      d.transition("bdatChunk");
      d.emit(BDAT_START);
    }
  },
};

function refuseChunk(
  d: Dialog,
  chunk: BdatArgs,
  entry: CatalogueReply | Reply,
  abortsBody: boolean,
): void {
  const reply = "lines" in entry ? entry : d.catalogue(entry);
  d.emit(rejection("BDAT", reply));
  d.state.chunk = { remaining: chunk.size, ...chunk, rejectWith: reply, abortsBody };
  d.transition("bdatChunk");
}

/** The "data" phase: body bytes through the DATA reader (dot-unstuffing, limits). */
export function readDataBody(d: Dialog): boolean {
  const reader = d.state.body?.reader;
  if (!reader) return false;
  const head = d.input.head();
  if (head.length === 0) return false;
  const out: Uint8Array[] = [];
  d.input.skip(reader.feed(head, out));
  for (const chunk of out) d.emit({ type: "bodyChunk", data: chunk });
  if (reader.done) endBody(d, reader.error, reader.size);
  return true;
}

/** The "bdat" phase: exactly the chunk's octets. */
export function readBdatChunk(d: Dialog): boolean {
  const chunk = d.state.chunk;
  if (!chunk) return false;
  if (chunk.remaining > 0) {
    const head = d.input.head();
    if (head.length === 0) return false;
    const n = Math.min(head.length, chunk.remaining);
    if (!chunk.rejectWith) d.emit({ type: "bodyChunk", data: head.subarray(0, n) });
    d.input.skip(n);
    chunk.remaining -= n;
    if (chunk.remaining > 0) return true;
  }
  d.state.chunk = null;
  const body = d.state.body;
  if (chunk.rejectWith) {
    // The LAST chunk ends the body: in LMTP that is one reply per accepted recipient.
    const perRecipient = d.options.lmtp && chunk.last && chunk.abortsBody;
    const count = perRecipient ? Math.max(1, d.state.recipients.length) : 1;
    for (let i = 0; i < count; i++) d.write(chunk.rejectWith, "data");
    if (chunk.abortsBody && body) endBody(d, "tooMuchData", body.size + chunk.size, false);
    else d.transition(chunk.abortsBody ? "bodyFailed" : "chunkDone");
    return true;
  }
  if (chunk.last) {
    endBody(d, null, body?.size ?? 0);
  } else {
    d.write(TEMPLATES.octetsReceived(chunk.size), "data");
    d.transition("chunkDone");
  }
  return true;
}

const ERROR_REPLIES = {
  lineTooLong: REPLIES.lineTooLong,
  tooMuchData: REPLIES.tooMuchData,
  bareLineEnding: REPLIES.bareLineEnding,
} as const;

/** The body is complete: awaits the program's answer, or is refused for a limit. */
function endBody(d: Dialog, error: BodyEndEvent["error"], size: number, replyToError = true) {
  const event: BodyEndEvent = { type: "bodyEnd", error, size, recipients: [...d.state.recipients] };
  if (error === null) return d.await(PENDING.bodyEnd, event, "bodyComplete");
  if (replyToError && error !== "aborted") {
    // LMTP answers the body once per accepted recipient, errors included (RFC 2033 §4.2).
    const count = d.options.lmtp ? Math.max(1, d.state.recipients.length) : 1;
    for (let i = 0; i < count; i++) d.write(ERROR_REPLIES[error], "data");
  }
  d.transition("bodyFailed");
  d.emit(event);
}

/**
 * The answer to a complete body; returns the (first) code sent. SMTP: one reply. LMTP: one per
 * accepted recipient, from `perRecipient` (the caller checked its length), or `reply` for all,
 * or 250 OK for all. A reply the program already pushed counts as the answer.
 */
export function answerBody(
  d: Dialog,
  reply: Reply | null,
  perRecipient: readonly Reply[] | null,
  pushed: number | null,
): number {
  let code: number;
  if (!d.options.lmtp) {
    const final = reply ?? (pushed === null ? REPLIES.ok : null);
    if (final) d.write(final, "data");
    code = final?.code ?? pushed ?? 250;
  } else {
    const count = d.state.recipients.length;
    code = perRecipient?.[0]?.code ?? reply?.code ?? pushed ?? 250;
    if (perRecipient || reply || pushed === null) {
      for (let i = 0; i < count; i++) {
        d.write(perRecipient?.[i] ?? reply ?? REPLIES.ok, "data");
      }
    }
  }
  d.transition("bodyAnswered");
  return code;
}

/** How many replies `replyPerRecipient()` must get after an LMTP body. */
export function recipientCount(d: Dialog): number {
  return d.state.recipients.length;
}
