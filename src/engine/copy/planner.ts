// Decides how one table is copied, before anything is written: which source columns go where,
// how each value is converted, and every reason the copy could not be correct (missing key,
// missing or unfillable target columns, unmappable types, SQL fragments that are not what their
// field may hold). The manifest's SQL text becomes CheckedSql here (engine/sql/fragments.ts):
// the statement builders take nothing else.
import { adapterFor } from '../db/adapter.ts';
import type { Engine } from '../db/dialect.ts';
import { checkDefault, checkExpression, checkWhere, FragmentRefused, type CheckedSql } from '../sql/fragments.ts';
import { pathKey } from '../sql/refusal.ts';
import type { ColumnInfo, TableInfo } from '../schema/model.ts';
import type { Dedupe } from './source-query.ts';
import type { Converter, TableCopyPlan } from './plan-types.ts';
import type { ConflictPolicy, TargetColumn } from './sinks.ts';
import { applyTransforms, type Transform } from './transforms.ts';
import { keyUniqueness } from './key-uniqueness.ts';

export interface ColumnSpec {
  /** Source column (or, with `expression` or `default`, a new target column). */
  name: string;
  target?: string;
  skip?: boolean;
  /** A constant for a column the source lacks, or for NULLs of one it has (SQL literal text). */
  default?: string;
  /** SQL on the source computing the value (read only). */
  expression?: string;
  transforms?: Transform[];
}

export interface TableSpec {
  name: string;
  target?: string;
  key?: string[];
  where?: string;
  columns?: ColumnSpec[];
  dedupe?: Dedupe;
}

/** How a value of a source column becomes the target's; from the type map. */
export interface ValueMapping {
  convert?: Converter;
  loadExpression?: (variable: string) => string;
}

export type MapValue = (source: ColumnInfo, target: ColumnInfo, from: Engine, to: Engine) => ValueMapping | { error: string };

export interface PlanOutcome {
  plan?: TableCopyPlan;
  errors: string[];
  warnings: string[];
}

const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

export function planTableCopy(input: {
  spec: TableSpec; source: TableInfo; target: TableInfo; conflictPolicy: ConflictPolicy; mapValue: MapValue;
}): PlanOutcome {
  const { spec, source, target } = input;
  const from = source.engine;
  const to = target.engine;
  const q = adapterFor(from);
  const targetAdapter = adapterFor(to);
  // LOAD DATA takes binary columns through UNHEX and bit columns through a load expression.
  const loadData = targetAdapter.bulkFormat === 'load-data';
  const errors: string[] = [];
  const warnings: string[] = [];
  const label = `table ${spec.name}`;
  const at = `spec.tables[${pathKey(spec.name)}]`;
  /** The fragment checked in the source's grammar; undefined (and an error naming the field) when refused. */
  const checked = (check: typeof checkWhere, text: string, field: string): CheckedSql | undefined => {
    try {
      return check(from, text, field);
    } catch (error) {
      if (!(error instanceof FragmentRefused)) throw error;
      errors.push(error.message);
      return undefined;
    }
  };
  const where = spec.where ? checked(checkWhere, spec.where, `${at}.where`) : undefined;
  const expressionOf = (c: ColumnSpec): CheckedSql | undefined => (c.expression !== undefined ? checked(checkExpression, c.expression, `${at}.columns[${pathKey(c.name)}].expression`) : undefined);
  const defaultOf = (c: ColumnSpec): CheckedSql | undefined => (c.default !== undefined ? checked(checkDefault, c.default, `${at}.columns[${pathKey(c.name)}].default`) : undefined);
  const overrides = new Map((spec.columns ?? []).map((c) => [c.name, c]));
  const sourceColumns = new Map(source.columns.map((c) => [c.name, c]));
  const targetColumns = new Map(target.columns.map((c) => [c.name, c]));

  const key = spec.key && spec.key.length > 0 ? spec.key : source.primaryKey;
  if (key.length === 0) errors.push(`${label} has no primary key: set tables[].key to columns that identify a row`);
  for (const column of key) {
    const override = overrides.get(column);
    if (!sourceColumns.has(column)) errors.push(`${label}: key column ${column} is not a column of the source table`);
    else if (override && (override.skip || override.expression || override.transforms?.length || override.default !== undefined)) {
      errors.push(`${label}: key column ${column} cannot be skipped, computed or transformed (the key resumes the copy and matches rows in validation)`);
    }
  }
  // Dedupe names are quoted wherever they are used; one that is not a source column is refused here, not by the server mid-copy.
  for (const [i, column] of (spec.dedupe?.by ?? []).entries()) {
    if (!sourceColumns.has(column)) errors.push(`${at}.dedupe.by[${i}]: ${pathKey(column)} is not a column of the source table`);
  }
  const orderBy = spec.dedupe?.orderBy;
  if (orderBy !== undefined && !sourceColumns.has(orderBy)) errors.push(`${at}.dedupe.orderBy: ${pathKey(orderBy)} is not a column of the source table`);
  if (key.length > 0 && key.every((column) => sourceColumns.has(column))) {
    const uniqueness = keyUniqueness(source, key, spec.dedupe);
    if (uniqueness.error) errors.push(`${label}: ${uniqueness.error}`);
    if (uniqueness.warning) warnings.push(`${label}: ${uniqueness.warning}`);
  }
  if (input.conflictPolicy === 'upsert' && target.primaryKey.length === 0 && target.uniqueKeys.length === 0) {
    errors.push(`${label}: conflictPolicy Upsert needs a primary or unique key on target table ${target.name}`);
  }

  interface Planned { select: string; target: string; source?: ColumnInfo; plain?: boolean }
  const planned: Planned[] = [];
  for (const column of source.columns) {
    const override = overrides.get(column.name);
    if (override?.skip) continue;
    if (column.generated) {
      warnings.push(`${label}: generated column ${column.name} is not copied (the target computes its own)`);
      continue;
    }
    let select = q.quoteIdent(column.name);
    const expression = override && expressionOf(override);
    const fallback = override && defaultOf(override);
    if (expression) select = expression.sql;
    if (override?.transforms?.length) select = applyTransforms(select, override.transforms, from);
    if (fallback) select = `COALESCE(${select}, ${fallback.sql})`;
    planned.push({ select, target: override?.target ?? column.name, source: column, plain: select === q.quoteIdent(column.name) });
  }
  for (const override of spec.columns ?? []) {
    if (sourceColumns.has(override.name) || override.skip) continue;
    if (override.expression === undefined && override.default === undefined) {
      errors.push(`${label}: column ${override.name} is not in the source; give it an expression or a default`);
      continue;
    }
    const base = (override.expression !== undefined ? expressionOf(override) : defaultOf(override))?.sql ?? 'NULL';
    const select = override.transforms?.length ? applyTransforms(base, override.transforms, from) : base;
    planned.push({ select, target: override.target ?? override.name });
  }
  for (const column of spec.columns ?? []) {
    if (column.skip && !sourceColumns.has(column.name)) warnings.push(`${label}: skipped column ${column.name} is not in the source`);
  }

  // Key columns first, in key order: the copy reads a batch's last key from the row's front.
  const keyTargets = key.map((k) => overrides.get(k)?.target ?? k);
  planned.sort((a, b) => rank(keyTargets, a.target) - rank(keyTargets, b.target));

  const seen = new Set<string>();
  const columns: TargetColumn[] = [];
  const converters: (Converter | undefined)[] = [];
  for (const column of planned) {
    if (seen.has(column.target)) errors.push(`${label}: two columns write target column ${column.target}`);
    seen.add(column.target);
    const targetColumn = targetColumns.get(column.target);
    if (!targetColumn) {
      errors.push(`${label}: target table ${target.name} has no column ${column.target}`);
      continue;
    }
    let mapping: ValueMapping = {};
    if (column.source && from !== to) {
      const mapped = input.mapValue(column.source, targetColumn, from, to);
      if ('error' in mapped) {
        errors.push(`${label}: ${mapped.error}`);
        continue;
      }
      mapping = mapped;
    }
    converters.push(mapping.convert);
    const binary = loadData && BINARY_TYPES.has(targetColumn.dataType);
    const loadExpression = loadData ? mapping.loadExpression ?? bitLoadExpression(targetColumn) : undefined;
    columns.push({ name: column.target, binary, ...(loadExpression ? { loadExpression } : {}) });
  }
  for (const column of target.columns) {
    if (!seen.has(column.name) && !column.nullable && column.defaultValue === undefined && !column.autoIncrement && !column.generated) {
      errors.push(`${label}: target column ${column.name} is NOT NULL without a default and nothing fills it: map a source column to it or give it a default`);
    }
  }
  const needed = targetAdapter.storageEngine;
  if (needed && target.storageEngine && target.storageEngine.toLowerCase() !== needed.toLowerCase()) {
    errors.push(`${label}: target table ${target.name} uses storage engine ${target.storageEngine}; the copy commits each batch with its checkpoint and needs ${needed}`);
  }
  if (errors.length > 0) return { errors, warnings };
  return {
    errors,
    warnings,
    plan: {
      sourceEngine: from, targetEngine: to,
      sourceTable: spec.name,
      targetTable: spec.target ?? spec.name,
      key,
      selectColumns: planned.filter((c) => targetColumns.has(c.target)).map((c) => c.select),
      readColumns: planned.filter((c) => targetColumns.has(c.target)).map((c) => (c.plain && c.source ? exactRead(c.select, c.source, from) : c.select)),
      targetColumns: columns,
      converters,
      ...(where ? { where } : {}),
      ...(spec.dedupe ? { dedupe: spec.dedupe } : {}),
      conflictPolicy: input.conflictPolicy,
    },
  };
}

function rank(keyTargets: readonly string[], target: string): number {
  const index = keyTargets.indexOf(target);
  return index < 0 ? keyTargets.length : index;
}

/**
 * MySQL prints FLOAT with 6 significant digits (123456.789 reads as 123457); as a double it prints
 * the float's exact value, which the target's float parses back to the same bits.
 */
export function exactRead(quoted: string, column: ColumnInfo, from: Engine): string {
  return from === 'mysql' && column.dataType === 'float' ? `(${quoted} + 0e0)` : quoted;
}

/** BIT columns take a number; the copy sends bit values as hex. */
function bitLoadExpression(column: ColumnInfo): ((variable: string) => string) | undefined {
  return column.dataType === 'bit' ? (variable) => `CAST(CONV(${variable}, 16, 10) AS UNSIGNED)` : undefined;
}
