// The step ledger (status.steps): the phase machine's memory. Per step of the current run: when
// the operator asked for it (created the Job, patched the Service), its Job, and how it ended; and
// how the run finished (finish). A Job asked for but not yet in the informer cache, a switch not yet
// observed, which step a retry resumes, the phase itself (phase-of.ts): all are read from here,
// never from conditions or status.phase (those are written for people).
//
// A status written before the ledger existed has conditions only: ledgerFromConditions() derives
// the ledger from them once (test/unit/controller-ledger.test.ts replays statuses of that version).
import { LEDGER_STEPS, REASONS } from '../api/constants.ts';
import type { ConditionType, LedgerStep, Phase, Reason, Step, StepOutcome } from '../api/constants.ts';
import type { Condition, DataMigrationStatus, StepRecord } from '../api/types.generated.ts';
import { STATUS_LIMITS } from '../api/datamigration-schema.ts';
import { bound } from './bound.ts';
import { findCondition } from './conditions.ts';
import type { ConditionStatus } from './conditions.ts';

export type { StepRecord };

/** The condition that shows a Job step, and its status while the step's Job is requested or running. */
export const STEP_MARKERS: Record<Step, { type: ConditionType; status: ConditionStatus }> = {
  schema: { type: 'SchemaReady', status: 'False' },
  copy: { type: 'DataCopied', status: 'False' },
  // After the copy DataCopied is False/InProgress; Unknown while syncing.
  sync: { type: 'DataCopied', status: 'Unknown' },
  validate: { type: 'Validated', status: 'False' },
  // Behind the write fence: the catch-up validates, then the switch.
  fence: { type: 'CutOver', status: 'False' },
  catchup: { type: 'CutOver', status: 'False' },
  unfence: { type: 'CutOver', status: 'False' },
  release: { type: 'CutOver', status: 'Unknown' },
  rollback: { type: 'RolledBack', status: 'False' },
};

/** Seconds from `from` to `to`; Infinity when either is not a time (so a grace period is over). */
export function secondsBetween(from: string, to: string): number {
  const elapsed = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isNaN(elapsed) ? Number.POSITIVE_INFINITY : elapsed;
}

export function entryOf(status: DataMigrationStatus, step: LedgerStep): StepRecord | undefined {
  return status.steps?.find((entry) => entry.step === step);
}

/** Replaces the step's entry (the ledger stays in LEDGER_STEPS order). */
export function setEntry(status: DataMigrationStatus, entry: StepRecord): void {
  const others = (status.steps ?? []).filter((e) => e.step !== entry.step);
  status.steps = [...others, entry].sort((a, b) => LEDGER_STEPS.indexOf(a.step) - LEDGER_STEPS.indexOf(b.step));
}

export function removeEntry(status: DataMigrationStatus, step: LedgerStep): void {
  const rest = (status.steps ?? []).filter((e) => e.step !== step);
  if (rest.length > 0) status.steps = rest;
  else delete status.steps;
}

/** Asked for in this run and not ended (or seen to end) yet. */
export function inFlight(status: DataMigrationStatus, step: LedgerStep, runId: string): StepRecord | undefined {
  const entry = entryOf(status, step);
  return entry !== undefined && entry.runId === runId && entry.outcome === undefined && entry.requestedAt !== undefined ? entry : undefined;
}

/**
 * Seconds left before a step's Job the API server refused in this run is asked for again; undefined
 * when it may be asked for now. The same Job would be refused at once (and each try writes status,
 * which wakes the migration again), so it waits `waitSeconds` from the refusal, unless the spec
 * changed since the status was written (a fixed jobTemplate is tried at once).
 */
export function rejectedWait(status: DataMigrationStatus, step: LedgerStep, runId: string, now: string, generation: number, waitSeconds: number): number | undefined {
  const entry = entryOf(status, step);
  if (entry?.runId !== runId || entry.outcome !== 'Rejected' || entry.finishedAt === undefined) return undefined;
  if (status.observedGeneration !== generation) return undefined;
  const left = waitSeconds - secondsBetween(entry.finishedAt, now);
  return left > 0 ? Math.ceil(Math.min(left, waitSeconds)) : undefined;
}

/** Asked for in this run less than `graceSeconds` ago, not ended: it may still be on its way. */
export function requestedWithin(status: DataMigrationStatus, step: LedgerStep, runId: string, now: string, graceSeconds: number): boolean {
  const entry = inFlight(status, step, runId);
  return entry?.requestedAt !== undefined && secondsBetween(entry.requestedAt, now) < graceSeconds;
}

/** The step was asked for now (a Job created, a Service patched). */
export function recordRequest(status: DataMigrationStatus, step: LedgerStep, runId: string, now: string, job?: string): void {
  setEntry(status, { step, runId, requestedAt: now, ...(job !== undefined ? { job } : {}) });
}

/** The step's Job is seen running: the entry names it (one is made when the status lost it). */
export function recordSeen(status: DataMigrationStatus, step: Step, runId: string, job: string, now: string): void {
  const entry = entryOf(status, step);
  if (entry !== undefined && entry.runId === runId && entry.outcome === undefined) {
    if (entry.job !== job) setEntry(status, { ...entry, job });
    return;
  }
  setEntry(status, { step, runId, requestedAt: entry?.runId === runId ? entry.requestedAt ?? now : now, job });
}

export interface OutcomeDetail {
  reason?: Reason;
  message?: string;
  exitCode?: number;
  job?: string;
}

/** How the step ended. Recording the same outcome again changes nothing (feeding a status back is a fixed point). */
export function recordOutcome(status: DataMigrationStatus, step: LedgerStep, runId: string, outcome: StepOutcome, now: string, detail: OutcomeDetail = {}): void {
  const entry = entryOf(status, step);
  const same = entry !== undefined && entry.runId === runId && entry.outcome === outcome;
  const job = detail.job ?? (entry?.runId === runId ? entry.job : undefined);
  const next: StepRecord = {
    step, runId,
    ...(entry?.runId === runId && entry.requestedAt !== undefined ? { requestedAt: entry.requestedAt } : {}),
    ...(job !== undefined ? { job } : {}),
    outcome,
    ...(detail.reason !== undefined ? { reason: detail.reason } : {}),
    ...(detail.exitCode !== undefined ? { exitCode: detail.exitCode } : {}),
    finishedAt: same ? entry.finishedAt ?? now : now,
    // Bounded here, whoever wrote the message: the CRD refuses a longer one (422, every write).
    ...(detail.message !== undefined ? { message: bound(detail.message, STATUS_LIMITS.detail) } : {}),
  };
  setEntry(status, next);
}

// ---- retry: which step stopped --------------------------------------------------------------

/** Where a retry resumes: the phase, and the step that runs again (none: the start or the cutover gate). */
export interface RetryPoint { phase: Phase; step?: Step; entry: LedgerStep }

/** Failed outcomes a retry may resume: a step Job that failed (whatever its exit code said) or a failed rollback. */
const RETRYABLE_FAILURES: ReadonlySet<string> = new Set<string>([REASONS.JobFailed, REASONS.RollbackFailed, REASONS.InvalidSpec, REASONS.PlanRefused]);

/** Latest first: the step that stopped the run, as a retry would resume it. */
const RESUME_ORDER: readonly { entry: LedgerStep; phase: Phase; step?: Step }[] = [
  { entry: 'rollback', phase: 'RollingBack', step: 'rollback' },
  // An aborted cutover resumes at the approval gate, which passes straight on when approved or Automatic.
  { entry: 'switch', phase: 'AwaitingApproval' },
  { entry: 'validate', phase: 'Validating', step: 'validate' },
  { entry: 'sync', phase: 'Syncing', step: 'sync' },
  { entry: 'copy', phase: 'Copying', step: 'copy' },
  { entry: 'schema', phase: 'SchemaMigrating', step: 'schema' },
  { entry: 'start', phase: 'Pending' },
];

/** The step a retry of this Failed migration resumes; undefined when it cannot be retried (a validation failure, say). */
export function retryPoint(status: DataMigrationStatus): RetryPoint | undefined {
  if (status.phase !== 'Failed') return undefined;
  for (const point of RESUME_ORDER) {
    const entry = entryOf(status, point.entry);
    if (entry === undefined) continue;
    if (entry.outcome === 'Aborted' || (entry.outcome === 'Failed' && RETRYABLE_FAILURES.has(entry.reason ?? REASONS.JobFailed))) return point;
  }
  return undefined;
}

// ---- upgrade: a status written before the ledger --------------------------------------------

const FAILURE_REASONS: ReadonlySet<string> = new Set<string>([
  REASONS.JobFailed, REASONS.RollbackFailed, REASONS.ValidationFailed, REASONS.ChecksumMismatch, REASONS.InvalidSpec, REASONS.PlanRefused,
]);

/** Which Job step a condition speaks for: DataCopied is the sync's when Unknown or when a sync Job is listed. */
function stepsOf(condition: Condition, status: DataMigrationStatus): Step | undefined {
  switch (condition.type) {
    case 'SchemaReady': return 'schema';
    case 'Validated': return 'validate';
    case 'RolledBack': return 'rollback';
    case 'DataCopied':
      return condition.status === 'Unknown' || (status.jobs ?? []).some((job) => job.step === 'sync') ? 'sync' : 'copy';
    default: return undefined;
  }
}

/**
 * The ledger a status written by the version before it implies: its step conditions (requested,
 * refused, failed, aborted, with their transition times), its Jobs and the cutover condition.
 * Called once, when status.steps is absent; `runId` is the run the decision works on.
 */
export function ledgerFromConditions(status: DataMigrationStatus, runId: string): StepRecord[] {
  const out = new Map<LedgerStep, StepRecord>();
  const ready = findCondition(status.conditions, 'Ready');
  if (status.startedAt !== undefined) {
    out.set('start', { step: 'start', runId, requestedAt: status.startedAt, outcome: 'Succeeded', finishedAt: status.startedAt });
  } else if (status.phase === 'Failed' && ready?.reason === REASONS.Aborted) {
    out.set('start', { step: 'start', runId, outcome: 'Aborted', reason: REASONS.Aborted, finishedAt: ready.lastTransitionTime });
  }
  for (const listed of status.jobs ?? []) {
    const entry: StepRecord = { step: listed.step, runId, job: listed.name };
    if (listed.state === 'Succeeded' || listed.state === 'Failed') {
      entry.outcome = listed.state;
      if (listed.state === 'Failed') entry.reason = listed.step === 'rollback' ? REASONS.RollbackFailed : REASONS.JobFailed;
      if (listed.message !== undefined) entry.message = bound(listed.message, STATUS_LIMITS.detail);
    }
    out.set(listed.step, entry);
  }
  for (const condition of status.conditions ?? []) {
    const step = stepsOf(condition, status);
    if (step === undefined) continue;
    const seen = out.get(step);
    const base: StepRecord = { step, runId, ...(seen?.job !== undefined ? { job: seen.job } : {}) };
    const at = condition.lastTransitionTime;
    const marker = STEP_MARKERS[step];
    if (condition.reason === REASONS.JobRunning && condition.status === marker.status) {
      out.set(step, { ...base, requestedAt: at });
    } else if (condition.reason === REASONS.JobRejected) {
      out.set(step, { ...base, outcome: 'Rejected', reason: REASONS.JobRejected, finishedAt: at, message: bound(condition.message, STATUS_LIMITS.detail) });
    } else if (condition.reason === REASONS.Aborted) {
      out.set(step, { ...base, outcome: 'Aborted', reason: REASONS.Aborted, finishedAt: at });
    } else if (condition.status === 'False' && FAILURE_REASONS.has(condition.reason)) {
      out.set(step, { ...base, outcome: 'Failed', reason: condition.reason, finishedAt: at, message: bound(condition.message, STATUS_LIMITS.detail) });
    }
  }
  const cutOver = findCondition(status.conditions, 'CutOver');
  if (cutOver !== undefined) {
    const at = cutOver.lastTransitionTime;
    if (cutOver.reason === REASONS.InProgress) {
      out.set(cutOver.status === 'Unknown' ? 'restore' : 'switch', { step: cutOver.status === 'Unknown' ? 'restore' : 'switch', runId, requestedAt: at });
    } else if (cutOver.status === 'True') {
      out.set('switch', { step: 'switch', runId, outcome: 'Succeeded', finishedAt: at });
    } else if (cutOver.reason === REASONS.Aborted) {
      out.set('switch', { step: 'switch', runId, outcome: 'Aborted', reason: REASONS.Aborted, finishedAt: at });
    }
  }
  return [...out.values()].sort((a, b) => LEDGER_STEPS.indexOf(a.step) - LEDGER_STEPS.indexOf(b.step));
    
}
