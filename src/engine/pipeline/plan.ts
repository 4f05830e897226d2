// The plan: what a run would do, decided from both catalogs before anything is written. Tables,
// estimated rows, type mapping, DDL for missing target tables, copy order, warnings and every
// reason the migration could not be correct (which refuses it).
import { adapterFor } from '../db/adapter.ts';
import type { SqlSession } from '../db/session.ts';
import { planTableCopy, type TableSpec } from '../copy/planner.ts';
import type { TableCopyPlan } from '../copy/plan-types.ts';
import { createTableDdl, type TableDdl } from '../schema/ddl.ts';
import { introspectTable, listTables } from '../schema/introspect.ts';
import type { ColumnInfo, TableInfo } from '../schema/model.ts';
import { valueMapper } from '../schema/typemap.ts';
import type { EngineSettings } from './settings.ts';
import { foreignTargetSchemaReasons } from '../db/identity.ts';
import { tableAndSchema } from '../db/dialect.ts';
import { separationReason } from './source-reach.ts';
import { checkSourceRole, sourceRoleRefusal, sourceRoleWarning, type SourceRoleCheck } from './source-role.ts';
import { foreignRecordReasons } from '../migrations/ownership.ts';
import { identityOf } from './bookkeeping.ts';
import { manifestSqlRefusals, type ManifestSql } from '../sql/manifest-sql.ts';
import { schemaFidelity } from '../schema/fidelity.ts';
import { readSchemaObjects, schemaObjectNotices } from '../schema/carry-over.ts';
import { captureReasons } from '../sync/capture-copy.ts';
import { fencePlanReasons } from '../db/read-only-fence.ts';
import { sharedTargetErrors, targetColumnNameErrors, targetTableNameErrors } from '../schema/target-names.ts';
import { buildSourceSelect } from '../copy/source-query.ts';
import { citextChoice, type CitextChoice } from '../schema/citext.ts';

export interface PlannedTable {
  spec: TableSpec;
  source: TableInfo;
  /** The target table as it is now; absent when it does not exist yet. */
  target?: TableInfo;
  /** DDL that creates the target table (createMissingTables and the table is missing). */
  ddl?: TableDdl;
  copy?: TableCopyPlan;
  /** Source column → column type on the target. */
  typeMapping: { column: string; source: string; target: string }[];
}

export interface MigrationPlan {
  tables: PlannedTable[];
  estimatedRows: number;
  errors: string[];
  warnings: string[];
  /** What the source role may do beyond reading (a warning when it could write). */
  sourceRole?: SourceRoleCheck;
}

/** Zero dates turned into NULL, per "table.column"; filled while the copy runs. */
export type ZeroDateCounts = Map<string, number>;

/**
 * Every SQL fragment and name of the manifest that is not what its field may hold, each message
 * naming the field (spec.tables[orders].where: …). Pure, no session: every step asks it before it
 * opens one, so a refused fragment stops the migration before anything is written or sent.
 */
export function manifestSqlReasons(settings: Pick<EngineSettings, 'tables' | 'incremental' | 'validationRules' | 'sourceEngine' | 'targetEngine'>): string[] {
  return manifestSqlRefusals(manifestSqlOf(settings), { source: settings.sourceEngine, target: settings.targetEngine }).map((refusal) => refusal.message);
}

/** The settings' fields that reach SQL, in the spec's shape. */
export function manifestSqlOf(settings: Pick<EngineSettings, 'tables' | 'incremental' | 'validationRules'>): ManifestSql {
  return {
    tables: settings.tables,
    ...(settings.incremental && 'column' in settings.incremental ? { strategy: { incremental: { column: settings.incremental.column } } } : {}),
    validation: { rules: settings.validationRules },
  };
}

export interface PlanOptions {
  migrationsPending?: boolean;
  /** The pending migrations' up scripts: a missing target table none of them names is refused (the copy would be). */
  pendingScripts?: readonly string[];
  /** Leave out the ChangeCapture prerequisites (checked by default when the mode is ChangeCapture). */
  skipCapturePrerequisites?: boolean;
}

export async function planMigration(
  source: SqlSession, target: SqlSession, settings: EngineSettings, zeroDates: ZeroDateCounts = new Map(),
  options: PlanOptions = {},
): Promise<MigrationPlan> {
  const refused = manifestSqlReasons(settings);
  if (refused.length > 0) return { tables: [], estimatedRows: 0, errors: refused, warnings: [] };
  // Before any catalog is read for the plan: one database on both sides, or a target account that
  // could write the source's database on their one server, refuses everything else.
  const apart = await separationReason(source, target, settings.tables);
  if (apart !== undefined) return { tables: [], estimatedRows: 0, errors: [apart], warnings: [] };
  const foreign = await foreignTargetSchemaReasons(target, settings.tables);
  if (foreign.length > 0) return { tables: [], estimatedRows: 0, errors: foreign, warnings: [] };
  const errors: string[] = [];
  const warnings: string[] = [];
  const specs: TableSpec[] = settings.tables.length > 0 ? settings.tables : (await listTables(source)).map((name) => ({ name }));
  if (specs.length === 0) errors.push('the source has no tables to copy');
  errors.push(...sharedTargetErrors(specs));
  const tables: PlannedTable[] = [];
  // Case-insensitive MySQL text into PostgreSQL: citext if the target can have it (asked once, when a table is created).
  let citext: CitextChoice | undefined;
  for (const spec of specs) {
    const sourceInfo = await introspectTable(source, spec.name);
    if (!sourceInfo) {
      errors.push(`table ${spec.name} does not exist on the source`);
      continue;
    }
    // A name the target would cut or cannot hold: its catalog is not asked about it.
    const badName = targetTableNameErrors(spec, settings.targetEngine);
    if (badName.length > 0) {
      errors.push(...badName);
      continue;
    }
    const targetName = spec.target ?? spec.name;
    const targetInfo = await introspectTable(target, targetName);
    const planned: PlannedTable = { spec, source: sourceInfo, typeMapping: [] };
    let copyTarget = targetInfo;
    if (targetInfo) {
      planned.target = targetInfo;
    } else if (settings.createMissingTables) {
      if (settings.sourceEngine === 'mysql' && settings.targetEngine === 'postgres') citext ??= await citextChoice(target);
      const ddl = createTableDdl(sourceInfo, spec, settings.targetEngine, citext ? { citext } : {});
      planned.ddl = ddl;
      errors.push(...ddl.errors, ...targetColumnNameErrors(spec.name, ddl.columnNames.values(), settings.targetEngine));
      copyTarget = tableOfDdl(sourceInfo, ddl, settings.targetEngine);
    } else if (options.migrationsPending && !namedByNone(options.pendingScripts, targetName)) {
      warnings.push(`target table ${targetName} does not exist yet; the pending schema migrations must create it`);
    } else if (options.migrationsPending) {
      errors.push(missingUnnamed(targetName));
    } else {
      errors.push(`target table ${targetName} does not exist: create it with a schema migration or set spec.schema.createMissingTables`);
    }
    if (copyTarget) {
      const mapper = valueMapper((column) => {
        const key = `${spec.name}.${column}`;
        zeroDates.set(key, (zeroDates.get(key) ?? 0) + 1);
      });
      const outcome = planTableCopy({ spec, source: sourceInfo, target: copyTarget, conflictPolicy: settings.conflictPolicy, mapValue: mapper });
      errors.push(...outcome.errors);
      warnings.push(...outcome.warnings);
      if (outcome.plan) {
        planned.copy = outcome.plan;
        const refused = await sourceQueryRefusal(source, spec, outcome.plan);
        if (refused !== undefined) errors.push(refused);
      }
      const targetColumns = new Map(copyTarget.columns.map((c) => [c.name, c]));
      for (const column of sourceInfo.columns) {
        const override = spec.columns?.find((c) => c.name === column.name);
        const mapped = targetColumns.get(override?.target ?? column.name);
        if (mapped && !override?.skip) planned.typeMapping.push({ column: column.name, source: column.nativeType, target: mapped.nativeType });
      }
    }
    tables.push(planned);
  }
  // Schema-wide: index names, foreign keys to tables not copied, partitions, and the source's views,
  // routines, events and triggers around these tables; each difference said once (schema/fidelity.ts).
  const objects = await readSchemaObjects(source, tables.map((t) => t.source));
  const fidelity = await schemaFidelity(target, tables, settings, schemaObjectNotices(objects, settings.sourceEngine));
  errors.push(...fidelity.errors);
  warnings.push(...fidelity.warnings);
  // Another migration's checkpoints or created tables for these tables: not this one's to touch.
  errors.push(...await foreignRecordReasons(target, identityOf(settings), specs.map((s) => s.target ?? s.name)));
  // ChangeCapture: what the source must allow for its changes to be followed (catalog reads only;
  // PostgreSQL: wal_level, REPLICATION, CREATE, table owner, replica identity; MySQL: log_bin,
  // binlog_format, binlog_row_image, REPLICATION SLAVE/CLIENT, primary keys).
  if (settings.incremental?.mode === 'ChangeCapture' && !options.skipCapturePrerequisites) {
    const capture = await captureReasons(source, { tables }, settings);
    errors.push(...capture.errors);
    warnings.push(...capture.warnings);
    // A SourceReadOnly fence changes a setting of the source at the cutover: refused now, not then.
    errors.push(...await fencePlanReasons(source, settings.fenceType));
  }
  const sourceRole = await checkSourceRole(source, tables.map((t) => t.spec.name));
  // A role that could write is refused unless the spec accepts it; then it is warned about, first
  // (the copy's CopyNotices Event lists only the first few warnings).
  const roleRefusal = sourceRoleRefusal(sourceRole, settings.acceptWritableSourceRole, settings.incremental?.mode === 'ChangeCapture');
  const roleWarning = sourceRoleWarning(sourceRole);
  if (roleRefusal !== undefined) errors.push(roleRefusal);
  else if (roleWarning !== undefined) warnings.unshift(roleWarning);
  return { tables, estimatedRows: tables.reduce((sum, t) => sum + t.source.estimatedRows, 0), errors, warnings, sourceRole };
}

const missingUnnamed = (table: string): string => `target table ${table} does not exist, and no pending schema migration names it: add its CREATE TABLE to a migration or set spec.schema.createMissingTables`;

/** No script names the table (as a word, any case): none of them can create it. Undefined scripts: not known, so not refused. */
function namedByNone(scripts: readonly string[] | undefined, table: string): boolean {
  if (scripts === undefined) return false;
  const name = tableAndSchema(table).table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const word = new RegExp(`(^|[^\\p{L}\\p{N}_$])${name}($|[^\\p{L}\\p{N}_$])`, 'iu');
  return !scripts.some((script) => word.test(script));
}

/**
 * The copy's source query, asked of the source with LIMIT 0 (nothing read) when the manifest
 * shapes it (where, expressions, dedupe): a column that does not exist is refused by the plan,
 * before anything is created, not by the copy after the target tables were.
 */
async function sourceQueryRefusal(source: SqlSession, spec: TableSpec, copy: TableCopyPlan): Promise<string | undefined> {
  if (spec.where === undefined && spec.dedupe === undefined && !(spec.columns ?? []).some((c) => c.expression !== undefined)) return undefined;
  const sql = buildSourceSelect({
    dialect: adapterFor(copy.sourceEngine), table: copy.sourceTable, columns: copy.readColumns ?? copy.selectColumns, key: copy.key,
    ...(copy.where ? { where: copy.where } : {}), ...(copy.dedupe ? { dedupe: copy.dedupe } : {}),
  });
  try {
    await source.query(`${sql} LIMIT 0`);
    return undefined;
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).slice(0, 300);
    return `table ${spec.name}: the source refuses the copy's query built from spec.tables[${spec.name}] (where, expressions, dedupe): ${reason}`;
  }
}

/** The target table the DDL would create, shaped for the copy planner. */
function tableOfDdl(source: TableInfo, ddl: TableDdl, engine: TableInfo['engine']): TableInfo {
  const { storageEngine } = adapterFor(engine);
  const columns: ColumnInfo[] = [];
  for (const column of source.columns) {
    const name = ddl.columnNames.get(column.name);
    const type = name === undefined ? undefined : ddl.columnTypes.get(name);
    if (name === undefined || type === undefined) continue;
    columns.push({ ...columnOfType(name, type), nullable: column.nullable, autoIncrement: column.autoIncrement, ...(column.generated ? { generated: column.generated } : {}) });
  }
  return {
    engine, schema: '', name: ddl.table, columns,
    primaryKey: source.primaryKey.map((c) => ddl.columnNames.get(c) ?? c),
    uniqueKeys: [], indexes: [], foreignKeys: [], estimatedRows: 0,
    ...(storageEngine ? { storageEngine } : {}),
  };
}

/** A column described by a type as DDL spells it: "bit(8)", "text[]", "varchar(20)". */
export function columnOfType(name: string, type: string): Pick<ColumnInfo, 'name' | 'nativeType' | 'dataType' | 'length'> {
  const base = type.replace(/\(.*$/, '').toLowerCase();
  const length = /\((\d+)\)/.exec(type)?.[1];
  return {
    name,
    nativeType: type,
    dataType: type.endsWith('[]') ? 'ARRAY' : base,
    ...(length !== undefined ? { length: Number(length) } : {}),
  };
}
