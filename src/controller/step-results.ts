// What the operator takes from a step's result (read against the step-result contract,
// src/api/step-result.ts): the schema versions, the copied tables and their progress, the sync's
// counts, the validation verdict (failures first, bounded as status is), the rollback's version.
import { STATUS_LIMITS } from '../api/datamigration-schema.ts';
import type { Step } from '../api/constants.ts';
import { parseStepResult, type Parsed, type SchemaStepResult, type StepResultOf } from '../api/step-result.ts';
import type { CheckResult, DataMigrationStatus, Progress, SchemaStatus, TableStatus, ValidationStatus } from '../api/types.generated.ts';
import { bound, STEP_TITLES } from './context.ts';

export type { Parsed };

/**
 * A step's result, which every step must leave: a Job that ended without one (no termination
 * message, or one that is not the contract's JSON) is a failure, never a success with nothing to say.
 */
function stepResultOf<S extends Step>(step: S, result: unknown): Parsed<StepResultOf<S>> {
  const parsed = parseStepResult(step, result);
  if (!parsed.ok) return parsed;
  if (parsed.value === undefined) return { ok: false, error: `the ${STEP_TITLES[step]} Job left no result (termination message)` };
  return { ok: true, value: parsed.value };
}

export function parseSchemaResult(result: unknown): Parsed<SchemaStatus> {
  const parsed = stepResultOf('schema', result);
  if (!parsed.ok) return parsed;
  const value: SchemaStepResult = parsed.value;
  const out: SchemaStatus = {};
  // For people: rollback reads the version before from the target's own record, not from status.
  if (value.versionBefore !== null) out.versionBefore = value.versionBefore;
  if (value.version !== undefined) out.version = value.version;
  if (value.createdTables !== undefined) {
    // Cut to the CRD's maxItems (a longer list would be refused, 422, on every write).
    out.createdTables = value.createdTables.slice(0, STATUS_LIMITS.tables);
    if (value.createdTables.length > STATUS_LIMITS.tables) out.truncated = true;
  }
  return { ok: true, value: out };
}

export interface CopyOutcome {
  tables: TableStatus[];
  progress?: Progress;
  failedTables: string[];
  /** MySQL zero dates the copy stored as NULL, per source "table.column". */
  zeroDates: Record<string, number>;
  /** The plan's warnings (lossy conversions and the like). */
  warnings: string[];
}

/** Most warnings named in a copy's Event; the rest are counted. */
const MAX_NOTICES = 8;

/** What a person should know about the copied data, or undefined when there is nothing. */
export function copyNotices(outcome: CopyOutcome): string | undefined {
  const zeroDates = Object.entries(outcome.zeroDates).filter(([, n]) => n > 0);
  const parts: string[] = [];
  if (zeroDates.length > 0) {
    const total = zeroDates.reduce((sum, [, n]) => sum + n, 0);
    parts.push(`${String(total)} MySQL zero date(s) stored as NULL (${zeroDates.map(([column, n]) => `${column}: ${String(n)}`).join(', ')})`);
  }
  parts.push(...outcome.warnings.slice(0, MAX_NOTICES));
  if (outcome.warnings.length > MAX_NOTICES) parts.push(`and ${String(outcome.warnings.length - MAX_NOTICES)} more warning(s) in the copy Job's log`);
  return parts.length > 0 ? bound(parts.join('; '), STATUS_LIMITS.message) : undefined;
}

export function parseCopyResult(result: unknown): Parsed<CopyOutcome> {
  const parsed = stepResultOf('copy', result);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  // A table without a state was copied (older engines reported no state).
  const tables = (value.tables ?? []).map((table): TableStatus => ({ ...table, state: table.state ?? 'Copied' }));
  const failedTables = tables.filter((table) => table.state === 'Failed').map((table) => (table.message === undefined ? table.name : `${table.name} (${table.message})`));
  const zeroDates = Object.fromEntries(Object.entries(value.zeroDates ?? {}).map(([column, n]) => [bound(column, STATUS_LIMITS.figure), n]));
  const out: CopyOutcome = { tables, failedTables, zeroDates, warnings: value.warnings ?? [] };
  if (tables.length > 0) {
    const rowsCopied = tables.reduce((sum, table) => sum + (table.rowsCopied ?? 0), 0);
    const done = tables.filter((table) => table.state === 'Copied').length;
    out.progress = {
      tablesTotal: tables.length, tablesDone: done, rowsCopied,
      percent: Math.round((100 * done) / tables.length),
      summary: `${done}/${tables.length} tables · ${rowsCopied} rows`,
    };
  }
  return { ok: true, value: out };
}

export interface SyncOutcome { rounds?: number; rowsSynced?: number; caughtUp?: boolean; rowsDeleted?: number; notes?: string[] }

export function parseSyncResult(result: unknown): Parsed<SyncOutcome> {
  const parsed = stepResultOf('sync', result);
  if (!parsed.ok) return parsed;
  const out: SyncOutcome = {};
  if (parsed.value.rounds !== undefined) out.rounds = parsed.value.rounds;
  if (parsed.value.rowsSynced !== undefined) out.rowsSynced = parsed.value.rowsSynced;
  if (parsed.value.caughtUp !== undefined) out.caughtUp = parsed.value.caughtUp;
  if (parsed.value.rowsDeleted !== undefined) out.rowsDeleted = parsed.value.rowsDeleted;
  if (parsed.value.notes !== undefined && parsed.value.notes.length > 0) out.notes = parsed.value.notes;
  return { ok: true, value: out };
}

export interface ValidationOutcome { validation: ValidationStatus & { passed: boolean }; tables: TableStatus[]; bookkeeping?: string[] }

/** The validate step's result: `passed` is required (without it nothing can be decided). */
export function parseValidationResult(result: unknown): Parsed<ValidationOutcome> {
  const parsed = stepResultOf('validate', result);
  if (!parsed.ok) return parsed;
  return { ok: true, value: validationOutcomeOf(parsed.value) };
}

export interface CatchupOutcome extends ValidationOutcome { fencePosition: string; catchUpMs?: number; transactions?: number }

/** The catch-up step's result (ChangeCapture): the validation behind the fence, and how the stream caught up. */
export function parseCatchupResult(result: unknown): Parsed<CatchupOutcome> {
  const parsed = stepResultOf('catchup', result);
  if (!parsed.ok) return parsed;
  const { fencePosition, catchUpMs, transactions, validation } = parsed.value;
  return {
    ok: true,
    value: { ...validationOutcomeOf(validation), fencePosition, ...(catchUpMs !== undefined ? { catchUpMs } : {}), ...(transactions !== undefined ? { transactions } : {}) },
  };
}

export function parseFenceResult(result: unknown): Parsed<StepResultOf<'fence'>> {
  return stepResultOf('fence', result);
}

export function parseUnfenceResult(result: unknown): Parsed<StepResultOf<'unfence'>> {
  return stepResultOf('unfence', result);
}

export function parseReleaseResult(result: unknown): Parsed<StepResultOf<'release'>> {
  return stepResultOf('release', result);
}

function validationOutcomeOf(value: StepResultOf<'validate'>): ValidationOutcome {
  const checks: CheckResult[] = value.checks ?? [];
  const failedCount = checks.filter((check) => !check.passed).length;
  // Failures first, so truncation never hides one.
  const ordered = [...checks.filter((check) => !check.passed), ...checks.filter((check) => check.passed)];
  const validation: ValidationStatus & { passed: boolean } = { passed: value.passed };
  const summary = value.summary ?? (checks.length > 0 ? `${checks.length - failedCount}/${checks.length} checks passed` : undefined);
  if (summary !== undefined) validation.summary = summary;
  if (ordered.length > 0) validation.checks = ordered.slice(0, STATUS_LIMITS.checks);
  if (ordered.length > STATUS_LIMITS.checks || value.truncated === true) validation.truncated = true;
  return { validation, tables: value.tables ?? [], ...(value.bookkeeping ? { bookkeeping: value.bookkeeping } : {}) };
}

export function parseRollbackResult(result: unknown): Parsed<{ version?: string }> {
  const parsed = stepResultOf('rollback', result);
  if (!parsed.ok) return parsed;
  return { ok: true, value: parsed.value.version === undefined ? {} : { version: parsed.value.version } };
}

/** status.tables with `updates` merged in by name. */
export function mergeTables(current: readonly TableStatus[] | undefined, updates: readonly TableStatus[]): TableStatus[] {
  const out = (current ?? []).map((table) => ({ ...table }));
  for (const update of updates) {
    const index = out.findIndex((table) => table.name === update.name);
    if (index === -1) out.push({ ...update });
    else out[index] = { ...out[index], ...update };
  }
  return out;
}

/**
 * status.tables with `updates` merged in, cut to the CRD's maxItems (failed tables kept first);
 * status.tablesTruncated says that some are not listed (they are in the step Jobs' logs).
 */
export function recordTables(status: DataMigrationStatus, updates: readonly TableStatus[]): void {
  const merged = mergeTables(status.tables, updates);
  if (merged.length <= STATUS_LIMITS.tables) {
    status.tables = merged;
    return;
  }
  const failedFirst = [...merged.filter((table) => table.state === 'Failed'), ...merged.filter((table) => table.state !== 'Failed')];
  status.tables = failedFirst.slice(0, STATUS_LIMITS.tables);
  status.tablesTruncated = true;
}
