// CuttingOver: the Service's selector is switched from fromSelector to toSelector (other labels
// kept), once the preflight and the readiness gate allow; done when the switch is observed. A
// patch not observed within SWITCH_GRACE_SECONDS is sent again (the ledger's switch entry says when).
import { REASONS } from '../../api/constants.ts';
import type { CutoverSpec } from '../../api/types.generated.ts';
import { event, mayStart, ready, requeueAfter, setCond, succeed, type Context } from '../context.ts';
import { recordOutcome, recordRequest, requestedWithin } from '../ledger.ts';
import { REQUEUE, SWITCH_GRACE_SECONDS } from '../model.ts';
import { replaceSelector, selectorText, selectsSide } from '../selectors.ts';
import type { Next } from './next.ts';

/**
 * The selector the Service had before the switch: the one recorded in status.activeSelector before
 * this decision when it was still the `from` side, else the switch undone (`to` labels back to `from`).
 */
function previousSelector(ctx: Context, current: Record<string, string>, cutover: CutoverSpec): Record<string, string> {
  const recorded = ctx.migration.status?.activeSelector;
  if (recorded !== undefined && !selectsSide(recorded, cutover.toSelector, cutover.fromSelector)) return recorded;
  return replaceSelector(current, cutover.toSelector, cutover.fromSelector);
}

export function cuttingOver(ctx: Context): Next {
  const cutover = ctx.spec.cutover;
  if (cutover === undefined) {
    succeed(ctx, 'No cutover configured');
    return 'stop';
  }
  const service = ctx.input.service;
  if (service !== undefined && selectsSide(service.selector, cutover.toSelector, cutover.fromSelector)) {
    const switched = `Service ${cutover.service} switched from ${selectorText(previousSelector(ctx, service.selector, cutover))} to ${selectorText(service.selector)}`;
    recordOutcome(ctx.status, 'switch', ctx.runId, 'Succeeded', ctx.now);
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
  if (!requestedWithin(ctx.status, 'switch', ctx.runId, ctx.now, SWITCH_GRACE_SECONDS)) {
    ctx.actions.push({ kind: 'patchServiceSelector', service: cutover.service, selector });
    recordRequest(ctx.status, 'switch', ctx.runId, ctx.now);
  }
  setCond(ctx, 'CutOver', 'False', REASONS.InProgress, message);
  ready(ctx, 'False', REASONS.InProgress, message);
  requeueAfter(ctx, REQUEUE.switching);
  return 'stop';
}
