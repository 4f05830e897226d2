// Reads a table's shape from the database's own catalog into the engine-neutral TableInfo that
// the type map, the DDL and the copy planner work from. Each engine's catalog queries live with
// its adapter (db/postgres/introspect.ts, db/mysql/introspect.ts).
import type { SqlSession } from '../db/session.ts';
import type { TableInfo } from './model.ts';

/** The table's shape, or undefined when it does not exist. */
export async function introspectTable(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  return session.dialect.introspector.table(session, name);
}

/** Lists the base tables of the session's current schema (PostgreSQL) or database (MySQL). */
export async function listTables(session: SqlSession): Promise<string[]> {
  return session.dialect.introspector.tables(session);
}
