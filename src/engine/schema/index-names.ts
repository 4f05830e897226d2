// Index names on the target. PostgreSQL names indexes per schema (they share the namespace of
// tables, sequences and views); MySQL per table. Two MySQL tables may both have an index idx_x,
// and `CREATE INDEX IF NOT EXISTS` on PostgreSQL would then skip the second in silence. The plan
// decides every created index's name here, from the source catalogs and the manifest only (so a
// rerun decides the same): the source's name where it is unique in the target schema, else
// `<table>_<index>`, and where that is too long or still taken, a truncation with a short hash.
import { createHash } from 'node:crypto';

/** PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes. */
export const MAX_IDENTIFIER_BYTES = 63;

export interface NamingTable {
  /** What the result is keyed by (the manifest's target name). */
  key: string;
  /** Target table name (unqualified) and its schema (undefined: the session's current one). */
  table: string;
  schema?: string | undefined;
  /** Source index names, unique within this table. */
  indexes: string[];
  /** Other names this table takes in the schema: its primary key's index, identity sequences. */
  reserved?: string[];
}

/** Cuts `text` to at most `bytes` UTF-8 bytes without splitting a character. */
export function truncateBytes(text: string, bytes: number): string {
  let out = '';
  let size = 0;
  for (const char of text) {
    const length = Buffer.byteLength(char);
    if (size + length > bytes) break;
    out += char;
    size += length;
  }
  return out;
}

/** `<base>_<8 hex>` within the limit; the hash is of the table and index, so it tells them apart. */
export function hashedName(base: string, table: string, index: string, max = MAX_IDENTIFIER_BYTES): string {
  const hash = createHash('sha256').update(`${table}\0${index}`).digest('hex').slice(0, 8);
  return `${truncateBytes(base, max - 9)}_${hash}`;
}

const fits = (name: string, max: number): boolean => Buffer.byteLength(name) <= max;

/**
 * The target name of every index, per table (key → source index → target index name),
 * unique within each schema and apart from every table name and reserved name there.
 */
export function targetIndexNames(tables: readonly NamingTable[], max = MAX_IDENTIFIER_BYTES): Map<string, Map<string, string>> {
  const result = new Map<string, Map<string, string>>();
  const bySchema = new Map<string, NamingTable[]>();
  for (const table of tables) {
    const key = table.schema ?? '';
    bySchema.set(key, [...(bySchema.get(key) ?? []), table]);
  }
  for (const group of bySchema.values()) {
    const taken = new Set(group.flatMap((t) => [t.table, ...(t.reserved ?? [])]));
    const pairs = group.flatMap((t) => t.indexes.map((index) => ({ key: t.key, table: t.table, index })));
    const count = (names: string[]): Map<string, number> => {
      const counts = new Map<string, number>();
      for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
      return counts;
    };
    // Round 1: the source name where nothing else wants it.
    const plain = count(pairs.map((p) => p.index));
    const first = pairs.map((p) => (plain.get(p.index) === 1 && !taken.has(p.index) && fits(p.index, max) ? p.index : undefined));
    // Round 2: `<table>_<index>` for the rest, unless that is too long or wanted twice; then hashed.
    const firstNames = new Set(first.filter((n): n is string => n !== undefined));
    const prefixed = pairs.map((p) => `${p.table}_${p.index}`);
    const prefixedCounts = count(prefixed.filter((_, i) => first[i] === undefined));
    pairs.forEach((p, i) => {
      const prefix = prefixed[i] ?? '';
      const name = first[i]
        ?? (fits(prefix, max) && prefixedCounts.get(prefix) === 1 && !taken.has(prefix) && !firstNames.has(prefix) ? prefix : hashedName(prefix, p.table, p.index, max));
      const names = result.get(p.key) ?? new Map<string, string>();
      names.set(p.index, name);
      result.set(p.key, names);
    });
  }
  return result;
}
