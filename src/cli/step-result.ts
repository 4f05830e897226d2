// What each step leaves in its termination message: its result in the step-result contract
// (src/api/step-result.ts), built from what the engine's step returned, which the operator reads back.
import type { Step } from '../api/constants.ts';
import type { StepResultOf, StepResults } from '../api/step-result.ts';
import type { CaptureSyncStepResult, CatchupStepResult, ReleaseStepResult } from '../engine/pipeline/capture-steps.ts';
import type { FenceStepResult, UnfenceStepResult } from '../engine/pipeline/fence-steps.ts';
import type { CopyStepResult, schemaStep, syncStep } from '../engine/pipeline/steps.ts';
import type { RollbackResult, ValidationReport } from '../engine/pipeline/validate-steps.ts';
import { summarizeForStatus, tableStatuses } from '../engine/validate/report.ts';

/**
 * The step's result in the step-result contract (src/api/step-result.ts), which the operator reads
 * back from the termination message: each case builds exactly its step's generated type.
 */
export function stepResult(command: string, results: Record<string, unknown>): StepResults[Step] {
  switch (command) {
    case 'step schema': {
      const schema = results.schema as Awaited<ReturnType<typeof schemaStep>>;
      const out: StepResultOf<'schema'> = {
        // null is "no version before" (the contract keeps it); only a missing field is unreadable.
        versionBefore: schema.versionBefore, version: schema.version ?? undefined, createdTables: schema.createdTables, applied: schema.applied,
      };
      return out;
    }
    case 'step copy': {
      const copy = results.copy as CopyStepResult;
      // With several pods: this pod's share; the operator adds up the pods' results (observe.ts).
      const out: StepResultOf<'copy'> = {
        pod: copy.pod, tables: copy.tables.map((t) => ({ name: t.name, target: t.target, state: 'Copied', rowsCopied: t.rowsCopied })),
        rowsThisRun: copy.rowsThisRun, postCopy: copy.postCopy, postCopyStatements: copy.postCopyStatements,
        // What a person should know about the copied data: zero dates made NULL, lossy conversions.
        zeroDates: copy.zeroDates, warnings: copy.warnings,
      };
      return out;
    }
    case 'step sync': {
      const sync = results.sync as Awaited<ReturnType<typeof syncStep>>;
      const capture = captureSyncOf(sync);
      const out: StepResultOf<'sync'> = capture
        ? { mode: capture.mode, transactions: capture.transactions, changes: capture.changes, appliedPosition: capture.appliedPosition }
        : { rounds: sync.rounds, rowsSynced: sync.rowsSynced, caughtUp: sync.caughtUp, rowsDeleted: sync.rowsDeleted ?? 0, ...(sync.notes?.length ? { notes: sync.notes } : {}) };
      return out;
    }
    case 'step validate':
      return validateResult(results.validation as ValidationReport);
    case 'step catchup': {
      const catchup = results.catchup as CatchupStepResult;
      const out: StepResultOf<'catchup'> = {
        fencePosition: catchup.fencePosition, appliedPosition: catchup.appliedPosition, catchUpMs: catchup.catchUpMs, transactions: catchup.transactions,
        validation: validateResult(catchup.validation),
      };
      return out;
    }
    case 'step fence': {
      const fence = results.fence as FenceStepResult;
      const out: StepResultOf<'fence'> = { fenced: fence.fenced, previous: fence.previous, sessionsEnded: fence.sessionsEnded, ...(fence.notes.length > 0 ? { notes: fence.notes } : {}) };
      return out;
    }
    case 'step unfence': {
      const unfence = results.unfence as UnfenceStepResult;
      const out: StepResultOf<'unfence'> = { unfenced: unfence.unfenced, restored: unfence.restored };
      return out;
    }
    case 'step release': {
      const release = results.release as ReleaseStepResult;
      const out: StepResultOf<'release'> = {
        released: release.released,
        ...(release.slotDropped !== undefined ? { slotDropped: release.slotDropped } : {}),
        ...(release.publicationDropped !== undefined ? { publicationDropped: release.publicationDropped } : {}),
        ...(release.problems.length > 0 ? { problems: release.problems } : {}),
      };
      return out;
    }
    default: {
      const rollback = results.rollback as RollbackResult;
      const out: StepResultOf<'rollback'> = { version: rollback.version ?? undefined, reverted: rollback.reverted, droppedTables: rollback.droppedTables };
      return out;
    }
  }
}

/** A validation report as the validate step's result (catchup's too): failures first in the checks, so the bound never hides one. */
export function validateResult(report: ValidationReport): StepResultOf<'validate'> {
  const summary = summarizeForStatus(report);
  return { ...summary, passed: report.passed, tables: tableStatuses(report), ...(report.bookkeeping ? { bookkeeping: report.bookkeeping } : {}) };
}

/** The ChangeCapture sync's result, when it is one. */
export function captureSyncOf(result: Awaited<ReturnType<typeof syncStep>>): CaptureSyncStepResult | undefined {
  return 'mode' in result && result.mode === 'ChangeCapture' ? result as CaptureSyncStepResult : undefined;
}

