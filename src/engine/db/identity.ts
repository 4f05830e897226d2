// Source and target are different databases, proven from what each server says about itself
// before anything is written: URLs prove nothing (127.0.0.1 and localhost, two users, two Secrets
// holding one URL all reach the same database).
//
// Why these values (see the adapters' identity()):
// - PostgreSQL: pg_control_system().system_identifier is chosen by initdb and kept by every
//   physical copy of the cluster (a streaming replica, a restored base backup), so a replica of the
//   target used as the source is caught too; the database is compared by oid (one name can be
//   reached through a pooler alias). Executable by PUBLIC by default (tried with a plain role on
//   PostgreSQL 15); where an administrator revoked it, pg_postmaster_start_time() (microseconds,
//   readable by anyone, the same for every session of one running server) stands in: the same
//   server is still caught, a replica then is not.
//   Two servers with one system identifier that are both primaries (two restores of one backup)
//   are different databases: they are told apart by their start times; one that is a replica is
//   treated as the same (the primary's writes reach it).
// - MySQL: @@server_uuid (auto.cnf, unique per data directory). MariaDB has none; its @@server_uid
//   (a hash of a MAC address and the port) with @@hostname, @@port and @@datadir, all readable by a
//   user with no privileges, tells servers apart. The database is the schema (DATABASE()).
// A false "same" refuses a migration with a clear reason; a false "different" could overwrite the
// source, so every doubt resolves to "same".
import type { ServerIdentity } from './adapter.ts';
import { splitQualifiedName } from './dialect.ts';
import type { SqlSession } from './session.ts';

export interface SideIdentity extends ServerIdentity {
  engine: SqlSession['engine'];
  displayName: string;
}

export async function readIdentity(session: SqlSession): Promise<SideIdentity> {
  return { ...(await session.dialect.identity(session)), engine: session.engine, displayName: session.dialect.displayName };
}

/**
 * Whether `a` and `b` are on one server (or one cluster's data: a replica and its primary), so
 * an account of one may reach the other's databases (pipeline/source-reach.ts).
 */
export function sameServer(a: SideIdentity, b: SideIdentity): boolean {
  if (a.engine !== b.engine) return false;
  if (a.server !== undefined && b.server !== undefined) {
    if (a.server !== b.server) return false;
    // One cluster's data: the same running server, or a replica of the other.
    return a.inRecovery || b.inRecovery || a.started === b.started;
  }
  return a.fallbackServer === b.fallbackServer;
}

/** Whether writing to `b` can change what `a` reads (the same database, or a replica of it). */
export function sameDatabase(a: SideIdentity, b: SideIdentity): boolean {
  return sameServer(a, b) && a.database === b.database;
}

/** The reason to refuse the migration when source and target are one database; undefined when they are two. Pure. */
export function sameDatabaseRefusal(from: SideIdentity, to: SideIdentity): string | undefined {
  if (!sameDatabase(from, to)) return undefined;
  const replica = from.inRecovery || to.inRecovery ? ' (or a replica of it)' : '';
  return `the source and the target are the same database${replica}: ${from.displayName} database "${from.databaseName}" on server ${from.server ?? from.fallbackServer}, `
    + 'whatever the two connection URLs look like; the migration would write to the data it reads: point the target at another database';
}

/**
 * MySQL target tables qualified with a schema other than the target's own (DATABASE()): one
 * account on one server reaches every schema it has rights on, the source's among them, so a
 * `target: app.orders` would write the source's table. PostgreSQL names stay inside the
 * connected database, so any of its schemas is the target's.
 */
export async function foreignTargetSchemaReasons(target: SqlSession, tables: readonly { name: string; target?: string }[]): Promise<string[]> {
  if (target.engine !== 'mysql') return [];
  const [row] = await target.query(target.dialect.currentDatabaseSql);
  const own = row?.db?.toString() ?? '';
  const reasons: string[] = [];
  for (const table of tables) {
    const name = table.target ?? table.name;
    const parts = splitQualifiedName(name);
    const schema = parts.length > 1 ? parts[0] : undefined;
    if (schema !== undefined && schema !== own) {
      reasons.push(`spec.tables[${table.name}]: the target table ${name} is in schema ${schema}, not the target database ${own}: `
        + 'the target writes only its own database; name the table without a schema (or with the target database\'s)');
    }
  }
  return reasons;
}
