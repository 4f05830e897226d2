// The I/O around decide(): observe (the resource and its Jobs from the informer caches, the
// Jobs' pods for results, the preflight objects, the cutover Service, copy progress), decide,
// act (create/delete Jobs, switch the Service selector, Events) and write the status. Nothing here
// chooses what happens next; that is decide()'s job.
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { FINALIZER, GROUP, LABELS, PLURAL, VERSION, type Step } from '../api/constants.ts';
import type { DataMigration, DataMigrationStatus } from '../api/types.ts';
import { readCopyProgress, forgetEstimates, type ProgressSample } from './copy-progress.ts';
import { decide, type Action, type ObservedJob, type ObservedService } from './decide.ts';
import { buildStepJob, type EngineConfig } from './job-builder.ts';
import { microTime } from './leader-election.ts';
import { registerSecret, type Logger } from './logger.ts';
import type { OperatorMetrics } from './metrics.ts';
import { jobState, observeJob } from './observe.ts';
import { describeError, runPreflight, SecretKeysCache, statusCode } from './preflight.ts';
import { endpointSecrets, type SecretKeyRef } from '../api/defaults.ts';

export interface ReconcileResult {
  /** Reconcile again after this many seconds; absent when only a change should wake it. */
  requeueAfterSeconds?: number;
}

export interface ReconcilerDeps {
  kc: k8s.KubeConfig;
  /** Informer caches. */
  migrations: k8s.ObjectCache<DataMigration>;
  jobs: k8s.ObjectCache<k8s.V1Job>;
  services: k8s.ObjectCache<k8s.V1Service>;
  engine: EngineConfig;
  logger: Logger;
  metrics: OperatorMetrics;
  /** Where Events say they come from. */
  reportingInstance: string;
  now?: () => Date;
}

/** Answers to a Job create that the same request would get again (not 409, 429 or 5xx). */
const REFUSED = new Set([400, 403, 404, 422]);

class JobRejectedError extends Error {
  readonly step: Step;
  constructor(step: Step, message: string) {
    super(message);
    this.step = step;
  }
}

/** Kept between reconciles for one migration. */
interface MigrationMemory {
  /** Finished Jobs' results by Job uid: read once from their pods. */
  results: Map<string, ObservedJob>;
  /** The last copy progress sample (for the rate), and when progress was last read (ms). */
  progress?: ProgressSample;
  progressReadAt?: number;
}

/** How often progress of a running copy reaches status (the bound is 10 s). */
const PROGRESS_SECONDS = 10;

export class Reconciler {
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  private readonly batch: k8s.BatchV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly events: k8s.EventsV1Api;
  private readonly deps: ReconcilerDeps;
  private readonly secretKeys: SecretKeysCache;
  /** What is kept between reconciles, per migration key; forgotten when the migration goes. */
  private readonly memory = new Map<string, MigrationMemory>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
    this.core = deps.kc.makeApiClient(k8s.CoreV1Api);
    this.apps = deps.kc.makeApiClient(k8s.AppsV1Api);
    this.batch = deps.kc.makeApiClient(k8s.BatchV1Api);
    this.custom = deps.kc.makeApiClient(k8s.CustomObjectsApi);
    this.events = deps.kc.makeApiClient(k8s.EventsV1Api);
    this.secretKeys = new SecretKeysCache(this.core);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = '', name = ''] = key.split('/');
    let migration = this.deps.migrations.get(name, namespace);
    if (!migration) {
      this.forget(key);
      return {}; // deleted: its Jobs go with it (owner references)
    }
    const log = this.deps.logger.child({ namespace, name, generation: migration.metadata?.generation, phase: migration.status?.phase });
    if (migration.metadata?.deletionTimestamp) {
      await this.finalize(migration, log);
      this.forget(key);
      return {};
    }
    const memory = this.memoryOf(key);
    const now = (this.deps.now ?? (() => new Date()))();
    const jobs = await this.observeJobs(migration, memory);
    const service = this.observeService(migration);
    const input = { migration, jobs, ...(service ? { service } : {}), now: now.toISOString() };
    const first = decide(input);
    // The finalizer is added while the preflight reads and the actions run (on a new migration, the
    // Job is created in the same round trip); nothing depends on it but the status write, which
    // needs the patched object's resourceVersion. Jobs made before it lands still go with the
    // migration (owner references).
    const patching = migration.metadata?.finalizers?.includes(FINALIZER) ? Promise.resolve(migration) : this.patchMigration(migration, migration.metadata?.finalizers
      ? [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]
      : [{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
    patching.catch(() => undefined); // awaited below; this keeps an earlier throw from leaving it unhandled
    const preflight = first.needsPreflight
      ? await runPreflight({ core: this.core, apps: this.apps, services: this.deps.services, secretKeys: this.secretKeys }, migration)
      : undefined;
    let decision = preflight ? decide({ ...input, preflight }) : first;

    const performed = new Set<string>();
    try {
      for (const action of decision.actions) {
        await this.act(migration, action, decision.status, log);
        performed.add(JSON.stringify(action));
      }
    } catch (error) {
      if (!(error instanceof JobRejectedError)) throw error;
      // Not an error to retry at once: the same Job would be refused again. Decided again with the
      // refusal, the status says why (a condition, an Event) and the step is asked for later.
      log.warn('the API server refused a Job', { step: error.step, error: error.message });
      decision = decide({ ...input, ...(preflight ? { preflight } : {}), rejectedJob: { step: error.step, message: error.message } });
      for (const action of decision.actions) {
        if (!performed.has(JSON.stringify(action))) await this.act(migration, action, decision.status, log);
      }
    }
    migration = await patching;
    const status = decision.status;
    let requeue = decision.requeueAfterSeconds;
    if (status.phase === 'Copying' && jobs.some((j) => j.step === 'copy' && j.state === 'Running')) {
      // At most one read per PROGRESS_SECONDS, however often the Job's changes wake this migration.
      const last = memory.progressReadAt;
      if (last === undefined || now.getTime() - last >= (PROGRESS_SECONDS - 1) * 1000) {
        memory.progressReadAt = now.getTime();
        const sample = await this.copyProgress(migration, key, memory).catch((error: unknown) => {
          log.warn('could not read copy progress', { error: describeError(error) });
          return undefined;
        });
        if (sample) status.progress = sample.progress;
      }
      requeue = Math.min(requeue ?? PROGRESS_SECONDS, PROGRESS_SECONDS);
    } else if (status.phase === 'Succeeded' || status.phase === 'Failed' || status.phase === 'RolledBack') {
      this.forgetProgress(key, memory);
    }

    if (JSON.stringify(status) !== JSON.stringify(migration.status ?? {})) {
      await this.writeStatus(migration, status);
      if (status.phase !== migration.status?.phase) {
        log.info('phase changed', { from: migration.status?.phase ?? 'none', to: status.phase, detail: status.message });
        this.deps.metrics.lastPhaseChange.set({ namespace, name, phase: status.phase ?? 'Pending' }, now.getTime() / 1000);
      }
    }
    if (status.progress?.rowsCopied !== undefined) this.deps.metrics.rowsCopied.set({ namespace, name }, status.progress.rowsCopied);
    return requeue !== undefined ? { requeueAfterSeconds: requeue } : {};
  }

  /**
   * Deletion: the migration's Jobs (and so their pods) go first, then the finalizer. The databases
   * are never touched: a deleted DataMigration leaves source and target as they are.
   */
  private async finalize(migration: DataMigration, log: Logger): Promise<void> {
    const namespace = migration.metadata?.namespace ?? '';
    for (const job of this.ownedJobs(migration)) {
      await this.batch.deleteNamespacedJob({ name: job.metadata?.name ?? '', namespace, propagationPolicy: 'Background' }).catch((error: unknown) => {
        if (statusCode(error) !== 404) throw error;
      });
    }
    const index = migration.metadata?.finalizers?.indexOf(FINALIZER) ?? -1;
    if (index >= 0) {
      await this.patchMigration(migration, [
        { op: 'test', path: `/metadata/finalizers/${String(index)}`, value: FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${String(index)}` },
      ]);
    }
    log.info('finalized: its Jobs are deleted, the databases are left as they are');
  }

  private async patchMigration(migration: DataMigration, operations: object[]): Promise<DataMigration> {
    return await this.custom.patchNamespacedCustomObject({
      group: GROUP, version: VERSION, plural: PLURAL, namespace: migration.metadata?.namespace ?? '', name: migration.metadata?.name ?? '', body: operations,
    }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch)) as DataMigration;
  }

  private ownedJobs(migration: DataMigration): k8s.V1Job[] {
    const name = migration.metadata?.name ?? '';
    return this.deps.jobs.list(migration.metadata?.namespace ?? '').filter((job) => job.metadata?.labels?.[LABELS.migration] === name
      && job.metadata.ownerReferences?.some((o) => o.uid === migration.metadata?.uid));
  }

  private memoryOf(key: string): MigrationMemory {
    let memory = this.memory.get(key);
    if (!memory) {
      memory = { results: new Map() };
      this.memory.set(key, memory);
    }
    return memory;
  }

  private forgetProgress(key: string, memory: MigrationMemory): void {
    delete memory.progress;
    delete memory.progressReadAt;
    forgetEstimates(key);
  }

  private forget(key: string): void {
    this.memory.delete(key);
    forgetEstimates(key);
  }

  private async observeJobs(migration: DataMigration, memory: MigrationMemory): Promise<ObservedJob[]> {
    const namespace = migration.metadata?.namespace ?? '';
    const owned = this.ownedJobs(migration);
    const observed: ObservedJob[] = [];
    for (const job of owned) {
      const uid = job.metadata?.uid ?? '';
      const cached = memory.results.get(uid);
      if (cached) {
        observed.push(cached);
        continue;
      }
      const finished = jobState(job) !== 'Running';
      // A finished Job's result is read once from its pods (termination message) and kept.
      const pods = finished
        ? (await this.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job.metadata?.name ?? ''}` })).items
        : [];
      const result = observeJob(job, pods);
      if (!result) continue;
      if (finished) memory.results.set(uid, result);
      observed.push(result);
    }
    return observed;
  }

  private observeService(migration: DataMigration): ObservedService | undefined {
    const cutover = migration.spec.cutover;
    if (!cutover) return undefined;
    const service = this.deps.services.get(cutover.service, migration.metadata?.namespace);
    return service ? { selector: service.spec?.selector ?? {} } : undefined;
  }

  /** A Secret's value (GET; the API server returns data, base64). */
  private async secretValue(namespace: string, ref: SecretKeyRef): Promise<string> {
    const secret = await this.core.readNamespacedSecret({ name: ref.name, namespace });
    const data = secret.data?.[ref.key];
    const value = data !== undefined ? Buffer.from(data, 'base64').toString('utf8') : '';
    if (value === '') throw new Error(`Secret ${ref.name} has no key ${ref.key}`);
    registerSecret(value); // never logged, whatever error quotes it
    return value;
  }

  private async copyProgress(migration: DataMigration, key: string, memory: MigrationMemory): Promise<ProgressSample> {
    const namespace = migration.metadata?.namespace ?? '';
    const [source, target] = await Promise.all([migration.spec.source, migration.spec.target].map((endpoint) => this.secretValue(namespace, endpointSecrets(endpoint).url)));
    const sample = await readCopyProgress(migration, key, { source: source ?? '', target: target ?? '' }, memory.progress);
    memory.progress = sample;
    return sample;
  }

  private async act(migration: DataMigration, action: Action, status: DataMigrationStatus, log: Logger): Promise<void> {
    const namespace = migration.metadata?.namespace ?? '';
    switch (action.kind) {
      case 'createJob': {
        const job = buildStepJob(migration, action.step, action.runId, this.deps.engine, stepEnv(action.step, status));
        try {
          await this.batch.createNamespacedJob({ namespace, body: job });
          log.info('created Job', { job: job.metadata?.name, step: action.step });
        } catch (error) {
          const code = statusCode(error);
          // Deterministic names: the Job exists already (an earlier reconcile created it).
          if (code === 409) return;
          if (code !== undefined && REFUSED.has(code)) throw new JobRejectedError(action.step, describeError(error));
          throw error;
        }
        return;
      }
      case 'deleteJob':
        try {
          await this.batch.deleteNamespacedJob({ name: action.name, namespace, propagationPolicy: 'Background' });
        } catch (error) {
          if (statusCode(error) !== 404) throw error;
        }
        return;
      case 'patchServiceSelector':
        await this.core.patchNamespacedService({
          name: action.service, namespace, body: [{ op: 'replace', path: '/spec/selector', value: action.selector }],
        }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
        log.info('switched Service selector', { service: action.service, selector: action.selector });
        return;
      case 'event':
        // Not awaited: an Event is a record for people, and nothing decided waits on it.
        void this.emitEvent(migration, action).catch((error: unknown) => {
          log.warn('could not record an Event', { error: describeError(error) });
        });
        return;
    }
  }

  private async emitEvent(migration: DataMigration, event: Extract<Action, { kind: 'event' }>): Promise<void> {
    const namespace = migration.metadata?.namespace ?? '';
    const now = (this.deps.now ?? (() => new Date()))();
    await this.events.createNamespacedEvent({
      namespace,
      body: {
        // Named like client-go names Events: the object's name, a dot, a unique suffix.
        metadata: { name: `${migration.metadata?.name ?? 'dm'}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
        eventTime: microTime(now) as unknown as Date, // client-node's Date serialiser drops the microseconds the server requires
        reportingController: `${GROUP}/datamigration-operator`,
        reportingInstance: this.deps.reportingInstance,
        action: event.reason,
        reason: event.reason,
        type: event.type,
        note: event.message.slice(0, 1024),
        regarding: {
          apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', name: migration.metadata?.name ?? '', namespace,
          uid: migration.metadata?.uid ?? '', resourceVersion: migration.metadata?.resourceVersion ?? '',
        },
      },
    });
  }

  private async writeStatus(migration: DataMigration, status: DataMigrationStatus): Promise<void> {
    // Optimistic concurrency: the resourceVersion we decided on; a conflict retries from fresh state.
    await this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP, version: VERSION, plural: PLURAL, namespace: migration.metadata?.namespace ?? '', name: migration.metadata?.name ?? '',
      body: { ...migration, status },
    });
  }
}

/** What a step's engine needs beyond the manifest: the rollback's target schema version. */
function stepEnv(step: Step, status: DataMigrationStatus): k8s.V1EnvVar[] {
  if (step !== 'rollback') return [];
  const before = status.schema?.versionBefore;
  return [{ name: 'DMO_ROLLBACK_TO_VERSION', value: before ?? '' }];
}

