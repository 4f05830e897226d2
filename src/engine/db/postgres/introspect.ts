// PostgreSQL's side of introspection: a table's shape from pg_catalog and information_schema,
// into the engine-neutral TableInfo that the type map, the DDL and the copy planner work from.
import type { CheckInfo, ColumnInfo, DomainInfo, SchemaObject, TableInfo } from '../../schema/model.ts';
import { assembleTable, int, text, truthy } from '../catalog-rows.ts';
import type { Introspector } from '../adapter.ts';
import type { SqlRow, SqlSession } from '../session.ts';

// Maps pg_constraint's one-letter referential actions to SQL.
const PG_ACTIONS: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };

/**
 * The rows of pg_class entry `rel` as the planner estimates them: reltuples scaled to the table's
 * current size; never analyzed (reltuples -1) or analyzed empty, its size over a row width guessed
 * from the column types (a varlena 32 bytes, as the planner guesses) plus the tuple header.
 */
const estimatedRowsOf = (rel: string): string => `(CASE WHEN ${rel}.relpages > 0 AND ${rel}.reltuples >= 0
              THEN ${rel}.reltuples / ${rel}.relpages * (pg_relation_size(${rel}.oid) / current_setting('block_size')::int)
              ELSE pg_relation_size(${rel}.oid) / (28 + (SELECT COALESCE(sum(CASE WHEN t.typlen > 0 THEN t.typlen ELSE 32 END), 0)
                FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = ${rel}.oid AND a.attnum > 0 AND NOT a.attisdropped)) END)`;

async function introspectPostgresTable(session: SqlSession, name: string): Promise<TableInfo | undefined> {
  const [table] = await session.query(
    // A partitioned table is read once, through its parent: its estimate is its leaves'.
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name,
            CASE WHEN c.relkind = 'p' THEN (SELECT COALESCE(sum(${estimatedRowsOf('l')}), 0) FROM pg_partition_tree(c.oid) p JOIN pg_class l ON l.oid = p.relid WHERE p.isleaf)
                 ELSE ${estimatedRowsOf('c')} END::bigint AS estimate,
            CASE WHEN c.relkind = 'p' THEN (SELECT count(*) FROM pg_partition_tree(c.oid) p WHERE p.relid <> c.oid) END AS partitions
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`,
    [session.dialect.quoteQualified(name)],
  );
  if (!table) return undefined;
  const oid = text(table.oid);
  const domains = await domainsOf(session, oid ?? '');
  const columnRows = await session.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS native_type,
            CASE WHEN t.typtype = 'e' THEN 'enum' WHEN t.typcategory = 'A' THEN 'ARRAY' WHEN t.typname = 'citext' THEN 'citext' ELSE ic.data_type END AS data_type,
            ic.character_maximum_length AS length, ic.numeric_precision AS precision, ic.numeric_scale AS scale,
            ic.datetime_precision AS datetime_precision, NOT a.attnotnull AS nullable,
            pg_get_expr(d.adbin, d.adrelid) AS default_value, a.attidentity AS identity, a.attgenerated AS generated,
            CASE WHEN t.typtype = 'e' THEN (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)::text FROM pg_enum e WHERE e.enumtypid = t.oid) END AS enum_values,
            CASE WHEN t.typcategory = 'A' THEN format_type(t.typelem, NULL) END AS element_type,
            col_description(a.attrelid, a.attnum) AS comment,
            CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN co.collname END AS collation,
            NOT co.collisdeterministic AS nondeterministic
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
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
    const collation = text(r.collation);
    if (collation) column.collation = collation;
    if (truthy(r.nondeterministic)) column.collationNondeterministic = true;
    const domain = domains.get(column.name);
    if (domain) {
      column.domain = domain;
      // A domain's default applies where the column has none of its own.
      if (column.defaultValue === undefined && domain.defaultValue !== undefined && !column.autoIncrement && !generated) column.defaultValue = domain.defaultValue;
    }
    return column;
  });
  const checkRows = await session.query(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS definition, convalidated AS validated
       FROM pg_constraint WHERE conrelid = $1::oid AND contype = 'c' ORDER BY conname`,
    [oid],
  );
  const checks: CheckInfo[] = checkRows.map((r) => ({
    name: text(r.name) ?? '',
    clause: (text(r.definition) ?? '').replace(/^CHECK /, '').replace(/( NO INHERIT| NOT VALID)+$/, ''),
    ...(truthy(r.validated) ? {} : { notValidated: true }),
  }));
  // Valid, ready indexes only: an INVALID one (a failed CREATE INDEX CONCURRENTLY) proves no key
  // unique and is not carried over to a created table.
  const indexRows = await session.query(
    `SELECT ic.relname AS name, i.indisprimary AS is_primary, i.indisunique AS is_unique, am.amname AS method,
            json_agg(a.attname ORDER BY k.ord)::text AS columns, bool_or(k.attnum = 0) AS has_expression, i.indpred IS NOT NULL AS partial,
            bool_and(coalesce(opc.opcdefault, true)) AS default_opclasses
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_am am ON am.oid = ic.relam
       CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[]) WITH ORDINALITY AS k(attnum, opclass, ord)
       LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       LEFT JOIN pg_opclass opc ON opc.oid = k.opclass
      WHERE i.indrelid = $1::oid AND k.ord <= i.indnkeyatts AND i.indisvalid AND i.indisready
      GROUP BY ic.relname, i.indisprimary, i.indisunique, am.amname, i.indpred IS NOT NULL
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
  // An operator class of its own (gin_trgm_ops) is not carried over column by column either.
  const skipped = (r: SqlRow): boolean => truthy(r.has_expression) || truthy(r.partial) || !truthy(r.default_opclasses);
  const skippedIndexes = indexRows.filter(skipped).map((r) => text(r.name) ?? '');
  const info: TableInfo = assembleTable({
    engine: 'postgres', schema: text(table.schema) ?? '', name: text(table.name) ?? '', columns,
    estimatedRows: Math.max(0, int(table.estimate) ?? 0),
    indexes: indexRows
      // Expression and partial indexes cannot be carried over column by column; the plan warns.
      .filter((r) => !skipped(r))
      .map((r) => {
        const method = text(r.method) ?? 'btree';
        return { name: text(r.name) ?? '', columns: JSON.parse(text(r.columns) ?? '[]') as string[], unique: truthy(r.is_unique), primary: truthy(r.is_primary), ...(method === 'btree' ? {} : { method }) };
      }),
    foreignKeys: fkRows.map((r) => ({
      name: text(r.name) ?? '',
      columns: JSON.parse(text(r.columns) ?? '[]') as string[],
      referencedTable: text(r.referenced_table) ?? '',
      referencedColumns: JSON.parse(text(r.referenced_columns) ?? '[]') as string[],
      onDelete: PG_ACTIONS[text(r.on_delete) ?? 'a'] ?? 'NO ACTION',
      onUpdate: PG_ACTIONS[text(r.on_update) ?? 'a'] ?? 'NO ACTION',
    })),
  });
  info.checks = checks;
  if (skippedIndexes.length > 0) info.skippedIndexes = skippedIndexes;
  return partitions === undefined ? info : { ...info, partitions };
}

/** The table's columns whose type is a domain, with the domain's base type, checks, NOT NULL and default. */
async function domainsOf(session: SqlSession, oid: string): Promise<Map<string, DomainInfo>> {
  const rows = await session.query(
    `SELECT a.attname AS name, format_type(t.oid, NULL) AS domain, format_type(t.typbasetype, t.typtypmod) AS base_type,
            b.typtype = 'd' AS base_is_domain, t.typnotnull AS not_null, t.typdefault AS default_value,
            (SELECT json_agg(pg_get_constraintdef(c.oid) ORDER BY c.conname) FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c')::text AS checks
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_type b ON b.oid = t.typbasetype
      WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND t.typtype = 'd'`,
    [oid],
  );
  return new Map(rows.map((r) => {
    const checks = JSON.parse(text(r.checks) ?? '[]') as string[];
    // A domain over a domain: the inner one's rules are not read here; named as not reproduced.
    if (truthy(r.base_is_domain)) checks.push(`(the rules of its base domain ${text(r.base_type) ?? ''})`);
    const domain: DomainInfo = { name: text(r.domain) ?? '', baseType: text(r.base_type) ?? '', checks, notNull: truthy(r.not_null) };
    const defaultValue = text(r.default_value);
    if (defaultValue !== undefined) domain.defaultValue = defaultValue;
    return [text(r.name) ?? '', domain];
  }));
}

/**
 * Views and materialized views, routines (functions, procedures, aggregates) of these schemas, and
 * the user triggers and row-level security policies of these tables. An extension's objects are
 * the extension's, not listed.
 */
async function postgresSchemaObjects(session: SqlSession, tables: readonly { schema: string; name: string }[]): Promise<SchemaObject[]> {
  if (tables.length === 0) return [];
  const scope = JSON.stringify(tables.map((t) => ({ schema: t.schema, name: t.name })));
  const rows = await session.query(
    `WITH scope AS (SELECT * FROM json_to_recordset($1::json) AS s(schema text, name text)),
          ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
     SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END AS kind, n.nspname AS schema, c.relname AS name, NULL AS on_table
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND n.nspname IN (SELECT schema FROM scope)
        AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
     UNION ALL
     SELECT 'routine', n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', NULL
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname IN (SELECT schema FROM scope)
        AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
     UNION ALL
     SELECT 'trigger', n.nspname, tg.tgname, c.relname
       FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN scope ON scope.schema = n.nspname AND scope.name = c.relname
      WHERE NOT tg.tgisinternal
     UNION ALL
     SELECT 'policy', n.nspname, p.polname, c.relname
       FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN scope ON scope.schema = n.nspname AND scope.name = c.relname
     ORDER BY 1, 2, 3`,
    [scope],
  );
  return rows.map((r) => ({
    kind: (text(r.kind) ?? 'view') as SchemaObject['kind'], schema: text(r.schema) ?? '', name: text(r.name) ?? '',
    ...(text(r.on_table) !== undefined ? { table: text(r.on_table) ?? '' } : {}),
  }));
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

export const postgresIntrospector: Introspector = { table: introspectPostgresTable, tables: listPostgresTables, objects: postgresSchemaObjects };
