import { randomUUID } from "node:crypto";
import { type Filter, parseMatch } from "./filter.js";
import type { MessageStore } from "./store.js";

/** A scope as given (`/regexp/` strings unparsed), kept in the database. */
export interface ScopeSpec {
  readonly to?: string | undefined;
  readonly from?: string | undefined;
  readonly subject?: string | undefined;
  readonly tag?: string | undefined;
}

export interface Scope {
  readonly id: string;
  readonly after: number;
  readonly spec: ScopeSpec;
  /** What the scope shows: messages after `after` that match the spec. */
  readonly filter: Filter;
}

/**
 * Isolated views for tests, like the Memory kit's `scope()`: a scope sees only messages that
 * arrive after it was made, and of those only the ones its filter matches.
 */
export class Scopes {
  readonly #store: MessageStore;

  constructor(store: MessageStore) {
    this.#store = store;
  }

  create(spec: ScopeSpec): Record<string, unknown> {
    const id = randomUUID();
    const after = this.#store.lastId();
    const clean = Object.fromEntries(
      Object.entries(spec).filter(([, v]) => v !== undefined && v !== ""),
    );
    this.#store.db
      .prepare("INSERT INTO scopes (id, after, filter) VALUES (?, ?, ?)")
      .run(id, after, JSON.stringify(clean));
    return this.json({ id, after, spec: clean, filter: toFilter(after, clean) });
  }

  get(id: string): Scope | undefined {
    const row = this.#store.db.prepare("SELECT after, filter FROM scopes WHERE id = ?").get(id) as
      | { after: number; filter: string }
      | undefined;
    if (!row) return undefined;
    const spec = JSON.parse(row.filter) as ScopeSpec;
    return { id, after: row.after, spec, filter: toFilter(row.after, spec) };
  }

  remove(id: string): boolean {
    return this.#store.db.prepare("DELETE FROM scopes WHERE id = ?").run(id).changes > 0;
  }

  json(scope: Scope): Record<string, unknown> {
    return { ID: scope.id, After: String(scope.after), ...scope.spec };
  }
}

function toFilter(after: number, spec: ScopeSpec): Filter {
  return {
    after,
    ...(spec.to !== undefined && { to: parseMatch(spec.to) }),
    ...(spec.from !== undefined && { from: parseMatch(spec.from) }),
    ...(spec.subject !== undefined && { subject: parseMatch(spec.subject) }),
    ...(spec.tag !== undefined && { tag: spec.tag }),
  };
}
