// RollingBack (validation failed): the Service goes back to fromSelector (unless
// rollback.restoreService is false) and the rollback Job undoes the target's schema changes
// (rollback.schemaAction); RolledBack once both are done.
import { REASONS } from '../../api/constants.ts';
import { event, ready, requeueAfter, setCond, transition, type Context } from '../context.ts';
import { entryOf, inFlight, recordOutcome, recordRequest, requestedWithin } from '../ledger.ts';
import { REQUEUE, SWITCH_GRACE_SECONDS } from '../model.ts';
import { replaceSelector, selectorText, selectsSide } from '../selectors.ts';
import { parseRollbackResult } from '../step-results.ts';
import type { Next } from './next.ts';
import { finishedStep } from './run-step.ts';

/** Rollback's Service part: point it back at fromSelector if it selects toSelector. True when nothing is left to do. */
function restoreService(ctx: Context): boolean {
  const cutover = ctx.spec.cutover;
  const service = ctx.input.service;
  if (cutover === undefined || service === undefined || ctx.spec.rollback?.restoreService === false) return true;
  const source = selectorText(cutover.fromSelector);
  if (selectsSide(service.selector, cutover.toSelector, cutover.fromSelector)) {
    if (!requestedWithin(ctx.status, 'restore', ctx.runId, ctx.now, SWITCH_GRACE_SECONDS)) {
      ctx.actions.push({ kind: 'patchServiceSelector', service: cutover.service, selector: replaceSelector(service.selector, cutover.toSelector, cutover.fromSelector) });
      recordRequest(ctx.status, 'restore', ctx.runId, ctx.now);
    }
    setCond(ctx, 'CutOver', 'Unknown', REASONS.InProgress, `Restoring Service ${cutover.service} to ${source}`);
    requeueAfter(ctx, REQUEUE.switching);
    return false;
  }
  if (inFlight(ctx.status, 'restore', ctx.runId) !== undefined) {
    recordOutcome(ctx.status, 'restore', ctx.runId, 'Succeeded', ctx.now);
    setCond(ctx, 'CutOver', 'False', REASONS.ServiceRestored, `Service ${cutover.service} selects ${source} again`);
    event(ctx, 'Normal', REASONS.ServiceRestored, `Service ${cutover.service} selects ${source} again`);
  }
  return true;
}

export function rollingBack(ctx: Context): Next {
  const serviceDone = restoreService(ctx);
  const action = ctx.spec.rollback?.schemaAction ?? 'DownMigrations';
  if (action !== 'None') {
    const result = finishedStep(ctx, 'rollback', parseRollbackResult);
    if (result === undefined) return 'stop';
    if (result.version !== undefined) ctx.status.schema = { ...ctx.status.schema, version: result.version };
  }
  if (!serviceDone) {
    const name = ctx.spec.cutover?.service ?? '';
    ready(ctx, 'False', REASONS.InProgress, `Rolling back: restoring Service ${name}`);
    return 'stop';
  }
  const what = action === 'None' ? 'the target was left as it is (schemaAction None)' : `target rolled back (${action})`;
  const validation = entryOf(ctx.status, 'validate')?.message ?? 'Validation failed';
  setCond(ctx, 'RolledBack', 'True', REASONS.RolledBack, `Rolled back: ${what}`);
  transition(ctx, 'RolledBack', REASONS.RolledBack, `${validation}; ${what}`, 'Warning');
  ctx.status.completedAt = ctx.now;
  ready(ctx, 'False', REASONS.RolledBack, `${validation}; rolled back: ${what}`);
  return 'stop';
}
