// The post-copy statements of the tables a migration created (keys, indexes, foreign keys; see
// ddl.ts afterCopyDdl), run so that a failure says where: the step, the table and the statement.
import type { SqlSession } from '../db/session.ts';

export interface AfterCopyStatement {
  /** The source table (as the manifest names it) the statement is for. */
  table: string;
  sql: string;
}

/** Longest part of a statement an error quotes (an index or key statement; it holds names, no values). */
const STATEMENT_EXCERPT = 300;

/**
 * One post-copy statement; its failure names the step, the table and the statement (bounded),
 * since the rows are all copied by then and a rerun fails the same way until the cause is fixed.
 */
export async function runAfterCopy(target: SqlSession, statement: AfterCopyStatement): Promise<void> {
  try {
    await target.query(statement.sql);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const sql = statement.sql.length > STATEMENT_EXCERPT ? `${statement.sql.slice(0, STATEMENT_EXCERPT)}…` : statement.sql;
    throw new Error(`copy step, after the copy (keys, indexes and foreign keys of the created tables): table ${statement.table}: ${reason.slice(0, 500)}; the statement was: ${sql}`, { cause: error });
  }
}

