// MySQL/MariaDB's side of introspection: a table's shape from information_schema, into the
// engine-neutral TableInfo that the type map, the DDL and the copy planner work from.
import type { ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo } from '../../schema/model.ts';
import { assembleTable, int, text } from '../catalog-rows.ts';
import type { Introspector } from '../adapter.ts';
import { tableAndSchema } from '../dialect.ts';
import type { SqlSession, SqlValue } from '../session.ts';

async function introspectMysqlTable(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  const { table: tableName, schema } = tableAndSchema(name);
  const schemaSql = schema === undefined ? 'DATABASE()' : '?';
  const schemaParams = schema === undefined ? [] : [schema];
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
  // A partitioned table is one table here too; the plan says its partitioning is not carried over.
  const [partitioned] = await session.query(
    `SELECT COUNT(*) AS n FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL`, where,
  );
  const partitions = int(partitioned?.n) ?? 0;
  const info = assembleTable({
    engine: 'mysql', schema: text(table.schema) ?? '', name: text(table.name) ?? '', columns,
    estimatedRows: int(table.estimate) ?? 0,
    indexes: [...indexes.values()].filter((i) => !i.expression),
    foreignKeys: [...foreignKeys.values()],
    ...(storageEngine ? { storageEngine } : {}),
  });
  return partitions > 0 ? { ...info, partitions } : info;
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

/** The base tables of the current database. */
async function listMysqlTables(session: SqlSession): Promise<string[]> {
  const rows = await session.query(`SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1`);
  return rows.map((r) => text(r.name) ?? '');
}

export const mysqlIntrospector: Introspector = { table: introspectMysqlTable, tables: listMysqlTables };
