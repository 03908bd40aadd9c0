import { type Match, parseMatch } from "./filter.js";

/** Where in the dialog a rule applies. */
export const FAULT_STAGES = ["CONNECT", "AUTH", "MAIL", "RCPT", "DATA"] as const;
export type FaultStage = (typeof FAULT_STAGES)[number];

/** What a fault does: answer with `reply`, wait `delay` ms first, or drop the connection. */
export interface FaultAction {
  readonly reply?: string | undefined;
  readonly delay?: number | undefined;
  readonly drop?: boolean | undefined;
}

/**
 * A deterministic rule, as the Memory kit's `failNext(count, reply, { after })`: at `stage`,
 * let `after` matching events through, then act on the next `count` (every one when `count` is
 * null), for any recipient or only `recipient`'s.
 */
export interface FaultRule extends FaultAction {
  readonly id: string;
  readonly stage: FaultStage;
  readonly after: number;
  readonly count: number | null;
  readonly recipient?: Match | undefined;
}

export interface FaultState extends FaultRule {
  /** Matching events seen so far. */
  readonly seen: number;
  /** Times the rule acted. */
  readonly fired: number;
}

export class FaultError extends Error {}

const REPLY = /^[2-5]\d\d(?:[ -].*)?$/s;
const MAX_DELAY = 600_000;
const MAX_RULES = 1000;

/** The fault rules of one inbox, in the order they were added. */
export class Faults {
  #rules: { rule: FaultRule; seen: number; fired: number }[] = [];
  #nextId = 1;
  readonly #listeners = new Set<() => void>();

  /** Called whenever the rules change (added, fired, removed); returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** Adds a rule from its JSON form (`POST /api/v1/faults`); throws `FaultError` when it is wrong. */
  add(input: unknown): FaultState {
    if (this.#rules.length >= MAX_RULES) throw new FaultError(`at most ${MAX_RULES} rules`);
    const rule = parseRule(input, String(this.#nextId));
    this.#nextId++;
    const entry = { rule, seen: 0, fired: 0 };
    this.#rules.push(entry);
    this.#changed();
    return { ...rule, seen: 0, fired: 0 };
  }

  list(): FaultState[] {
    return this.#rules.map(({ rule, seen, fired }) => ({ ...rule, seen, fired }));
  }

  remove(id: string): boolean {
    const before = this.#rules.length;
    this.#rules = this.#rules.filter((r) => r.rule.id !== id);
    if (this.#rules.length !== before) this.#changed();
    return this.#rules.length !== before;
  }

  clear(): void {
    this.#rules = [];
    this.#changed();
  }

  /**
   * Counts one event at `stage` (with the recipients it concerns) against every rule and returns
   * the action of the first rule that fires, if any. A rule that has used up its count is removed.
   */
  decide(stage: FaultStage, recipients: readonly string[]): FaultAction | undefined {
    for (const entry of this.#rules) {
      const { rule } = entry;
      if (rule.stage !== stage) continue;
      if (
        rule.recipient !== undefined &&
        !recipients.some((r) => matches(rule.recipient as Match, r))
      )
        continue;
      entry.seen++;
      if (entry.seen <= rule.after) continue;
      entry.fired++;
      if (rule.count !== null && entry.fired >= rule.count)
        this.#rules = this.#rules.filter((r) => r !== entry);
      this.#changed();
      return { reply: rule.reply, delay: rule.delay, drop: rule.drop };
    }
    return undefined;
  }
}

function bare(address: string): string {
  return address.replace(/^<|>$/g, "").trim().toLowerCase();
}

function matches(match: Match, address: string): boolean {
  return match instanceof RegExp ? match.test(address) : bare(match) === bare(address);
}

function integer(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min)
    throw new FaultError(`${name} must be an integer >= ${min}`);
  return value;
}

function parseRule(input: unknown, id: string): FaultRule {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new FaultError("a fault rule is a JSON object");
  const o = input as Record<string, unknown>;
  const stage = String(o.stage ?? o.at ?? "DATA").toUpperCase();
  if (!(FAULT_STAGES as readonly string[]).includes(stage))
    throw new FaultError(`stage must be one of ${FAULT_STAGES.join(", ")}`);
  const nth = integer(o.nth, "nth", 1);
  const after = integer(o.after, "after", 0);
  if (nth !== undefined && after !== undefined) throw new FaultError("give nth or after, not both");
  const count = o.count === null ? null : (integer(o.count, "count", 1) ?? 1);
  let recipient: Match | undefined;
  if (o.recipient !== undefined && o.recipient !== null) {
    if (typeof o.recipient !== "string" || o.recipient === "")
      throw new FaultError("recipient must be an address or /regexp/");
    try {
      recipient = parseMatch(o.recipient);
    } catch (error) {
      throw new FaultError(`recipient: ${(error as Error).message}`);
    }
  }
  let reply: string | undefined;
  if (o.reply !== undefined && o.reply !== null) {
    if (typeof o.reply !== "string" || !REPLY.test(o.reply) || /[\r\n]/.test(o.reply))
      throw new FaultError('reply must be one SMTP reply line such as "451 4.3.0 Try later"');
    reply = o.reply;
  }
  const delay = integer(o.delay, "delay", 0);
  if (delay !== undefined && delay > MAX_DELAY)
    throw new FaultError(`delay is at most ${MAX_DELAY} ms`);
  const drop = o.drop === true;
  if (reply === undefined && delay === undefined && !drop)
    throw new FaultError("a rule needs a reply, a delay or drop: true");
  return {
    id,
    stage: stage as FaultStage,
    after: nth !== undefined ? nth - 1 : (after ?? 0),
    count,
    ...(recipient !== undefined && { recipient }),
    ...(reply !== undefined && { reply }),
    ...(delay !== undefined && { delay }),
    ...(drop && { drop }),
  };
}

/** A rule as JSON: a RegExp recipient as its `/source/flags` text. */
export function faultJson(state: FaultState): Record<string, unknown> {
  const { recipient, ...rest } = state;
  return {
    ...rest,
    ...(recipient !== undefined && {
      recipient: recipient instanceof RegExp ? String(recipient) : recipient,
    }),
  };
}
