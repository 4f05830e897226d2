// AwaitingApproval (cutover.approval Manual): waits for the approve annotation ("true" or the
// current generation), then the switch.
import { APPROVE_ANNOTATION, REASONS } from '../../api/constants.ts';
import { isApproved } from '../annotations.ts';
import { ready, succeed, transition, isChangeCapture, type Context } from '../context.ts';
import { awaitingApprovalCapture } from './capture-sync.ts';
import type { Next } from './next.ts';
import { needsApproval } from './validating.ts';

export function awaitingApproval(ctx: Context): Next {
  if (isChangeCapture(ctx.spec)) return awaitingApprovalCapture(ctx);
  const cutover = ctx.spec.cutover;
  if (cutover === undefined) {
    succeed(ctx, 'Validation passed; no cutover configured');
    return 'stop';
  }
  if (!needsApproval(cutover) || isApproved(ctx.migration)) {
    transition(ctx, 'CuttingOver', 'CuttingOver', `cutover approved; switching Service ${cutover.service}`);
    return 'continue';
  }
  ready(ctx, 'False', REASONS.AwaitingApproval,
    `Validation passed; waiting for approval: set the annotation ${APPROVE_ANNOTATION} to "true" or "${ctx.generation}"`);
  return 'stop';
}
