// A fingerprint of a source database, for tests that must prove "the source is unchanged": every
// table's row count and an md5 of its rows (sorted, so the order rows come back in does not
// matter), the objects in it, sequence positions, settings a fragment could change, and
// optionally files on the database host that a test can see. Read in one read-only snapshot,
// through the drivers directly (not the engine's sessions, which are what is under test).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import mysql from 'mysql2/promise';
import pg from 'pg';

export interface SourceFingerprint {
  engine: 'postgres' | 'mysql';
  /** "schema.table" (PostgreSQL) or "table" (MySQL) → row count and md5 of its rows. */
  tables: Record<string, { rows: number; md5: string }>;
  /** Other state a manifest fragment could change: objects, sequences, settings, large objects. */
  state: Record<string, string>;
  /** Each requested path → md5 of its content, or "absent". */
  files: Record<string, string>;
}

const md5 = (text: string | Buffer): string => createHash('md5').update(text).digest('hex');

/** md5 of rows serialised one per line, sorted: independent of the order the server returns them in. */
function rowsDigest(rows: readonly string[]): { rows: number; md5: string } {
  return { rows: rows.length, md5: md5([...rows].sort().join('\n')) };
}

/** A value of a mysql2 row as stable text. */
function mysqlValueText(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `hex:${value.toString('hex')}`;
  if (value instanceof Date) return `date:${value.toISOString()}`;
  return value;
}

async function postgresFingerprint(url: string): Promise<Omit<SourceFingerprint, 'files'>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const text = async (sql: string): Promise<string> => {
      const result = await client.query<{ v: string | null }>(sql);
      return result.rows[0]?.v ?? '';
    };
    const relations = await client.query<{ schema: string; name: string; kind: string }>(`
      SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p', 'm', 'S')
         AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
       ORDER BY 1, 2`);
    const tables: SourceFingerprint['tables'] = {};
    const state: SourceFingerprint['state'] = {};
    const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
    for (const { schema, name, kind } of relations.rows) {
      const qualified = `${quote(schema)}.${quote(name)}`;
      if (kind === 'S') {
        state[`sequence ${schema}.${name}`] = await text(`SELECT last_value::text || ',' || is_called::text AS v FROM ${qualified}`);
      } else {
        const rows = await client.query<{ r: string }>(`SELECT t::text AS r FROM ${qualified} AS t`);
        tables[`${schema}.${name}`] = rowsDigest(rows.rows.map((row) => row.r));
      }
    }
    state.objects = await text(`
      SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' ORDER BY n.nspname, c.relname) AS v
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`);
    state.functions = await text(`
      SELECT string_agg(p.oid::regprocedure::text, ',' ORDER BY p.oid::regprocedure::text) AS v
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`);
    state.roleSettings = await text(`
      SELECT string_agg(s.setrole::text || ':' || array_to_string(s.setconfig, ';'), '|' ORDER BY s.setrole) AS v
        FROM pg_db_role_setting s
       WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))`);
    state.serverSettings = await text(`
      SELECT string_agg(name || '=' || setting, ',' ORDER BY name) AS v FROM pg_settings WHERE source = 'configuration file'`);
    state.largeObjects = await text('SELECT count(*)::text AS v FROM pg_largeobject_metadata');
    state.preparedTransactions = await text('SELECT count(*)::text AS v FROM pg_prepared_xacts');
    await client.query('COMMIT');
    return { engine: 'postgres', tables, state };
  } finally {
    await client.end();
  }
}

async function mysqlFingerprint(url: string): Promise<Omit<SourceFingerprint, 'files'>> {
  const connection = await mysql.createConnection({ uri: url.replace(/^mariadb:/i, 'mysql:'), dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
  try {
    await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const text = async (sql: string): Promise<string> => {
      const [rows] = await connection.query<mysql.RowDataPacket[]>(sql);
      return JSON.stringify(rows.map((row) => Object.values(row).map(mysqlValueText)));
    };
    const [relations] = await connection.query<mysql.RowDataPacket[]>(
      'SELECT TABLE_NAME AS name, TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME');
    const tables: SourceFingerprint['tables'] = {};
    const state: SourceFingerprint['state'] = {};
    for (const relation of relations) {
      const name = String(relation.name);
      const type = String(relation.type);
      if (type === 'VIEW' || type === 'SYSTEM VIEW') continue;
      const [rows] = await connection.query<mysql.RowDataPacket[]>({ sql: `SELECT * FROM \`${name.replaceAll('`', '``')}\``, rowsAsArray: true });
      const digest = rowsDigest(rows.map((row) => JSON.stringify((row as unknown as unknown[]).map(mysqlValueText))));
      if (type === 'SEQUENCE') state[`sequence ${name}`] = digest.md5;
      else tables[name] = digest;
    }
    state.objects = JSON.stringify(relations.map((r) => `${String(r.name)}:${String(r.type)}`));
    state.routines = await text('SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1, 2');
    state.triggers = await text('SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1');
    state.events = await text('SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1');
    state.globals = await text(
      'SELECT @@global.read_only, @@global.general_log, @@global.general_log_file, @@global.slow_query_log, @@global.local_infile, @@global.sql_mode, @@global.max_connections');
    await connection.query('COMMIT');
    return { engine: 'mysql', tables, state };
  } finally {
    await connection.end();
  }
}

/**
 * The fingerprint of the database `url` names (postgres://, mysql:// or mariadb://), with the md5
 * of each of `files` (files a hostile fragment might write, such as an INTO OUTFILE target).
 */
export async function sourceFingerprint(url: string, options: { files?: readonly string[] } = {}): Promise<SourceFingerprint> {
  const base = /^postgres(ql)?:/i.test(url) ? await postgresFingerprint(url) : await mysqlFingerprint(url);
  const files: SourceFingerprint['files'] = {};
  for (const path of options.files ?? []) {
    try {
      files[path] = md5(await readFile(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      files[path] = 'absent';
    }
  }
  return { ...base, files };
}

/** What differs between two fingerprints, one line each (empty: unchanged); for assertion messages. */
export function fingerprintChanges(before: SourceFingerprint, after: SourceFingerprint): string[] {
  const changes: string[] = [];
  const compare = (what: string, a: Record<string, unknown>, b: Record<string, unknown>): void => {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const was = JSON.stringify(a[key] ?? null);
      const now = JSON.stringify(b[key] ?? null);
      if (was !== now) changes.push(`${what} ${key}: ${was.slice(0, 200)} → ${now.slice(0, 200)}`);
    }
  };
  compare('table', before.tables, after.tables);
  compare('state', before.state, after.state);
  compare('file', before.files, after.files);
  return changes;
}
