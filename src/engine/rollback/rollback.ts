// Rollback of the target by policy, never touching the source:
//   DownMigrations     the down scripts back to the version recorded in the target before this
//                      migration's first schema step (migrations/registry.ts), and the tables
//                      this migration created (createMissingTables) dropped
//   DropCreatedTables  the tables (and PostgreSQL enum types) this migration created dropped, and
//                      their records
//   TruncateTables     the migration's target tables that it created, or that were EMPTY when it
//                      claimed them before its first row (migrations/claims.ts), emptied; a table
//                      that held rows before is never emptied (refused, exit 3)
//   None               nothing
// Every action but None also forgets the migration's copy checkpoints, so a later run starts
// clean. Rollback acts only on records of its own uid: never on a table another migration made,
// or a table it has no record of. A finished (retired) migration's rollback is refused: what it
// made is the application's. DownMigrations is refused when a version it would undo was applied
// by another migration (history installed_by names the uid) or, for versions that do not say,
// when another migration's version before lies above this one's. Each step checks what exists
// first: running rollback twice, or after a copy that stopped half way, is harmless.
import type { SqlSession } from '../db/session.ts';
import { CHECKPOINT_TABLE } from '../copy/checkpoint.ts';
import type { Migration } from '../migrations/files.ts';
import { migrateDown, schemaVersion } from '../migrations/migrate.ts';
import { clearMigrationCheckpoints, foreignRecordReasons, prepareBookkeeping, type MigrationIdentity } from '../migrations/ownership.ts';
import { otherBaselines, readBaseline, retiredAt } from '../migrations/registry.ts';
import { ownsEveryRow, rowsOwnership } from '../migrations/rows-owned.ts';
import { compareVersions } from '../migrations/files.ts';
import { readHistory, historyTableExists } from '../migrations/history.ts';
import { TableNames } from '../migrations/table-names.ts';
import { PlanRefusedError } from '../pipeline/refused.ts';
import { createdTables, createdTypes, forgetCreated, typeExists } from '../schema/created-tables.ts';
import { dropCreatedFunctions } from '../schema/created-functions.ts';
import { tableExists } from '../db/catalog.ts';
import { ROLLBACK_SCHEMA_ACTIONS } from '../../api/constants.ts';

/** The API's schemaAction values (spec.rollback.schemaAction), listed once in src/api/constants.ts. */
export type RollbackAction = (typeof ROLLBACK_SCHEMA_ACTIONS)[number];

export interface RollbackOptions {
  action: RollbackAction;
  /** Whose records it acts on. */
  identity: MigrationIdentity;
  /**
   * DownMigrations: the version the caller believes was there before (--to-version, the status),
   * used only when the target has no record of it (a migration started before versions were
   * recorded). null or absent: none given, and without a record no version is undone.
   */
  versionBefore?: string | null;
  /** DownMigrations: the migration files (with their down scripts). */
  migrations?: readonly Migration[];
  historyTable?: string;
  /** TruncateTables: the migration's target tables. */
  tables?: readonly string[];
}

export interface RollbackResult {
  action: RollbackAction;
  /** Schema versions undone, newest first. */
  reverted: string[];
  /** The schema version before the rollback ran, and afterwards. */
  versionBefore: string | null;
  version: string | null;
  droppedTables: string[];
  /** PostgreSQL enum types this migration had created. */
  droppedTypes: string[];
  truncatedTables: string[];
  checkpointsCleared: number;
  warnings: string[];
}

/** Runs `fn` with this session's foreign key checks off, where the engine has them (MySQL: drops and truncates of related tables). */
async function withoutForeignKeyChecks<T>(session: SqlSession, fn: () => Promise<T>): Promise<T> {
  const checks = session.dialect.foreignKeyChecks;
  if (!checks) return fn();
  await session.query(checks.off);
  try {
    return await fn();
  } finally {
    await session.query(checks.on);
  }
}

/**
 * Drops the tables this migration created and forgets them. A record still 'intended' after
 * prepareBookkeeping confirmed what it could names a table that does not exist, or one created
 * later by someone else (schema/created-tables.ts): never dropped, only forgotten.
 */
export async function dropCreatedTables(session: SqlSession, uid: string, warnings: string[] = []): Promise<string[]> {
  const tables = await createdTables(session, uid, ['created']);
  const intended = await createdTables(session, uid, ['intended']);
  const existing: string[] = [];
  for (const table of tables) if (await tableExists(session, table)) existing.push(table);
  for (const table of intended) {
    if (await tableExists(session, table)) warnings.push(`table ${table} was left in place: this migration recorded the intent to create it, but it was created later, by someone else`);
  }
  const q = session.dialect;
  if (existing.length > 0) {
    // One statement: foreign keys between the created tables do not dictate an order.
    await withoutForeignKeyChecks(session, () => session.query(`DROP TABLE IF EXISTS ${existing.map((t) => q.quoteQualified(t)).join(', ')}`));
  }
  await forgetCreated(session, uid, 'tables', [...tables, ...intended]);
  // The ON UPDATE triggers' functions (schema/on-update.ts): unused once their tables are gone.
  await dropCreatedFunctions(session, uid, warnings);
  return existing;
}

/**
 * Drops the enum types this migration created (after its tables) and forgets them. A type
 * something else still uses (a table created since) is left in place with a warning.
 */
export async function dropCreatedTypes(session: SqlSession, uid: string, warnings: string[]): Promise<string[]> {
  const types = await createdTypes(session, uid);
  const dropped: string[] = [];
  for (const type of types) {
    if (!await typeExists(session, type)) continue;
    try {
      await session.query(`DROP TYPE ${type}`); // RESTRICT: never a column of someone else's table
      dropped.push(type);
    } catch (error) {
      warnings.push(`type ${type} was created by this migration but is still in use, so it was left in place: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  await forgetCreated(session, uid, 'types', types);
  return dropped;
}

/** Empties the given tables (those that exist). */
export async function truncateTables(session: SqlSession, tables: readonly string[]): Promise<string[]> {
  const existing: string[] = [];
  for (const table of new Set(tables)) if (await tableExists(session, table)) existing.push(table);
  if (existing.length === 0) return [];
  const q = session.dialect;
  await withoutForeignKeyChecks(session, async () => {
    for (const statement of q.truncateStatements(existing.map((t) => q.quoteQualified(t)))) await session.query(statement);
  });
  return existing;
}


/** The uid in a history row's installed_by (steps.ts installedBy); undefined when it names none. */
function applyingUid(installedBy: string): string | undefined {
  return /^datamigration uid=(\S+) /.exec(installedBy)?.[1];
}

/**
 * Why DownMigrations to `to` would undo what is not this migration's: a version above it applied
 * by another uid, or (versions whose row names no uid) another migration's version before above
 * this one's. Empty: every version it would undo is its own.
 */
async function foreignVersionReasons(target: SqlSession, uid: string, to: string | null, historyTable: string): Promise<string[]> {
  if (!await historyTableExists(target, historyTable)) return [];
  const above = (await readHistory(target, historyTable)).filter((row) => to === null || compareVersions(row.version, to) > 0);
  const reasons: string[] = [];
  const foreign = above.filter((row) => { const owner = applyingUid(row.installedBy); return owner !== undefined && owner !== uid; });
  for (const row of foreign) reasons.push(`version ${row.version} was applied by another migration (${row.installedBy}, ${row.installedOn}): undoing it is that migration's rollback, not this one's`);
  if (above.some((row) => applyingUid(row.installedBy) === undefined)) {
    const later = (await otherBaselines(target, uid)).filter((o) => to === null || (o.versionBefore !== null && compareVersions(o.versionBefore, to) > 0));
    for (const other of later) {
      reasons.push(`migration uid ${other.uid} (${other.name}) started at version ${other.versionBefore ?? 'none'}, above this migration's ${to ?? 'none'}: versions above it may be that migration's, and this one's rollback will not undo them`);
    }
  }
  return reasons;
}

/**
 * The version DownMigrations returns to: the target's record of this migration's version before;
 * without one, the caller's (never "every version" for want of a value).
 */
async function versionToReturnTo(target: SqlSession, options: RollbackOptions, warnings: string[]): Promise<{ undo: false } | { undo: true; to: string | null }> {
  const baseline = await readBaseline(target, options.identity.uid);
  if (baseline.recorded) {
    if (options.versionBefore && options.versionBefore !== baseline.versionBefore) {
      warnings.push(`the version given (${options.versionBefore}) is not the one recorded in the target before this migration's first schema step (${baseline.versionBefore ?? 'none'}, at ${baseline.at}): the recorded one is used`);
    }
    return { undo: true, to: baseline.versionBefore };
  }
  if (options.versionBefore) {
    warnings.push(`the target has no record of the version before this migration (it started under an operator version that did not record it): returning to the version given, ${options.versionBefore}`);
    return { undo: true, to: options.versionBefore };
  }
  warnings.push('the target has no record of the version before this migration (its schema step never ran, or the migration finished) and none was given: no schema version was undone');
  return { undo: false };
}

/** Rolls the target back by policy. `target` is a read-write session on the target only. */
export async function rollbackTarget(target: SqlSession, options: RollbackOptions): Promise<RollbackResult> {
  const historyTable = options.historyTable ?? 'dataops_schema_history';
  const result: RollbackResult = {
    action: options.action, reverted: [], versionBefore: await schemaVersion(target, historyTable), version: null, droppedTables: [], droppedTypes: [], truncatedTables: [], checkpointsCleared: 0, warnings: [],
  };
  const uid = options.identity.uid;
  if (options.action !== 'None') {
    await prepareBookkeeping(target, options.identity);
    const finished = await retiredAt(target, uid);
    if (finished !== undefined) {
      throw new PlanRefusedError([`this migration (uid ${uid}, ${options.identity.name}) finished at ${finished}: what it made is the application's now, and rolling it back is not this migration's to do`], `${options.action} refused, nothing was changed`);
    }
  }
  switch (options.action) {
    case 'None':
      result.warnings.push('rollback action None: the target was left as it is');
      break;
    case 'DownMigrations': {
      const to = await versionToReturnTo(target, options, result.warnings);
      if (to.undo && (options.migrations ?? []).length > 0) {
        const foreign = await foreignVersionReasons(target, uid, to.to, historyTable);
        if (foreign.length > 0) throw new PlanRefusedError(foreign, 'DownMigrations refused, nothing was undone');
      }
      // Created tables first: the down scripts may drop tables they reference.
      result.droppedTables = await dropCreatedTables(target, uid, result.warnings);
      result.droppedTypes = await dropCreatedTypes(target, uid, result.warnings);
      const migrations = options.migrations ?? [];
      const current = result.versionBefore;
      if (!to.undo) break;
      if (migrations.length === 0) {
        if (current !== to.to) result.warnings.push(`no migrations given: the schema stays at version ${current ?? 'none'}`);
      } else {
        const down = await migrateDown(target, migrations, { historyTable, toVersion: to.to });
        result.reverted = down.reverted;
      }
      break;
    }
    case 'DropCreatedTables':
      result.droppedTables = await dropCreatedTables(target, uid, result.warnings);
      result.droppedTypes = await dropCreatedTypes(target, uid, result.warnings);
      if (result.droppedTables.length === 0) result.warnings.push('no tables created by this migration exist');
      break;
    case 'TruncateTables': {
      const tables = options.tables ?? [];
      const foreign = await foreignRecordReasons(target, options.identity, tables);
      if (foreign.length > 0) throw new PlanRefusedError(foreign, 'TruncateTables refused, nothing was emptied');
      const plan = await tablesToEmpty(target, uid, tables);
      if (plan.refused.length > 0) throw new PlanRefusedError(plan.refused, 'TruncateTables refused, nothing was emptied');
      if (plan.untouched.length > 0) result.warnings.push(`left as they are (this migration has no record of writing into them or creating them): ${plan.untouched.join(', ')}`);
      result.truncatedTables = await truncateTables(target, plan.empty);
      break;
    }
  }
  if (options.action !== 'None') result.checkpointsCleared = await clearMigrationCheckpoints(target, uid);
  result.version = await schemaVersion(target, historyTable);
  return result;
}

/**
 * Which target tables TruncateTables may empty: those this migration created, and those that were
 * empty when it claimed them (every row in them is then the migration's or written since by
 * whoever uses it). A table that held rows before, or whose state at the claim is unknown (a copy
 * started by an operator version without claims), is refused: emptying it would lose those rows.
 */
async function tablesToEmpty(target: SqlSession, uid: string, tables: readonly string[]): Promise<{ empty: string[]; refused: string[]; untouched: string[] }> {
  const names = new TableNames(target);
  const ownership = await rowsOwnership(target, uid, tables);
  const checkpointed = await names.canonicalAll(await checkpointedTables(target, uid));
  const out = { empty: [] as string[], refused: [] as string[], untouched: [] as string[] };
  for (const table of tables) {
    const owned = ownership.get(table);
    if (ownsEveryRow(owned)) out.empty.push(table);
    else if (owned === 'heldRows') out.refused.push(`table ${table} held rows before this migration first wrote to it: emptying it would delete them too; remove what the migration wrote by hand`);
    else if (checkpointed.has(await names.canonical(table))) out.refused.push(`table ${table}: this migration copied into it, but the target has no record of whether it was empty before (the copy began under an operator version that did not record it): empty it by hand if that is right`);
    else out.untouched.push(table);
  }
  return out;
}

/** The target tables this migration's checkpoints name (it copied or synced into them). */
async function checkpointedTables(session: SqlSession, uid: string): Promise<string[]> {
  if (!await tableExists(session, CHECKPOINT_TABLE)) return [];
  const q = session.dialect;
  const rows = await session.query(`SELECT DISTINCT table_name FROM ${q.quoteIdent(CHECKPOINT_TABLE)} WHERE migration_uid IN (${q.placeholder(1)}, ${q.placeholder(2)})`, [uid, `${uid}#sync`]);
  return rows.map((r) => (r.table_name?.toString() ?? '').replace(/^sync:/, ''));
}
