// What the database's catalog says, asked the same way everywhere.
import { tableAndSchema } from './dialect.ts';
import type { SqlSession } from './session.ts';

/** Whether a table (optionally schema-qualified) exists: in the current schema / database unless named. */
export async function tableExists(session: SqlSession, name: string): Promise<boolean> {
  const { table, schema } = tableAndSchema(name);
  const { sql, params } = session.dialect.tableExistsQuery(table, schema);
  return (await session.query(sql, params)).length > 0;
}
