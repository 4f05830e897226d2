// What the engine needs from a DataMigration: the API's shape (capitalised enums, optional
// fields already defaulted by the API server or src/api/defaults.ts) turned into engine terms.
import type { DataMigration } from '../../api/types.ts';
import type { ConflictPolicy } from '../copy/sinks.ts';
import type { TableSpec } from '../copy/planner.ts';
import type { Engine } from '../db/dialect.ts';
import type { MysqlBulk } from '../copy/copy-shard.ts';

/**
 * Trickle: ChangeCapture follows the source's change log (engine/sync/cdc-*); Timestamp and
 * Sequence re-copy rows whose column grew (engine/sync/sync.ts).
 */
export type IncrementalSettings =
  | { mode: 'ChangeCapture' }
  | { mode: 'Timestamp' | 'Sequence'; column: string; overlapSeconds: number };

function incrementalSettings(spec: NonNullable<NonNullable<DataMigration['spec']['strategy']>['incremental']>): IncrementalSettings {
  const mode = spec.mode ?? 'Timestamp';
  if (mode === 'ChangeCapture') return { mode };
  // The CRD's rule requires the column for these modes; a manifest run by the CLI is checked by the same rules.
  if (spec.column === undefined) throw new Error('spec.strategy.incremental.column is required unless mode is ChangeCapture');
  return { mode, column: spec.column, overlapSeconds: spec.overlapSeconds ?? 60 };
}

export interface EngineSettings {
  /** namespace/name of the resource: for messages, and to adopt rows written before uids (migrations/ownership.ts). */
  migration: string;
  /**
   * The migration's identity, which every bookkeeping record in the target carries: the
   * DataMigration's metadata.uid (the operator passes it in DMO_MANIFEST), or for a manifest
   * file without one (dmctl on a laptop) `local:<namespace>/<name>`, stable so a rerun resumes.
   */
  uid: string;
  /** metadata.creationTimestamp, when the manifest has one (adopting rows written before uids). */
  createdAt?: string;
  sourceEngine: Engine;
  targetEngine: Engine;
  /** Tables named in the manifest; empty means every table of the source. */
  tables: TableSpec[];
  batchSize: number;
  /** Shards copied at once by one process (one pod). */
  parallelism: number;
  /** Pods of the copy Job (strategy.copyPods): a large table is split into parallelism × copyPods ranges. */
  copyPods: number;
  /** Tables with fewer estimated rows are copied as one shard (default 500,000; dmctl: DMO_MIN_ROWS_TO_SHARD). */
  minRowsToShard?: number;
  conflictPolicy: ConflictPolicy;
  createMissingTables: boolean;
  /** Phased: source table names per phase, copied one phase after another; empty: all at once. */
  phases: string[][];
  /** How batches go into a MySQL target (dmctl: DMO_MYSQL_BULK=insert for multi-row INSERT). */
  mysqlBulk?: MysqlBulk;
  /** Trickle: the column that grows on every change, and how to read it. */
  incremental?: IncrementalSettings;
  /** ChangeCapture: how writes to the source stop at the cutover (SourceReadOnly's privileges are checked with the plan). */
  fenceType?: 'ScaleDown' | 'SourceReadOnly' | 'External';
  historyTable: string;
  targetVersion?: string;
  inlineMigrations: { version: string; description: string; up: string; down?: string }[];
  /** The manifest names a ConfigMap of migration files (mounted as a directory in the Job). */
  migrationsFromConfigMap: boolean;
  /** spec.validation.rules: their queries are checked with the plan (engine/sql), before any step writes. */
  validationRules: { name: string; source?: string; target?: string }[];
  /** spec.source.acceptWritableRole: a source role that could write is accepted (with a warning), not refused. */
  acceptWritableSourceRole: boolean;
}

export function engineSettings(migration: DataMigration): EngineSettings {
  const { spec, metadata } = migration;
  const name = `${metadata?.namespace ?? 'default'}/${metadata?.name ?? 'unnamed'}`;
  return {
    migration: name,
    uid: metadata?.uid ? metadata.uid : localIdentity(name),
    ...(metadata?.creationTimestamp ? { createdAt: timestampText(metadata.creationTimestamp) } : {}),
    sourceEngine: spec.source.engine,
    targetEngine: spec.target.engine,
    tables: (spec.tables ?? []).map((t) => ({
      name: t.name,
      ...(t.target ? { target: t.target } : {}),
      ...(t.key ? { key: t.key } : {}),
      ...(t.where ? { where: t.where } : {}),
      ...(t.columns ? { columns: t.columns } : {}),
      ...(t.dedupe ? { dedupe: { by: t.dedupe.by, keep: t.dedupe.keep ?? 'first', ...(t.dedupe.orderBy ? { orderBy: t.dedupe.orderBy } : {}) } } : {}),
    })),
    batchSize: spec.strategy?.batchSize ?? 10000,
    parallelism: spec.strategy?.parallelism ?? 4,
    copyPods: Math.max(1, spec.strategy?.copyPods ?? 1),
    conflictPolicy: spec.strategy?.conflictPolicy === 'Upsert' ? 'upsert' : 'fail',
    createMissingTables: spec.schema?.createMissingTables ?? false,
    phases: spec.strategy?.type === 'Phased' ? (spec.strategy.phases ?? []).map((p) => p.tables) : [],
    ...(spec.strategy?.type === 'Trickle' && spec.strategy.incremental ? { incremental: incrementalSettings(spec.strategy.incremental) } : {}),
    ...(spec.cutover?.fence ? { fenceType: spec.cutover.fence.type } : {}),
    historyTable: spec.schema?.historyTable ?? 'dataops_schema_history',
    ...(spec.schema?.targetVersion ? { targetVersion: spec.schema.targetVersion } : {}),
    inlineMigrations: spec.schema?.migrations ?? [],
    migrationsFromConfigMap: spec.schema?.configMapRef !== undefined,
    validationRules: spec.validation?.rules ?? [],
    acceptWritableSourceRole: spec.source.acceptWritableRole ?? false,
  };
}

/** creationTimestamp as RFC 3339 text (typed Date by the client library, text once parsed from JSON). */
function timestampText(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : value;
}

/** The identity of a migration run from a file without metadata.uid: stable per namespace/name. */
export function localIdentity(name: string): string {
  return `local:${name}`;
}
