// The SQL-text level every database adapter (db/adapter.ts) provides: quoting and placeholders.
// Identifiers from a manifest are always quoted through here, never spliced in raw.

/** The two database engines; anything that differs between them is asked of their adapter. */
export type Engine = 'postgres' | 'mysql';

export interface Dialect {
  readonly engine: Engine;
  /** Quotes one identifier (table, column, schema): "a""b" on PostgreSQL, `a``b` on MySQL. */
  quoteIdent(name: string): string;
  /** A qualified name such as schema.table, each part quoted. */
  quoteQualified(name: string): string;
  /** The n-th (1-based) bind placeholder. */
  placeholder(n: number): string;
  /** A string literal (for the rare statement that takes no bind parameters, like SET). */
  quoteLiteral(value: string): string;
}

/** Splits "schema.table" at dots outside double quotes or backticks; a plain name is one part. */
export function splitQualifiedName(name: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (const char of name) {
    if (quote) {
      if (char === quote) quote = undefined;
      else current += char;
    } else if (char === '"' || char === '`') {
      quote = char;
    } else if (char === '.') {
      parts.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  parts.push(current);
  return parts;
}

/** The table of a possibly schema-qualified name, and its schema (undefined: the current one). */
export function tableAndSchema(name: string): { table: string; schema: string | undefined } {
  const parts = splitQualifiedName(name);
  const table = parts.pop() ?? name;
  return { table, schema: parts.length > 0 ? parts.join('.') : undefined };
}
