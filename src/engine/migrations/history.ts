// The schema history table in the target database: one row per applied migration version, with
// the checksum of the script that was applied and whether it succeeded.
import { tableExists } from '../db/catalog.ts';
import { createIfAbsent } from './create-if-absent.ts';
import type { SqlSession, SqlValue } from '../db/session.ts';
import { compareVersions } from './files.ts';

export const DEFAULT_HISTORY_TABLE = 'dataops_schema_history';

export interface HistoryRow {
  version: string;
  description: string;
  checksum: string;
  installedBy: string;
  /** As the database prints it (UTC). */
  installedOn: string;
  executionMs: number;
  success: boolean;
}

export type NewHistoryRow = Omit<HistoryRow, 'installedOn'>;

export function createHistoryTableSql(session: SqlSession, table: string): string {
  const d = session.dialect;
  const t = d.bookkeeping;
  return `CREATE TABLE IF NOT EXISTS ${d.quoteQualified(table)} (version ${t.keyText(100)} NOT NULL PRIMARY KEY, description text NOT NULL, `
    + `checksum ${t.keyText(64)} NOT NULL, installed_by ${t.keyText(255)} NOT NULL, installed_on ${t.timestamp} NOT NULL DEFAULT ${t.timestampDefault}, `
    + `execution_ms bigint NOT NULL, success ${t.boolean} NOT NULL)${t.tableOptions}`;
}

export async function ensureHistoryTable(session: SqlSession, table = DEFAULT_HISTORY_TABLE): Promise<void> {
  await createIfAbsent(session, createHistoryTableSql(session, table));
}

/** Whether the history table exists (without creating it). */
export async function historyTableExists(session: SqlSession, table = DEFAULT_HISTORY_TABLE): Promise<boolean> {
  return tableExists(session, table);
}

function text(value: SqlValue | undefined): string {
  return value === null || value === undefined ? '' : value.toString();
}

function truthy(value: SqlValue | undefined): boolean {
  return ['t', 'true', '1'].includes(text(value).toLowerCase());
}

/** Every row of the history table, oldest version first. */
export async function readHistory(session: SqlSession, table = DEFAULT_HISTORY_TABLE): Promise<HistoryRow[]> {
  const rows = await session.query(
    `SELECT version, description, checksum, installed_by, installed_on, execution_ms, success FROM ${session.dialect.quoteQualified(table)}`,
  );
  return rows
    .map((row) => ({
      version: text(row.version),
      description: text(row.description),
      checksum: text(row.checksum),
      installedBy: text(row.installed_by),
      installedOn: text(row.installed_on),
      executionMs: Number(text(row.execution_ms)),
      success: truthy(row.success),
    }))
    .sort((a, b) => compareVersions(a.version, b.version));
}

export async function recordMigration(session: SqlSession, table: string, row: NewHistoryRow): Promise<void> {
  const d = session.dialect;
  const p = (k: number): string => d.placeholder(k);
  await session.query(
    `INSERT INTO ${d.quoteQualified(table)} (version, description, checksum, installed_by, execution_ms, success) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)})`,
    [row.version, row.description, row.checksum, row.installedBy, row.executionMs, d.booleanParam(row.success)],
  );
}

/** Marks an applied version as failed (an undo that stopped half way on MySQL). */
export async function markMigrationFailed(session: SqlSession, table: string, version: string): Promise<void> {
  const d = session.dialect;
  await session.query(
    `UPDATE ${d.quoteQualified(table)} SET success = ${d.booleanLiteral(false)} WHERE version = ${d.placeholder(1)}`,
    [version],
  );
}

export async function deleteHistoryRow(session: SqlSession, table: string, version: string): Promise<void> {
  const d = session.dialect;
  await session.query(`DELETE FROM ${d.quoteQualified(table)} WHERE version = ${d.placeholder(1)}`, [version]);
}

/** The statement an operator runs to forget a failed row once the schema is repaired by hand. */
export function deleteHistoryRowSql(session: SqlSession, table: string, version: string): string {
  const d = session.dialect;
  return `DELETE FROM ${d.quoteQualified(table)} WHERE version = ${d.quoteLiteral(version)}`;
}
