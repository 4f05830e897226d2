// Trickle (Timestamp, Sequence): rows deleted on the source since the copy. The incremental column
// never shows a deleted row, so once a sync round finds nothing new the keys are compared: every
// target key whose row no longer exists on the source (within the table's `where`, as the copy
// reads it) is deleted on the target. Only the target is written; the source is only read.
//
// How: a walk over the TARGET's keys in its own key order, by keyset pages (never OFFSET), and per
// page one lookup of those keys on the SOURCE by equality. Memory holds one page. Why not the
// validation's key-range checksums and bisection (validate/checksum.ts): they hash the canonical
// form of every compared column and need the full validation plan, and their cross-engine text
// keys are bucketed by hash, so a range walk would still end in key lookups; a key walk needs no
// agreement on order between the engines (collations), reads each side through its key index, and
// its cost grows with the table, not with the number of deletes, which is the price of simplicity
// (a scan of the target's key index and indexed lookups on the source once per caught-up run).
//
// Races: the source lookup of a page runs after the target read of that page, and the keys found
// missing are checked on the source once more just before the delete; a key the source has at
// either read stays. A row the source inserts after that last check with a new incremental value
// is copied by the next round; one re-inserted with an old value is missed (as any such insert).
import type { DatabaseAdapter } from '../db/adapter.ts';
import type { SqlSession, SqlValue } from '../db/session.ts';
import type { KeyValue } from '../copy/checkpoint.ts';
import { keyAfter, sqlLiteral } from '../copy/source-query.ts';
import type { TableCopyPlan } from '../copy/plan-types.ts';
import type { ColumnInfo } from '../schema/model.ts';
import type { Engine } from '../db/dialect.ts';

/** Target keys read per page, and looked up on the source in one statement. */
const PAGE = 1000;
/** Target rows deleted per transaction: short locks, and an interruption loses little. */
const DELETE_CHUNK = 200;

export interface DeleteHooks {
  /** Tests: called with the keys (target values) found missing, before they are checked again and deleted. */
  beforeRecheck?: (table: string, keys: readonly (readonly KeyValue[])[]) => Promise<void>;
}

export interface DeletePassResult {
  rowsDeleted: number;
}

const INTEGER = new Set(['smallint', 'integer', 'bigint', 'int2', 'int4', 'int8', 'tinyint', 'mediumint', 'int']);
const TEXT = new Set(['character varying', 'character', 'text', 'citext', 'varchar', 'char', 'tinytext', 'mediumtext', 'longtext']);
/** Same engine on both sides: types whose text as read is a literal the other side reads back as the same value. */
const SAME_ENGINE = new Set([...INTEGER, ...TEXT, 'uuid', 'date', 'numeric', 'decimal', 'bytea', 'binary', 'varbinary',
  'timestamp without time zone', 'timestamp with time zone', 'datetime', 'timestamp']);

/**
 * Why a table's deletes cannot be detected, or undefined when they can: a target key value is
 * looked up on the source as a literal, so each key column must read as the same text on both
 * sides. A converted key column (across engines: dates, binary, booleans), or types whose text
 * differs, would make a present row look absent, and deleting it would be wrong.
 */
export function deleteRefusal(plan: TableCopyPlan, source: readonly ColumnInfo[], target: readonly ColumnInfo[]): string | undefined {
  for (const [i, name] of plan.key.entries()) {
    const targetName = plan.targetColumns[i]?.name;
    const s = source.find((c) => c.name === name);
    const t = target.find((c) => c.name === targetName);
    if (!s || !t) return `key column ${name} is not on both sides`;
    if (plan.converters[i] !== undefined) return `key column ${name} is converted between the engines`;
    if (!comparable(s, t, plan.sourceEngine, plan.targetEngine)) return `key column ${name} (${s.dataType} to ${t.dataType}) does not read as the same text on both sides`;
  }
  return undefined;
}

function comparable(s: ColumnInfo, t: ColumnInfo, from: Engine, to: Engine): boolean {
  const [a, b] = [s.dataType.toLowerCase(), t.dataType.toLowerCase()];
  if (INTEGER.has(a) && INTEGER.has(b)) return true;
  if (TEXT.has(a) && TEXT.has(b)) return true;
  return from === to && a === b && SAME_ENGINE.has(a);
}

const asKey = (values: readonly SqlValue[]): KeyValue[] | undefined => (values.some((v) => v === null) ? undefined : values as KeyValue[]);
const keyText = (key: readonly KeyValue[]): string => JSON.stringify(key.map((v) => (typeof v === 'string' ? v : `\\x${v.toString('hex')}`)));

/** key = (v1, ...) for each key: one IN list for a single column, OR of ANDs for a composite key. */
function keysCondition(d: DatabaseAdapter, columns: readonly string[], keys: readonly (readonly KeyValue[])[]): string {
  const quoted = columns.map((c) => d.quoteIdent(c));
  if (quoted.length === 1) return `${quoted[0] ?? ''} IN (${keys.map((k) => sqlLiteral(d, k[0] ?? '')).join(', ')})`;
  return `(${keys.map((k) => `(${quoted.map((c, i) => `${c} = ${sqlLiteral(d, k[i] ?? '')}`).join(' AND ')})`).join(' OR ')})`;
}

export interface DeletePassOptions {
  sourceSession: SqlSession;
  targetSession: SqlSession;
  plan: TableCopyPlan;
  hooks?: DeleteHooks;
  signal?: AbortSignal;
}

/** The source rows (as the copy filters them; dedupe aside) among `keys`, by the source's equality. */
async function presentOnSource(options: DeletePassOptions, keys: readonly (readonly KeyValue[])[]): Promise<Set<string>> {
  const sd = options.sourceSession.dialect;
  const { plan } = options;
  const conditions = [...(plan.where ? [plan.where.sql] : []), keysCondition(sd, plan.key, keys)];
  const rows = await options.sourceSession.query(`SELECT ${plan.key.map((k) => sd.quoteIdent(k)).join(', ')} FROM ${sd.quoteQualified(plan.sourceTable)} WHERE ${conditions.join(' AND ')}`);
  return new Set(rows.map((row) => keyText(plan.key.map((k) => row[k] ?? ''))));
}

/** Rows a composite key's superset read may return before the precise lookup is used instead. */
const SUPERSET = 5 * PAGE;

/**
 * The keys among `keys` the source has with exactly their text, for a composite key on
 * PostgreSQL: it plans an OR of a page's composite equalities slowly (200 ms a page measured, a
 * 100k-row walk 7x an integer key's), so the page is asked as one IN list per column, a superset
 * read through the key index. Only exact matches count as present; every other key is asked
 * precisely by stillMissing before any delete, so the superset can cost a re-check, never a wrong
 * delete. A superset too large (a grid of values) falls back to the precise lookup.
 */
async function presentAmong(options: DeletePassOptions, keys: readonly (readonly KeyValue[])[]): Promise<Set<string>> {
  const sd = options.sourceSession.dialect;
  const { plan } = options;
  const lists = plan.key.map((column, i) => {
    const values = new Map(keys.map((key) => [keyText([key[i] ?? '']), key[i] ?? '']));
    return `${sd.quoteIdent(column)} IN (${[...values.values()].map((v) => sqlLiteral(sd, v)).join(', ')})`;
  });
  const conditions = [...(plan.where ? [plan.where.sql] : []), ...lists];
  const rows = await options.sourceSession.query(`SELECT ${plan.key.map((k) => sd.quoteIdent(k)).join(', ')} FROM ${sd.quoteQualified(plan.sourceTable)} WHERE ${conditions.join(' AND ')} LIMIT ${String(SUPERSET + 1)}`);
  if (rows.length > SUPERSET) return presentOnSource(options, keys);
  const wanted = new Set(keys.map(keyText));
  return new Set(rows.map((row) => keyText(plan.key.map((k) => row[k] ?? ''))).filter((text) => wanted.has(text)));
}

/**
 * The keys among `candidates` the source does not have now. Exact text first; a key whose text
 * the source did not give back exactly (a case-insensitive collation, char padding) is asked
 * alone, and kept if the source's own equality finds a row: a missed delete, never a wrong one.
 */
async function stillMissing(options: DeletePassOptions, candidates: readonly (readonly KeyValue[])[]): Promise<(readonly KeyValue[])[]> {
  const present = await presentOnSource(options, candidates);
  const unmatched = candidates.filter((key) => !present.has(keyText(key)));
  if (present.size === candidates.length - unmatched.length) return unmatched; // every row returned matched a key exactly
  const missing: (readonly KeyValue[])[] = [];
  for (const key of unmatched) if ((await presentOnSource(options, [key])).size === 0) missing.push(key);
  return missing;
}

async function deleteOnTarget(session: SqlSession, table: string, columns: readonly string[], keys: readonly (readonly KeyValue[])[]): Promise<number> {
  const d = session.dialect;
  let deleted = 0;
  for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
    const chunk = keys.slice(i, i + DELETE_CHUNK);
    await session.query('START TRANSACTION');
    try {
      await session.query(`DELETE FROM ${d.quoteQualified(table)} WHERE ${keysCondition(d, columns, chunk)}`);
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined); // the delete's error is the one to report
      throw error;
    }
    deleted += chunk.length;
  }
  return deleted;
}

/** Deletes on the target the rows of one table whose key the source no longer has; returns how many. */
export async function deleteMissingRows(options: DeletePassOptions): Promise<DeletePassResult> {
  const td = options.targetSession.dialect;
  const { plan } = options;
  const targetKey = plan.targetColumns.slice(0, plan.key.length).map((c) => c.name);
  const quotedKey = targetKey.map((k) => td.quoteIdent(k));
  // Rows with a NULL in a (unique) key cannot be matched by equality: they are never deleted.
  const notNull = quotedKey.map((k) => `${k} IS NOT NULL`);
  let after: KeyValue[] | undefined;
  let rowsDeleted = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const conditions = [...notNull, ...(after ? [keyAfter(td, targetKey, after)] : [])];
    const rows = await options.targetSession.query(
      `SELECT ${quotedKey.join(', ')} FROM ${td.quoteQualified(plan.targetTable)} WHERE ${conditions.join(' AND ')} ORDER BY ${quotedKey.join(', ')} LIMIT ${String(PAGE)}`);
    const keys = rows.map((row) => asKey(targetKey.map((k) => row[k] ?? null))).filter((k): k is KeyValue[] => k !== undefined);
    if (keys.length === 0) break;
    after = keys.at(-1);
    // Read after the target page: a key the source has now is kept.
    const present = await (plan.key.length > 1 && plan.sourceEngine === 'postgres' ? presentAmong(options, keys) : presentOnSource(options, keys));
    const candidates = keys.filter((key) => !present.has(keyText(key)));
    if (candidates.length > 0) {
      await options.hooks?.beforeRecheck?.(plan.targetTable, candidates);
      const missing = await stillMissing(options, candidates);
      if (missing.length > 0) rowsDeleted += await deleteOnTarget(options.targetSession, plan.targetTable, targetKey, missing);
    }
    if (rows.length < PAGE) break;
  }
  return { rowsDeleted };
}
