// DDL for target tables created from source metadata: the table with its columns and primary key
// before the copy (fast loads: no secondary index yet), then unique keys, indexes, foreign keys
// and identity restarts after it.
import { adapterFor } from '../db/adapter.ts';
import type { Dialect, Engine } from '../db/dialect.ts';
import type { TableSpec } from '../copy/planner.ts';
import { tableAndSchema } from '../db/dialect.ts';
import { carryOverNotices, checkCreated } from './carry-over.ts';
import { oversizedKeys } from './key-size.ts';
import type { ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo } from './model.ts';
import type { Notice } from './notices.ts';
import { mapColumnType } from './typemap.ts';
import { citextBounds, type CitextChoice } from './citext.ts';

export interface TableDdl {
  /** Target table name. */
  table: string;
  /** Run in order before the copy. */
  create: string[];
  /** Types (PostgreSQL enums) the `create` statements make unless they exist. */
  types: string[];
  /** Source column → target column, for the post-copy statements. */
  columnNames: Map<string, string>;
  /** Target column → its type as created. */
  columnTypes: Map<string, string>;
  /** What is not carried over exactly, per object; the plan groups them by reason. */
  notices: Notice[];
  errors: string[];
}

/** Why a column differs on the target (the plan prints each reason once, naming its columns). */
export const REASONS = {
  zeroDates: 'MySQL zero dates (0000-00-00) become NULL, counted in the copy\'s result',
  zeroDatesNullable: 'MySQL zero dates become NULL, so these NOT NULL columns are created nullable on PostgreSQL, and made NOT NULL after the copy when it wrote no NULL there',
  zeroDatesInKey: 'MySQL zero dates in these primary key columns fail the copy (a key column cannot be NULL)',
} as const;

const ZERO_DATE_TYPES = new Set(['date', 'datetime', 'timestamp']);
const ZERO_DATE_LITERAL = /^'?(0000-00-00|\d{4}-00-|\d{4}-\d{2}-00)/;

const INTEGER_TYPES = /^(smallint|integer|int|bigint|mediumint|tinyint)\b/i;

/** The CREATE TABLE (and anything it needs first) for `spec`'s target, from the source's shape. */
export function createTableDdl(source: TableInfo, spec: TableSpec, to: Engine, options: { citext?: CitextChoice } = {}): TableDdl {
  const from = source.engine;
  const q = adapterFor(to);
  const table = spec.target ?? spec.name;
  const label = `table ${spec.name}`;
  const overrides = new Map((spec.columns ?? []).map((c) => [c.name, c]));
  const indexed = new Set([...source.primaryKey, ...source.uniqueKeys.flatMap((k) => k.columns), ...source.indexes.flatMap((k) => k.columns)]);
  const result: TableDdl = { table, create: [], types: [], columnNames: new Map(), columnTypes: new Map(), notices: [], errors: [] };
  const domainsReproduced = new Set<string>();
  const bounds = citextBounds(source);
  const notice = (reason: string, column: string): void => { result.notices.push({ reason, subject: `${spec.name}.${column}` }); };
  // Zero dates become NULL on PostgreSQL: a NOT NULL column is created nullable, unless it is in the primary key.
  const zeroDates = from === 'mysql' && to === 'postgres';
  const definitions: string[] = [];
  const checks: string[] = [];

  for (const column of source.columns) {
    const override = overrides.get(column.name);
    if (override?.skip) continue;
    if (column.generated && from !== to) {
      notice(`generated columns are not created (their expression is ${from} SQL)`, column.name);
      continue;
    }
    if (override?.expression !== undefined) {
      result.errors.push(`${label}: column ${column.name} is computed by an expression, so its type is unknown: create table ${table} with a schema migration`);
      continue;
    }
    const name = override?.target ?? column.name;
    result.columnNames.set(column.name, name);
    // PostgreSQL citext into MySQL: varchar(n) when a CHECK bounds its length (as a created citext column's does).
    const bound = from === 'postgres' && to === 'mysql' ? bounds.get(column.name) : undefined;
    const mapped = mapColumnType(bound === undefined ? column : { ...column, length: bound }, from, to, { indexed: indexed.has(column.name), ...(options.citext ? { citext: options.citext } : {}) });
    if ('error' in mapped) {
      result.errors.push(`${label}: ${mapped.error}`);
      continue;
    }
    for (const reason of mapped.warnings) notice(reason, column.name);
    // Once per table (CREATE EXTENSION for every citext column would be the same statement).
    for (const statement of mapped.before ?? []) if (!result.create.includes(statement)) result.create.push(statement);
    if (mapped.createsType !== undefined && !result.types.includes(mapped.createsType)) result.types.push(mapped.createsType);
    result.columnTypes.set(name, mapped.type);
    let definition = `${q.quoteIdent(name)} ${mapped.type}`;
    if (to === 'mysql' && from === 'mysql' && column.charset && column.collation) definition += ` CHARACTER SET ${column.charset} COLLATE ${column.collation}`;
    if (column.generated) {
      definition += to === 'postgres'
        ? ` GENERATED ALWAYS AS (${column.generated.expression}) STORED`
        : ` AS (${column.generated.expression}) ${column.generated.kind === 'stored' ? 'STORED' : 'VIRTUAL'}`;
    } else {
      const zeroDate = zeroDates && ZERO_DATE_TYPES.has(column.dataType);
      const inKey = source.primaryKey.includes(column.name);
      if (zeroDate) notice(column.nullable ? REASONS.zeroDates : inKey ? REASONS.zeroDatesInKey : REASONS.zeroDatesNullable, column.name);
      if (mapped.reproducesDomain === true) domainsReproduced.add(column.name);
      const notNull = !column.nullable || (mapped.reproducesDomain === true && column.domain?.notNull === true);
      if (notNull && !(zeroDate && !inKey)) definition += ' NOT NULL';
      const defaultValue = column.defaultValue === undefined ? undefined : translateDefault(column, mapped.type, from, to);
      if (defaultValue !== undefined) definition += ` DEFAULT ${defaultValue}`;
      // Same engine: MySQL's own option. Into PostgreSQL: a trigger after the copy (on-update.ts).
      if (column.onUpdate !== undefined && from === 'mysql' && to === 'mysql') definition += ` ON UPDATE ${column.onUpdate}`;
      else if (column.defaultValue !== undefined) notice(`defaults with no ${to} equivalent are not created`, `${column.name} (default ${column.defaultValue})`);
      if (column.autoIncrement) {
        if (to === 'postgres' && INTEGER_TYPES.test(mapped.type)) definition += ' GENERATED BY DEFAULT AS IDENTITY';
        else if (to === 'mysql' && source.primaryKey[0] === column.name) definition += ' AUTO_INCREMENT';
        else notice(`columns that auto-increment on the source cannot on the target as ${mapped.type}`, column.name);
      }
    }
    if (mapped.check) checks.push(`CHECK (${mapped.check(q.quoteIdent(name))})`);
    definitions.push(definition);
  }
  for (const override of spec.columns ?? []) {
    if (!override.skip && !source.columns.some((c) => c.name === override.name)) {
      result.errors.push(`${label}: column ${override.name} is new (not in the source), so its type is unknown: create table ${table} with a schema migration`);
    }
  }
  // The source's CHECKs where the same engine reads them as written (carry-over.ts names the rest).
  const columnsChanged = (spec.columns ?? []).length > 0;
  for (const check of source.checks ?? []) {
    if (checkCreated(check, from, to, columnsChanged) === true) checks.push(`CONSTRAINT ${q.quoteIdent(check.name)} CHECK (${check.clause})`);
  }
  result.notices.push(...carryOverNotices({ name: spec.name, source, to, columnsChanged, onUpdateReproduced: from === 'mysql' && to === 'postgres', domainsReproduced, ...(options.citext ? { citext: options.citext } : {}) }));
  const primaryKey = source.primaryKey.map((c) => result.columnNames.get(c) ?? c);
  if (primaryKey.length > 0) definitions.push(`PRIMARY KEY (${primaryKey.map((c) => q.quoteIdent(c)).join(', ')})`);
  definitions.push(...checks);
  // The same engine has the same limits; from PostgreSQL, every key must fit InnoDB's.
  if (to === 'mysql' && from !== 'mysql') {
    const created = (columns: readonly string[]): boolean => columns.every((c) => result.columnNames.has(c));
    const keys = [
      ...(source.primaryKey.length > 0 ? [{ label: 'primary key', columns: source.primaryKey }] : []),
      ...source.uniqueKeys.filter((k) => created(k.columns)).map((k) => ({ label: `unique key ${k.name}`, columns: k.columns })),
      ...source.indexes.filter((k) => created(k.columns)).map((k) => ({ label: `index ${k.name}`, columns: k.columns })),
    ];
    result.errors.push(...oversizedKeys(spec.name, keys, (c) => result.columnTypes.get(result.columnNames.get(c) ?? c)));
  }
  // utf8mb4_bin compares like PostgreSQL (byte-wise, case-sensitive), so PostgreSQL's unique keys stay unique.
  const suffix = to === 'mysql' ? ` ENGINE=InnoDB DEFAULT CHARSET=utf8mb4${from === 'postgres' ? ' COLLATE=utf8mb4_bin' : ''}` : '';
  result.create.push(`CREATE TABLE ${q.quoteQualified(table)} (\n  ${definitions.join(',\n  ')}\n)${suffix}`);
  return result;
}

/** A default as the target engine spells it; undefined when it has no safe equivalent. */
export function translateDefault(column: ColumnInfo, targetType: string, from: Engine, to: Engine): string | undefined {
  const value = column.defaultValue;
  if (value === undefined || from === to) return value;
  if (/^current_timestamp(\(\d*\))?$|^now\(\)$|^localtimestamp$/i.test(value)) return 'CURRENT_TIMESTAMP';
  if (/^current_date(\(\))?$|^curdate\(\)$/i.test(value)) return 'CURRENT_DATE';
  if (to === 'postgres' && targetType === 'boolean') return value === '1' || value === "'1'" ? 'true' : value === '0' || value === "'0'" ? 'false' : undefined;
  if (to === 'mysql' && (value === 'true' || value === 'false')) return value === 'true' ? '1' : '0';
  // PostgreSQL decorates literals with casts: 'abc'::character varying, (-1)::integer.
  const bare = from === 'postgres' ? value.replace(/::[a-z ]+(\[\])?$/i, '').replace(/^\((.*)\)$/, '$1') : value;
  if (from === 'mysql' && ZERO_DATE_TYPES.has(column.dataType) && ZERO_DATE_LITERAL.test(bare)) return undefined;
  if (/^-?\d+(\.\d+)?$/.test(bare)) return bare;
  if (/^'(?:[^'\\]|'')*'$/.test(bare)) return bare;
  return undefined;
}

/** Statements run after every table is copied: keys, indexes, foreign keys, identity restarts. */
export function afterCopyDdl(input: {
  source: TableInfo;
  /** The target table and its columns' names by source column (only those it has). */
  ddl: Pick<TableDdl, 'table' | 'columnNames'>;
  to: Engine;
  /** Index and constraint names that already exist on the target table (reruns skip them). */
  existing: Set<string>;
  /** Source table name → target table name for the tables in this migration; other references are kept as named. */
  tableNames: Map<string, string>;
}): string[] {
  const { source, ddl, to, existing } = input;
  const q = adapterFor(to);
  const table = q.quoteQualified(ddl.table);
  const columns = (names: readonly string[]): string => names.map((n) => q.quoteIdent(ddl.columnNames.get(n) ?? n)).join(', ');
  const statements: string[] = [];
  const index = (i: IndexInfo): void => {
    // The name the plan chose (unique in the target schema; see index-names.ts).
    const name = i.targetName ?? i.name;
    if (existing.has(name) || !i.columns.every((c) => ddl.columnNames.has(c))) return;
    // FULLTEXT: MySQL's own kind; into PostgreSQL not created (carry-over.ts names it).
    if (i.fulltext === true) {
      if (to === 'mysql') statements.push(`ALTER TABLE ${table} ADD FULLTEXT INDEX ${q.quoteIdent(name)} (${columns(i.columns)})`);
      return;
    }
    // PostgreSQL's other access methods: kept on PostgreSQL; into MySQL only hash (as a btree), the rest named (carry-over.ts).
    if (i.method !== undefined && to === 'mysql' && i.method !== 'hash') return;
    // Quoted: the name is the source catalog's, and a superuser there can name an access method anything.
    const using = i.method !== undefined && to === 'postgres' ? ` USING ${q.quoteIdent(i.method)}` : '';
    statements.push(to === 'postgres'
      ? `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${q.quoteIdent(name)} ON ${table}${using} (${columns(i.columns)})`
      : `ALTER TABLE ${table} ADD ${i.unique ? 'UNIQUE ' : ''}INDEX ${q.quoteIdent(name)} (${columns(i.columns)})`);
  };
  source.uniqueKeys.forEach(index);
  source.indexes.forEach(index);
  for (const fk of source.foreignKeys) {
    // A foreign key to a table this migration does not copy is not created (the plan warns).
    if (existing.has(fk.name) || referencedTarget(fk, input.tableNames) === undefined) continue;
    statements.push(foreignKey(q, table, fk, columns, input.tableNames));
  }
  if (to === 'postgres') statements.push(...zeroDateNotNull(source, ddl, q, table));
  if (to === 'postgres') {
    for (const column of source.columns) {
      const name = ddl.columnNames.get(column.name);
      if (!column.autoIncrement || name === undefined) continue;
      // COPY writes explicit ids without advancing the identity; new rows must start past the max.
      statements.push(`SELECT setval(pg_get_serial_sequence(${q.quoteLiteral(table)}, ${q.quoteLiteral(name)}), COALESCE(MAX(${q.quoteIdent(name)}), 0) + 1, false) FROM ${table}`);
    }
  }
  return statements;
}

/**
 * MySQL NOT NULL date columns created nullable for their zero dates (createTableDdl): NOT NULL
 * again once the copy is done, unless it wrote a NULL there (a zero date), so that a source
 * without zero dates (Chinook's Invoice.InvoiceDate) keeps its nullability. Conditional in one
 * statement: the copy's count is per run, and a rerun or another pod may have written the rest.
 */
function zeroDateNotNull(source: TableInfo, ddl: Pick<TableDdl, 'columnNames'>, q: Dialect, table: string): string[] {
  if (source.engine !== 'mysql') return [];
  const statements: string[] = [];
  for (const column of source.columns) {
    const name = ddl.columnNames.get(column.name);
    if (name === undefined || column.nullable || column.generated || !ZERO_DATE_TYPES.has(column.dataType) || source.primaryKey.includes(column.name)) continue;
    const body = `BEGIN IF NOT EXISTS (SELECT 1 FROM ${table} WHERE ${q.quoteIdent(name)} IS NULL) THEN ALTER TABLE ${table} ALTER COLUMN ${q.quoteIdent(name)} SET NOT NULL; END IF; END`;
    // Dollar-quoted: a name holding the quote's tag cannot end it early (such a column stays nullable).
    if (!body.includes('$dmo$')) statements.push(`DO $dmo$${body}$dmo$`);
  }
  return statements;
}

/**
 * The target table a foreign key references when the migration copies that table; undefined when
 * it does not. The catalog may qualify and quote the name (PostgreSQL's regclass text).
 */
export function referencedTarget(fk: Pick<ForeignKeyInfo, 'referencedTable'>, tableNames: ReadonlyMap<string, string>): string | undefined {
  return tableNames.get(fk.referencedTable) ?? tableNames.get(tableAndSchema(fk.referencedTable).table);
}

function foreignKey(q: Dialect, table: string, fk: ForeignKeyInfo, columns: (names: readonly string[]) => string, tableNames: Map<string, string>): string {
  const referenced = referencedTarget(fk, tableNames) ?? fk.referencedTable;
  const referencedColumns = fk.referencedColumns.map((c) => q.quoteIdent(c)).join(', ');
  return `ALTER TABLE ${table} ADD CONSTRAINT ${q.quoteIdent(fk.name)} FOREIGN KEY (${columns(fk.columns)}) REFERENCES ${q.quoteQualified(referenced)} (${referencedColumns}) ON DELETE ${fk.onDelete} ON UPDATE ${fk.onUpdate}`;
}
