// Syncing (Trickle): the sync Job catches up with the rows changed since the copy, then validation.
import { REASONS } from '../../api/constants.ts';
import { setCond, transition, type Context } from '../context.ts';
import { parseSyncResult } from '../step-results.ts';
import type { Next } from './next.ts';
import { finishedStep } from './run-step.ts';

export function syncing(ctx: Context): Next {
  const result = finishedStep(ctx, 'sync', parseSyncResult);
  if (result === undefined) return 'stop';
  const rows = result.rowsSynced === undefined ? '' : ` (${result.rowsSynced} changed rows synced)`;
  setCond(ctx, 'DataCopied', 'True', REASONS.Succeeded, `The data is copied and caught up${rows}`);
  transition(ctx, 'Validating', 'Validating', `the data is copied and caught up${rows}`);
  return 'continue';
}
