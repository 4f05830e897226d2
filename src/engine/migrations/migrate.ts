// Applies and undoes versioned schema migrations on the target database, Flyway style: the
// history table says which versions are applied, every applied script must still match its
// checksum, and a lock makes concurrent migrators take turns.
//
// PostgreSQL has transactional DDL: each migration runs with its history row in one
// transaction, so a failure leaves nothing of it. MySQL commits every DDL statement on its own:
// statements run one by one, and a failure is recorded (success = false) so that nothing runs
// again until an operator has repaired the schema by hand and deleted that row.
import { adapterFor } from '../db/adapter.ts';
import type { Engine } from '../db/dialect.ts';
import type { SqlSession } from '../db/session.ts';
import { compareVersions, normalizeVersion, sortMigrations, type Migration } from './files.ts';
import {
  DEFAULT_HISTORY_TABLE, deleteHistoryRow, deleteHistoryRowSql, ensureHistoryTable, historyTableExists,
  markMigrationFailed, readHistory, recordMigration, type HistoryRow,
} from './history.ts';
import { databaseLockName, withMigrationLock } from './lock.ts';
import { splitScript, type ScriptStatement } from './split.ts';

export interface MigrateUpOptions {
  /** Default dataops_schema_history. */
  historyTable?: string;
  /** Apply versions up to and including this one; default all. */
  targetVersion?: string;
  /** Stored in the history rows; default the database user. */
  installedBy?: string;
  /** How long to wait for another migrator (default 600 s). */
  lockTimeoutSeconds?: number;
  /**
   * Called under the lock with the version before anything is applied, before anything is: where
   * the caller records it (registry.ts), so the record is never later than the change.
   */
  beforeApply?: (versionBefore: string | null) => Promise<void>;
}

export interface MigrateUpResult {
  /** Versions applied by this call, in order. */
  applied: string[];
  /** The schema version afterwards (null: none applied). */
  version: string | null;
  versionBefore: string | null;
}

export interface MigrateDownOptions {
  historyTable?: string;
  /** Undo every applied version above this one; null undoes them all. */
  toVersion: string | null;
  lockTimeoutSeconds?: number;
}

export interface MigrateDownResult {
  /** Versions undone by this call, newest first. */
  reverted: string[];
  version: string | null;
  versionBefore: string | null;
}

const PREVIEW_CHARS = 200;

/** The first 200 characters of a statement, on one line. */
export function statementPreview(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > PREVIEW_CHARS ? `${flat.slice(0, PREVIEW_CHARS)}…` : flat;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sameVersion(a: string, b: string): boolean {
  return compareVersions(a, b) === 0;
}

function label(migration: { version: string; description: string }): string {
  return migration.description ? `migration ${migration.version} (${migration.description})` : `migration ${migration.version}`;
}

/** The highest successfully applied version, or null. */
function currentVersion(history: readonly HistoryRow[]): string | null {
  return history.filter((row) => row.success).at(-1)?.version ?? null;
}

/**
 * Checks the history against the migrations before anything runs: no failed row (a MySQL
 * migration that stopped half way), every applied version still among the migrations, and
 * every applied checksum equal to its script's.
 */
export function checkHistory(history: readonly HistoryRow[], migrations: readonly Migration[], context: { engine: Engine; repairSql: (version: string) => string; table: string }): void {
  const failed = history.filter((row) => !row.success);
  if (failed.length > 0) {
    const adapter = adapterFor(context.engine);
    const partly = adapter.transactionalDdl ? '' : ` (${adapter.displayName} cannot roll back DDL, so part of it may be applied)`;
    throw new Error(failed.map((row) => `${label(row)} failed on ${row.installedOn} and is recorded as failed in ${context.table}${partly}. `
      + `Repair the schema by hand (finish or undo what its statements did), then delete the row with: ${context.repairSql(row.version)}; and run the migrations again`).join('. '));
  }
  const problems: string[] = [];
  for (const row of history) {
    const migration = migrations.find((m) => sameVersion(m.version, row.version));
    if (!migration) {
      problems.push(`${label(row)} is applied in the database (${context.table}) but is not among the migrations: were the files deleted, or are they older than the database?`);
    } else if (migration.checksum !== row.checksum) {
      problems.push(`migration ${row.version} was changed after it was applied: applied checksum ${row.checksum}, file checksum ${migration.checksum}`);
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
}

async function databaseUser(session: SqlSession): Promise<string> {
  const [row] = await session.query(session.dialect.currentUserSql);
  return row?.who?.toString() ?? 'unknown';
}

function statementsOf(migration: Migration, script: string, what: 'up' | 'down', engine: Engine): ScriptStatement[] {
  try {
    return splitScript(script, engine);
  } catch (error) {
    throw new Error(`${what === 'up' ? '' : 'undo script of '}${label(migration)}: ${messageOf(error)}`, { cause: error });
  }
}

function statementFailure(migration: Migration, what: 'up' | 'down', statements: readonly ScriptStatement[], index: number, error: unknown): string {
  const statement = statements[index];
  const where = `statement ${index + 1} of ${statements.length}${statement ? ` (line ${statement.line})` : ''}`;
  return `${what === 'up' ? '' : 'undo of '}${label(migration)} failed at ${where}: ${statementPreview(statement?.text ?? '')}: ${messageOf(error)}`;
}

function committedNote(index: number, what: 'up' | 'down'): string {
  const script = what === 'up' ? 'this migration' : 'the undo script';
  if (index === 0) return `no earlier statement of ${script} had run`;
  const earlier = index === 1 ? 'statement 1' : `statements 1 to ${index}`;
  return `${earlier} of ${script} ${index === 1 ? 'was' : 'were'} already committed (MySQL has no transactional DDL, they are not rolled back)`;
}

/** Runs statements in one transaction with `finish` (the history change), DDL included; rolls back on any error. */
async function inTransaction(session: SqlSession, migration: Migration, what: 'up' | 'down', statements: readonly ScriptStatement[], finish: () => Promise<void>): Promise<void> {
  await session.query(session.dialect.beginStatement);
  try {
    for (const [index, statement] of statements.entries()) {
      try {
        await session.query(statement.text);
      } catch (error) {
        throw new Error(`${statementFailure(migration, what, statements, index, error)}; the transaction was rolled back, nothing of ${what === 'up' ? 'this migration was applied' : 'the undo was kept'}`, { cause: error });
      }
    }
    await finish();
    await session.query('COMMIT');
  } catch (error) {
    await session.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function applyOne(session: SqlSession, table: string, migration: Migration, statements: readonly ScriptStatement[], installedBy: string): Promise<void> {
  const started = performance.now();
  const row = (success: boolean) => ({
    version: migration.version, description: migration.description, checksum: migration.checksum, installedBy,
    executionMs: Math.round(performance.now() - started), success,
  });
  if (session.dialect.transactionalDdl) {
    await inTransaction(session, migration, 'up', statements, () => recordMigration(session, table, row(true)));
    return;
  }
  for (const [index, statement] of statements.entries()) {
    try {
      await session.query(statement.text);
    } catch (error) {
      let recorded = `it is recorded as failed in ${table}`;
      try {
        await recordMigration(session, table, row(false));
      } catch (recordError) {
        recorded = `recording the failure in ${table} failed too (${messageOf(recordError)})`;
      }
      throw new Error(`${statementFailure(migration, 'up', statements, index, error)}. ${committedNote(index, 'up')}; ${recorded}. `
        + `Repair the schema by hand, then delete the row with: ${deleteHistoryRowSql(session, table, migration.version)}; and run the migrations again`, { cause: error });
    }
  }
  await recordMigration(session, table, row(true));
}

async function revertOne(session: SqlSession, table: string, migration: Migration, statements: readonly ScriptStatement[]): Promise<void> {
  if (session.dialect.transactionalDdl) {
    await inTransaction(session, migration, 'down', statements, () => deleteHistoryRow(session, table, migration.version));
    return;
  }
  for (const [index, statement] of statements.entries()) {
    try {
      await session.query(statement.text);
    } catch (error) {
      let recorded = `migration ${migration.version} is now marked as failed in ${table}`;
      try {
        await markMigrationFailed(session, table, migration.version);
      } catch (markError) {
        recorded = `marking migration ${migration.version} as failed in ${table} failed too (${messageOf(markError)})`;
      }
      throw new Error(`${statementFailure(migration, 'down', statements, index, error)}. ${committedNote(index, 'down')}; ${recorded}. `
        + `Repair the schema by hand, then delete the row with: ${deleteHistoryRowSql(session, table, migration.version)}`, { cause: error });
    }
  }
  await deleteHistoryRow(session, table, migration.version);
}

/**
 * Applies the pending migrations in version order (up to targetVersion), under the migration
 * lock, after checking the applied ones (see checkHistory). A version older than the newest
 * applied one that was never applied is refused: it would run out of order.
 */
export async function migrateUp(session: SqlSession, migrations: readonly Migration[], options: MigrateUpOptions = {}): Promise<MigrateUpResult> {
  const table = options.historyTable ?? DEFAULT_HISTORY_TABLE;
  const sorted = sortMigrations(migrations);
  const target = options.targetVersion === undefined ? undefined : normalizeVersion(options.targetVersion);
  return withMigrationLock(session, await databaseLockName(session, 'dataops_migrate', table), async () => {
    await ensureHistoryTable(session, table);
    const history = await readHistory(session, table);
    checkHistory(history, sorted, { engine: session.engine, table, repairSql: (version) => deleteHistoryRowSql(session, table, version) });
    const versionBefore = currentVersion(history);
    await options.beforeApply?.(versionBefore);
    const pending = sorted.filter((m) => !history.some((row) => sameVersion(row.version, m.version)));
    const late = versionBefore === null ? [] : pending.filter((m) => compareVersions(m.version, versionBefore) < 0);
    if (late.length > 0) {
      throw new Error(`${late.map(label).join(', ')} ${late.length === 1 ? 'is' : 'are'} older than the applied version ${versionBefore} but ${late.length === 1 ? 'was' : 'were'} never applied: `
        + 'give new migrations a version above the applied one');
    }
    const chosen = pending.filter((m) => target === undefined || compareVersions(m.version, target) <= 0);
    // Split every script before running any, so a malformed one stops the run before it starts.
    const plans = chosen.map((migration) => ({ migration, statements: statementsOf(migration, migration.up, 'up', session.engine) }));
    const installedBy = options.installedBy ?? await databaseUser(session);
    const applied: string[] = [];
    for (const { migration, statements } of plans) {
      await applyOne(session, table, migration, statements, installedBy);
      applied.push(migration.version);
    }
    return { applied, versionBefore, version: applied.at(-1) ?? versionBefore };
  }, { timeoutSeconds: options.lockTimeoutSeconds });
}

/**
 * Undoes the applied versions above toVersion, newest first, with their U scripts, deleting
 * their history rows. Every one of them needs an undo script: a missing one is reported before
 * anything runs.
 */
export async function migrateDown(session: SqlSession, migrations: readonly Migration[], options: MigrateDownOptions): Promise<MigrateDownResult> {
  const table = options.historyTable ?? DEFAULT_HISTORY_TABLE;
  const sorted = sortMigrations(migrations);
  const to = options.toVersion === null ? null : normalizeVersion(options.toVersion);
  return withMigrationLock(session, await databaseLockName(session, 'dataops_migrate', table), async () => {
    if (!await historyTableExists(session, table)) return { reverted: [], version: null, versionBefore: null };
    const history = await readHistory(session, table);
    checkHistory(history, sorted, { engine: session.engine, table, repairSql: (version) => deleteHistoryRowSql(session, table, version) });
    const versionBefore = currentVersion(history);
    const undo = history.filter((row) => to === null || compareVersions(row.version, to) > 0).reverse()
      .map((row) => sorted.find((m) => sameVersion(m.version, row.version)))
      .filter((m) => m !== undefined);
    const missing = undo.filter((m) => m.down === undefined);
    if (missing.length > 0) {
      throw new Error(`cannot undo to version ${to ?? 'none'}: no undo script (U<version>__<description>.sql) for ${missing.map(label).join(', ')}; nothing was undone`);
    }
    const plans = undo.map((migration) => ({ migration, statements: statementsOf(migration, migration.down ?? '', 'down', session.engine) }));
    const reverted: string[] = [];
    for (const { migration, statements } of plans) {
      await revertOne(session, table, migration, statements);
      reverted.push(migration.version);
    }
    return { reverted, versionBefore, version: currentVersion(await readHistory(session, table)) };
  }, { timeoutSeconds: options.lockTimeoutSeconds });
}

/** The highest successfully applied version; null when none is (or there is no history table yet). */
export async function schemaVersion(session: SqlSession, historyTable = DEFAULT_HISTORY_TABLE): Promise<string | null> {
  if (!await historyTableExists(session, historyTable)) return null;
  return currentVersion(await readHistory(session, historyTable));
}
