// ChangeCapture after the run ended (Succeeded, Failed, RolledBack, aborted): what the capture holds
// is given back. A PostgreSQL slot retains WAL until dropped (the source's disk fills), so the
// release Job (`step release`) runs in every ending once a copy was asked for (the copy creates the
// capture), and its outcome is said (status.sync.released, an Event; what could not be dropped,
// with the statement to drop it by hand). A fence left up by a cutover that did not switch is
// lifted: ScaleDown's (fence.ts), if nobody scaled the Deployment since; SourceReadOnly's by the
// unfence Job, which restores the setting the fence recorded. These are the only things a
// finished migration still does; they never write the target or switch a Service.
import { REASONS } from '../api/constants.ts';
import { event, isChangeCapture, requeueAfter, type Context } from './context.ts';
import { liftScaleDown } from './fence.ts';
import { entryOf, recordOutcome, recordRequest, rejectedWait, requestedWithin, secondsBetween } from './ledger.ts';
import type { ObservedJob } from './model.ts';
import { JOB_APPEAR_GRACE_SECONDS, REQUEUE } from './model.ts';
import { jobFailureMessage, requestJob } from './phases/run-step.ts';
import { switcherOf } from './service-switch.ts';
import { parseReleaseResult, parseUnfenceResult } from './step-results.ts';

/**
 * status.sync.writeBlockedMs, once: from the fence's request (blue's pods stop taking requests as
 * they end; the source turns read-only) to now, when the switch is seen in place or the fence is lifted.
 */
export function recordWriteBlocked(ctx: Context): void {
  const fenced = entryOf(ctx.status, 'fence')?.requestedAt;
  if (fenced === undefined || ctx.status.sync?.writeBlockedMs !== undefined) return;
  ctx.status.sync = { ...ctx.status.sync, writeBlockedMs: Math.max(0, Math.round(secondsBetween(fenced, ctx.now) * 1000)) };
}

/** Whether a finished migration still has capture resources or a fence to give back. */
export function cleanupPending(ctx: Pick<Context, 'spec' | 'status'>): boolean {
  if (!isChangeCapture(ctx.spec) || entryOf(ctx.status, 'copy') === undefined) return false;
  const release = entryOf(ctx.status, 'release')?.outcome;
  return (release !== 'Succeeded' && release !== 'Failed') || fenceLeftUp(ctx);
}

function fenceLeftUp(ctx: Pick<Context, 'spec' | 'status'>): boolean {
  const type = ctx.spec.cutover?.fence?.type;
  if ((type !== 'ScaleDown' && type !== 'SourceReadOnly') || entryOf(ctx.status, 'fence') === undefined) return false;
  if (entryOf(ctx.status, 'switch')?.outcome === 'Succeeded') return false;
  const unfence = entryOf(ctx.status, 'unfence')?.outcome;
  return unfence !== 'Succeeded' && unfence !== 'Failed';
}

function liftLeftFence(ctx: Context): void {
  if (!fenceLeftUp(ctx)) return;
  if (ctx.spec.cutover?.fence?.type === 'SourceReadOnly') {
    unfenceSource(ctx);
    return;
  }
  const name = ctx.spec.cutover?.fence?.deployment ?? '';
  const lift = liftScaleDown(name, ctx.input.capture?.fenceDeployment, switcherOf(ctx));
  if (lift.kind === 'scale') {
    ctx.actions.push(lift.action);
    recordRequest(ctx.status, 'unfence', ctx.runId, ctx.now);
    requeueAfter(ctx, REQUEUE.fencing);
    return;
  }
  if (lift.kind === 'leave') {
    recordOutcome(ctx.status, 'unfence', ctx.runId, 'Failed', ctx.now, { reason: REASONS.FenceLifted, message: lift.message });
    event(ctx, 'Warning', REASONS.FenceLifted, `The write fence was not lifted: ${lift.message}`);
    return;
  }
  recordOutcome(ctx.status, 'unfence', ctx.runId, 'Succeeded', ctx.now);
}

/** A Job of the run's end (unfence, release): the finished Job, or undefined while it is asked for or runs. */
function endingJob(ctx: Context, step: 'unfence' | 'release'): ObservedJob | undefined {
  const job = ctx.runJobs.get(step);
  if (job === undefined) {
    if (requestedWithin(ctx.status, step, ctx.runId, ctx.now, JOB_APPEAR_GRACE_SECONDS)) {
      requeueAfter(ctx, REQUEUE.jobStarting);
      return undefined;
    }
    // Refused moments ago (a quota, a policy): asked for again after the wait, not at every status write.
    const rejectedFor = rejectedWait(ctx.status, step, ctx.runId, ctx.now, ctx.generation, REQUEUE.jobRejected);
    if (rejectedFor !== undefined) {
      requeueAfter(ctx, rejectedFor);
      return undefined;
    }
    requestJob(ctx, step);
    requeueAfter(ctx, REQUEUE.jobStarting);
    return undefined;
  }
  if (job.state === 'Running') {
    requeueAfter(ctx, REQUEUE.jobRunning);
    return undefined;
  }
  return job;
}

/**
 * SourceReadOnly left up: the unfence Job restores the setting the fence recorded, once no fence
 * Job runs any more (one still running could make the source read-only again after it). Also run
 * before a rollback behind the fence (phases/capture-cutover.ts): the rollback forgets the record.
 */
export function unfenceSource(ctx: Context): void {
  const fenceJob = ctx.runJobs.get('fence');
  if (fenceJob?.state === 'Running') {
    ctx.actions.push({ kind: 'deleteJob', name: fenceJob.name });
    requeueAfter(ctx, REQUEUE.fencing);
    return;
  }
  const job = endingJob(ctx, 'unfence');
  if (job === undefined) return;
  const parsed = parseUnfenceResult(job.result);
  if (job.state === 'Succeeded' && parsed.ok && parsed.value.unfenced) {
    recordOutcome(ctx.status, 'unfence', ctx.runId, 'Succeeded', ctx.now, { job: job.name });
    recordWriteBlocked(ctx);
    event(ctx, 'Normal', REASONS.FenceLifted, `The source database is writable again (${parsed.value.restored ?? 'restored'})`);
    return;
  }
  const why = job.state === 'Failed' ? jobFailureMessage('unfence', job) : parsed.ok ? 'the unfence Job did not restore the setting' : parsed.error;
  recordOutcome(ctx.status, 'unfence', ctx.runId, 'Failed', ctx.now, { reason: REASONS.FenceLifted, message: why, job: job.name });
  event(ctx, 'Warning', REASONS.FenceLifted, `The source database may still be read-only: ${why}; run \`dmctl step unfence\` with this manifest, or restore the setting by hand`);
}

function release(ctx: Context): void {
  const entry = entryOf(ctx.status, 'release');
  if (entry?.outcome === 'Succeeded' || entry?.outcome === 'Failed') return;
  const job = endingJob(ctx, 'release');
  if (job === undefined) return;
  const parsed = parseReleaseResult(job.result);
  const released = job.state === 'Succeeded' && parsed.ok && parsed.value.released;
  ctx.status.sync = { ...ctx.status.sync, released };
  if (released) {
    recordOutcome(ctx.status, 'release', ctx.runId, 'Succeeded', ctx.now, { job: job.name });
    event(ctx, 'Normal', REASONS.CaptureReleased, 'The change capture is released: nothing of it is left on the source');
    return;
  }
  const problems = parsed.ok ? (parsed.value.problems ?? []).join('; ') : '';
  const why = problems !== '' ? problems : job.state === 'Failed' ? jobFailureMessage('release', job) : parsed.ok ? 'the release Job reported it did not release the capture' : parsed.error;
  recordOutcome(ctx.status, 'release', ctx.runId, 'Failed', ctx.now, { reason: REASONS.CaptureNotReleased, message: why, job: job.name });
  event(ctx, 'Warning', REASONS.CaptureNotReleased, `The change capture could not be released; drop it by hand: ${why}`);
}

/**
 * A run that ended while its sync or catch-up Job still ran (the fence lifted by a timeout, a
 * failure before the fence): the Job goes first. Its pod would go on writing the target of a
 * finished migration (a binlog stream for ever: the sync has no deadline), and on PostgreSQL it
 * holds the slot the release drops (the release ends its walsender; the Job's next pod would fail).
 */
function streamStopped(ctx: Context): boolean {
  const running = (['sync', 'catchup'] as const).map((step) => ctx.runJobs.get(step)).filter((job) => job?.state === 'Running');
  for (const job of running) if (job !== undefined) ctx.actions.push({ kind: 'deleteJob', name: job.name });
  if (running.length === 0) return true;
  requeueAfter(ctx, REQUEUE.fencing);
  return false;
}

/** A finished ChangeCapture migration: lift a fence left up, stop the stream, release the capture. */
export function captureCleanup(ctx: Context): void {
  if (!cleanupPending(ctx)) return;
  liftLeftFence(ctx);
  if (!streamStopped(ctx)) return;
  release(ctx);
}
