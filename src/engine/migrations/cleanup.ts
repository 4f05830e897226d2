// Removing this project's bookkeeping from the target once no migration needs it (`dmctl
// cleanup`). The records exist so that a running or failed migration resumes, rolls back only what
// it made, and is told apart from another of the same name; while any migration could still do
// one of those, nothing is dropped, and the refusal names it with the way out (retire it, or
// forget its records). The schema history stays: it is the application's schema version, which
// its next migrations start from.
import { CHECKPOINT_TABLE } from '../copy/checkpoint.ts';
import { tableExists } from '../db/catalog.ts';
import type { SqlSession, SqlValue } from '../db/session.ts';
import { CREATED_TABLES_TABLE, CREATED_TYPES_TABLE } from '../schema/created-tables.ts';
import { CREATED_FUNCTIONS_TABLE } from '../schema/created-functions.ts';
import { CLAIMED_TABLES_TABLE } from './claims.ts';
import { forgetRecordsSql, ownerColumn, withBookkeepingLock } from './ownership.ts';
import { REGISTRY_TABLE } from './registry.ts';

/** What `dmctl cleanup` drops, in this order (the registry last: it names the others' owners). */
export const REMOVABLE_BOOKKEEPING = [CHECKPOINT_TABLE, CREATED_TABLES_TABLE, CREATED_TYPES_TABLE, CREATED_FUNCTIONS_TABLE, CLAIMED_TABLES_TABLE, REGISTRY_TABLE] as const;

export interface CleanupResult {
  /** The bookkeeping tables dropped (those that existed). */
  dropped: string[];
  /** Why nothing was dropped; empty when the cleanup ran. */
  reasons: string[];
}

const text = (value: SqlValue | undefined): string => (value === null || value === undefined ? '' : value.toString());
const LISTED = 10;

/**
 * Under the bookkeeping lock (no migration claims or prepares meanwhile): the reasons the
 * bookkeeping is still needed, or, when there are none, the tables dropped.
 */
export async function removeBookkeeping(session: SqlSession): Promise<CleanupResult> {
  return withBookkeepingLock(session, async () => {
    const reasons = await liveRecords(session);
    if (reasons.length > 0) return { dropped: [], reasons };
    const dropped: string[] = [];
    for (const table of REMOVABLE_BOOKKEEPING) {
      if (await ownerColumn(session, table) === undefined) continue;
      await session.query(`DROP TABLE ${session.dialect.quoteIdent(table)}`);
      dropped.push(table);
    }
    return { dropped, reasons: [] };
  });
}

/**
 * Records a migration still needs: one not retired in the registry (it may resume or roll back),
 * checkpoints (a copy to resume), tables or types recorded as created and not retired (a rollback
 * would drop them). Each names its migration and how to let it go.
 */
async function liveRecords(session: SqlSession): Promise<string[]> {
  const d = session.dialect;
  const owners = new Map<string, string[]>();
  const note = (uid: string, what: string): void => { owners.set(uid, [...owners.get(uid) ?? [], what]); };
  if (await tableExists(session, REGISTRY_TABLE)) {
    for (const row of await session.query(`SELECT migration_uid FROM ${d.quoteIdent(REGISTRY_TABLE)} WHERE retired_at IS NULL`)) note(text(row.migration_uid), 'not retired');
  }
  const checkpointOwner = await ownerColumn(session, CHECKPOINT_TABLE);
  if (checkpointOwner !== undefined) {
    for (const row of await session.query(`SELECT ${d.quoteIdent(checkpointOwner)} AS owner, count(*) AS n FROM ${d.quoteIdent(CHECKPOINT_TABLE)} GROUP BY ${d.quoteIdent(checkpointOwner)}`)) {
      note(text(row.owner).replace(/#sync$/, ''), `${text(row.n)} checkpoint(s)`);
    }
  }
  for (const [table, what] of [[CREATED_TABLES_TABLE, 'created table(s)'], [CREATED_TYPES_TABLE, 'created type(s)']] as const) {
    const column = await ownerColumn(session, table);
    if (column === undefined) continue;
    // Before uids these tables had no state: every record is live.
    const live = column === 'migration_uid' ? ` WHERE state <> ${d.quoteLiteral('retired')}` : '';
    for (const row of await session.query(`SELECT ${d.quoteIdent(column)} AS owner, count(*) AS n FROM ${d.quoteIdent(table)}${live} GROUP BY ${d.quoteIdent(column)}`)) {
      note(text(row.owner), `${text(row.n)} ${what} a rollback would drop`);
    }
  }
  if (owners.size === 0) return [];
  const names = await registryNames(session);
  const listed = [...owners].slice(0, LISTED).map(([uid, what]) => `${names.get(uid) ?? 'an unregistered migration'} (uid ${uid}): ${[...new Set(what)].join(', ')}`);
  const more = owners.size > LISTED ? `; and ${String(owners.size - LISTED)} more` : '';
  return [`the target's bookkeeping is still needed by ${String(owners.size)} migration(s): ${listed.join('; ')}${more}. `
    + 'Retire each finished one (`dmctl retire` with its manifest and uid) or roll it back; or, to give up what they would resume or roll back '
    + `(their tables become the application's), forget their records: ${(await forgetRecordsSql(session, [...owners.keys()])).join('; ')}. Then run cleanup again`];
}

async function registryNames(session: SqlSession): Promise<Map<string, string>> {
  if (!await tableExists(session, REGISTRY_TABLE)) return new Map();
  const rows = await session.query(`SELECT migration_uid, migration_name FROM ${session.dialect.quoteIdent(REGISTRY_TABLE)}`);
  return new Map(rows.map((row) => [text(row.migration_uid), text(row.migration_name)]));
}
