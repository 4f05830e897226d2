// What validation compares for one table, decided from the migration plan: the source rows as
// the copy reads them (where filter, dedupe), the target table, the key, and per copied column
// the canonical SQL on each side. Computed columns (expression, transforms, default) compare the
// target against the source expression the copy selected, so they are checked too.
import { adapterFor, type DatabaseAdapter } from '../db/adapter.ts';
import type { Engine } from '../db/dialect.ts';
import type { PlannedTable } from '../pipeline/plan.ts';
import type { ColumnInfo } from '../schema/model.ts';
import { canonicalSql, columnKind, isClientSide, keepsNotNull, kindOfColumn, rowTextSql, type CanonicalKind, type MysqlFlavor, type RowField } from './canonical.ts';
import { sourceRows } from '../copy/source-query.ts';

export interface ComparedColumn {
  /** Target column name. */
  name: string;
  kind: CanonicalKind;
  /** Canonicalised by the client (json across engines). */
  client: boolean;
  /** Computed on the source (expression, transforms, default). */
  computed: boolean;
}

export interface SideSql {
  engine: Engine;
  dialect: DatabaseAdapter;
  /** FROM clause: the table, or the dedupe window over it. */
  from: string;
  /** Conditions every query on this side applies (the where filter, the dedupe rank). */
  conditions: string[];
  /** Key columns as selected (quoted), in key order. */
  keyRaw: string[];
  /** Canonical SQL of the key columns. */
  keyCanonical: string[];
  /** Canonical text of the key (the hash partitioning buckets on it). */
  keyText: string;
  /** Canonical SQL per compared column hashed in SQL (compared[].client false), in compared order. */
  fields: string[];
  /** Raw SQL per client-side column, in compared order. */
  clientRaw: string[];
  /** The row's canonical text over the SQL-side columns. */
  rowText: string;
  /** First key column and whether its type is integral (range partitioning). */
  rangeColumn: string;
  /** The first key column is numeric, not of an integer type (PostgreSQL divides it through div()). */
  rangeNumeric: boolean;
}

export interface TableCheckPlan {
  table: string;
  target: string;
  /** Target key column names. */
  key: string[];
  keyKinds: CanonicalKind[];
  columns: ComparedColumn[];
  source: SideSql;
  targetSide: SideSql;
  partitioning: 'key-range' | 'key-hash';
  /** Target columns the copy does not write. */
  uncompared: string[];
  estimatedRows: number;
  notes: string[];
}

const INTEGRAL: ReadonlySet<string> = new Set(['smallint', 'integer', 'bigint', 'int2', 'int4', 'int8', 'tinyint', 'mediumint', 'int', 'year']);

function integral(column: ColumnInfo | undefined): boolean {
  if (!column) return false;
  const type = column.dataType.toLowerCase();
  if (INTEGRAL.has(type)) return true;
  return (type === 'numeric' || type === 'decimal') && column.precision !== undefined && (column.scale ?? 0) === 0;
}

const DECIMALS = new Set(['numeric', 'decimal']);
const TIMESTAMPS = new Set(['timestamp without time zone', 'timestamp with time zone', 'datetime', 'timestamp']);

/**
 * The fractional digits both columns of a pair always have (same decimal scale, same
 * fractional-seconds precision): their values are then written with exactly that many digits.
 */
export function fixedFraction(kind: CanonicalKind, source: ColumnInfo | undefined, target: ColumnInfo): number | undefined {
  if (!source) return undefined;
  const s = source.dataType.toLowerCase();
  const t = target.dataType.toLowerCase();
  if (kind === 'decimal' && DECIMALS.has(s) && DECIMALS.has(t) && source.precision !== undefined && target.precision !== undefined) {
    return (source.scale ?? 0) === (target.scale ?? 0) ? source.scale ?? 0 : undefined;
  }
  if (kind === 'timestamp' && TIMESTAMPS.has(s) && TIMESTAMPS.has(t)) {
    const p = source.datetimePrecision ?? 0;
    return p === (target.datetimePrecision ?? 0) ? p : undefined;
  }
  return undefined;
}

export interface PlanInput {
  planned: PlannedTable;
  /** The target table as it is now. */
  target: { columns: ColumnInfo[]; name: string };
  flavors: { source?: MysqlFlavor; target?: MysqlFlavor };
}

/** The comparison plan of one table; throws when the table cannot be compared (no copy plan). */
export function tableCheckPlan(input: PlanInput): TableCheckPlan {
  const { planned } = input;
  const copy = planned.copy;
  if (!copy) throw new Error(`table ${planned.spec.name} has no copy plan`);
  const from = copy.sourceEngine;
  const to = copy.targetEngine;
  const sd = adapterFor(from);
  const td = adapterFor(to);
  // Zero dates have no value on a target without them: the copy stores NULL.
  const zeroDatesAsNull = sd.zeroDates && !td.zeroDates;
  const cross = from !== to;
  const notes: string[] = [];
  const sourceByQuoted = new Map(planned.source.columns.map((c) => [sd.quoteIdent(c.name), c]));
  const targetColumns = new Map(input.target.columns.map((c) => [c.name, c]));

  const columns: ComparedColumn[] = [];
  const sourceFields: RowField[] = [];
  const targetFields: RowField[] = [];
  const sourceClient: string[] = [];
  const targetClient: string[] = [];
  for (const [i, targetColumn] of copy.targetColumns.entries()) {
    const select = copy.selectColumns[i];
    const column = targetColumns.get(targetColumn.name);
    if (select === undefined) continue;
    if (!column) throw new Error(`target table ${copy.targetTable} has no column ${targetColumn.name}`);
    const sourceColumn = sourceByQuoted.get(select);
    const kind = columnKind(sourceColumn, column, from, to);
    const client = isClientSide(kind, cross);
    const computed = sourceColumn === undefined;
    columns.push({ name: targetColumn.name, kind, client, computed });
    const fixed = fixedFraction(kind, sourceColumn, column);
    const fraction = fixed !== undefined ? { fixedFraction: fixed } : {};
    const sourceSql = canonicalSql(from, kind, select, {
      ...(sourceColumn ? { column: sourceColumn } : {}), zeroDatesAsNull,
      crossEngine: cross, ...(input.flavors.source ? { flavor: input.flavors.source } : {}), ...fraction,
    });
    const targetSql = canonicalSql(to, kind, td.quoteIdent(column.name), { column, crossEngine: cross, ...(input.flavors.target ? { flavor: input.flavors.target } : {}), ...fraction });
    if (client) {
      sourceClient.push(sourceSql);
      targetClient.push(targetSql);
    } else {
      sourceFields.push({ sql: sourceSql, kind, notNull: sourceColumn !== undefined && !sourceColumn.nullable && keepsNotNull(kind) });
      targetFields.push({ sql: targetSql, kind, notNull: !column.nullable && keepsNotNull(kind) });
    }
  }
  const keyCount = copy.key.length;
  const key = copy.targetColumns.slice(0, keyCount).map((c) => c.name);
  const keyKinds = columns.slice(0, keyCount).map((c) => c.kind);
  if (columns.slice(0, keyCount).some((c) => c.client)) throw new Error(`table ${copy.sourceTable}: a json key column cannot be compared`);
  const computed = columns.filter((c) => c.computed).map((c) => c.name);
  if (computed.length > 0) notes.push(`computed columns compared against their source expression: ${computed.join(', ')}`);
  const clientColumns = columns.filter((c) => c.client).map((c) => c.name);
  if (clientColumns.length > 0) notes.push(`json columns compared with sorted keys by the client (read, not hashed in SQL): ${clientColumns.join(', ')}`);
  const written = new Set(columns.map((c) => c.name));
  const uncompared = input.target.columns.filter((c) => !written.has(c.name)).map((c) => c.name);
  if (uncompared.length > 0) notes.push(`target columns the copy does not write are not compared: ${uncompared.join(', ')}`);
  const skippedGenerated = planned.source.columns.filter((c) => c.generated).map((c) => c.name);
  if (skippedGenerated.length > 0) notes.push(`generated source columns are not copied, so not compared: ${skippedGenerated.join(', ')}`);
  if (zeroDatesAsNull && planned.source.columns.some((c) => ['date', 'datetime', 'timestamp'].includes(c.dataType))) {
    notes.push(`${sd.displayName} zero dates compare as NULL (the copy stores them as NULL)`);
  }

  const firstKey = copy.key[0] ?? '';
  const sourceKeyColumn = planned.source.columns.find((c) => c.name === firstKey);
  const targetKeyColumn = targetColumns.get(key[0] ?? '');
  const ranged = integral(sourceKeyColumn) && integral(targetKeyColumn);
  const rows = sourceRows(sd, copy.sourceTable, copy.key, copy.where, copy.dedupe);
  const keyFields = (fields: RowField[]): RowField[] => fields.slice(0, keyCount);
  const side = (engine: Engine, d: DatabaseAdapter, base: { from: string; conditions: string[] }, keyRaw: string[], fields: RowField[], client: string[], keyColumn: ColumnInfo | undefined): SideSql => ({
    engine, dialect: d, from: base.from, conditions: base.conditions, keyRaw,
    keyCanonical: keyFields(fields).map((f) => f.sql),
    keyText: rowTextSql(engine, keyFields(fields)),
    fields: fields.map((f) => f.sql),
    clientRaw: client,
    rowText: rowTextSql(engine, fields),
    rangeColumn: keyRaw[0] ?? '',
    rangeNumeric: keyColumn !== undefined && kindOfColumn(keyColumn, engine) !== 'int',
  });
  return {
    table: copy.sourceTable,
    target: copy.targetTable,
    key,
    keyKinds,
    columns,
    source: side(from, sd, rows, copy.key.map((k) => sd.quoteIdent(k)), sourceFields, sourceClient, sourceKeyColumn),
    targetSide: side(to, td, { from: td.quoteQualified(copy.targetTable), conditions: [] }, key.map((k) => td.quoteIdent(k)), targetFields, targetClient, targetKeyColumn),
    partitioning: ranged ? 'key-range' : 'key-hash',
    uncompared,
    estimatedRows: Math.max(planned.source.estimatedRows, planned.target?.estimatedRows ?? 0),
    notes,
  };
}
