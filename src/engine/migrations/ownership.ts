// Whose records the target's bookkeeping holds. Every record (checkpoints, created tables and
// types, the registry's version before) carries the DataMigration's uid, so a migration deleted and
// re-created under the same name is another migration: it does not resume the first one's copy,
// and its rollback cannot drop the first one's tables. A migration that finds another uid's
// records for its target tables is refused, with the SQL that forgets or adopts them.
//
// Tables are compared by canonical (schema, name) (table-names.ts), and the tables a migration
// writes rows into are claimed under a target-wide lock before its first row (claims.ts); the
// claims outlive retirement, so a later migration (another uid) for those tables is refused.
//
// Upgrade: tables written by a version without uids have a `migration` column holding
// namespace/name. It is renamed migration_uid (the primary keys follow), so such rows have the
// name where a uid belongs. A name is never a uid (settings.ts validates uids: Kubernetes uids
// are UUIDs, local identities are `local:ns/name`), so those rows are told apart. The migration of
// that namespace/name adopts them (its uid replaces the name) only when nothing else can have
// written them: no other uid of that name in the registry, and the migration existed before every
// such record was written (its creationTimestamp). Otherwise it is refused with the SQL to adopt.
import { captureOwner, CHECKPOINT_TABLE } from '../copy/checkpoint.ts';
import { tableExists } from '../db/catalog.ts';
import type { SqlSession, SqlValue } from '../db/session.ts';
import { CREATED_TABLES_TABLE, CREATED_TYPES_TABLE, confirmIntendedTables, retireCreated } from '../schema/created-tables.ts';
import { CLAIMED_TABLES_TABLE, claimTables } from './claims.ts';
import { databaseLockName, withMigrationLock } from './lock.ts';
import { ensureRegistryTable, REGISTRY_TABLE, registeredNames, registerMigration, retiredAt, retireRegistration, type MigrationIdentity } from './registry.ts';
import { TableNames } from './table-names.ts';

export type { MigrationIdentity } from './registry.ts';

/** The owner of a Trickle sync round's checkpoints (copy/sync). */
const SYNC_SUFFIX = '#sync';

/** Every owner name under which a migration's checkpoint rows are kept. */
export function checkpointOwners(uid: string): string[] {
  return [uid, uid + SYNC_SUFFIX, captureOwner(uid)];
}

/** The bookkeeping tables that hold per-migration rows, with their name column. */
const OWNED_TABLES = [
  { table: CHECKPOINT_TABLE, nameColumn: 'table_name' },
  { table: CREATED_TABLES_TABLE, nameColumn: 'table_name' },
  { table: CREATED_TYPES_TABLE, nameColumn: 'type_name' },
  { table: CLAIMED_TABLES_TABLE, nameColumn: 'table_name' },
] as const;

/** The owner column of a bookkeeping table: migration_uid, `migration` (before uids), or undefined (no table). */
export async function ownerColumn(session: SqlSession, table: string): Promise<'migration_uid' | 'migration' | undefined> {
  if (!await tableExists(session, table)) return undefined;
  const info = await session.dialect.introspector.table(session, table);
  return info?.columns.some((c) => c.name === 'migration_uid') ? 'migration_uid' : 'migration';
}

/** Renames a table's `migration` column (namespace/name) to migration_uid and adds what the records carry now. */
async function upgradeTable(session: SqlSession, table: string): Promise<void> {
  const d = session.dialect;
  const { keyText, timestamp } = d.bookkeeping;
  const statements = [`ALTER TABLE ${d.quoteIdent(table)} RENAME COLUMN migration TO migration_uid`];
  if (table !== CHECKPOINT_TABLE) {
    statements.push(`ALTER TABLE ${d.quoteIdent(table)} ADD COLUMN state ${keyText(16)} NOT NULL DEFAULT 'created'`, `ALTER TABLE ${d.quoteIdent(table)} ADD COLUMN recorded_at ${timestamp} NULL`);
  }
  if (!d.transactionalDdl) {
    for (const statement of statements) await session.query(statement);
    return;
  }
  await session.query(d.beginStatement);
  try {
    for (const statement of statements) await session.query(statement);
    await session.query('COMMIT');
  } catch (error) {
    await session.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Before a step writes: bookkeeping tables of an earlier version are upgraded, rows it wrote under
 * this migration's namespace/name are adopted when they can only be its own (see the file
 * comment), and a schema step's 'intended' tables that exist are confirmed. Nothing is created
 * here (a refused step writes nothing). Under a lock: pods starting at once upgrade once.
 */
export async function prepareBookkeeping(session: SqlSession, identity: MigrationIdentity): Promise<void> {
  await withBookkeepingLock(session, () => prepareUnlocked(session, identity));
}

/** Runs `fn` under the target-wide lock of the bookkeeping (upgrades, claims, table creation). */
export async function withBookkeepingLock<T>(session: SqlSession, fn: () => Promise<T>): Promise<T> {
  return withMigrationLock(session, await databaseLockName(session, 'dataops_bookkeeping', 'prepare'), fn, { what: 'the lock of the target\'s bookkeeping' });
}

async function prepareUnlocked(session: SqlSession, identity: MigrationIdentity): Promise<void> {
  const d = session.dialect;
  const upgraded: string[] = [];
  for (const { table } of OWNED_TABLES) {
    const column = await ownerColumn(session, table);
    if (column === undefined) continue;
    if (column === 'migration') await upgradeTable(session, table);
    upgraded.push(table);
  }
  if (upgraded.length > 0 && await mayAdoptLegacy(session, identity)) {
    for (const table of upgraded) {
      for (const [from, to] of [[identity.name, identity.uid], [identity.name + SYNC_SUFFIX, identity.uid + SYNC_SUFFIX]]) {
        await session.query(`UPDATE ${d.quoteIdent(table)} SET migration_uid = ${d.placeholder(1)} WHERE migration_uid = ${d.placeholder(2)}`, [to, from]);
      }
    }
  }
  await confirmIntendedTables(session, identity.uid);
}

/**
 * Whether rows written under this migration's namespace/name (before uids) are its own: no other
 * uid of that name is registered, and the migration was created before every such checkpoint was
 * written. Without a creation time (a local manifest), or without checkpoints to date them: no
 * (the refusal gives the SQL to adopt them explicitly).
 */
async function mayAdoptLegacy(session: SqlSession, identity: MigrationIdentity): Promise<boolean> {
  if (!identity.createdAt) return false;
  const created = new Date(identity.createdAt);
  if (Number.isNaN(created.getTime())) return false;
  const d = session.dialect;
  if (await tableExists(session, REGISTRY_TABLE)) {
    const [other] = await session.query(`SELECT migration_uid FROM ${d.quoteIdent(REGISTRY_TABLE)} WHERE migration_name = ${d.placeholder(1)} AND migration_uid <> ${d.placeholder(2)}`, [identity.name, identity.uid]);
    if (other) return false;
  }
  const column = await ownerColumn(session, CHECKPOINT_TABLE);
  if (column === undefined) return false;
  const createdSql = d.utcTimestampLiteral(created);
  const owners = `${d.quoteIdent(column)} IN (${d.placeholder(1)}, ${d.placeholder(2)})`;
  const [row] = await session.query(
    `SELECT count(*) AS n, sum(CASE WHEN updated_at >= ${createdSql} THEN 1 ELSE 0 END) AS later FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE ${owners}`,
    [identity.name, identity.name + SYNC_SUFFIX],
  );
  const n = Number(text(row?.n) || '0');
  return n > 0 && Number(text(row?.later) || '0') === n;
}

/**
 * Claims the tables this migration writes rows into (claims.ts) and registers it, under the
 * bookkeeping lock, after checking again that no other migration's records name them: two
 * migrations claiming one table at once cannot both pass. The reasons it must not go on, empty
 * when the claim was written.
 */
export async function claimTargetTables(session: SqlSession, identity: MigrationIdentity, tables: readonly string[]): Promise<string[]> {
  return withBookkeepingLock(session, async () => {
    await prepareUnlocked(session, identity);
    const reasons = await ownershipReasons(session, identity, tables);
    if (reasons.length > 0) return reasons;
    await ensureRegistryTable(session);
    await registerMigration(session, identity);
    await claimTables(session, identity.uid, tables);
    return [];
  });
}

interface ForeignRecord {
  owner: string;
  kind: 'checkpoints' | 'created tables' | 'created types' | 'tables written';
  names: string[];
  /** Latest time a record of the group was written, as the database prints it ('' when unknown). */
  at: string;
}

const text = (value: SqlValue | undefined): string => (value === null || value === undefined ? '' : value.toString());

/** Rows of other migrations naming these tables (compared by canonical name), per owner; read only (the plan calls it). */
async function foreignRecords(session: SqlSession, identity: MigrationIdentity, tables: readonly string[]): Promise<ForeignRecord[]> {
  const d = session.dialect;
  if (tables.length === 0) return [];
  // Rows under its namespace/name count as its own where prepareBookkeeping would adopt them.
  const own = [...checkpointOwners(identity.uid), ...(await mayAdoptLegacy(session, identity) ? [identity.name, identity.name + SYNC_SUFFIX] : [])];
  const names = new TableNames(session);
  const wanted = await names.canonicalAll(tables);
  const found: ForeignRecord[] = [];
  for (const { table, nameColumn } of OWNED_TABLES) {
    const column = await ownerColumn(session, table);
    if (column === undefined) continue;
    const time = table === CHECKPOINT_TABLE ? 'updated_at' : column === 'migration_uid' ? 'recorded_at' : undefined;
    const rows = await session.query(
      `SELECT ${d.quoteIdent(column)} AS owner, ${nameColumn} AS name${time ? `, ${time} AS at` : ''} FROM ${d.quoteIdent(table)} `
        + `WHERE ${d.quoteIdent(column)} NOT IN (${own.map((_, i) => d.placeholder(i + 1)).join(', ')})`,
      [...own],
    );
    const kind = table === CHECKPOINT_TABLE ? 'checkpoints' : table === CREATED_TABLES_TABLE ? 'created tables' : table === CLAIMED_TABLES_TABLE ? 'tables written' : 'created types';
    const byOwner = new Map<string, ForeignRecord>();
    for (const row of rows) {
      const name = text(row.name).replace(/^sync:/, '');
      if (!wanted.has(await names.canonical(name)) && !(table === CREATED_TYPES_TABLE && tables.includes(name))) continue;
      const owner = text(row.owner).replace(/#sync$/, '');
      const record = byOwner.get(owner) ?? { owner, kind, names: [], at: '' };
      if (!record.names.includes(name)) record.names.push(name);
      const at = text(row.at);
      if (at > record.at) record.at = at;
      byOwner.set(owner, record);
    }
    found.push(...byOwner.values());
  }
  return found;
}

/** A name written before uids existed (namespace/name): neither a UUID nor a local identity. */
function isLegacyOwner(owner: string): boolean {
  return !owner.startsWith('local:') && owner.includes('/');
}

/**
 * Why this migration must not touch its target tables: other migrations' records for them, each
 * named with its uid and when it wrote them, and the SQL that forgets or adopts them. Empty: none.
 */
export async function foreignRecordReasons(session: SqlSession, identity: MigrationIdentity, tables: readonly string[]): Promise<string[]> {
  const records = await foreignRecords(session, identity, tables);
  if (records.length === 0) return [];
  const d = session.dialect;
  const owners = [...new Set(records.map((r) => r.owner))];
  const names = await registeredNames(session, owners.filter((o) => !isLegacyOwner(o)));
  const reasons: string[] = [];
  for (const owner of owners) {
    const who = isLegacyOwner(owner) ? `migration ${owner} (written by an operator version without uids)` : `migration uid ${owner}${names.get(owner) ? ` (${names.get(owner) ?? ''})` : ''}`;
    const what = records.filter((r) => r.owner === owner).map((r) => `${r.kind} ${r.names.join(', ')}${r.at ? ` (last written ${r.at})` : ''}`);
    const lit = (value: string): string => d.quoteLiteral(value);
    const tablesOf = await existingOwnedTables(session);
    const forget = await forgetRecordsSql(session, [owner]);
    const adopt = tablesOf.flatMap(({ table, column }) => [
      `UPDATE ${d.quoteIdent(table)} SET ${column} = ${lit(identity.uid)} WHERE ${column} = ${lit(owner)}`,
      ...(table === CHECKPOINT_TABLE ? [`UPDATE ${d.quoteIdent(table)} SET ${column} = ${lit(identity.uid + SYNC_SUFFIX)} WHERE ${column} = ${lit(owner + SYNC_SUFFIX)}`] : []),
    ]);
    reasons.push(`the target holds records of another migration, ${who}: ${what.join('; ')}. This migration (uid ${identity.uid}, ${identity.name}) will not touch them. `
      + `If that migration is finished or gone and what it made is yours now, forget its records: ${forget.join('; ')}; `
      + `or, to continue its work as this migration (resume its copy; its created tables become this migration's, which its rollback may drop): ${adopt.join('; ')}`);
  }
  return reasons;
}

/** Why this migration must not run again: it finished (was retired); empty when it did not. */
export async function finishedReasons(session: SqlSession, identity: MigrationIdentity): Promise<string[]> {
  const finished = await retiredAt(session, identity.uid);
  if (finished === undefined) return [];
  return [`this migration (uid ${identity.uid}, ${identity.name}) finished at ${finished}: running it again would copy into the tables it filled, which are the application's now. `
    + `To run it again from the start anyway, forget its records: ${(await forgetRecordsSql(session, [identity.uid])).join('; ')}`];
}

/**
 * The DELETE statements that forget these owners' records: their rows (and their sync's) in every
 * bookkeeping table that exists, and their registry rows (an owner from before uids has none).
 */
export async function forgetRecordsSql(session: SqlSession, owners: readonly string[]): Promise<string[]> {
  const d = session.dialect;
  const list = (values: readonly string[]): string => values.map((value) => d.quoteLiteral(value)).join(', ');
  const registered = owners.filter((owner) => !isLegacyOwner(owner));
  return [
    ...(await existingOwnedTables(session)).map(({ table, column }) => `DELETE FROM ${d.quoteIdent(table)} WHERE ${column} IN (${list(owners.flatMap((owner) => checkpointOwners(owner)))})`),
    ...(registered.length > 0 && await tableExists(session, REGISTRY_TABLE) ? [`DELETE FROM ${d.quoteIdent(REGISTRY_TABLE)} WHERE migration_uid IN (${list(registered)})`] : []),
  ];
}

/** Why this migration must not write to its target tables (finishedReasons, foreignRecordReasons). */
export async function ownershipReasons(session: SqlSession, identity: MigrationIdentity, tables: readonly string[]): Promise<string[]> {
  return [...await finishedReasons(session, identity), ...await foreignRecordReasons(session, identity, tables)];
}

async function existingOwnedTables(session: SqlSession): Promise<{ table: string; column: string }[]> {
  const found: { table: string; column: string }[] = [];
  for (const { table } of OWNED_TABLES) {
    const column = await ownerColumn(session, table);
    if (column) found.push({ table, column });
  }
  return found;
}

/**
 * A migration that finished: its checkpoints are deleted (a rerun copies afresh, nothing is found
 * "done"), its created tables are the application's (never dropped by a rollback, still named to
 * any other migration that targets them), and its version before is forgotten.
 */
export async function retireMigration(session: SqlSession, identity: MigrationIdentity): Promise<{ checkpoints: number }> {
  const checkpoints = await ownerColumn(session, CHECKPOINT_TABLE) === 'migration_uid' ? await clearMigrationCheckpoints(session, identity.uid) : 0;
  await retireCreated(session, identity.uid);
  await retireRegistration(session, identity);
  return { checkpoints };
}

/** Forgets a migration's copy checkpoints (its Trickle rounds' and change capture's too); the number of rows removed. */
export async function clearMigrationCheckpoints(session: SqlSession, uid: string): Promise<number> {
  if (!await tableExists(session, CHECKPOINT_TABLE)) return 0;
  const q = session.dialect;
  const names = checkpointOwners(uid);
  const owners = `migration_uid IN (${names.map((_, i) => q.placeholder(i + 1)).join(', ')})`;
  const [row] = await session.query(`SELECT count(*) AS n FROM ${q.quoteIdent(CHECKPOINT_TABLE)} WHERE ${owners}`, names);
  const count = Number(row?.n?.toString() ?? '0');
  if (count > 0) await session.query(`DELETE FROM ${q.quoteIdent(CHECKPOINT_TABLE)} WHERE ${owners}`, names);
  return count;
}
