// The copy step of a ChangeCapture migration (issue 16, step 1): the capture starts before the
// copy's snapshot and every table is copied reading that snapshot, so the follower (cdc-follow.ts,
// cdc-follow-mysql.ts) starts exactly where the copy's data ends: nothing falls between them.
// What that takes on each source is its capture driver's (db/change-capture.ts):
// - PostgreSQL: the publication and the slot, whose exported snapshot each source session of the
//   copy imports; the slot holds the follower's start.
// - MySQL/MariaDB: one connection inside START TRANSACTION WITH CONSISTENT SNAPSHOT and its binlog
//   position; every table is read on that connection (a snapshot cannot be shared), and the
//   position is recorded on the target once the copy is done.
// A copy of no use to a follower (killed mid-way, or its capture gone) is started over: the capture
// dropped, the tables this migration copies emptied, its checkpoints cleared. A copy that finished
// with its capture in place is not redone. The slot and the publication are the only source objects.
import { captureOwner, clearCheckpoints, ensureCheckpointTable, readShardStates } from '../copy/checkpoint.ts';
import type { Endpoint, SourceSnapshot } from '../copy/copy-shard.ts';
import { captureDriverFor, captureSourceOf, type CapturedTableSpec, type ChangeCaptureDriver } from '../db/change-capture.ts';
import type { Engine } from '../db/dialect.ts';
import type { SqlSession } from '../db/session.ts';
import type { MigrationPlan } from '../pipeline/plan.ts';
import { PlanRefusedError } from '../pipeline/refused.ts';
import type { EngineSettings } from '../pipeline/settings.ts';
import { truncateTables } from '../rollback/rollback.ts';
import { tableExists } from '../db/catalog.ts';
import { claimedTables } from '../migrations/claims.ts';
import { TableNames } from '../migrations/table-names.ts';
import { createdTables } from '../schema/created-tables.ts';
import { captureTableFromPlan, type CaptureTable } from './cdc-apply.ts';

/** What the capture follows: the tables the plan copies, as the follower applies them and as the source names them. */
export interface CaptureScope {
  tables: CaptureTable[];
  specs: CapturedTableSpec[];
  /** Tables whose changes cannot be replayed as the copy reads them (filters, dedupe, computed columns). */
  problems: string[];
}

export function captureScope(plan: Pick<MigrationPlan, 'tables'>, sourceEngine: Engine): CaptureScope {
  const scope: CaptureScope = { tables: [], specs: [], problems: [] };
  for (const planned of plan.tables) {
    if (!planned.copy) continue;
    const table = captureTableFromPlan(planned.copy, planned.source.schema, captureDriverFor(sourceEngine).method);
    if ('error' in table) {
      scope.problems.push(table.error);
      continue;
    }
    // The catalog's own names: what the change stream calls the table, whatever case the manifest used.
    scope.tables.push({ ...table, sourceSchema: planned.source.schema, sourceTable: planned.source.name });
    scope.specs.push({ schema: planned.source.schema, name: planned.source.name, key: planned.copy.key });
  }
  return scope;
}

/**
 * Why this source cannot be followed by change capture (errors), and what the copy does
 * differently (warnings); catalog reads only, on the plan's read-only source session.
 */
export async function captureReasons(source: SqlSession, plan: Pick<MigrationPlan, 'tables'>, settings: Pick<EngineSettings, 'sourceEngine' | 'copyPods' | 'parallelism'>): Promise<{ errors: string[]; warnings: string[] }> {
  const scope = captureScope(plan, settings.sourceEngine);
  const errors = [...scope.problems];
  if (settings.copyPods > 1) errors.push('strategy.incremental.mode ChangeCapture copies in one pod (one snapshot): set strategy.copyPods to 1');
  const driver = captureDriverFor(settings.sourceEngine);
  if (scope.specs.length > 0) errors.push(...await driver.problems(source, scope.specs));
  return { errors, warnings: driver.copyWarnings(settings.parallelism) };
}

export interface CaptureCopyOptions {
  source: Endpoint;
  target: Endpoint;
  /** The step's sessions: the source read only (catalog reads), the target writable. */
  sourceSession: SqlSession;
  targetSession: SqlSession;
  settings: Pick<EngineSettings, 'uid' | 'sourceEngine'>;
  plan: Pick<MigrationPlan, 'tables'>;
  /** Pods of the copy: a capture's snapshot is one process's. */
  pods: number;
}

export interface CaptureCopyOutcome<T> {
  result: T;
  /** 'copied': a new capture and a copy in its snapshot; 'complete': an earlier attempt had done both. */
  state: 'copied' | 'complete';
  /** An earlier attempt's capture or partial copy was discarded first. */
  startedOver: boolean;
  /** Where the follower starts: the slot's consistent point (LSN) or the binlog position; undefined when complete. */
  startPosition?: string;
}

interface EarlierAttempt {
  /** Any trace: a slot or publication, copy checkpoints, a recorded capture position. */
  found: boolean;
  /** Every copied table done, and the capture it was copied for still in place. */
  complete: boolean;
}

async function earlierAttempt(driver: ChangeCaptureDriver, options: CaptureCopyOptions, targetTables: readonly string[]): Promise<EarlierAttempt> {
  const { sourceSession: source, targetSession: target, settings } = options;
  const shards = await readShardStates(target, settings.uid);
  const capture = await readShardStates(target, captureOwner(settings.uid));
  const left = await driver.earlierCapture(source, target, settings.uid);
  const copied = targetTables.every((table) => {
    const tableShards = shards.filter((s) => s.table === table);
    return tableShards.length > 0 && tableShards.every((s) => s.done);
  });
  return { found: left.sourceObjects || shards.length > 0 || capture.length > 0, complete: left.inPlace && copied };
}

/**
 * Why the copy cannot start over by emptying its tables: a table this migration did not create and
 * that held rows when it first claimed it (or whose state then is unknown) holds the user's rows
 * mixed with the earlier attempt's, and emptying it would delete them too. A table emptied by hand
 * since is no longer in the way.
 */
async function startOverRefusals(target: SqlSession, uid: string, targetTables: readonly string[]): Promise<string[]> {
  const names = new TableNames(target);
  const created = await names.canonicalAll(await createdTables(target, uid, ['created']));
  const claimed = await claimedTables(target, uid);
  const refusals: string[] = [];
  for (const table of new Set(targetTables)) {
    const name = await names.canonical(table);
    if (created.has(name) || claimed.get(name) === true || !await tableExists(target, table)) continue;
    const holdsRows = (await target.query(`SELECT 1 AS one FROM ${target.dialect.quoteQualified(table)} LIMIT 1`)).length > 0;
    if (!holdsRows) continue;
    refusals.push(`table ${table} held rows before this migration first wrote to it, and an earlier attempt of this ChangeCapture copy (a pod that died) `
      + 'may have left rows of its own in it: starting over empties the copied tables, which would delete those rows too, so nothing was emptied. '
      + 'If all its rows may go, empty it by hand and run the copy again; otherwise restore it as it was before this migration and start the migration anew');
  }
  return refusals;
}

/** Drops the capture, empties the tables this migration copies (only those) and forgets its checkpoints; refused (nothing done) when emptying would delete rows it did not write. */
async function startOver(driver: ChangeCaptureDriver, options: CaptureCopyOptions, targetTables: readonly string[]): Promise<void> {
  const { settings, targetSession: target } = options;
  const refusals = await startOverRefusals(target, settings.uid, targetTables);
  // Dropped even when refused: the earlier attempt's slot is of no use and would retain WAL.
  const dropped = await driver.release(captureSourceOf(options.source), settings.uid);
  if (refusals.length > 0) throw new PlanRefusedError(refusals);
  if (dropped.problems.length > 0) throw new Error(`the earlier attempt's capture could not be dropped to start over: ${dropped.problems.join('; ')}`);
  await truncateTables(target, targetTables);
  await clearCheckpoints(target, settings.uid);
  await clearCheckpoints(target, captureOwner(settings.uid));
}

/**
 * Runs `copy` (the copy step's tables, every shard reading the snapshot it is given) inside a new
 * capture, after starting over from an earlier attempt if there is one; an earlier attempt that
 * completed runs `copy` without a snapshot (its checkpoints are all done: nothing is read again).
 * Refuses (PlanRefusedError, nothing created) when a prerequisite is missing. A failed copy drops
 * the capture it created: the slot would retain WAL, and the next attempt starts over anyway.
 */
export async function copyWithCapture<T>(options: CaptureCopyOptions, copy: (snapshot: SourceSnapshot | undefined) => Promise<T>): Promise<CaptureCopyOutcome<T>> {
  const { settings, targetSession: target } = options;
  const scope = captureScope(options.plan, settings.sourceEngine);
  const refusals = [...scope.problems, ...(options.pods > 1 ? ['ChangeCapture copies in one pod (one snapshot): set strategy.copyPods to 1'] : [])];
  if (scope.specs.length === 0) refusals.push('ChangeCapture: no table to copy and capture');
  if (refusals.length > 0) throw new PlanRefusedError(refusals);
  const targetTables = options.plan.tables.flatMap((t) => (t.copy ? [t.copy.targetTable] : []));
  const driver = captureDriverFor(settings.sourceEngine);
  await ensureCheckpointTable(target);
  const earlier = await earlierAttempt(driver, options, targetTables);
  if (earlier.complete) return { result: await copy(undefined), state: 'complete', startedOver: false };
  if (earlier.found) await startOver(driver, options, targetTables);
  const began = await refusedAsPlan(driver, () => driver.beginSnapshot(captureSourceOf(options.source), target, settings.uid, scope.specs));
  let result: T;
  try {
    result = await copy(began.snapshot);
  } catch (error) {
    await began.abandon();
    throw error;
  }
  return { result, state: 'copied', startedOver: earlier.found, startPosition: await began.finish() };
}

/** The capture's own refusal (a prerequisite checked again as it starts) as the plan's: exit 3, nothing created. */
async function refusedAsPlan<T>(driver: ChangeCaptureDriver, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (driver.isRefusal(error)) throw new PlanRefusedError([error.message]);
    throw error;
  }
}
