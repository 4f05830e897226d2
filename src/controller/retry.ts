// Retry (the annotation dataops.dev/retry set to a token): a migration Failed in a step Job (or
// aborted) resumes the step that stopped, as the ledger says (ledger.ts retryPoint), under the run
// id `<run without its retry suffix>-r<token>`. A token is handled once status.runId ends with
// `-r<token>`, so the same token never retries twice; a token whose run has Jobs already is refused.
// Steps are idempotent (the copy resumes from its checkpoints): earlier steps do not run again.
// ChangeCapture: once its capture is released a stream cannot resume, so a retry copies again.
import { ABORT_ANNOTATION, REASONS, RETRY_ANNOTATION } from '../api/constants.ts';
import { baseRunId, isAbortRequested, retryToken } from './annotations.ts';
import type { LedgerStep } from '../api/constants.ts';
import type { DataMigrationSpec, DataMigrationStatus } from '../api/types.generated.ts';
import { cleanupPending } from './capture-cleanup.ts';
import { isChangeCapture, jobsOfRun, ready, setCond, STEP_TITLES, transition, type Context } from './context.ts';
import { entryOf, removeEntry, retryPoint, STEP_MARKERS, type RetryPoint } from './ledger.ts';

export type RetryVerdict =
  | { kind: 'none' }
  | { kind: 'refused'; token: string; why: string }
  | { kind: 'start'; token: string; runId: string; point: RetryPoint };

/** What the retry annotation asks of a terminal migration. */
export function retryVerdict(ctx: Context): RetryVerdict {
  const token = retryToken(ctx.migration);
  if (token === undefined || (ctx.status.runId ?? '').endsWith(`-r${token}`)) return { kind: 'none' };
  const phase = ctx.status.phase ?? 'Pending';
  if (phase !== 'Failed') return { kind: 'refused', token, why: `a ${phase} migration is never retried; create a new DataMigration to migrate again` };
  const point = resumePoint(ctx.spec, ctx.status);
  if ('refused' in point) return { kind: 'refused', token, why: point.refused };
  if (isAbortRequested(ctx.migration)) return { kind: 'refused', token, why: `the annotation ${ABORT_ANNOTATION} is still set: remove it` };
  const runId = `${baseRunId(ctx.runId)}-r${token}`;
  if (ctx.input.jobs.some((job) => job.runId === runId)) return { kind: 'refused', token, why: `run ${runId} exists already: use a new token` };
  return { kind: 'start', token, runId, point };
}

/** ChangeCapture: the stream cannot resume once its capture is released, so a retry copies again (the copy starts over). */
const COPY_AGAIN: RetryPoint = { phase: 'Copying', step: 'copy', entry: 'copy' };
/** What a retry from the copy clears besides the copy's entry: the stream, the cutover, the release. */
const CAPTURE_ENTRIES: readonly LedgerStep[] = ['sync', 'validate', 'fence', 'catchup', 'switch', 'unfence', 'release'];

/**
 * Where a retry of this Failed migration resumes, or why it cannot (the plugin asks it too). A
 * ChangeCapture run that got as far as its copy copies again, once its capture is released.
 */
export function resumePoint(spec: DataMigrationSpec, status: DataMigrationStatus): RetryPoint | { refused: string } {
  if (isChangeCapture(spec) && entryOf(status, 'copy') !== undefined) {
    // The release (by the migration's uid) would drop the capture a new copy creates.
    if (cleanupPending({ spec, status })) return { refused: 'the change capture of the failed run is still being released; retry once status.sync.released is set' };
    return COPY_AGAIN;
  }
  return retryPoint(status) ?? { refused: 'only a migration that failed in a step Job, or was aborted, can be retried; create a new DataMigration to migrate again' };
}

/** Moves a Failed migration back to the stopped step's phase under a new run; the phase handler then creates its Job. */
export function startRetry(ctx: Context, verdict: Extract<RetryVerdict, { kind: 'start' }>): void {
  const { point, runId, token } = verdict;
  const from = ctx.runId;
  ctx.runId = runId;
  ctx.runJobs = jobsOfRun(ctx.input.jobs, runId);
  ctx.status.runId = runId;
  delete ctx.status.completedAt;
  removeEntry(ctx.status, point.entry);
  removeEntry(ctx.status, 'finish');
  if (point === COPY_AGAIN) {
    for (const entry of CAPTURE_ENTRIES) removeEntry(ctx.status, entry);
    delete ctx.status.sync;
  }
  const what = point.step === undefined ? (point.phase === 'Pending' ? 'the migration' : 'the cutover') : `the ${STEP_TITLES[point.step]} step`;
  const why = `(annotation ${RETRY_ANNOTATION}=${token}; run ${from} stopped)`;
  if (point.step !== undefined) {
    const marker = STEP_MARKERS[point.step];
    // Shown until the step's Job is asked for; a status other than the step's running one, so
    // the condition's transition time is the new request's.
    setCond(ctx, marker.type, marker.status === 'Unknown' ? 'False' : 'Unknown', REASONS.Retrying, `Retrying ${what} as run ${runId}`);
    const jobs = (ctx.status.jobs ?? []).filter((job) => job.step !== point.step);
    if (jobs.length > 0) ctx.status.jobs = jobs;
    else delete ctx.status.jobs;
  } else if (point.phase === 'AwaitingApproval') {
    setCond(ctx, 'CutOver', 'Unknown', REASONS.Retrying, `Retrying the cutover as run ${runId}`);
  }
  transition(ctx, point.phase, REASONS.Retrying, `retrying ${what} as run ${runId} ${why}`);
  // The phase handler that runs next says what happens now; this stays only if none does.
  ready(ctx, 'False', REASONS.Retrying, `Retrying ${what} as run ${runId} ${why}`);
}
