// The SourceReadOnly write fence (spec.cutover.fence.type SourceReadOnly), as each engine does it:
// PostgreSQL sets default_transaction_read_only on the database and ends the sessions that began
// before it (postgres/read-only-fence.ts); MySQL/MariaDB sets the server's read_only after a global
// read lock has let the writes in flight finish (mysql/read-only-fence.ts). Neither stops an
// adversary: a PostgreSQL session may turn the default off for itself, and MySQL accounts with
// SUPER (or READ_ONLY ADMIN, CONNECTION_ADMIN) are not bound by read_only. It fences the
// application's ordinary writes. readOnlyFenceFor is the only place that picks one by the engine.
import type { Engine } from './dialect.ts';
import { mysqlReadOnlyFence } from './mysql/read-only-fence.ts';
import { postgresReadOnlyFence } from './postgres/read-only-fence.ts';
import type { SqlSession } from './session.ts';

/** The source's read-only setting before the fence: on, off, or (PostgreSQL) no per-database setting. */
export type FenceSetting = 'on' | 'off' | 'unset';

export const isFenceSetting = (value: unknown): value is FenceSetting => value === 'on' || value === 'off' || value === 'unset';

/** The server refused the fence, or something makes it unsafe to put up: nothing was changed on the source. */
export class FenceRefused extends Error {
  readonly reasons: string[];
  constructor(reasons: string[]) {
    super(reasons.join('; '));
    this.reasons = reasons;
  }
}

export interface AppliedFence {
  /** Sessions ended so that none that could still write is left (PostgreSQL; 0 on MySQL, where read_only binds open sessions too). */
  sessionsEnded: number;
  /** What the fence does not stop. */
  notes: string[];
}

export interface ReadOnlyFence {
  /** Privileges the source account lacks to put up and lift the fence, each named (empty: none); catalog reads only. */
  problems(source: SqlSession): Promise<string[]>;
  /** The setting now. Throws FenceRefused for a value the fence would not know how to restore. */
  current(source: SqlSession): Promise<FenceSetting>;
  /**
   * Makes the source read-only for the application and waits (within `waitMs`) until no write in
   * flight is left. `source`: a writable session. FenceRefused: nothing was changed.
   */
  apply(source: SqlSession, waitMs: number): Promise<AppliedFence>;
  /** The source server's clock now, as it compares sessions' start times (recorded with the fence). */
  clock(source: SqlSession): Promise<string>;
  /**
   * Puts the setting back as it was before the fence (`source`: a writable session) and, where
   * sessions opened since `fencedSince` (the source's clock before the fence) keep the read-only
   * default they began with, ends them within `waitMs`; returns how many.
   */
  restore(source: SqlSession, previous: FenceSetting, fencedSince: string | undefined, waitMs: number): Promise<number>;
}

// Looked up when called, not when loaded: the engines' modules import FenceRefused from this one.
export function readOnlyFenceFor(engine: Engine): ReadOnlyFence {
  const fences: Record<Engine, ReadOnlyFence> = { postgres: postgresReadOnlyFence, mysql: mysqlReadOnlyFence };
  return fences[engine];
}

/** What the plan reports for a SourceReadOnly fence: the privileges the source account lacks for it (catalog reads on the plan's read-only session). */
export async function fencePlanReasons(source: SqlSession, fenceType: string | undefined): Promise<string[]> {
  if (fenceType !== 'SourceReadOnly') return [];
  return (await readOnlyFenceFor(source.engine).problems(source)).map((problem) => `spec.cutover.fence.type SourceReadOnly: ${problem}`);
}
