import type { ReplyLike } from "@smtpkit/core";
import type { Envelope, HookResult, Session, SMTP } from "@smtpkit/core/server";
import { AsyncMessage, addressesOf, type MessageOptions, type ParsedMessage } from "./message.js";

/** A message kept by `Memory`: the parsed message plus when and in which order it arrived. */
export type StoredMessage = ParsedMessage & {
  /** 1, 2, 3, ... in arrival order (per `Memory`). */
  readonly id: number;
  readonly receivedAt: Date;
};

/** A string matches exactly (addresses: case-insensitively, `<>` ignored); a RegExp is tested. */
export type Match = string | RegExp;

/** What `waitFor()` looks for; every given field must match. */
export interface Criteria {
  /** An envelope recipient, or an address in the To or Cc header. */
  readonly to?: Match | undefined;
  /** The envelope sender, or the address in the From header. */
  readonly from?: Match | undefined;
  readonly subject?: Match | undefined;
  /** Anything else. */
  readonly where?: ((message: StoredMessage) => boolean) | undefined;
}

/** Which messages a view shows (`memory.scope(filter)`): `Criteria` plus a tag. */
export interface ScopeFilter extends Criteria {
  /**
   * A test-specific tag: a recipient's subaddress (`bob+TAG@example.com`) or an entry of an
   * `X-Tags` header (comma-separated, Mailpit's convention).
   */
  readonly tag?: string | undefined;
}

export interface WaitOptions {
  /** Milliseconds; default 3000 (below vitest's 5 s test timeout, so this error is the one shown). */
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A view of a `Memory`'s messages: everything, one recipient's, or one test's. */
export class Inbox {
  readonly #memory: Memory;
  readonly #label: string;
  readonly #accepts: (message: StoredMessage) => boolean;
  /** Only messages with a larger id are visible (moved on by `clear()`). */
  #after: number;

  /** @internal Use `memory.inbox()` or `memory.scope()`. */
  constructor(
    memory: Memory,
    label: string,
    accepts: (message: StoredMessage) => boolean,
    after: number,
  ) {
    this.#memory = memory;
    this.#label = label;
    this.#accepts = accepts;
    this.#after = after;
  }

  /** What this view shows, for messages: `all messages`, `inbox <bob@example.com>`, ... */
  get label(): string {
    return this.#label;
  }

  #visible(message: StoredMessage): boolean {
    return message.id > this.#after && this.#accepts(message);
  }

  /** The messages this view sees, oldest first. */
  get messages(): StoredMessage[] {
    return this.#memory.all.filter((m) => this.#visible(m));
  }

  /** The newest message this view sees, if any. */
  get last(): StoredMessage | undefined {
    return this.messages.at(-1);
  }

  /** Empties this view: it then shows only messages arriving later. Other views are unaffected. */
  clear(): void {
    this.#after = this.#memory.lastId;
  }

  /** The messages of this view that match. */
  find(criteria: Criteria = {}): StoredMessage[] {
    return this.messages.filter((m) => matches(m, criteria));
  }

  /**
   * Resolves with the first message of this view that matches `criteria`, one that has already
   * arrived or the next to arrive; rejects after `timeout` ms with an error that lists what did
   * arrive.
   */
  waitFor(criteria: Criteria = {}, options: WaitOptions = {}): Promise<StoredMessage> {
    const found = this.find(criteria)[0];
    if (found) return Promise.resolve(found);
    const timeout = options.timeout ?? 3000;
    const signal = options.signal;
    return new Promise((resolve, reject) => {
      const stop = () => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener("abort", onAbort);
      };
      const unsubscribe = this.#memory.subscribe((message) => {
        if (this.#visible(message) && matches(message, criteria)) {
          stop();
          resolve(message);
        }
      });
      const timer = setTimeout(() => {
        stop();
        reject(new Error(this.#timeoutMessage(criteria, timeout)));
      }, timeout);
      const onAbort = () => {
        stop();
        reject(signal?.reason ?? new Error("waitFor() aborted"));
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #timeoutMessage(criteria: Criteria, timeout: number): string {
    const wanted = describeCriteria(criteria);
    const seen = this.messages;
    const head = `waitFor(${wanted}) timed out after ${timeout} ms in ${this.#label}`;
    if (seen.length === 0) {
      const total = this.#memory.all.length;
      return `${head}: no message arrived here (${total} in the server in all${total > 0 ? `: ${summaries(this.#memory.all.slice(-10))}` : ""})`;
    }
    return `${head}; ${seen.length} message(s) arrived, none matching:\n${summaries(seen.slice(-20))}`;
  }
}

function summaries(messages: readonly StoredMessage[]): string {
  return messages.map(summary).join("\n");
}

/** `#2 <anne@example.com> → <bob@example.com> "Subject"`. */
export function summary(message: StoredMessage): string {
  const to = message.rcptTos.map((r) => `<${r}>`).join(", ");
  const subject = message.subject === undefined ? "(no subject)" : JSON.stringify(message.subject);
  return `  #${message.id} <${message.mailFrom === "<>" ? "" : (message.mailFrom ?? "")}> → ${to} ${subject}`;
}

function describeCriteria(criteria: Criteria): string {
  const parts: string[] = [];
  for (const key of ["to", "from", "subject"] as const) {
    const value = criteria[key];
    if (value !== undefined)
      parts.push(`${key}: ${value instanceof RegExp ? String(value) : JSON.stringify(value)}`);
  }
  if (criteria.where) parts.push("where: [function]");
  return `{ ${parts.join(", ")} }`;
}

function bare(address: string): string {
  return address.replace(/^<|>$/g, "").toLowerCase();
}

function matchAddress(candidates: readonly string[], want: Match): boolean {
  if (want instanceof RegExp) return candidates.some((c) => want.test(c));
  const target = bare(want);
  return candidates.some((c) => bare(c) === target);
}

function matches(message: StoredMessage, criteria: Criteria): boolean {
  if (criteria.to !== undefined) {
    const to = [...message.rcptTos, ...addressesOf(message.to), ...addressesOf(message.cc)];
    if (!matchAddress(to, criteria.to)) return false;
  }
  if (criteria.from !== undefined) {
    const from = [...(message.mailFrom ? [message.mailFrom] : []), ...addressesOf(message.from)];
    if (!matchAddress(from, criteria.from)) return false;
  }
  if (criteria.subject !== undefined) {
    const subject = message.subject;
    if (subject === undefined) return false;
    if (
      criteria.subject instanceof RegExp
        ? !criteria.subject.test(subject)
        : subject !== criteria.subject
    )
      return false;
  }
  return criteria.where ? criteria.where(message) : true;
}

function hasTag(message: StoredMessage, tag: string): boolean {
  for (const rcpt of message.rcptTos) {
    const at = rcpt.lastIndexOf("@");
    const local = at === -1 ? rcpt : rcpt.slice(0, at);
    const plus = local.indexOf("+");
    if (plus >= 0 && local.slice(plus + 1) === tag) return true;
  }
  return message
    .headerAll("X-Tags")
    .some((value) => value.split(",").some((entry) => entry.trim() === tag));
}

interface Fault {
  skip: number;
  remaining: number;
  readonly reply: ReplyLike;
}

/**
 * The test kit: keeps every message in memory (parsed, `StoredMessage`), with isolated views per
 * recipient (`inbox(address)`) or per test (`scope()`), `await waitFor({ to, subject })`, and
 * deterministic fault injection (`failNext()`, `rejectRecipient()`).
 *
 * A message is stored before the client gets its `250`, so once `sendMail()` resolved, the
 * message is there. One `Memory` per server: its views are independent of each other.
 *
 * ```ts
 * const memory = new Memory();
 * const server = await serve(memory, { host: "127.0.0.1", port: 0 });
 * // ... send to bob@example.com ...
 * const message = await memory.inbox("bob@example.com").waitFor({ subject: "Welcome" });
 * ```
 */
export class Memory extends AsyncMessage {
  readonly #messages: StoredMessage[] = [];
  readonly #listeners = new Set<(message: StoredMessage) => void>();
  #nextId = 1;
  #faults: Fault[] = [];
  #rejections: { match: Match; reply: ReplyLike }[] = [];
  readonly #everything: Inbox;

  constructor(options: MessageOptions = {}) {
    super(options);
    this.#everything = new Inbox(this, "all messages", () => true, 0);
  }

  /** Every message kept, oldest first (`clear()` on a view does not remove any). */
  get all(): readonly StoredMessage[] {
    return this.#messages;
  }

  /** Every message not hidden by `memory.clear()`. */
  get messages(): StoredMessage[] {
    return this.#everything.messages;
  }

  /** @internal The id of the newest message (0 if none). */
  get lastId(): number {
    return this.#nextId - 1;
  }

  /** The messages for one envelope recipient (case-insensitive), past and future. */
  inbox(address: string): Inbox {
    const target = bare(address);
    return new Inbox(
      this,
      `inbox <${address}>`,
      (m) => m.rcptTos.some((r) => bare(r) === target),
      0,
    );
  }

  /**
   * A fresh view for one test: it sees only messages arriving from now on, and of those only the
   * ones matching `filter` (a `tag`, a recipient, ...), if given.
   */
  scope(filter: ScopeFilter = {}): Inbox {
    const { tag, ...criteria } = filter;
    const label = tag === undefined ? "scope" : `scope [tag ${tag}]`;
    return new Inbox(
      this,
      label,
      (m) => (tag === undefined || hasTag(m, tag)) && matches(m, criteria),
      this.lastId,
    );
  }

  /** Shortcut for `memory.messages` waiting: any message matching `criteria`. */
  waitFor(criteria: Criteria = {}, options: WaitOptions = {}): Promise<StoredMessage> {
    return this.#everything.waitFor(criteria, options);
  }

  /** Hides every message so far from `memory.messages`/`memory.waitFor()` (views keep theirs). */
  clear(): void {
    this.#everything.clear();
  }

  /** Forgets every message (in every view) and every injected fault. */
  reset(): void {
    this.#messages.length = 0;
    this.#faults = [];
    this.#rejections = [];
  }

  /**
   * Fault injection: the next `count` messages are refused with `reply` at the end of DATA (and
   * not kept), after letting `after` messages through first. `failNext(1, "421 4.3.2 Busy",
   * { after: 2 })` refuses the third message. Calls queue up in order.
   */
  failNext(count: number, reply: ReplyLike, options: { after?: number } = {}): this {
    if (!(Number.isInteger(count) && count > 0))
      throw new RangeError("count must be a positive integer");
    const after = options.after ?? 0;
    if (!(Number.isInteger(after) && after >= 0))
      throw new RangeError("after must be an integer >= 0");
    this.#faults.push({ skip: after, remaining: count, reply });
    return this;
  }

  /**
   * Fault injection: `RCPT TO` for `address` (case-insensitive; or any address a RegExp matches)
   * is answered with `reply` (e.g. `"550 5.1.1 No such user"`), until `clearFaults()`.
   */
  rejectRecipient(address: Match, reply: ReplyLike): this {
    this.#rejections.push({ match: address, reply });
    return this;
  }

  /** Removes every injected fault. */
  clearFaults(): void {
    this.#faults = [];
    this.#rejections = [];
  }

  /** @internal Called with every new message; returns the unsubscribe function. */
  subscribe(listener: (message: StoredMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  handleRCPT(_server: SMTP, _session: Session, _envelope: Envelope, address: string): HookResult {
    for (const { match, reply } of this.#rejections) {
      if (matchAddress([address], match)) return reply;
    }
    return undefined;
  }

  override async handleDATA(
    server: SMTP,
    session: Session,
    envelope: Envelope,
    signal?: AbortSignal,
  ): Promise<HookResult> {
    const fault = this.#faults[0];
    if (fault) {
      if (fault.skip > 0) {
        fault.skip--;
      } else {
        fault.remaining--;
        if (fault.remaining === 0) this.#faults.shift();
        return fault.reply;
      }
    }
    return super.handleDATA(server, session, envelope, signal);
  }

  async handleMessage(message: ParsedMessage): Promise<void> {
    const stored: StoredMessage = {
      ...message,
      id: this.#nextId++,
      receivedAt: new Date(),
    };
    this.#messages.push(stored);
    for (const listener of [...this.#listeners]) listener(stored);
  }
}
