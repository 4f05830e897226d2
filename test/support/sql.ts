// Small SQL helpers for tests, through the engine's own sessions (real drivers, real servers).
import { openSession } from '../../src/engine/db/connect.ts';

/** Runs statements in order on a read-write session. */
export async function execSql(url: string, statements: readonly string[]): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    for (const statement of statements) await session.query(statement);
  } finally {
    await session.close();
  }
}

/** The first column of the first row, as text ('' when there is none); read only. */
export async function scalar(url: string, sql: string): Promise<string> {
  const session = await openSession(url, { readOnly: true });
  try {
    const [row] = await session.query(sql);
    return String(Object.values(row ?? {})[0] ?? '');
  } finally {
    await session.close();
  }
}
