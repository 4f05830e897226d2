// ChangeCapture before the cutover (Trickle following the source's change log): the sync Job
// streams the source's changes to the target from the copy's snapshot on, through Syncing and
// AwaitingApproval; status.sync says how far behind it is (the pod's lag report, read from the
// target). The cutover is cleared to go once the lag is under spec.cutover.maxLagSeconds (and,
// when Manual, approved) and everything the cutover needs is there (the fence's Deployment and its
// consent, the Service's consent, the readiness gate): checked before the fence, so that writes are
// never blocked for something a person must fix first. Then CuttingOver (capture-cutover.ts).
import { APPROVE_ANNOTATION, FENCED_ANNOTATION, REASONS, type Reason } from '../../api/constants.ts';
import { STATUS_LIMITS } from '../../api/datamigration-schema.ts';
import { isApproved } from '../annotations.ts';
import { bound, fail, mayStart, ready, requeueAfter, transition, type Context } from '../context.ts';
import { externalFenceHeld, scaleDownRefusal } from '../fence.ts';
import { recordOutcome, recordRequest, secondsBetween } from '../ledger.ts';
import { REQUEUE, type CaptureLag } from '../model.ts';
import { switcherOf, switchRefusal } from '../service-switch.ts';
import { parseValidationResult } from '../step-results.ts';
import type { Next } from './next.ts';
import { failureReason, requestJob, runStep, stepFailed } from './run-step.ts';
import { needsApproval, validationFailed } from './validating.ts';

/** A lag report older than this is not a reason to fence (the sync pod may be stuck). */
export const LAG_STALE_SECONDS = 30;

export function lagText(ms: number): string {
  return ms < 1000 ? `${String(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/** A count in the CRD's bounds (an int64, at least 0): the report sits in a table the target's users can write. */
const count = (value: number): number => (Number.isFinite(value) ? Math.min(Math.max(0, Math.trunc(value)), Number.MAX_SAFE_INTEGER) : 0);

/**
 * The sync pod's last report, in bounds; undefined before the first, or when it is not one (a
 * sampledAt that is no time, a negative lag). The CRD would refuse every status write with a value out of its
 * bounds (422, for ever), and the report is read from the target, whose users can write it.
 */
function lagOf(ctx: Pick<Context, 'input'>): CaptureLag | undefined {
  const lag = ctx.input.capture?.lag;
  if (lag === undefined) return undefined;
  const sampled = Date.parse(lag.sampledAt);
  // A lag that is no lag (negative, not finite) never clears the fence.
  if (Number.isNaN(sampled) || !Number.isFinite(lag.lagMs) || lag.lagMs < 0) return undefined;
  const validatedAt = lag.validatedAt === undefined ? NaN : Date.parse(lag.validatedAt);
  return {
    appliedPosition: bound(lag.appliedPosition, STATUS_LIMITS.figure), lagMs: count(lag.lagMs), pendingBytes: count(lag.pendingBytes),
    transactions: count(lag.transactions), changes: count(lag.changes), sampledAt: new Date(sampled).toISOString(),
    ...(lag.validatedPosition !== undefined && !Number.isNaN(validatedAt)
      ? { validatedPosition: bound(lag.validatedPosition, STATUS_LIMITS.figure), validatedAt: new Date(validatedAt).toISOString() } : {}),
  };
}

/** A report that is no reason to fence: none, or not fresh (older than LAG_STALE_SECONDS, or from the future). */
function staleLag(lag: CaptureLag | undefined, now: string): boolean {
  if (lag === undefined) return true;
  const age = secondsBetween(lag.sampledAt, now);
  return age > LAG_STALE_SECONDS || age < -LAG_STALE_SECONDS;
}

/** The sync pod's last report into status.sync; undefined before the first. */
function recordLag(ctx: Context): CaptureLag | undefined {
  const lag = lagOf(ctx);
  if (lag === undefined) return undefined;
  ctx.status.sync = {
    ...ctx.status.sync, lagMs: lag.lagMs, lag: lagText(lag.lagMs), pendingBytes: lag.pendingBytes, appliedPosition: lag.appliedPosition,
    transactions: lag.transactions, changes: lag.changes, sampledAt: lag.sampledAt,
    ...(lag.validatedPosition !== undefined ? { validatedPosition: lag.validatedPosition, validatedAt: lag.validatedAt } : {}),
  };
  return lag;
}

/** Whether the sync Job runs; otherwise this decision settled here (it is starting, or it failed). */
function syncRunning(ctx: Context): boolean {
  const outcome = runStep(ctx, 'sync');
  if (outcome.kind === 'failed') {
    // Its validation at a cut found the target differs (exit 4, the validation's result): a verdict
    // like the validate Job's, so a rollback, not a failed Job. No fence is up yet.
    const parsed = parseValidationResult(outcome.job.result);
    if (parsed.ok && !parsed.value.validation.passed) {
      recordOutcome(ctx.status, 'sync', ctx.runId, 'Failed', ctx.now, {
        reason: REASONS.ValidationFailed, message: 'its validation at a cut found that the target differs', job: outcome.job.name,
      });
      validationFailed(ctx, parsed.value, outcome.job, 'Validation while syncing (at a cut)');
      return false;
    }
    stepFailed(ctx, 'sync', outcome.message, failureReason('sync', outcome.job), outcome.job);
    return false;
  }
  if (outcome.kind === 'done') {
    stepFailed(ctx, 'sync', `the sync Job ${outcome.job.name} ended before the cutover; the change stream must run until the write fence`, REASONS.JobFailed, outcome.job);
    return false;
  }
  return ctx.runJobs.get('sync')?.state === 'Running';
}

export function syncingCapture(ctx: Context): Next {
  // Manual: the stream runs in AwaitingApproval (phaseOf() puts the machine there once the copy is done).
  if (needsApproval(ctx.spec.cutover)) {
    transition(ctx, 'AwaitingApproval', REASONS.AwaitingApproval, 'the change stream starts; the cutover waits for approval');
    return 'continue';
  }
  if (!syncRunning(ctx)) return 'stop';
  recordLag(ctx);
  return clearForFence(ctx);
}

export function awaitingApprovalCapture(ctx: Context): Next {
  if (!syncRunning(ctx)) return 'stop';
  const lag = recordLag(ctx);
  if (!isApproved(ctx.migration)) {
    const behind = lag === undefined ? 'no lag report yet' : `lag ${lagText(lag.lagMs)}`;
    ready(ctx, 'False', REASONS.AwaitingApproval, `Syncing (${behind}); waiting for approval: set the annotation ${APPROVE_ANNOTATION} to "true" or "${String(ctx.generation)}"`);
    requeueAfter(ctx, REQUEUE.syncLag);
    return 'stop';
  }
  return clearForFence(ctx);
}

/** Whether the cutover may start now, judged on the lag alone (preflightNeeded asks it: the checks after it need the preflight). */
export function lagAllowsFence(ctx: Pick<Context, 'input' | 'spec' | 'now'>): boolean {
  const lag = lagOf(ctx);
  const max = (ctx.spec.cutover?.maxLagSeconds ?? 5) * 1000;
  return lag !== undefined && !staleLag(lag, ctx.now) && lag.lagMs <= max;
}

/** What would stop the cutover after the fence, found before it: the fence's Deployment, the Service, the gate. */
function cutoverRefusal(ctx: Context): { reason: Reason; message: string } | undefined {
  const cutover = ctx.spec.cutover;
  if (cutover === undefined) return undefined;
  const fence = cutover.fence;
  const who = switcherOf(ctx);
  if (fence?.type === 'ScaleDown') {
    const refusal = scaleDownRefusal(fence.deployment ?? '', ctx.input.capture?.fenceDeployment, who);
    if (refusal !== undefined) return { reason: REASONS.FenceRefused, message: `The write fence cannot go up: ${refusal}` };
  }
  // A claim made before the cutover asked for it (set early, or left from an earlier run) says
  // nothing about the writes that follow: it must be made after the fence is asked for.
  if (fence?.type === 'External' && externalFenceHeld(ctx.migration)) {
    return { reason: REASONS.FenceRefused, message: `The write fence cannot go up: the annotation ${FENCED_ANNOTATION} is set before the cutover asked for the fence; remove it, and set it to "true" once writes have stopped after the cutover asks` };
  }
  const service = ctx.input.service;
  if (service === undefined) return { reason: REASONS.ServiceNotFound, message: `Service ${cutover.service} not found` };
  const switchRefused = switchRefusal(cutover.service, service, cutover, who, ctx.input.optInSelector);
  if (switchRefused !== undefined) return switchRefused;
  const gate = cutover.readinessGate;
  if (gate !== undefined && ctx.input.preflight?.deploymentReady !== true) {
    return { reason: REASONS.DeploymentNotReady, message: `Waiting for Deployment ${gate.deployment} to be ready before fencing writes and switching Service ${cutover.service}` };
  }
  return undefined;
}

function clearForFence(ctx: Context): Next {
  const cutover = ctx.spec.cutover;
  const fence = cutover?.fence;
  if (cutover === undefined || fence === undefined) {
    // The CRD requires both for ChangeCapture; a status from before that rule still ends clearly.
    fail(ctx, REASONS.InvalidSpec, 'ChangeCapture needs spec.cutover with a fence: the change stream runs until writes are fenced');
    return 'stop';
  }
  requeueAfter(ctx, REQUEUE.syncLag);
  const lag = lagOf(ctx);
  const job = ctx.runJobs.get('sync')?.name ?? '';
  const max = (cutover.maxLagSeconds ?? 5) * 1000;
  if (lag === undefined || staleLag(lag, ctx.now)) {
    const why = lag === undefined ? 'waiting for its first lag report' : `its last lag report is from ${lag.sampledAt}; waiting for a newer one`;
    ready(ctx, 'False', REASONS.Syncing, `The sync Job ${job} streams the source's changes; ${why}`);
    return 'stop';
  }
  if (lag.lagMs > max) {
    // The same reason as a stream under the bound: a lag that hovers around it must not flood Events (one per reason change).
    ready(ctx, 'False', REASONS.Syncing, `Syncing: the target is ${lagText(lag.lagMs)} behind the source, over spec.cutover.maxLagSeconds (${lagText(max)}); the write fence waits`);
    return 'stop';
  }
  if (!mayStart(ctx, 'the write fence')) return 'stop';
  const refusal = cutoverRefusal(ctx);
  if (refusal !== undefined) {
    ready(ctx, 'False', refusal.reason, refusal.message);
    return 'stop';
  }
  // The fence's entry clears the cutover to go; SourceReadOnly's is its Job's request.
  if (fence.type === 'SourceReadOnly') requestJob(ctx, 'fence');
  else recordRequest(ctx.status, 'fence', ctx.runId, ctx.now);
  const how = fence.type === 'ScaleDown' ? `scaling Deployment ${fence.deployment ?? ''} to 0`
    : fence.type === 'SourceReadOnly' ? 'making the source database read-only' : 'waiting for the annotation that says writes stopped';
  transition(ctx, 'CuttingOver', REASONS.Fencing, `the target is ${lagText(lag.lagMs)} behind the source; fencing writes (${how})`);
  return 'continue';
}
