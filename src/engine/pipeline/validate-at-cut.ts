// Validation of a ChangeCapture migration while its sync runs, and behind its write fence.
// - While syncing (validateWhileSyncing): once the follower has caught up, the target is cut at a
//   snapshot of the source (CaptureRun.cut: the target holds exactly what the source had committed
//   at the snapshot's position) and compared with it in full, as the validate step would, while
//   the follower goes on. Under any write load the two sides are the same data, so a difference is
//   a real one: the sync fails with the report (exit 4) before anyone approves a cutover.
// - From the cut on, the followers record the key of every row they change (sync/changed-keys.ts).
// - Behind the fence (validateBehindFence): after a cut that passed, the rows changed since are
//   compared value by value, with exact counts and the rules; without one (a cutover before it
//   finished, too many changed rows), the full validation runs there as before.
// Rules do not run at the cut: each runs in a transaction of its own, which would end the snapshots.
import type { SourceCut } from '../db/change-capture.ts';
import { envSecondsMs } from '../db/connection-options.ts';
import { beginSnapshotRead } from '../db/snapshot-read.ts';
import { readChangedKeys, readCutRecord, writeCutRecord } from '../sync/changed-keys.ts';
import type { CaptureRun } from '../sync/capture-run.ts';
import { CutNotReached } from '../sync/cdc-batcher.ts';
import type { ValidationReport } from '../validate/report.ts';
import { validateMigration, type ValidateOptions } from '../validate/validate.ts';
import { identityOf } from './bookkeeping.ts';
import { ValidationFailedError } from './refused.ts';
import { openEndpoint, sided, withSessions, type StepContext } from './steps.ts';
import { planValidation, validateStep } from './validate-steps.ts';

/** How long the follower may take to reach a cut (DMO_CUT_TIMEOUT_SECONDS, default 120). */
const cutTimeoutMs = (): number => envSecondsMs(process.env, 'DMO_CUT_TIMEOUT_SECONDS') ?? 120_000;

/** How near the source the follower must be before a cut: it has reached a position read this long before. */
const CAUGHT_UP_MS = 30_000;
/** After a cut that could not be taken, the next try. */
const RETRY_MS = 10_000;

function sleepUnless(signal: AbortSignal | undefined, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** More changed rows than this and the validation behind the fence compares every row instead (DMO_FENCE_CHANGED_ROWS_MAX). */
export const CHANGED_ROWS_MAX = 200_000;
const changedRowsMax = (): number => {
  const value = Number(process.env.DMO_FENCE_CHANGED_ROWS_MAX);
  return process.env.DMO_FENCE_CHANGED_ROWS_MAX !== undefined && Number.isInteger(value) && value >= 0 ? value : CHANGED_ROWS_MAX;
};

/**
 * Past this share of a table's (estimated) rows, its changed rows are not compared one by one: its
 * checksums are, faster then (about 3 µs a row against 50 µs a key on a local server, bench:trickle).
 * DMO_FENCE_CHANGED_SHARE_MAX, default 0.05 (Infinity: always one by one).
 */
const changedShareMax = (): number => {
  const value = Number(process.env.DMO_FENCE_CHANGED_SHARE_MAX);
  return process.env.DMO_FENCE_CHANGED_SHARE_MAX !== undefined && value >= 0 ? value : 0.05;
};

/** Attempts at a cut whose tables erred (no difference found) before the sync leaves it to the fence. */
const CUT_ERRORS_MAX = 3;

/** A report that failed only because tables could not be compared, not because rows differ. */
const erredOnly = (report: ValidationReport): boolean => !report.passed && report.tables.every((t) => t.passed || (t.error !== undefined && t.differenceCount === 0));

/** Nothing to compare row by row: the manifest asked for no checksum, count or sample. */
const comparesNothing = (options: Partial<ValidateOptions>): boolean => options.checksum?.mode === 'None' && options.rowCount === false && (options.sampleRows ?? 0) <= 0;

export interface CutValidation {
  /** The source position both sides were compared at. */
  position: string;
  report: ValidationReport;
}

/**
 * Cuts the target at a snapshot of the source and compares both in full (rules aside). `signal`
 * aborting closes both sessions: the validation ends at once with an error.
 */
export async function validateAtCut(context: StepContext, run: CaptureRun, options: Partial<ValidateOptions>, signal?: AbortSignal): Promise<CutValidation> {
  const { plan, settled } = await withSessions(context, (source, target) => planValidation(context, source, target, options), { applicationName: 'datamigration validate' });
  const target = await openEndpoint(sided(context.target, 'target'), true, 'datamigration validate');
  let cut: SourceCut | undefined;
  const close = (): void => {
    void target.close().catch(() => undefined);
    void cut?.release().catch(() => undefined);
  };
  signal?.addEventListener('abort', close, { once: true });
  try {
    signal?.throwIfAborted();
    const began = Date.now();
    cut = await run.cut(() => beginSnapshotRead(target), cutTimeoutMs());
    context.notice?.(`validating at a cut: the target held at the source's position ${cut.position} (${String(Date.now() - began)} ms to take it)`);
    signal?.throwIfAborted();
    const report = await validateMigration({ source: cut.session, target }, plan, { ...settled, rules: [] }, context.settings.migration);
    context.notice?.(`validation at the cut ${cut.position}: ${report.summary} in ${String(report.seconds)} s`);
    return { position: cut.position, report };
  } finally {
    signal?.removeEventListener('abort', close);
    await cut?.release().catch(() => undefined);
    await target.close().catch(() => undefined);
  }
}

/**
 * In the sync step, beside the follower: once it has caught up, validates at a cut (unless one
 * passed already: a sync pod that was restarted) and records that it passed. Throws
 * ValidationFailedError when the target differs; resolves without a cut when `signal` aborts first.
 */
export async function validateWhileSyncing(context: StepContext, run: CaptureRun, options: Partial<ValidateOptions>, signal?: AbortSignal): Promise<CutValidation | undefined> {
  if (comparesNothing(options)) return undefined;
  const { uid } = identityOf(context.settings);
  const target = await openEndpoint(sided(context.target, 'target'), false, 'datamigration validate');
  try {
    if ((await readCutRecord(target, uid))?.state === 'passed') return undefined;
    const follower = { ended: false };
    run.ended.then(() => { follower.ended = true; }, () => { follower.ended = true; });
    let validation: CutValidation | undefined;
    let erred = 0;
    while (!validation && !signal?.aborted && !follower.ended) {
      // Nearly caught up first (within CAUGHT_UP_MS of the source), so that the follower reaches the cut soon.
      const mark = await run.mark();
      if (!await mark.reached(CAUGHT_UP_MS).then(() => true, () => false)) continue;
      const tried = await validateAtCut(context, run, options, signal).catch((error: unknown) => {
        if (signal?.aborted) return undefined;
        if (!(error instanceof CutNotReached)) throw error;
        return error;
      });
      // Stopped while comparing: the sessions were closed under it, its report says nothing.
      if (signal?.aborted) return undefined;
      let again: string | undefined;
      if (tried instanceof CutNotReached) again = tried.message;
      else if (tried && erredOnly(tried.report)) {
        // A table that could not be compared (a lost connection, or something the fence's validation will meet too): no difference found.
        erred++;
        if (erred >= CUT_ERRORS_MAX) {
          context.notice?.(`no validation at a cut: ${tried.report.summary}; the full validation runs behind the fence`);
          return undefined;
        }
        again = tried.report.summary;
      } else validation = tried;
      if (again !== undefined) {
        context.notice?.(`no validation at a cut this time, again in ${String(RETRY_MS / 1000)} s: ${again}`);
        await sleepUnless(signal, RETRY_MS);
      }
    }
    if (!validation) return undefined;
    if (!validation.report.passed) throw new ValidationFailedError(`validated while syncing, at source position ${validation.position}, the target differs from the source`, validation.report);
    await writeCutRecord(target, uid, { position: validation.position, state: 'passed', at: validation.report.startedAt, summary: validation.report.summary });
    return validation;
  } finally {
    await target.close().catch(() => undefined);
  }
}

/**
 * Behind the write fence, the catch-up done: the rows changed since a cut that passed, else every
 * row (the validate step's full validation).
 */
export function validateBehindFence(context: StepContext, options: Partial<ValidateOptions>): Promise<ValidationReport> {
  const { uid } = identityOf(context.settings);
  return validateStep(context, options, async (target) => {
    const cut = await readCutRecord(target, uid);
    if (cut?.state !== 'passed') return undefined;
    const rows = await readChangedKeys(target, uid, changedRowsMax());
    return rows ? { rows, since: cut.position, maxShare: changedShareMax() } : undefined;
  });
}
