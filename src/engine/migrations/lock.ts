// One migrator at a time per database: a session-level lock held while migrations run, so two
// Jobs (or a Job and a person) starting at once apply each migration exactly once.
import { createHash } from 'node:crypto';
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

/** MySQL lock names are at most 64 characters; longer ones become a prefix plus a hash. */
export function mysqlLockName(name: string): string {
  if (name.length <= 64) return name;
  return `${name.slice(0, 31)}#${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
}

/**
 * A lock name that means this database: `<purpose>:<name>` on PostgreSQL (advisory locks belong to
 * one database), `<purpose>:<database>.<name>` on MySQL (GET_LOCK is server wide).
 */
export async function databaseLockName(session: SqlSession, purpose: string, name: string): Promise<string> {
  if (session.engine === 'postgres') return `${purpose}:${name}`;
  const [row] = await session.query('SELECT DATABASE() AS db');
  return `${purpose}:${row?.db?.toString() ?? ''}.${name}`;
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

function lockTimeoutError(name: string, seconds: number, options: MigrationLockOptions): Error {
  return new Error(`timed out after ${seconds} s waiting for ${options.what ?? 'the migration lock'} "${name}": ${options.heldBy ?? 'another migration is running against this database'}`);
}

async function acquire(session: SqlSession, name: string, seconds: number, options: MigrationLockOptions): Promise<void> {
  if (session.engine === 'postgres') {
    // Advisory locks wait forever; lock_timeout bounds the wait and is put back afterwards.
    const [previous] = await session.query("SELECT current_setting('lock_timeout') AS value");
    await session.query("SELECT set_config('lock_timeout', $1, false)", [`${Math.max(1, Math.round(seconds * 1000))}ms`]);
    try {
      await session.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
    } catch (error) {
      if (errorCode(error) === '55P03') throw lockTimeoutError(name, seconds, options);
      throw error;
    } finally {
      await session.query("SELECT set_config('lock_timeout', $1, false)", [previous?.value?.toString() ?? '0']);
    }
    return;
  }
  const [row] = await session.query('SELECT GET_LOCK(?, ?) AS acquired', [mysqlLockName(name), seconds]);
  const acquired = row?.acquired?.toString();
  if (acquired === '1') return;
  if (acquired === '0') throw lockTimeoutError(name, seconds, options);
  throw new Error(`cannot take ${options.what ?? 'the migration lock'} "${name}": GET_LOCK returned ${acquired ?? 'nothing'}`);
}

async function release(session: SqlSession, name: string): Promise<void> {
  if (session.engine === 'postgres') await session.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
  else await session.query('SELECT RELEASE_LOCK(?)', [mysqlLockName(name)]);
}

/**
 * Runs `fn` holding the lock `name` if no one holds it now; undefined (and `fn` not run) when
 * someone does.
 */
export async function tryWithLock<T>(session: SqlSession, name: string, fn: () => Promise<T>): Promise<T | undefined> {
  const [row] = session.engine === 'postgres'
    ? await session.query('SELECT pg_try_advisory_lock(hashtext($1)) AS taken', [name])
    : await session.query('SELECT GET_LOCK(?, 0) AS taken', [mysqlLockName(name)]);
  if (!['t', 'true', '1'].includes(row?.taken?.toString() ?? '')) return undefined;
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
