// A ChangeCapture DataMigration deleted before its capture was released: the finalizer stays until
// the release Job has run (a PostgreSQL slot left behind retains WAL until the source's disk is
// full), and a ScaleDown fence it left up is lifted, so deleting a migration mid-cutover never
// leaves blue scaled to zero. Bounded: after RELEASE_ON_DELETE_SECONDS the finalizer goes anyway,
// with a Warning Event naming what is left to drop by hand.
import { FENCE_RECORD_ANNOTATION, FINALIZER, REASONS } from '../api/constants.ts';
import type { DataMigration } from '../api/types.ts';
import type { Cluster } from './cluster.ts';
import { cleanupPending } from './capture-cleanup.ts';
import { liftScaleDown } from './fence.ts';
import { buildStepJob, stepJobName, type EngineConfig } from './job-builder.ts';
import { entryOf, secondsBetween } from './ledger.ts';
import type { Logger } from './logger.ts';
import { controlledByMigration, jobState, observeJob } from './observe.ts';
import { statusCode } from './outcome.ts';
import { parseReleaseResult, parseUnfenceResult } from './step-results.ts';
import { captureNames } from '../engine/db/postgres/change-capture.ts';
import { engineSettings } from '../engine/pipeline/settings.ts';

export const RELEASE_ON_DELETE_SECONDS = 600;

export interface FinalizeDeps {
  cluster: Cluster;
  engine: EngineConfig;
  log: Logger;
  now: Date;
  /** Migrations (by uid) already told to lift their External fence: the finalizer runs every few seconds. */
  saidExternal: Set<string>;
}

/** Whether a SourceReadOnly fence of this migration is still up (its unfence has not run). */
function readOnlyLeftUp(migration: DataMigration): boolean {
  const status = migration.status ?? {};
  return migration.spec.cutover?.fence?.type === 'SourceReadOnly' && entryOf(status, 'fence') !== undefined
    && entryOf(status, 'switch')?.outcome !== 'Succeeded' && entryOf(status, 'unfence')?.outcome !== 'Succeeded';
}

/** The steps a deleted migration still runs before its finalizer goes, in order: the unfence, the release. */
function endingSteps(migration: DataMigration): ('unfence' | 'release')[] {
  if (!cleanupPending({ spec: migration.spec, status: migration.status ?? {} })) return [];
  return [...(readOnlyLeftUp(migration) ? ['unfence' as const] : []), 'release'];
}

/** The Jobs of those steps (kept while the migration's other Jobs are deleted). */
export function endingJobNames(migration: DataMigration): string[] {
  return endingSteps(migration).map((step) => stepJobName(migration.metadata?.name ?? '', migration.status?.runId ?? '', step));
}

async function liftFenceOnDelete(deps: FinalizeDeps, migration: DataMigration): Promise<void> {
  const status = migration.status ?? {};
  const fence = migration.spec.cutover?.fence;
  if (fence === undefined || entryOf(status, 'fence') === undefined || entryOf(status, 'switch')?.outcome === 'Succeeded') return;
  const unfenced = entryOf(status, 'unfence')?.outcome;
  if (fence.type === 'External') {
    // A person put it up; only a person can take it down: said once, as the finalizer first runs.
    if (unfenced === undefined && migration.metadata?.finalizers?.includes(FINALIZER) === true && !deps.saidExternal.has(migration.metadata.uid ?? '')) {
      deps.saidExternal.add(migration.metadata.uid ?? '');
      await deps.cluster.recordEvent(migration, { type: 'Warning', reason: REASONS.FenceLifted, time: deps.now,
        message: `The DataMigration was deleted behind its External write fence without switching the Service: lift the fence you put up (writes to the source are still stopped)` }).catch(() => undefined);
    }
    return;
  }
  if (fence.deployment === undefined) return;
  const namespace = migration.metadata?.namespace ?? '';
  const observed = await deps.cluster.fenceDeployment(namespace, fence.deployment);
  const lift = liftScaleDown(fence.deployment, observed, { name: migration.metadata?.name ?? '', uid: migration.metadata?.uid ?? '', runId: status.runId ?? '' });
  if (lift.kind !== 'scale') return;
  await deps.cluster.scaleDeployment(namespace, fence.deployment, { resourceVersion: lift.action.resourceVersion, replicas: lift.action.replicas, annotations: { [FENCE_RECORD_ANNOTATION]: null } });
  deps.log.info('lifted the write fence of a deleted migration', { deployment: fence.deployment, replicas: lift.action.replicas });
}

/** Runs one ending step's Job: 'waiting' until it finished, then its pods' result. */
async function endingJob(deps: FinalizeDeps, migration: DataMigration, step: 'unfence' | 'release'): Promise<'waiting' | { state: string; result: unknown }> {
  const namespace = migration.metadata?.namespace ?? '';
  const name = stepJobName(migration.metadata?.name ?? '', migration.status?.runId ?? '', step);
  const job = deps.cluster.jobs(namespace).find((candidate) => candidate.metadata?.name === name && controlledByMigration(candidate, migration));
  if (job === undefined) {
    try {
      await deps.cluster.createJob(buildStepJob(migration, step, migration.status?.runId ?? '', deps.engine));
      deps.log.info(`created the ${step} Job of a deleted migration`, { job: name });
    } catch (error) {
      if (statusCode(error) !== 409) throw error;
    }
    return 'waiting';
  }
  if (jobState(job) === 'Running') return 'waiting';
  return { state: jobState(job), result: observeJob(job, await deps.cluster.jobPods(namespace, name))?.result };
}

/** 'waiting' while the unfence or the release runs (requeue); 'done' when the finalizer may go. */
export async function finalizeCapture(deps: FinalizeDeps, migration: DataMigration): Promise<'done' | 'waiting'> {
  const steps = endingSteps(migration);
  if (steps.length === 0) return 'done';
  await liftFenceOnDelete(deps, migration);
  const say = async (type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> => {
    await deps.cluster.recordEvent(migration, { type, reason, message, time: deps.now }).catch(() => undefined);
  };
  const deleted = migration.metadata?.deletionTimestamp;
  const slot = captureNames(engineSettings(migration).uid).slot;
  if (deleted !== undefined && secondsBetween(new Date(deleted).toISOString(), deps.now.toISOString()) > RELEASE_ON_DELETE_SECONDS) {
    const readOnly = steps.includes('unfence') ? '; the source database may still be read-only: run `dmctl step unfence` with its manifest' : '';
    await say('Warning', REASONS.CaptureNotReleased, `The change capture was not released within ${String(RELEASE_ON_DELETE_SECONDS)} s of the deletion; on a PostgreSQL source drop it by hand: SELECT pg_drop_replication_slot('${slot}'); DROP PUBLICATION ${slot}${readOnly}`);
    return 'done';
  }
  if (steps.includes('unfence')) {
    const unfence = await endingJob(deps, migration, 'unfence');
    if (unfence === 'waiting') return 'waiting';
    const parsed = parseUnfenceResult(unfence.result);
    if (unfence.state !== 'Succeeded' || !parsed.ok || !parsed.value.unfenced) {
      await say('Warning', REASONS.FenceLifted, 'The source database may still be read-only (the unfence Job of the deleted migration failed): run `dmctl step unfence` with its manifest, or restore the setting by hand');
    }
  }
  const release = await endingJob(deps, migration, 'release');
  if (release === 'waiting') return 'waiting';
  const parsed = parseReleaseResult(release.result);
  if (release.state === 'Succeeded' && parsed.ok && parsed.value.released) {
    await say('Normal', REASONS.CaptureReleased, 'The change capture is released: nothing of it is left on the source');
  } else {
    const why = parsed.ok ? (parsed.value.problems ?? []).join('; ') : parsed.error;
    await say('Warning', REASONS.CaptureNotReleased, `The change capture could not be released (${why || 'the release Job failed'}); on a PostgreSQL source drop it by hand: SELECT pg_drop_replication_slot('${slot}'); DROP PUBLICATION ${slot}`);
  }
  return 'done';
}
