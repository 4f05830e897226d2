// The SourceReadOnly fence on MySQL/MariaDB (see ../read-only-fence.ts): FLUSH TABLES WITH READ
// LOCK (it waits for the statements in flight, and holds commits back), SET GLOBAL read_only = ON,
// UNLOCK TABLES. read_only binds the sessions already open too (a transaction that wrote before
// the fence cannot commit after it), so no session is ended. It is the server's setting: every
// database of the server becomes read-only, not only the migrated one. Accounts with SUPER
// (MySQL 8: CONNECTION_ADMIN; MariaDB 10.5.2+: READ_ONLY ADMIN) are not bound by it, nor are
// replication threads: the result's notes say so.
import { text } from '../catalog-rows.ts';
import { FenceRefused, type AppliedFence, type FenceSetting, type ReadOnlyFence } from '../read-only-fence.ts';
import type { SqlSession } from '../session.ts';
import { parseGrantLine } from './grants.ts';

/** Global privileges the session holds (SHOW GRANTS: the account's own and its active role's). */
async function globalPrivileges(source: SqlSession): Promise<Set<string>> {
  const granted = new Set<string>();
  for (const row of await source.query('SHOW GRANTS')) {
    const line = parseGrantLine(text(Object.values(row)[0]) ?? '');
    if (line.kind === 'privileges' && line.level === 'global') for (const privilege of line.privileges) granted.add(privilege);
  }
  return granted;
}

/** What lets an account set read_only: MySQL 8 SYSTEM_VARIABLES_ADMIN or SUPER; MariaDB READ_ONLY ADMIN, or SUPER before 11.0.1. */
async function readOnlySetters(source: SqlSession): Promise<string[]> {
  if ((await source.dialect.serverFlavor(source)) !== 'mariadb') return ['SYSTEM_VARIABLES_ADMIN', 'SUPER'];
  const [row] = await source.query('SELECT VERSION() AS version');
  const [major = 0] = (text(row?.version) ?? '').split('.').map(Number);
  return major < 11 ? ['READ_ONLY ADMIN', 'SUPER'] : ['READ_ONLY ADMIN'];
}

const ACCESS_DENIED = new Set([1044, 1045, 1142, 1227, 'ER_SPECIFIC_ACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR']);

function deniedByServer(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { errno, code } = error as { errno?: unknown; code?: unknown };
  return ACCESS_DENIED.has(errno as number) || ACCESS_DENIED.has(code as string);
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export const mysqlReadOnlyFence: ReadOnlyFence = {
  async problems(source) {
    const privileges = await globalPrivileges(source);
    if (privileges.has('ALL PRIVILEGES') || privileges.has('ALL')) return [];
    const [who] = await source.query('SELECT CURRENT_USER() AS who');
    const account = text(who?.who) ?? 'the source account';
    const problems: string[] = [];
    const setters = await readOnlySetters(source);
    if (!setters.some((privilege) => privileges.has(privilege))) {
      problems.push(`the source account ${account} lacks ${setters.join(' or ')} (GRANT … ON *.* TO …), which SET GLOBAL read_only needs`);
    }
    if (!privileges.has('RELOAD')) problems.push(`the source account ${account} lacks RELOAD (GRANT RELOAD ON *.* TO …), which FLUSH TABLES WITH READ LOCK needs to wait for the writes in flight`);
    return problems;
  },

  async current(source) {
    const [row] = await source.query('SELECT @@GLOBAL.read_only AS value');
    const value = (text(row?.value) ?? '').toUpperCase();
    if (value === '1' || value === 'ON') return 'on';
    if (value === '0' || value === 'OFF') return 'off';
    // MariaDB 11.x has further levels (NO_LOCK, …): put back as they were only by a person.
    throw new FenceRefused([`the server's read_only is ${value.slice(0, 32) || '?'}, which the fence could not restore exactly`]);
  },

  async apply(source, waitMs) {
    // The lock waits at most this long for statements in flight.
    await source.query(`SET SESSION lock_wait_timeout = ${String(Math.max(1, Math.ceil(waitMs / 1000)))}`);
    try {
      await source.query('FLUSH TABLES WITH READ LOCK');
    } catch (error) {
      if (deniedByServer(error)) throw new FenceRefused([`FLUSH TABLES WITH READ LOCK was refused: ${messageOf(error)}`]);
      throw error;
    }
    try {
      await source.query('SET GLOBAL read_only = ON');
    } catch (error) {
      if (deniedByServer(error)) throw new FenceRefused([`SET GLOBAL read_only was refused: ${messageOf(error)}`]);
      throw error;
    } finally {
      await source.query('UNLOCK TABLES');
    }
    const notes = [
      'read_only is the server\'s setting: every database of the source server is read-only now, not only the migrated one',
      'accounts with SUPER (MySQL 8: CONNECTION_ADMIN; MariaDB 10.5.2+: READ_ONLY ADMIN) are not bound by read_only and can still write, as can replication threads',
    ];
    return { sessionsEnded: 0, notes } satisfies AppliedFence;
  },

  async clock(source) {
    const [row] = await source.query('SELECT UTC_TIMESTAMP(6) AS now');
    return text(row?.now) ?? '';
  },

  async restore(source, previous: FenceSetting) {
    // 'unset' is PostgreSQL's; the server's setting always has a value. read_only binds every
    // session as it is now, so none has to be ended.
    await source.query(`SET GLOBAL read_only = ${previous === 'on' ? 'ON' : 'OFF'}`);
    return 0;
  },
};
