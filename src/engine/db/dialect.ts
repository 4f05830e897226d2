// What differs between the two database engines at the SQL-text level. Identifiers from a
// manifest are always quoted through here, never spliced in raw.

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

export const postgresDialect: Dialect = {
  engine: 'postgres',
  quoteIdent: (name) => `"${name.replaceAll('"', '""')}"`,
  quoteQualified: (name) => splitQualifiedName(name).map((part) => `"${part.replaceAll('"', '""')}"`).join('.'),
  placeholder: (n) => `$${n}`,
  quoteLiteral: (value) => `'${value.replaceAll("'", "''")}'`,
};

export const mysqlDialect: Dialect = {
  engine: 'mysql',
  quoteIdent: (name) => `\`${name.replaceAll('`', '``')}\``,
  quoteQualified: (name) => splitQualifiedName(name).map((part) => `\`${part.replaceAll('`', '``')}\``).join('.'),
  placeholder: () => '?',
  // With NO_BACKSLASH_ESCAPES off (the default), a backslash must be doubled too.
  quoteLiteral: (value) => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`,
};

export function dialectFor(engine: Engine): Dialect {
  return engine === 'postgres' ? postgresDialect : mysqlDialect;
}
