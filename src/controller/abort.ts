// Abort (the annotation dataops.dev/abort "true" or the current generation) on a non-terminal
// migration: this run's running Job is deleted (and one asked for but not yet seen, by its
// deterministic name), nothing starts, a Service that was switched (or whose switch was asked for)
// goes back to fromSelector unless rollback.restoreService is false, the ledger marks the step
// Aborted (a retry resumes there), → Failed. The rollback Job is not run: the target is left as
// it is. The reconciler carries out the actions before it writes the status.
import { ABORT_ANNOTATION, REASONS, RETRY_ANNOTATION } from '../api/constants.ts';
import type { LedgerStep } from '../api/constants.ts';
import { event, fail, PHASE_STEPS, setCond, STEP_TITLES, type Context } from './context.ts';
import { inFlight, recordOutcome, STEP_MARKERS } from './ledger.ts';
import { requestedNotSeen } from './phases/run-step.ts';
import { replaceSelector, selectorText, selectsSide } from './selectors.ts';
import { stepJobName } from './job-builder.ts';

/** Abort's Service part: point a switched Service (or one whose switch was just asked for) back at fromSelector. */
function abortService(ctx: Context): string | undefined {
  const cutover = ctx.spec.cutover;
  const service = ctx.input.service;
  if (cutover === undefined || service === undefined) return undefined;
  const switched = selectsSide(service.selector, cutover.toSelector, cutover.fromSelector);
  // A switch patched by an earlier reconcile may not be in the informer cache yet: restore anyway.
  const switchRequested = ctx.status.phase === 'CuttingOver' && inFlight(ctx.status, 'switch', ctx.runId) !== undefined;
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

export function abort(ctx: Context): void {
  const phase = ctx.status.phase ?? 'Pending';
  const deleted = [...ctx.runJobs.values()].filter((job) => job.state === 'Running').map((job) => job.name);
  const step = PHASE_STEPS[phase];
  // Asked for by an earlier reconcile, not in the cache yet: delete it by its deterministic name (absent is fine).
  if (step !== undefined && requestedNotSeen(ctx, step)) deleted.push(stepJobName(ctx.migration.metadata?.name ?? '', ctx.runId, step));
  for (const name of deleted) ctx.actions.push({ kind: 'deleteJob', name });
  const service = abortService(ctx);
  const done = [
    ...(deleted.length > 0 ? [`deleted Job ${deleted.join(', ')}`] : []),
    ...(service === undefined ? [] : [service]),
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
    setCond(ctx, 'CutOver', 'False', REASONS.Aborted, `The cutover was aborted${service === undefined ? '' : `: ${service}`}`);
  } else if (service !== undefined && ctx.actions.some((action) => action.kind === 'patchServiceSelector')) {
    setCond(ctx, 'CutOver', 'False', REASONS.ServiceRestored, service);
  }
  fail(ctx, REASONS.Aborted,
    `Aborted (annotation ${ABORT_ANNOTATION}) during ${phase}: ${what}; no rollback Job runs, the target is left as it is. `
    + `To resume, remove the annotation and set ${RETRY_ANNOTATION} to a new token`);
}
