// The steps a migration runs, each one a Job in a cluster or a phase of `dmctl run` on a laptop:
// schema (versioned migrations, then tables created from source metadata) and copy (plan,
// checkpointed copy, then keys, indexes and foreign keys on the tables this migration created).
// Every step is safe to run again: it continues from what the target records.
import { hostname } from 'node:os';
import { ensureCheckpointTable } from '../copy/checkpoint.ts';
import { SINGLE_POD, unitsProgress, unlessLocked, waitForUnits, type PodShare, type TableSplit } from '../copy/units.ts';
import type { Endpoint, SourceSnapshot } from '../copy/copy-shard.ts';
import { copyTables, type TableProgressState } from '../copy/copy-tables.ts';
import { openSession } from '../db/connect.ts';
import type { Side } from '../db/connection-options.ts';
import type { SqlSession } from '../db/session.ts';
import { compareVersions, readMigrationDirectory, migrationsFromInline, type Migration } from '../migrations/files.ts';
import { migrateUp, schemaVersion } from '../migrations/migrate.ts';
import { afterCopyDdl } from '../schema/ddl.ts';
import { runAfterCopy, type AfterCopyStatement } from '../schema/after-copy.ts';
import { createRecordedTriggers } from '../schema/created-functions.ts';
import { onUpdateTriggerFor, type OnUpdateTrigger } from '../schema/on-update.ts';
import { createdTables, createRecordedTable, ensureCreatedTablesTable } from '../schema/created-tables.ts';
import { readBaseline, recordBaseline } from '../migrations/registry.ts';
import { finishedReasons } from '../migrations/ownership.ts';
import { claimTarget, identityOf, registerTarget } from './bookkeeping.ts';
import { introspectTable } from '../schema/introspect.ts';
import { syncTables, type SyncTable } from '../sync/sync.ts';
import { deleteRefusal, type DeleteHooks } from '../sync/sync-deletes.ts';
import { ownsEveryRow, rowsOwnership } from '../migrations/rows-owned.ts';
import { copyWithCapture } from '../sync/capture-copy.ts';
import { manifestSqlOf, manifestSqlReasons, planMigration, type MigrationPlan, type ZeroDateCounts } from './plan.ts';
import type { EngineSettings } from './settings.ts';
import { PlanRefusedError } from './refused.ts';
import type { ValidateOptions } from '../validate/validate.ts';
import { refuseDefinedFunctions } from './defined-functions.ts';
import { separationReason } from './source-reach.ts';

export { PlanRefusedError } from './refused.ts';

export interface StepContext {
  source: Endpoint;
  target: Endpoint;
  settings: EngineSettings;
  /** Directory of V/U migration files (the mounted ConfigMap in a Job). */
  migrationsDir?: string;
  signal?: AbortSignal;
  /** The copy step: this process's share of the units (a pod of the copy Job); default all. */
  pod?: PodShare;
  /** What a long-running step is doing, for people (the sync's validation at a cut). */
  notice?: (message: string) => void;
}

/** A session on one side, with its TLS settings; `statementTimeoutMs` for sessions that run only short statements. */
export function openEndpoint(endpoint: Endpoint, readOnly: boolean, applicationName: string, statementTimeoutMs?: number): Promise<SqlSession> {
  return openSession(endpoint.url, {
    readOnly, applicationName, ...(endpoint.tls ? { tls: endpoint.tls } : {}), ...(endpoint.side ? { side: endpoint.side } : {}),
    ...(statementTimeoutMs !== undefined ? { statementTimeoutMs } : {}),
  });
}

/** Runs `fn` with a session on one side, closed afterwards whatever happens. */
export async function withSession<T>(endpoint: Endpoint, readOnly: boolean, applicationName: string, fn: (session: SqlSession) => Promise<T>, statementTimeoutMs?: number): Promise<T> {
  const session = await openEndpoint(endpoint, readOnly, applicationName, statementTimeoutMs);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** The endpoint, named as the source or the target (in connection errors and timeouts). */
export function sided(endpoint: Endpoint, side: Side): Endpoint {
  return { ...endpoint, side };
}

/** Statements of the plan step (catalog reads) end within this; the other steps' sessions run long statements. */
const PLAN_STATEMENT_TIMEOUT_MS = 120_000;

export interface SessionPair {
  /** The target is read only too (validation). */
  targetReadOnly?: boolean;
  /** For pg_stat_activity and the processlist. */
  applicationName?: string;
  statementTimeoutMs?: number;
}

/**
 * The source (read only) and the target, for a step: every step opens its sessions here, and
 * none runs when both are one database (db/identity.ts), whatever the URLs look like, or when the
 * target's account could write the source's database on their one server (source-reach.ts).
 */
export async function withSessions<T>(context: StepContext, fn: (source: SqlSession, target: SqlSession) => Promise<T>, pair: SessionPair = {}): Promise<T> {
  refuseUnconfinedSql(context.settings);
  const name = pair.applicationName ?? 'datamigration';
  return withSession(sided(context.source, 'source'), true, name, (source) => withSession(sided(context.target, 'target'), pair.targetReadOnly ?? false, name, async (target) => {
    await refuseSharedSource(source, target, context.settings.tables);
    // Fragments calling a function someone defined in the source: refused before any step writes
    // or runs a fragment (defined-functions.ts).
    await refuseDefinedFunctions(source, manifestSqlOf(context.settings));
    return fn(source, target);
  }, pair.statementTimeoutMs), pair.statementTimeoutMs);
}

/**
 * The source and the target are one database (or the source a replica of the target), or the
 * target's account could write the source (one server): refused before anything is written.
 */
export async function refuseSharedSource(source: SqlSession, target: SqlSession, tables: readonly { name: string }[]): Promise<void> {
  const reason = await separationReason(source, target, tables);
  if (reason !== undefined) throw new PlanRefusedError([reason]);
}

/**
 * Manifest SQL that is not what its field may hold refuses the step before any session opens
 * (plan, schema, copy, sync and validate: `run` therefore stops before it writes anything).
 */
export function refuseUnconfinedSql(settings: EngineSettings): void {
  const refused = new Set(manifestSqlReasons(settings));
  if (refused.size > 0) throw new PlanRefusedError([...refused]);
}

/** The manifest's migrations: inline ones, or the files of the mounted directory. */
export async function loadMigrations(context: StepContext): Promise<Migration[]> {
  if (context.settings.inlineMigrations.length > 0) return migrationsFromInline(context.settings.inlineMigrations);
  if (context.settings.migrationsFromConfigMap) {
    if (!context.migrationsDir) throw new Error('spec.schema.configMapRef is set: give the directory holding its files (--migrations-dir, or DMO_MIGRATIONS_DIR in a Job)');
    return readMigrationDirectory(context.migrationsDir);
  }
  return [];
}

export interface PlanResult {
  plan: MigrationPlan;
  schemaVersion: string | null;
  pendingMigrations: string[];
}

/** What a run would do, without writing anything. */
export async function planStep(context: StepContext): Promise<PlanResult> {
  const migrations = await loadMigrations(context);
  return withSessions(context, async (source, target) => {
    const version = await schemaVersion(target, context.settings.historyTable);
    const pendingMigrations = migrations.filter((m) => version === null || compareVersions(m.version, version) > 0);
    const pending = pendingMigrations.map((m) => m.version);
    const plan = await planMigration(source, target, context.settings, new Map(), { migrationsPending: pending.length > 0, pendingScripts: pendingMigrations.map((m) => m.up) });
    plan.errors.push(...await finishedReasons(target, identityOf(context.settings)));
    return { plan, schemaVersion: version, pendingMigrations: pending };
  }, { applicationName: 'datamigration plan', statementTimeoutMs: PLAN_STATEMENT_TIMEOUT_MS });
}

export interface SchemaStepResult {
  versionBefore: string | null;
  version: string | null;
  applied: string[];
  createdTables: string[];
  warnings: string[];
}

/** The history rows' installed_by: which migration (uid) applied the version, so another migration's rollback never undoes it. */
export function installedBy(uid: string): string {
  return `datamigration uid=${uid} host=${hostname()}`.slice(0, 255);
}

export async function schemaStep(context: StepContext): Promise<SchemaStepResult> {
  const migrations = await loadMigrations(context);
  return withSessions(context, async (source, target) => {
    const { settings } = context;
    const refused = await claimTarget(source, target, settings);
    if (refused.length > 0) throw new PlanRefusedError(refused);
    // The version before is recorded once, by the first attempt, before anything is applied.
    const recordVersionBefore = (version: string | null): Promise<void> => recordBaseline(target, identityOf(settings), version);
    const unchanged = async (): Promise<{ applied: never[]; version: string | null; versionBefore: string | null }> => {
      const version = await schemaVersion(target, settings.historyTable);
      return { applied: [], version, versionBefore: version };
    };
    const migrated = migrations.length > 0
      ? await migrateUp(target, migrations, {
        historyTable: settings.historyTable, installedBy: installedBy(settings.uid), beforeApply: recordVersionBefore,
        ...(settings.targetVersion ? { targetVersion: settings.targetVersion } : {}),
      })
      : await unchanged();
    const created: string[] = [];
    const warnings: string[] = [];
    const plan = settings.createMissingTables ? await planMigration(source, target, settings) : undefined;
    if (plan) {
      if (plan.errors.length > 0) throw new PlanRefusedError(plan.errors);
      warnings.push(...plan.warnings);
    }
    // Without migrations the version before is recorded once the plan has passed: a refused step writes nothing.
    if (migrations.length === 0) await recordVersionBefore(migrated.versionBefore);
    if (plan) {
      await ensureCreatedTablesTable(target);
      for (const table of plan.tables) {
        if (!table.ddl) continue;
        context.signal?.throwIfAborted();
        await createRecordedTable(target, settings.uid, table.ddl);
        created.push(table.ddl.table);
      }
    }
    const baseline = await readBaseline(target, settings.uid);
    return { versionBefore: baseline.recorded ? baseline.versionBefore : migrated.versionBefore, version: migrated.version, applied: migrated.applied, createdTables: created, warnings };
  });
}

export interface CopiedTable {
  /** Source table, as the manifest names it. */
  name: string;
  target: string;
  /** Rows of this pod's share of the table (all of it with one pod), earlier runs included. */
  rowsCopied: number;
}

/**
 * The post-copy work (keys, indexes, foreign keys): `ran` here; `pending`, other pods' units are
 * not done yet (the last pod to finish runs it); `elsewhere`, another pod was running it.
 */
export type PostCopy = 'ran' | 'pending' | 'elsewhere';

export interface CopyStepResult {
  /** Which share of the units this process copied. */
  pod: PodShare;
  /** The tables this pod had units of. */
  tables: CopiedTable[];
  rowsThisRun: number;
  /** MySQL zero dates stored as NULL, per source "table.column". */
  zeroDates: Record<string, number>;
  postCopy: PostCopy;
  /** Indexes, keys and foreign keys added to created tables after the copy. */
  postCopyStatements: number;
  warnings: string[];
}

export async function copyStep(context: StepContext, onProgress?: (tables: TableProgressState[]) => void): Promise<CopyStepResult> {
  const pod = context.pod ?? SINGLE_POD;
  return withSessions(context, async (source, target) => {
    const { settings } = context;
    const zeroDates: ZeroDateCounts = new Map();
    const refused = await claimTarget(source, target, settings);
    if (refused.length > 0) throw new PlanRefusedError(refused);
    const plan = await planMigration(source, target, settings, zeroDates);
    if (plan.errors.length > 0) throw new PlanRefusedError(plan.errors);
    const taken = await registerTarget(source, target, settings);
    if (taken.length > 0) throw new PlanRefusedError(taken);
    const toCopy = plan.tables.flatMap((t) => (t.copy ? [{
      plan: t.copy, estimatedRows: t.source.estimatedRows, sourceName: t.spec.name,
      keyType: t.source.columns.find((c) => c.name === t.copy?.key[0])?.dataType ?? '',
    }] : []));
    // Phased: one phase after another (a phase's tables in parallel); otherwise one phase of all.
    const phases = settings.phases.length > 0 ? settings.phases : [toCopy.map((t) => t.sourceName)];
    const copied = { tables: [] as TableProgressState[], rowsThisRun: 0 };
    const done: TableProgressState[] = [];
    const splits: TableSplit[] = [];
    // `snapshot`: ChangeCapture's, which every shard reads (sync/capture-copy.ts); otherwise each shard takes its own.
    const copyPhases = async (snapshot: SourceSnapshot | undefined): Promise<void> => {
      let previous: TableSplit[] = [];
      for (const phase of phases) {
        // With several pods a phase starts only when every pod has finished the one before.
        if (pod.count > 1 && previous.length > 0) await waitForUnits(target, settings.uid, previous, context.signal ? { signal: context.signal } : {});
        const result = await copyTables({
          source: sided(context.source, 'source'), target: sided(context.target, 'target'), sourceSession: source, targetSession: target,
          migration: settings.uid, batchSize: settings.batchSize, parallelism: settings.parallelism,
          shardsPerTable: settings.parallelism * Math.max(settings.copyPods, pod.count), pod,
          tables: toCopy.filter((t) => phase.includes(t.sourceName)),
          ...(settings.minRowsToShard !== undefined ? { minRowsToShard: settings.minRowsToShard } : {}),
          ...(settings.mysqlBulk ? { mysqlBulk: settings.mysqlBulk } : {}),
          ...(onProgress ? { onProgress: (tables: TableProgressState[]) => { onProgress([...done, ...tables]); } } : {}),
          ...(context.signal ? { signal: context.signal } : {}),
          ...(snapshot ? { snapshot } : {}),
        });
        done.push(...result.tables);
        copied.rowsThisRun += result.rowsThisRun;
        splits.push(...result.splits);
        previous = result.splits;
      }
    };
    const warnings = [...plan.warnings];
    if (settings.incremental?.mode === 'ChangeCapture') {
      const capture = await copyWithCapture({
        source: sided(context.source, 'source'), target: sided(context.target, 'target'), sourceSession: source, targetSession: target,
        settings, plan, pods: pod.count,
      }, copyPhases);
      if (capture.startedOver) warnings.push('an earlier attempt of this copy (its change capture or a partial copy) was discarded: the copied tables were emptied and copied again');
    } else {
      await copyPhases(undefined);
    }
    copied.tables = done;
    const finish = (): Promise<number> => finishCreatedTables(target, settings, plan);
    const post = pod.count === 1 ? { postCopy: 'ran' as const, postCopyStatements: await finish() } : await finishWhenAllDone(target, settings.uid, splits, finish);
    const sourceOf = new Map(plan.tables.map((t) => [t.spec.target ?? t.spec.name, t.spec.name]));
    const tables = copied.tables.map((t) => ({ name: sourceOf.get(t.table) ?? t.table, target: t.table, rowsCopied: t.rowsCopied }));
    return { pod, tables, rowsThisRun: copied.rowsThisRun, zeroDates: Object.fromEntries(zeroDates), ...post, warnings };
  });
}

/**
 * One pod of several: the post-copy work runs once every unit of every table is done, so each pod
 * checks after its share, and the last to finish runs it. Two that finish together both see it
 * done; the lock lets one run it (idempotent, so a retried pod may run it again harmlessly).
 */
async function finishWhenAllDone(target: SqlSession, migration: string, splits: readonly TableSplit[], finish: () => Promise<number>): Promise<Pick<CopyStepResult, 'postCopy' | 'postCopyStatements'>> {
  const progress = await unitsProgress(target, migration, splits);
  if (progress.done < progress.units) return { postCopy: 'pending', postCopyStatements: 0 };
  const statements = await unlessLocked(target, migration, 'finish', finish);
  return statements === undefined ? { postCopy: 'elsewhere', postCopyStatements: 0 } : { postCopy: 'ran', postCopyStatements: statements };
}

export interface SyncStepResult {
  rounds: number;
  rowsSynced: number;
  caughtUp: boolean;
  /** Timestamp, Sequence: target rows deleted because their key is gone from the source (looked for once caught up). */
  rowsDeleted?: number;
  /** Timestamp, Sequence: tables whose deletes were not looked for, and why. */
  notes?: string[];
}

/** Tests: a lower bound on rounds than the sync's own, and the delete pass's hook (sync-deletes.ts). */
export type SyncTuning = DeleteHooks & { maxRounds?: number };

/**
 * Trickle: copies the rows changed since the copy, in rounds, until caught up, then deletes on the
 * target the rows whose key the source no longer has (see engine/sync);
 * ChangeCapture: follows the source's change log until stopped (capture-steps.ts).
 */
export async function syncStep(context: StepContext, validateOptions: Partial<ValidateOptions> = {}, tuning: SyncTuning = {}): Promise<SyncStepResult> {
  const { settings } = context;
  const incremental = settings.incremental;
  if (!incremental) throw new PlanRefusedError(['the sync step needs strategy.type Trickle with strategy.incremental']);
  if (incremental.mode === 'ChangeCapture') {
    // Imported here: capture-steps.ts builds on this module.
    const { captureSyncStep } = await import('./capture-steps.ts');
    return captureSyncStep(context, validateOptions);
  }
  return withSessions(context, async (source, target) => {
    const refused = await claimTarget(source, target, settings);
    if (refused.length > 0) throw new PlanRefusedError(refused);
    const plan = await planMigration(source, target, { ...settings, conflictPolicy: 'upsert' });
    const errors = [...plan.errors];
    const tables: SyncTable[] = [];
    // Rows the migration did not copy are not its to delete: only in tables it created or found empty.
    const ownership = await rowsOwnership(target, settings.uid, plan.tables.flatMap((t) => (t.copy ? [t.copy.targetTable] : [])));
    for (const table of plan.tables) {
      if (!table.copy) continue;
      if (!table.source.columns.some((c) => c.name === incremental.column)) {
        errors.push(`table ${table.spec.name} has no column ${incremental.column} (strategy.incremental.column)`);
        continue;
      }
      const override = table.spec.columns?.find((c) => c.name === incremental.column);
      // Deletes are found by looking target keys up on the source: only keys that read the same on both sides.
      const owned = ownership.get(table.copy.targetTable);
      const refusal = !ownsEveryRow(owned)
        ? (owned === 'heldRows' ? 'the target table held rows before this migration first wrote to it, and rows the migration did not copy are not its to delete'
          : 'the target has no record of whether the target table was empty before this migration wrote to it')
        : table.target ? deleteRefusal(table.copy, table.source.columns, table.target.columns) : 'the target table was not introspected';
      tables.push({ plan: table.copy, sourceColumn: incremental.column, targetColumn: override?.target ?? incremental.column, ...(refusal ? { deletesSkipped: refusal } : {}) });
    }
    if (errors.length > 0) throw new PlanRefusedError(errors);
    const taken = await registerTarget(source, target, settings);
    if (taken.length > 0) throw new PlanRefusedError(taken);
    await ensureCheckpointTable(target);
    return syncTables({
      source: sided(context.source, 'source'), target: sided(context.target, 'target'), sourceSession: source, targetSession: target, migration: settings.uid,
      tables, mode: incremental.mode, overlapSeconds: incremental.overlapSeconds, batchSize: settings.batchSize,
      ...(context.signal ? { signal: context.signal } : {}), ...(tuning.maxRounds ? { maxRounds: tuning.maxRounds } : {}),
      ...(tuning.beforeRecheck ? { hooks: { beforeRecheck: tuning.beforeRecheck } } : {}),
    });
  });
}

/** Keys, indexes, foreign keys and identity restarts for the tables this migration created. */
async function finishCreatedTables(target: SqlSession, settings: EngineSettings, plan: MigrationPlan): Promise<number> {
  const created = new Set(await createdTables(target, settings.uid));
  const tableNames = new Map(plan.tables.map((t) => [t.source.name, t.spec.target ?? t.spec.name]));
  const statements: AfterCopyStatement[] = [];
  // Indexes first, foreign keys last: a foreign key needs the referenced table's unique key.
  const foreignKeys: AfterCopyStatement[] = [];
  const triggers: OnUpdateTrigger[] = [];
  for (const table of plan.tables) {
    const targetName = table.spec.target ?? table.spec.name;
    if (!created.has(targetName)) continue;
    const current = await introspectTable(target, targetName);
    if (!current) continue;
    const existing = new Set([...current.uniqueKeys, ...current.indexes, ...current.foreignKeys].map((i) => i.name));
    const ddl = { table: targetName, columnNames: columnNamesOf(table, new Set(current.columns.map((c) => c.name))) };
    for (const sql of afterCopyDdl({ source: table.source, ddl, to: settings.targetEngine, existing, tableNames })) {
      (/ FOREIGN KEY /.test(sql) ? foreignKeys : statements).push({ table: table.spec.name, sql });
    }
    const trigger = onUpdateTriggerFor(table.source, ddl, settings.targetEngine);
    if (trigger) triggers.push(trigger);
  }
  for (const statement of [...statements, ...foreignKeys]) await runAfterCopy(target, statement);
  // MySQL's ON UPDATE CURRENT_TIMESTAMP as recorded triggers (schema/on-update.ts), after the copy.
  return statements.length + foreignKeys.length + await createRecordedTriggers(target, settings.uid, triggers);
}

/**
 * Source column → target column, for the columns the target table has: not the skipped ones, nor
 * those the created table left out (a generated column across engines), so no index names them.
 */
function columnNamesOf(table: MigrationPlan['tables'][number], targetColumns: ReadonlySet<string>): Map<string, string> {
  const overrides = new Map((table.spec.columns ?? []).map((c) => [c.name, c]));
  const names = new Map<string, string>();
  for (const column of table.source.columns) {
    const target = overrides.get(column.name)?.target ?? column.name;
    if (!overrides.get(column.name)?.skip && targetColumns.has(target)) names.set(column.name, target);
  }
  return names;
}
