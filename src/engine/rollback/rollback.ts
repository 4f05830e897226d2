// Rollback of the target by policy, never touching the source:
//   DownMigrations     the down scripts back to the version recorded before this migration
//                      started, and the tables this migration created (createMissingTables) dropped
//   DropCreatedTables  the tables (and PostgreSQL enum types) this migration created dropped, and
//                      their records
//   TruncateTables     the migration's target tables emptied
//   None               nothing
// Every action but None also forgets the migration's copy checkpoints, so a later run starts
// clean. Each step checks what exists first: running rollback twice, or after a copy that
// stopped half way, is harmless.
import type { SqlSession } from '../db/session.ts';
import { CHECKPOINT_TABLE, clearCheckpoints } from '../copy/checkpoint.ts';
import type { Migration } from '../migrations/files.ts';
import { migrateDown, schemaVersion } from '../migrations/migrate.ts';
import { CREATED_TABLES_TABLE, CREATED_TYPES_TABLE, createdTables, createdTypes, typeExists } from '../schema/created-tables.ts';
import { tableExists } from '../db/catalog.ts';
import { ROLLBACK_SCHEMA_ACTIONS } from '../../api/constants.ts';

/** The API's schemaAction values (spec.rollback.schemaAction), listed once in src/api/constants.ts. */
export type RollbackAction = (typeof ROLLBACK_SCHEMA_ACTIONS)[number];

export interface RollbackOptions {
  action: RollbackAction;
  /** Names checkpoints and created-table records (namespace/name). */
  migration: string;
  /** DownMigrations: the schema version before this migration started (null: none, undo every version). */
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

/** Drops the tables this migration created and forgets them. */
export async function dropCreatedTables(session: SqlSession, migration: string): Promise<string[]> {
  const tables = await createdTables(session, migration);
  if (tables.length === 0) return [];
  const existing: string[] = [];
  for (const table of tables) if (await tableExists(session, table)) existing.push(table);
  const q = session.dialect;
  if (existing.length > 0) {
    // One statement: foreign keys between the created tables do not dictate an order.
    await withoutForeignKeyChecks(session, () => session.query(`DROP TABLE IF EXISTS ${existing.map((t) => q.quoteQualified(t)).join(', ')}`));
  }
  await session.query(`DELETE FROM ${q.quoteIdent(CREATED_TABLES_TABLE)} WHERE migration = ${q.placeholder(1)}`, [migration]);
  return existing;
}

/**
 * Drops the enum types this migration created (after its tables) and forgets them. A type
 * something else still uses (a table created since) is left in place with a warning.
 */
export async function dropCreatedTypes(session: SqlSession, migration: string, warnings: string[]): Promise<string[]> {
  const types = await createdTypes(session, migration);
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
  if (types.length > 0) await session.query(`DELETE FROM ${session.dialect.quoteIdent(CREATED_TYPES_TABLE)} WHERE migration = $1`, [migration]);
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

/** Forgets a migration's copy checkpoints; the number of rows removed. */
export async function clearMigrationCheckpoints(session: SqlSession, migration: string): Promise<number> {
  if (!await tableExists(session, CHECKPOINT_TABLE)) return 0;
  const q = session.dialect;
  const [row] = await session.query(`SELECT count(*) AS n FROM ${q.quoteIdent(CHECKPOINT_TABLE)} WHERE migration = ${q.placeholder(1)}`, [migration]);
  const count = Number(row?.n?.toString() ?? '0');
  if (count > 0) await clearCheckpoints(session, migration);
  return count;
}

/** Rolls the target back by policy. `target` is a read-write session on the target only. */
export async function rollbackTarget(target: SqlSession, options: RollbackOptions): Promise<RollbackResult> {
  const historyTable = options.historyTable ?? 'dataops_schema_history';
  const result: RollbackResult = {
    action: options.action, reverted: [], versionBefore: await schemaVersion(target, historyTable), version: null, droppedTables: [], droppedTypes: [], truncatedTables: [], checkpointsCleared: 0, warnings: [],
  };
  switch (options.action) {
    case 'None':
      result.warnings.push('rollback action None: the target was left as it is');
      break;
    case 'DownMigrations': {
      if (options.versionBefore === undefined) throw new Error('DownMigrations needs the schema version recorded before this migration started (versionBefore; null for none)');
      // Created tables first: the down scripts may drop tables they reference.
      result.droppedTables = await dropCreatedTables(target, options.migration);
      result.droppedTypes = await dropCreatedTypes(target, options.migration, result.warnings);
      const migrations = options.migrations ?? [];
      const current = result.versionBefore;
      if (migrations.length === 0) {
        if (current !== options.versionBefore) result.warnings.push(`no migrations given: the schema stays at version ${current ?? 'none'}`);
      } else {
        const down = await migrateDown(target, migrations, { historyTable, toVersion: options.versionBefore });
        result.reverted = down.reverted;
      }
      break;
    }
    case 'DropCreatedTables':
      result.droppedTables = await dropCreatedTables(target, options.migration);
      result.droppedTypes = await dropCreatedTypes(target, options.migration, result.warnings);
      if (result.droppedTables.length === 0) result.warnings.push('no tables created by this migration exist');
      break;
    case 'TruncateTables':
      result.truncatedTables = await truncateTables(target, options.tables ?? []);
      break;
  }
  if (options.action !== 'None') result.checkpointsCleared = await clearMigrationCheckpoints(target, options.migration);
  result.version = await schemaVersion(target, historyTable);
  return result;
}
