// The operator's decision: given a DataMigration and what the reconciler gathered (its Jobs, the
// preflight, the cutover Service, copy progress), what should the status say and what should
// happen next. A pure function: no I/O, no client, no clock (time is an input), no mutation of its
// input; it runs once per reconcile. The reconciler carries out the actions in order and writes the
// status. README "Operator" describes the phase machine; the modules:
//   model.ts        input and output types, timings
//   context.ts      one decision's state and verbs (conditions, Ready, Events, transitions, the preflight gate)
//   transitions.ts  the transition table every phase change is checked against
//   ledger.ts       status.steps, the machine's memory (and its derivation from an older status)
//   phase-of.ts     the phase, computed from the ledger at the start of each decision
//   phases/*.ts     one handler per phase; phases/run-step.ts drives a step's Job
//   abort.ts, retry.ts, annotations.ts   the annotation protocol
//   selectors.ts    the cutover's selector algebra
//   service-switch.ts  consent to switch a Service (its cutover-by annotation), the switch record, what a restore may undo
//   pod-policy.ts   what a spec may ask of step pods (images, ServiceAccounts, reserved label keys)
//   step-results.ts what a step's result (src/api/step-result.ts) puts in status
//   kstatus.ts      Reconciling and Stalled, derived from the phase and Ready at every exit
//
// Decisions worth knowing:
// - Terminal phases (Succeeded, Failed, RolledBack) are final, except for a retry: nothing is ever
//   created, patched or deleted again. A spec change after completion only moves observedGeneration
//   and says on Ready that a new DataMigration is needed (or a retry, when one is possible).
// - A spec change while running keeps the run (same runId); later steps use the new spec.
// - Running Jobs of another run are deleted; Jobs of another run are otherwise ignored.
// - A step Job asked for but not yet in the informer cache is waited for, not created again; after
//   JOB_APPEAR_GRACE_SECONDS (or if it vanished) it is asked for again: Job names are
//   deterministic, so the reconciler treats AlreadyExists as success.
// - Preflight (missing Secrets, keys, ConfigMaps, the Service, the readiness Deployment) gates the
//   start and every new step; a running Job is left alone (preflightNeeded() tells the reconciler).
// - spec.suspend: no new Job and no Service switch; a running Job finishes and its result is
//   recorded. Restoring the Service during a rollback is not held back by suspend.
// - Events: one per phase change, plus one whenever the Ready reason changes (so a missing Secret
//   warns once; a running step's failed pods, StepPodFailed, once per failed count), except a
//   normal Ready change that comes with a phase change's Event. What was last announced is
//   status.announced; conditions are written, never read back (context.ts
//   upgradeStatus() reads an older status's once). Feeding the
//   returned status back in with the same observations yields no actions besides requeue.
import { RETRY_ANNOTATION, REASONS, STEPS } from '../api/constants.ts';
import type { ConditionType, LedgerStep, Reason, Step } from '../api/constants.ts';
import { STATUS_LIMITS } from '../api/datamigration-schema.ts';
import type { DataMigration, DataMigrationStatus, StepJob } from '../api/types.generated.ts';
import { abort } from './abort.ts';
import { captureCleanup, cleanupPending } from './capture-cleanup.ts';
import { isAbortRequested, isApproved } from './annotations.ts';
import { findCondition, removeCondition, conditionIs, setCondition } from './conditions.ts';
import type { ConditionStatus } from './conditions.ts';
import {
  announcedKey, announcedOf, bound, createContext, event, isChangeCapture, isTerminal, PHASE_STEPS, requeueAfter, schemaStepRequired, setCond, STEP_TITLES, WARNING_REASONS, type Context,
} from './context.ts';
import { withKstatus } from './kstatus.ts';
import { recordOutcome, rejectedWait, requestedWithin, retryPoint, STEP_MARKERS } from './ledger.ts';
import { JOB_APPEAR_GRACE_SECONDS, REQUEUE, type DecideInput, type Decision, type EventAction } from './model.ts';
import { HANDLERS, type ActivePhase } from './phases/index.ts';
import { MAX_FAILURE_IN_MESSAGE } from './phases/run-step.ts';
import { lagAllowsFence } from './phases/capture-sync.ts';
import { needsApproval } from './phases/validating.ts';
import { podFailedMessage } from './phases/step-pod-failed.ts';
import { retryVerdict, startRetry, type RetryVerdict } from './retry.ts';
import { selectorText } from './selectors.ts';

export type * from './model.ts';
export { JOB_APPEAR_GRACE_SECONDS, REQUEUE, SWITCH_GRACE_SECONDS } from './model.ts';

/** More rounds than phases: a bound that keeps a bug from looping. */
const PHASE_COUNT = 16;

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
    if (job.state === 'Failed' && job.failureMessage !== undefined) entry.message = bound(job.failureMessage, STATUS_LIMITS.detail);
    else if (job.state === 'Running' && job.podFailure !== undefined) entry.message = bound(podFailedMessage(job.step, job, job.podFailure), STATUS_LIMITS.detail);
    byStep.set(job.step, entry);
  }
  if (byStep.size > 0) ctx.status.jobs = STEPS.flatMap((step) => { const job = byStep.get(step); return job === undefined ? [] : [job]; });
}

function recordService(ctx: Context): void {
  const service = ctx.input.service;
  if (ctx.spec.cutover === undefined || service === undefined) return;
  ctx.status.activeSelector = { ...service.selector };
  ctx.status.active = bound(selectorText(service.selector), STATUS_LIMITS.active);
}

/**
 * The Event a change of Ready deserves (one per thing that happened). What was announced last is
 * status.announced (the memory), not Ready as the status held it: conditions are only written here.
 */
function readyEvent(ctx: Context): void {
  const readyNow = ctx.readySaid;
  if (readyNow === undefined) {
    // The first decision: Ready is Initializing (nothing to announce, and the memory starts here).
    const initial = findCondition(ctx.status.conditions, 'Ready');
    if (ctx.status.announced === undefined && initial !== undefined) ctx.status.announced = announcedKey(initial);
    return;
  }
  const key = announcedKey(readyNow);
  const before = ctx.status.announced;
  ctx.status.announced = key;
  if (before === key) return;
  const reason = readyNow.reason;
  const type = WARNING_REASONS.has(reason) ? 'Warning' : 'Normal';
  // A normal Ready change that comes with a phase change ("Pending → Copying", then Ready "the
  // copy Job is starting") is said by the phase's Event.
  const already = ctx.actions.some((action) => action.kind === 'event' && (action.reason === reason || (type === 'Normal' && ctx.phaseEvent)));
  if (!already) event(ctx, type, reason, readyNow.message);
}

function finish(ctx: Context): Decision {
  ctx.status.observedGeneration = ctx.generation;
  if (isTerminal(ctx.status.phase ?? 'Pending')) delete ctx.status.waitingSince;
  // A running copy: progress read for this decision, and a wake-up to read it again.
  const copyProgress = ctx.input.copyProgress;
  if (copyProgress !== undefined && ctx.status.phase === 'Copying' && ctx.input.jobs.some((job) => job.step === 'copy' && job.state === 'Running')) {
    if (copyProgress.progress !== undefined) ctx.status.progress = copyProgress.progress;
    requeueAfter(ctx, REQUEUE.copyProgress);
  }
  // A run that just ended with a change capture: its release starts at the next decision.
  if (isTerminal(ctx.status.phase ?? 'Pending') && cleanupPending(ctx)) requeueAfter(ctx, 1);
  readyEvent(ctx);
  ctx.status.conditions = withKstatus(ctx.status, ctx.generation, ctx.now);
  const decision: Decision = { status: ctx.status, actions: ctx.actions };
  if (ctx.requeue !== undefined) decision.requeueAfterSeconds = ctx.requeue;
  return decision;
}

/** Ready of a finished migration, from its phase and the ledger's last ending (not from Ready as it was). */
function terminalReady(status: DataMigrationStatus): { status: ConditionStatus; reason: Reason } {
  if (status.phase === 'Succeeded') return { status: 'True', reason: REASONS.Succeeded };
  if (status.phase === 'RolledBack') return { status: 'False', reason: REASONS.RolledBack };
  const ended = [...(status.steps ?? [])].filter((entry) => entry.outcome === 'Failed' || entry.outcome === 'Aborted')
    .sort((a, b) => (a.finishedAt ?? '').localeCompare(b.finishedAt ?? ''))
    .at(-1);
  return { status: 'False', reason: (ended?.reason ?? REASONS.JobFailed) as Reason };
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
    const outcome = ctx.status.message ?? ctx.status.phase ?? '';
    const note = notes.join('. ');
    const { status, reason } = terminalReady(ctx.status);
    ctx.status.conditions = setCondition(ctx.status.conditions, {
      type: 'Ready', status, reason, message: outcome === '' ? note : `${outcome}. ${note}`, observedGeneration: ctx.generation,
    }, ctx.now);
  }
  recordJobs(ctx);
  recordService(ctx);
  // The one thing a finished migration still does: give back a change capture and a fence left up.
  captureCleanup(ctx);
  delete ctx.status.waitingSince;
  ctx.status.observedGeneration = ctx.generation;
  ctx.status.conditions = withKstatus(ctx.status, ctx.generation, ctx.now);
  return { status: ctx.status, actions: ctx.actions, ...(ctx.requeue !== undefined ? { requeueAfterSeconds: ctx.requeue } : {}) };
}

/** What should happen next for this migration. */
export function decide(input: DecideInput): Decision {
  const ctx = createContext(input);
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
      if (HANDLERS[phase as ActivePhase](ctx) === 'stop') break;
    }
  }
  // Conditions describe this generation.
  ctx.status.conditions = (ctx.status.conditions ?? []).map((condition) => ({ ...condition, observedGeneration: ctx.generation }));
  return finish(ctx);
}

/**
 * Whether this decision may start something (a Job, the switch), so the reconciler must run the
 * preflight first. False only where nothing can start: a terminal migration without a retry to
 * start, an abort, suspend, a Manual cutover not approved, or this phase's Job running or asked
 * for moments ago. A reconcile that only waits on a running Job so reads no Secret.
 */
export function preflightNeeded(input: Omit<DecideInput, 'preflight'>): boolean {
  const ctx = createContext(input);
  const phase = ctx.status.phase ?? 'Pending';
  if (isTerminal(phase)) return retryVerdict(ctx).kind === 'start';
  if (isAbortRequested(ctx.migration) || ctx.spec.suspend === true) return false;
  if (phase === 'AwaitingApproval' && needsApproval(ctx.spec.cutover) && !isApproved(ctx.migration)) return false;
  // ChangeCapture: while the stream runs, only a lag under the bound may start the fence.
  if (isChangeCapture(ctx.spec) && (phase === 'Syncing' || phase === 'AwaitingApproval') && ctx.runJobs.get('sync')?.state === 'Running') return lagAllowsFence(ctx);
  const step = PHASE_STEPS[phase];
  if (step === undefined) return true;
  if (ctx.runJobs.get(step)?.state === 'Running') return false;
  if (ctx.runJobs.get(step) === undefined && rejectedWait(ctx.status, step, ctx.runId, ctx.now, ctx.generation, REQUEUE.jobRejected) !== undefined) return false;
  return ctx.runJobs.get(step) === undefined && requestedWithin(ctx.status, step, ctx.runId, ctx.now, JOB_APPEAR_GRACE_SECONDS) ? false : true;
}

/**
 * The API server refused to create a step's Job (400, 403, 404, 422: an invalid jobTemplate, a
 * quota, an admission policy): the decision's status with the refusal recorded (the ledger's
 * outcome Rejected, the step's condition, Ready) and the Event to emit now. The same Job would be
 * refused again at once, so it is asked for again after REQUEUE.jobRejected or when anything changes.
 */
export function recordRejectedJob(migration: DataMigration, decision: Decision, rejected: { step: Step; runId: string; message: string }, now: string): Decision {
  const { step, runId } = rejected;
  const message = `The API server refused the ${STEP_TITLES[step]} Job of run ${runId}: ${bound(rejected.message, MAX_FAILURE_IN_MESSAGE)}; `
    + `fix spec.jobTemplate (or the quota or policy that refused it); it is asked for again every ${String(REQUEUE.jobRejected)} s and whenever the DataMigration changes`;
  const marker = STEP_MARKERS[step];
  return recordRefusal(migration, decision, { entry: step, runId, condition: { type: marker.type, status: marker.status }, reason: REASONS.JobRejected, message }, now);
}

/**
 * The API server refused the cutover's Service patch for a reason a retry would meet again (400,
 * 403, 422: an admission policy, RBAC): recorded as a refused Job is (the ledger's switch entry
 * Rejected, CutOver and Ready, one Event), and the patch is sent again after REQUEUE.jobRejected
 * or when the DataMigration changes; the Service is as it was (the patch did not land).
 */
export function recordRejectedSwitch(migration: DataMigration, decision: Decision, rejected: { runId: string; service: string; message: string }, now: string): Decision {
  const message = `The API server refused the patch of Service ${rejected.service} (run ${rejected.runId}): ${bound(rejected.message, MAX_FAILURE_IN_MESSAGE)}; `
    + `the Service is unchanged; fix the policy that refused it; the switch is asked for again every ${String(REQUEUE.jobRejected)} s and whenever the DataMigration changes`;
  return recordRefusal(migration, decision, { entry: 'switch', runId: rejected.runId, condition: { type: 'CutOver', status: 'False' }, reason: REASONS.ServiceSwitchRejected, message }, now);
}

function recordRefusal(migration: DataMigration, decision: Decision, refusal: {
  entry: LedgerStep; runId: string; condition: { type: ConditionType; status: ConditionStatus }; reason: Reason; message: string;
}, now: string): Decision {
  const status = structuredClone(decision.status);
  const { message, reason } = refusal;
  recordOutcome(status, refusal.entry, refusal.runId, 'Rejected', now, { reason, message: bound(message, STATUS_LIMITS.detail) });
  const generation = migration.metadata?.generation ?? 0;
  status.conditions = setCondition(status.conditions, { ...refusal.condition, reason, message, observedGeneration: generation }, now);
  status.conditions = setCondition(status.conditions, { type: 'Ready', status: 'False', reason, message, observedGeneration: generation }, now);
  status.message = bound(message, STATUS_LIMITS.message);
  status.conditions = withKstatus(status, generation, now);
  // Announced once: the refusal's Event is not repeated while it stays the last thing announced.
  const key = announcedKey({ status: 'False', reason });
  const announced = announcedOf(migration.status) === key;
  status.announced = key;
  const actions: EventAction[] = announced ? [] : [{ kind: 'event', type: 'Warning', reason, message: bound(message, STATUS_LIMITS.message) }];
  return { status, actions, requeueAfterSeconds: REQUEUE.jobRejected };
}
