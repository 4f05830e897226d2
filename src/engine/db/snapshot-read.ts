// A read-only session's transaction that reads one snapshot until it ends, taken at once: the
// target's side of a validation at a cut (pipeline/validate-at-cut.ts), begun at the moment the
// follower holds the target exactly at the cut.
import type { Engine } from './dialect.ts';
import type { SqlSession } from './session.ts';

const STATEMENTS: Record<Engine, readonly string[]> = {
  // The snapshot is taken by the first statement after BEGIN, not by BEGIN.
  postgres: ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', 'SELECT 1'],
  // WITH CONSISTENT SNAPSHOT is ignored below REPEATABLE READ (a server may default to READ COMMITTED).
  mysql: ['SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY'],
};

export async function beginSnapshotRead(session: SqlSession): Promise<void> {
  for (const statement of STATEMENTS[session.engine]) await session.query(statement);
}
