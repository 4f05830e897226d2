// The target remembers which tables (and PostgreSQL enum types) a migration created, not the
// user's own: only those tables get indexes and foreign keys added after the copy, and only those
// tables and types may a rollback drop. Each record carries the DataMigration's uid.
//
// The record cannot lie about what existed before:
//   transactional DDL (PostgreSQL)  CREATE TYPE/TABLE and the record commit in one transaction;
//   otherwise (MySQL)               the intent is recorded first ('intended'), only after checking
//                                   that the table does not exist, then the table is created and
//                                   the record marked 'created'. A crash between the two leaves an
//                                   'intended' record: the table either does not exist (rollback
//                                   forgets the record) or exists; it is this migration's only when
//                                   MySQL's CREATE_TIME is within seconds of the intent (created
//                                   later, it is someone else's and never dropped).
// A finished (retired) migration's records stay, marked 'retired': rollback never drops those
// tables, and another migration that meets them is refused (migrations/ownership.ts).
import { tableExists } from '../db/catalog.ts';
import { createIfAbsent } from '../migrations/create-if-absent.ts';
import type { SqlSession } from '../db/session.ts';
import type { TableDdl } from './ddl.ts';
import { tableAndSchema } from '../db/dialect.ts';
import { retireCreatedFunctions } from './created-functions.ts';

export const CREATED_TABLES_TABLE = 'dataops_created_table';
export const CREATED_TYPES_TABLE = 'dataops_created_type';

/** intended: recorded before a CREATE that is not transactional; created: done; retired: the migration finished. */
export type CreatedState = 'intended' | 'created' | 'retired';

export async function ensureCreatedTablesTable(session: SqlSession): Promise<void> {
  const q = session.dialect;
  const { keyText, timestamp, timestampDefault, tableOptions } = q.bookkeeping;
  await createIfAbsent(session, `CREATE TABLE IF NOT EXISTS ${q.quoteIdent(CREATED_TABLES_TABLE)} (migration_uid ${keyText(255)} NOT NULL, table_name ${keyText(255)} NOT NULL, `
    + `state ${keyText(16)} NOT NULL DEFAULT 'created', recorded_at ${timestamp} NULL DEFAULT ${timestampDefault}, PRIMARY KEY (migration_uid, table_name))${tableOptions}`);
  if (q.namedEnumTypes) {
    await createIfAbsent(session, `CREATE TABLE IF NOT EXISTS ${q.quoteIdent(CREATED_TYPES_TABLE)} (migration_uid ${keyText(255)} NOT NULL, type_name ${keyText(255)} NOT NULL, `
      + `state ${keyText(16)} NOT NULL DEFAULT 'created', recorded_at ${timestamp} NULL DEFAULT ${timestampDefault}, PRIMARY KEY (migration_uid, type_name))${tableOptions}`);
  }
}

/** Whether a PostgreSQL type (as SQL text, quoted where needed) exists. */
export async function typeExists(session: SqlSession, type: string): Promise<boolean> {
  const [row] = await session.query('SELECT to_regtype($1) IS NOT NULL AS found', [type]);
  return ['t', 'true'].includes(row?.found?.toString() ?? '');
}

async function recordType(session: SqlSession, uid: string, type: string): Promise<void> {
  await session.query(`INSERT INTO ${session.dialect.quoteIdent(CREATED_TYPES_TABLE)} (migration_uid, type_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [uid, type]);
}

async function recordTable(session: SqlSession, uid: string, table: string, state: CreatedState): Promise<void> {
  const q = session.dialect;
  await session.query(
    `INSERT INTO ${q.quoteIdent(CREATED_TABLES_TABLE)} (migration_uid, table_name, state) VALUES (${q.placeholder(1)}, ${q.placeholder(2)}, ${q.placeholder(3)})${q.onConflictSql(['migration_uid', 'table_name'], ['state'])}`,
    [uid, table, state],
  );
}

async function setTableState(session: SqlSession, uid: string, table: string, state: CreatedState): Promise<void> {
  const q = session.dialect;
  await session.query(`UPDATE ${q.quoteIdent(CREATED_TABLES_TABLE)} SET state = ${q.placeholder(1)} WHERE migration_uid = ${q.placeholder(2)} AND table_name = ${q.placeholder(3)}`, [state, uid, table]);
}

async function forgetTable(session: SqlSession, uid: string, table: string): Promise<void> {
  const q = session.dialect;
  await session.query(`DELETE FROM ${q.quoteIdent(CREATED_TABLES_TABLE)} WHERE migration_uid = ${q.placeholder(1)} AND table_name = ${q.placeholder(2)}`, [uid, table]);
}

/**
 * Creates a table from its DDL and records it (and the enum types it made) as this migration's,
 * so that the record exists if and only if the table was created by it (see the file comment).
 * The table must not exist (the plan saw it missing).
 */
export async function createRecordedTable(session: SqlSession, uid: string, ddl: Pick<TableDdl, 'table' | 'create' | 'types'>): Promise<void> {
  const q = session.dialect;
  if (q.transactionalDdl) {
    await session.query(q.beginStatement);
    try {
      const newTypes: string[] = [];
      if (q.namedEnumTypes) for (const type of ddl.types) if (!await typeExists(session, type)) newTypes.push(type);
      for (const statement of ddl.create) await session.query(statement);
      await recordTable(session, uid, ddl.table, 'created');
      for (const type of newTypes) await recordType(session, uid, type);
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    return;
  }
  if (await tableExists(session, ddl.table)) throw new Error(`table ${ddl.table} exists already: it was created after the plan, by someone else; it is left alone`);
  await recordTable(session, uid, ddl.table, 'intended');
  let ran = 0;
  try {
    for (const statement of ddl.create) {
      await session.query(statement);
      ran++;
    }
  } catch (error) {
    // Nothing ran: the table is not this migration's (someone may have created it meanwhile).
    // Something ran (the CREATE itself): the table is, whatever failed after it.
    await (ran === 0 ? forgetTable(session, uid, ddl.table) : setTableState(session, uid, ddl.table, 'created')).catch(() => undefined);
    throw error;
  }
  await setTableState(session, uid, ddl.table, 'created');
}

/** How long after its intent a CREATE TABLE may run and still be this migration's (clock granularity on both sides). */
const INTENT_WINDOW_SECONDS = { before: 2, after: 10 };

/**
 * A record left 'intended' by a step that stopped between its CREATE and the record's update is
 * confirmed when the table exists and was created right after the intent (MySQL's CREATE_TIME
 * within seconds of recorded_at, both in the session's time zone). A table created later is
 * someone else's, made after this migration's step stopped: the record stays an intent, and
 * rollback never drops that table.
 */
export async function confirmIntendedTables(session: SqlSession, uid: string): Promise<void> {
  for (const table of await createdTables(session, uid, ['intended'])) {
    if (await createdRightAfterIntent(session, uid, table)) await setTableState(session, uid, table, 'created');
  }
}

async function createdRightAfterIntent(session: SqlSession, uid: string, table: string): Promise<boolean> {
  const q = session.dialect;
  if (q.transactionalDdl || !await tableExists(session, table)) return false;
  const { table: name, schema } = tableAndSchema(table);
  const [row] = await session.query(
    `SELECT 1 AS one FROM information_schema.TABLES t JOIN ${q.quoteIdent(CREATED_TABLES_TABLE)} r ON r.migration_uid = ? AND r.table_name = ? `
      + `WHERE t.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND t.TABLE_NAME = ? AND t.CREATE_TIME IS NOT NULL AND r.recorded_at IS NOT NULL `
      + `AND t.CREATE_TIME BETWEEN r.recorded_at - INTERVAL ${String(INTENT_WINDOW_SECONDS.before)} SECOND AND r.recorded_at + INTERVAL ${String(INTENT_WINDOW_SECONDS.after)} SECOND`,
    [uid, table, schema ?? null, name],
  );
  return row !== undefined;
}

/** The named enum types this migration created (PostgreSQL), in the order to drop them. */
export async function createdTypes(session: SqlSession, uid: string, states: readonly CreatedState[] = ['created']): Promise<string[]> {
  if (!session.dialect.namedEnumTypes || !await tableExists(session, CREATED_TYPES_TABLE)) return [];
  const q = session.dialect;
  const rows = await session.query(
    `SELECT type_name FROM ${q.quoteIdent(CREATED_TYPES_TABLE)} WHERE migration_uid = $1 AND state IN (${states.map((_, i) => q.placeholder(i + 2)).join(', ')}) ORDER BY type_name`,
    [uid, ...states],
  );
  return rows.map((r) => String(r.type_name));
}

/** The tables this migration created (in these states; default those it finished creating). */
export async function createdTables(session: SqlSession, uid: string, states: readonly CreatedState[] = ['created']): Promise<string[]> {
  const q = session.dialect;
  if (!await tableExists(session, CREATED_TABLES_TABLE)) return [];
  const rows = await session.query(
    `SELECT table_name FROM ${q.quoteIdent(CREATED_TABLES_TABLE)} WHERE migration_uid = ${q.placeholder(1)} AND state IN (${states.map((_, i) => q.placeholder(i + 2)).join(', ')}) ORDER BY table_name`,
    [uid, ...states],
  );
  return rows.map((r) => String(r.table_name));
}

/** Forgets records of this migration (after a rollback dropped what they name). */
export async function forgetCreated(session: SqlSession, uid: string, what: 'tables' | 'types', names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const q = session.dialect;
  const [table, column] = what === 'tables' ? [CREATED_TABLES_TABLE, 'table_name'] : [CREATED_TYPES_TABLE, 'type_name'];
  await session.query(
    `DELETE FROM ${q.quoteIdent(table)} WHERE migration_uid = ${q.placeholder(1)} AND ${column} IN (${names.map((_, i) => q.placeholder(i + 2)).join(', ')})`,
    [uid, ...names],
  );
}

/** A finished migration: its tables and types are the application's now, never dropped by a rollback. */
export async function retireCreated(session: SqlSession, uid: string): Promise<void> {
  const q = session.dialect;
  await retireCreatedFunctions(session, uid);
  for (const table of [CREATED_TABLES_TABLE, ...(q.namedEnumTypes ? [CREATED_TYPES_TABLE] : [])]) {
    if (!await tableExists(session, table)) continue;
    await session.query(`UPDATE ${q.quoteIdent(table)} SET state = 'retired' WHERE migration_uid = ${q.placeholder(1)}`, [uid]);
  }
}
