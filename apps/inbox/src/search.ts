import type { SqlWhere } from "./filter.js";
import { joinAnd } from "./filter.js";

/** One term of a search: `field:value`, or free text (`field` null); `negated` for a leading `-`. */
export interface SearchTerm {
  readonly field: "from" | "to" | "subject" | "tag" | "is" | null;
  readonly value: string;
  readonly negated: boolean;
}

export type SearchQuery = readonly SearchTerm[];

const FIELDS = new Set(["from", "to", "subject", "tag", "is"]);
/** Longest query looked at, and most terms: a search box, not a program. */
const MAX_QUERY = 4096;
const MAX_TERMS = 32;

/**
 * Parses Mailpit's search syntax: space-separated terms, `"quoted phrases"`, `from:`, `to:`,
 * `subject:`, `tag:`, `is:read` / `is:unread`, a leading `-` to negate. Never throws: anything
 * unrecognised is free text.
 */
export function parseSearch(input: string): SearchQuery {
  const text = input.slice(0, MAX_QUERY);
  const terms: SearchTerm[] = [];
  let i = 0;
  while (i < text.length && terms.length < MAX_TERMS) {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    if (i >= text.length) break;
    let negated = false;
    if (text[i] === "-" && i + 1 < text.length && !/\s/.test(text[i + 1] as string)) {
      negated = true;
      i++;
    }
    let field: SearchTerm["field"] = null;
    const prefix = /^([a-z]+):/i.exec(text.slice(i, i + 10));
    if (prefix && FIELDS.has((prefix[1] as string).toLowerCase())) {
      field = (prefix[1] as string).toLowerCase() as SearchTerm["field"];
      i += prefix[0].length;
    }
    let value = "";
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      value = end === -1 ? text.slice(i + 1) : text.slice(i + 1, end);
      i = end === -1 ? text.length : end + 1;
    } else {
      const start = i;
      while (i < text.length && !/\s/.test(text[i] as string)) i++;
      value = text.slice(start, i);
    }
    if (value !== "") terms.push({ field, value, negated });
  }
  return terms;
}

function like(value: string): string {
  return `%${value.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function termSql(term: SearchTerm): SqlWhere {
  const pattern = like(term.value);
  switch (term.field) {
    case "from":
      return { sql: "m.from_text LIKE ? ESCAPE '\\'", params: [pattern] };
    case "to":
      return { sql: "m.to_text LIKE ? ESCAPE '\\'", params: [pattern] };
    case "subject":
      return { sql: "lower(m.subject) LIKE ? ESCAPE '\\'", params: [pattern] };
    case "tag":
      return {
        sql: "EXISTS (SELECT 1 FROM json_each(m.tags) t WHERE lower(t.value) = ?)",
        params: [term.value.toLowerCase()],
      };
    case "is": {
      const v = term.value.toLowerCase();
      if (v === "read") return { sql: "m.read = 1", params: [] };
      if (v === "unread") return { sql: "m.read = 0", params: [] };
      if (v === "tagged") return { sql: "m.tags <> '[]'", params: [] };
      return { sql: "0", params: [] };
    }
    default:
      return {
        sql: "(lower(m.subject) LIKE ? ESCAPE '\\' OR m.from_text LIKE ? ESCAPE '\\' OR m.to_text LIKE ? ESCAPE '\\' OR lower(m.body_text) LIKE ? ESCAPE '\\')",
        params: [pattern, pattern, pattern, pattern],
      };
  }
}

/** The WHERE clause for a parsed query (every term must hold). */
export function searchSql(query: SearchQuery): SqlWhere {
  return joinAnd(
    query.map((term) => {
      const where = termSql(term);
      return term.negated ? { sql: `NOT (${where.sql})`, params: where.params } : where;
    }),
  );
}
