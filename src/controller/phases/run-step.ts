// Drives one step's Job, the same way for every step: ask for it once (the ledger remembers when),
// wait while it runs, report how it ended. A refused Job (the API server's 4xx) is recorded by
// recordRejectedJob() after the reconciler's create failed; it is asked for again later.
import { RETRY_ANNOTATION, REASONS } from '../../api/constants.ts';
import type { Reason, Step } from '../../api/constants.ts';
import { STATUS_LIMITS } from '../../api/datamigration-schema.ts';
import type { ConditionType } from '../../api/constants.ts';
import { exitReason } from '../../cli/exit-codes.ts';
import { bound, fail, mayStartJob, ready, requeueAfter, setCond, STEP_TITLES, type Context } from '../context.ts';
import { findCondition } from '../conditions.ts';
import { entryOf, inFlight, recordOutcome, recordRequest, recordSeen, rejectedWait, requestedWithin, STEP_MARKERS } from '../ledger.ts';
import { JOB_APPEAR_GRACE_SECONDS, REQUEUE, type ObservedJob } from '../model.ts';
import type { Parsed } from '../step-results.ts';
import { stepJobName } from '../job-builder.ts';
import { stepPodFailed } from './step-pod-failed.ts';

export type StepOutcome =
  | { kind: 'wait' }
  | { kind: 'done'; job: ObservedJob }
  | { kind: 'failed'; job: ObservedJob; message: string };

/** Room for the Job's failure (its reason and the engine's last message) in a status message. */
export const MAX_FAILURE_IN_MESSAGE = 640;

/**
 * Why a step's Job failed, for status and Events: the step, the Job, the Job's failure reason and
 * the engine's last message (both in failureMessage), bounded, and what to do about it.
 */
export function jobFailureMessage(step: Step, job: ObservedJob): string {
  const why = job.failureMessage !== undefined && job.failureMessage.trim() !== '' ? job.failureMessage.trim() : 'the Job failed (no reason recorded)';
  const next = step === 'rollback' ? 'read its log and run `dmctl step rollback` by hand, or fix the cause and retry' : 'fix the cause, then retry';
  return `the ${STEP_TITLES[step]} Job ${job.name} failed: ${bound(why, MAX_FAILURE_IN_MESSAGE)}; ${next} (set the annotation ${RETRY_ANNOTATION} to a new token)`;
}

export function runStep(ctx: Context, step: Step): StepOutcome {
  const marker = STEP_MARKERS[step];
  const title = STEP_TITLES[step];
  const job = ctx.runJobs.get(step);
  if (job !== undefined) {
    if (job.state === 'Succeeded') return { kind: 'done', job };
    if (job.state === 'Failed') return { kind: 'failed', job, message: jobFailureMessage(step, job) };
    recordSeen(ctx.status, step, ctx.runId, job.name, ctx.now);
    if (job.podFailure !== undefined) {
      // A pod failed and the Job retries: said now, not after the whole backoff (suspended or not).
      stepPodFailed(ctx, step, job, job.podFailure);
    } else {
      const running = `The ${title} Job ${job.name} is running`;
      setCond(ctx, marker.type, marker.status, REASONS.JobRunning, running);
      if (ctx.spec.suspend === true) ready(ctx, 'False', REASONS.Suspended, `Suspended: the running ${title} Job ${job.name} finishes, no new step starts`);
      else ready(ctx, 'False', REASONS.JobRunning, running);
    }
    requeueAfter(ctx, REQUEUE.jobRunning);
    return { kind: 'wait' };
  }
  const starting = `The ${title} Job of run ${ctx.runId} is starting`;
  if (requestedWithin(ctx.status, step, ctx.runId, ctx.now, JOB_APPEAR_GRACE_SECONDS)) {
    ready(ctx, 'False', REASONS.JobRunning, starting);
    requeueAfter(ctx, REQUEUE.jobStarting);
    return { kind: 'wait' };
  }
  const rejectedFor = rejectedWait(ctx.status, step, ctx.runId, ctx.now, ctx.generation, REQUEUE.jobRejected);
  if (rejectedFor !== undefined) {
    // Refused moments ago: Ready keeps saying so (unchanged, so nothing is written) until it is asked for again.
    const said = findCondition(ctx.status.conditions, 'Ready');
    const message = said?.reason === REASONS.JobRejected ? said.message : entryOf(ctx.status, step)?.message ?? `The API server refused the ${title} Job of run ${ctx.runId}`;
    ready(ctx, 'False', REASONS.JobRejected, message);
    requeueAfter(ctx, rejectedFor);
    return { kind: 'wait' };
  }
  if (!mayStartJob(ctx, `the ${title} step`)) return { kind: 'wait' };
  requestJob(ctx, step);
  setCond(ctx, marker.type, marker.status, REASONS.JobRunning, starting);
  ready(ctx, 'False', REASONS.JobRunning, starting);
  requeueAfter(ctx, REQUEUE.jobStarting);
  return { kind: 'wait' };
}

/** Asks for the step's Job of this run: the action, and the ledger's record of it (written before it is sent). */
export function requestJob(ctx: Context, step: Step): void {
  ctx.actions.push({ kind: 'createJob', step, runId: ctx.runId });
  recordRequest(ctx.status, step, ctx.runId, ctx.now, stepJobName(ctx.migration.metadata?.name ?? '', ctx.runId, step));
}

/** The reason a failed step Job is recorded with: the engine's exit code, mapped (src/cli/exit-codes.ts). */
export function failureReason(step: Step, job: ObservedJob | undefined): Reason {
  if (step === 'rollback') return REASONS.RollbackFailed;
  const reason = exitReason(job?.exitCode);
  // A validate Job's exit 4 with a readable verdict is a validation failure (validating.ts); here
  // the Job failed some other way, or left no readable verdict.
  return reason === REASONS.ValidationFailed ? REASONS.JobFailed : reason;
}

/** The step failed: its condition and Ready say why, the ledger records it, → Failed. */
export function stepFailed(ctx: Context, step: Step, message: string, reason: Reason, job?: ObservedJob): 'stop' {
  const type: ConditionType = STEP_MARKERS[step].type;
  recordOutcome(ctx.status, step, ctx.runId, 'Failed', ctx.now, {
    reason, message: bound(message, STATUS_LIMITS.detail),
    ...(job?.exitCode !== undefined ? { exitCode: job.exitCode } : {}), ...(job !== undefined ? { job: job.name } : {}),
  });
  setCond(ctx, type, 'False', reason, message);
  fail(ctx, reason, message);
  return 'stop';
}

/** The step's Job succeeded and its result was taken. */
export function stepSucceeded(ctx: Context, step: Step, job: ObservedJob): void {
  recordOutcome(ctx.status, step, ctx.runId, 'Succeeded', ctx.now, { job: job.name });
}

/**
 * A step whose result is all it needs: its Job run to the end and the result read. Undefined when
 * this decision stops here: the Job is still running, or the step failed (the step's condition and
 * Ready say why).
 */
export function finishedStep<T>(ctx: Context, step: Step, parse: (result: unknown) => Parsed<T>): T | undefined {
  const outcome = runStep(ctx, step);
  if (outcome.kind === 'wait') return undefined;
  if (outcome.kind === 'failed') {
    stepFailed(ctx, step, outcome.message, failureReason(step, outcome.job), outcome.job);
    return undefined;
  }
  const parsed = parse(outcome.job.result);
  if (!parsed.ok) {
    stepFailed(ctx, step, parsed.error, step === 'rollback' ? REASONS.RollbackFailed : REASONS.JobFailed, outcome.job);
    return undefined;
  }
  stepSucceeded(ctx, step, outcome.job);
  return parsed.value;
}

/** Whether this run's Job of `step` was asked for and not seen yet (abort deletes it by name). */
export function requestedNotSeen(ctx: Context, step: Step): boolean {
  return !ctx.runJobs.has(step) && inFlight(ctx.status, step, ctx.runId) !== undefined;
}
