// CuttingOver: the Service's selector is switched from fromSelector to toSelector (other labels
// kept), once the preflight, the Service's consent (service-switch.ts) and the readiness gate
// allow; done when the Service shows this migration's switch record with the selector it set. A
// patch not observed within SWITCH_GRACE_SECONDS is sent again (the ledger's switch entry says when).
import { REASONS } from '../../api/constants.ts';
import { event, mayStart, ready, requeueAfter, setCond, succeed, type Context } from '../context.ts';
import { entryOf, recordOutcome, recordRequest, rejectedWait, requestedWithin } from '../ledger.ts';
import { REQUEUE, SWITCH_GRACE_SECONDS } from '../model.ts';
import { selectorText } from '../selectors.ts';
import { switchAction, switcherOf, switchInPlace, switchRefusal } from '../service-switch.ts';
import type { Next } from './next.ts';

export function cuttingOver(ctx: Context): Next {
  const cutover = ctx.spec.cutover;
  if (cutover === undefined) {
    succeed(ctx, 'No cutover configured');
    return 'stop';
  }
  const service = ctx.input.service;
  const who = switcherOf(ctx);
  const done = service === undefined ? undefined : switchInPlace(service, who);
  if (service !== undefined && done !== undefined) {
    const switched = `Service ${cutover.service} switched from ${selectorText(done.before)} to ${selectorText(service.selector)}`;
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
  const refusal = switchRefusal(cutover.service, service, cutover, who, ctx.input.optInSelector);
  if (refusal !== undefined) {
    // Said once (Ready's reason changes once, and its Event with it); the Service is watched, so consent given is seen at once.
    setCond(ctx, 'CutOver', 'False', refusal.reason, refusal.message);
    ready(ctx, 'False', refusal.reason, refusal.message);
    requeueAfter(ctx, REQUEUE.serviceRefused);
    return 'stop';
  }
  const gate = cutover.readinessGate;
  if (gate !== undefined && ctx.input.preflight?.deploymentReady !== true) {
    ready(ctx, 'False', REASONS.DeploymentNotReady, `Waiting for Deployment ${gate.deployment} to be ready before switching Service ${cutover.service}`);
    requeueAfter(ctx, REQUEUE.deploymentNotReady);
    return 'stop';
  }
  // The API server refused the last patch (a policy, RBAC): it is sent again only after the wait,
  // or at once when the spec changed; until then status keeps saying why (recordRejectedSwitch).
  const refused = entryOf(ctx.status, 'switch');
  const wait = rejectedWait(ctx.status, 'switch', ctx.runId, ctx.now, ctx.generation, REQUEUE.jobRejected);
  if (wait !== undefined && refused?.message !== undefined) {
    setCond(ctx, 'CutOver', 'False', REASONS.ServiceSwitchRejected, refused.message);
    ready(ctx, 'False', REASONS.ServiceSwitchRejected, refused.message);
    requeueAfter(ctx, wait);
    return 'stop';
  }
  const action = switchAction(cutover.service, service, cutover, who);
  const message = `Switching Service ${cutover.service} from ${selectorText(service.selector)} to ${selectorText(action.selector)}`;
  if (!requestedWithin(ctx.status, 'switch', ctx.runId, ctx.now, SWITCH_GRACE_SECONDS)) {
    ctx.actions.push(action);
    recordRequest(ctx.status, 'switch', ctx.runId, ctx.now);
  }
  setCond(ctx, 'CutOver', 'False', REASONS.InProgress, message);
  ready(ctx, 'False', REASONS.InProgress, message);
  requeueAfter(ctx, REQUEUE.switching);
  return 'stop';
}
