// RollingBack (validation failed): a Service this migration switched goes back to the selector its
// switch recorded (unless rollback.restoreService is false; one switched by hand or by another
// migration is left alone, once said in status and a Warning Event), and the rollback Job undoes
// the target's schema changes (rollback.schemaAction); RolledBack once both are done.
import { REASONS } from '../../api/constants.ts';
import { event, ready, requeueAfter, setCond, transition, type Context } from '../context.ts';
import { entryOf, inFlight, recordOutcome, recordRequest, requestedWithin } from '../ledger.ts';
import { REQUEUE, SWITCH_GRACE_SECONDS } from '../model.ts';
import { selectorText } from '../selectors.ts';
import { restoreVerdict, switcherOf } from '../service-switch.ts';
import { parseRollbackResult } from '../step-results.ts';
import type { Next } from './next.ts';
import { finishedStep } from './run-step.ts';

/** Rollback's Service part. done: nothing is left to do; note: what was left alone, for the final message. */
function restoreService(ctx: Context): { done: boolean; note?: string } {
  const cutover = ctx.spec.cutover;
  const service = ctx.input.service;
  if (cutover === undefined || ctx.spec.rollback?.restoreService === false) return { done: true };
  const settled = entryOf(ctx.status, 'restore');
  if (settled?.runId === ctx.runId && settled.outcome !== undefined) {
    return { done: true, ...(settled.reason === REASONS.ServiceNotRestored && settled.message !== undefined ? { note: settled.message } : {}) };
  }
  if (service === undefined) return { done: true };
  const verdict = restoreVerdict(cutover.service, service, cutover, switcherOf(ctx));
  if (verdict.kind === 'restore') {
    if (!requestedWithin(ctx.status, 'restore', ctx.runId, ctx.now, SWITCH_GRACE_SECONDS)) {
      ctx.actions.push(verdict.action);
      recordRequest(ctx.status, 'restore', ctx.runId, ctx.now);
    }
    setCond(ctx, 'CutOver', 'Unknown', REASONS.InProgress, `Restoring Service ${cutover.service} to ${selectorText(cutover.fromSelector)}`);
    requeueAfter(ctx, REQUEUE.switching);
    return { done: false };
  }
  if (verdict.kind === 'nothing') {
    // Asked for, and the switch is gone: the restore landed.
    if (inFlight(ctx.status, 'restore', ctx.runId) !== undefined) {
      // The recorded selector contained fromSelector: a switch is made only off that side.
      const restored = `Service ${cutover.service} selects ${selectorText(cutover.fromSelector)} again`;
      recordOutcome(ctx.status, 'restore', ctx.runId, 'Succeeded', ctx.now, { reason: REASONS.ServiceRestored });
      setCond(ctx, 'CutOver', 'False', REASONS.ServiceRestored, restored);
      event(ctx, 'Normal', REASONS.ServiceRestored, restored);
    }
    return { done: true };
  }
  // Not this migration's switch: never flipped back. Settled in the ledger, so it is said once.
  recordOutcome(ctx.status, 'restore', ctx.runId, 'Succeeded', ctx.now, { reason: REASONS.ServiceNotRestored, message: verdict.message });
  setCond(ctx, 'CutOver', 'False', REASONS.ServiceNotRestored, verdict.message);
  event(ctx, 'Warning', REASONS.ServiceNotRestored, `${verdict.message} (rollback)`);
  return { done: true, note: verdict.message };
}

export function rollingBack(ctx: Context): Next {
  const service = restoreService(ctx);
  const action = ctx.spec.rollback?.schemaAction ?? 'DownMigrations';
  if (action !== 'None') {
    const result = finishedStep(ctx, 'rollback', parseRollbackResult);
    if (result === undefined) return 'stop';
    if (result.version !== undefined) ctx.status.schema = { ...ctx.status.schema, version: result.version };
  }
  if (!service.done) {
    const name = ctx.spec.cutover?.service ?? '';
    ready(ctx, 'False', REASONS.InProgress, `Rolling back: restoring Service ${name}`);
    return 'stop';
  }
  const what = action === 'None' ? 'the target was left as it is (schemaAction None)' : `target rolled back (${action})`;
  const validation = entryOf(ctx.status, 'validate')?.message ?? 'Validation failed';
  const note = service.note === undefined ? '' : `; ${service.note}`;
  setCond(ctx, 'RolledBack', 'True', REASONS.RolledBack, `Rolled back: ${what}${note}`);
  transition(ctx, 'RolledBack', REASONS.RolledBack, `${validation}; ${what}${note}`, 'Warning');
  ctx.status.completedAt = ctx.now;
  ready(ctx, 'False', REASONS.RolledBack, `${validation}; rolled back: ${what}${note}`);
  return 'stop';
}
