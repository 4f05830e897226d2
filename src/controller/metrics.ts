// Prometheus metrics of the operator (prom-client), on its own registry, named after Prometheus'
// rules (base units, `_total` for counters, `_info` for a series whose labels are the data).
// What names a migration is computed at scrape time (collect()) from the informer cache, never
// set and left behind: a deleted DataMigration leaves no series. The work queue's series are
// client-go's (workqueue_*{name}); the step-duration histogram carries no migration's name.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PHASES } from '../api/constants.ts';
import type { DataMigration, DataMigrationStatus, StepRecord } from '../api/types.ts';
import type { WorkQueueMetrics, WorkQueueState } from './workqueue.ts';

/** The work queue's name label, as a client-go controller names its queue. */
export const QUEUE_NAME = 'datamigration';

export interface MetricsSources {
  /** The DataMigrations in the informer cache, read at every scrape. */
  migrations?: () => readonly DataMigration[];
}

export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'result'>;
  readonly reconcileErrors: Counter;
  readonly reconcileDuration: Histogram;
  readonly leader: Gauge;
  /** Hooks for the work queue (workqueue.ts). */
  readonly workqueue: WorkQueueMetrics;
  /** Observes the steps that ended in a status written over `before` (each transition is written once). */
  observeSteps(before: DataMigrationStatus | undefined, after: DataMigrationStatus): void;
}

type MigrationLabels = 'namespace' | 'name';

/** The labels naming one migration. */
function nameOf(m: DataMigration): Record<MigrationLabels, string> {
  return { namespace: m.metadata?.namespace ?? '', name: m.metadata?.name ?? '' };
}

/** datamigration_info's labels: the migration, its phase, strategy and engines, and whether it is suspended (no alert for a pause). */
export function infoLabels(m: DataMigration): Record<'namespace' | 'name' | 'phase' | 'strategy' | 'source_engine' | 'target_engine' | 'suspended', string> {
  return {
    ...nameOf(m), phase: m.status?.phase ?? 'Pending', strategy: m.spec.strategy?.type ?? 'BigBang',
    source_engine: m.spec.source.engine, target_engine: m.spec.target.engine, suspended: String(m.spec.suspend === true),
  };
}

const seconds = (time: string | undefined): number | undefined => {
  const ms = time === undefined ? Number.NaN : Date.parse(time);
  return Number.isNaN(ms) ? undefined : ms / 1000;
};

/**
 * When the current phase began, in Unix seconds, read from the step ledger so every replica (a
 * restarted one, a new leader) reports the same: the latest time a step was asked for or ended.
 * The phase moves only at those times; a retried step starts the clock again. Before the ledger
 * has anything: when the migration was created.
 */
export function phaseSince(m: DataMigration): number | undefined {
  let latest: number | undefined;
  for (const entry of m.status?.steps ?? []) {
    for (const at of [seconds(entry.requestedAt), seconds(entry.finishedAt)]) {
      if (at !== undefined && (latest === undefined || at > latest)) latest = at;
    }
  }
  return latest ?? seconds(m.status?.startedAt) ?? created(m);
}

/** metadata.creationTimestamp: typed a Date by client-node, a string in the cache's raw JSON. */
function created(m: DataMigration): number | undefined {
  const at: unknown = m.metadata?.creationTimestamp;
  if (at instanceof Date) return Number.isNaN(at.getTime()) ? undefined : at.getTime() / 1000;
  return typeof at === 'string' ? seconds(at) : undefined;
}

export interface StepEnded { step: StepRecord['step']; outcome: NonNullable<StepRecord['outcome']>; seconds: number }

/**
 * The steps `after` records as ended that `before` did not (same step, run, outcome and end
 * time): each with how long it took from its request. The run's finish is not a step.
 */
export function endedSteps(before: DataMigrationStatus | undefined, after: DataMigrationStatus): StepEnded[] {
  const out: StepEnded[] = [];
  for (const entry of after.steps ?? []) {
    if (entry.step === 'finish' || entry.outcome === undefined) continue;
    const was = before?.steps?.find((e) => e.step === entry.step);
    if (was?.runId === entry.runId && was.outcome === entry.outcome && was.finishedAt === entry.finishedAt) continue;
    const from = seconds(entry.requestedAt);
    const to = seconds(entry.finishedAt);
    if (from === undefined || to === undefined || to < from) continue;
    out.push({ step: entry.step, outcome: entry.outcome, seconds: to - from });
  }
  return out;
}

/** client-go's workqueue buckets: 10 ns to 10 s, ×10 each (prometheus.ExponentialBuckets(10e-9, 10, 10)). */
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10];

export function createMetrics(sources: MetricsSources = {}): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'datamigration_operator_' });
  const list = sources.migrations ?? ((): readonly DataMigration[] => []);
  const registers = [registry];

  // Per migration, from the cache at scrape time: reset, then set what exists now.
  const perMigration = (name: string, help: string, value: (m: DataMigration) => number | undefined): void => {
    new Gauge({
      name, help, labelNames: ['namespace', 'name'], registers,
      collect() {
        this.reset();
        for (const m of list()) {
          const v = value(m);
          if (v !== undefined) this.set(nameOf(m), v);
        }
      },
    });
  };
  new Gauge({
    name: 'datamigration_info', help: 'One series per DataMigration (value 1): its phase, strategy and engines, and whether spec.suspend holds it.',
    labelNames: ['namespace', 'name', 'phase', 'strategy', 'source_engine', 'target_engine', 'suspended'], registers,
    collect() {
      this.reset();
      for (const m of list()) this.set(infoLabels(m), 1);
    },
  });
  new Gauge({
    name: 'datamigration_migrations', help: 'DataMigrations by phase (every phase, 0 included).', labelNames: ['phase'], registers,
    collect() {
      const counts = new Map<string, number>(PHASES.map((phase) => [phase, 0]));
      for (const m of list()) {
        const phase = m.status?.phase ?? 'Pending';
        counts.set(phase, (counts.get(phase) ?? 0) + 1);
      }
      this.reset();
      for (const [phase, count] of counts) this.set({ phase }, count);
    },
  });
  new Gauge({
    name: 'datamigration_phase_since_timestamp_seconds',
    help: 'When the DataMigration entered its current phase (Unix time), from its step ledger: the latest step asked for or ended.',
    labelNames: ['namespace', 'name', 'phase'], registers,
    collect() {
      this.reset();
      for (const m of list()) {
        const since = phaseSince(m);
        if (since !== undefined) this.set({ ...nameOf(m), phase: m.status?.phase ?? 'Pending' }, since);
      }
    },
  });
  perMigration('datamigration_rows_copied', 'Rows copied so far (status.progress.rowsCopied).', (m) => m.status?.progress?.rowsCopied);
  perMigration('datamigration_rows_estimated', "Rows to copy, from the source's statistics (status.progress.rowsEstimated).", (m) => m.status?.progress?.rowsEstimated);
  perMigration('datamigration_eta_seconds', "Seconds left of the copy at its recent rate (status.progress.etaSeconds), while it runs.",
    (m) => (m.status?.phase === 'Copying' ? m.status.progress?.etaSeconds : undefined));

  // ChangeCapture, while the stream runs (status.sync, from the sync pod's report).
  const syncing = (m: DataMigration): boolean => m.status?.phase === 'Syncing' || m.status?.phase === 'AwaitingApproval';
  perMigration('datamigration_sync_lag_seconds', 'ChangeCapture: seconds the target is behind the source (status.sync.lagMs), while the change stream runs.',
    (m) => (syncing(m) && m.status?.sync?.lagMs !== undefined ? m.status.sync.lagMs / 1000 : undefined));
  perMigration('datamigration_sync_pending_bytes', 'ChangeCapture: change-log bytes the source wrote that are not applied yet (status.sync.pendingBytes).',
    (m) => (syncing(m) ? m.status?.sync?.pendingBytes : undefined));
  perMigration('datamigration_write_blocked_seconds', 'ChangeCapture: how long writes were fenced at the cutover (status.sync.writeBlockedMs).',
    (m) => (m.status?.sync?.writeBlockedMs !== undefined ? m.status.sync.writeBlockedMs / 1000 : undefined));

  const stepDuration = new Histogram({
    name: 'datamigration_step_duration_seconds', help: 'Time from a step being asked for to its end (status.steps), by step and outcome.',
    labelNames: ['step', 'outcome'], registers,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400],
  });

  const workqueue = createWorkQueueMetrics(registry, QUEUE_NAME);
  return {
    registry,
    reconcileTotal: new Counter({ name: 'datamigration_reconcile_total', help: 'Reconciles, by result (done, requeue, conflict, error).', labelNames: ['result'], registers }),
    reconcileErrors: new Counter({ name: 'datamigration_reconcile_errors_total', help: 'Reconciles that returned an error.', registers }),
    reconcileDuration: new Histogram({
      name: 'datamigration_reconcile_duration_seconds', help: 'Time of one reconcile.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers,
    }),
    leader: new Gauge({ name: 'datamigration_leader', help: '1 while this replica is the leader.', registers }),
    workqueue,
    observeSteps(before, after) {
      for (const ended of endedSteps(before, after)) stepDuration.observe({ step: ended.step, outcome: ended.outcome }, ended.seconds);
    },
  };
}

/** client-go's workqueue metrics (k8s.io/client-go/util/workqueue, component-base's names) for one queue. */
function createWorkQueueMetrics(registry: Registry, name: string): WorkQueueMetrics {
  const registers = [registry];
  const labels = { name };
  let state: (() => WorkQueueState) | undefined;
  const adds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers });
  const retries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers });
  const queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested.',
    labelNames: ['name'], buckets: QUEUE_BUCKETS, registers,
  });
  const workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes.',
    labelNames: ['name'], buckets: QUEUE_BUCKETS, registers,
  });
  new Gauge({
    name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers,
    collect() { this.set(labels, state?.().depth ?? 0); },
  });
  new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: 'How many seconds of work has been done that is in progress and hasn\'t been observed by work_duration. Large values indicate stuck threads.',
    labelNames: ['name'], registers,
    collect() {
      const now = state?.();
      this.set(labels, now ? now.running.reduce((sum, since) => sum + (now.now - since) / 1000, 0) : 0);
    },
  });
  new Gauge({
    name: 'workqueue_longest_running_processor_seconds', help: 'How many seconds has the longest running processor for workqueue been running.',
    labelNames: ['name'], registers,
    collect() {
      const now = state?.();
      this.set(labels, now ? now.running.reduce((longest, since) => Math.max(longest, (now.now - since) / 1000), 0) : 0);
    },
  });
  // Zero series from the start, as client-go registers them, so rate() has a baseline.
  adds.inc(labels, 0);
  retries.inc(labels, 0);
  return {
    track(read) { state = read; },
    added() { adds.inc(labels); },
    waited(ms) { queueDuration.observe(labels, ms / 1000); },
    worked(ms) { workDuration.observe(labels, ms / 1000); },
    retried() { retries.inc(labels); },
  };
}
