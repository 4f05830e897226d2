// Abort (the annotation dataops.dev/abort "true" or the current generation) on a non-terminal
// migration: this run's running Job is deleted (and one asked for but not yet seen, by its
// deterministic name), nothing starts, a Service this migration switched goes back to the selector
// its switch recorded unless rollback.restoreService is false (a Service switched by hand or by
// another migration is left alone, and status says so), the ledger marks the step Aborted (a
// retry resumes there), → Failed. The rollback Job is not run: the target is left as it is. A
// switch sent moments ago and not yet seen is waited for (SWITCH_GRACE_SECONDS) before deciding.
// The reconciler carries out the actions before it writes the status.
import { ABORT_ANNOTATION, REASONS, RETRY_ANNOTATION } from '../api/constants.ts';
import type { LedgerStep } from '../api/constants.ts';
import { event, fail, PHASE_STEPS, ready, requeueAfter, setCond, STEP_TITLES, type Context } from './context.ts';
import { recordOutcome, requestedWithin, STEP_MARKERS } from './ledger.ts';
import { REQUEUE, SWITCH_GRACE_SECONDS, type EventAction, type PatchServiceSelectorAction } from './model.ts';
import { requestedNotSeen } from './phases/run-step.ts';
import { restoreVerdict, switcherOf } from './service-switch.ts';
import { selectorText } from './selectors.ts';
import { stepJobName } from './job-builder.ts';

type AbortService =
  | { kind: 'none' }
  /** A switch asked for moments ago is not in the cache yet: it may have landed (and be ours to restore). */
  | { kind: 'wait'; message: string }
  | { kind: 'done'; message: string; restore?: PatchServiceSelectorAction; say?: EventAction };

/** Abort's Service part: undo this migration's own switch, and say what was left alone. */
function abortService(ctx: Context): AbortService {
  const cutover = ctx.spec.cutover;
  const service = ctx.input.service;
  if (cutover === undefined || service === undefined) return { kind: 'none' };
  const verdict = restoreVerdict(cutover.service, service, cutover, switcherOf(ctx));
  if (verdict.kind === 'nothing') {
    if (ctx.status.phase === 'CuttingOver' && requestedWithin(ctx.status, 'switch', ctx.runId, ctx.now, SWITCH_GRACE_SECONDS)) {
      return { kind: 'wait', message: `Aborting: waiting up to ${String(SWITCH_GRACE_SECONDS)} s to see whether the switch of Service ${cutover.service} sent moments ago landed, so that it can be undone` };
    }
    return { kind: 'none' };
  }
  if (verdict.kind === 'leave') {
    return { kind: 'done', message: verdict.message, say: { kind: 'event', type: 'Warning', reason: REASONS.ServiceNotRestored, message: `${verdict.message} (abort)` } };
  }
  if (ctx.spec.rollback?.restoreService === false) {
    return { kind: 'done', message: `Service ${cutover.service} left on ${selectorText(service.selector)} (rollback.restoreService is false)` };
  }
  return {
    kind: 'done', message: verdict.message, restore: verdict.action,
    say: { kind: 'event', type: 'Normal', reason: REASONS.ServiceRestored, message: `${verdict.message} (abort)` },
  };
}

export function abort(ctx: Context): void {
  const phase = ctx.status.phase ?? 'Pending';
  const service = abortService(ctx);
  if (service.kind === 'wait') {
    ready(ctx, 'False', REASONS.InProgress, service.message);
    requeueAfter(ctx, REQUEUE.switching);
    return;
  }
  const deleted = [...ctx.runJobs.values()].filter((job) => job.state === 'Running').map((job) => job.name);
  const step = PHASE_STEPS[phase];
  // Asked for by an earlier reconcile, not in the cache yet: delete it by its deterministic name (absent is fine).
  if (step !== undefined && requestedNotSeen(ctx, step)) deleted.push(stepJobName(ctx.migration.metadata?.name ?? '', ctx.runId, step));
  for (const name of deleted) ctx.actions.push({ kind: 'deleteJob', name });
  if (service.kind === 'done' && service.restore !== undefined) ctx.actions.push(service.restore);
  if (service.kind === 'done' && service.say !== undefined) event(ctx, service.say.type, service.say.reason, service.say.message);
  const serviceSaid = service.kind === 'done' ? service.message : undefined;
  const done = [
    ...(deleted.length > 0 ? [`deleted Job ${deleted.join(', ')}`] : []),
    ...(serviceSaid === undefined ? [] : [serviceSaid]),
  ];
  const what = done.length > 0 ? done.join('; ') : 'nothing was running';
  const cutoverPhase = ctx.spec.cutover !== undefined && (phase === 'AwaitingApproval' || phase === 'CuttingOver');
  // Where the run stopped, for a retry: the phase's step, the cutover, or the start itself.
  const stopped: LedgerStep = step ?? (cutoverPhase ? 'switch' : 'start');
  recordOutcome(ctx.status, stopped, ctx.runId, 'Aborted', ctx.now, { reason: REASONS.Aborted });
  if (step !== undefined) {
    const marker = STEP_MARKERS[step];
    setCond(ctx, marker.type, marker.status, REASONS.Aborted, `The ${STEP_TITLES[step]} step of run ${ctx.runId} was aborted`);
  }
  if (cutoverPhase) {
    setCond(ctx, 'CutOver', 'False', REASONS.Aborted, `The cutover was aborted${serviceSaid === undefined ? '' : `: ${serviceSaid}`}`);
  } else if (service.kind === 'done' && service.restore !== undefined) {
    setCond(ctx, 'CutOver', 'False', REASONS.ServiceRestored, service.message);
  }
  fail(ctx, REASONS.Aborted,
    `Aborted (annotation ${ABORT_ANNOTATION}) during ${phase}: ${what}; no rollback Job runs, the target is left as it is. `
    + `To resume, remove the annotation and set ${RETRY_ANNOTATION} to a new token`);
}
