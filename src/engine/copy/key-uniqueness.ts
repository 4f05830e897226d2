// Whether a copy key identifies one source row, proven from the catalog (the copy planner asks).
import type { TableInfo } from '../schema/model.ts';
import type { Dedupe } from './source-query.ts';

/**
 * Whether the copy key identifies one row, proven from the source's catalog: keyset pagination
 * (WHERE key > last ORDER BY key) resumes after the last committed key, so a key shared by two
 * rows would skip the rest of their group after a stop, or, with >=, repeat it. Proof: the
 * primary key or a unique index whose columns are all key columns and all NOT NULL (a unique
 * index lets NULLs repeat, and NULL never compares greater). Partial and expression indexes are
 * not in TableInfo, so they never count.
 *
 * With dedupe the copy reads one row per `dedupe.by` group, so the key is also unique among the
 * rows read when every `by` column is a key column and the key columns are NOT NULL. Which row
 * of a group is kept is then decided by orderBy and the key only; when those do not identify a
 * source row either, the choice among ties is the database's (a warning says so): a resumed copy
 * or validation may see another row of the same group, never a skipped or repeated key.
 */
export function keyUniqueness(source: TableInfo, key: readonly string[], dedupe: Dedupe | undefined): { error?: string; warning?: string } {
  const columns = new Map(source.columns.map((c) => [c.name, c]));
  const notNull = (names: readonly string[]): boolean => names.every((n) => columns.get(n)?.nullable === false);
  const covered = (names: readonly string[]): boolean => {
    const set = new Set(names);
    // A primary key's columns are NOT NULL on both engines, whatever a catalog copy says.
    const primary = source.primaryKey.length > 0 && source.primaryKey.every((c) => set.has(c));
    return primary || source.uniqueKeys.some((u) => u.columns.length > 0 && u.columns.every((c) => set.has(c)) && notNull(u.columns));
  };
  const shown = `(${key.join(', ')})`;
  // Every key column NOT NULL, whatever proves uniqueness: keyset pagination compares keys with
  // >, and NULL never compares greater (rows lost on resume) nor reads back as its type.
  const nullable = key.filter((n) => columns.get(n)?.nullable !== false && !source.primaryKey.includes(n));
  if (nullable.length === 0 && covered(key)) return {};
  if (dedupe && dedupe.by.every((c) => key.includes(c)) && notNull(key)) {
    const order = [...(dedupe.orderBy ? [dedupe.orderBy] : []), ...key];
    return covered(order) ? {} : {
      warning: `key ${shown} is unique among the rows dedupe keeps (one per ${dedupe.by.join(', ')}), but rows of a group that tie on ${order.join(', ')} are kept in no defined order: validation may compare another row of the group than the one copied`,
    };
  }
  // A unique index of key columns that is no proof only because it allows NULLs: say which.
  const nullableIndex = source.uniqueKeys.map((u) => u.columns).find((index) => index.length > 0 && index.every((c) => key.includes(c)));
  const why = nullable.length > 0 && covered(key)
    ? `key column(s) ${nullable.join(', ')} allow NULL, and a NULL key never compares greater`
    : nullableIndex
      ? `unique index (${nullableIndex.join(', ')}) allows NULL in ${nullableIndex.filter((c) => columns.get(c)?.nullable !== false).join(', ')}`
      : 'no primary key or unique index of NOT NULL columns is made of key columns';
  return {
    error: `key ${shown} is not proven unique on the source (${why}): the copy resumes after the last key it committed, so rows sharing a key would be skipped or repeated. `
      + `Set tables[].key to the columns of the primary key or of a unique index whose columns are NOT NULL${dedupe ? `, or include every dedupe.by column (${dedupe.by.join(', ')}) in a NOT NULL key` : ''}`,
  };
}
