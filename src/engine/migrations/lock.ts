// One migrator at a time per database: a session-level lock held while migrations run, so two
// Jobs (or a Job and a person) starting at once apply each migration exactly once.
import type { SqlSession } from '../db/session.ts';

export const DEFAULT_LOCK_TIMEOUT_SECONDS = 600;

export interface MigrationLockOptions {
  /** How long to wait for another migrator to finish before giving up. */
  timeoutSeconds?: number;
  /** What the lock guards, for the errors (default: "the migration lock"). */
  what?: string;
  /** Who holds it when the wait times out (default: another migration). */
  heldBy?: string;
}

/**
 * A lock name that means this database: `<purpose>:<name>` where locks belong to one database
 * (PostgreSQL advisory locks), `<purpose>:<database>.<name>` where they are server wide (MySQL GET_LOCK).
 */
export async function databaseLockName(session: SqlSession, purpose: string, name: string): Promise<string> {
  if (session.dialect.lockScope === 'database') return `${purpose}:${name}`;
  const [row] = await session.query(session.dialect.currentDatabaseSql);
  return `${purpose}:${row?.db?.toString() ?? ''}.${name}`;
}

function lockTimeoutError(name: string, seconds: number, options: MigrationLockOptions): Error {
  return new Error(`timed out after ${seconds} s waiting for ${options.what ?? 'the migration lock'} "${name}": ${options.heldBy ?? 'another migration is running against this database'}`);
}

async function acquire(session: SqlSession, name: string, seconds: number, options: MigrationLockOptions): Promise<void> {
  const attempt = await session.dialect.acquireLock(session, name, seconds);
  if (attempt.outcome === 'acquired') return;
  if (attempt.outcome === 'timeout') throw lockTimeoutError(name, seconds, options);
  throw new Error(`cannot take ${options.what ?? 'the migration lock'} "${name}": ${attempt.detail}`);
}

async function release(session: SqlSession, name: string): Promise<void> {
  await session.dialect.releaseLock(session, name);
}

/**
 * Runs `fn` holding the lock `name` if no one holds it now; undefined (and `fn` not run) when
 * someone does.
 */
export async function tryWithLock<T>(session: SqlSession, name: string, fn: () => Promise<T>): Promise<T | undefined> {
  if (!await session.dialect.tryLock(session, name)) return undefined;
  try {
    return await fn();
  } finally {
    await release(session, name).catch(() => undefined);
  }
}

/**
 * Runs `fn` holding the lock `name` on this session: PostgreSQL pg_advisory_lock(hashtext(name))
 * (advisory locks are per database), MySQL GET_LOCK(name, timeout) (per server, so callers put
 * the database in the name). Fails with a clear error after the timeout; always releases.
 */
export async function withMigrationLock<T>(session: SqlSession, name: string, fn: () => Promise<T>, options: MigrationLockOptions = {}): Promise<T> {
  const seconds = options.timeoutSeconds ?? DEFAULT_LOCK_TIMEOUT_SECONDS;
  await acquire(session, name, seconds, options);
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    // The lock also ends with the connection; a failed release must not hide the real error.
    await release(session, name).catch(() => undefined);
    throw error;
  }
  await release(session, name);
  return result;
}
