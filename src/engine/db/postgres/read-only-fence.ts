// The SourceReadOnly fence on PostgreSQL (see ../read-only-fence.ts): `ALTER DATABASE … SET
// default_transaction_read_only = on`, which every session started afterwards takes as its
// default, then every client session of the database that started before it is terminated
// (its open transaction rolled back), and waited for until none is left. The application's pool
// reconnects read-only. Not terminated: walsenders (the capture's slot must keep streaming) and
// other background processes, this step's own session, and the migration's own sessions (its
// role, application_name datamigration…: read-only sessions, and the sync pod's would fail).
// Honestly: a session can still `SET default_transaction_read_only = off` (or begin READ WRITE)
// itself; this fences the application's normal writes, not an adversary.
import { text } from '../catalog-rows.ts';
import { FenceRefused, type AppliedFence, type ReadOnlyFence } from '../read-only-fence.ts';
import type { SqlSession } from '../session.ts';

/** The database's own setting (not a role's, not the server's): what the fence changes and restores. */
const DATABASE_SETTING = `SELECT pg_catalog.substr(c, pg_catalog.strpos(c, '=') OPERATOR(pg_catalog.+) 1) AS value
  FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) AS c
 WHERE s.setrole OPERATOR(pg_catalog.=) 0
   AND s.setdatabase OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
   AND pg_catalog.lower(pg_catalog.split_part(c, '=', 1)) OPERATOR(pg_catalog.=) 'default_transaction_read_only'`;

/**
 * Client sessions of this database that began at or before `$1` (and at or after `$2`, when
 * given), other than this one and the migration's own; `superuser`: whether its role is one (only
 * a superuser may end those).
 */
const SESSIONS_BEFORE = `SELECT a.pid::pg_catalog.text AS pid, a.usename AS role, COALESCE(r.rolsuper, false)::pg_catalog.text AS superuser
  FROM pg_catalog.pg_stat_activity a LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.usesysid
 WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
   AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
   AND a.backend_type OPERATOR(pg_catalog.=) 'client backend'
   AND a.backend_start OPERATOR(pg_catalog.<=) $1::pg_catalog.timestamptz
   AND ($2::pg_catalog.timestamptz IS NULL OR a.backend_start OPERATOR(pg_catalog.>=) $2::pg_catalog.timestamptz)
   AND NOT (a.usename OPERATOR(pg_catalog.=) SESSION_USER AND COALESCE(a.application_name, '') OPERATOR(pg_catalog.~~) 'datamigration%')`;

const PRIVILEGES = `SELECT CURRENT_USER AS role, d.datname AS database, pg_catalog.pg_get_userbyid(d.datdba) AS owner,
       (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)::pg_catalog.text AS superuser,
       pg_catalog.pg_has_role(d.datdba, 'USAGE')::pg_catalog.text AS owns,
       pg_catalog.pg_has_role('pg_signal_backend', 'USAGE')::pg_catalog.text AS may_signal,
       pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')::pg_catalog.text AS may_see
  FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()`;

/** PostgreSQL's boolean spellings (parse_bool): on, off, true, false, yes, no, 1, 0 and unique prefixes. */
export function parsePostgresBoolean(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'on' || v === '1' || (v.length > 0 && ('true'.startsWith(v) || 'yes'.startsWith(v)))) return true;
  if (v === 'off' || v === 'of' || v === '0' || (v.length > 0 && ('false'.startsWith(v) || 'no'.startsWith(v)))) return false;
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms); });

async function databaseName(source: SqlSession): Promise<string> {
  const [row] = await source.query('SELECT pg_catalog.current_database() AS name');
  return text(row?.name) ?? '';
}

async function serverClock(source: SqlSession): Promise<string> {
  const [row] = await source.query('SELECT pg_catalog.clock_timestamp()::pg_catalog.text AS now');
  return text(row?.now) ?? '';
}

/**
 * Terminates the sessions SESSIONS_BEFORE finds between `since` and `until` until none is left
 * (within `waitMs`); returns how many it ended. New sessions after `until` are left alone: they
 * start with the database's setting as it is now.
 */
async function endSessions(source: SqlSession, until: string, since: string | null, waitMs: number, what: string): Promise<number> {
  const ended = new Set<string>();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const left = await source.query(SESSIONS_BEFORE, [until, since]);
    if (left.length === 0) return ended.size;
    if (Date.now() >= deadline) {
      throw new Error(`${String(left.length)} session(s) ${what} are still connected to the source database after ${String(Math.round(waitMs / 1000))} s (pids ${left.map((row) => text(row.pid) ?? '?').slice(0, 10).join(', ')})`);
    }
    // One round trip for all of them (the fence's write-blocked window waits on it).
    const pids = left.map((row) => text(row.pid) ?? '').filter((pid) => /^\d+$/.test(pid));
    const signalled = await source.query('SELECT pid::pg_catalog.text AS pid, pg_catalog.pg_terminate_backend(pid)::pg_catalog.text AS ended FROM pg_catalog.unnest($1::pg_catalog.int4[]) AS pid', [pids]);
    for (const row of signalled) if (text(row.ended) === 'true') ended.add(text(row.pid) ?? '');
    await sleep(100);
  }
}

/** This step's session writes whatever the database's default says (the fence may be up already: a second run, the unfence). */
async function readWrite(source: SqlSession): Promise<void> {
  await source.query('SET default_transaction_read_only = off');
}

export const postgresReadOnlyFence: ReadOnlyFence = {
  async problems(source) {
    const [row] = await source.query(PRIVILEGES);
    if (!row) return ['the source database is not in pg_database'];
    if (text(row.superuser) === 'true') return [];
    const role = text(row.role) ?? '?';
    const database = text(row.database) ?? '?';
    const problems: string[] = [];
    if (text(row.owns) !== 'true') {
      problems.push(`the source role ${role} neither owns database ${database} (its owner is ${text(row.owner) ?? '?'}) nor is a superuser: ALTER DATABASE … SET default_transaction_read_only needs one of them (ALTER DATABASE … OWNER TO ${role}, or GRANT ${text(row.owner) ?? 'the owner'} TO ${role})`);
    }
    if (text(row.may_signal) !== 'true') problems.push(`the source role ${role} lacks pg_signal_backend (GRANT pg_signal_backend TO ${role}), which ending the application's sessions needs`);
    // Without it, another role's sessions show no backend_type or backend_start: the application's could not be told from walsenders, nor from sessions that began read-only.
    if (text(row.may_see) !== 'true') problems.push(`the source role ${role} lacks pg_read_all_stats (GRANT pg_read_all_stats TO ${role}, or pg_monitor), which telling the application's sessions from the capture's walsender needs`);
    return problems;
  },

  async current(source) {
    const rows = await source.query(DATABASE_SETTING);
    const value = text(rows.at(-1)?.value);
    if (value === undefined) return 'unset';
    const parsed = parsePostgresBoolean(value);
    if (parsed === undefined) throw new FenceRefused([`the database's default_transaction_read_only is "${value.slice(0, 32)}", not a boolean the fence could restore`]);
    return parsed ? 'on' : 'off';
  },

  clock: serverClock,

  async apply(source, waitMs) {
    await readWrite(source);
    const [self] = await source.query('SELECT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)::pg_catalog.text AS superuser');
    // Sessions of a superuser only a superuser may end: refused before anything changes.
    if (text(self?.superuser) !== 'true') {
      const untouchable = (await source.query(SESSIONS_BEFORE, [await serverClock(source), null])).filter((row) => text(row.superuser) === 'true');
      if (untouchable.length > 0) {
        const roles = [...new Set(untouchable.map((row) => text(row.role) ?? '?'))];
        throw new FenceRefused([`${String(untouchable.length)} session(s) of the superuser role(s) ${roles.join(', ')} are connected to the source database: only a superuser can end them, and they could go on writing`]);
      }
    }
    const database = source.dialect.quoteIdent(await databaseName(source));
    await source.query(`ALTER DATABASE ${database} SET default_transaction_read_only = on`);
    // Sessions that began after this take the new default; those that began before may not have.
    const sessionsEnded = await endSessions(source, await serverClock(source), null, waitMs, 'that began before the fence (the database stays read-only for new sessions until the fence is lifted)');
    const notes = ['a session can still turn default_transaction_read_only off for itself (SET, or BEGIN READ WRITE): the fence stops the application\'s ordinary writes, not one that works around it'];
    return { sessionsEnded, notes } satisfies AppliedFence;
  },

  async restore(source, previous, fencedSince, waitMs) {
    await readWrite(source);
    const database = source.dialect.quoteIdent(await databaseName(source));
    await source.query(previous === 'unset'
      ? `ALTER DATABASE ${database} RESET default_transaction_read_only`
      : `ALTER DATABASE ${database} SET default_transaction_read_only = ${previous}`);
    // Sessions the application opened while the fence stood began read-only and stay so: ended, its
    // pool reconnects able to write (not when the database was read-only before the fence anyway).
    if (previous === 'on' || fencedSince === undefined) return 0;
    return endSessions(source, await serverClock(source), fencedSince, waitMs, 'that began read-only while the fence stood');
  },
};
