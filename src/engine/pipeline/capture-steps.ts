// The steps of a Trickle migration in ChangeCapture mode after its copy (which set up the capture):
// - sync: follows the source's change log until the process is told to stop (the cutover deletes
//   its Job at the write fence), reporting its lag into the target every few seconds, and once
//   caught up validates the target at a cut (validate-at-cut.ts);
// - catchup: behind the write fence, applies everything up to the source's position, stops, and
//   validates (the data holds still now): only the rows changed since the sync's validation at a
//   cut, when one passed (validate-at-cut.ts);
// - release: drops what the capture keeps on the source (PostgreSQL's slot retains WAL until then).
import { ensureCheckpointTable } from '../copy/checkpoint.ts';
import { CaptureBusy, captureDriverFor, captureSourceOf, type CaptureRelease } from '../db/change-capture.ts';
import type { SqlSession } from '../db/session.ts';
import { writeCaptureLag } from '../sync/capture-lag.ts';
import { measureLag, resumedLagClock, startLagReports } from '../sync/capture-lag-reports.ts';
import { captureScope } from '../sync/capture-copy.ts';
import { startCaptureRun, type CaptureRun } from '../sync/capture-run.ts';
import type { CaptureTable } from '../sync/cdc-apply.ts';
import type { ValidateOptions } from '../validate/validate.ts';
import { claimTarget, identityOf, registerTarget } from './bookkeeping.ts';
import { planMigration } from './plan.ts';
import { PlanRefusedError, ValidationFailedError } from './refused.ts';
import type { EngineSettings } from './settings.ts';
import { openEndpoint, sided, withSession, withSessions, type StepContext, type SyncStepResult } from './steps.ts';
import type { ValidationReport } from './validate-steps.ts';
import { validateBehindFence, validateWhileSyncing } from './validate-at-cut.ts';
import { envSecondsMs } from '../db/connection-options.ts';

/** Also read as a Timestamp/Sequence sync's result: no rounds, every change a row synced, caught up as last measured. */
export interface CaptureSyncStepResult extends SyncStepResult {
  mode: 'ChangeCapture';
  /** Source transactions and row changes applied by this process. */
  transactions: number;
  changes: number;
  /** Everything the source committed before this is on the target. */
  appliedPosition: string;
}

export interface CatchupStepResult {
  /** The source's position once writes were fenced. */
  fencePosition: string;
  appliedPosition: string;
  /** From the step's start until everything before the fence position was on the target. */
  catchUpMs: number;
  transactions: number;
  validation: ValidationReport;
}

/** What the source's capture driver dropped (released: nothing of the capture is left on the source). */
export type ReleaseStepResult = CaptureRelease;

/** The catch-up's bound (DMO_CATCHUP_TIMEOUT_SECONDS, default 120). */
const catchupTimeoutMs = (env: Readonly<Record<string, string | undefined>>): number => envSecondsMs(env, 'DMO_CATCHUP_TIMEOUT_SECONDS') ?? 120_000;

function refuseOtherModes(settings: EngineSettings, step: string): void {
  if (settings.incremental?.mode !== 'ChangeCapture') throw new PlanRefusedError([`the ${step} step is for strategy.type Trickle with strategy.incremental.mode ChangeCapture`]);
}

/**
 * The captured tables, as the copy planned them (conflicts as upserts: a change may meet a row
 * that is there already), after the migration has claimed its target tables as every writing step does.
 */
async function planCaptureTables(source: SqlSession, target: SqlSession, settings: EngineSettings): Promise<CaptureTable[]> {
  const refused = await claimTarget(source, target, settings);
  if (refused.length > 0) throw new PlanRefusedError(refused);
  const plan = await planMigration(source, target, { ...settings, conflictPolicy: 'upsert' });
  // The tables as the copy step's capture scope names them (the catalog's names: what the stream calls them).
  const scope = captureScope(plan, settings.sourceEngine);
  const errors = [...plan.errors, ...scope.problems];
  const { tables } = scope;
  if (tables.length === 0 && errors.length === 0) errors.push('no tables to follow');
  if (errors.length > 0) throw new PlanRefusedError(errors);
  const taken = await registerTarget(source, target, settings);
  if (taken.length > 0) throw new PlanRefusedError(taken);
  await ensureCheckpointTable(target);
  return tables;
}

/** The plan, then a follower on a target session of its own, resuming where the copy or the last follower left off. */
async function startFollowing(context: StepContext, applicationName: string, slotFreeBy?: number): Promise<CaptureRun> {
  const { settings } = context;
  const tables = await withSessions(context, (source, target) => planCaptureTables(source, target, settings), { applicationName });
  const target = await openEndpoint(sided(context.target, 'target'), false, applicationName);
  return startCaptureRun({
    sourceEngine: settings.sourceEngine, source: captureSourceOf(context.source), target, uid: identityOf(settings).uid, tables, applicationName,
    ...(slotFreeBy !== undefined ? { slotFreeBy } : {}),
  });
}

/** Resolves once `signal` aborts (never without one). */
function abortedBy(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!signal) return;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => { resolve(); }, { once: true });
  });
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Follows the source's change log until the step's signal aborts (SIGTERM, SIGINT: the cutover
 * stops it), then lets go of the source at once and returns what it applied. Fails when following
 * fails (a change the target refuses, a TRUNCATE, a lost binlog, a lost connection).
 */
export async function captureSyncStep(context: StepContext, validateOptions: Partial<ValidateOptions> = {}): Promise<CaptureSyncStepResult> {
  refuseOtherModes(context.settings, 'change-capture sync');
  const uid = identityOf(context.settings).uid;
  const run = await startFollowing(context, 'datamigration sync');
  try {
    return await withSession(sided(context.target, 'target'), false, 'datamigration sync lag', async (reportTarget) => {
      const clock = await resumedLagClock(reportTarget, uid);
      const reports = startLagReports(run, reportTarget, uid, clock);
      // Beside the follower: a validation at a cut once caught up (validate-at-cut.ts); only its failure ends the sync.
      const validating = new AbortController();
      const validation = validateWhileSyncing(context, run, validateOptions, validating.signal);
      let failure: unknown;
      try {
        await Promise.race([abortedBy(context.signal), run.ended, reports.done, validation.then(() => new Promise<never>(() => undefined))]);
      } catch (error) {
        failure = error;
      }
      validating.abort();
      // Stopped first: the slot is let go before anything else (the cutover waits for it).
      await run.stop();
      await reports.stop().catch((error: unknown) => { failure ??= error; });
      await validation.catch((error: unknown) => { failure ??= error; });
      if (failure instanceof ValidationFailedError) throw failure;
      if (failure !== undefined) throw new Error(`following the source's changes failed: ${messageOf(failure)}`, { cause: failure });
      // The last word on lag, as stopped; the stop itself was clean whether or not it can be written.
      const last = await measureLag(run, clock, 0).then(async (report) => {
        await writeCaptureLag(reportTarget, uid, report);
        return report;
      }, () => undefined).catch(() => undefined);
      const { transactions, changes } = run.progress();
      return {
        mode: 'ChangeCapture' as const, transactions, changes, appliedPosition: run.appliedPosition(),
        rounds: 0, rowsSynced: changes, caughtUp: (reports.last ?? last)?.lagMs === 0,
      };
    });
  } finally {
    await run.close();
  }
}

/**
 * Behind the write fence: the source's position now is the fence position; follows until it is
 * applied (within DMO_CATCHUP_TIMEOUT_SECONDS), stops, then validates: the rows changed since the
 * sync's validation at a cut passed, else in full like the validate step (validate-at-cut.ts).
 */
export async function catchupStep(context: StepContext, validateOptions: Partial<ValidateOptions> = {}): Promise<CatchupStepResult> {
  refuseOtherModes(context.settings, 'catchup');
  const began = Date.now();
  const timeoutMs = catchupTimeoutMs(process.env);
  const uid = identityOf(context.settings).uid;
  const timedOut = (why: string): Error => new Error(`the catch-up did not apply everything up to the fence position within ${String(Math.round(timeoutMs / 1000))} s (DMO_CATCHUP_TIMEOUT_SECONDS): ${why}`);
  const run = await startFollowing(context, 'datamigration catchup', began + timeoutMs).catch((error: unknown) => {
    throw error instanceof CaptureBusy ? timedOut(error.message) : error;
  });
  let caughtUp: Omit<CatchupStepResult, 'validation'>;
  try {
    const fence = await run.mark();
    const left = Math.max(0, began + timeoutMs - Date.now());
    // undefined once reached; else why not (a timeout, the follower's failure).
    const missed = await Promise.race([
      fence.reached(left).then(() => undefined, (error: unknown) => error ?? 'not reached'),
      abortedBy(context.signal).then(() => 'stopped'),
    ]);
    context.signal?.throwIfAborted();
    if (missed !== undefined) {
      // Stopped, the follower says whether it failed (a timeout leaves it running).
      await run.stop();
      const failed = await run.ended.then(() => undefined, (failure: unknown) => failure);
      if (failed !== undefined) throw new Error(`catching up failed: ${messageOf(failed)}`, { cause: failed });
      throw timedOut(`fence position ${fence.text}, applied up to ${run.appliedPosition()}; is the source still being written, or the sync pod still following?`);
    }
    const catchUpMs = Date.now() - began;
    await run.stop();
    caughtUp = { fencePosition: fence.text, appliedPosition: run.appliedPosition(), catchUpMs, transactions: run.progress().transactions };
    // The status shows it caught up (the sync pod's last report said otherwise).
    await withSession(sided(context.target, 'target'), false, 'datamigration catchup', async (target) => {
      const { transactions, changes } = run.progress();
      await writeCaptureLag(target, uid, {
        appliedPosition: caughtUp.appliedPosition, sourcePosition: fence.text, lagMs: 0, pendingBytes: 0, transactions, changes, sampledAt: new Date().toISOString(),
      });
    });
  } finally {
    await run.close();
  }
  const validation = await validateBehindFence(context, validateOptions);
  return { ...caughtUp, validation };
}

/**
 * Drops the capture's slot and publication on a PostgreSQL source (a MySQL/MariaDB binlog reader
 * leaves nothing there). Idempotent; released false, with the statement to drop it by hand, when
 * something is left.
 */
export async function releaseStep(context: StepContext): Promise<ReleaseStepResult> {
  const uid = identityOf(context.settings).uid;
  return captureDriverFor(context.settings.sourceEngine).release(captureSourceOf(context.source), uid);
}
