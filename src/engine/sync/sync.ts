// Trickle sync: after the bulk copy, rows changed on the source since are copied again, in
// rounds, until a round finds nothing new (caught up). A change is seen through the incremental
// column (a timestamp or a sequence that grows on every insert and update). Each round re-reads an
// overlap window for commits that landed late: Timestamp mode by the column's time
// (overlapSeconds before the watermark), Sequence mode by the wall clock (from the maximum the
// sync read overlapSeconds ago: a transaction that took a lower value but committed after a
// higher one was read is caught if it commits within that time). Rows are written with upsert on
// the key, so a round that is interrupted and run again does no harm; the watermark advances only
// when a round has finished. Deletes on the source are found by comparing keys once caught up
// (sync-deletes.ts); a run that is not caught up reports caughtUp false and deletes nothing.
import type { DatabaseAdapter } from '../db/adapter.ts';
import type { SqlSession } from '../db/session.ts';
import { clearCheckpoints, readCheckpoint, writeCheckpoint } from '../copy/checkpoint.ts';
import { copyShard, type Endpoint } from '../copy/copy-shard.ts';
import type { TableCopyPlan } from '../copy/plan-types.ts';
import { deleteMissingRows, type DeleteHooks } from './sync-deletes.ts';
import { parseHistory, windowStart, withReading, type Reading } from './sync-window.ts';

export interface SyncTable {
  plan: TableCopyPlan;
  /** The incremental column on the source, and its name on the target. */
  sourceColumn: string;
  targetColumn: string;
  /** Why deletes on the source cannot be detected for this table (sync-deletes.ts deleteRefusal); absent when they can. */
  deletesSkipped?: string;
}

export interface SyncOptions {
  source: Endpoint;
  target: Endpoint;
  sourceSession: SqlSession;
  targetSession: SqlSession;
  migration: string;
  tables: SyncTable[];
  mode: 'Timestamp' | 'Sequence';
  overlapSeconds: number;
  batchSize: number;
  /** A bound on rounds per run (a source changing faster than the sync keeps up would never end). */
  maxRounds?: number;
  signal?: AbortSignal;
  hooks?: DeleteHooks;
  /** Tests: the wall clock (ms) the Sequence window is measured by. */
  now?: () => number;
}

export interface SyncResult {
  rounds: number;
  rowsSynced: number;
  caughtUp: boolean;
  /** Target rows deleted because their key is gone from the source (only once caught up). */
  rowsDeleted: number;
  /** Tables whose deletes were not looked for, and why. */
  notes: string[];
}

/** Where the watermark of a table lives: a checkpoint row of its own. */
const watermarkId = (migration: string, table: string) => ({ migration, table: `sync:${table}`, shard: 0 });

/** The engine's condition for the rows a round re-reads: above `since` (Timestamp: minus the overlap in the column's time). */
function changedSince(d: DatabaseAdapter, column: string, since: string, mode: SyncOptions['mode'], overlapSeconds: number): string {
  const quoted = d.quoteIdent(column);
  const literal = d.quoteLiteral(since);
  if (mode === 'Sequence' || overlapSeconds === 0) return `${quoted} > ${literal}`;
  return `${quoted} > ${d.timestampMinusSecondsSql(literal, overlapSeconds)}`;
}

/** WHERE over the table's checked filter (spliced as checked, in parentheses) and engine-built conditions. */
function whereClause(where: TableCopyPlan['where'], ...conditions: string[]): string {
  const all = [...(where ? [where.sql] : []), ...conditions];
  return all.length > 0 ? ` WHERE ${all.join(' AND ')}` : '';
}

async function scalar(session: SqlSession, sql: string): Promise<string | null> {
  const [row] = await session.query(sql);
  const value = row ? Object.values(row)[0] : null;
  return value === null || value === undefined ? null : value.toString();
}

/**
 * Sequence mode: whether the source holds more rows in the window (above `start`) than the target.
 * Behind the watermark only a late commit (or a row updated into the window) adds source rows; the
 * delete pass keeps the target's rows a subset of the source's, so a count is enough to see them.
 */
async function lateRowsInWindow(options: SyncOptions, table: SyncTable, start: string): Promise<boolean> {
  const sd = options.sourceSession.dialect;
  const td = options.targetSession.dialect;
  const [source, target] = await Promise.all([
    scalar(options.sourceSession, `SELECT count(*) FROM ${sd.quoteQualified(table.plan.sourceTable)}${whereClause(table.plan.where, `${sd.quoteIdent(table.sourceColumn)} > ${sd.quoteLiteral(start)}`)}`),
    scalar(options.targetSession, `SELECT count(*) FROM ${td.quoteQualified(table.plan.targetTable)} WHERE ${td.quoteIdent(table.targetColumn)} > ${td.quoteLiteral(start)}`),
  ]);
  return BigInt(source ?? '0') > BigInt(target ?? '0');
}

/** One round over every table: the number of tables that had changes, and the rows written. */
async function syncRound(options: SyncOptions): Promise<{ changed: number; rows: number }> {
  const sd = options.sourceSession.dialect;
  const td = options.targetSession.dialect;
  const now = options.now ?? Date.now;
  let changed = 0;
  let rows = 0;
  for (const table of options.tables) {
    const { plan } = table;
    const id = watermarkId(options.migration, plan.targetTable);
    const stored = await readCheckpoint(options.targetSession, id);
    // First round: what the copy brought over is the starting point.
    const watermark = stored?.lastKey?.[0]?.toString()
      ?? await scalar(options.targetSession, `SELECT MAX(${td.quoteIdent(table.targetColumn)}) FROM ${td.quoteQualified(plan.targetTable)}`);
    const history = parseHistory(stored?.lastKey?.[1]);
    const column = sd.quoteIdent(table.sourceColumn);
    const sourceTable = sd.quoteQualified(plan.sourceTable);
    // Read before copying: the next round starts here, so nothing committed meanwhile is missed.
    const readAt = now();
    const next = await scalar(options.sourceSession, `SELECT MAX(${column}) FROM ${sourceTable}${whereClause(plan.where)}`);
    if (next === null) continue;
    // Sequence: the window starts at the maximum read overlapSeconds ago (the watermark itself without overlap).
    const windowed = options.mode === 'Sequence' && options.overlapSeconds > 0 && watermark !== null;
    const since = windowed ? windowStart(history, watermark, readAt - options.overlapSeconds * 1000) : watermark;
    // Whether anything is newer (not how much: the copy counts the rows).
    const newer = watermark === null || await scalar(options.sourceSession,
      `SELECT 1 FROM ${sourceTable}${whereClause(plan.where, `${column} > ${sd.quoteLiteral(watermark)}`)} LIMIT 1`) !== null
      || (windowed && since !== null && await lateRowsInWindow(options, table, since));
    // Sequence: the (time, maximum) readings the window is measured by travel in the watermark's row.
    const reading: Reading = [readAt, next];
    const lastKey = options.mode === 'Sequence' ? [next, JSON.stringify(withReading(history, reading, watermark, options.overlapSeconds))] : [next];
    if (!newer) {
      // Nothing to copy, but the clock moved: the window's history still records the reading.
      if (options.mode === 'Sequence') await writeCheckpoint(options.targetSession, id, { lastKey, rowsCopied: stored?.rowsCopied ?? 0, done: false, boundaries: [] });
      continue;
    }
    changed++;
    // The table's filter stays as checked; the engine's own condition travels apart from it.
    const condition = since === null ? undefined : changedSince(sd, table.sourceColumn, since, options.mode, options.overlapSeconds);
    const roundPlan: TableCopyPlan = { ...plan, conflictPolicy: 'upsert', ...(condition ? { changedSince: condition } : {}) };
    const roundId = `${options.migration}#sync`;
    // A round interrupted before its watermark moved is simply run again (upsert): start it clean.
    await clearCheckpoints(options.targetSession, roundId);
    const result = await copyShard({
      source: options.source, target: options.target, plan: roundPlan, migration: roundId, shard: 0, boundaries: [],
      batchSize: options.batchSize, ...(options.signal ? { signal: options.signal } : {}),
    });
    rows += result.rowsThisRun;
    await writeCheckpoint(options.targetSession, id, { lastKey, rowsCopied: (stored?.rowsCopied ?? 0) + result.rowsThisRun, done: false, boundaries: [] });
  }
  return { changed, rows };
}

/** Once caught up: deletes on the target the rows whose key the source no longer has. */
async function deletePass(options: SyncOptions, notes: string[]): Promise<number> {
  let deleted = 0;
  for (const table of options.tables) {
    if (table.deletesSkipped) {
      notes.push(`${table.plan.sourceTable}: deletes on the source are not detected (${table.deletesSkipped})`);
      continue;
    }
    try {
      const result = await deleteMissingRows({
        sourceSession: options.sourceSession, targetSession: options.targetSession, plan: table.plan,
        ...(options.hooks ? { hooks: options.hooks } : {}), ...(options.signal ? { signal: options.signal } : {}),
      });
      deleted += result.rowsDeleted;
    } catch (error) {
      // A driver's error ("connection error and is not queryable") names neither the table nor
      // the pass, nor says what was done: say so. An abort stays as it is (it is not a failure).
      if (options.signal?.aborted || !(error instanceof Error)) throw error;
      throw new Error(`looking for rows deleted on the source, table ${table.plan.sourceTable}: ${error.message} (only target rows whose key the source was confirmed not to have were deleted; the next caught-up run goes on)`, { cause: error });
    }
  }
  return deleted;
}

export async function syncTables(options: SyncOptions): Promise<SyncResult> {
  let rounds = 0;
  let rowsSynced = 0;
  let rowsDeleted: number | undefined;
  const notes: string[] = [];
  for (;;) {
    options.signal?.throwIfAborted();
    const round = await syncRound(options);
    rowsSynced += round.rows;
    rounds++;
    if (round.changed === 0) {
      if (rowsDeleted !== undefined) return { rounds, rowsSynced, caughtUp: true, rowsDeleted, notes };
      rowsDeleted = await deletePass(options, notes);
      // Sequence: a late commit in the window may have hidden behind a deleted row in the counts: look once more.
      // (The run was caught up before its deletes: out of rounds, it still says so.)
      if (rowsDeleted === 0 || options.mode !== 'Sequence' || options.overlapSeconds === 0 || rounds >= (options.maxRounds ?? 50)) {
        return { rounds, rowsSynced, caughtUp: true, rowsDeleted, notes };
      }
    }
    if (rounds >= (options.maxRounds ?? 50)) return { rounds, rowsSynced, caughtUp: false, rowsDeleted: rowsDeleted ?? 0, notes };
  }
}
