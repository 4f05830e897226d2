// The migrations the target has seen, one row per DataMigration uid: its namespace/name (for
// people and for adopting rows an earlier version wrote under the name), and the schema version
// before its first schema step changed anything — the "version before" a DownMigrations rollback
// returns to. That version is recorded once, by the first attempt, under the migration lock and
// before any migration is applied: a retried schema step never overwrites it, and rollback reads
// it from here, never from the status, which a lost or retried Job can leave wrong.
import type { SqlSession, SqlValue } from '../db/session.ts';
import { tableExists } from '../db/catalog.ts';
import { createIfAbsent } from './create-if-absent.ts';

export const REGISTRY_TABLE = 'dataops_migration';

/** Who a migration is: its uid (the records' owner) and namespace/name (for people, and legacy rows). */
export interface MigrationIdentity {
  uid: string;
  name: string;
  /** metadata.creationTimestamp (RFC 3339), when the manifest has one: decides adopting rows written before uids. */
  createdAt?: string;
}

/** What the registry says of the schema version before a migration: recorded or not, and which. */
export type Baseline = { recorded: false } | { recorded: true; versionBefore: string | null; at: string };

export async function ensureRegistryTable(session: SqlSession): Promise<void> {
  const d = session.dialect;
  const t = d.bookkeeping;
  await createIfAbsent(session, `CREATE TABLE IF NOT EXISTS ${d.quoteIdent(REGISTRY_TABLE)} (migration_uid ${t.keyText(255)} NOT NULL PRIMARY KEY, `
    + `migration_name ${t.keyText(255)} NOT NULL, registered_at ${t.timestamp} NOT NULL DEFAULT ${t.timestampDefault}, `
    + `baseline_recorded ${t.boolean} NOT NULL DEFAULT ${d.booleanLiteral(false)}, version_before ${t.keyText(100)}, baseline_at ${t.timestamp} NULL, `
    + `retired_at ${t.timestamp} NULL)${t.tableOptions}`);
}

/** Adds the migration to the registry unless it is there. */
export async function registerMigration(session: SqlSession, identity: MigrationIdentity): Promise<void> {
  const d = session.dialect;
  await session.query(
    `INSERT INTO ${d.quoteIdent(REGISTRY_TABLE)} (migration_uid, migration_name) VALUES (${d.placeholder(1)}, ${d.placeholder(2)})${d.onConflictSql(['migration_uid'], [])}`,
    [identity.uid, identity.name],
  );
}

/**
 * Records the version before the migration unless one is recorded (the first attempt's wins).
 * `version` null: the database had no schema version. Call under the migration lock, before
 * anything is applied.
 */
export async function recordBaseline(session: SqlSession, identity: MigrationIdentity, version: string | null): Promise<void> {
  const d = session.dialect;
  await ensureRegistryTable(session);
  await registerMigration(session, identity);
  await session.query(
    `UPDATE ${d.quoteIdent(REGISTRY_TABLE)} SET baseline_recorded = ${d.booleanLiteral(true)}, version_before = ${d.placeholder(1)}, baseline_at = ${d.bookkeeping.utcNow} `
      + `WHERE migration_uid = ${d.placeholder(2)} AND baseline_recorded = ${d.booleanLiteral(false)}`,
    [version, identity.uid],
  );
}

const text = (value: SqlValue | undefined): string | null => (value === null || value === undefined ? null : value.toString());

export async function readBaseline(session: SqlSession, uid: string): Promise<Baseline> {
  if (!await tableExists(session, REGISTRY_TABLE)) return { recorded: false };
  const d = session.dialect;
  const [row] = await session.query(
    `SELECT baseline_recorded, version_before, baseline_at FROM ${d.quoteIdent(REGISTRY_TABLE)} WHERE migration_uid = ${d.placeholder(1)}`, [uid],
  );
  if (!row || !['t', 'true', '1'].includes(text(row.baseline_recorded) ?? '')) return { recorded: false };
  return { recorded: true, versionBefore: text(row.version_before), at: text(row.baseline_at) ?? '' };
}

/**
 * A finished migration: marked retired. Its baseline stays (other migrations' DownMigrations
 * rollbacks read it to see whose versions lie above theirs); its own rollback is refused.
 */
export async function retireRegistration(session: SqlSession, identity: MigrationIdentity): Promise<void> {
  const d = session.dialect;
  await ensureRegistryTable(session);
  await registerMigration(session, identity);
  await session.query(`UPDATE ${d.quoteIdent(REGISTRY_TABLE)} SET retired_at = ${d.bookkeeping.utcNow} WHERE migration_uid = ${d.placeholder(1)} AND retired_at IS NULL`, [identity.uid]);
}

/** The recorded versions before of the other migrations (retired ones included). */
export async function otherBaselines(session: SqlSession, uid: string): Promise<{ uid: string; name: string; versionBefore: string | null }[]> {
  if (!await tableExists(session, REGISTRY_TABLE)) return [];
  const d = session.dialect;
  const rows = await session.query(
    `SELECT migration_uid, migration_name, version_before FROM ${d.quoteIdent(REGISTRY_TABLE)} WHERE migration_uid <> ${d.placeholder(1)} AND baseline_recorded = ${d.booleanLiteral(true)}`, [uid],
  );
  return rows.map((r) => ({ uid: text(r.migration_uid) ?? '', name: text(r.migration_name) ?? '', versionBefore: text(r.version_before) }));
}

/** When the migration was retired (it finished), as the database prints it; undefined: it was not. */
export async function retiredAt(session: SqlSession, uid: string): Promise<string | undefined> {
  if (!await tableExists(session, REGISTRY_TABLE)) return undefined;
  const d = session.dialect;
  const [row] = await session.query(`SELECT retired_at FROM ${d.quoteIdent(REGISTRY_TABLE)} WHERE migration_uid = ${d.placeholder(1)}`, [uid]);
  return text(row?.retired_at) ?? undefined;
}

/** namespace/name of the registered uids (for messages); unknown ones are left out. */
export async function registeredNames(session: SqlSession, uids: readonly string[]): Promise<Map<string, string>> {
  if (uids.length === 0 || !await tableExists(session, REGISTRY_TABLE)) return new Map();
  const d = session.dialect;
  const rows = await session.query(
    `SELECT migration_uid, migration_name FROM ${d.quoteIdent(REGISTRY_TABLE)} WHERE migration_uid IN (${uids.map((_, i) => d.placeholder(i + 1)).join(', ')})`, [...uids],
  );
  return new Map(rows.map((r) => [text(r.migration_uid) ?? '', text(r.migration_name) ?? '']));
}
