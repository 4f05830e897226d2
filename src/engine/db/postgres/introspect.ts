// PostgreSQL's side of introspection: a table's shape from pg_catalog and information_schema,
// into the engine-neutral TableInfo that the type map, the DDL and the copy planner work from.
import type { ColumnInfo, TableInfo } from '../../schema/model.ts';
import { assembleTable, int, text, truthy } from '../catalog-rows.ts';
import type { Introspector } from '../adapter.ts';
import type { SqlSession } from '../session.ts';

// Maps pg_constraint's one-letter referential actions to SQL.
const PG_ACTIONS: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };

async function introspectPostgresTable(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  const [table] = await session.query(
    // A partitioned table is read once, through its parent: its estimate is its leaves'.
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name,
            CASE WHEN c.relkind = 'p' THEN (SELECT COALESCE(sum(GREATEST(l.reltuples, 0)), 0) FROM pg_partition_tree(c.oid) p JOIN pg_class l ON l.oid = p.relid WHERE p.isleaf)
                 ELSE c.reltuples END::bigint AS estimate,
            CASE WHEN c.relkind = 'p' THEN (SELECT count(*) FROM pg_partition_tree(c.oid) p WHERE p.relid <> c.oid) END AS partitions
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
  // Valid, ready indexes only: an INVALID one (a failed CREATE INDEX CONCURRENTLY) proves no key
  // unique and is not carried over to a created table.
  const indexRows = await session.query(
    `SELECT ic.relname AS name, i.indisprimary AS is_primary, i.indisunique AS is_unique,
            json_agg(a.attname ORDER BY k.ord)::text AS columns, bool_or(k.attnum = 0) AS has_expression, i.indpred IS NOT NULL AS partial
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1::oid AND k.ord <= i.indnkeyatts AND i.indisvalid AND i.indisready
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
  const partitions = int(table.partitions);
  const info = assembleTable({
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
  return partitions === undefined ? info : { ...info, partitions };
}

function bitLength(nativeType: string | undefined): number | undefined {
  const match = /\((\d+)\)/.exec(nativeType ?? '');
  return match ? Number(match[1]) : undefined;
}

/** The base tables of the current schema; a partitioned table's partitions are not listed (its rows are read through it). */
async function listPostgresTables(session: SqlSession): Promise<string[]> {
  const rows = await session.query(
    `SELECT t.table_name AS name FROM information_schema.tables t
       JOIN pg_namespace n ON n.nspname = t.table_schema JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
      WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND NOT c.relispartition ORDER BY 1`,
  );
  return rows.map((r) => text(r.name) ?? '');
}

export const postgresIntrospector: Introspector = { table: introspectPostgresTable, tables: listPostgresTables };
