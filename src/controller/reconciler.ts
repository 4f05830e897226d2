// The I/O around decide(), through the Cluster interface (cluster.ts): gather (the resource and
// its Jobs from the informer caches, the Jobs' pods for results and failed attempts, the preflight when something may
// start, the cutover Service, the latest copy progress sampled in the background), decide once, act (create/delete Jobs,
// switch the Service selector, Events) and write the status. Nothing here chooses what happens
// next; that is decide()'s job. Its own rules:
// - A decision that asks for a Job or the switch and goes on running writes its status first (the
//   ledger's request), then acts: a conflict stops it before anything is sent. One that ends the
//   migration (an abort, a failure) acts first, so Failed is recorded only after its actions succeeded.
// - Events are said only once the status that announces them is stored (one Event per transition,
//   even when a stale cache makes a reconcile decide twice).
// - A Job the API server refuses is recorded in status (recordRejectedJob), not retried in a loop.
// - A conflict (409) is thrown: the work queue retries at once from fresh state (outcome.ts).
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { FINALIZER, TERMINAL_PHASES } from '../api/constants.ts';
import { STATUS_LIMITS } from '../api/datamigration-schema.ts';
import type { DataMigration, DataMigrationStatus } from '../api/types.ts';
import type { Cluster } from './cluster.ts';
import { forgetEstimates, migrationUrls, readCopyProgress, type ProgressSample, type ProgressUrls } from './copy-progress.ts';
import { decide, preflightNeeded, recordRejectedJob, recordRejectedSwitch, type Action, type DecideInput, type ObservedJob, type ObservedService } from './decide.ts';
import { buildStepJob, type EngineConfig } from './job-builder.ts';
import { scrub, type Logger } from './logger.ts';
import type { OperatorMetrics } from './metrics.ts';
import { bound } from './bound.ts';
import { REQUEUE } from './model.ts';
import { controlledByMigration, jobState, observedService, observeJob, stepEnv } from './observe.ts';
import { REFUSED_CODES, RequestRefusedError, statusCode, SWITCH_REFUSED_CODES, type ReconcileResult } from './outcome.ts';
import { runPreflight } from './preflight.ts';
import type { LabelSelector } from './selectors.ts';
import { ProgressSampler } from './progress-sampler.ts';
import { endingJobNames, finalizeCapture } from './capture-finalize.ts';
import { CaptureObserver, readSyncLag } from './capture-observe.ts';
import { LAG_REPORT_INTERVAL_MS } from '../engine/sync/capture-lag.ts';

export type { ReconcileResult };

/** Reads a running copy's progress (copy-progress.ts; the unit tests give their own). */
export type ProgressReader = (migration: DataMigration, key: string, urls: ProgressUrls, previous: ProgressSample | undefined) => Promise<ProgressSample>;

export interface ReconcilerDeps {
  cluster: Cluster;
  engine: EngineConfig;
  logger: Logger;
  metrics: OperatorMetrics;
  now?: () => Date;
  readProgress?: ProgressReader;
  /** How long a progress read may take before it is given up on (PROGRESS_DEADLINE_MS). */
  progressDeadlineMs?: number;
  /** Asks for a reconcile of this key soon (the work queue's add): a progress sample arrived, or the next is due. */
  wake?: (key: string) => void;
  /** How often a running copy's progress is read (default: 9 s, inside the copy's 10 s requeue). */
  progressIntervalMs?: number;
  /** Services whose labels match this may be switched by any DataMigration of their namespace (CUTOVER_OPT_IN_SELECTOR). */
  optInSelector?: LabelSelector;
}

/** Kept between reconciles for one migration. */
interface MigrationMemory {
  /** Finished Jobs' results by Job uid: read once from their pods. */
  results: Map<string, ObservedJob>;
  /** Running Jobs with failed pods, by Job uid: their pods are read again only when the failed count (or FailureTarget) changes. */
  failing: Map<string, { seen: string; observed: ObservedJob }>;
  /** Why the last status write was refused as invalid (422), once said in an Event; cleared by a write that succeeds. */
  statusRefused?: string;
  /** Names of the Jobs this process created for the migration (the create succeeded): the only ones deleted by name before the cache shows them. */
  created: Set<string>;
}

/** The Event reason of a status the API server refused as invalid (not a condition reason). */
export const STATUS_REFUSED_REASON = 'StatusRejected';

/** A progress read (both databases) given up on after this long; each session has its own connect and statement timeouts too. */
export const PROGRESS_DEADLINE_MS = 60_000;

const isTerminal = (status: DataMigrationStatus): boolean => TERMINAL_PHASES.includes(status.phase ?? 'Pending');

/** The log level of entering a phase (info for those not named). */
const PHASE_LOG_LEVEL: Readonly<Record<string, 'warn' | 'error'>> = { Failed: 'error', RollingBack: 'warn', RolledBack: 'warn' };

export class Reconciler {
  private readonly deps: ReconcilerDeps;
  private readonly cluster: Cluster;
  /** What is kept between reconciles, per migration key; forgotten when the migration goes. */
  private readonly memory = new Map<string, MigrationMemory>();
  /** Copy progress, read outside the workers (progress-sampler.ts). */
  private readonly progress: ProgressSampler;
  /** ChangeCapture: the stream's lag (sampled the same way), the sync pods, the fence's Deployment. */
  private readonly capture: CaptureObserver;
  /** Deleted migrations already told to lift their External fence (capture-finalize.ts). */
  private readonly saidExternal = new Set<string>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
    this.cluster = deps.cluster;
    this.progress = new ProgressSampler({
      intervalMs: deps.progressIntervalMs ?? (REQUEUE.copyProgress - 1) * 1000,
      deadlineMs: deps.progressDeadlineMs ?? PROGRESS_DEADLINE_MS,
      now: () => (deps.now ?? (() => new Date()))().getTime(),
      onError: (key, error) => { deps.logger.warn('could not read copy progress', { key, error: error.message }); },
      ...(deps.wake ? { wake: deps.wake } : {}),
    });
    this.capture = new CaptureObserver(deps.cluster, {
      intervalMs: Math.min(deps.progressIntervalMs ?? LAG_REPORT_INTERVAL_MS, LAG_REPORT_INTERVAL_MS), deadlineMs: deps.progressDeadlineMs ?? PROGRESS_DEADLINE_MS,
      now: () => (deps.now ?? (() => new Date()))().getTime(),
      onError: (key, error) => { deps.logger.warn('could not read the change stream\'s lag', { key, error: error.message }); },
      ...(deps.wake ? { wake: deps.wake } : {}),
    });
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = '', name = ''] = key.split('/');
    let migration = this.cluster.migration(namespace, name);
    if (!migration) {
      this.forget(key);
      return {}; // deleted: its Jobs go with it (owner references)
    }
    // reconcileID: one per reconcile, so a reconcile's lines can be followed among the others'.
    const log = this.deps.logger.child({ namespace, name, reconcileID: randomBytes(4).toString('hex'), generation: migration.metadata?.generation, phase: migration.status?.phase });
    if (migration.metadata?.deletionTimestamp) {
      const finalized = await this.finalize(migration, log);
      if (finalized === 'waiting') return { requeueAfterSeconds: REQUEUE.fencing };
      this.forget(key);
      return {};
    }
    const memory = this.memoryOf(key);
    const now = (this.deps.now ?? (() => new Date()))();
    // The finalizer is added while the rest is gathered (on a new migration, the Job is created in
    // the same round trip); the status write needs the patched object's resourceVersion. Jobs made
    // before it lands still go with the migration (owner references).
    const patching = migration.metadata?.finalizers?.includes(FINALIZER) ? Promise.resolve(migration) : this.cluster.patchMigration(migration, migration.metadata?.finalizers
      ? [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]
      : [{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
    patching.catch(() => undefined); // awaited below; this keeps an earlier throw from leaving it unhandled

    const jobs = await this.observeJobs(migration, memory);
    const service = this.observeService(migration);
    const optIn = this.deps.optInSelector;
    const observed = migration;
    const capture = await this.capture.observe(observed, key, jobs, async () => readSyncLag(observed, await migrationUrls(this.cluster, observed)));
    const base: Omit<DecideInput, 'preflight'> = {
      migration, jobs, ...(service ? { service } : {}), ...(optIn ? { optInSelector: optIn } : {}), ...(capture ? { capture } : {}), now: now.toISOString(),
    };
    const preflight = preflightNeeded(base) ? await runPreflight(this.cluster, migration, this.deps.engine) : undefined;
    const copyProgress = this.gatherProgress(migration, key, jobs);
    let decision = decide({ ...base, ...(preflight ? { preflight } : {}), ...(copyProgress ? { copyProgress } : {}) });

    migration = await patching;
    const before = migration.status ?? {};
    let written = before;
    // Events are said once the status that records them (status.announced, the phase) is stored:
    // a decision made on a stale cache, whose write is refused (409), says nothing, and the
    // retry on fresh state finds them announced. Said before the write, each was said twice.
    let said = false;
    const say = (about: DataMigration, actions: readonly Action[]): void => {
      for (const action of actions) if (action.kind === 'event') this.say(about, action, log, now);
    };
    // Write-ahead: the ledger's record of a Job or a switch asked for is stored before it is sent.
    if (!isTerminal(decision.status) && decision.actions.some((a) => a.kind === 'createJob' || a.kind === 'patchServiceSelector' || a.kind === 'scaleDeployment')) {
      migration = await this.writeStatus(migration, decision.status, before, log, now);
      written = decision.status;
      say(migration, decision.actions);
      said = true;
    }
    try {
      for (const action of decision.actions) await this.act(migration, action, decision.status, log);
    } catch (error) {
      if (!(error instanceof RequestRefusedError)) throw error;
      // Not an error to retry at once: the same Job or patch would be refused again. Recorded in
      // status (the ledger, a condition, an Event), it is asked for again later.
      const { refused, runId, message } = error;
      log.warn('the API server refused a request', { ...refused, error: message });
      const unchanged = { ...migration, status: before };
      decision = refused.kind === 'job'
        ? recordRejectedJob(unchanged, decision, { step: refused.step, runId, message }, now.toISOString())
        : recordRejectedSwitch(unchanged, decision, { service: refused.service, runId, message }, now.toISOString());
      said = false;
      for (const action of decision.actions) await this.act(migration, action, decision.status, log);
    }
    if (isTerminal(decision.status)) this.forgetProgress(key);
    try {
      if (JSON.stringify(decision.status) !== JSON.stringify(written)) await this.writeStatus(migration, decision.status, before, log, now);
    } catch (error) {
      // What was sent (a Job deleted, a Service restored) happened whatever the write: its Events say so.
      if (!said && decision.actions.some((action) => action.kind !== 'event')) say(migration, decision.actions);
      throw error;
    }
    if (!said) say(migration, decision.actions);
    return decision.requeueAfterSeconds !== undefined ? { requeueAfterSeconds: decision.requeueAfterSeconds } : {};
  }

  private async writeStatus(migration: DataMigration, status: DataMigrationStatus, before: DataMigrationStatus, log: Logger, now: Date): Promise<DataMigration> {
    const memory = this.memoryOf(`${migration.metadata?.namespace ?? ''}/${migration.metadata?.name ?? ''}`);
    let stored: DataMigration;
    try {
      stored = await this.cluster.writeStatus(migration, status);
    } catch (error) {
      if (statusCode(error) === 422) this.statusRefused(migration, memory, error, log, now);
      throw error;
    }
    delete memory.statusRefused;
    // Optimistic concurrency writes each step's end once: observed here, against what was stored.
    this.deps.metrics.observeSteps(migration.status, status);
    // A failure is an error, a rollback a warning: an alert on the log level sees both.
    if (status.phase !== before.phase) log.log(PHASE_LOG_LEVEL[status.phase ?? ''] ?? 'info', 'phase changed', { from: before.phase ?? 'none', to: status.phase, detail: status.message });
    return stored;
  }

  /**
   * The API server refused the status as invalid (422): a bug of the operator (a field past the
   * CRD's bounds), which every retry meets again. Still backed off (the error is rethrown), but
   * said: at error in the log with the reason, and in one Warning Event until a write succeeds.
   */
  private statusRefused(migration: DataMigration, memory: MigrationMemory, error: unknown, log: Logger, now: Date): void {
    const why = bound(scrub(error instanceof Error ? error.message : String(error)), STATUS_LIMITS.message);
    log.error('the API server refused the status as invalid; the migration cannot go on until this is fixed', { error: why });
    if (memory.statusRefused !== undefined) return;
    memory.statusRefused = why;
    void this.cluster.recordEvent(migration, {
      type: 'Warning', reason: STATUS_REFUSED_REASON, time: now,
      message: bound(`The API server refused this migration's status (the operator retries with backoff; report it as a bug): ${why}`, STATUS_LIMITS.message),
    }).catch((eventError: unknown) => {
      log.warn('could not record an Event', { error: eventError instanceof Error ? eventError.message : String(eventError) });
    });
  }

  /**
   * A running copy's progress, for decide(): the latest sample the background reads brought (none
   * yet: `{}`), and a new read asked for (at most one per REQUEUE.copyProgress seconds, never
   * awaited here). Undefined when no copy runs.
   */
  private gatherProgress(migration: DataMigration, key: string, jobs: readonly ObservedJob[]): DecideInput['copyProgress'] {
    if (migration.status?.phase !== 'Copying' || !jobs.some((j) => j.step === 'copy' && j.state === 'Running')) return undefined;
    this.progress.request(key, (previous) => this.copyProgress(migration, key, previous));
    const sample = this.progress.latest(key);
    return sample ? { progress: sample.progress } : {};
  }

  /**
   * Deletion: the migration's Jobs (and so their pods) go first, then the finalizer. The databases
   * are never touched: a deleted DataMigration leaves source and target as they are.
   */
  private async finalize(migration: DataMigration, log: Logger): Promise<'done' | 'waiting'> {
    const namespace = migration.metadata?.namespace ?? '';
    // A change capture's unfence and release Jobs run first (capture-finalize.ts); every other Job goes.
    const ending = endingJobNames(migration);
    for (const job of this.ownedJobs(migration)) if (!ending.includes(job.metadata?.name ?? '')) await this.deleteJob(namespace, job.metadata?.name ?? '');
    if (await finalizeCapture({ cluster: this.cluster, engine: this.deps.engine, log, now: (this.deps.now ?? (() => new Date()))(), saidExternal: this.saidExternal }, migration) === 'waiting') return 'waiting';
    const index = migration.metadata?.finalizers?.indexOf(FINALIZER) ?? -1;
    if (index >= 0) {
      await this.cluster.patchMigration(migration, [
        { op: 'test', path: `/metadata/finalizers/${String(index)}`, value: FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${String(index)}` },
      ]);
    }
    log.info('finalized: its Jobs are deleted, the databases are left as they are (a change capture released first)');
    return 'done';
  }

  /** The Jobs this migration controls (observe.ts controlledByMigration); a Job planted with its labels is not one. */
  private ownedJobs(migration: DataMigration): k8s.V1Job[] {
    return this.cluster.jobs(migration.metadata?.namespace ?? '').filter((job) => controlledByMigration(job, migration));
  }

  private memoryOf(key: string): MigrationMemory {
    let memory = this.memory.get(key);
    if (!memory) {
      memory = { results: new Map(), failing: new Map(), created: new Set() };
      this.memory.set(key, memory);
    }
    return memory;
  }

  private forgetProgress(key: string): void {
    this.progress.forget(key);
    this.capture.forget(key);
    forgetEstimates(key);
  }

  private forget(key: string): void {
    this.memory.delete(key);
    this.forgetProgress(key);
  }

  private async observeJobs(migration: DataMigration, memory: MigrationMemory): Promise<ObservedJob[]> {
    const namespace = migration.metadata?.namespace ?? '';
    const observed: ObservedJob[] = [];
    for (const job of this.ownedJobs(migration)) {
      const uid = job.metadata?.uid ?? '';
      const cached = memory.results.get(uid);
      if (cached) {
        observed.push(cached);
        continue;
      }
      const finished = jobState(job) !== 'Running';
      // A running Job whose pods failed (the Job's update wakes this reconcile): the failure is
      // said at once, read from its pods once per failed count.
      const failed = finished ? 0 : job.status?.failed ?? 0;
      const failing = `${String(failed)}/${String(job.status?.conditions?.some((c) => c.type === 'FailureTarget' && c.status === 'True') ?? false)}`;
      const known = memory.failing.get(uid);
      if (failed > 0 && known?.seen === failing) {
        observed.push(known.observed);
        continue;
      }
      // A finished Job's result is read once from its pods (termination message) and kept.
      const pods = finished || failed > 0 ? await this.cluster.jobPods(namespace, job.metadata?.name ?? '') : [];
      const result = observeJob(job, pods);
      if (!result) continue;
      if (finished) memory.results.set(uid, result);
      if (failed > 0) memory.failing.set(uid, { seen: failing, observed: result });
      else memory.failing.delete(uid);
      observed.push(result);
    }
    return observed;
  }

  private observeService(migration: DataMigration): ObservedService | undefined {
    const cutover = migration.spec.cutover;
    if (!cutover) return undefined;
    const service = this.cluster.service(migration.metadata?.namespace ?? '', cutover.service);
    return service ? observedService(service) : undefined;
  }

  /** Reads the copy's progress with the URLs and, where spec.*.tls names one, the CA the engine uses. */
  private async copyProgress(migration: DataMigration, key: string, previous: ProgressSample | undefined): Promise<ProgressSample> {
    return (this.deps.readProgress ?? readCopyProgress)(migration, key, await migrationUrls(this.cluster, migration), previous);
  }

  private async deleteJob(namespace: string, name: string): Promise<void> {
    try {
      await this.cluster.deleteJob(namespace, name);
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
    }
  }

  private async act(migration: DataMigration, action: Action, status: DataMigrationStatus, log: Logger): Promise<void> {
    const namespace = migration.metadata?.namespace ?? '';
    switch (action.kind) {
      case 'createJob': {
        const job = buildStepJob(migration, action.step, action.runId, this.deps.engine, stepEnv(action.step, status));
        try {
          await this.cluster.createJob(job);
          this.memoryOf(`${namespace}/${migration.metadata?.name ?? ''}`).created.add(job.metadata?.name ?? '');
          log.info('created Job', { job: job.metadata?.name, step: action.step });
        } catch (error) {
          const code = statusCode(error);
          // Deterministic names: the Job exists already (an earlier reconcile created it), unless
          // the cache shows a Job of that name this migration does not control: someone else's,
          // which is never taken for the step (refused, said in status, asked for again later).
          if (code === 409) {
            const name = job.metadata?.name ?? '';
            const found = this.cluster.jobs(namespace).find((existing) => existing.metadata?.name === name);
            if (found === undefined || controlledByMigration(found, migration)) return;
            throw new RequestRefusedError({ kind: 'job', step: action.step }, action.runId, `a Job named ${name} exists that this DataMigration does not control (no controller owner reference to its uid): `
              + 'it is not this step\'s Job and its result is never read; delete it, or ask who created it');
          }
          if (code !== undefined && REFUSED_CODES.has(code)) throw new RequestRefusedError({ kind: 'job', step: action.step }, action.runId, error instanceof Error ? error.message : String(error));
          throw error;
        }
        return;
      }
      case 'deleteJob': {
        // Only a Job this migration controls: one in the cache with its controller reference, or
        // one this process created that the cache has not shown yet (abort deletes a Job asked
        // for moments ago by its name). The cache holds only Jobs with the manager label, so a
        // Job of the step's name that someone else made is in neither: deleting it by name would
        // lend whoever may create a DataMigration (its name picks the Job's) the right to delete Jobs.
        const cached = this.cluster.jobs(namespace).find((job) => job.metadata?.name === action.name);
        const ours = cached !== undefined ? controlledByMigration(cached, migration) : this.memoryOf(`${namespace}/${migration.metadata?.name ?? ''}`).created.has(action.name);
        if (!ours) {
          log.warn('not deleting a Job this migration does not control', { job: action.name });
          return;
        }
        await this.deleteJob(namespace, action.name);
        return;
      }
      case 'patchServiceSelector':
        try {
          await this.cluster.patchServiceSelector(namespace, action.service, {
            resourceVersion: action.resourceVersion, from: action.from, selector: action.selector, annotations: action.annotations,
          });
        } catch (error) {
          const code = statusCode(error);
          if (code !== undefined && SWITCH_REFUSED_CODES.has(code)) throw new RequestRefusedError({ kind: 'switch', service: action.service }, status.runId ?? '', error instanceof Error ? error.message : String(error));
          throw error;
        }
        log.info('patched Service selector', { service: action.service, from: action.from, selector: action.selector });
        return;
      case 'scaleDeployment':
        await this.cluster.scaleDeployment(namespace, action.deployment, { resourceVersion: action.resourceVersion, replicas: action.replicas, annotations: action.annotations });
        log.info('scaled Deployment (write fence)', { deployment: action.deployment, replicas: action.replicas });
        return;
      case 'event':
        return; // said by reconcile() once its status is stored
    }
  }

  /** Not awaited: an Event is a record for people, and nothing decided waits on it. */
  private say(migration: DataMigration, action: Extract<Action, { kind: 'event' }>, log: Logger, now: Date): void {
    void this.cluster.recordEvent(migration, { type: action.type, reason: action.reason, message: action.message, time: now }).catch((error: unknown) => {
      log.warn('could not record an Event', { error: error instanceof Error ? error.message : String(error) });
    });
  }
}
