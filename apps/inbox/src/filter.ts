/** A string matches exactly (addresses: case-insensitively, `<>` ignored); a RegExp is tested. */
export type Match = string | RegExp;

/** Which messages a view or a wait looks at: every given field must match (the Memory kit's criteria). */
export interface Filter {
  /** An envelope recipient, or an address in the To or Cc header. */
  readonly to?: Match | undefined;
  /** The envelope sender, or the address in the From header. */
  readonly from?: Match | undefined;
  readonly subject?: Match | undefined;
  /** A `+tag` subaddress of a recipient, an `X-Tags` entry, or a tag set through the API. */
  readonly tag?: string | undefined;
  /** Only messages with a larger id (a scope's start). */
  readonly after?: number | undefined;
}

/** A piece of a WHERE clause with its parameters, over `messages m`. */
export interface SqlWhere {
  readonly sql: string;
  readonly params: readonly (string | number)[];
}

/** How a RegExp travels to the SQL `regexp()` function: flags, NUL, source. */
export function encodeRegExp(re: RegExp): string {
  return `${re.flags}\u0000${re.source}`;
}

/** `/source/flags` is a RegExp; anything else is an exact value. Throws on a bad RegExp. */
export function parseMatch(value: string): Match {
  const literal = /^\/(.*)\/([dgimsuvy]*)$/s.exec(value);
  return literal ? new RegExp(literal[1] ?? "", literal[2]) : value;
}

function bare(address: string): string {
  return address.replace(/^<|>$/g, "").trim().toLowerCase();
}

function setMatch(column: string, match: Match): SqlWhere {
  return match instanceof RegExp
    ? {
        sql: `EXISTS (SELECT 1 FROM json_each(m.${column}) j WHERE j.value REGEXP ?)`,
        params: [encodeRegExp(match)],
      }
    : {
        sql: `EXISTS (SELECT 1 FROM json_each(m.${column}) j WHERE j.value = ?)`,
        params: [bare(match)],
      };
}

export function filterSql(filter: Filter): SqlWhere {
  const parts: SqlWhere[] = [];
  if (filter.after !== undefined) parts.push({ sql: "m.id > ?", params: [filter.after] });
  if (filter.to !== undefined) parts.push(setMatch("to_set", filter.to));
  if (filter.from !== undefined) parts.push(setMatch("from_set", filter.from));
  if (filter.subject !== undefined)
    parts.push(
      filter.subject instanceof RegExp
        ? { sql: "m.subject REGEXP ?", params: [encodeRegExp(filter.subject)] }
        : { sql: "m.subject = ?", params: [filter.subject] },
    );
  if (filter.tag !== undefined)
    parts.push({
      sql: "EXISTS (SELECT 1 FROM json_each(m.tags) t WHERE t.value = ?)",
      params: [filter.tag],
    });
  return joinAnd(parts);
}

export function joinAnd(parts: readonly SqlWhere[]): SqlWhere {
  if (parts.length === 0) return { sql: "1", params: [] };
  return {
    sql: parts.map((p) => `(${p.sql})`).join(" AND "),
    params: parts.flatMap((p) => p.params),
  };
}

/** A filter as text, for timeout messages: `{ to: "bob@example.com", subject: /code/ }`. */
export function describeFilter(filter: Filter): string {
  const parts: string[] = [];
  for (const key of ["to", "from", "subject", "tag"] as const) {
    const value = filter[key];
    if (value !== undefined)
      parts.push(`${key}: ${value instanceof RegExp ? String(value) : JSON.stringify(value)}`);
  }
  return `{ ${parts.join(", ")} }`;
}
