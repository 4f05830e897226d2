// The validate and rollback steps (a Job each in a cluster, `dmctl step validate|rollback` on a
// laptop). Validation only reads: both sessions are read only. Rollback writes the target only;
// the source is opened (read only) just to list its tables when TruncateTables has no table list.
import type { Endpoint } from '../copy/copy-shard.ts';
import { listBookkeepingTables, listTables } from '../schema/introspect.ts';
import { rollbackTarget, type RollbackAction, type RollbackResult } from '../rollback/rollback.ts';
import type { ValidationReport } from '../validate/report.ts';
import { DEFAULT_VALIDATE_OPTIONS, validateMigration, type ChangedSince, type ValidateOptions } from '../validate/validate.ts';
import type { SqlSession } from '../db/session.ts';
import { removeBookkeeping } from '../migrations/cleanup.ts';
import { manifestSqlOf, planMigration, type MigrationPlan } from './plan.ts';
import { refuseDefinedFunctions } from './defined-functions.ts';
import { identityOf, retireTarget } from './bookkeeping.ts';
import { loadMigrations, openEndpoint, PlanRefusedError, refuseSharedSource, refuseUnconfinedSql, sided, withSession, type StepContext } from './steps.ts';

export type { ValidationReport } from '../validate/report.ts';
export type { RollbackResult, RollbackAction } from '../rollback/rollback.ts';

/** The options settled, the manifest's SQL refused where it must be (before any of it runs), and the plan validated against. */
export async function planValidation(context: StepContext, source: SqlSession, target: SqlSession, options: Partial<ValidateOptions>): Promise<{ plan: MigrationPlan; settled: ValidateOptions }> {
  const settled: ValidateOptions = { ...DEFAULT_VALIDATE_OPTIONS, ...options };
  // The manifest's rules and those about to run (the same in dmctl and the Job).
  const withRules = { ...context.settings, validationRules: [...context.settings.validationRules, ...settled.rules] };
  refuseUnconfinedSql(withRules);
  // Before any rule or where runs on the source: none may call a function defined there (defined-functions.ts).
  await refuseDefinedFunctions(source, manifestSqlOf(withRules));
  const plan = await planMigration(source, target, context.settings);
  if (plan.errors.length > 0) throw new PlanRefusedError(plan.errors);
  return { plan, settled };
}

/**
 * Validates the target against the source: row counts, checksums, samples and rules as the
 * options say (see validateOptionsOf for the manifest's spec.validation). The report is plain
 * JSON; `passed` says whether cutover may go ahead. `changedSince` (a change capture behind its
 * write fence): when it names the rows changed since a validation that passed, only those are
 * compared value by value, with the counts and rules (validate/validate.ts ChangedSince).
 */
export async function validateStep(
  context: StepContext, options: Partial<ValidateOptions> = {}, changedSince?: (target: SqlSession) => Promise<ChangedSince | undefined>,
): Promise<ValidationReport> {
  refuseUnconfinedSql({ ...context.settings, validationRules: [...context.settings.validationRules, ...options.rules ?? []] });
  return withSession(sided(context.source, 'source'), true, 'datamigration validate', (source) => withSession(sided(context.target, 'target'), true, 'datamigration validate', async (target) => {
    context.signal?.throwIfAborted();
    const { plan, settled } = await planValidation(context, source, target, options);
    const changed = await changedSince?.(target);
    const open = (endpoint: Endpoint) => () => openEndpoint(endpoint, true, 'datamigration validate');
    const report = await validateMigration({ source, target }, plan, settled, context.settings.migration,
      { source: open(sided(context.source, 'source')), target: open(sided(context.target, 'target')) }, changed);
    // Named in status, so nobody meets them later unexplained (the README's "bookkeeping" section).
    return { ...report, bookkeeping: await listBookkeepingTables(target) };
  }));
}

export interface RollbackStepOptions {
  /**
   * The schema version the caller believes was there before (status.schema.versionBefore,
   * --to-version): used only when the target holds no record of it (rollback/rollback.ts); null: none given.
   */
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
  // The source is opened too: a rollback (TruncateTables above all) must not run on the source reached
  // through a second URL, nor run down migrations with an account that could write the source.
  return withSession(sided(context.source, 'source'), true, 'datamigration rollback', (source) => withSession(sided(context.target, 'target'), false, 'datamigration rollback', async (target) => {
    await refuseSharedSource(source, target, settings.tables);
    return rollbackTarget(target, {
      action: options.action, identity: identityOf(settings), versionBefore: options.versionBefore, migrations,
      historyTable: settings.historyTable, tables,
    });
  }));
}

/**
 * The migration is finished (after a validated run; in a cluster, after the cutover): its
 * checkpoints are deleted, its created tables become the application's (a rollback never drops
 * them), its version before is forgotten, and running it again is refused (see migrations/ownership.ts).
 */
export async function retireStep(context: StepContext): Promise<{ checkpoints: number }> {
  return withSession(context.target, false, 'datamigration retire', (target) => retireTarget(target, context.settings));
}

/**
 * Drops this project's bookkeeping tables from the target once no migration needs them (every
 * one retired, rolled back or forgotten); refused (exit 3) naming those that do. The schema
 * history stays (migrations/cleanup.ts).
 */
export async function cleanupStep(context: StepContext): Promise<{ dropped: string[] }> {
  const result = await withSession(context.target, false, 'datamigration cleanup', (target) => removeBookkeeping(target));
  if (result.reasons.length > 0) throw new PlanRefusedError(result.reasons);
  return { dropped: result.dropped };
}
