// Reads a table's shape from the database's own catalog (pg_catalog, information_schema) into
// the engine-neutral TableInfo that the type map, the DDL and the copy planner work from.
import { splitQualifiedName } from '../db/dialect.ts';
import type { SqlSession, SqlValue } from '../db/session.ts';
import type { ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo } from './model.ts';

const text = (value: SqlValue | undefined): string | undefined => (value === null || value === undefined ? undefined : value.toString());
const int = (value: SqlValue | undefined): number | undefined => {
  const s = text(value);
  return s === undefined ? undefined : Number(s);
};
const truthy = (value: SqlValue | undefined): boolean => ['t', 'true', '1', 'YES'].includes(text(value) ?? '');

/** The table's shape, or undefined when it does not exist. */
export async function introspectTable(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  return session.engine === 'postgres' ? introspectPostgres(session, name) : introspectMysql(session, name);
}

/** Lists the base tables of the session's current schema (PostgreSQL) or database (MySQL). */
export async function listTables(session: SqlSession): Promise<string[]> {
  const rows = session.engine === 'postgres'
    ? await session.query(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`)
    : await session.query(`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1`);
  return rows.map((r) => text(r.name) ?? '');
}

// Maps pg_constraint's one-letter referential actions to SQL.
const PG_ACTIONS: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };

async function introspectPostgres(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  const [table] = await session.query(
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name, c.reltuples::bigint AS estimate
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`,
    [session.dialect.quoteQualified(name)],
  );
  if (!table) return undefined;
  const oid = text(table.oid);
  const columnRows = await session.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS native_type,
            CASE WHEN t.typtype = 'e' THEN 'enum' WHEN t.typcategory = 'A' THEN 'ARRAY' ELSE ic.data_type END AS data_type,
            ic.character_maximum_length AS length, ic.numeric_precision AS precision, ic.numeric_scale AS scale,
            ic.datetime_precision AS datetime_precision, NOT a.attnotnull AS nullable,
            pg_get_expr(d.adbin, d.adrelid) AS default_value, a.attidentity AS identity, a.attgenerated AS generated,
            CASE WHEN t.typtype = 'e' THEN (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)::text FROM pg_enum e WHERE e.enumtypid = t.oid) END AS enum_values,
            CASE WHEN t.typcategory = 'A' THEN format_type(t.typelem, NULL) END AS element_type,
            col_description(a.attrelid, a.attnum) AS comment
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       JOIN information_schema.columns ic ON ic.table_schema = $2 AND ic.table_name = $3 AND ic.column_name = a.attname
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [oid, text(table.schema), text(table.name)],
  );
  const columns: ColumnInfo[] = columnRows.map((r) => {
    const defaultValue = text(r.default_value);
    const generated = text(r.generated);
    const serial = defaultValue?.startsWith('nextval(') ?? false;
    const dataType = text(r.data_type) ?? '';
    const length = int(r.length) ?? (dataType === 'bit' || dataType === 'bit varying' ? bitLength(text(r.native_type)) : undefined);
    const column: ColumnInfo = {
      name: text(r.name) ?? '',
      nativeType: text(r.native_type) ?? '',
      dataType,
      nullable: truthy(r.nullable),
      autoIncrement: serial || (text(r.identity) ?? '') !== '',
    };
    if (length !== undefined) column.length = length;
    // information_schema reports binary precision for floats and none for plain numeric.
    if (dataType === 'numeric' && int(r.precision) !== undefined) column.precision = int(r.precision);
    if (dataType === 'numeric' && int(r.scale) !== undefined) column.scale = int(r.scale);
    if (/^(time|timestamp)/.test(dataType) && int(r.datetime_precision) !== undefined) column.datetimePrecision = int(r.datetime_precision);
    if (defaultValue !== undefined && !serial && !generated) column.defaultValue = defaultValue;
    if (generated === 's' && defaultValue !== undefined) column.generated = { kind: 'stored', expression: defaultValue };
    const labels = text(r.enum_values);
    if (labels) column.enumValues = JSON.parse(labels) as string[];
    const element = text(r.element_type);
    if (element) column.elementType = element;
    const comment = text(r.comment);
    if (comment) column.comment = comment;
    return column;
  });
  const indexRows = await session.query(
    `SELECT ic.relname AS name, i.indisprimary AS is_primary, i.indisunique AS is_unique,
            json_agg(a.attname ORDER BY k.ord)::text AS columns, bool_or(k.attnum = 0) AS has_expression, i.indpred IS NOT NULL AS partial
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::oid AND k.ord <= i.indnkeyatts
      GROUP BY ic.relname, i.indisprimary, i.indisunique, i.indpred IS NOT NULL
      ORDER BY ic.relname`,
    [oid],
  );
  const fkRows = await session.query(
    `SELECT c.conname AS name, c.confdeltype AS on_delete, c.confupdtype AS on_update,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)::text AS columns,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum)::text AS referenced_columns,
            c.confrelid::regclass::text AS referenced_table
       FROM pg_constraint c WHERE c.conrelid = $1::oid AND c.contype = 'f' ORDER BY c.conname`,
    [oid],
  );
  return assemble({
    engine: 'postgres', schema: text(table.schema) ?? '', name: text(table.name) ?? '', columns,
    estimatedRows: Math.max(0, int(table.estimate) ?? 0),
    indexes: indexRows
      // Expression and partial indexes cannot be carried over column by column; the plan warns.
      .filter((r) => !truthy(r.has_expression) && !truthy(r.partial))
      .map((r) => ({ name: text(r.name) ?? '', columns: JSON.parse(text(r.columns) ?? '[]') as string[], unique: truthy(r.is_unique), primary: truthy(r.is_primary) })),
    foreignKeys: fkRows.map((r) => ({
      name: text(r.name) ?? '',
      columns: JSON.parse(text(r.columns) ?? '[]') as string[],
      referencedTable: text(r.referenced_table) ?? '',
      referencedColumns: JSON.parse(text(r.referenced_columns) ?? '[]') as string[],
      onDelete: PG_ACTIONS[text(r.on_delete) ?? 'a'] ?? 'NO ACTION',
      onUpdate: PG_ACTIONS[text(r.on_update) ?? 'a'] ?? 'NO ACTION',
    })),
  });
}

function bitLength(nativeType: string | undefined): number | undefined {
  const match = /\((\d+)\)/.exec(nativeType ?? '');
  return match ? Number(match[1]) : undefined;
}

async function introspectMysql(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  const parts = splitQualifiedName(name);
  const tableName = parts.pop() ?? name;
  const schemaSql = parts.length > 0 ? '?' : 'DATABASE()';
  const schemaParams = parts.length > 0 ? [parts.join('.')] : [];
  const [table] = await session.query(
    `SELECT TABLE_SCHEMA AS \`schema\`, TABLE_NAME AS name, TABLE_ROWS AS estimate, ENGINE AS engine
       FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schemaSql} AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'`,
    [...schemaParams, tableName],
  );
  if (!table) return undefined;
  const where = [text(table.schema), text(table.name)];
  const columnRows = await session.query(
    `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS native_type, DATA_TYPE AS data_type, CHARACTER_MAXIMUM_LENGTH AS length,
            NUMERIC_PRECISION AS \`precision\`, NUMERIC_SCALE AS scale, DATETIME_PRECISION AS datetime_precision,
            IS_NULLABLE AS nullable, COLUMN_DEFAULT AS default_value, EXTRA AS extra, GENERATION_EXPRESSION AS generation_expression,
            CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation, COLUMN_COMMENT AS comment
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    where,
  );
  // MariaDB's JSON is LONGTEXT with a json_valid() check; the check is how it is recognised.
  const jsonColumns = new Set((await session.query(
    `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, where,
  ).catch(() => [])).flatMap((r) => {
    const match = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(text(r.clause)?.trim() ?? '');
    return match?.[1] ? [match[1].replaceAll('``', '`')] : [];
  }));
  const columns: ColumnInfo[] = columnRows.map((r) => {
    const nativeType = text(r.native_type) ?? '';
    const extra = (text(r.extra) ?? '').toLowerCase();
    const columnName = text(r.name) ?? '';
    let dataType = (text(r.data_type) ?? '').toLowerCase();
    if (dataType === 'longtext' && jsonColumns.has(columnName)) dataType = 'json';
    const column: ColumnInfo = {
      name: columnName,
      nativeType,
      dataType,
      nullable: text(r.nullable) === 'YES',
      autoIncrement: extra.includes('auto_increment'),
    };
    if (/unsigned/i.test(nativeType)) column.unsigned = true;
    if (dataType === 'bit') column.length = int(r.precision);
    else if (int(r.length) !== undefined && /char|binary/.test(dataType)) column.length = int(r.length);
    if (dataType === 'decimal') {
      column.precision = int(r.precision);
      column.scale = int(r.scale);
    }
    const datetimePrecision = int(r.datetime_precision);
    if (datetimePrecision !== undefined && /^(time|datetime|timestamp)$/.test(dataType)) column.datetimePrecision = datetimePrecision;
    const defaultValue = mysqlDefault(text(r.default_value), r.nullable);
    if (defaultValue !== undefined) column.defaultValue = defaultValue;
    if (extra.includes('generated')) {
      column.generated = { kind: /stored|persistent/.test(extra) ? 'stored' : 'virtual', expression: text(r.generation_expression) ?? '' };
      delete column.defaultValue;
    }
    if (dataType === 'enum' || dataType === 'set') column.enumValues = parseEnumLabels(nativeType);
    const charset = text(r.charset);
    if (charset) column.charset = charset;
    const collation = text(r.collation);
    if (collation) column.collation = collation;
    const comment = text(r.comment);
    if (comment) column.comment = comment;
    return column;
  });
  const indexRows = await session.query(
    `SELECT INDEX_NAME AS name, NON_UNIQUE AS non_unique, COLUMN_NAME AS \`column\`
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    where,
  );
  const indexes = new Map<string, IndexInfo & { primary: boolean; expression: boolean }>();
  for (const r of indexRows) {
    const indexName = text(r.name) ?? '';
    const index = indexes.get(indexName) ?? { name: indexName, columns: [], unique: text(r.non_unique) === '0', primary: indexName === 'PRIMARY', expression: false };
    const column = text(r.column);
    if (column === undefined) index.expression = true;
    else index.columns.push(column);
    indexes.set(indexName, index);
  }
  const fkRows = await session.query(
    `SELECT k.CONSTRAINT_NAME AS name, k.COLUMN_NAME AS \`column\`, k.REFERENCED_TABLE_NAME AS referenced_table,
            k.REFERENCED_COLUMN_NAME AS referenced_column, r.DELETE_RULE AS on_delete, r.UPDATE_RULE AS on_update
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
      WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
      ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    where,
  );
  const foreignKeys = new Map<string, ForeignKeyInfo>();
  for (const r of fkRows) {
    const fkName = text(r.name) ?? '';
    const fk = foreignKeys.get(fkName) ?? {
      name: fkName, columns: [], referencedTable: text(r.referenced_table) ?? '', referencedColumns: [],
      onDelete: text(r.on_delete) ?? 'NO ACTION', onUpdate: text(r.on_update) ?? 'NO ACTION',
    };
    fk.columns.push(text(r.column) ?? '');
    fk.referencedColumns.push(text(r.referenced_column) ?? '');
    foreignKeys.set(fkName, fk);
  }
  const storageEngine = text(table.engine);
  return assemble({
    engine: 'mysql', schema: text(table.schema) ?? '', name: text(table.name) ?? '', columns,
    estimatedRows: int(table.estimate) ?? 0,
    indexes: [...indexes.values()].filter((i) => !i.expression),
    foreignKeys: [...foreignKeys.values()],
    ...(storageEngine ? { storageEngine } : {}),
  });
}

/**
 * MariaDB shows string defaults quoted ('abc') and "NULL" for a NULL default; MySQL shows the bare
 * text. The result is always an SQL expression: a quoted literal, a number, or a function call.
 */
function mysqlDefault(value: string | undefined, nullable: SqlValue | undefined): string | undefined {
  if (value === undefined || (value === 'NULL' && text(nullable) === 'YES')) return undefined;
  if (/^'.*'$/s.test(value) || /^-?[0-9.]+$/.test(value) || /^[a-z_]+\(.*\)$/i.test(value) || /^current_timestamp/i.test(value)) return value;
  return `'${value.replaceAll("'", "''")}'`;
}

/** The labels of "enum('a','b''c')" or "set(...)". */
export function parseEnumLabels(nativeType: string): string[] {
  const body = /^(?:enum|set)\((.*)\)/is.exec(nativeType)?.[1] ?? '';
  return [...body.matchAll(/'((?:[^']|'')*)'/g)].map((m) => (m[1] ?? '').replaceAll("''", "'").replaceAll('\\\\', '\\'));
}

function assemble(input: {
  engine: TableInfo['engine']; schema: string; name: string; columns: ColumnInfo[]; estimatedRows: number;
  indexes: (IndexInfo & { primary: boolean })[]; foreignKeys: ForeignKeyInfo[]; storageEngine?: string;
}): TableInfo {
  const primary = input.indexes.find((i) => i.primary);
  const strip = ({ name, columns, unique }: IndexInfo): IndexInfo => ({ name, columns, unique });
  return {
    engine: input.engine,
    schema: input.schema,
    name: input.name,
    columns: input.columns,
    primaryKey: primary?.columns ?? [],
    uniqueKeys: input.indexes.filter((i) => !i.primary && i.unique).map(strip),
    indexes: input.indexes.filter((i) => !i.unique).map(strip),
    foreignKeys: input.foreignKeys,
    estimatedRows: input.estimatedRows,
    ...(input.storageEngine ? { storageEngine: input.storageEngine } : {}),
  };
}
