// The one SELECT that reads a table (or one key range of it) for the copy: the user's column
// expressions and transforms pushed down into SQL, the where filter, dedupe by a window, and
// keyset resumption after the last committed key. Never OFFSET.
import type { DatabaseAdapter } from '../db/adapter.ts';
import type { CheckedSql } from '../sql/fragments.ts';
import type { KeyValue } from './checkpoint.ts';

export interface Dedupe {
  /** Columns whose equal values make rows duplicates. */
  by: string[];
  keep: 'first' | 'latest';
  /** Column that decides which duplicate is first or latest (default: the key). */
  orderBy?: string;
}

export interface SourceSelect {
  dialect: DatabaseAdapter;
  /** Source table as the manifest names it ("orders" or "shop.orders"). */
  table: string;
  /** SQL expressions of the copied columns, key columns first and in key order. */
  columns: string[];
  /** Source key column names (unquoted). */
  key: string[];
  /** The user's filter, checked: one condition, spliced as checked (in parentheses). */
  where?: CheckedSql;
  /** Conditions the engine built (quoted names and literals only), applied after dedupe. */
  conditions?: readonly string[];
  dedupe?: Dedupe;
  /** Key range of this shard, on the first key column: lower inclusive, upper exclusive, either open. */
  range?: { lower?: string; upper?: string };
  /** Resume after this key (the last one committed). */
  after?: readonly KeyValue[];
}

export function sqlLiteral(dialect: DatabaseAdapter, value: KeyValue): string {
  if (typeof value === 'string') return dialect.quoteLiteral(value);
  return dialect.bytesLiteral(value);
}

/** (k1, k2, ...) > (v1, v2, ...) spelled out so every optimizer uses the key index for it. */
export function keyAfter(dialect: DatabaseAdapter, key: readonly string[], values: readonly KeyValue[]): string {
  const columns = key.map((name) => dialect.quoteIdent(name));
  const literals = values.map((value) => sqlLiteral(dialect, value));
  const alternatives = columns.map((column, i) => {
    const equal = columns.slice(0, i).map((c, j) => `${c} = ${literals[j] ?? 'NULL'}`);
    return [...equal, `${column} > ${literals[i] ?? 'NULL'}`].join(' AND ');
  });
  return alternatives.length === 1 ? (alternatives[0] ?? '') : `(${alternatives.map((a) => `(${a})`).join(' OR ')})`;
}

/**
 * FROM and conditions selecting a table's rows after its `where` and dedupe: what the copy reads,
 * and so what validation compares. The dedupe window sees every row that passes the filter, so a
 * resumed copy keeps the same choice.
 */
export function sourceRows(d: DatabaseAdapter, table: string, key: readonly string[], where: CheckedSql | undefined, dedupe: { by: readonly string[]; keep?: 'first' | 'latest'; orderBy?: string } | undefined): { from: string; conditions: string[] } {
  const quoted = d.quoteQualified(table);
  if (!dedupe) return { from: quoted, conditions: where ? [where.sql] : [] };
  const direction = dedupe.keep === 'latest' ? 'DESC' : 'ASC';
  const order = [...(dedupe.orderBy ? [`${d.quoteIdent(dedupe.orderBy)} ${direction}`] : []), ...key.map((k) => `${d.quoteIdent(k)} ${direction}`)];
  const window = `ROW_NUMBER() OVER (PARTITION BY ${dedupe.by.map((c) => d.quoteIdent(c)).join(', ')} ORDER BY ${order.join(', ')})`;
  const filter = where ? ` WHERE ${where.sql}` : '';
  return { from: `(SELECT dataops_t.*, ${window} AS dataops_rank FROM ${quoted} AS dataops_t${filter}) AS dataops_deduped`, conditions: ['dataops_rank = 1'] };
}

export function buildSourceSelect(select: SourceSelect): string {
  const d = select.dialect;
  const key = select.key.map((name) => d.quoteIdent(name));
  const { from, conditions } = sourceRows(d, select.table, select.key, select.where, select.dedupe);
  conditions.push(...(select.conditions ?? []));
  const first = key[0] ?? '';
  if (select.range?.lower !== undefined) conditions.push(`${first} >= ${d.quoteLiteral(select.range.lower)}`);
  if (select.range?.upper !== undefined) conditions.push(`${first} < ${d.quoteLiteral(select.range.upper)}`);
  if (select.after) conditions.push(keyAfter(d, select.key, select.after));
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
  return `SELECT ${select.columns.join(', ')} FROM ${from}${where} ORDER BY ${key.join(', ')}`;
}
