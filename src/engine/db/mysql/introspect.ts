// MySQL/MariaDB's side of introspection: a table's shape from information_schema, into the
// engine-neutral TableInfo that the type map, the DDL and the copy planner work from.
import type { CheckInfo, ColumnInfo, ForeignKeyInfo, IndexInfo, SchemaObject, TableInfo } from '../../schema/model.ts';
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
  const checks = await checksOf(session, where);
  const jsonColumns = new Set(checks.flatMap((check) => {
    const match = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(check.clause.trim());
    if (!match?.[1]) return [];
    check.jsonValid = true;
    return [match[1].replaceAll('``', '`')];
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
    // MariaDB: "on update current_timestamp()"; MySQL: "DEFAULT_GENERATED on update CURRENT_TIMESTAMP(3)".
    const onUpdate = /\bon update (current_timestamp(?:\(\d*\))?)/i.exec(extra)?.[1];
    if (onUpdate !== undefined) column.onUpdate = onUpdate.toUpperCase();
    return column;
  });
  const indexRows = await session.query(
    `SELECT INDEX_NAME AS name, NON_UNIQUE AS non_unique, COLUMN_NAME AS \`column\`, INDEX_TYPE AS type
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    where,
  );
  const indexes = new Map<string, IndexInfo & { primary: boolean; expression: boolean }>();
  const spatial = new Set<string>();
  const fulltext = new Set<string>();
  for (const r of indexRows) {
    const indexName = text(r.name) ?? '';
    if (text(r.type)?.toUpperCase() === 'SPATIAL') {
      spatial.add(indexName);
      continue;
    }
    if (text(r.type)?.toUpperCase() === 'FULLTEXT') fulltext.add(indexName);
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
  const info: TableInfo = assembleTable({
    engine: 'mysql', schema: text(table.schema) ?? '', name: text(table.name) ?? '', columns,
    estimatedRows: int(table.estimate) ?? 0,
    indexes: [...indexes.values()].filter((i) => !i.expression),
    foreignKeys: [...foreignKeys.values()],
    ...(storageEngine ? { storageEngine } : {}),
  });
  info.checks = checks;
  for (const index of info.indexes) if (fulltext.has(index.name)) index.fulltext = true;
  const functional = [...indexes.values()].filter((i) => i.expression).map((i) => i.name);
  if (functional.length > 0) info.skippedIndexes = functional;
  if (spatial.size > 0) info.spatialIndexes = [...spatial];
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

/**
 * The table's CHECK constraints. MariaDB names them per table (CHECK_CONSTRAINTS has TABLE_NAME);
 * MySQL 8 per database, and says which table through TABLE_CONSTRAINTS.
 */
async function checksOf(session: SqlSession, where: (string | undefined)[]): Promise<CheckInfo[]> {
  const rows = await session.query(
    `SELECT CONSTRAINT_NAME AS name, CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? ORDER BY CONSTRAINT_NAME`, where,
  ).catch(() => session.query(
    `SELECT c.CONSTRAINT_NAME AS name, c.CHECK_CLAUSE AS clause FROM information_schema.TABLE_CONSTRAINTS t
       JOIN information_schema.CHECK_CONSTRAINTS c ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME
      WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ? AND t.CONSTRAINT_TYPE = 'CHECK' ORDER BY c.CONSTRAINT_NAME`, where,
  ));
  return rows.map((r) => ({ name: text(r.name) ?? '', clause: text(r.clause) ?? '' }));
}

/** Views, routines and events of these tables' databases, and the triggers of these tables. */
async function mysqlSchemaObjects(session: SqlSession, tables: readonly { schema: string; name: string }[]): Promise<SchemaObject[]> {
  if (tables.length === 0) return [];
  const found: SchemaObject[] = [];
  // One database at a time, each named by `=`: MariaDB reads information_schema for that database
  // alone only then (an IN list, or a row constructor, makes it open every table of every database).
  for (const schema of [...new Set(tables.map((t) => t.schema))]) {
    const names = tables.filter((t) => t.schema === schema).map((t) => t.name);
    const rows = await session.query(
      `SELECT 'view' AS kind, TABLE_SCHEMA AS \`schema\`, TABLE_NAME AS name, NULL AS on_table FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
       UNION ALL
       SELECT 'routine', ROUTINE_SCHEMA, CONCAT(ROUTINE_NAME, ' (', LOWER(ROUTINE_TYPE), ')'), NULL FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
       UNION ALL
       SELECT 'event', EVENT_SCHEMA, EVENT_NAME, NULL FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?
       UNION ALL
       SELECT 'trigger', TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE IN (${names.map(() => '?').join(', ')})
       ORDER BY 1, 2, 3`,
      [schema, schema, schema, schema, ...names],
    );
    found.push(...rows.map((r): SchemaObject => ({
      kind: (text(r.kind) ?? 'view') as SchemaObject['kind'], schema: text(r.schema) ?? '', name: text(r.name) ?? '',
      ...(text(r.on_table) !== undefined ? { table: text(r.on_table) ?? '' } : {}),
    })));
  }
  return [...found, ...await unseenKinds(session, tables)];
}

/**
 * What information_schema hides from this account: triggers without TRIGGER on their table,
 * events without EVENT, routines without a routine privilege, views without SHOW VIEW or SELECT.
 * Privileges through roles are not followed (they may show more than this says).
 */
async function unseenKinds(session: SqlSession, tables: readonly { schema: string; name: string }[]): Promise<SchemaObject[]> {
  const [user] = await session.query('SELECT CURRENT_USER() AS who');
  const who = text(user?.who) ?? '';
  const at = who.lastIndexOf('@');
  const grantee = `'${who.slice(0, at)}'@'${who.slice(at + 1)}'`;
  const privileges = async (sql: string, params: SqlValue[]): Promise<Set<string>> => new Set((await session.query(sql, [grantee, ...params])).map((r) => text(r.p) ?? ''));
  const global = await privileges('SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?', []);
  const unseen: SchemaObject[] = [];
  for (const schema of new Set(tables.map((t) => t.schema))) {
    const granted = new Set([...global, ...await privileges('SELECT PRIVILEGE_TYPE AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ?', [schema])]);
    const any = (...wanted: string[]): boolean => wanted.some((p) => granted.has(p));
    const inSchema = tables.filter((t) => t.schema === schema);
    const triggerless: string[] = [];
    for (const table of any('TRIGGER') ? [] : inSchema) {
      const own = await privileges('SELECT PRIVILEGE_TYPE AS p FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? AND TABLE_NAME = ?', [schema, table.name]);
      if (!own.has('TRIGGER')) triggerless.push(table.name);
    }
    if (triggerless.length > 0) unseen.push({ kind: 'unseen', schema, name: `triggers of ${triggerless.join(' and ')} (needs TRIGGER)` });
    if (!any('EVENT')) unseen.push({ kind: 'unseen', schema, name: 'events (needs EVENT)' });
    if (!any('EXECUTE', 'CREATE ROUTINE', 'ALTER ROUTINE', 'SHOW_ROUTINE', 'SHOW CREATE ROUTINE') && !global.has('SELECT')) unseen.push({ kind: 'unseen', schema, name: 'routines (needs EXECUTE)' });
    if (!any('SHOW VIEW', 'SELECT')) unseen.push({ kind: 'unseen', schema, name: 'views (needs SHOW VIEW)' });
  }
  return unseen;
}

export const mysqlIntrospector: Introspector = { table: introspectMysqlTable, tables: listMysqlTables, objects: mysqlSchemaObjects };
