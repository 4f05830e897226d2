// Reads a table's shape from the database's own catalog into the engine-neutral TableInfo that
// the type map, the DDL and the copy planner work from. Each engine's catalog queries live with
// its adapter (db/postgres/introspect.ts, db/mysql/introspect.ts).
import type { SqlSession } from '../db/session.ts';
import type { TableInfo } from './model.ts';

/** The table's shape, or undefined when it does not exist. */
export async function introspectTable(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  return session.dialect.introspector.table(session, name);
}

/**
 * The prefix of this project's own bookkeeping tables (dataops_schema_history, dataops_migration,
 * dataops_copy_checkpoint, dataops_created_table, …): a database that was once a migration's target
 * has them, and they are never source tables, nor tables a migration claims or validates.
 */
export const BOOKKEEPING_PREFIX = 'dataops_';

export function isBookkeepingTable(name: string): boolean {
  return name.toLowerCase().startsWith(BOOKKEEPING_PREFIX);
}

/**
 * Lists the base tables of the session's current schema (PostgreSQL) or database (MySQL): the
 * tables a migration without spec.tables copies. Not the bookkeeping tables, nor a partitioned
 * table's partitions (its rows are read through it).
 */
export async function listTables(session: SqlSession): Promise<string[]> {
  return (await session.dialect.introspector.tables(session)).filter((name) => !isBookkeepingTable(name)).map(nameOfListedTable);
}

/**
 * A listed table's name as every step reads names (db/dialect.ts splitQualifiedName: a dot
 * qualifies, " and ` quote): a plain name as it is; one holding a dot, " or ` spelled in quoted
 * parts that read back as exactly that name (we"ird → "we"`"`"ird"), so it can be copied like any.
 */
export function nameOfListedTable(name: string): string {
  if (!/["`.]/.test(name)) return name;
  // Runs of " go in backticks, everything else in double quotes; adjacent quoted parts join.
  return (name.match(/"+|[^"]+/g) ?? []).map((part) => (part.startsWith('"') ? `\`${part}\`` : `"${part}"`)).join('');
}

/** This project's bookkeeping tables in the session's schema or database (what `dmctl cleanup` may drop, and the schema history), sorted. */
export async function listBookkeepingTables(session: SqlSession): Promise<string[]> {
  return (await session.dialect.introspector.tables(session)).filter(isBookkeepingTable).sort();
}
