// Copying: the copy Job (an Indexed Job with copyPods > 1); its tables, progress and notices go to
// status. Trickle goes on to Syncing, the other strategies to Validating.
import { REASONS } from '../../api/constants.ts';
import { event, setCond, transition, type Context } from '../context.ts';
import { copyNotices, parseCopyResult, recordTables } from '../step-results.ts';
import type { Next } from './next.ts';
import { failureReason, runStep, stepFailed, stepSucceeded } from './run-step.ts';

export function copying(ctx: Context): Next {
  const outcome = runStep(ctx, 'copy');
  if (outcome.kind === 'wait') return 'stop';
  const parsed = parseCopyResult(outcome.job.result);
  // Whatever the copy reported is worth keeping, even from a failed Job.
  if (parsed.ok && parsed.value.tables.length > 0) recordTables(ctx.status, parsed.value.tables);
  if (outcome.kind === 'failed') return stepFailed(ctx, 'copy', outcome.message, failureReason('copy', outcome.job), outcome.job);
  if (!parsed.ok) return stepFailed(ctx, 'copy', parsed.error, REASONS.JobFailed, outcome.job);
  const { failedTables, progress, tables } = parsed.value;
  if (failedTables.length > 0) {
    return stepFailed(ctx, 'copy', `the copy Job ${outcome.job.name} reported failed tables: ${failedTables.join(', ')}`, REASONS.JobFailed, outcome.job);
  }
  stepSucceeded(ctx, 'copy', outcome.job);
  if (progress !== undefined) ctx.status.progress = { ...progress, updatedAt: ctx.now };
  const notices = copyNotices(parsed.value);
  if (notices !== undefined) event(ctx, 'Warning', REASONS.CopyNotices, `The copy Job ${outcome.job.name} finished with notices: ${notices}`);
  const count = tables.length > 0 ? ` (${tables.length} tables)` : '';
  if (ctx.spec.strategy?.type === 'Trickle') {
    setCond(ctx, 'DataCopied', 'False', REASONS.InProgress, `The initial copy is done${count}; syncing changed rows`);
    transition(ctx, 'Syncing', 'Syncing', `the initial copy is done${count}; syncing changed rows until caught up`);
  } else {
    setCond(ctx, 'DataCopied', 'True', REASONS.Succeeded, `The data is copied${count}`);
    transition(ctx, 'Validating', 'Validating', `the data is copied${count}`);
  }
  return 'continue';
}
