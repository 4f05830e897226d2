// What the database's catalog says, asked the same way everywhere.
import { splitQualifiedName } from './dialect.ts';
import type { SqlSession } from './session.ts';

/** Whether a table (optionally schema-qualified) exists: in the current schema / database unless named. */
export async function tableExists(session: SqlSession, name: string): Promise<boolean> {
  const parts = splitQualifiedName(name);
  const table = parts.pop() ?? name;
  const schema = parts.length > 0 ? parts.join('.') : undefined;
  const rows = session.engine === 'postgres'
    ? await session.query(`SELECT 1 AS found FROM information_schema.tables WHERE table_schema = ${schema ? '$2' : 'current_schema()'} AND table_name = $1`, schema ? [table, schema] : [table])
    : await session.query(`SELECT 1 AS found FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema ? '?' : 'DATABASE()'} AND TABLE_NAME = ?`, schema ? [schema, table] : [table]);
  return rows.length > 0;
}
