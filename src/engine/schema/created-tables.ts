// The target remembers which tables a migration created (not the user's own): only those get
// indexes and foreign keys added after the copy, and only those may a rollback drop.
import type { SqlSession } from '../db/session.ts';

export const CREATED_TABLES_TABLE = 'dataops_created_table';

export async function ensureCreatedTablesTable(session: SqlSession): Promise<void> {
  const q = session.dialect;
  const text = session.engine === 'postgres' ? 'text' : 'varchar(255)';
  const suffix = session.engine === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin' : '';
  await session.query(`CREATE TABLE IF NOT EXISTS ${q.quoteIdent(CREATED_TABLES_TABLE)} (migration ${text} NOT NULL, table_name ${text} NOT NULL, PRIMARY KEY (migration, table_name))${suffix}`);
}

export async function recordCreatedTable(session: SqlSession, migration: string, table: string): Promise<void> {
  const q = session.dialect;
  await session.query(`INSERT INTO ${q.quoteIdent(CREATED_TABLES_TABLE)} (migration, table_name) VALUES (${q.placeholder(1)}, ${q.placeholder(2)})`, [migration, table]);
}

export async function createdTables(session: SqlSession, migration: string): Promise<string[]> {
  const q = session.dialect;
  const [exists] = await session.query(session.engine === 'postgres'
    ? `SELECT 1 AS found FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
    : `SELECT 1 AS found FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, [CREATED_TABLES_TABLE]);
  if (!exists) return [];
  const rows = await session.query(`SELECT table_name FROM ${q.quoteIdent(CREATED_TABLES_TABLE)} WHERE migration = ${q.placeholder(1)} ORDER BY table_name`, [migration]);
  return rows.map((r) => String(r.table_name));
}
