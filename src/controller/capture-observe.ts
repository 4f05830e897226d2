// What a ChangeCapture decision observes besides the Jobs: the sync pod's lag report and its validation at a cut (read from the
// target's bookkeeping with a read-only session, in the background like copy progress: a target
// that never answers holds only its own migration's figures), the pods of the sync Job still
// present (the stream is held until they are gone), and the ScaleDown fence's Deployment.
import type { DataMigration } from '../api/types.ts';
import { openSession } from '../engine/db/connect.ts';
import { engineSettings } from '../engine/pipeline/settings.ts';
import { readCaptureLag } from '../engine/sync/capture-lag.ts';
import { readCutRecord } from '../engine/sync/changed-keys.ts';
import type { Cluster } from './cluster.ts';
import { isChangeCapture } from './context.ts';
import { progressSession, type ProgressUrls } from './copy-progress.ts';
import { stepJobName } from './job-builder.ts';
import type { CaptureLag, CaptureObservation, ObservedJob } from './model.ts';
import { ProgressSampler, type SamplerOptions } from './progress-sampler.ts';

export interface LagSample {
  lag?: CaptureLag;
}

/** The sync pod's last report, read from the target (undefined before the first). */
export async function readSyncLag(migration: DataMigration, urls: ProgressUrls): Promise<LagSample> {
  const session = await openSession(urls.target, progressSession(migration, 'target', urls.targetCa));
  try {
    const { uid } = engineSettings(migration);
    const report = await readCaptureLag(session, uid);
    if (report === undefined) return {};
    const cut = await readCutRecord(session, uid);
    const validated = cut?.state === 'passed' ? { validatedPosition: cut.position, validatedAt: cut.at } : {};
    return { lag: { appliedPosition: report.appliedPosition, lagMs: report.lagMs, pendingBytes: report.pendingBytes, transactions: report.transactions, changes: report.changes, sampledAt: report.sampledAt, ...validated } };
  } finally {
    await session.close();
  }
}

const ACTIVE = new Set(['Syncing', 'AwaitingApproval', 'CuttingOver']);

export class CaptureObserver {
  private readonly lag: ProgressSampler<LagSample>;
  private readonly cluster: Cluster;

  constructor(cluster: Cluster, sampler: SamplerOptions) {
    this.cluster = cluster;
    this.lag = new ProgressSampler<LagSample>(sampler);
  }

  /** Undefined for a migration without change capture, or one with nothing left to observe. */
  async observe(migration: DataMigration, key: string, jobs: readonly ObservedJob[], read: (previous: LagSample | undefined) => Promise<LagSample>): Promise<CaptureObservation | undefined> {
    if (!isChangeCapture(migration.spec)) return undefined;
    const namespace = migration.metadata?.namespace ?? '';
    const phase = migration.status?.phase ?? 'Pending';
    const runId = migration.status?.runId ?? '';
    const syncRunning = jobs.some((job) => job.step === 'sync' && job.state === 'Running');
    let lag: CaptureLag | undefined;
    if (syncRunning && ACTIVE.has(phase)) {
      this.lag.request(key, read);
      lag = this.lag.latest(key)?.lag;
    } else {
      this.lag.forget(key);
    }
    // A deleted sync Job's pod may still stream: counted while the cutover waits for it.
    const syncPods = phase === 'CuttingOver' && runId !== '' ? (await this.cluster.jobPods(namespace, stepJobName(migration.metadata?.name ?? '', runId, 'sync'))).length : 0;
    const fence = migration.spec.cutover?.fence;
    // Read while the cutover may need it, and after the run (a fence left up is lifted).
    const fenceDeployment = fence?.type === 'ScaleDown' && fence.deployment !== undefined && phase !== 'Pending' && phase !== 'Copying' && phase !== 'SchemaMigrating'
      ? await this.cluster.fenceDeployment(namespace, fence.deployment) : undefined;
    return { syncPods, ...(lag !== undefined ? { lag } : {}), ...(fenceDeployment !== undefined ? { fenceDeployment } : {}) };
  }

  forget(key: string): void {
    this.lag.forget(key);
  }
}
