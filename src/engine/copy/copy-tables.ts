// Copies a set of tables with bounded parallelism: large tables are split into key-range shards
// (computed once, recorded in the checkpoints), and at most `parallelism` shards run at once.
// With several pods, this process copies only its share of the (table, shard) units (units.ts).
// Progress is aggregated per table for the reporter and the operator's status.
import type { SqlSession } from '../db/session.ts';
import { readShardStates } from './checkpoint.ts';
import { copyShard, type Endpoint, type MysqlBulk, type ShardProgress, type SourceSnapshot } from './copy-shard.ts';
import type { TableCopyPlan } from './plan-types.ts';
import { MAX_SHARDS_PER_TABLE, planShards } from './shards.ts';
import { recordSplits, SINGLE_POD, unitsOf, type PodShare, type TableSplit } from './units.ts';

export interface TableToCopy {
  plan: TableCopyPlan;
  /** Planner's estimate, for progress and for deciding whether to shard. */
  estimatedRows: number;
  /** Data type of the first key column (only integer keys are split). */
  keyType: string;
}

export interface TableProgressState {
  table: string;
  rowsCopied: number;
  rowsEstimated: number;
  shardsDone: number;
  shards: number;
  done: boolean;
}

export interface CopyTablesOptions {
  source: Endpoint;
  target: Endpoint;
  /** Sessions for planning shards (source, read only) and reading checkpoints (target). */
  sourceSession: SqlSession;
  targetSession: SqlSession;
  migration: string;
  tables: TableToCopy[];
  batchSize: number;
  parallelism: number;
  /** Tables with fewer estimated rows than this are copied as one shard. */
  minRowsToShard?: number;
  /** Key ranges a large table is split into (default: parallelism; at most MAX_SHARDS_PER_TABLE). */
  shardsPerTable?: number;
  /** The share of the (table, shard) units this process copies (default: all of them). */
  pod?: PodShare;
  onProgress?: (tables: TableProgressState[]) => void;
  signal?: AbortSignal;
  mysqlBulk?: MysqlBulk;
  /**
   * Change capture: every shard reads this snapshot. A MySQL/MariaDB one is a single connection, so
   * its shards run one at a time whatever `parallelism` says (see SourceSnapshot).
   */
  snapshot?: SourceSnapshot;
}

export interface CopyTablesResult {
  /** The tables this pod has units of, with its share of their rows. */
  tables: TableProgressState[];
  rowsThisRun: number;
  /** The recorded split of every table, for waiting on the other pods. */
  splits: TableSplit[];
}

/** Runs `tasks` with at most `limit` in flight; the first failure stops new ones and is thrown. */
export async function runPool(tasks: (() => Promise<void>)[], limit: number, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < tasks.length && !signal?.aborted) {
      const task = tasks[next++];
      try {
        await task?.();
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, worker));
  if (failure !== undefined) throw failure;
  signal?.throwIfAborted();
}

export async function copyTables(options: CopyTablesOptions): Promise<CopyTablesResult> {
  const minRowsToShard = options.minRowsToShard ?? 500_000;
  const splitInto = Math.min(MAX_SHARDS_PER_TABLE, options.shardsPerTable ?? options.parallelism);
  const pod = options.pod ?? SINGLE_POD;
  // A resumed table keeps the split it started with, whatever the data, parallelism or pods now.
  const splits = await recordSplits(options.targetSession, options.migration, options.tables.map(({ plan, estimatedRows, keyType }) => ({
    table: plan.targetTable,
    plan: () => (estimatedRows >= minRowsToShard && splitInto > 1
      ? planShards(options.sourceSession, plan.sourceTable, plan.key[0] ?? '', keyType, splitInto, plan.dedupe ? undefined : plan.where)
      : Promise.resolve([])),
  })));
  const boundariesOf = new Map(splits.map((split) => [split.table, split.boundaries]));
  const mine = unitsOf(splits, pod);
  const states = new Map<string, TableProgressState>();
  const shardRows = new Map<string, number>();
  const tasks: (() => Promise<void>)[] = [];
  let rowsThisRun = 0;
  // Rows each shard holds already (earlier runs), read once for all tables.
  const stored = new Map((await readShardStates(options.targetSession, options.migration)).map((s) => [`${s.table}#${String(s.shard)}`, s.rowsCopied]));

  for (const table of options.tables) {
    const { plan } = table;
    const boundaries = boundariesOf.get(plan.targetTable) ?? [];
    const shards = mine.filter((unit) => unit.table === plan.targetTable).map((unit) => unit.shard);
    if (shards.length === 0) continue; // all of it is other pods' share
    // This pod's share of the table: its shards, the rows they hold already, the estimate pro rata.
    const state: TableProgressState = {
      table: plan.targetTable, rowsCopied: 0, rowsEstimated: Math.round((table.estimatedRows * shards.length) / (boundaries.length + 1)),
      shardsDone: 0, shards: shards.length, done: false,
    };
    for (const shard of shards) {
      const key = `${plan.targetTable}#${String(shard)}`;
      const rows = stored.get(key);
      if (rows === undefined) continue;
      shardRows.set(key, rows);
      state.rowsCopied += rows;
    }
    states.set(plan.targetTable, state);
    for (const shard of shards) {
      tasks.push(async () => {
        const report = (progress: ShardProgress): void => {
          const key = `${progress.table}#${String(progress.shard)}`;
          state.rowsCopied += progress.rowsCopied - (shardRows.get(key) ?? 0);
          shardRows.set(key, progress.rowsCopied);
          options.onProgress?.([...states.values()]);
        };
        const result = await copyShard({
          source: options.source, target: options.target, plan, migration: options.migration, shard, boundaries,
          batchSize: options.batchSize, onProgress: report, ...(options.signal ? { signal: options.signal } : {}),
          ...(options.mysqlBulk ? { mysqlBulk: options.mysqlBulk } : {}),
          ...(options.snapshot ? { snapshot: options.snapshot } : {}),
        });
        rowsThisRun += result.rowsThisRun;
        report(result);
        state.shardsDone++;
        state.done = state.shardsDone === state.shards;
        if (state.done) state.rowsEstimated = state.rowsCopied;
        options.onProgress?.([...states.values()]);
      });
    }
  }
  // One connection holds a MySQL snapshot: one query on it at a time.
  await runPool(tasks, options.snapshot?.kind === 'held' ? 1 : options.parallelism, options.signal);
  return { tables: [...states.values()], rowsThisRun, splits };
}
