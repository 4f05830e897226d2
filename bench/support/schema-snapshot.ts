// A database's schema and data read from its own catalogs (not through the engine's introspection,
// which is what is being checked): tables, columns, types, nullability, defaults, identity, keys,
// every index, foreign keys, checks, what is left outside tables (views, triggers, routines), and
// per table a row count and a checksum of its rows in an engine-neutral text form. Used by the
// Chinook corpus test (test/integration/chinook.test.ts) and the fidelity benchmark (bench/fidelity.ts).
import { createHash } from 'node:crypto';
import { openSession } from '../../src/engine/db/connect.ts';
import type { SqlRow, SqlSession } from '../../src/engine/db/session.ts';

export interface ColumnShape { name: string; type: string; nullable: boolean; default: string | null; identity: boolean; collation: string | null }
export interface IndexShape { name: string; columns: string[]; unique: boolean; method: string }
export interface ForeignKeyShape { name: string; columns: string[]; references: string; referencedColumns: string[]; onDelete: string; onUpdate: string }
export interface TableShape {
  name: string;
  columns: ColumnShape[];
  primaryKey: string[];
  /** Every index but the primary key's (unique constraints included). */
  indexes: IndexShape[];
  foreignKeys: ForeignKeyShape[];
  checks: string[];
  /** Identity (auto-increment) column: the value a new row would get, and the largest id. */
  identity?: { column: string; next: number | null; max: number | null };
  rows: number;
  /** Of the rows as read; `textChecksum` with ShapeOptions.text applied (the same without it). */
  checksum: string;
  textChecksum: string;
}
export interface SchemaShape { engine: 'postgres' | 'mysql'; tables: TableShape[]; views: string[]; triggers: string[]; routines: string[] }

const str = (row: SqlRow, key: string): string => String(row[key] ?? '');
const list = (value: SqlRow[string] | undefined): string[] => (value === null || value === undefined || value === '' ? [] : value.toString().split('\u0001'));
const num = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

export interface ShapeOptions {
  /** PostgreSQL: the schema to read (default current_schema()). */
  schema?: string;
  /** Applied to every text value before the checksum (to compare data that differs on purpose or by a known quirk). */
  text?: (value: string) => string;
}

/** The shape of the current schema (PostgreSQL: `schema`, default current_schema()) or database behind `url`; bookkeeping tables (dataops_*) left out. */
export async function schemaShape(url: string, options: ShapeOptions = {}): Promise<SchemaShape> {
  const session = await openSession(url, { readOnly: true });
  try {
    return session.engine === 'postgres' ? await postgresShape(session, options) : await mysqlShape(session, options);
  } finally {
    await session.close();
  }
}

async function postgresShape(s: SqlSession, options: ShapeOptions): Promise<SchemaShape> {
  const schema = options.schema ?? str((await s.query('SELECT current_schema() AS s'))[0] ?? {}, 's');
  const tables = (await s.query(`SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT LIKE 'dataops%' ORDER BY c.relname`, [schema]));
  const shapes: TableShape[] = [];
  for (const t of tables) {
    const oid = str(t, 'oid');
    const name = str(t, 'relname');
    const columns = (await s.query(`SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS def,
        a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%' AS identity, co.collname
      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.collname <> 'default'
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, [oid])).map((c): ColumnShape => ({
      name: str(c, 'attname'), type: str(c, 'type'), nullable: c.nullable === 'true' || c.nullable === 't', identity: c.identity === 'true' || c.identity === 't',
      // A serial's nextval names its sequence: what differs is whether it has one (identity above).
      default: c.def === null || /^nextval\(/.test(str(c, 'def')) ? null : str(c, 'def'), collation: c.collname === null ? null : str(c, 'collname'),
    }));
    const cols = (array: string, rel = 'x.conrelid'): string => `(SELECT string_agg(a.attname, chr(1) ORDER BY k.i) FROM unnest(${array}) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = k.n)`;
    const pk = await s.query(`SELECT ${cols('x.conkey')} AS cols FROM pg_constraint x WHERE x.conrelid = $1 AND x.contype = 'p'`, [oid]);
    const indexes = (await s.query(`SELECT i.relname, x.indisunique, am.amname, (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), chr(1) ORDER BY k) FROM generate_series(1, x.indnkeyatts) k) AS cols
      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam WHERE x.indrelid = $1 AND NOT x.indisprimary ORDER BY i.relname`, [oid]))
      .map((r): IndexShape => ({ name: str(r, 'relname'), columns: list(r.cols).map(unquote), unique: r.indisunique === 'true' || r.indisunique === 't', method: str(r, 'amname') }));
    const rule = (c: string): string => `CASE ${c} WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END`;
    const foreignKeys = (await s.query(`SELECT x.conname, ${cols('x.conkey')} AS cols, r.relname AS ref, ${cols('x.confkey', 'x.confrelid')} AS refcols, ${rule('x.confdeltype')} AS del, ${rule('x.confupdtype')} AS upd
      FROM pg_constraint x JOIN pg_class r ON r.oid = x.confrelid WHERE x.conrelid = $1 AND x.contype = 'f' ORDER BY x.conname`, [oid]))
      .map((r): ForeignKeyShape => ({ name: str(r, 'conname'), columns: list(r.cols), references: str(r, 'ref'), referencedColumns: list(r.refcols), onDelete: str(r, 'del'), onUpdate: str(r, 'upd') }));
    const checks = (await s.query("SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1 AND contype = 'c' ORDER BY 1", [oid])).map((r) => str(r, 'def'));
    const shape: TableShape = { name, columns, primaryKey: list(pk[0]?.cols), indexes, foreignKeys, checks, rows: 0, checksum: '', textChecksum: '' };
    const id = columns.find((c) => c.identity);
    if (id) {
      const table = `${quotePg(schema)}.${quotePg(name)}`;
      const sequence = str((await s.query('SELECT pg_get_serial_sequence($1, $2) AS s', [table, id.name]))[0] ?? {}, 's');
      const [seq] = sequence === '' ? [] : await s.query(`SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END AS next FROM ${sequence}`);
      const [max] = await s.query(`SELECT max(${quotePg(id.name)}) AS m FROM ${table}`);
      shape.identity = { column: id.name, next: num(seq?.next), max: num(max?.m) };
    }
    await data(s, shape, `${quotePg(schema)}.${quotePg(name)}`, (c) => `${quotePg(c)}::text`, options.text);
    shapes.push(shape);
  }
  const names = async (sql: string): Promise<string[]> => (await s.query(sql, [schema])).map((r) => str(r, 'n'));
  return {
    engine: 'postgres', tables: shapes,
    views: await names("SELECT c.relname AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relkind IN ('v', 'm') ORDER BY 1"),
    triggers: await names('SELECT c.relname || \'.\' || t.tgname AS n FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND NOT t.tgisinternal ORDER BY 1'),
    routines: await names('SELECT p.proname AS n FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1 ORDER BY 1'),
  };
}

async function mysqlShape(s: SqlSession, options: ShapeOptions): Promise<SchemaShape> {
  const where = 'TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?';
  const tables = await s.query("SELECT TABLE_NAME AS n, AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'dataops%' ORDER BY 1");
  const shapes: TableShape[] = [];
  for (const t of tables) {
    const name = str(t, 'n');
    const columns = (await s.query(`SELECT COLUMN_NAME AS n, COLUMN_TYPE AS type, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS def, EXTRA AS extra, COLLATION_NAME AS coll
      FROM information_schema.COLUMNS WHERE ${where} ORDER BY ORDINAL_POSITION`, [name])).map((c): ColumnShape => ({
      name: str(c, 'n'), type: str(c, 'type'), nullable: c.nullable === 'YES', identity: /auto_increment/i.test(str(c, 'extra')),
      // MariaDB reports a nullable column without a default as the literal NULL.
      default: c.def === null || c.def === 'NULL' ? null : str(c, 'def'), collation: c.coll === null ? null : str(c, 'coll'),
    }));
    const stats = await s.query(`SELECT INDEX_NAME AS n, NON_UNIQUE AS nu, INDEX_TYPE AS m, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR '\u0001') AS cols
      FROM information_schema.STATISTICS WHERE ${where} GROUP BY INDEX_NAME, NON_UNIQUE, INDEX_TYPE ORDER BY INDEX_NAME`, [name]);
    const indexes = stats.filter((r) => r.n !== 'PRIMARY').map((r): IndexShape => ({ name: str(r, 'n'), columns: list(r.cols), unique: r.nu === '0', method: str(r, 'm').toLowerCase() }));
    const foreignKeys = (await s.query(`SELECT k.CONSTRAINT_NAME AS n, GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR '\u0001') AS cols, k.REFERENCED_TABLE_NAME AS ref,
        GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR '\u0001') AS refcols, r.DELETE_RULE AS del, r.UPDATE_RULE AS upd
      FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
      WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL GROUP BY k.CONSTRAINT_NAME, k.REFERENCED_TABLE_NAME, r.DELETE_RULE, r.UPDATE_RULE ORDER BY 1`, [name]))
      .map((r): ForeignKeyShape => ({ name: str(r, 'n'), columns: list(r.cols), references: str(r, 'ref'), referencedColumns: list(r.refcols), onDelete: str(r, 'del'), onUpdate: str(r, 'upd') }));
    const checks = (await s.query('SELECT CHECK_CLAUSE AS c FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY 1', [name])).map((r) => str(r, 'c'));
    const shape: TableShape = { name, columns, primaryKey: list(stats.find((r) => r.n === 'PRIMARY')?.cols), indexes, foreignKeys, checks, rows: 0, checksum: '', textChecksum: '' };
    const id = columns.find((c) => c.identity);
    if (id) {
      const [max] = await s.query(`SELECT MAX(${quoteMy(id.name)}) AS m FROM ${quoteMy(name)}`);
      shape.identity = { column: id.name, next: num(t.ai), max: num(max?.m) };
    }
    await data(s, shape, quoteMy(name), (c) => `CAST(${quoteMy(c)} AS CHAR)`, options.text);
    shapes.push(shape);
  }
  const names = async (sql: string): Promise<string[]> => (await s.query(sql)).map((r) => str(r, 'n'));
  return {
    engine: 'mysql', tables: shapes,
    views: await names('SELECT TABLE_NAME AS n FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1'),
    triggers: await names("SELECT CONCAT(EVENT_OBJECT_TABLE, '.', TRIGGER_NAME) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1"),
    routines: await names('SELECT ROUTINE_NAME AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1'),
  };
}

/**
 * Row count and checksum: every value as the engine's own text, a datetime's zero fraction
 * dropped (datetime(6) prints .000000, timestamp(0) none), rows sorted as text so that the
 * engines' collations do not change the order.
 */
async function data(s: SqlSession, shape: TableShape, table: string, asText: (column: string) => string, text: (value: string) => string = (v) => v): Promise<void> {
  const rows = await s.query(`SELECT ${shape.columns.map((c, i) => `${asText(c.name)} AS c${String(i)}`).join(', ')} FROM ${table}`);
  const checksum = (normalize: (value: string) => string): string => {
    const lines = rows.map((r) => JSON.stringify(shape.columns.map((_, i) => canonical(r[`c${String(i)}`] ?? null, normalize)))).sort();
    const hash = createHash('sha256');
    for (const line of lines) hash.update(`${line}\n`);
    return hash.digest('hex').slice(0, 16);
  };
  shape.rows = rows.length;
  shape.checksum = checksum((v) => v);
  shape.textChecksum = checksum(text);
}

function canonical(value: string | Buffer | null, normalize: (value: string) => string): string | null {
  if (value === null) return null;
  const text = normalize(typeof value === 'string' ? value : value.toString('hex'));
  return text.replace(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.0+$/, '$1');
}

const quotePg = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const quoteMy = (name: string): string => `\`${name.replaceAll('`', '``')}\``;
const unquote = (name: string): string => (/^".*"$/.test(name) ? name.slice(1, -1).replaceAll('""', '"') : name);

/**
 * What differs between `ours` and `reference`, one line each ("invoice.invoice_date: nullable
 * true ≠ false"), names compared through `name` (e.g. PascalCase and snake_case as one). Index
 * and constraint names are compared only with `names: true` (the two engines' scripts name them
 * differently); indexes are otherwise matched by columns, uniqueness and method. Data is compared
 * by the checksums with ShapeOptions.text applied.
 */
export function schemaDifferences(ours: SchemaShape, reference: SchemaShape, options: { name?: (n: string) => string; names?: boolean } = {}): string[] {
  const n = options.name ?? ((x: string): string => x);
  const out: string[] = [];
  const byName = <T extends { name: string }>(items: readonly T[]): Map<string, T> => new Map(items.map((i) => [n(i.name), i]));
  const sets = (label: string, a: readonly string[], b: readonly string[]): void => {
    for (const x of a) if (!b.includes(x)) out.push(`${label} ${x}: only on ours`);
    for (const x of b) if (!a.includes(x)) out.push(`${label} ${x}: missing`);
  };
  const theirs = byName(reference.tables);
  sets('table', ours.tables.map((t) => n(t.name)).filter((t) => !theirs.has(t)), []);
  for (const [key, ref] of theirs) {
    const table = ours.tables.find((t) => n(t.name) === key);
    if (!table) { out.push(`table ${key}: missing`); continue; }
    const cols = byName(table.columns);
    const refCols = byName(ref.columns);
    sets(`${key} column`, [...cols.keys()].filter((c) => !refCols.has(c)), [...refCols.keys()].filter((c) => !cols.has(c)));
    for (const [c, rc] of refCols) {
      const oc = cols.get(c);
      if (!oc) continue;
      for (const field of ['type', 'nullable', 'default', 'identity', 'collation'] as const) {
        if (oc[field] !== rc[field]) out.push(`${key}.${c}: ${field} ${String(oc[field])} ≠ ${String(rc[field])}`);
      }
    }
    const keyList = (cs: readonly string[]): string => `(${cs.map(n).join(', ')})`;
    if (keyList(table.primaryKey) !== keyList(ref.primaryKey)) out.push(`${key}: primary key ${keyList(table.primaryKey)} ≠ ${keyList(ref.primaryKey)}`);
    const index = (i: IndexShape): string => `${i.unique ? 'unique ' : ''}${i.method} index ${options.names ? `${n(i.name)} ` : ''}${keyList(i.columns)}`;
    sets(key, table.indexes.map(index), ref.indexes.map(index));
    const fk = (f: ForeignKeyShape): string => `foreign key ${options.names ? `${n(f.name)} ` : ''}${keyList(f.columns)} → ${n(f.references)}${keyList(f.referencedColumns)} ON DELETE ${f.onDelete} ON UPDATE ${f.onUpdate}`;
    sets(key, table.foreignKeys.map(fk), ref.foreignKeys.map(fk));
    sets(`${key} check`, table.checks, ref.checks);
    if (table.identity && table.identity.max !== null && (table.identity.next ?? 0) <= table.identity.max) out.push(`${key}: identity next ${String(table.identity.next)} ≤ max ${String(table.identity.max)}`);
    if (table.rows !== ref.rows) out.push(`${key}: rows ${String(table.rows)} ≠ ${String(ref.rows)}`);
    else if (table.textChecksum !== ref.textChecksum) out.push(`${key}: checksum of the rows differs`);
  }
  sets('view', ours.views.map(n), reference.views.map(n));
  sets('trigger', ours.triggers.map(n), reference.triggers.map(n));
  sets('routine', ours.routines.map(n), reference.routines.map(n));
  return out;
}

/** PascalCase and snake_case as one name: InvoiceLineId and invoice_line_id both → invoice_line_id. */
export const snakeCase = (name: string): string => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
