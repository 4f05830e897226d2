// Copies a set of tables with bounded parallelism: large tables are split into key-range shards
// (computed once, recorded in the checkpoints), and at most `parallelism` shards run at once.
// Progress is aggregated per table for the reporter and the operator's status.
import type { SqlSession } from '../db/session.ts';
import { readTableCheckpoints } from './checkpoint.ts';
import { copyShard, type Endpoint, type MysqlBulk, type ShardProgress } from './copy-shard.ts';
import type { TableCopyPlan } from './plan-types.ts';
import { planShards } from './shards.ts';

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
  onProgress?: (tables: TableProgressState[]) => void;
  signal?: AbortSignal;
  mysqlBulk?: MysqlBulk;
}

export interface CopyTablesResult {
  tables: TableProgressState[];
  rowsThisRun: number;
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
  const states = new Map<string, TableProgressState>();
  const shardRows = new Map<string, number>();
  const tasks: (() => Promise<void>)[] = [];
  let rowsThisRun = 0;

  for (const table of options.tables) {
    const { plan } = table;
    const existing = await readTableCheckpoints(options.targetSession, options.migration, plan.targetTable);
    // A resumed table keeps the boundaries it started with, whatever the data or parallelism now.
    const first = existing.values().next().value;
    const boundaries = first
      ? first.boundaries
      : table.estimatedRows >= minRowsToShard && options.parallelism > 1
        ? await planShards(options.sourceSession, plan.sourceTable, plan.key[0] ?? '', table.keyType, options.parallelism, plan.dedupe ? undefined : plan.where)
        : [];
    const shards = boundaries.length + 1;
    const state: TableProgressState = {
      table: plan.targetTable, rowsCopied: 0, rowsEstimated: table.estimatedRows, shardsDone: 0, shards, done: false,
    };
    for (const [shard, checkpoint] of existing) {
      shardRows.set(`${plan.targetTable}#${shard}`, checkpoint.rowsCopied);
      state.rowsCopied += checkpoint.rowsCopied;
    }
    states.set(plan.targetTable, state);
    for (let shard = 0; shard < shards; shard++) {
      tasks.push(async () => {
        const report = (progress: ShardProgress): void => {
          const key = `${progress.table}#${progress.shard}`;
          state.rowsCopied += progress.rowsCopied - (shardRows.get(key) ?? 0);
          shardRows.set(key, progress.rowsCopied);
          options.onProgress?.([...states.values()]);
        };
        const result = await copyShard({
          source: options.source, target: options.target, plan, migration: options.migration, shard, boundaries,
          batchSize: options.batchSize, onProgress: report, ...(options.signal ? { signal: options.signal } : {}),
          ...(options.mysqlBulk ? { mysqlBulk: options.mysqlBulk } : {}),
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
  await runPool(tasks, options.parallelism, options.signal);
  return { tables: [...states.values()], rowsThisRun };
}
