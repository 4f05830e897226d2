// The copy's work across the pods of an Indexed Job. A unit is one (table, key range) pair; the
// units are listed in a fixed order (the tables' order, then their shards), and pod `index` of
// `count` takes every unit whose position % count === index. Every pod must see the same list,
// so a table's split is recorded once in the checkpoint table under a lock (the first pod to get
// there computes it, the others read it back), even if the source changes between their reads.
// Whoever sees every unit done runs the post-copy work; the checkpoints are the only shared state.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SqlSession } from '../db/session.ts';
import { databaseLockName, tryWithLock, withMigrationLock } from '../migrations/lock.ts';
import { ensureCheckpointTable, insertCheckpointIfAbsent, readRecordedSplit, readShardStates } from './checkpoint.ts';

/** Which share of the units this process copies: pod `index` (0-based) of `count`. */
export interface PodShare {
  index: number;
  count: number;
}

export const SINGLE_POD: PodShare = { index: 0, count: 1 };

/** A table's key-range boundaries: boundaries.length + 1 shards. */
export interface TableSplit {
  table: string;
  boundaries: string[];
}

export interface Unit {
  table: string;
  shard: number;
  /** The shards of its table. */
  shards: number;
}

/** "I/N" (as in --pod 1/4) as a share; undefined when it is not one. */
export function parsePodShare(text: string): PodShare | undefined {
  const match = /^(\d{1,3})\/(\d{1,3})$/.exec(text.trim());
  if (!match) return undefined;
  const share = { index: Number(match[1]), count: Number(match[2]) };
  return share.count >= 1 && share.index < share.count ? share : undefined;
}

/** Every unit of the splits in their fixed order, and the ones that are `pod`'s. */
export function unitsOf(splits: readonly TableSplit[], pod: PodShare): Unit[] {
  const all = splits.flatMap((split) => Array.from({ length: split.boundaries.length + 1 }, (_, shard) => ({ table: split.table, shard, shards: split.boundaries.length + 1 })));
  return all.filter((_, position) => position % pod.count === pod.index);
}

/** The longest a pod waits for another to record a split (min/max on the source, per table). */
const SPLIT_LOCK_TIMEOUT_SECONDS = 3600;

export interface SplitRequest {
  table: string;
  /** Computes the boundaries; called only when no pod has recorded the table's split yet. */
  plan: () => Promise<string[]>;
}

/**
 * The split of each table as recorded in the checkpoint table: a table that has checkpoints keeps
 * their boundaries; the others are planned and recorded, a checkpoint row per shard, in one
 * transaction under a lock, so every pod of the copy reads back the same split.
 */
export async function recordSplits(session: SqlSession, migration: string, tables: readonly SplitRequest[]): Promise<TableSplit[]> {
  return withMigrationLock(session, await databaseLockName(session, 'dataops_copy_split', migration), async () => {
    // Under the lock: two pods creating the table at once can collide in PostgreSQL's catalog.
    await ensureCheckpointTable(session);
    const splits: TableSplit[] = [];
    for (const table of tables) {
      splits.push({ table: table.table, boundaries: await readRecordedSplit(session, migration, table.table) ?? await table.plan() });
    }
    await session.query(session.dialect.beginStatement);
    try {
      for (const split of splits) {
        for (let shard = 0; shard <= split.boundaries.length; shard++) {
          await insertCheckpointIfAbsent(session, { migration, table: split.table, shard }, { lastKey: null, rowsCopied: 0, done: false, boundaries: split.boundaries });
        }
      }
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    return splits;
  }, {
    timeoutSeconds: SPLIT_LOCK_TIMEOUT_SECONDS, what: 'the lock of the copy\'s key-range split',
    heldBy: 'another pod of this copy is still recording the split (its min/max queries on the source have not finished), or it hangs',
  });
}

export interface UnitsProgress {
  units: number;
  done: number;
  rowsCopied: number;
}

/** How far the units of these splits are, over every pod, from the checkpoints. */
export async function unitsProgress(session: SqlSession, migration: string, splits: readonly TableSplit[]): Promise<UnitsProgress> {
  const shards = new Map(splits.map((split) => [split.table, split.boundaries.length + 1]));
  const progress: UnitsProgress = { units: [...shards.values()].reduce((sum, n) => sum + n, 0), done: 0, rowsCopied: 0 };
  for (const state of await readShardStates(session, migration)) {
    if (state.shard >= (shards.get(state.table) ?? 0)) continue;
    progress.rowsCopied += state.rowsCopied;
    if (state.done) progress.done++;
  }
  return progress;
}

export interface WaitOptions {
  signal?: AbortSignal;
  pollMs?: number;
  /** Give up when no unit moved for this long (a pod pending for good, or gone). */
  stallMs?: number;
}

/** Waits until every unit of the splits is done (Phased: the phase before, copied by all pods). */
export async function waitForUnits(session: SqlSession, migration: string, splits: readonly TableSplit[], options: WaitOptions = {}): Promise<void> {
  const pollMs = options.pollMs ?? 1000;
  const stallMs = options.stallMs ?? 30 * 60_000;
  let seen = '';
  let since = Date.now();
  for (;;) {
    const progress = await unitsProgress(session, migration, splits);
    if (progress.done >= progress.units) return;
    const now = `${String(progress.done)}:${String(progress.rowsCopied)}`;
    if (now !== seen) {
      seen = now;
      since = Date.now();
    } else if (Date.now() - since >= stallMs) {
      throw new Error(`${String(progress.units - progress.done)} of ${String(progress.units)} key ranges of the previous phase are not done and none moved for ${String(Math.round(stallMs / 1000))} s: is a pod of the copy Job pending or gone?`);
    }
    await sleep(pollMs, undefined, options.signal ? { signal: options.signal } : {});
  }
}

/**
 * Runs `fn` holding the migration's `purpose` lock if no one else holds it now; undefined when
 * someone does. The post-copy work uses it: a pod that finds it held leaves the work to the holder.
 */
export async function unlessLocked<T>(session: SqlSession, migration: string, purpose: string, fn: () => Promise<T>): Promise<T | undefined> {
  return tryWithLock(session, await databaseLockName(session, `dataops_copy_${purpose}`, migration), fn);
}
