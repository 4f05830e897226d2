// Validating: the validate Job's verdict decides: passed → the approval gate or the switch (or
// done, without a cutover); failed → RollingBack (rollback.onValidationFailure, the default) or
// Failed with the target left for inspection.
import { REASONS } from '../../api/constants.ts';
import { MAX_BOOKKEEPING_TABLES, STATUS_LIMITS } from '../../api/datamigration-schema.ts';
import type { CutoverSpec } from '../../api/types.generated.ts';
import { bound, fail, setCond, succeed, transition, type Context } from '../context.ts';
import { recordOutcome } from '../ledger.ts';
import type { ObservedJob } from '../model.ts';
import { parseValidationResult, recordTables, type ValidationOutcome } from '../step-results.ts';
import type { Next } from './next.ts';
import { failureReason, runStep, stepFailed, stepSucceeded } from './run-step.ts';

export function needsApproval(cutover: CutoverSpec | undefined): boolean {
  return cutover?.approval === 'Manual';
}

export function validating(ctx: Context): Next {
  const outcome = runStep(ctx, 'validate');
  if (outcome.kind === 'wait') return 'stop';
  const parsed = parseValidationResult(outcome.job.result);
  // A validate Job that exits non-zero with a readable "passed: false" is a validation failure; any
  // other failure of the Job (or an unreadable result) is a step failure.
  const verdict = parsed.ok && !parsed.value.validation.passed;
  if (outcome.kind === 'failed' && !verdict) return stepFailed(ctx, 'validate', outcome.message, failureReason('validate', outcome.job), outcome.job);
  if (!parsed.ok) return stepFailed(ctx, 'validate', parsed.error, REASONS.JobFailed, outcome.job);
  if (!parsed.value.validation.passed) return validationFailed(ctx, parsed.value, outcome.job, 'Validation');
  recordValidation(ctx, parsed.value);
  const summary = summaryOf(parsed.value);
  stepSucceeded(ctx, 'validate', outcome.job);
  setCond(ctx, 'Validated', 'True', REASONS.ValidationPassed, `Validation passed${summary}`);
  const cutover = ctx.spec.cutover;
  if (cutover === undefined) {
    succeed(ctx, `Validation passed${summary}; no cutover configured`);
    return 'stop';
  }
  if (needsApproval(cutover)) transition(ctx, 'AwaitingApproval', REASONS.AwaitingApproval, `validation passed${summary}; the cutover waits for approval`);
  else transition(ctx, 'CuttingOver', 'CuttingOver', `validation passed${summary}; switching Service ${cutover.service}`);
  return 'continue';
}

/** ChecksumMismatch when only checksums failed (rows differ in value), else ValidationFailed. */
export const verdictReason = (failed: readonly { kind?: string }[]): typeof REASONS.ChecksumMismatch | typeof REASONS.ValidationFailed =>
  (failed.length > 0 && failed.every((check) => check.kind === 'Checksum') ? REASONS.ChecksumMismatch : REASONS.ValidationFailed);

const summaryOf = (result: ValidationOutcome): string => (result.validation.summary === undefined ? '' : `: ${result.validation.summary}`);

function recordValidation(ctx: Context, result: ValidationOutcome): void {
  const { validation, tables, bookkeeping } = result;
  ctx.status.validation = { ...validation, checkedAt: ctx.now };
  // Cut to the CRD's bound: a longer list would be refused (422) on every status write.
  if (bookkeeping !== undefined) ctx.status.bookkeeping = bookkeeping.slice(0, MAX_BOOKKEEPING_TABLES);
  if (tables.length > 0) recordTables(ctx.status, tables);
}

/**
 * A validation found that the target differs (the validate Job's, or the ChangeCapture sync's at a
 * cut: `what` says which): the verdict goes in the validate entry, where phaseOf() finds RollingBack
 * (rollback.onValidationFailure, the default); otherwise Failed with the target left for inspection.
 */
export function validationFailed(ctx: Context, result: ValidationOutcome, job: ObservedJob, what: string): Next {
  recordValidation(ctx, result);
  const failedChecks = (result.validation.checks ?? []).filter((check) => !check.passed);
  const reason = verdictReason(failedChecks);
  const names = failedChecks.slice(0, 5).map((check) => check.name).join(', ');
  const message = `${what} failed${summaryOf(result)}${names === '' ? '' : ` (failed: ${names})`}`;
  // The verdict is the step's outcome: not a failed Job a retry could run again.
  recordOutcome(ctx.status, 'validate', ctx.runId, 'Failed', ctx.now, {
    reason, message: bound(message, STATUS_LIMITS.detail), job: job.name, ...(job.exitCode !== undefined ? { exitCode: job.exitCode } : {}),
  });
  setCond(ctx, 'Validated', 'False', reason, message);
  if (ctx.spec.rollback?.onValidationFailure ?? true) {
    transition(ctx, 'RollingBack', reason, `${message}; rolling back`, 'Warning');
    return 'continue';
  }
  fail(ctx, reason, `${message}; rollback.onValidationFailure is false, the target is left as it is`);
  return 'stop';
}
