// The operator's decision: given a DataMigration, the Jobs it owns and what the preflight found,
// what should the status say and what should happen next. A pure function: no I/O, no client, no
// clock (time is an input), no mutation of its input. The reconciler around it observes, calls
// decide, carries out the actions in order, and writes the status.
//
// Phase machine:
//
//   Pending ─▶ SchemaMigrating (only when spec.schema has migrations, a ConfigMap or createMissingTables)
//           ─▶ Copying ─▶ Syncing (Trickle only) ─▶ Validating
//           ─▶ AwaitingApproval (cutover.approval Manual, until the approve annotation is "true" or the generation)
//           ─▶ CuttingOver (until the observed Service selects toSelector) ─▶ Succeeded
//   validation failed ─▶ RollingBack (rollback.onValidationFailure, the default) ─▶ RolledBack
//                     ─▶ Failed (rollback.onValidationFailure false: the target is left for inspection)
//   a step Job failed (retries exhausted) ─▶ Failed. The spec only asks for rollback on validation
//     failure, so a failed schema/copy/sync/validate Job stops in Failed without touching anything.
//   the rollback Job failed ─▶ Failed (reason RollbackFailed).
//   any non-terminal phase + the abort annotation ─▶ Failed (reason Aborted).
//   Failed (JobFailed, RollbackFailed or Aborted) + a new retry token ─▶ the phase of the step that
//     stopped, under a new run id.
//
// Decisions worth knowing:
// - Terminal phases (Succeeded, Failed, RolledBack) are final, except for a retry: nothing is ever
//   created, patched or deleted again. A spec change after completion only moves observedGeneration
//   and says on the Ready condition that a new DataMigration is needed (or a retry, when one is
//   possible): steps are not safely re-runnable against a target that a finished run already wrote,
//   and the CRD forbids changing tables/schema/strategy once started anyway.
// - A step Job that failed (retries exhausted, or failed at once by the podFailurePolicy) fails the
//   migration with a message naming the step, the Job, the Job's failure reason and the engine's
//   last message (ObservedJob.failureMessage, bounded so the whole fits status.message).
// - Abort: the annotation dataops.dev/abort set to "true" or to the current generation (the approve
//   convention). On a non-terminal migration: this run's running Job is deleted (and one requested
//   but not yet in the cache, by its deterministic name), no step starts, a Service that was
//   switched (or whose switch was just requested) is patched back to fromSelector unless
//   rollback.restoreService is false, the stopped step's condition gets reason Aborted, and the
//   phase is Failed (reason Aborted, a Warning Event) at once: the reconciler carries out the
//   actions before writing the status, so Failed is recorded only after they succeeded. Abort does
//   NOT run the rollback Job: the target is left as it is. To get it rolled back, retry after fixing
//   the cause, or run `dmctl step rollback` by hand. The abort annotation on a terminal migration
//   does nothing, and it must be removed before a retry (a retry is refused while it is set).
// - Retry: the annotation dataops.dev/retry set to a token (any text; a-z and 0-9 are kept, the last
//   8 of them, e.g. `date +%s | tail -c 7`). It applies only to phase Failed with Ready reason
//   JobFailed, RollbackFailed or Aborted (never to Succeeded, RolledBack or a validation failure):
//   the step that stopped is found from the conditions (the latest step whose condition is not True
//   with one of those reasons; DataCopied is the sync's when a sync Job is recorded or it is
//   Unknown; an aborted cutover resumes at the approval gate; an abort before start at Pending).
//   The new run id is `<run without its retry suffix>-r<token>`, so a token is handled once
//   status.runId ends with `-r<token>`: no status field is needed, feeding the status back is a
//   fixed point, and the same token never retries twice. A token whose run has Jobs already is
//   refused (use a new one). The retry clears completedAt, sets the step's condition to reason
//   Retrying, drops the step's old entry from status.jobs, emits a Normal Retrying Event, and the
//   phase handler creates the step's Job under the new run. Steps are idempotent (the copy resumes
//   from its checkpoints), so earlier steps are not run again. A refused retry is explained on the
//   Ready condition (no Event, no action).
// - Cutover: the CutOver condition and the Events say which selector the Service had before
//   ("switched from app=x,track=blue to app=x,track=green"); status.activeSelector/active are always
//   the selector observed now.
// - A spec change while running keeps the run (same runId); later steps use the new spec.
// - One run at a time per DataMigration: runId is status.runId, else the run of Jobs found (a
//   status that was lost is rebuilt from the Jobs' results; this generation's runs and their retries
//   first, one with a running Job first, else the latest), else `g<generation>` when the run starts.
//   Running Jobs of another run are deleted; Jobs of another run are otherwise ignored.
// - "Requested" is recorded on the step's condition (reason JobRunning): a Job asked for but not yet
//   in the informer cache is waited for, not created again; if it still has not appeared after
//   JOB_APPEAR_GRACE_SECONDS (or it vanished, deleted by hand), createJob is emitted again — Job
//   names are deterministic, so the reconciler must treat AlreadyExists as success.
// - Trickle: the sync Job catches up with the rows changed since the copy and exits when caught up;
//   then validation runs. The Manual approval gate is after validation for every strategy.
// - Preflight (missing Secrets, keys, ConfigMaps, the Service, the readiness Deployment) gates the
//   start and every new step; a running Job is left alone. Readiness of the gate Deployment gates
//   only the Service switch.
// - spec.suspend: no new Job and no Service switch; a running Job finishes and its result is
//   recorded. Restoring the Service during a rollback is not held back by suspend.
// - Events: one per phase change, plus one whenever the Ready reason changes (so a missing Secret
//   warns once, not on every reconcile), except a normal Ready change that comes with a phase
//   change's Event. A Job the API server refuses (rejectedJob) waits with reason JobRejected. Feeding the returned status back in with the same Jobs and
//   time yields no actions besides requeue.
import {
  ABORT_ANNOTATION, APPROVE_ANNOTATION, CHECK_KINDS, CHECK_OUTCOMES, REASONS, RETRY_ANNOTATION, STEPS, TABLE_STATES, TERMINAL_PHASES,
} from '../api/constants.ts';
import type { ConditionType, Phase, Reason, Step } from '../api/constants.ts';
import type {
  CheckResult, Condition, CutoverSpec, DataMigration, DataMigrationSpec, DataMigrationStatus, Progress, SchemaStatus,
  StepJob, TableStatus, ValidationStatus,
} from '../api/types.generated.ts';
import { conditionIs, findCondition, removeCondition, setCondition } from './conditions.ts';
import type { ConditionStatus } from './conditions.ts';
import { stepJobName } from './job-builder.ts';

// ---- input ----------------------------------------------------------------------------------

export type JobState = 'Running' | 'Succeeded' | 'Failed';

/** A step Job this migration owns, reduced to what decisions need. */
export interface ObservedJob {
  name: string;
  step: Step;
  /** The Job's run label. */
  runId: string;
  state: JobState;
  /** The parsed JSON termination message of the step's container, when there is one. */
  result?: unknown;
  /** Why the Job failed (condition message, termination message), when it failed. */
  failureMessage?: string;
}

export type PreflightKind = 'Secret' | 'SecretKey' | 'ConfigMap' | 'Service' | 'Deployment';

/** An object the spec refers to that does not exist (for SecretKey: the Secret exists, the key does not). */
export interface MissingObject {
  kind: PreflightKind;
  name: string;
  key?: string;
}

export interface Preflight {
  missing: readonly MissingObject[];
  /** The cutover readiness gate's Deployment has enough ready replicas (undefined: no gate, or unknown). */
  deploymentReady?: boolean;
}

export interface ObservedService {
  selector: Record<string, string>;
}

export interface DecideInput {
  migration: DataMigration;
  jobs: readonly ObservedJob[];
  /**
   * What the preflight found; absent when it has not been run. It is needed only where something
   * would start (a Job, the switch), and then the decision says so (needsPreflight) instead of
   * deciding; the caller runs the preflight and decides again. So a reconcile that only waits on a
   * running Job reads no Secret and no ConfigMap.
   */
  preflight?: Preflight;
  /**
   * The API server refused to create this step's Job just now (400, 403, 404, 422: an invalid
   * jobTemplate, a quota, an admission policy). Decided again with it, the step waits and says why.
   */
  rejectedJob?: { step: Step; message: string };
  /** The cutover Service as observed now (only when spec.cutover is set and the Service exists). */
  service?: ObservedService;
  /** The current time, RFC 3339. */
  now: string;
}

// ---- output ---------------------------------------------------------------------------------

export interface CreateJobAction { kind: 'createJob'; step: Step; runId: string }
/** Delete a Job (with its pods, propagationPolicy Background). */
export interface DeleteJobAction { kind: 'deleteJob'; name: string }
/** Replace the Service's spec.selector with exactly `selector` (a JSON patch replace, not a merge). */
export interface PatchServiceSelectorAction { kind: 'patchServiceSelector'; service: string; selector: Record<string, string> }
export type EventReason = Reason | Phase;
export interface EventAction { kind: 'event'; type: 'Normal' | 'Warning'; reason: EventReason; message: string }
export type Action = CreateJobAction | DeleteJobAction | PatchServiceSelectorAction | EventAction;

export interface Decision {
  /** The complete new status. */
  status: DataMigrationStatus;
  /** To be carried out in order. */
  actions: Action[];
  /** Reconcile again after this many seconds (absent: only when something changes). */
  requeueAfterSeconds?: number;
  /** Nothing was decided: something would start, so decide again with the preflight's findings. */
  needsPreflight?: true;
}

// ---- timings --------------------------------------------------------------------------------

/** A created Job not yet observed after this long is created again (AlreadyExists is success). */
export const JOB_APPEAR_GRACE_SECONDS = 60;
/** A Service switch not yet observed after this long is patched again. */
export const SWITCH_GRACE_SECONDS = 30;
export const REQUEUE = {
  /** Safety net while a Job runs (its completion is watched anyway). */
  jobRunning: 30,
  /** Waiting for a just-created Job to show up. */
  jobStarting: 10,
  /** A Job the API server refused is asked for again after this long (or when anything changes). */
  jobRejected: 60,
  /** Waiting for a Service patch to show up. */
  switching: 5,
  /** Waiting for the gate Deployment (not watched). */
  deploymentNotReady: 15,
  /** Preflight backoff: the wait so far, between these bounds (so each check doubles the wait). */
  preflightMin: 30,
  preflightMax: 300,
} as const;

const MAX_STATUS_MESSAGE = 1024;
const MAX_JOB_MESSAGE = 2048;
const MAX_CHECKS = 64;
const MAX_FIGURE = 256;
/** More rounds than phases: a bound that keeps a bug from looping. */
const PHASE_COUNT = 16;

// ---- small helpers --------------------------------------------------------------------------

const bound = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isTerminal = (phase: Phase): boolean => TERMINAL_PHASES.includes(phase);

/** Seconds from `from` to `to`; Infinity when either is not a time (so a grace period is over). */
function secondsBetween(from: string, to: string): number {
  const elapsed = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isNaN(elapsed) ? Number.POSITIVE_INFINITY : elapsed;
}

export function selectorText(selector: Record<string, string>): string {
  return Object.keys(selector).sort().map((key) => `${key}=${selector[key] ?? ''}`).join(',');
}

/** `current` with the labels of `from` replaced by those of `to` (other labels are kept). */
export function replaceSelector(current: Record<string, string>, from: Record<string, string>, to: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(current)) if (!(key in from)) out[key] = value;
  for (const [key, value] of Object.entries(to)) out[key] = value;
  return out;
}

/** `selector` selects the `to` side: every label of `to`, and no label of `from` that `to` does not set. */
export function selectsSide(selector: Record<string, string>, side: Record<string, string>, other: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(side)) if (selector[key] !== value) return false;
  for (const key of Object.keys(other)) if (!(key in side) && key in selector) return false;
  return true;
}

export function schemaStepRequired(spec: DataMigrationSpec): boolean {
  const schema = spec.schema;
  if (schema === undefined) return false;
  return (schema.migrations?.length ?? 0) > 0 || schema.configMapRef !== undefined || schema.createMissingTables === true;
}

/** Whether the annotation is "true" or the current generation (the convention of approve and abort). */
function annotationSaysYes(migration: DataMigration, annotation: string): boolean {
  const value = migration.metadata?.annotations?.[annotation]?.trim();
  return value === 'true' || (value !== undefined && value === String(migration.metadata?.generation ?? 0));
}

/** Whether a Manual cutover is approved: the annotation is "true" or the current generation. */
export function isApproved(migration: DataMigration): boolean {
  return annotationSaysYes(migration, APPROVE_ANNOTATION);
}

/** Whether an abort is asked for: the abort annotation is "true" or the current generation. */
export function isAbortRequested(migration: DataMigration): boolean {
  return annotationSaysYes(migration, ABORT_ANNOTATION);
}

/** Longest retry token kept: run ids end up in Job names and label values (63 characters). */
export const MAX_RETRY_TOKEN = 8;
/** The suffix a retry adds to the run id it retries. */
const RETRY_SUFFIX = new RegExp(`-r[a-z0-9]{1,${MAX_RETRY_TOKEN}}$`);

/** The retry annotation's token: lower-cased, only a-z and 0-9, the last 8 of them (undefined when none is left). */
export function retryToken(migration: DataMigration): string | undefined {
  const value = migration.metadata?.annotations?.[RETRY_ANNOTATION];
  if (value === undefined) return undefined;
  const token = value.toLowerCase().replace(/[^a-z0-9]/g, '').slice(-MAX_RETRY_TOKEN);
  return token === '' ? undefined : token;
}

/** The run a run id retries (itself when it is not a retry): `g1-r123` → `g1`. */
export function baseRunId(runId: string): string {
  return runId.replace(RETRY_SUFFIX, '');
}

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

const WARNING_REASONS: ReadonlySet<string> = new Set<string>([
  REASONS.SecretNotFound, REASONS.SecretKeyNotFound, REASONS.ConfigMapNotFound, REASONS.ServiceNotFound,
  REASONS.DeploymentNotFound, REASONS.DeploymentNotReady, REASONS.InvalidSpec, REASONS.JobRejected, REASONS.JobFailed, REASONS.PlanRefused,
  REASONS.ChecksumMismatch, REASONS.ValidationFailed, REASONS.RollbackFailed, REASONS.RolledBack, REASONS.Aborted,
]);

/** The condition that records a step, and the status it has while the step's Job is requested or running. */
const STEP_MARKERS: Record<Step, { type: ConditionType; status: ConditionStatus }> = {
  schema: { type: 'SchemaReady', status: 'False' },
  copy: { type: 'DataCopied', status: 'False' },
  // After the copy DataCopied is False/InProgress; Unknown while syncing, so its transition time is the sync's start.
  sync: { type: 'DataCopied', status: 'Unknown' },
  validate: { type: 'Validated', status: 'False' },
  rollback: { type: 'RolledBack', status: 'False' },
};

const STEP_TITLES: Record<Step, string> = { schema: 'schema', copy: 'copy', sync: 'sync', validate: 'validation', rollback: 'rollback' };

/** The step whose Job a phase runs. */
const PHASE_STEPS: Partial<Record<Phase, Step>> = {
  SchemaMigrating: 'schema', Copying: 'copy', Syncing: 'sync', Validating: 'validate', RollingBack: 'rollback',
};

// ---- the context of one decision ------------------------------------------------------------

interface Context {
  readonly input: DecideInput;
  readonly migration: DataMigration;
  readonly spec: DataMigrationSpec;
  readonly generation: number;
  readonly now: string;
  /** Changes only when a retry starts a new run. */
  runId: string;
  /** This run's Jobs by step. */
  runJobs: ReadonlyMap<Step, ObservedJob>;
  /** Ready as it was before this decision. */
  readonly readyBefore: Condition | undefined;
  status: DataMigrationStatus;
  actions: Action[];
  requeue: number | undefined;
  needsPreflight: boolean;
  /** A phase change's Event is among the actions. */
  phaseEvent: boolean;
}

const JOB_STATE_RANK: Record<JobState, number> = { Running: 0, Failed: 1, Succeeded: 2 };

function chooseRunId(migration: DataMigration, jobs: readonly ObservedJob[], generation: number): string {
  const current = migration.status?.runId;
  if (current !== undefined && current !== '') return current;
  const runs = [...new Set(jobs.map((job) => job.runId))];
  if (runs.length === 0) return `g${generation}`;
  // This generation's run or its retries (g3, g3-r…), else any; one with a running Job first, then the latest.
  const ofGeneration = runs.filter((run) => baseRunId(run) === `g${generation}`);
  const candidates = ofGeneration.length > 0 ? ofGeneration : runs;
  const running = candidates.filter((run) => jobs.some((job) => job.runId === run && job.state === 'Running'));
  const pool = running.length > 0 ? running : candidates;
  return pool.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1) ?? `g${generation}`;
}

function jobsOfRun(jobs: readonly ObservedJob[], runId: string): Map<Step, ObservedJob> {
  const runJobs = new Map<Step, ObservedJob>();
  for (const job of jobs) {
    if (job.runId !== runId) continue;
    const seen = runJobs.get(job.step);
    // Names are deterministic, so there is one per step and run; if not, the most final state wins.
    if (seen === undefined || JOB_STATE_RANK[job.state] > JOB_STATE_RANK[seen.state]) runJobs.set(job.step, job);
  }
  return runJobs;
}

function createContext(input: DecideInput): Context {
  const migration = input.migration;
  const generation = migration.metadata?.generation ?? 0;
  const runId = chooseRunId(migration, input.jobs, generation);
  const runJobs = jobsOfRun(input.jobs, runId);
  const status = structuredClone(migration.status ?? {});
  return {
    input, migration, spec: migration.spec, generation, now: input.now, runId, runJobs,
    readyBefore: findCondition(status.conditions, 'Ready'), status, actions: [], requeue: undefined, needsPreflight: false, phaseEvent: false,
  };
}

function requeueAfter(ctx: Context, seconds: number): void {
  ctx.requeue = ctx.requeue === undefined ? seconds : Math.min(ctx.requeue, seconds);
}

function setCond(ctx: Context, type: ConditionType, status: ConditionStatus, reason: Reason, message: string): void {
  ctx.status.conditions = setCondition(ctx.status.conditions, { type, status, reason, message, observedGeneration: ctx.generation }, ctx.now);
}

function ready(ctx: Context, status: ConditionStatus, reason: Reason, message: string): void {
  setCond(ctx, 'Ready', status, reason, message);
  ctx.status.message = bound(message, MAX_STATUS_MESSAGE);
}

function event(ctx: Context, type: EventAction['type'], reason: EventReason, message: string): void {
  ctx.actions.push({ kind: 'event', type, reason, message: bound(message, MAX_STATUS_MESSAGE) });
}

function transition(ctx: Context, phase: Phase, reason: EventReason, message: string, type: EventAction['type'] = 'Normal'): void {
  const from = ctx.status.phase ?? 'Pending';
  ctx.status.phase = phase;
  event(ctx, type, reason, `${from} → ${phase}: ${message}`);
  ctx.phaseEvent = true;
}

function succeed(ctx: Context, message: string): void {
  transition(ctx, 'Succeeded', REASONS.Succeeded, message);
  ctx.status.completedAt = ctx.now;
  ready(ctx, 'True', REASONS.Succeeded, message);
}

function fail(ctx: Context, reason: Reason, message: string): void {
  transition(ctx, 'Failed', reason, message, 'Warning');
  ctx.status.completedAt = ctx.now;
  ready(ctx, 'False', reason, message);
}

/** Whether something new may start now; if not, Ready says why (and the requeue is set). */
function mayStart(ctx: Context, what: string): boolean {
  if (ctx.spec.suspend === true) {
    ready(ctx, 'False', REASONS.Suspended, `Suspended before ${what}; set spec.suspend to false to continue`);
    return false;
  }
  const preflight = ctx.input.preflight;
  if (preflight === undefined) {
    ctx.needsPreflight = true;
    return false;
  }
  const missing = preflight.missing;
  const first = missing[0];
  if (first !== undefined) {
    ready(ctx, 'False', PREFLIGHT_REASONS[first.kind], `${what} waits for: ${missing.map(describeMissing).join('; ')}`);
    // Backoff: the time already waited (Ready False since), between the bounds.
    const waited = ctx.readyBefore?.status === 'False' ? secondsBetween(ctx.readyBefore.lastTransitionTime, ctx.now) : 0;
    const delay = Number.isFinite(waited) ? Math.round(waited) : REQUEUE.preflightMin;
    requeueAfter(ctx, Math.min(REQUEUE.preflightMax, Math.max(REQUEUE.preflightMin, delay)));
    return false;
  }
  return true;
}

// ---- steps ----------------------------------------------------------------------------------

type StepOutcome =
  | { kind: 'wait' }
  | { kind: 'done'; job: ObservedJob }
  | { kind: 'failed'; job: ObservedJob; message: string };

/** Room for the Job's failure (its reason and the engine's last message) in a status message of MAX_STATUS_MESSAGE. */
const MAX_FAILURE_IN_MESSAGE = 640;

/**
 * Why a step's Job failed, for status and Events: the step, the Job, the Job's failure reason and
 * the engine's last message (both in failureMessage), bounded, and what to do about it.
 */
export function jobFailureMessage(step: Step, job: ObservedJob): string {
  const why = job.failureMessage !== undefined && job.failureMessage.trim() !== '' ? job.failureMessage.trim() : 'the Job failed (no reason recorded)';
  const next = step === 'rollback' ? 'read its log and run `dmctl step rollback` by hand, or fix the cause and retry' : 'fix the cause, then retry';
  return `the ${STEP_TITLES[step]} Job ${job.name} failed: ${bound(why, MAX_FAILURE_IN_MESSAGE)}; ${next} (set the annotation ${RETRY_ANNOTATION} to a new token)`;
}

/** Drives one step's Job: create it once, wait while it runs, report how it ended. */
function runStep(ctx: Context, step: Step): StepOutcome {
  const marker = STEP_MARKERS[step];
  const title = STEP_TITLES[step];
  const job = ctx.runJobs.get(step);
  if (job !== undefined) {
    if (job.state === 'Succeeded') return { kind: 'done', job };
    if (job.state === 'Failed') return { kind: 'failed', job, message: jobFailureMessage(step, job) };
    setCond(ctx, marker.type, marker.status, REASONS.JobRunning, `The ${title} Job ${job.name} is running`);
    if (ctx.spec.suspend === true) {
      ready(ctx, 'False', REASONS.Suspended, `Suspended: the running ${title} Job ${job.name} finishes, no new step starts`);
    } else {
      ready(ctx, 'False', REASONS.JobRunning, `The ${title} Job ${job.name} is running`);
    }
    requeueAfter(ctx, REQUEUE.jobRunning);
    return { kind: 'wait' };
  }
  const rejected = ctx.input.rejectedJob;
  if (rejected?.step === step) {
    const message = `The API server refused the ${title} Job of run ${ctx.runId}: ${bound(rejected.message, MAX_FAILURE_IN_MESSAGE)}; `
      + `fix spec.jobTemplate (or the quota or policy that refused it); it is asked for again every ${String(REQUEUE.jobRejected)} s and whenever the DataMigration changes`;
    setCond(ctx, marker.type, marker.status, REASONS.JobRejected, message);
    ready(ctx, 'False', REASONS.JobRejected, message);
    requeueAfter(ctx, REQUEUE.jobRejected);
    return { kind: 'wait' };
  }
  const starting = `The ${title} Job of run ${ctx.runId} is starting`;
  if (requestedWithin(ctx, marker.type, marker.status, REASONS.JobRunning, JOB_APPEAR_GRACE_SECONDS)) {
    ready(ctx, 'False', REASONS.JobRunning, starting);
    requeueAfter(ctx, REQUEUE.jobStarting);
    return { kind: 'wait' };
  }
  if (!mayStart(ctx, `the ${title} step`)) return { kind: 'wait' };
  ctx.actions.push({ kind: 'createJob', step, runId: ctx.runId });
  setCond(ctx, marker.type, marker.status, REASONS.JobRunning, starting);
  ready(ctx, 'False', REASONS.JobRunning, starting);
  requeueAfter(ctx, REQUEUE.jobStarting);
  return { kind: 'wait' };
}

// ---- step results (the Jobs' termination messages; unknown input, read defensively) ---------

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

class Reader {
  readonly errors: string[] = [];
  readonly where: string;
  constructor(where: string) {
    this.where = where;
  }

  record(value: unknown, path: string): Record<string, unknown> | undefined {
    if (isRecord(value)) return value;
    this.errors.push(`${path} is not an object`);
    return undefined;
  }

  string(object: Record<string, unknown>, key: string, path: string, max = MAX_FIGURE, numbersToo = false): string | undefined {
    const value = object[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string') return bound(value, max);
    if (numbersToo && typeof value === 'number' && Number.isFinite(value)) return String(value);
    this.errors.push(`${path}.${key} is not a string`);
    return undefined;
  }

  count(object: Record<string, unknown>, key: string, path: string): number | undefined {
    const value = object[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
    this.errors.push(`${path}.${key} is not a non-negative integer`);
    return undefined;
  }

  boolean(object: Record<string, unknown>, key: string, path: string): boolean | undefined {
    const value = object[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'boolean') return value;
    this.errors.push(`${path}.${key} is not true or false`);
    return undefined;
  }

  array(object: Record<string, unknown>, key: string, path: string): unknown[] | undefined {
    const value = object[key];
    if (value === undefined || value === null) return undefined;
    if (Array.isArray(value)) return value as unknown[];
    this.errors.push(`${path}.${key} is not a list`);
    return undefined;
  }

  oneOf<T extends string>(object: Record<string, unknown>, key: string, path: string, allowed: readonly T[]): T | undefined {
    const value = object[key];
    if (value === undefined || value === null) return undefined;
    const found = allowed.find((item) => item === value);
    if (found === undefined) this.errors.push(`${path}.${key} is not one of ${allowed.join(', ')}`);
    return found;
  }

  done<T>(value: T): Parsed<T> {
    return this.errors.length === 0 ? { ok: true, value } : { ok: false, error: `the ${this.where} result is unreadable: ${this.errors.slice(0, 3).join('; ')}` };
  }
}

/** The result object, or undefined when there is none; anything else is an error. */
function resultObject(reader: Reader, result: unknown): Record<string, unknown> | undefined {
  if (result === undefined || result === null) return undefined;
  return reader.record(result, 'result');
}

export function parseSchemaResult(result: unknown): Parsed<SchemaStatus> {
  const reader = new Reader('schema');
  const object = resultObject(reader, result);
  const out: SchemaStatus = {};
  if (object !== undefined) {
    const versionBefore = reader.string(object, 'versionBefore', 'result', 32, true);
    const version = reader.string(object, 'version', 'result', 32, true);
    const created = reader.array(object, 'createdTables', 'result');
    if (versionBefore !== undefined) out.versionBefore = versionBefore;
    if (version !== undefined) out.version = version;
    if (created !== undefined) {
      const names = created.filter((name): name is string => typeof name === 'string');
      if (names.length !== created.length) reader.errors.push('result.createdTables holds something other than table names');
      out.createdTables = names;
    }
  }
  return reader.done(out);
}

export interface CopyOutcome {
  tables: TableStatus[];
  progress?: Progress;
  failedTables: string[];
  /** MySQL zero dates the copy stored as NULL, per source "table.column". */
  zeroDates: Record<string, number>;
  /** The plan's warnings (lossy conversions and the like). */
  warnings: string[];
}

/** Most warnings named in a copy's Event; the rest are counted. */
const MAX_NOTICES = 8;

/** What a person should know about the copied data, or undefined when there is nothing. */
export function copyNotices(outcome: CopyOutcome): string | undefined {
  const zeroDates = Object.entries(outcome.zeroDates).filter(([, n]) => n > 0);
  const parts: string[] = [];
  if (zeroDates.length > 0) {
    const total = zeroDates.reduce((sum, [, n]) => sum + n, 0);
    parts.push(`${String(total)} MySQL zero date(s) stored as NULL (${zeroDates.map(([column, n]) => `${column}: ${String(n)}`).join(', ')})`);
  }
  parts.push(...outcome.warnings.slice(0, MAX_NOTICES));
  if (outcome.warnings.length > MAX_NOTICES) parts.push(`and ${String(outcome.warnings.length - MAX_NOTICES)} more warning(s) in the copy Job's log`);
  return parts.length > 0 ? bound(parts.join('; '), MAX_STATUS_MESSAGE) : undefined;
}

export function parseCopyResult(result: unknown): Parsed<CopyOutcome> {
  const reader = new Reader('copy');
  const object = resultObject(reader, result);
  const tables: TableStatus[] = [];
  const failedTables: string[] = [];
  if (object !== undefined) {
    (reader.array(object, 'tables', 'result') ?? []).forEach((item, index) => {
      const path = `result.tables[${index}]`;
      const table = reader.record(item, path);
      if (table === undefined) return;
      const name = reader.string(table, 'name', path);
      if (name === undefined) { reader.errors.push(`${path}.name is missing`); return; }
      const entry: TableStatus = { name, state: reader.oneOf(table, 'state', path, TABLE_STATES) ?? 'Copied' };
      const target = reader.string(table, 'target', path);
      const rowsCopied = reader.count(table, 'rowsCopied', path);
      const message = reader.string(table, 'message', path, MAX_JOB_MESSAGE);
      if (target !== undefined) entry.target = target;
      if (rowsCopied !== undefined) entry.rowsCopied = rowsCopied;
      if (message !== undefined) entry.message = message;
      if (entry.state === 'Failed') failedTables.push(message === undefined ? name : `${name} (${message})`);
      tables.push(entry);
    });
  }
  const zeroDates: Record<string, number> = {};
  const warnings: string[] = [];
  if (object !== undefined) {
    const dates = object.zeroDates === undefined || object.zeroDates === null ? undefined : reader.record(object.zeroDates, 'result.zeroDates');
    for (const column of Object.keys(dates ?? {})) {
      const n = dates === undefined ? undefined : reader.count(dates, column, 'result.zeroDates');
      if (n !== undefined) zeroDates[bound(column, MAX_FIGURE)] = n;
    }
    for (const warning of reader.array(object, 'warnings', 'result') ?? []) {
      if (typeof warning === 'string') warnings.push(bound(warning, MAX_FIGURE));
      else reader.errors.push('result.warnings holds something other than text');
    }
  }
  const out: CopyOutcome = { tables, failedTables, zeroDates, warnings };
  if (tables.length > 0) {
    const rowsCopied = tables.reduce((sum, table) => sum + (table.rowsCopied ?? 0), 0);
    const done = tables.filter((table) => table.state === 'Copied').length;
    out.progress = {
      tablesTotal: tables.length, tablesDone: done, rowsCopied,
      percent: Math.round((100 * done) / tables.length),
      summary: `${done}/${tables.length} tables · ${rowsCopied} rows`,
    };
  }
  return reader.done(out);
}

export interface SyncOutcome { rounds?: number; rowsSynced?: number }

export function parseSyncResult(result: unknown): Parsed<SyncOutcome> {
  const reader = new Reader('sync');
  const object = resultObject(reader, result);
  const out: SyncOutcome = {};
  if (object !== undefined) {
    const rounds = reader.count(object, 'rounds', 'result');
    const rowsSynced = reader.count(object, 'rowsSynced', 'result');
    if (rounds !== undefined) out.rounds = rounds;
    if (rowsSynced !== undefined) out.rowsSynced = rowsSynced;
  }
  return reader.done(out);
}

export interface ValidationOutcome { validation: ValidationStatus & { passed: boolean }; tables: TableStatus[] }

/** The validate step's result: `passed` is required (without it nothing can be decided). */
export function parseValidationResult(result: unknown): Parsed<ValidationOutcome> {
  const reader = new Reader('validation');
  if (result === undefined || result === null) return { ok: false, error: 'the validation Job left no result (termination message)' };
  const object = reader.record(result, 'result');
  if (object === undefined) return reader.done({ validation: { passed: false }, tables: [] });
  const passed = reader.boolean(object, 'passed', 'result');
  if (passed === undefined && reader.errors.length === 0) reader.errors.push('result.passed is missing');
  const checks: CheckResult[] = [];
  (reader.array(object, 'checks', 'result') ?? []).forEach((item, index) => {
    const path = `result.checks[${index}]`;
    const check = reader.record(item, path);
    if (check === undefined) return;
    const name = reader.string(check, 'name', path);
    const kind = reader.oneOf(check, 'kind', path, CHECK_KINDS);
    const checkPassed = reader.boolean(check, 'passed', path);
    if (name === undefined || kind === undefined || checkPassed === undefined) {
      reader.errors.push(`${path} needs name, kind and passed`);
      return;
    }
    const entry: CheckResult = { name, kind, passed: checkPassed };
    for (const key of ['source', 'target', 'expected'] as const) {
      const value = reader.string(check, key, path, MAX_FIGURE, true);
      if (value !== undefined) entry[key] = value;
    }
    const message = reader.string(check, 'message', path, MAX_JOB_MESSAGE);
    if (message !== undefined) entry.message = message;
    checks.push(entry);
  });
  const tables: TableStatus[] = [];
  (reader.array(object, 'tables', 'result') ?? []).forEach((item, index) => {
    const path = `result.tables[${index}]`;
    const table = reader.record(item, path);
    if (table === undefined) return;
    const name = reader.string(table, 'name', path);
    if (name === undefined) { reader.errors.push(`${path}.name is missing`); return; }
    const entry: TableStatus = { name };
    const rowsSource = reader.count(table, 'rowsSource', path);
    const rowsTarget = reader.count(table, 'rowsTarget', path);
    const checksum = reader.oneOf(table, 'checksum', path, CHECK_OUTCOMES);
    const message = reader.string(table, 'message', path, MAX_JOB_MESSAGE);
    if (rowsSource !== undefined) entry.rowsSource = rowsSource;
    if (rowsTarget !== undefined) entry.rowsTarget = rowsTarget;
    if (checksum !== undefined) entry.checksum = checksum;
    if (message !== undefined) entry.message = message;
    tables.push(entry);
  });
  const failedCount = checks.filter((check) => !check.passed).length;
  // Failures first, so truncation never hides one.
  const ordered = [...checks.filter((check) => !check.passed), ...checks.filter((check) => check.passed)];
  const validation: ValidationStatus & { passed: boolean } = { passed: passed ?? false };
  const summary = reader.string(object, 'summary', 'result', MAX_STATUS_MESSAGE)
    ?? (checks.length > 0 ? `${checks.length - failedCount}/${checks.length} checks passed` : undefined);
  if (summary !== undefined) validation.summary = summary;
  if (ordered.length > 0) validation.checks = ordered.slice(0, MAX_CHECKS);
  if (ordered.length > MAX_CHECKS || reader.boolean(object, 'truncated', 'result') === true) validation.truncated = true;
  return reader.done({ validation, tables });
}

export function parseRollbackResult(result: unknown): Parsed<{ version?: string }> {
  const reader = new Reader('rollback');
  const object = resultObject(reader, result);
  const out: { version?: string } = {};
  if (object !== undefined) {
    const version = reader.string(object, 'version', 'result', 32, true);
    if (version !== undefined) out.version = version;
  }
  return reader.done(out);
}

function mergeTables(current: readonly TableStatus[] | undefined, updates: readonly TableStatus[]): TableStatus[] {
  const out = (current ?? []).map((table) => ({ ...table }));
  for (const update of updates) {
    const index = out.findIndex((table) => table.name === update.name);
    if (index === -1) out.push({ ...update });
    else out[index] = { ...out[index], ...update };
  }
  return out;
}

// ---- phases ---------------------------------------------------------------------------------

type Next = 'continue' | 'stop';

function specProblem(spec: DataMigrationSpec): string | undefined {
  if (spec.strategy?.type === 'Trickle' && spec.strategy.incremental === undefined) {
    return 'spec.strategy.incremental is required when spec.strategy.type is Trickle';
  }
  return undefined;
}

function pending(ctx: Context): Next {
  const problem = specProblem(ctx.spec);
  if (problem !== undefined) {
    ready(ctx, 'False', REASONS.InvalidSpec, problem);
    return 'stop';
  }
  if (!mayStart(ctx, 'the migration')) return 'stop';
  ctx.status.runId = ctx.runId;
  ctx.status.startedAt ??= ctx.now;
  if (schemaStepRequired(ctx.spec)) transition(ctx, 'SchemaMigrating', 'SchemaMigrating', `run ${ctx.runId} started: migrating the target schema`);
  else transition(ctx, 'Copying', 'Copying', `run ${ctx.runId} started: copying (no schema step needed)`);
  return 'continue';
}

function schemaMigrating(ctx: Context): Next {
  const result = finishedStep(ctx, 'schema', 'SchemaReady', parseSchemaResult);
  if (result === undefined) return 'stop';
  ctx.status.schema = { ...ctx.status.schema, ...result };
  const version = result.version === undefined ? '' : ` at version ${result.version}`;
  setCond(ctx, 'SchemaReady', 'True', REASONS.Succeeded, `The target schema is ready${version}`);
  transition(ctx, 'Copying', 'Copying', `the target schema is ready${version}`);
  return 'continue';
}

/**
 * Whether something was asked for less than `graceSeconds` ago and may still be on its way: the
 * condition that records the request (status and reason) was set within the grace period.
 */
function requestedWithin(ctx: Context, type: ConditionType, status: ConditionStatus, reason: Reason, graceSeconds: number): boolean {
  const condition = findCondition(ctx.status.conditions, type);
  return condition !== undefined && condition.status === status && condition.reason === reason
    && secondsBetween(condition.lastTransitionTime, ctx.now) < graceSeconds;
}

function stepFailed(ctx: Context, type: ConditionType, message: string, reason: Reason = REASONS.JobFailed): Next {
  setCond(ctx, type, 'False', reason, message);
  fail(ctx, reason, message);
  return 'stop';
}

/**
 * A step whose result is all it needs: its Job run to the end and the result read. Undefined when
 * this decision stops here: the Job is still running, or the step failed (then `type` and Ready
 * say why, with `reason`).
 */
function finishedStep<T>(ctx: Context, step: Step, type: ConditionType, parse: (result: unknown) => Parsed<T>, reason: Reason = REASONS.JobFailed): T | undefined {
  const outcome = runStep(ctx, step);
  if (outcome.kind === 'wait') return undefined;
  if (outcome.kind === 'failed') {
    stepFailed(ctx, type, outcome.message, reason);
    return undefined;
  }
  const parsed = parse(outcome.job.result);
  if (!parsed.ok) {
    stepFailed(ctx, type, parsed.error, reason);
    return undefined;
  }
  return parsed.value;
}

function copying(ctx: Context): Next {
  const outcome = runStep(ctx, 'copy');
  if (outcome.kind === 'wait') return 'stop';
  const parsed = parseCopyResult(outcome.job.result);
  // Whatever the copy reported is worth keeping, even from a failed Job.
  if (parsed.ok && parsed.value.tables.length > 0) ctx.status.tables = mergeTables(ctx.status.tables, parsed.value.tables);
  if (outcome.kind === 'failed') return stepFailed(ctx, 'DataCopied', outcome.message);
  if (!parsed.ok) return stepFailed(ctx, 'DataCopied', parsed.error);
  const { failedTables, progress, tables } = parsed.value;
  if (failedTables.length > 0) return stepFailed(ctx, 'DataCopied', `the copy Job ${outcome.job.name} reported failed tables: ${failedTables.join(', ')}`);
  if (progress !== undefined) ctx.status.progress = { ...progress, updatedAt: ctx.now };
  const notices = copyNotices(parsed.value);
  if (notices !== undefined) event(ctx, 'Warning', REASONS.CopyNotices, `The copy Job ${outcome.job.name} finished with notices: ${notices}`);
  const count = tables.length > 0 ? ` (${tables.length} tables)` : '';
  if (ctx.spec.strategy?.type === 'Trickle') {
    setCond(ctx, 'DataCopied', 'False', REASONS.InProgress, `The initial copy is done${count}; syncing changed rows`);
    transition(ctx, 'Syncing', 'Syncing', `the initial copy is done${count}; syncing changed rows until caught up`);
  } else {
    setCond(ctx, 'DataCopied', 'True', REASONS.Succeeded, `The data is copied${count}`);
    transition(ctx, 'Validating', 'Validating', `the data is copied${count}`);
  }
  return 'continue';
}

function syncing(ctx: Context): Next {
  const result = finishedStep(ctx, 'sync', 'DataCopied', parseSyncResult);
  if (result === undefined) return 'stop';
  const rows = result.rowsSynced === undefined ? '' : ` (${result.rowsSynced} changed rows synced)`;
  setCond(ctx, 'DataCopied', 'True', REASONS.Succeeded, `The data is copied and caught up${rows}`);
  transition(ctx, 'Validating', 'Validating', `the data is copied and caught up${rows}`);
  return 'continue';
}

function needsApproval(cutover: CutoverSpec | undefined): boolean {
  return cutover?.approval === 'Manual';
}

function validating(ctx: Context): Next {
  const outcome = runStep(ctx, 'validate');
  if (outcome.kind === 'wait') return 'stop';
  const parsed = parseValidationResult(outcome.job.result);
  // A validate Job that exits non-zero with a readable "passed: false" is a validation failure; any
  // other failure of the Job (or an unreadable result) is a step failure.
  const validationFailed = parsed.ok && !parsed.value.validation.passed;
  if (outcome.kind === 'failed' && !validationFailed) return stepFailed(ctx, 'Validated', outcome.message);
  if (!parsed.ok) return stepFailed(ctx, 'Validated', parsed.error);
  const { validation, tables } = parsed.value;
  ctx.status.validation = { ...validation, checkedAt: ctx.now };
  if (tables.length > 0) ctx.status.tables = mergeTables(ctx.status.tables, tables);
  const summary = validation.summary === undefined ? '' : `: ${validation.summary}`;
  if (validation.passed) {
    setCond(ctx, 'Validated', 'True', REASONS.ValidationPassed, `Validation passed${summary}`);
    const cutover = ctx.spec.cutover;
    if (cutover === undefined) {
      succeed(ctx, `Validation passed${summary}; no cutover configured`);
      return 'stop';
    }
    if (needsApproval(cutover)) transition(ctx, 'AwaitingApproval', REASONS.AwaitingApproval, `validation passed${summary}; the cutover waits for approval`);
    else transition(ctx, 'CuttingOver', 'CuttingOver', `validation passed${summary}; switching Service ${cutover.service}`);
    return 'continue';
  }
  const failedChecks = (validation.checks ?? []).filter((check) => !check.passed);
  const reason = failedChecks.length > 0 && failedChecks.every((check) => check.kind === 'Checksum') ? REASONS.ChecksumMismatch : REASONS.ValidationFailed;
  const names = failedChecks.slice(0, 5).map((check) => check.name).join(', ');
  const message = `Validation failed${summary}${names === '' ? '' : ` (failed: ${names})`}`;
  setCond(ctx, 'Validated', 'False', reason, message);
  if (ctx.spec.rollback?.onValidationFailure ?? true) {
    transition(ctx, 'RollingBack', reason, `${message}; rolling back`, 'Warning');
    return 'continue';
  }
  fail(ctx, reason, `${message}; rollback.onValidationFailure is false, the target is left as it is`);
  return 'stop';
}

function awaitingApproval(ctx: Context): Next {
  const cutover = ctx.spec.cutover;
  if (cutover === undefined) {
    succeed(ctx, 'Validation passed; no cutover configured');
    return 'stop';
  }
  if (!needsApproval(cutover) || isApproved(ctx.migration)) {
    transition(ctx, 'CuttingOver', 'CuttingOver', `cutover approved; switching Service ${cutover.service}`);
    return 'continue';
  }
  ready(ctx, 'False', REASONS.AwaitingApproval,
    `Validation passed; waiting for approval: set the annotation ${APPROVE_ANNOTATION} to "true" or "${ctx.generation}"`);
  return 'stop';
}

function cuttingOver(ctx: Context): Next {
  const cutover = ctx.spec.cutover;
  if (cutover === undefined) {
    succeed(ctx, 'No cutover configured');
    return 'stop';
  }
  const service = ctx.input.service;
  if (service !== undefined && selectsSide(service.selector, cutover.toSelector, cutover.fromSelector)) {
    const switched = `Service ${cutover.service} switched from ${selectorText(previousSelector(ctx, service.selector, cutover))} to ${selectorText(service.selector)}`;
    setCond(ctx, 'CutOver', 'True', REASONS.ServiceSwitched, switched);
    event(ctx, 'Normal', REASONS.ServiceSwitched, switched);
    succeed(ctx, `Migration complete: ${switched}`);
    return 'stop';
  }
  if (!mayStart(ctx, `the switch of Service ${cutover.service}`)) return 'stop';
  if (service === undefined) {
    ready(ctx, 'False', REASONS.ServiceNotFound, `Service ${cutover.service} not found`);
    requeueAfter(ctx, REQUEUE.preflightMin);
    return 'stop';
  }
  const gate = cutover.readinessGate;
  if (gate !== undefined && ctx.input.preflight?.deploymentReady !== true) {
    ready(ctx, 'False', REASONS.DeploymentNotReady, `Waiting for Deployment ${gate.deployment} to be ready before switching Service ${cutover.service}`);
    requeueAfter(ctx, REQUEUE.deploymentNotReady);
    return 'stop';
  }
  const selector = replaceSelector(service.selector, cutover.fromSelector, cutover.toSelector);
  const message = `Switching Service ${cutover.service} from ${selectorText(service.selector)} to ${selectorText(selector)}`;
  if (!requestedWithin(ctx, 'CutOver', 'False', REASONS.InProgress, SWITCH_GRACE_SECONDS)) ctx.actions.push({ kind: 'patchServiceSelector', service: cutover.service, selector });
  setCond(ctx, 'CutOver', 'False', REASONS.InProgress, message);
  ready(ctx, 'False', REASONS.InProgress, message);
  requeueAfter(ctx, REQUEUE.switching);
  return 'stop';
}

/**
 * The selector the Service had before the switch: the one recorded in status.activeSelector before
 * this decision when it was still the `from` side, else the switch undone (`to` labels back to `from`).
 */
function previousSelector(ctx: Context, current: Record<string, string>, cutover: CutoverSpec): Record<string, string> {
  const recorded = ctx.migration.status?.activeSelector;
  if (recorded !== undefined && !selectsSide(recorded, cutover.toSelector, cutover.fromSelector)) return recorded;
  return replaceSelector(current, cutover.toSelector, cutover.fromSelector);
}

/** Rollback's Service part: point it back at fromSelector if it selects toSelector. True when nothing is left to do. */
function restoreService(ctx: Context): boolean {
  const cutover = ctx.spec.cutover;
  const service = ctx.input.service;
  if (cutover === undefined || service === undefined || ctx.spec.rollback?.restoreService === false) return true;
  const source = selectorText(cutover.fromSelector);
  if (selectsSide(service.selector, cutover.toSelector, cutover.fromSelector)) {
    if (!requestedWithin(ctx, 'CutOver', 'Unknown', REASONS.InProgress, SWITCH_GRACE_SECONDS)) {
      ctx.actions.push({ kind: 'patchServiceSelector', service: cutover.service, selector: replaceSelector(service.selector, cutover.toSelector, cutover.fromSelector) });
    }
    setCond(ctx, 'CutOver', 'Unknown', REASONS.InProgress, `Restoring Service ${cutover.service} to ${source}`);
    requeueAfter(ctx, REQUEUE.switching);
    return false;
  }
  if (conditionIs(ctx.status.conditions, 'CutOver', 'Unknown', REASONS.InProgress)) {
    setCond(ctx, 'CutOver', 'False', REASONS.ServiceRestored, `Service ${cutover.service} selects ${source} again`);
    event(ctx, 'Normal', REASONS.ServiceRestored, `Service ${cutover.service} selects ${source} again`);
  }
  return true;
}

function rollingBack(ctx: Context): Next {
  const serviceDone = restoreService(ctx);
  const action = ctx.spec.rollback?.schemaAction ?? 'DownMigrations';
  if (action !== 'None') {
    const result = finishedStep(ctx, 'rollback', 'RolledBack', parseRollbackResult, REASONS.RollbackFailed);
    if (result === undefined) return 'stop';
    if (result.version !== undefined) ctx.status.schema = { ...ctx.status.schema, version: result.version };
  }
  if (!serviceDone) {
    const name = ctx.spec.cutover?.service ?? '';
    ready(ctx, 'False', REASONS.InProgress, `Rolling back: restoring Service ${name}`);
    return 'stop';
  }
  const what = action === 'None' ? 'the target was left as it is (schemaAction None)' : `target rolled back (${action})`;
  const validation = findCondition(ctx.status.conditions, 'Validated')?.message ?? 'Validation failed';
  setCond(ctx, 'RolledBack', 'True', REASONS.RolledBack, `Rolled back: ${what}`);
  transition(ctx, 'RolledBack', REASONS.RolledBack, `${validation}; ${what}`, 'Warning');
  ctx.status.completedAt = ctx.now;
  ready(ctx, 'False', REASONS.RolledBack, `${validation}; rolled back: ${what}`);
  return 'stop';
}

const HANDLERS: Record<Exclude<Phase, 'Succeeded' | 'Failed' | 'RolledBack'>, (ctx: Context) => Next> = {
  Pending: pending,
  SchemaMigrating: schemaMigrating,
  Copying: copying,
  Syncing: syncing,
  Validating: validating,
  AwaitingApproval: awaitingApproval,
  CuttingOver: cuttingOver,
  RollingBack: rollingBack,
};

// ---- abort and retry (annotations) ----------------------------------------------------------

/** Abort's Service part: point a switched Service (or one whose switch was just requested) back at fromSelector. */
function abortService(ctx: Context): string | undefined {
  const cutover = ctx.spec.cutover;
  const service = ctx.input.service;
  if (cutover === undefined || service === undefined) return undefined;
  const switched = selectsSide(service.selector, cutover.toSelector, cutover.fromSelector);
  // A switch patched by an earlier reconcile may not be in the informer cache yet: restore anyway.
  const switchRequested = ctx.status.phase === 'CuttingOver' && conditionIs(ctx.status.conditions, 'CutOver', 'False', REASONS.InProgress);
  if (!switched && !switchRequested) return undefined;
  if (ctx.spec.rollback?.restoreService === false) {
    return switched ? `Service ${cutover.service} left on ${selectorText(service.selector)} (rollback.restoreService is false)` : undefined;
  }
  const selector = replaceSelector(service.selector, cutover.toSelector, cutover.fromSelector);
  ctx.actions.push({ kind: 'patchServiceSelector', service: cutover.service, selector });
  const restored = `Service ${cutover.service} set back from ${selectorText(service.selector)} to ${selectorText(selector)}`;
  event(ctx, 'Normal', REASONS.ServiceRestored, `${restored} (abort)`);
  return restored;
}

/**
 * Abort: delete this run's running Job (and one requested but not yet observed), start nothing,
 * restore a switched Service, mark the aborted step (so a retry knows where to resume), → Failed.
 * The rollback Job is not run: the target is left as it is.
 */
function abort(ctx: Context): void {
  const phase = ctx.status.phase ?? 'Pending';
  const deleted = [...ctx.runJobs.values()].filter((job) => job.state === 'Running').map((job) => job.name);
  const step = PHASE_STEPS[phase];
  if (step !== undefined) {
    const marker = STEP_MARKERS[step];
    // Requested by an earlier reconcile, not in the cache yet: delete it by its deterministic name (absent is fine).
    if (!ctx.runJobs.has(step) && conditionIs(ctx.status.conditions, marker.type, marker.status, REASONS.JobRunning)) {
      deleted.push(stepJobName(ctx.migration.metadata?.name ?? '', ctx.runId, step));
    }
  }
  for (const name of deleted) ctx.actions.push({ kind: 'deleteJob', name });
  const service = abortService(ctx);
  const done = [
    ...(deleted.length > 0 ? [`deleted Job ${deleted.join(', ')}`] : []),
    ...(service === undefined ? [] : [service]),
  ];
  const what = done.length > 0 ? done.join('; ') : 'nothing was running';
  if (step !== undefined) {
    const marker = STEP_MARKERS[step];
    setCond(ctx, marker.type, marker.status, REASONS.Aborted, `The ${STEP_TITLES[step]} step of run ${ctx.runId} was aborted`);
  }
  if (ctx.spec.cutover !== undefined && (phase === 'AwaitingApproval' || phase === 'CuttingOver')) {
    setCond(ctx, 'CutOver', 'False', REASONS.Aborted, `The cutover was aborted${service === undefined ? '' : `: ${service}`}`);
  } else if (service !== undefined && ctx.actions.some((action) => action.kind === 'patchServiceSelector')) {
    setCond(ctx, 'CutOver', 'False', REASONS.ServiceRestored, service);
  }
  fail(ctx, REASONS.Aborted,
    `Aborted (annotation ${ABORT_ANNOTATION}) during ${phase}: ${what}; no rollback Job runs, the target is left as it is. `
    + `To resume, remove the annotation and set ${RETRY_ANNOTATION} to a new token`);
}

/** Where a retry resumes: the phase, and the step (with its condition) that runs again. */
interface RetryPoint { phase: Phase; step?: Step }

/** Ready reasons of a Failed migration that a retry may resume. */
const RETRYABLE_REASONS: ReadonlySet<string> = new Set<string>([REASONS.JobFailed, REASONS.RollbackFailed, REASONS.Aborted]);

/** Which step failed (or was aborted), from the conditions, the latest step first; undefined when not retryable. */
function retryPoint(status: DataMigrationStatus): RetryPoint | undefined {
  const conditions = status.conditions;
  const ready = findCondition(conditions, 'Ready');
  if (status.phase !== 'Failed' || ready === undefined || !RETRYABLE_REASONS.has(ready.reason)) return undefined;
  const stopped = (type: ConditionType): Condition | undefined => {
    const condition = findCondition(conditions, type);
    return condition !== undefined && condition.status !== 'True' && RETRYABLE_REASONS.has(condition.reason) ? condition : undefined;
  };
  if (stopped('RolledBack') !== undefined) return { phase: 'RollingBack', step: 'rollback' };
  // An aborted cutover resumes at the approval gate, which passes straight on when approved or Automatic.
  if (stopped('CutOver') !== undefined) return { phase: 'AwaitingApproval' };
  if (stopped('Validated') !== undefined) return { phase: 'Validating', step: 'validate' };
  const copied = stopped('DataCopied');
  if (copied !== undefined) {
    // DataCopied records both; the sync ran only if there is a sync Job (or it was aborted while syncing: Unknown).
    const syncing = copied.status === 'Unknown' || (status.jobs ?? []).some((job) => job.step === 'sync');
    return syncing ? { phase: 'Syncing', step: 'sync' } : { phase: 'Copying', step: 'copy' };
  }
  if (stopped('SchemaReady') !== undefined) return { phase: 'SchemaMigrating', step: 'schema' };
  // Aborted before anything started.
  return ready.reason === REASONS.Aborted ? { phase: 'Pending' } : undefined;
}

type RetryVerdict =
  | { kind: 'none' }
  | { kind: 'refused'; token: string; why: string }
  | { kind: 'start'; token: string; runId: string; point: RetryPoint };

/** What the retry annotation asks of a terminal migration. A token is handled once the run id ends with `-r<token>`. */
function retryVerdict(ctx: Context): RetryVerdict {
  const token = retryToken(ctx.migration);
  if (token === undefined || (ctx.status.runId ?? '').endsWith(`-r${token}`)) return { kind: 'none' };
  const phase = ctx.status.phase ?? 'Pending';
  if (phase !== 'Failed') return { kind: 'refused', token, why: `a ${phase} migration is never retried; create a new DataMigration to migrate again` };
  const point = retryPoint(ctx.status);
  if (point === undefined) {
    return { kind: 'refused', token, why: 'only a migration that failed in a step Job, or was aborted, can be retried; create a new DataMigration to migrate again' };
  }
  if (isAbortRequested(ctx.migration)) return { kind: 'refused', token, why: `the annotation ${ABORT_ANNOTATION} is still set: remove it` };
  const runId = `${baseRunId(ctx.runId)}-r${token}`;
  if (ctx.input.jobs.some((job) => job.runId === runId)) return { kind: 'refused', token, why: `run ${runId} exists already: use a new token` };
  return { kind: 'start', token, runId, point };
}

/** Moves a Failed migration back to the failed step's phase under a new run; the phase handler then creates its Job. */
function startRetry(ctx: Context, verdict: Extract<RetryVerdict, { kind: 'start' }>): void {
  const { point, runId, token } = verdict;
  const from = ctx.runId;
  ctx.runId = runId;
  ctx.runJobs = jobsOfRun(ctx.input.jobs, runId);
  ctx.status.runId = runId;
  delete ctx.status.completedAt;
  const what = point.step === undefined ? (point.phase === 'Pending' ? 'the migration' : 'the cutover') : `the ${STEP_TITLES[point.step]} step`;
  const why = `(annotation ${RETRY_ANNOTATION}=${token}; run ${from} stopped)`;
  if (point.step !== undefined) {
    const marker = STEP_MARKERS[point.step];
    // Not the step's requested status: the Job request that follows must be a transition (its time
    // is what "requested, not yet observed" is measured from), and JobRunning would read as requested.
    setCond(ctx, marker.type, marker.status === 'Unknown' ? 'False' : 'Unknown', REASONS.Retrying, `Retrying ${what} as run ${runId}`);
    const jobs = (ctx.status.jobs ?? []).filter((job) => job.step !== point.step);
    if (jobs.length > 0) ctx.status.jobs = jobs;
    else delete ctx.status.jobs;
  } else if (point.phase === 'AwaitingApproval') {
    setCond(ctx, 'CutOver', 'Unknown', REASONS.Retrying, `Retrying the cutover as run ${runId}`);
  }
  transition(ctx, point.phase, REASONS.Retrying, `retrying ${what} as run ${runId} ${why}`);
  // The phase handler that runs next says what happens now; this stays only if none does.
  ready(ctx, 'False', REASONS.Retrying, `Retrying ${what} as run ${runId} ${why}`);
}

// ---- the whole decision ---------------------------------------------------------------------

/** Conditions that apply get a value on the first reconcile (Unknown until known), as the conventions ask. */
function initialiseConditions(ctx: Context): void {
  const add = (type: ConditionType, status: ConditionStatus, reason: Reason, message: string): void => {
    if (findCondition(ctx.status.conditions, type) === undefined) setCond(ctx, type, status, reason, message);
  };
  add('Ready', 'Unknown', REASONS.Initializing, 'The operator has not acted on this migration yet');
  if (schemaStepRequired(ctx.spec)) add('SchemaReady', 'Unknown', REASONS.NotStarted, 'The schema step has not started');
  else add('SchemaReady', 'True', REASONS.NotRequired, 'No schema migrations to run');
  add('DataCopied', 'Unknown', REASONS.NotStarted, 'The copy has not started');
  add('Validated', 'Unknown', REASONS.NotStarted, 'Validation has not started');
  if (ctx.spec.cutover !== undefined) add('CutOver', 'Unknown', REASONS.NotStarted, 'The cutover has not started');
  else if (conditionIs(ctx.status.conditions, 'CutOver', 'Unknown', REASONS.NotStarted)) {
    ctx.status.conditions = removeCondition(ctx.status.conditions, 'CutOver');
  }
}

function recordJobs(ctx: Context): void {
  const byStep = new Map<Step, StepJob>((ctx.status.jobs ?? []).map((job) => [job.step, job]));
  for (const job of ctx.runJobs.values()) {
    const entry: StepJob = { step: job.step, name: job.name, state: job.state };
    if (job.state === 'Failed' && job.failureMessage !== undefined) entry.message = bound(job.failureMessage, MAX_JOB_MESSAGE);
    byStep.set(job.step, entry);
  }
  if (byStep.size > 0) ctx.status.jobs = STEPS.flatMap((step) => { const job = byStep.get(step); return job === undefined ? [] : [job]; });
}

function recordService(ctx: Context): void {
  const service = ctx.input.service;
  if (ctx.spec.cutover === undefined || service === undefined) return;
  ctx.status.activeSelector = { ...service.selector };
  ctx.status.active = bound(selectorText(service.selector), 512);
}

function finish(ctx: Context): Decision {
  ctx.status.observedGeneration = ctx.generation;
  const readyNow = findCondition(ctx.status.conditions, 'Ready');
  const before = ctx.readyBefore;
  if (readyNow !== undefined && readyNow.reason !== REASONS.Initializing
    && (before === undefined || before.reason !== readyNow.reason || before.status !== readyNow.status)) {
    const reason = readyNow.reason as Reason;
    const type = WARNING_REASONS.has(reason) ? 'Warning' : 'Normal';
    // One Event per thing that happened: a normal Ready change that comes with a phase change
    // ("Pending → Copying", then Ready "the copy Job is starting") is said by the phase's Event.
    const already = ctx.actions.some((action) => action.kind === 'event' && (action.reason === reason || (type === 'Normal' && ctx.phaseEvent)));
    if (!already) event(ctx, type, reason, readyNow.message);
  }
  const decision: Decision = { status: ctx.status, actions: ctx.actions };
  if (ctx.requeue !== undefined) decision.requeueAfterSeconds = ctx.requeue;
  return decision;
}

function decideTerminal(ctx: Context, retry: RetryVerdict): Decision {
  const notes: string[] = [];
  const previous = ctx.status.observedGeneration;
  if (previous !== undefined && previous !== ctx.generation) {
    const again = retryPoint(ctx.status) === undefined ? '' : `, or set the annotation ${RETRY_ANNOTATION} to a new token to run the failed step again with this spec`;
    notes.push(`The spec changed (generation ${ctx.generation}) after the migration finished; a finished DataMigration does not run again by itself: create a new DataMigration to migrate again${again}`);
  }
  if (retry.kind === 'refused') notes.push(`Retry "${retry.token}" not started: ${retry.why}`);
  if (notes.length > 0) {
    const ready = findCondition(ctx.status.conditions, 'Ready');
    const outcome = ctx.status.message ?? ctx.status.phase ?? '';
    const note = notes.join('. ');
    ctx.status.conditions = setCondition(ctx.status.conditions, {
      type: 'Ready', status: ready?.status ?? 'Unknown', reason: (ready?.reason ?? REASONS.NotStarted) as Reason,
      message: outcome === '' ? note : `${outcome}. ${note}`, observedGeneration: ctx.generation,
    }, ctx.now);
  }
  recordJobs(ctx);
  recordService(ctx);
  ctx.status.observedGeneration = ctx.generation;
  return { status: ctx.status, actions: [] };
}

/** What should happen next for this migration. */
export function decide(input: DecideInput): Decision {
  const ctx = createContext(input);
  const decision = decideWith(ctx);
  return ctx.needsPreflight ? { status: structuredClone(input.migration.status ?? {}), actions: [], needsPreflight: true } : decision;
}

function decideWith(ctx: Context): Decision {
  const input = ctx.input;
  if (isTerminal(ctx.status.phase ?? 'Pending')) {
    const retry = retryVerdict(ctx);
    if (retry.kind !== 'start') return decideTerminal(ctx, retry);
    startRetry(ctx, retry);
  }

  ctx.status.phase ??= 'Pending';
  recordJobs(ctx);
  recordService(ctx);
  initialiseConditions(ctx);
  // A Running Job of another run would write the same target: stop it.
  for (const job of input.jobs) {
    if (job.runId !== ctx.runId && job.state === 'Running') ctx.actions.push({ kind: 'deleteJob', name: job.name });
  }
  if (isAbortRequested(ctx.migration)) {
    abort(ctx);
  } else {
    // Each handler either settles (stop) or moves the phase on; a bound keeps a bug from looping.
    for (let round = 0; round < PHASE_COUNT; round++) {
      const phase = ctx.status.phase ?? 'Pending';
      if (isTerminal(phase)) break;
      const handler = HANDLERS[phase as keyof typeof HANDLERS];
      if (handler(ctx) === 'stop') break;
    }
  }
  // Conditions describe this generation.
  ctx.status.conditions = (ctx.status.conditions ?? []).map((condition) => ({ ...condition, observedGeneration: ctx.generation }));
  return finish(ctx);
}
