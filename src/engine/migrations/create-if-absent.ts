// CREATE TABLE IF NOT EXISTS is not safe against itself on PostgreSQL: two sessions creating the
// same table at once can both pass the check, and the second fails on the catalog's unique index
// ("duplicate key value violates unique constraint pg_type_typname_nsp_index") or with "already
// exists". The table then exists, made by the other: running the statement again succeeds.
import type { SqlSession } from '../db/session.ts';

const RACE = /pg_type_typname_nsp_index|already exists/i;
const ATTEMPTS = 3;

/** Runs a CREATE … IF NOT EXISTS, again when it lost a race with another session creating the same table. */
export async function createIfAbsent(session: SqlSession, sql: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await session.query(sql);
      return;
    } catch (error) {
      if (attempt >= ATTEMPTS || !RACE.test(error instanceof Error ? error.message : String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}
