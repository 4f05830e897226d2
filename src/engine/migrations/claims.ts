// The tables a migration writes rows into (copy, sync), recorded in the target before its first
// row, under the bookkeeping lock (migrations/ownership.ts claimTables), with whether the table was
// EMPTY then. The record is durable: retiring a migration keeps it (a tombstone), so a migration
// created later under the same name (another uid) that targets those tables is refused, and only
// a table that was empty when this migration claimed it may a TruncateTables rollback empty.
import { tableExists } from '../db/catalog.ts';
import { createIfAbsent } from './create-if-absent.ts';
import type { SqlSession } from '../db/session.ts';
import { TableNames } from './table-names.ts';

export const CLAIMED_TABLES_TABLE = 'dataops_claimed_table';

export async function ensureClaimedTablesTable(session: SqlSession): Promise<void> {
  const d = session.dialect;
  const { keyText, boolean, timestamp, timestampDefault, tableOptions } = d.bookkeeping;
  await createIfAbsent(session, `CREATE TABLE IF NOT EXISTS ${d.quoteIdent(CLAIMED_TABLES_TABLE)} (migration_uid ${keyText(255)} NOT NULL, table_name ${keyText(255)} NOT NULL, `
    + `empty_at_claim ${boolean} NOT NULL, recorded_at ${timestamp} NULL DEFAULT ${timestampDefault}, PRIMARY KEY (migration_uid, table_name))${tableOptions}`);
}

/**
 * Records that this migration writes into these tables (canonical names), each with whether it
 * holds no row now; a table claimed before keeps its first record. Call under the bookkeeping lock.
 */
export async function claimTables(session: SqlSession, uid: string, tables: readonly string[]): Promise<void> {
  if (tables.length === 0) return;
  await ensureClaimedTablesTable(session);
  const d = session.dialect;
  const names = new TableNames(session);
  const have = await claimedTables(session, uid);
  for (const table of tables) {
    const name = await names.canonical(table);
    if (have.has(name)) continue;
    const empty = !await tableExists(session, table) || (await session.query(`SELECT 1 AS one FROM ${d.quoteQualified(table)} LIMIT 1`)).length === 0;
    await session.query(
      `INSERT INTO ${d.quoteIdent(CLAIMED_TABLES_TABLE)} (migration_uid, table_name, empty_at_claim) VALUES (${d.placeholder(1)}, ${d.placeholder(2)}, ${d.placeholder(3)})${d.onConflictSql(['migration_uid', 'table_name'], [])}`,
      [uid, name, d.booleanParam(empty)],
    );
  }
}

/** The tables this migration claimed (canonical names), with whether each was empty then. */
export async function claimedTables(session: SqlSession, uid: string): Promise<Map<string, boolean>> {
  if (!await tableExists(session, CLAIMED_TABLES_TABLE)) return new Map();
  const d = session.dialect;
  const rows = await session.query(`SELECT table_name, empty_at_claim FROM ${d.quoteIdent(CLAIMED_TABLES_TABLE)} WHERE migration_uid = ${d.placeholder(1)}`, [uid]);
  return new Map(rows.map((r) => [r.table_name?.toString() ?? '', ['t', 'true', '1'].includes(r.empty_at_claim?.toString() ?? '')]));
}
