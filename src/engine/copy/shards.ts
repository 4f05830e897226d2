// Splitting one large table into key ranges that copy in parallel. The split is computed once
// (from the first key column's min and max), recorded with the checkpoints, and read back by
// every worker, so the pods of an Indexed Job agree on it (see units.ts); the outer ranges are
// open, so every row falls in exactly one shard.
import type { SqlSession } from '../db/session.ts';
import type { CheckedSql } from '../sql/fragments.ts';

/** Every checkpoint row holds the whole split, so the rows of a table grow with its square: cap it. */
export const MAX_SHARDS_PER_TABLE = 256;

const INTEGER_TYPES = new Set(['smallint', 'integer', 'int', 'bigint', 'tinyint', 'mediumint', 'int2', 'int4', 'int8']);

/** n-1 boundaries splitting [min, max] into n equal ranges (as decimal text; exact for 64-bit keys). */
export function integerBoundaries(min: bigint, max: bigint, shards: number): string[] {
  if (shards <= 1 || max <= min) return [];
  const span = max - min + 1n;
  const count = BigInt(shards);
  const boundaries: string[] = [];
  for (let i = 1n; i < count; i++) {
    const boundary = min + (span * i) / count;
    if (boundaries.at(-1) !== boundary.toString() && boundary > min) boundaries.push(boundary.toString());
  }
  return boundaries;
}

export async function planShards(session: SqlSession, table: string, keyColumn: string, keyType: string, shards: number, where?: CheckedSql): Promise<string[]> {
  if (shards <= 1 || !INTEGER_TYPES.has(keyType.toLowerCase())) return [];
  const d = session.dialect;
  const column = d.quoteIdent(keyColumn);
  const [row] = await session.query(`SELECT min(${column}) AS lo, max(${column}) AS hi FROM ${d.quoteQualified(table)}${where ? ` WHERE ${where.sql}` : ''}`);
  if (!row || row.lo === null || row.hi === null || row.lo === undefined || row.hi === undefined) return [];
  return integerBoundaries(BigInt(row.lo.toString()), BigInt(row.hi.toString()), shards);
}
