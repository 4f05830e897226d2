// Every supported type, in all four directions, through the engine's own steps: the target table
// is created from the source's metadata (type map, DDL), the rows are copied, and each value of
// the target equals the source's (compared in a canonical form, since the engines spell values
// differently: t/1, \x-hex/bytes, +00 offsets). NULLs in every column, 4-byte unicode, extremes,
// 1 MB text and blobs.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import type { SqlValue } from '../../src/engine/db/session.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, schemaStep } from '../../src/engine/pipeline/steps.ts';
import { introspectTable } from '../../src/engine/schema/introspect.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';

/** How a column's values are compared: the canonical form both engines' spellings reduce to. */
type Kind = 'char' | 'int' | 'decimal' | 'f32' | 'f64' | 'bool' | 'text' | 'bytes' | 'date' | 'timestamp' | 'time' | 'json' | 'bits' | 'set';

interface Column { name: string; kind: Kind; postgres: string; mysql: string }

const COLUMNS: Column[] = [
  { name: 'id', kind: 'int', postgres: 'bigint PRIMARY KEY', mysql: 'bigint PRIMARY KEY' },
  { name: 'small', kind: 'int', postgres: 'smallint', mysql: 'smallint' },
  { name: 'whole', kind: 'int', postgres: 'integer', mysql: 'int' },
  { name: 'big', kind: 'int', postgres: 'bigint', mysql: 'bigint' },
  { name: 'money', kind: 'decimal', postgres: 'numeric(30,6)', mysql: 'decimal(30,6)' },
  { name: 'ratio', kind: 'f32', postgres: 'real', mysql: 'float' },
  { name: 'measure', kind: 'f64', postgres: 'double precision', mysql: 'double' },
  { name: 'flag', kind: 'bool', postgres: 'boolean', mysql: 'tinyint(1)' },
  { name: 'code', kind: 'char', postgres: 'character(4)', mysql: 'char(4)' },
  { name: 'label', kind: 'text', postgres: 'character varying(100)', mysql: 'varchar(100)' },
  { name: 'body', kind: 'text', postgres: 'text', mysql: 'longtext' },
  { name: 'payload', kind: 'bytes', postgres: 'bytea', mysql: 'longblob' },
  { name: 'day', kind: 'date', postgres: 'date', mysql: 'date' },
  { name: 'local_time', kind: 'timestamp', postgres: 'timestamp(6)', mysql: 'datetime(6)' },
  { name: 'instant', kind: 'timestamp', postgres: 'timestamptz(6)', mysql: 'timestamp(6) NULL' },
  { name: 'clock', kind: 'time', postgres: 'time(6)', mysql: 'time(6)' },
  { name: 'doc', kind: 'json', postgres: 'jsonb', mysql: 'json' },
  { name: 'mood', kind: 'text', postgres: 'mood', mysql: "enum('sad','ok','happy')" },
  { name: 'ident', kind: 'text', postgres: 'uuid', mysql: 'uuid' },
  { name: 'mask', kind: 'bits', postgres: 'bit(12)', mysql: 'bit(12)' },
];

// MySQL-only types (mysql sources): unsigned widening, year, set.
const MYSQL_EXTRA: Column[] = [
  { name: 'counter', kind: 'int', postgres: '', mysql: 'int unsigned' },
  { name: 'huge', kind: 'int', postgres: '', mysql: 'bigint unsigned' },
  { name: 'vintage', kind: 'int', postgres: '', mysql: 'year' },
  { name: 'tags', kind: 'set', postgres: '', mysql: "set('red','green','blue')" },
];

const BIG_TEXT = 'ünïcødé 😀 '.repeat(70_000); // ~1 MB, 4-byte characters
const BIG_BLOB_HEX = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7) % 256)).toString('hex');

/** Row values as SQL literals per engine; undefined → NULL. */
function rows(engine: Engine): Record<string, string | undefined>[] {
  const pg = engine === 'postgres';
  const blob = (hex: string): string => (pg ? `'\\x${hex}'::bytea` : `X'${hex}'`);
  const bool = (b: boolean): string => (pg ? String(b) : b ? '1' : '0');
  const bits = (b: string): string => `b'${b}'`;
  return [
    { id: '1' }, // every other column NULL
    {
      id: '2', small: '-12', whole: '123456', big: '-9000000000', money: '12345.678900', ratio: '3.25', measure: '91.42345678900001',
      flag: bool(true), code: "'ab'", label: "'O''Brien \\ \"quoted\" 😀'", body: "'line one\nline two\ttab'", payload: blob('00ff10'),
      day: "'2024-02-29'", local_time: "'2024-02-29 23:59:59.123456'", instant: "'2024-03-31 01:30:00.5'", clock: "'13:14:15.5'",
      doc: `'{"b": [1, 2, {"c": null}], "a": "x"}'`, mood: "'happy'", ident: "'1b4e28ba-2fa1-11d2-883f-0016d3cca427'", mask: bits('101000000001'),
      counter: '4294967295', huge: '18446744073709551615', vintage: '2024', tags: "'red,blue'",
    },
    {
      id: '9223372036854775807', small: '32767', whole: '2147483647', big: '9223372036854775807', money: '999999999999999999999999.999999',
      ratio: '-1.5e+30', measure: '1.7976931348623157e+308', flag: bool(false), code: "'zzzz'", label: `'${'é'.repeat(100)}'`,
      body: `'${BIG_TEXT}'`, payload: blob(BIG_BLOB_HEX), day: "'9999-12-31'", local_time: "'1000-01-01 00:00:00'",
      instant: "'2038-01-19 03:14:07.999999'", clock: "'23:59:59.999999'", doc: "'[]'", mood: "'sad'",
      ident: "'00000000-0000-0000-0000-000000000000'", mask: bits('111111111111'), counter: '0', huge: '0', vintage: '1901', tags: "''",
    },
    {
      id: '-9223372036854775808', small: '-32768', whole: '-2147483648', big: '-9223372036854775808', money: '-0.000001',
      ratio: '0', measure: '-4.9e-324', flag: bool(true), code: "''", label: "''", body: "''", payload: blob(''),
      day: "'1970-01-01'", local_time: "'1970-01-01 00:00:00'", instant: "'1970-01-01 00:00:01'", clock: "'00:00:00'",
      doc: `'{"emoji": "😀", "n": 1.5}'`, mood: "'ok'", ident: "'ffffffff-ffff-ffff-ffff-ffffffffffff'", mask: bits('000000000000'),
      counter: '1', huge: '1', vintage: '2155', tags: "'green'",
    },
  ];
}

async function seed(engine: Engine, url: string, columns: Column[]): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    if (engine === 'postgres') await session.query("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
    const suffix = engine === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4' : '';
    await session.query(`CREATE TABLE everything (${columns.map((c) => `${c.name} ${c[engine]}`).join(', ')})${suffix}`);
    if (engine === 'mysql') await session.query('SET SESSION max_allowed_packet = 67108864').catch(() => undefined);
    for (const row of rows(engine)) {
      const present = columns.filter((c) => row[c.name] !== undefined);
      await session.query(`INSERT INTO everything (${present.map((c) => c.name).join(', ')}) VALUES (${present.map((c) => row[c.name]).join(', ')})`);
    }
  } finally {
    await session.close();
  }
}

const trimFraction = (text: string): string => text.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');

function sortedJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedJson);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sortedJson(v)]));
  return value;
}

/** One value in a form both engines' spellings of it reduce to. */
function canonical(kind: Kind, value: SqlValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === 'string' ? value : value.toString('utf8');
  switch (kind) {
    case 'int': return BigInt(text).toString();
    case 'decimal': return trimFraction(text);
    case 'f32': return String(Math.fround(Number(text)));
    case 'f64': return String(Number(text));
    case 'bool': return text === 't' || text === '1' ? 'true' : 'false';
    case 'text': return text;
    // CHAR pads on PostgreSQL and strips on MySQL: trailing spaces are not part of a CHAR value on either.
    case 'char': return text.trimEnd();
    case 'bytes': return typeof value === 'string' ? value.slice(2) : value.toString('hex');
    case 'date': return text;
    case 'timestamp': return trimFraction(text.replace(/\+00$/, ''));
    case 'time': return trimFraction(text);
    case 'json': return JSON.stringify(sortedJson(JSON.parse(text)));
    case 'bits': return typeof value === 'string' ? BigInt(`0b${value}`).toString() : BigInt(`0x${value.toString('hex') || '0'}`).toString();
    case 'set': return text.replace(/^\{|\}$/g, '').replaceAll('"', '');
  }
}

async function canonicalRows(url: string, columns: Column[]): Promise<(string | null)[][]> {
  const session = await openSession(url, { readOnly: true });
  try {
    const q = session.dialect;
    const rowsRead = await session.query(`SELECT ${columns.map((c) => q.quoteIdent(c.name)).join(', ')} FROM everything ORDER BY id`);
    return rowsRead.map((row) => columns.map((c) => canonical(c.kind, row[c.name])));
  } finally {
    await session.close();
  }
}

function manifest(from: Engine, to: Engine): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: `all-types-${from}-${to}`, namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 'target' } },
      schema: { createMissingTables: true }, tables: [{ name: 'everything' }], strategy: { batchSize: 100, parallelism: 2 },
    },
  };
}

for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'mysql'], ['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: every supported type arrives value for value in a table created from the source`, async (t) => {
    const columns = from === 'mysql' ? [...COLUMNS, ...MYSQL_EXTRA] : COLUMNS;
    const source = await freshDatabase(t, from);
    const target = await freshTargetDatabase(t, to);
    await seed(from, source, columns);
    const context = { source: { url: source }, target: { url: target }, settings: engineSettings(manifest(from, to)) };

    const schema = await schemaStep(context);
    t.deepEqual(schema.createdTables, ['everything']);
    const copy = await copyStep(context);
    t.is(copy.rowsThisRun, 4);
    t.deepEqual(await canonicalRows(target, columns), await canonicalRows(source, columns));

    const targetSession = await openSession(target, { readOnly: true });
    const created = await introspectTable(targetSession, 'everything');
    await targetSession.close();
    t.deepEqual(created?.primaryKey, ['id']);
    t.is(created?.columns.filter((c) => c.nullable).length, columns.length - 1, 'NULL-ability carried over');

    const again = await copyStep(context);
    t.is(again.rowsThisRun, 0, 'a rerun copies nothing twice');
  });
}

for (const from of ['mysql', 'postgres'] as const) {
  test(`${from} → mysql through multi-row INSERT (the measured alternative to LOAD DATA): every type arrives`, async (t) => {
    const columns = from === 'mysql' ? [...COLUMNS, ...MYSQL_EXTRA] : COLUMNS;
    const source = await freshDatabase(t, from);
    const target = await freshTargetDatabase(t, 'mysql');
    await seed(from, source, columns);
    const context = { source: { url: source }, target: { url: target }, settings: { ...engineSettings(manifest(from, 'mysql')), mysqlBulk: 'insert' as const } };
    await schemaStep(context);
    t.is((await copyStep(context)).rowsThisRun, 4);
    t.deepEqual(await canonicalRows(target, columns), await canonicalRows(source, columns));
  });
}
