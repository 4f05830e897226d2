// The SourceReadOnly write fence (spec.cutover.fence.type SourceReadOnly, opted into by the user:
// it changes a setting of the source), as two steps the operator runs as Jobs at the cutover:
// - fence: makes the source read-only for the application and ends its writes in flight
//   (db/read-only-fence.ts), after recording the setting it had on the TARGET's bookkeeping (a
//   checkpoint row of its own under `${uid}#cdc`, like the capture's lag): written before the
//   source is changed, so that a fence that dies half-way still knows what to restore, and never
//   overwritten, so that a second fence does not record its own 'on' as the setting before;
// - unfence: puts the recorded setting back exactly (PostgreSQL: RESET when there was none; and the
//   sessions opened while the fence stood, which began read-only, are ended so the application's
//   pool reconnects able to write), then forgets the record. Without a record there is nothing to
//   do. Both are safe to run again.
// Missing privileges refuse the fence (exit 3) before anything is written on either side.
import { captureOwner, CHECKPOINT_TABLE, deleteCheckpoint, ensureCheckpointTable, readCheckpoint, readCheckpointJson, writeCheckpointJson, type CheckpointId } from '../copy/checkpoint.ts';
import { FenceRefused, isFenceSetting, readOnlyFenceFor, type FenceSetting } from '../db/read-only-fence.ts';
import type { SqlSession } from '../db/session.ts';
import { identityOf } from './bookkeeping.ts';
import { PlanRefusedError } from './refused.ts';
import { sided, withSession, withSessions, type StepContext } from './steps.ts';
import { envSecondsMs } from '../db/connection-options.ts';

export interface FenceStepResult {
  fenced: boolean;
  /** The setting before the first fence (what unfence restores). */
  previous: FenceSetting;
  sessionsEnded: number;
  notes: string[];
}

export interface UnfenceStepResult {
  unfenced: boolean;
  /** The setting put back ('on', 'off', 'unset'), or 'nothing recorded'. */
  restored: string;
  /** PostgreSQL: sessions opened while the fence stood (read-only by default) that were ended. */
  sessionsEnded: number;
}

/** What the fence changed, as recorded on the target before changing it. */
export interface FenceRecord {
  engine: string;
  previous: FenceSetting;
  /** When recorded (ISO 8601). */
  recordedAt: string;
  /** The source server's clock just before the fence: sessions opened after it began read-only. */
  sourceSince?: string;
}

const fenceRecordId = (uid: string): CheckpointId => ({ migration: captureOwner(uid), table: 'fence', shard: 0 });

const FENCE_TYPE = 'SourceReadOnly';

/** How long the fence waits for writes in flight to end (DMO_FENCE_WAIT_SECONDS, default 30). */
const fenceWaitMs = (env: Readonly<Record<string, string | undefined>>): number => envSecondsMs(env, 'DMO_FENCE_WAIT_SECONDS') ?? 30_000;

export async function readFenceRecord(target: SqlSession, uid: string): Promise<FenceRecord | undefined> {
  if (await readCheckpoint(target, fenceRecordId(uid)) === undefined) return undefined;
  const record = await readCheckpointJson(target, fenceRecordId(uid)) ?? {};
  // A record that cannot be read is not guessed at: a person must say what the setting was.
  if (!isFenceSetting(record.previous) || typeof record.engine !== 'string' || typeof record.recordedAt !== 'string') {
    throw new Error(`the fence record on the target (${CHECKPOINT_TABLE}, migration_uid ${fenceRecordId(uid).migration}, table_name fence) cannot be read: restore the source's read-only setting by hand and delete that row`);
  }
  return { engine: record.engine, previous: record.previous, recordedAt: record.recordedAt, ...(typeof record.sourceSince === 'string' ? { sourceSince: record.sourceSince } : {}) };
}

const writeFenceRecord = (target: SqlSession, uid: string, record: FenceRecord): Promise<void> => writeCheckpointJson(target, fenceRecordId(uid), record);
const deleteFenceRecord = (target: SqlSession, uid: string): Promise<void> => deleteCheckpoint(target, fenceRecordId(uid));

function refuseOtherFences(fenceType: string | undefined): void {
  if (fenceType !== FENCE_TYPE) throw new PlanRefusedError([`the fence step is for spec.cutover.fence.type ${FENCE_TYPE} (this migration's is ${fenceType ?? 'not set'}): it changes a setting of the source only where the user opted in`]);
}

/** A writable session on the source: the fence's only one (the steps' source sessions are read-only). */
const withWritableSource = <T>(context: StepContext, applicationName: string, fn: (source: SqlSession) => Promise<T>): Promise<T> =>
  withSession(sided(context.source, 'source'), false, applicationName, fn);

/**
 * Makes the source read-only for the application (spec.cutover.fence.type SourceReadOnly only;
 * otherwise refused): checks the privileges (refused, nothing changed), records the setting before
 * (kept from an earlier run), changes it and waits until no write in flight is left.
 */
export async function fenceStep(context: StepContext): Promise<FenceStepResult> {
  const { settings } = context;
  refuseOtherFences(settings.fenceType);
  const fence = readOnlyFenceFor(settings.sourceEngine);
  const { uid } = identityOf(settings);
  return withSessions(context, (_readOnlySource, target) => withWritableSource(context, 'datamigration fence', async (source) => {
    const problems = await fence.problems(source);
    if (problems.length > 0) throw new PlanRefusedError(problems, 'the source cannot be made read-only');
    const now = await fence.current(source).catch((error: unknown) => {
      throw error instanceof FenceRefused ? new PlanRefusedError(error.reasons, 'the source cannot be made read-only') : error;
    });
    await ensureCheckpointTable(target);
    const earlier = await readFenceRecord(target, uid);
    // A second fence (a retried Job) finds the source read-only already: the setting before is the first fence's record.
    const record = earlier ?? { engine: settings.sourceEngine, previous: now, recordedAt: new Date().toISOString(), sourceSince: await fence.clock(source) };
    if (!earlier) await writeFenceRecord(target, uid, record);
    try {
      const applied = await fence.apply(source, fenceWaitMs(process.env));
      return { fenced: true, previous: record.previous, sessionsEnded: applied.sessionsEnded, notes: applied.notes };
    } catch (error) {
      if (!(error instanceof FenceRefused)) throw error;
      // Refused before the source changed: nothing to restore, so nothing recorded by this run stays.
      if (!earlier) await deleteFenceRecord(target, uid);
      throw new PlanRefusedError(error.reasons, 'the source cannot be made read-only');
    }
  }), { applicationName: 'datamigration fence' });
}

/** Puts back the setting the fence recorded, then forgets the record; nothing recorded: nothing to do. */
export async function unfenceStep(context: StepContext): Promise<UnfenceStepResult> {
  const { settings } = context;
  const { uid } = identityOf(settings);
  return withSessions(context, async (_readOnlySource, target) => {
    await ensureCheckpointTable(target);
    const record = await readFenceRecord(target, uid);
    if (!record) return { unfenced: true, restored: 'nothing recorded', sessionsEnded: 0 };
    if (record.engine !== settings.sourceEngine) throw new Error(`the fence record was written for a ${record.engine} source, but spec.source.engine is ${settings.sourceEngine}`);
    const fence = readOnlyFenceFor(settings.sourceEngine);
    const sessionsEnded = await withWritableSource(context, 'datamigration unfence', (source) => fence.restore(source, record.previous, record.sourceSince, fenceWaitMs(process.env)));
    await deleteFenceRecord(target, uid);
    return { unfenced: true, restored: record.previous, sessionsEnded };
  }, { applicationName: 'datamigration unfence' });
}
