// Syncing (Trickle): the sync Job catches up with the rows changed since the copy, then validation;
// with ChangeCapture the stream runs on until the cutover (capture-sync.ts).
import { REASONS } from '../../api/constants.ts';
import { STATUS_LIMITS } from '../../api/datamigration-schema.ts';
import { bound, event, setCond, transition, isChangeCapture, type Context } from '../context.ts';
import { parseSyncResult } from '../step-results.ts';
import { syncingCapture } from './capture-sync.ts';
import type { Next } from './next.ts';
import { finishedStep } from './run-step.ts';

export function syncing(ctx: Context): Next {
  if (isChangeCapture(ctx.spec)) return syncingCapture(ctx);
  const result = finishedStep(ctx, 'sync', parseSyncResult);
  if (result === undefined) return 'stop';
  const figures = [
    ...(result.rowsSynced === undefined ? [] : [`${String(result.rowsSynced)} changed rows synced`]),
    ...(result.rowsDeleted === undefined ? [] : [`${String(result.rowsDeleted)} rows deleted on the source removed`]),
  ];
  const rows = figures.length === 0 ? '' : ` (${figures.join(', ')})`;
  if (result.caughtUp === false) {
    // Never said to be caught up when it is not: validation will find what is missing.
    const rounds = result.rounds === undefined ? '' : ` in ${String(result.rounds)} rounds`;
    const message = `The sync did not catch up with the source${rounds}${rows}: rows changed since its last round are not on the target; validation compares what is there`;
    setCond(ctx, 'DataCopied', 'False', REASONS.SyncLagging, message);
    transition(ctx, 'Validating', REASONS.SyncLagging, message, 'Warning');
    return 'continue';
  }
  // Tables whose deletes could not be looked for (their key reads differently on the two engines): said, not hidden.
  const skipped = result.notes === undefined ? '' : `; ${result.notes.slice(0, 3).join('; ')}${result.notes.length > 3 ? `; and ${String(result.notes.length - 3)} more` : ''}`;
  if (skipped !== '') event(ctx, 'Warning', REASONS.Syncing, `The sync caught up, but not every table's deletes were looked for${skipped}`);
  setCond(ctx, 'DataCopied', 'True', REASONS.Succeeded, bound(`The data is copied and caught up${rows}${skipped}`, STATUS_LIMITS.detail));
  transition(ctx, 'Validating', 'Validating', `the data is copied and caught up${rows}`);
  return 'continue';
}
