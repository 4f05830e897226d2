// The state of one decision and the small verbs every phase handler uses: set a condition, say
// why on Ready, emit an Event, move the phase (checked against the transition table), gate a start
// on suspend and the preflight. Pure: the context is built from decide()'s input and discarded.
import { REASONS, TERMINAL_PHASES } from '../api/constants.ts';
import type { ConditionType, Phase, Reason, Step } from '../api/constants.ts';
import { STATUS_LIMITS } from '../api/datamigration-schema.ts';
import type { Condition, DataMigration, DataMigrationSpec, DataMigrationStatus } from '../api/types.generated.ts';
import { baseRunId } from './annotations.ts';
import { findCondition, setCondition } from './conditions.ts';
import type { ConditionStatus } from './conditions.ts';
import { entryOf, ledgerFromConditions, recordOutcome, secondsBetween, setEntry } from './ledger.ts';
import { phaseOf } from './phase-of.ts';
import { REQUEUE } from './model.ts';
import type { Action, DecideInput, EventAction, EventReason, JobState, MissingObject, ObservedJob, PreflightKind } from './model.ts';
import { assertTransition } from './transitions.ts';

export { bound } from './bound.ts';
import { bound } from './bound.ts';
export const isTerminal = (phase: Phase): boolean => TERMINAL_PHASES.includes(phase);

export const STEP_TITLES: Record<Step, string> = { schema: 'schema', copy: 'copy', sync: 'sync', validate: 'validation', fence: 'write fence', catchup: 'catch-up', unfence: 'lift of the write fence', release: 'release', rollback: 'rollback' };

/** The step whose Job a phase runs. */
export const PHASE_STEPS: Partial<Record<Phase, Step>> = {
  SchemaMigrating: 'schema', Copying: 'copy', Syncing: 'sync', Validating: 'validate', RollingBack: 'rollback',
};

export const WARNING_REASONS: ReadonlySet<string> = new Set<string>([
  REASONS.SecretNotFound, REASONS.SecretKeyNotFound, REASONS.ConfigMapNotFound, REASONS.ServiceNotFound,
  REASONS.DeploymentNotFound, REASONS.DeploymentNotReady, REASONS.InvalidSpec, REASONS.JobRejected, REASONS.JobFailed, REASONS.StepPodFailed, REASONS.PlanRefused,
  REASONS.ChecksumMismatch, REASONS.ValidationFailed, REASONS.RollbackFailed, REASONS.RolledBack, REASONS.Aborted,
  REASONS.ImageNotAllowed, REASONS.ServiceAccountNotAllowed, REASONS.ReservedKey,
  REASONS.ServiceNotOptedIn, REASONS.ServiceSelectorMismatch, REASONS.ServiceNotRestored, REASONS.ServiceSwitchRejected,
  REASONS.SyncLagging, REASONS.FenceRefused, REASONS.FenceLifted, REASONS.CaptureNotReleased,
]);

const PREFLIGHT_REASONS: Record<PreflightKind, Reason> = {
  Secret: REASONS.SecretNotFound,
  SecretKey: REASONS.SecretKeyNotFound,
  ConfigMap: REASONS.ConfigMapNotFound,
  Service: REASONS.ServiceNotFound,
  Deployment: REASONS.DeploymentNotFound,
};

function describeMissing(missing: MissingObject): string {
  if (missing.kind === 'SecretKey') return `key "${missing.key ?? ''}" not found in Secret "${missing.name}"`;
  return `${missing.kind} "${missing.name}" not found`;
}

/** Trickle following the source's change log: a sync Job runs until the cutover's write fence. */
export function isChangeCapture(spec: DataMigrationSpec): boolean {
  return spec.strategy?.type === 'Trickle' && spec.strategy.incremental?.mode === 'ChangeCapture';
}

export function schemaStepRequired(spec: DataMigrationSpec): boolean {
  const schema = spec.schema;
  if (schema === undefined) return false;
  return (schema.migrations?.length ?? 0) > 0 || schema.configMapRef !== undefined || schema.createMissingTables === true;
}

/** A decision reached a start without the preflight's findings: preflightNeeded() missed a case (a bug). */
export class PreflightMissingError extends Error {
  constructor(what: string) {
    super(`decide() reached ${what} without the preflight's findings`);
  }
}

/** Ready as a decision sets it; `occurrence` counts repeats of one reason that each deserve an Event (a step's failed pods). */
export interface ReadySaid {
  status: ConditionStatus;
  reason: Reason;
  message: string;
  occurrence?: number;
}

export interface Context {
  readonly input: DecideInput;
  readonly migration: DataMigration;
  readonly spec: DataMigrationSpec;
  readonly generation: number;
  readonly now: string;
  /** Changes only when a retry starts a new run. */
  runId: string;
  /** This run's Jobs by step. */
  runJobs: ReadonlyMap<Step, ObservedJob>;
  status: DataMigrationStatus;
  actions: Action[];
  requeue: number | undefined;
  /** A phase change's Event is among the actions. */
  phaseEvent: boolean;
  /** Ready as this decision set it (undefined: not set, nothing new to announce). */
  readySaid: ReadySaid | undefined;
}

const JOB_STATE_RANK: Record<JobState, number> = { Running: 0, Failed: 1, Succeeded: 2 };

/**
 * One run at a time: status.runId, else the run of the Jobs found (a lost status is rebuilt from
 * them: this generation's runs and their retries first, one with a running Job first, else the
 * latest), else `g<generation>`.
 */
export function chooseRunId(migration: DataMigration, jobs: readonly ObservedJob[], generation: number): string {
  const current = migration.status?.runId;
  if (current !== undefined && current !== '') return current;
  const runs = [...new Set(jobs.map((job) => job.runId))];
  if (runs.length === 0) return `g${generation}`;
  const ofGeneration = runs.filter((run) => baseRunId(run) === `g${generation}`);
  const candidates = ofGeneration.length > 0 ? ofGeneration : runs;
  const running = candidates.filter((run) => jobs.some((job) => job.runId === run && job.state === 'Running'));
  const pool = running.length > 0 ? running : candidates;
  return pool.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1) ?? `g${generation}`;
}

export function jobsOfRun(jobs: readonly ObservedJob[], runId: string): Map<Step, ObservedJob> {
  const runJobs = new Map<Step, ObservedJob>();
  for (const job of jobs) {
    if (job.runId !== runId) continue;
    const seen = runJobs.get(job.step);
    // Names are deterministic, so there is one per step and run; if not, the most final state wins.
    if (seen === undefined || JOB_STATE_RANK[job.state] > JOB_STATE_RANK[seen.state]) runJobs.set(job.step, job);
  }
  return runJobs;
}

/**
 * The Ready status and reason as status.announced keeps them ("False/SecretNotFound"), with the
 * occurrence when one is counted ("False/StepPodFailed#2": the second failed pod is announced too).
 */
export const announcedKey = (ready: Pick<Condition, 'status' | 'reason'> & { occurrence?: number }): string =>
  `${ready.status}/${ready.reason}${ready.occurrence === undefined ? '' : `#${String(ready.occurrence)}`}`;

/**
 * Written by a version that kept its memory in conditions: every decision of this version sets
 * status.announced (Ready always has a value), so its absence next to conditions marks an older status.
 */
function writtenBeforeMemoryFields(status: DataMigrationStatus): boolean {
  return status.announced === undefined && (status.conditions?.length ?? 0) > 0;
}

/** What the status says was announced last (for an older status: its Ready, read once). */
export function announcedOf(status: DataMigrationStatus | undefined): string | undefined {
  if (status === undefined) return undefined;
  if (!writtenBeforeMemoryFields(status)) return status.announced;
  const ready = findCondition(status.conditions, 'Ready');
  return ready === undefined ? undefined : announcedKey(ready);
}

const PREFLIGHT_WAIT_REASONS: ReadonlySet<string> = new Set<string>(Object.values(PREFLIGHT_REASONS));

/**
 * An older status's memory, read from its conditions once (the only place they are read): the
 * ledger (ledgerFromConditions), the Ready change last announced, and since when the preflight waits.
 */
function upgradeStatus(status: DataMigrationStatus, runId: string): void {
  if (status.steps === undefined) {
    const derived = ledgerFromConditions(status, runId);
    if (derived.length > 0) status.steps = derived;
  }
  const ready = findCondition(status.conditions, 'Ready');
  // The phase it was in, as the ledger now tells it: a cutover under way, or the run's end.
  const phase = status.phase ?? 'Pending';
  if (phase === 'CuttingOver' && entryOf(status, 'switch') === undefined) setEntry(status, { step: 'switch', runId });
  if (isTerminal(phase) && entryOf(status, 'finish') === undefined) {
    const reason: Reason = phase === 'Succeeded' ? REASONS.Succeeded : phase === 'RolledBack' ? REASONS.RolledBack : (ready?.reason ?? REASONS.JobFailed) as Reason;
    setEntry(status, { step: 'finish', runId, outcome: phase === 'Succeeded' ? 'Succeeded' : 'Failed', reason, ...(status.completedAt !== undefined ? { finishedAt: status.completedAt } : {}) });
  }
  if (ready === undefined) return;
  status.announced = announcedKey(ready);
  if (ready.status === 'False' && PREFLIGHT_WAIT_REASONS.has(ready.reason)) status.waitingSince ??= ready.lastTransitionTime;
}

export function createContext(input: DecideInput): Context {
  const migration = input.migration;
  const generation = migration.metadata?.generation ?? 0;
  const runId = chooseRunId(migration, input.jobs, generation);
  const status = structuredClone(migration.status ?? {});
  if (writtenBeforeMemoryFields(status)) upgradeStatus(status, runId);
  // Where the ledger puts the machine; status.phase is only written (for people).
  status.phase = phaseOf(status, {
    schemaStep: schemaStepRequired(migration.spec), trickle: migration.spec.strategy?.type === 'Trickle',
    changeCapture: isChangeCapture(migration.spec), manualApproval: migration.spec.cutover?.approval === 'Manual',
  });
  return {
    input, migration, spec: migration.spec, generation, now: input.now, runId, runJobs: jobsOfRun(input.jobs, runId),
    status, actions: [], requeue: undefined, phaseEvent: false, readySaid: undefined,
  };
}

export function requeueAfter(ctx: Context, seconds: number): void {
  ctx.requeue = ctx.requeue === undefined ? seconds : Math.min(ctx.requeue, seconds);
}

export function setCond(ctx: Context, type: ConditionType, status: ConditionStatus, reason: Reason, message: string): void {
  ctx.status.conditions = setCondition(ctx.status.conditions, { type, status, reason, message, observedGeneration: ctx.generation }, ctx.now);
}

export function ready(ctx: Context, status: ConditionStatus, reason: Reason, message: string, occurrence?: number): void {
  setCond(ctx, 'Ready', status, reason, message);
  ctx.readySaid = { status, reason, message, ...(occurrence === undefined ? {} : { occurrence }) };
  ctx.status.message = bound(message, STATUS_LIMITS.message);
}

export function event(ctx: Context, type: EventAction['type'], reason: EventReason, message: string): void {
  ctx.actions.push({ kind: 'event', type, reason, message: bound(message, STATUS_LIMITS.message) });
}

/**
 * What a move leaves in the ledger, so that phaseOf() finds the phase again: the cutover cleared
 * to go (the switch's entry, before anything is sent), or the run's end (finish).
 */
function recordPhaseInLedger(ctx: Context, phase: Phase, reason: EventReason): void {
  if (phase === 'CuttingOver' && entryOf(ctx.status, 'switch') === undefined) setEntry(ctx.status, { step: 'switch', runId: ctx.runId });
  if (!isTerminal(phase)) return;
  const why: Reason = phase === 'Succeeded' ? REASONS.Succeeded : phase === 'RolledBack' ? REASONS.RolledBack : reason as Reason;
  recordOutcome(ctx.status, 'finish', ctx.runId, phase === 'Succeeded' ? 'Succeeded' : 'Failed', ctx.now, { reason: why });
}

/** Moves the phase (only along the transition table) and says so in an Event. */
export function transition(ctx: Context, phase: Phase, reason: EventReason, message: string, type: EventAction['type'] = 'Normal'): void {
  const from = ctx.status.phase ?? 'Pending';
  assertTransition(from, phase);
  ctx.status.phase = phase;
  recordPhaseInLedger(ctx, phase, reason);
  event(ctx, type, reason, `${from} → ${phase}: ${message}`);
  ctx.phaseEvent = true;
}

export function succeed(ctx: Context, message: string): void {
  transition(ctx, 'Succeeded', REASONS.Succeeded, message);
  ctx.status.completedAt = ctx.now;
  ready(ctx, 'True', REASONS.Succeeded, message);
}

export function fail(ctx: Context, reason: Reason, message: string): void {
  transition(ctx, 'Failed', reason, message, 'Warning');
  ctx.status.completedAt = ctx.now;
  ready(ctx, 'False', reason, message);
}

/** Whether something new may start now; if not, Ready says why (and the requeue is set). */
export function mayStart(ctx: Context, what: string): boolean {
  if (ctx.spec.suspend === true) {
    ready(ctx, 'False', REASONS.Suspended, `Suspended before ${what}; set spec.suspend to false to continue`);
    return false;
  }
  const preflight = ctx.input.preflight;
  if (preflight === undefined) throw new PreflightMissingError(what);
  const missing = preflight.missing;
  const first = missing[0];
  if (first !== undefined) {
    ready(ctx, 'False', PREFLIGHT_REASONS[first.kind], `${what} waits for: ${missing.map(describeMissing).join('; ')}`);
    // Backoff: the time already waited (status.waitingSince), between the bounds.
    ctx.status.waitingSince ??= ctx.now;
    const waited = secondsBetween(ctx.status.waitingSince, ctx.now);
    const delay = Number.isFinite(waited) ? Math.round(waited) : REQUEUE.preflightMin;
    requeueAfter(ctx, Math.min(REQUEUE.preflightMax, Math.max(REQUEUE.preflightMin, delay)));
    return false;
  }
  delete ctx.status.waitingSince;
  return true;
}

/**
 * mayStart() for a step Job: also what the operator's pod policy refuses in spec.jobTemplate
 * (the preflight's podPolicy). Time changes nothing there, so nothing is requeued: the next
 * decision comes with a spec change (or an operator restarted with another configuration).
 */
export function mayStartJob(ctx: Context, what: string): boolean {
  const refusal = ctx.spec.suspend === true ? undefined : ctx.input.preflight?.podPolicy;
  if (refusal === undefined) return mayStart(ctx, what);
  ready(ctx, 'False', refusal.reason, `${what} is refused by the operator's pod policy: ${refusal.message}`);
  return false;
}
