// The target remembers which tables (and PostgreSQL enum types) a migration created, not the
// user's own: only those tables get indexes and foreign keys added after the copy, and only those
// tables and types may a rollback drop.
import { tableExists } from '../db/catalog.ts';
import type { SqlSession } from '../db/session.ts';

export const CREATED_TABLES_TABLE = 'dataops_created_table';
export const CREATED_TYPES_TABLE = 'dataops_created_type';

export async function ensureCreatedTablesTable(session: SqlSession): Promise<void> {
  const q = session.dialect;
  const text = q.bookkeeping.keyText(255);
  const options = q.bookkeeping.tableOptions;
  await session.query(`CREATE TABLE IF NOT EXISTS ${q.quoteIdent(CREATED_TABLES_TABLE)} (migration ${text} NOT NULL, table_name ${text} NOT NULL, PRIMARY KEY (migration, table_name))${options}`);
  if (q.namedEnumTypes) {
    await session.query(`CREATE TABLE IF NOT EXISTS ${q.quoteIdent(CREATED_TYPES_TABLE)} (migration ${text} NOT NULL, type_name ${text} NOT NULL, PRIMARY KEY (migration, type_name))${options}`);
  }
}

/** Whether a PostgreSQL type (as SQL text, quoted where needed) exists. */
export async function typeExists(session: SqlSession, type: string): Promise<boolean> {
  const [row] = await session.query('SELECT to_regtype($1) IS NOT NULL AS found', [type]);
  return ['t', 'true'].includes(row?.found?.toString() ?? '');
}

export async function recordCreatedType(session: SqlSession, migration: string, type: string): Promise<void> {
  await session.query(`INSERT INTO ${session.dialect.quoteIdent(CREATED_TYPES_TABLE)} (migration, type_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [migration, type]);
}

/** The named enum types this migration created (PostgreSQL), in the order to drop them. */
export async function createdTypes(session: SqlSession, migration: string): Promise<string[]> {
  if (!session.dialect.namedEnumTypes || !await tableExists(session, CREATED_TYPES_TABLE)) return [];
  const rows = await session.query(`SELECT type_name FROM ${session.dialect.quoteIdent(CREATED_TYPES_TABLE)} WHERE migration = $1 ORDER BY type_name`, [migration]);
  return rows.map((r) => String(r.type_name));
}

export async function recordCreatedTable(session: SqlSession, migration: string, table: string): Promise<void> {
  const q = session.dialect;
  await session.query(`INSERT INTO ${q.quoteIdent(CREATED_TABLES_TABLE)} (migration, table_name) VALUES (${q.placeholder(1)}, ${q.placeholder(2)})`, [migration, table]);
}

export async function createdTables(session: SqlSession, migration: string): Promise<string[]> {
  const q = session.dialect;
  if (!await tableExists(session, CREATED_TABLES_TABLE)) return [];
  const rows = await session.query(`SELECT table_name FROM ${q.quoteIdent(CREATED_TABLES_TABLE)} WHERE migration = ${q.placeholder(1)} ORDER BY table_name`, [migration]);
  return rows.map((r) => String(r.table_name));
}
