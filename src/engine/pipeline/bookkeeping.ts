// The steps' side of the target's bookkeeping (migrations/ownership.ts, registry.ts): before a step
// writes, the migration claims its target tables (its records ready, nobody else's there); after
// a successful run it retires what only a running migration needs.
import type { SqlSession } from '../db/session.ts';
import { claimTargetTables, ownershipReasons, prepareBookkeeping, retireMigration, type MigrationIdentity } from '../migrations/ownership.ts';
import { listTables } from '../schema/introspect.ts';
// The CLI's error class carries the exit code (2: bad input) through main's handler.
import { CliError, EXIT } from '../../cli/exit-codes.ts';
import { localIdentity, type EngineSettings } from './settings.ts';

/** The longest namespace/name the target's bookkeeping holds (its columns are 255 characters; a local identity adds `local:` and `#sync`). */
export const MAX_MIGRATION_NAME = 240;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The uid the records are keyed by: a Kubernetes uid (an RFC 4122 UUID), or this manifest's own
 * local identity. Anything else could pose as another migration's records (a name written before
 * uids, `ns/name`), so it is bad input (exit 2). The CLI's error class carries the exit code.
 */
function validUid(uid: string, name: string): string {
  if (name.length > MAX_MIGRATION_NAME) {
    throw new CliError(`the migration's namespace/name "${name}" is ${String(name.length)} characters; the target's bookkeeping holds at most ${String(MAX_MIGRATION_NAME)}: use a shorter name`, EXIT.usage);
  }
  if (UUID.test(uid) || uid === localIdentity(name)) return uid;
  throw new CliError(`metadata.uid "${uid}" is not a Kubernetes uid (a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e): leave it out of a manifest file (the migration is then ${localIdentity(name)})`, EXIT.usage);
}

/** The migration's identity in the target's records, its uid validated (bad input: exit 2). */
export function identityOf(settings: Pick<EngineSettings, 'uid' | 'migration' | 'createdAt'>): MigrationIdentity {
  return { uid: validUid(settings.uid, settings.migration), name: settings.migration, ...(settings.createdAt ? { createdAt: settings.createdAt } : {}) };
}

/** The migration's target tables: the manifest's, or (no list) every source table's name. */
export async function targetTableNames(source: SqlSession, settings: Pick<EngineSettings, 'tables'>): Promise<string[]> {
  if (settings.tables.length > 0) return settings.tables.map((t) => t.target ?? t.name);
  return listTables(source);
}

/**
 * Before a step writes to the target: the bookkeeping is ready (upgraded, this migration's rows of
 * an earlier version adopted, the migration registered); the reasons it must not go on (another
 * migration's records for its tables), empty when it may.
 */
export async function claimTarget(source: SqlSession, target: SqlSession, settings: EngineSettings): Promise<string[]> {
  const identity = identityOf(settings);
  await prepareBookkeeping(target, identity);
  return ownershipReasons(target, identity, await targetTableNames(source, settings));
}

/**
 * Once its plan has passed, before its first row: the migration claims the tables it writes into
 * (under the target-wide lock, checking again that nobody else's records name them) and is named
 * in the registry. The reasons it must not go on, empty when the claim is written.
 */
export async function registerTarget(source: SqlSession, target: SqlSession, settings: EngineSettings): Promise<string[]> {
  return claimTargetTables(target, identityOf(settings), await targetTableNames(source, settings));
}

/** After a successful run (see retireMigration). */
export async function retireTarget(target: SqlSession, settings: EngineSettings): Promise<{ checkpoints: number }> {
  const identity = identityOf(settings);
  await prepareBookkeeping(target, identity);
  return retireMigration(target, identity);
}
