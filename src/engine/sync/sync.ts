// Trickle sync: after the bulk copy, rows changed on the source since are copied again, in
// rounds, until a round finds nothing new (caught up). A change is seen through the incremental
// column (a timestamp or a sequence that grows on every insert and update); each round re-reads
// an overlap window (Timestamp mode) for commits that landed late. Rows are written with upsert
// on the key, so a round that is interrupted and run again does no harm; the watermark advances
// only when a round has finished. Deletes on the source are not seen (no change data capture):
// the README says so.
import type { DatabaseAdapter } from '../db/adapter.ts';
import type { SqlSession } from '../db/session.ts';
import { clearCheckpoints, readCheckpoint, writeCheckpoint } from '../copy/checkpoint.ts';
import { copyShard, type Endpoint } from '../copy/copy-shard.ts';
import type { TableCopyPlan } from '../copy/plan-types.ts';

export interface SyncTable {
  plan: TableCopyPlan;
  /** The incremental column on the source, and its name on the target. */
  sourceColumn: string;
  targetColumn: string;
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
}

export interface SyncResult {
  rounds: number;
  rowsSynced: number;
  caughtUp: boolean;
}

/** Where the watermark of a table lives: a checkpoint row of its own. */
const watermarkId = (migration: string, table: string) => ({ migration, table: `sync:${table}`, shard: 0 });

function changedSince(d: DatabaseAdapter, column: string, watermark: string, mode: SyncOptions['mode'], overlapSeconds: number): string {
  const quoted = d.quoteIdent(column);
  const literal = d.quoteLiteral(watermark);
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

export async function syncTables(options: SyncOptions): Promise<SyncResult> {
  const sd = options.sourceSession.dialect;
  const td = options.targetSession.dialect;
  let rounds = 0;
  let rowsSynced = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    let changed = 0;
    for (const table of options.tables) {
      const { plan } = table;
      const id = watermarkId(options.migration, plan.targetTable);
      const stored = await readCheckpoint(options.targetSession, id);
      // First round: what the copy brought over is the starting point.
      const watermark = stored?.lastKey?.[0]?.toString()
        ?? await scalar(options.targetSession, `SELECT MAX(${td.quoteIdent(table.targetColumn)}) FROM ${td.quoteQualified(plan.targetTable)}`);
      const column = sd.quoteIdent(table.sourceColumn);
      const sourceTable = sd.quoteQualified(plan.sourceTable);
      // Read before copying: the next round starts here, so nothing committed meanwhile is missed.
      const next = await scalar(options.sourceSession, `SELECT MAX(${column}) FROM ${sourceTable}${whereClause(plan.where)}`);
      if (next === null) continue;
      // Whether anything is newer (not how much: the copy counts the rows).
      const newer = watermark === null || await scalar(options.sourceSession,
        `SELECT 1 FROM ${sourceTable}${whereClause(plan.where, `${column} > ${sd.quoteLiteral(watermark)}`)} LIMIT 1`) !== null;
      if (!newer) continue;
      changed++;
      // The table's filter stays as checked; the engine's own condition travels apart from it.
      const since = watermark === null ? undefined : changedSince(sd, table.sourceColumn, watermark, options.mode, options.overlapSeconds);
      const roundPlan: TableCopyPlan = { ...plan, conflictPolicy: 'upsert', ...(since ? { changedSince: since } : {}) };
      const roundId = `${options.migration}#sync`;
      // A round interrupted before its watermark moved is simply run again (upsert): start it clean.
      await clearCheckpoints(options.targetSession, roundId);
      const result = await copyShard({
        source: options.source, target: options.target, plan: roundPlan, migration: roundId, shard: 0, boundaries: [],
        batchSize: options.batchSize, ...(options.signal ? { signal: options.signal } : {}),
      });
      rowsSynced += result.rowsThisRun;
      await writeCheckpoint(options.targetSession, id, { lastKey: [next], rowsCopied: (stored?.rowsCopied ?? 0) + result.rowsThisRun, done: false, boundaries: [] });
    }
    rounds++;
    if (changed === 0) return { rounds, rowsSynced, caughtUp: true };
    if (rounds >= (options.maxRounds ?? 50)) return { rounds, rowsSynced, caughtUp: false };
  }
}

