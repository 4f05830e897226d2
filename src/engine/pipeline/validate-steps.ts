// The validate and rollback steps (a Job each in a cluster, `dmctl step validate|rollback` on a
// laptop). Validation only reads: both sessions are read only. Rollback writes the target only;
// the source is opened (read only) just to list its tables when TruncateTables has no table list.
import type { Endpoint } from '../copy/copy-shard.ts';
import { listTables } from '../schema/introspect.ts';
import { rollbackTarget, type RollbackAction, type RollbackResult } from '../rollback/rollback.ts';
import type { ValidationReport } from '../validate/report.ts';
import { DEFAULT_VALIDATE_OPTIONS, validateMigration, type ValidateOptions } from '../validate/validate.ts';
import { planMigration } from './plan.ts';
import { loadMigrations, openEndpoint, PlanRefusedError, withSession, type StepContext } from './steps.ts';

export type { ValidationReport } from '../validate/report.ts';
export type { RollbackResult, RollbackAction } from '../rollback/rollback.ts';

/**
 * Validates the target against the source: row counts, checksums, samples and rules as the
 * options say (see validateOptionsOf for the manifest's spec.validation). The report is plain
 * JSON; `passed` says whether cutover may go ahead.
 */
export async function validateStep(context: StepContext, options: Partial<ValidateOptions> = {}): Promise<ValidationReport> {
  const settled: ValidateOptions = { ...DEFAULT_VALIDATE_OPTIONS, ...options };
  return withSession(context.source, true, 'datamigration validate', (source) => withSession(context.target, true, 'datamigration validate', async (target) => {
    context.signal?.throwIfAborted();
    const plan = await planMigration(source, target, context.settings);
    if (plan.errors.length > 0) throw new PlanRefusedError(plan.errors);
    const open = (endpoint: Endpoint) => () => openEndpoint(endpoint, true, 'datamigration validate');
    return validateMigration({ source, target }, plan, settled, context.settings.migration, { source: open(context.source), target: open(context.target) });
  }));
}

export interface RollbackStepOptions {
  /** The schema version recorded before this migration started (status.schema.versionBefore); null: none. */
  versionBefore: string | null;
  action: RollbackAction;
}

/** The migration's target tables: the manifest's, or (no list) every source table's name. */
async function targetTables(context: StepContext): Promise<string[]> {
  if (context.settings.tables.length > 0) return context.settings.tables.map((t) => t.target ?? t.name);
  return withSession(context.source, true, 'datamigration rollback', (source) => listTables(source));
}

/** Rolls the target back by policy (see rollback/rollback.ts); idempotent. */
export async function rollbackStep(context: StepContext, options: RollbackStepOptions): Promise<RollbackResult> {
  const { settings } = context;
  const migrations = options.action === 'DownMigrations' ? await loadMigrations(context) : [];
  const tables = options.action === 'TruncateTables' ? await targetTables(context) : [];
  context.signal?.throwIfAborted();
  return withSession(context.target, false, 'datamigration rollback', (target) => rollbackTarget(target, {
    action: options.action, migration: settings.migration, versionBefore: options.versionBefore, migrations,
    historyTable: settings.historyTable, tables,
  }));
}
