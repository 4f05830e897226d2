// The steps' side of the target's bookkeeping (migrations/ownership.ts, registry.ts): before a step
// writes, the migration claims its target tables (its records ready, nobody else's there); after
// a successful run it retires what only a running migration needs.
import type { SqlSession } from '../db/session.ts';
import { ownershipReasons, prepareBookkeeping, retireMigration, type MigrationIdentity } from '../migrations/ownership.ts';
import { ensureRegistryTable, registerMigration } from '../migrations/registry.ts';
import { listTables } from '../schema/introspect.ts';
import type { EngineSettings } from './settings.ts';

export function identityOf(settings: Pick<EngineSettings, 'uid' | 'migration'>): MigrationIdentity {
  return { uid: settings.uid, name: settings.migration };
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

/** Names the migration in the registry (for other migrations' messages), once its plan has passed. */
export async function registerTarget(target: SqlSession, settings: EngineSettings): Promise<void> {
  await ensureRegistryTable(target);
  await registerMigration(target, identityOf(settings));
}

/** After a successful run (see retireMigration). */
export async function retireTarget(target: SqlSession, settings: EngineSettings): Promise<{ checkpoints: number }> {
  const identity = identityOf(settings);
  await prepareBookkeeping(target, identity);
  return retireMigration(target, identity);
}
