// The phase handlers, one module each; decide() runs the current phase's handler until one settles.
import type { Phase } from '../../api/constants.ts';
import { awaitingApproval } from './awaiting-approval.ts';
import { copying } from './copying.ts';
import { isChangeCapture, type Context } from '../context.ts';
import { cuttingOverCapture } from './capture-cutover.ts';
import { cuttingOver } from './cutting-over.ts';
import type { PhaseHandler } from './next.ts';
import { pending } from './pending.ts';
import { rollingBack } from './rolling-back.ts';
import { schemaMigrating } from './schema-migrating.ts';
import { syncing } from './syncing.ts';
import { validating } from './validating.ts';

export type { Next, PhaseHandler } from './next.ts';

export type ActivePhase = Exclude<Phase, 'Succeeded' | 'Failed' | 'RolledBack'>;

export const HANDLERS: Record<ActivePhase, PhaseHandler> = {
  Pending: pending,
  SchemaMigrating: schemaMigrating,
  Copying: copying,
  Syncing: syncing,
  Validating: validating,
  AwaitingApproval: awaitingApproval,
  // With ChangeCapture the switch comes after the fence and the catch-up (capture-cutover.ts calls cuttingOver).
  CuttingOver: (ctx: Context) => (isChangeCapture(ctx.spec) ? cuttingOverCapture(ctx) : cuttingOver(ctx)),
  RollingBack: rollingBack,
};
