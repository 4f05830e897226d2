// CuttingOver with ChangeCapture: the write fence (fence.ts), the sync Job stopped and its pod gone
// (it holds the stream: a PostgreSQL slot serves one reader), the catch-up Job (everything the source
// committed up to its position behind the fence applied, then the full validation: the data stands
// still now), then the Service switch (cutting-over.ts). Anything that fails behind the fence, or a
// cutover that outlives fence.timeoutSeconds before its switch is sent, lifts the fence: traffic
// stays on blue, and status and an Event say so. The time writes were blocked is status.sync.writeBlockedMs.
import { FENCED_ANNOTATION, REASONS, type Reason } from '../../api/constants.ts';
import { event, fail, ready, requeueAfter, setCond, transition, type Context } from '../context.ts';
import { recordWriteBlocked, unfenceSource } from '../capture-cleanup.ts';
import { externalFenceHeld, fenceBroken, liftScaleDown, scaleDownFence } from '../fence.ts';
import { entryOf, recordOutcome, recordRequest, secondsBetween } from '../ledger.ts';
import { REQUEUE } from '../model.ts';
import { switcherOf } from '../service-switch.ts';
import { parseCatchupResult, parseFenceResult, recordTables } from '../step-results.ts';
import { cuttingOver } from './cutting-over.ts';
import type { Next } from './next.ts';
import { failureReason, jobFailureMessage, requestJob, runStep } from './run-step.ts';
import { verdictReason } from './validating.ts';

/**
 * Lifts the fence this migration put up (the cutover will not happen): the patch to send, or what
 * a person must do. Returns what happened, for status and the Event.
 */
export function liftFence(ctx: Context): string {
  const fence = ctx.spec.cutover?.fence;
  if (fence === undefined || entryOf(ctx.status, 'fence') === undefined) return 'nothing was fenced';
  if (fence.type === 'External') {
    recordOutcome(ctx.status, 'unfence', ctx.runId, 'Succeeded', ctx.now);
    // Until now, as far as the operator knows: the person lifts their own fence.
    recordWriteBlocked(ctx);
    return `lift your write fence now and remove the annotation ${FENCED_ANNOTATION}: the Service was not switched`;
  }
  if (fence.type === 'SourceReadOnly') return liftReadOnly(ctx);
  const name = fence.deployment ?? '';
  const lift = liftScaleDown(name, ctx.input.capture?.fenceDeployment, switcherOf(ctx));
  if (lift.kind === 'scale') {
    ctx.actions.push(lift.action);
    recordRequest(ctx.status, 'unfence', ctx.runId, ctx.now);
    recordWriteBlocked(ctx);
    return `the write fence is lifted: ${lift.message}`;
  }
  if (lift.kind === 'leave') {
    recordOutcome(ctx.status, 'unfence', ctx.runId, 'Failed', ctx.now, { reason: REASONS.FenceLifted, message: lift.message });
    return lift.message;
  }
  recordOutcome(ctx.status, 'unfence', ctx.runId, 'Succeeded', ctx.now);
  return `Deployment ${name} is not fenced`;
}

/**
 * SourceReadOnly: the unfence Job restores the setting the fence recorded; a fence Job still
 * running is stopped first (the end of the run waits for it, capture-cleanup.ts, then unfences).
 */
function liftReadOnly(ctx: Context): string {
  const fenceJob = ctx.runJobs.get('fence');
  if (fenceJob?.state === 'Running') {
    ctx.actions.push({ kind: 'deleteJob', name: fenceJob.name });
    return 'the fence Job is stopped, then the source database is made writable again (the unfence Job)';
  }
  if (entryOf(ctx.status, 'unfence') === undefined) requestJob(ctx, 'unfence');
  return 'the source database is made writable again (the unfence Job restores the setting the fence recorded)';
}

/** The cutover gives up behind the fence: the fence is lifted, traffic stays on blue, → Failed. */
function abandon(ctx: Context, reason: Reason, why: string): 'stop' {
  const lifted = liftFence(ctx);
  const message = `${why}; ${lifted}; traffic stays on blue`;
  event(ctx, 'Warning', REASONS.FenceLifted, `The cutover did not happen: ${message}`);
  setCond(ctx, 'CutOver', 'False', reason, message);
  fail(ctx, reason, message);
  return 'stop';
}

/** The switch was sent and may have landed (one the API server refused did not: the fence's timeout still holds). */
function switchMayHaveLanded(ctx: Context): boolean {
  const entry = entryOf(ctx.status, 'switch');
  return entry?.requestedAt !== undefined && entry.outcome !== 'Rejected';
}

/** Puts the fence up: true once writes to the source have stopped. */
function fenceHeld(ctx: Context): boolean {
  const fence = ctx.spec.cutover?.fence;
  if (fence === undefined) return false;
  if (entryOf(ctx.status, 'fence')?.outcome === 'Succeeded') {
    // Held once is not held now: checked at every decision until the switch is sent.
    const broken = !switchMayHaveLanded(ctx) ? fenceBroken(ctx.migration, ctx.input.capture?.fenceDeployment, switcherOf(ctx)) : undefined;
    if (broken === undefined) return true;
    abandon(ctx, REASONS.FenceRefused, `The write fence did not hold: ${broken}`);
    return false;
  }
  let replicasBefore: number | undefined;
  if (fence.type === 'SourceReadOnly') {
    const outcome = runStep(ctx, 'fence');
    if (outcome.kind === 'wait') {
      ready(ctx, 'False', REASONS.Fencing, 'Fencing writes: the fence Job makes the source database read-only and ends the application\'s sessions');
      return false;
    }
    const parsed = parseFenceResult(outcome.job.result);
    if (outcome.kind === 'failed' || !parsed.ok || !parsed.value.fenced) {
      const why = outcome.kind === 'failed' ? outcome.message : parsed.ok ? 'the fence Job did not make the source read-only' : parsed.error;
      abandon(ctx, outcome.kind === 'failed' ? failureReason('fence', outcome.job) : REASONS.FenceRefused, `The write fence did not hold: ${why}`);
      return false;
    }
  } else if (fence.type === 'External') {
    if (!externalFenceHeld(ctx.migration)) {
      ready(ctx, 'False', REASONS.Fencing, `Waiting for writes to the source to stop: set the annotation ${FENCED_ANNOTATION} to "true" once they have`);
      requeueAfter(ctx, REQUEUE.fencing);
      return false;
    }
  } else {
    const name = fence.deployment ?? '';
    const state = scaleDownFence(name, ctx.input.capture?.fenceDeployment, switcherOf(ctx));
    if (state.kind === 'refused') {
      abandon(ctx, REASONS.FenceRefused, `The write fence did not hold: ${state.message}`);
      return false;
    }
    if (state.kind === 'scale') ctx.actions.push(state.action);
    if (state.kind !== 'held') {
      ready(ctx, 'False', REASONS.Fencing, `Fencing writes: ${state.kind === 'scale' ? `scaling Deployment ${name} to 0` : state.message}`);
      requeueAfter(ctx, REQUEUE.fencing);
      return false;
    }
    replicasBefore = state.replicasBefore;
  }
  recordOutcome(ctx.status, 'fence', ctx.runId, 'Succeeded', ctx.now);
  ctx.status.sync = { ...ctx.status.sync, fencedAt: ctx.now, ...(replicasBefore !== undefined ? { fenceReplicas: replicasBefore } : {}) };
  event(ctx, 'Normal', REASONS.Fencing, fence.type === 'External' ? 'Writes to the source are fenced (annotation)'
    : fence.type === 'SourceReadOnly' ? 'Writes to the source are fenced: its database is read-only and the application\'s sessions ended'
      : `Writes to the source are fenced: Deployment ${fence.deployment ?? ''} has no pods left`);
  return true;
}

/** Stops the sync Job: true once neither it nor its pod is left. */
function syncStopped(ctx: Context): boolean | 'failed' {
  const sync = ctx.runJobs.get('sync');
  if (sync?.state === 'Failed') return 'failed';
  if (sync !== undefined) ctx.actions.push({ kind: 'deleteJob', name: sync.name });
  if (entryOf(ctx.status, 'sync')?.outcome === undefined) {
    recordOutcome(ctx.status, 'sync', ctx.runId, 'Succeeded', ctx.now, { message: 'stopped at the write fence' });
  }
  if (sync === undefined && (ctx.input.capture?.syncPods ?? 0) === 0) return true;
  ready(ctx, 'False', REASONS.CatchingUp, 'Writes are fenced; waiting for the sync pod to end (it holds the change stream)');
  requeueAfter(ctx, REQUEUE.fencing);
  return false;
}

/** The catch-up Job: 'passed' once the target holds everything up to the fence and validation passed. */
function caughtUp(ctx: Context): 'passed' | 'stop' {
  if (entryOf(ctx.status, 'catchup')?.outcome === 'Succeeded') return 'passed';
  const outcome = runStep(ctx, 'catchup');
  if (outcome.kind === 'wait') return 'stop';
  const parsed = parseCatchupResult(outcome.job.result);
  const verdict = parsed.ok && !parsed.value.validation.passed;
  const job = outcome.job;
  const detail = { job: job.name, ...(job.exitCode !== undefined ? { exitCode: job.exitCode } : {}) };
  if (!parsed.ok || (outcome.kind === 'failed' && !verdict)) {
    const reason = outcome.kind === 'failed' ? failureReason('catchup', job) : REASONS.JobFailed;
    const why = outcome.kind === 'failed' ? jobFailureMessage('catchup', job) : parsed.ok ? 'the catch-up Job failed' : parsed.error;
    recordOutcome(ctx.status, 'catchup', ctx.runId, 'Failed', ctx.now, { reason, message: why, ...detail });
    return abandon(ctx, reason, why);
  }
  const { validation, tables } = parsed.value;
  ctx.status.validation = { ...validation, checkedAt: ctx.now };
  if (tables.length > 0) recordTables(ctx.status, tables);
  const summary = validation.summary === undefined ? '' : `: ${validation.summary}`;
  if (!validation.passed) {
    const failed = (validation.checks ?? []).filter((check) => !check.passed);
    const reason = verdictReason(failed);
    const message = `Validation behind the write fence failed${summary}`;
    recordOutcome(ctx.status, 'catchup', ctx.runId, 'Failed', ctx.now, { reason, message, ...detail });
    setCond(ctx, 'Validated', 'False', reason, message);
    const lifted = liftFence(ctx);
    event(ctx, 'Warning', REASONS.FenceLifted, `The cutover did not happen: ${message}; ${lifted}; traffic stays on blue`);
    if (ctx.spec.rollback?.onValidationFailure ?? true) {
      if (ctx.spec.cutover?.fence?.type === 'SourceReadOnly') return rollBackOnceUnfenced(ctx);
      // The verdict is the validate entry's, as without capture: phaseOf() finds RollingBack from it.
      recordOutcome(ctx.status, 'validate', ctx.runId, 'Failed', ctx.now, { reason, message, ...detail });
      transition(ctx, 'RollingBack', reason, `${message}; ${lifted}; rolling back`, 'Warning');
      return 'stop';
    }
    fail(ctx, reason, `${message}; ${lifted}; rollback.onValidationFailure is false, the target is left as it is`);
    return 'stop';
  }
  recordOutcome(ctx.status, 'catchup', ctx.runId, 'Succeeded', ctx.now, detail);
  const position = parsed.value.fencePosition;
  setCond(ctx, 'DataCopied', 'True', REASONS.Succeeded, `The target holds every change the source committed before the write fence (position ${position})`);
  setCond(ctx, 'Validated', 'True', REASONS.ValidationPassed, `Validation behind the write fence passed${summary}`);
  return 'passed';
}

/**
 * SourceReadOnly, validation behind the fence failed: the unfence Job runs to its end before the
 * rollback starts, since the rollback forgets the migration's bookkeeping on the target, the fence's
 * record of the setting to restore included (an unfence after it would find nothing to restore and
 * leave the source read-only). Until then the phase stays CuttingOver (no validate verdict yet).
 */
function rollBackOnceUnfenced(ctx: Context): 'stop' {
  unfenceSource(ctx);
  const unfence = entryOf(ctx.status, 'unfence');
  const catchup = entryOf(ctx.status, 'catchup');
  const reason = catchup?.reason === REASONS.ChecksumMismatch ? REASONS.ChecksumMismatch : REASONS.ValidationFailed;
  const message = catchup?.message ?? 'Validation behind the write fence failed';
  if (unfence?.outcome !== 'Succeeded' && unfence?.outcome !== 'Failed') {
    ready(ctx, 'False', REASONS.FenceLifted, `${message}; the unfence Job restores the source's read-only setting, then the target is rolled back`);
    return 'stop';
  }
  const lifted = unfence.outcome === 'Succeeded' ? 'the source database is writable again' : `the source database may still be read-only (${unfence.message ?? 'the unfence Job failed'})`;
  const detail = { ...(catchup?.job !== undefined ? { job: catchup.job } : {}), ...(catchup?.exitCode !== undefined ? { exitCode: catchup.exitCode } : {}) };
  // The verdict is the validate entry's, as without capture: phaseOf() finds RollingBack from it.
  recordOutcome(ctx.status, 'validate', ctx.runId, 'Failed', ctx.now, { reason, message, ...detail });
  transition(ctx, 'RollingBack', reason, `${message}; ${lifted}; rolling back`, 'Warning');
  return 'stop';
}

/** Validation behind a SourceReadOnly fence failed and the rollback waits for the unfence Job (above). */
function awaitingUnfenceBeforeRollback(ctx: Context): boolean {
  return ctx.spec.cutover?.fence?.type === 'SourceReadOnly' && (ctx.spec.rollback?.onValidationFailure ?? true)
    && entryOf(ctx.status, 'catchup')?.outcome === 'Failed' && entryOf(ctx.status, 'validate')?.outcome !== 'Failed';
}

export function cuttingOverCapture(ctx: Context): Next {
  // Before the fence's timeout: the cutover already gave up, the fence is being lifted.
  if (awaitingUnfenceBeforeRollback(ctx)) return rollBackOnceUnfenced(ctx);
  const fence = ctx.spec.cutover?.fence;
  if (fence === undefined) {
    fail(ctx, REASONS.InvalidSpec, 'ChangeCapture needs spec.cutover.fence');
    return 'stop';
  }
  const requested = entryOf(ctx.status, 'fence')?.requestedAt;
  const switchSent = switchMayHaveLanded(ctx);
  const timeout = fence.timeoutSeconds ?? 300;
  // Once the switch is sent it is seen through (it may have landed); before, writes stay blocked only so long.
  if (!switchSent && requested !== undefined && secondsBetween(requested, ctx.now) > timeout) {
    return abandon(ctx, REASONS.FenceLifted, `The cutover did not reach the switch within spec.cutover.fence.timeoutSeconds (${String(timeout)} s)`);
  }
  if (!fenceHeld(ctx)) return 'stop';
  const stopped = syncStopped(ctx);
  if (stopped === 'failed') {
    const sync = ctx.runJobs.get('sync');
    return abandon(ctx, failureReason('sync', sync), sync === undefined ? 'the sync Job failed' : jobFailureMessage('sync', sync));
  }
  if (!stopped) return 'stop';
  if (caughtUp(ctx) !== 'passed') return 'stop';
  const next = cuttingOver(ctx);
  if (ctx.status.phase === 'Succeeded') recordWriteBlocked(ctx);
  return next;
}
