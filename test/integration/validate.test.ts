// Validation on real servers in all four directions: tables copied by the engine's own steps
// compare equal; then each kind of difference made on the target is found and reported with its
// key and column (and a json key order change is not a difference); rules pass and fail as
// written, tolerance included; where filters, renamed and transformed columns, samples.
import test, { type ExecutionContext } from 'ava';
import type { DataMigration, TableSpec as ApiTableSpec, ValidationRule } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, PlanRefusedError, schemaStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { validateStep } from '../../src/engine/pipeline/validate-steps.ts';
import type { RowDifference, ValidationReport } from '../../src/engine/validate/report.ts';
import { summarizeForStatus } from '../../src/engine/validate/report.ts';
import { canonicalSql } from '../../src/engine/validate/canonical.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';

const ROWS = 300;

const TABLES: Record<Engine, string[]> = {
  postgres: [
    `CREATE TABLE items (id bigint PRIMARY KEY, qty integer, price numeric(12,2), ratio real, measure double precision, flag boolean,
      code character(4), label varchar(50), body text, payload bytea, day date, local_time timestamp(6), instant timestamptz(3),
      clock time(0), doc jsonb, mask bit(8))`,
    'CREATE TABLE notes (slug varchar(40) PRIMARY KEY, n integer, body text)',
  ],
  mysql: [
    `CREATE TABLE items (id bigint PRIMARY KEY, qty int, price decimal(12,2), ratio float, measure double, flag tinyint(1),
      code char(4), label varchar(50), body text, payload blob, day date, local_time datetime(6), instant timestamp(3) NULL,
      clock time, doc json, mask bit(8)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    'CREATE TABLE notes (slug varchar(40) PRIMARY KEY, n int, body text) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
  ],
};

const INSERTS: Record<Engine, string[]> = {
  postgres: [
    `INSERT INTO items SELECT g, g * 7 % 1000, (g * 13 % 100000) / 100.0, g / 4.0, g + 0.123456789::float8, g % 2 = 0,
      'c' || (g % 10), CASE WHEN g % 10 = 0 THEN '' WHEN g % 11 = 0 THEN NULL ELSE 'label ' || g END, repeat('body ', g % 7),
      decode(md5(g::text), 'hex'), date '2020-01-01' + g, timestamp '2020-01-01' + g * interval '1 minute' + (g % 1000) * interval '1 microsecond',
      timestamptz '2021-06-01 00:00:00.5+00' + g * interval '1 hour', time '00:00:00' + g * interval '1 second',
      jsonb_build_object('id', g, 'name', 'n' || g, 'tags', jsonb_build_array(1, 2)), (g % 256)::bit(8)
      FROM generate_series(1, ${ROWS}) g`,
    `INSERT INTO notes SELECT 'slug-' || g, g, 'note ' || g FROM generate_series(1, 120) g`,
  ],
  mysql: [
    `INSERT INTO items SELECT seq, seq * 7 % 1000, (seq * 13 % 100000) / 100, seq / 4, seq + 0.123456789e0, seq % 2 = 0,
      CONCAT('c', seq % 10), CASE WHEN seq % 10 = 0 THEN '' WHEN seq % 11 = 0 THEN NULL ELSE CONCAT('label ', seq) END, REPEAT('body ', seq % 7),
      UNHEX(MD5(seq)), '2020-01-01' + INTERVAL seq DAY, '2020-01-01' + INTERVAL seq MINUTE + INTERVAL (seq % 1000) MICROSECOND,
      '2021-06-01 00:00:00.5' + INTERVAL seq HOUR, SEC_TO_TIME(seq),
      JSON_OBJECT('id', seq, 'name', CONCAT('n', seq), 'tags', JSON_ARRAY(1, 2)), seq % 256
      FROM seq_1_to_${ROWS}`,
    "INSERT INTO notes SELECT CONCAT('slug-', seq), seq, CONCAT('note ', seq) FROM seq_1_to_120",
  ],
};

async function run(url: string, statements: readonly string[]): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    for (const sql of statements) await session.query(sql);
  } finally {
    await session.close();
  }
}

async function scalar(url: string, sql: string): Promise<string | null> {
  const session = await openSession(url, { readOnly: true });
  try {
    const [row] = await session.query(sql);
    const value = row ? Object.values(row)[0] : null;
    return value === null || value === undefined ? null : value.toString();
  } finally {
    await session.close();
  }
}

function manifest(from: Engine, to: Engine, tables: ApiTableSpec[]): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: `validate-${from}-${to}`, namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 'target' } },
      schema: { createMissingTables: true }, tables, strategy: { batchSize: 100, parallelism: 2 },
    },
  };
}

async function copied(t: ExecutionContext, from: Engine, to: Engine, tables: ApiTableSpec[] = [{ name: 'items' }, { name: 'notes' }]): Promise<{ context: StepContext; source: string; target: string }> {
  const source = await freshDatabase(t, from);
  const target = await freshTargetDatabase(t, to);
  await run(source, [...TABLES[from], ...INSERTS[from]]);
  const context: StepContext = { source: { url: source }, target: { url: target }, settings: engineSettings(manifest(from, to, tables)) };
  await schemaStep(context);
  await copyStep(context);
  return { context, source, target };
}

/** Mutations on the target, one per kind of difference, each on its own row. */
function mutations(to: Engine): string[] {
  const pg = to === 'postgres';
  return [
    'UPDATE items SET qty = qty + 1 WHERE id = 3', // one changed value
    'DELETE FROM items WHERE id = 5', // a missing row
    'INSERT INTO items (id, qty) VALUES (1000, 1)', // an extra row
    pg ? "UPDATE items SET measure = round(measure::numeric, 6)::float8 WHERE id = 7" : 'UPDATE items SET measure = ROUND(measure, 6) WHERE id = 7', // a float rounded differently
    pg ? "UPDATE items SET instant = instant + interval '2 hours' WHERE id = 8" : 'UPDATE items SET instant = instant + INTERVAL 2 HOUR WHERE id = 8', // a time zone shift
    pg ? "UPDATE items SET label = label || ' ' WHERE id = 9" : "UPDATE items SET label = CONCAT(label, ' ') WHERE id = 9", // a trailing space
    'UPDATE items SET label = NULL WHERE id = 10', // '' on the source, NULL on the target
    pg ? 'UPDATE items SET payload = set_byte(payload, 0, get_byte(payload, 0) # 1) WHERE id = 12' : 'UPDATE items SET payload = CONCAT(CHAR(ASCII(payload) ^ 1), SUBSTRING(payload, 2)) WHERE id = 12', // one byte of a blob
    "UPDATE notes SET body = 'changed' WHERE slug = 'slug-7'", // a text key (hash buckets)
  ];
}

const EXPECTED_ITEMS: RowDifference[] = [
  { kind: 'missing', key: ['5'] },
  { kind: 'extra', key: ['1000'] },
  { kind: 'different', key: ['3'], columns: ['qty'] },
  { kind: 'different', key: ['7'], columns: ['measure'] },
  { kind: 'different', key: ['8'], columns: ['instant'] },
  { kind: 'different', key: ['9'], columns: ['label'] },
  { kind: 'different', key: ['10'], columns: ['label'] },
  { kind: 'different', key: ['12'], columns: ['payload'] },
];

const byKey = (a: RowDifference, b: RowDifference): number => a.kind.localeCompare(b.kind) || Number(a.key[0]) - Number(b.key[0]);

function tableOf(report: ValidationReport, name: string): ValidationReport['tables'][number] {
  const table = report.tables.find((t) => t.table === name);
  if (!table) throw new Error(`no report for ${name}`);
  return table;
}

const SMALL = { bucketRows: 50, leafRows: 8, fanout: 4, maxBuckets: 4096 };

const RULES: ValidationRule[] = [
  { name: 'rows', source: 'SELECT count(*) FROM items', target: 'SELECT count(*) FROM items' },
  { name: 'price-sum', source: 'SELECT sum(price) FROM items', target: 'SELECT sum(price) + 0.004 FROM items', tolerance: '0.005' },
  { name: 'price-sum-tight', source: 'SELECT sum(price) FROM items', target: 'SELECT sum(price) + 0.004 FROM items', tolerance: '0.001' },
  { name: 'relative', source: 'SELECT 1000', target: 'SELECT 1000.5', tolerance: '0.1%' },
  { name: 'relative-fail', source: 'SELECT 1000', target: 'SELECT 1002', tolerance: '0.1%' },
  { name: 'expect', target: 'SELECT count(*) FROM items', expect: String(ROWS) },
  { name: 'expect-fail', target: 'SELECT count(*) FROM items', expect: String(ROWS + 1) },
  { name: 'text', source: "SELECT 'a'", target: "SELECT 'a'" },
];

for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'mysql'], ['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: equal data passes, every kind of difference is found with its key, json key order is not one`, async (t) => {
    const { context, target } = await copied(t, from, to);

    const clean = await validateStep(context, { tuning: SMALL });
    t.true(clean.passed, JSON.stringify(clean.tables, null, 1));
    t.deepEqual(tableOf(clean, 'items').rowCount, { passed: true, source: ROWS, target: ROWS });
    t.is(tableOf(clean, 'items').checksum?.partitioning, 'key-range');
    t.is(tableOf(clean, 'notes').checksum?.partitioning, 'key-hash');

    // The same document with its keys in another order (and other spacing) is equal.
    await run(target, [to === 'postgres'
      ? `UPDATE items SET doc = '{"tags":[1,2],  "name":"n13","id":13}'::jsonb WHERE id = 13`
      : `UPDATE items SET doc = '{"tags":[1,2],  "name":"n13","id":13}' WHERE id = 13`]);
    const reordered = await validateStep(context);
    t.true(reordered.passed, JSON.stringify(reordered.tables.map((x) => x.differences)));

    await run(target, mutations(to));
    for (const tuning of [SMALL, undefined]) {
      const report = await validateStep(context, tuning ? { tuning } : {});
      t.false(report.passed);
      const items = tableOf(report, 'items');
      t.deepEqual([...items.differences].sort(byKey), [...EXPECTED_ITEMS].sort(byKey), JSON.stringify(items.differences));
      t.is(items.differenceCount, EXPECTED_ITEMS.length);
      t.deepEqual(items.rowCount, { passed: true, source: ROWS, target: ROWS }); // one missing, one extra
      const notes = tableOf(report, 'notes');
      t.deepEqual(notes.differences, [{ kind: 'different', key: ['slug-7'], columns: ['body'] }]);
      const status = summarizeForStatus(report);
      t.false(status.passed);
      t.true(JSON.stringify(status).length < 8000);
      t.regex(status.checks?.find((c) => c.kind === 'Checksum' && c.name === 'items')?.message ?? '', /missing id=5/);
    }

    // A bounded report: at most maxReportedDifferences keys, flagged as truncated.
    const bounded = await validateStep(context, { maxReportedDifferences: 3, tuning: SMALL });
    const items = tableOf(bounded, 'items');
    t.is(items.differences.length, 3);
    t.true(items.differencesTruncated);
  });

  test(`${from} → ${to}: rules compare across engines with tolerance, expect values, and a rule that writes is refused`, async (t) => {
    const { context, target } = await copied(t, from, to, [{ name: 'items' }]);
    const report = await validateStep(context, { rules: RULES, checksum: { mode: 'None' }, rowCount: false });
    const outcome = Object.fromEntries(report.rules.map((r) => [r.name, r.passed]));
    t.deepEqual(outcome, {
      rows: true, 'price-sum': true, 'price-sum-tight': false, relative: true, 'relative-fail': false,
      expect: true, 'expect-fail': false, text: true,
    }, JSON.stringify(report.rules, null, 1));
    const writing = await t.throwsAsync(validateStep(context, { rules: [{ name: 'read-only', target: 'DELETE FROM items', expect: '0' }] }), { instanceOf: PlanRefusedError });
    t.regex(writing.message, /spec\.validation\.rules\[read-only\]\.target: expected one read-only SELECT .*found a DELETE statement/);
    t.is(await scalar(target, 'SELECT count(*) FROM items'), String(ROWS), 'the writing rule wrote nothing');
    t.false(report.passed);
    const status = summarizeForStatus(report);
    t.is(status.checks?.filter((c) => c.kind === 'Rule').length, RULES.length);
  });
}

test('mysql → postgres: where filter, renamed and transformed columns, skipped columns, sample modes', async (t) => {
  const tables: ApiTableSpec[] = [{
    name: 'items', target: 'goods', where: 'id <= 200',
    columns: [{ name: 'label', target: 'title', transforms: ['uppercase'] }, { name: 'code', skip: true }],
  }];
  const { context, target } = await copied(t, 'mysql', 'postgres', tables);
  const clean = await validateStep(context, { tuning: SMALL, sampleRows: 25 });
  t.true(clean.passed, JSON.stringify(clean.tables, null, 1));
  const goods = tableOf(clean, 'items');
  t.is(goods.target, 'goods');
  t.deepEqual(goods.rowCount, { passed: true, source: 200, target: 200 });
  t.deepEqual(goods.checksum?.computedColumns, ['title']);
  t.false(goods.checksum?.columns.includes('code'));
  t.is(goods.sample?.rows, 25);

  await run(target, ["UPDATE goods SET title = lower(title) WHERE id = 42", 'DELETE FROM goods WHERE id = 150']);
  const full = await validateStep(context, { tuning: SMALL });
  const expected: RowDifference[] = [{ kind: 'different', key: ['42'], columns: ['title'] }, { kind: 'missing', key: ['150'] }];
  t.deepEqual([...tableOf(full, 'items').differences].sort(byKey), expected.sort(byKey));
  t.deepEqual(tableOf(full, 'items').rowCount, { passed: false, source: 200, target: 199 });

  // Sample mode: every range at 100 %, and a sample of keys compared value by value.
  const sampled = await validateStep(context, { checksum: { mode: 'Sample', samplePercent: 100 }, tuning: SMALL, sampleRows: 200 });
  const items = tableOf(sampled, 'items');
  t.is(items.checksum?.mode, 'Sample');
  t.false(items.passed);
  t.false(items.sample?.passed);
  t.true(items.differences.some((d) => d.kind === 'missing' && d.key[0] === '150'));
  const few = await validateStep(context, { checksum: { mode: 'Sample', samplePercent: 25 }, tuning: SMALL });
  const some = tableOf(few, 'items').checksum;
  t.true((some?.rangesChecked ?? 0) < (some?.ranges ?? 0));
});

// Every supported type (as in all-types.test.ts): the canonical forms agree across engines.
interface TypedColumn { name: string; postgres: string; mysql: string }
const EVERY_TYPE: TypedColumn[] = [
  { name: 'id', postgres: 'bigint PRIMARY KEY', mysql: 'bigint PRIMARY KEY' },
  { name: 'small', postgres: 'smallint', mysql: 'smallint' },
  { name: 'whole', postgres: 'integer', mysql: 'int' },
  { name: 'money', postgres: 'numeric(30,6)', mysql: 'decimal(30,6)' },
  { name: 'ratio', postgres: 'real', mysql: 'float' },
  { name: 'measure', postgres: 'double precision', mysql: 'double' },
  { name: 'flag', postgres: 'boolean', mysql: 'tinyint(1)' },
  { name: 'code', postgres: 'character(4)', mysql: 'char(4)' },
  { name: 'label', postgres: 'character varying(100)', mysql: 'varchar(100)' },
  { name: 'body', postgres: 'text', mysql: 'longtext' },
  { name: 'payload', postgres: 'bytea', mysql: 'longblob' },
  { name: 'day', postgres: 'date', mysql: 'date' },
  { name: 'local_time', postgres: 'timestamp(6)', mysql: 'datetime(6)' },
  { name: 'instant', postgres: 'timestamptz(6)', mysql: 'timestamp(6) NULL' },
  { name: 'clock', postgres: 'time(6)', mysql: 'time(6)' },
  { name: 'doc', postgres: 'jsonb', mysql: 'json' },
  { name: 'mood', postgres: 'mood', mysql: "enum('sad','ok','happy')" },
  { name: 'ident', postgres: 'uuid', mysql: 'uuid' },
  { name: 'mask', postgres: 'bit(12)', mysql: 'bit(12)' },
];
const MYSQL_ONLY: TypedColumn[] = [
  { name: 'counter', postgres: '', mysql: 'int unsigned' },
  { name: 'huge', postgres: '', mysql: 'bigint unsigned' },
  { name: 'vintage', postgres: '', mysql: 'year' },
  { name: 'tags', postgres: '', mysql: "set('red','green','blue')" },
];

function everyTypeRows(engine: Engine): Record<string, string | undefined>[] {
  const pg = engine === 'postgres';
  const blob = (hex: string): string => (pg ? `'\\x${hex}'::bytea` : `X'${hex}'`);
  const bool = (b: boolean): string => (pg ? String(b) : b ? '1' : '0');
  return [
    { id: '1' },
    {
      id: '2', small: '-12', whole: '123456', money: '12345.678900', ratio: '3.25', measure: '2.718281828459045', flag: bool(true), code: "'ab'",
      label: "'O''Brien \\ \"quoted\" 😀'", body: "'line one\nline two\ttab  '", payload: blob('00ff10'), day: "'2024-02-29'",
      local_time: "'2024-02-29 23:59:59.123456'", instant: "'2024-03-31 01:30:00.5'", clock: "'13:14:15.5'",
      doc: `'{"b": [1, 2, {"c": null}], "a": "x"}'`, mood: "'happy'", ident: "'1b4e28ba-2fa1-11d2-883f-0016d3cca427'", mask: "b'101000000001'",
      counter: '4294967295', huge: '18446744073709551615', vintage: '2024', tags: "'red,blue'",
    },
    {
      id: '9223372036854775807', small: '32767', whole: '2147483647', money: '999999999999999999999999.999999', ratio: '-1.5e+30',
      measure: '1.7976931348623157e+308', flag: bool(false), code: "'zzzz'", label: `'${'é'.repeat(100)}'`, body: `'${'ünïcødé 😀 '.repeat(2000)}'`,
      payload: blob('ab'.repeat(5000)), day: "'9999-12-31'", local_time: "'1000-01-01 00:00:00'", instant: "'2038-01-19 03:14:07.999999'",
      clock: "'23:59:59.999999'", doc: "'[]'", mood: "'sad'", ident: "'00000000-0000-0000-0000-000000000000'", mask: "b'111111111111'",
      counter: '0', huge: '0', vintage: '1901', tags: "''",
    },
    {
      id: '-9223372036854775808', small: '-32768', whole: '-2147483648', money: '-0.000001', ratio: '0', measure: '-4.9e-324', flag: bool(true),
      code: "''", label: "''", body: "''", payload: blob(''), day: "'1970-01-01'", local_time: "'1970-01-01 00:00:00'", instant: "'1970-01-01 00:00:01'",
      clock: "'00:00:00'", doc: `'{"emoji": "😀", "n": 1.5}'`, mood: "'ok'", ident: "'ffffffff-ffff-ffff-ffff-ffffffffffff'", mask: "b'000000000000'",
      counter: '1', huge: '1', vintage: '2155', tags: "'green'",
    },
  ];
}

for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'mysql'], ['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: every supported type validates equal after the copy, and a change in each column is found`, async (t) => {
    const columns = from === 'mysql' ? [...EVERY_TYPE, ...MYSQL_ONLY] : EVERY_TYPE;
    const source = await freshDatabase(t, from);
    const target = await freshTargetDatabase(t, to);
    const statements = [
      ...(from === 'postgres' ? ["CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')"] : []),
      `CREATE TABLE everything (${columns.map((c) => `${c.name} ${c[from]}`).join(', ')})${from === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4' : ''}`,
      ...everyTypeRows(from).map((row) => {
        const present = columns.filter((c) => row[c.name] !== undefined);
        return `INSERT INTO everything (${present.map((c) => c.name).join(', ')}) VALUES (${present.map((c) => row[c.name]).join(', ')})`;
      }),
    ];
    await run(source, statements);
    const context: StepContext = { source: { url: source }, target: { url: target }, settings: engineSettings(manifest(from, to, [{ name: 'everything' }])) };
    await schemaStep(context);
    await copyStep(context);
    const report = await validateStep(context, { sampleRows: 10 });
    t.true(report.passed, JSON.stringify(report.tables, null, 1));
    t.deepEqual(report.tables[0]?.rowCount, { passed: true, source: 4, target: 4 });

    // Change every non-key column of row 2 on the target: each one is reported.
    const pg = to === 'postgres';
    const changes: Record<string, string> = {
      small: 'small + 1', whole: 'whole + 1', money: 'money + 0.000001', ratio: 'ratio * 2', measure: 'measure * 2', flag: pg ? 'NOT flag' : '1 - flag',
      code: "'ac'", label: pg ? "label || 'x'" : "CONCAT(label, 'x')", body: pg ? 'rtrim(body)' : 'RTRIM(body)', payload: pg ? "'\\x00ff11'::bytea" : "X'00ff11'",
      day: pg ? "day + 1" : 'day + INTERVAL 1 DAY', local_time: pg ? "local_time + interval '1 microsecond'" : 'local_time + INTERVAL 1 MICROSECOND',
      instant: pg ? "instant + interval '1 hour'" : 'instant + INTERVAL 1 HOUR', clock: pg ? "clock + interval '1 second'" : 'clock + INTERVAL 1 SECOND',
      doc: pg ? `'{"a": "x", "b": [1, 2, {"c": 0}]}'` : `'{"a": "x", "b": [1, 2, {"c": 0}]}'`, mood: "'sad'",
      ident: "'1b4e28ba-2fa1-11d2-883f-0016d3cca428'", mask: pg ? "B'101000000011'" : "b'101000000011'",
      counter: 'counter - 1', huge: 'huge - 1', vintage: 'vintage - 1', tags: pg ? "'{red}'" : "'red'",
    };
    const targetColumns = columns.filter((c) => c.name !== 'id' && changes[c.name] !== undefined);
    await run(target, [`UPDATE everything SET ${targetColumns.map((c) => `${c.name} = ${changes[c.name] ?? c.name}`).join(', ')} WHERE id = 2`]);
    const changed = await validateStep(context);
    t.deepEqual(changed.tables[0]?.differences, [{ kind: 'different', key: ['2'], columns: targetColumns.map((c) => c.name) }]);
  });
}

test('float canonical text is the same on both engines for every magnitude, and tells neighbouring doubles apart', async (t) => {
  const values = ['0', '1', '-1', '0.1', '0.30000000000000004', '2.718281828459045', '2.7182818284590455', '91.42345678900001', '123456789012345.67',
    '999999999999999.9', '1e15', '9007199254740993', '1.2345678901234568e17', '1e22', '-1.5e30', '1.7976931348623157e308', '0.0001', '0.00010000000000000002',
    '0.00009999999999999999', '0.000012345678901234567', '1.2345678901234567e-7', '2.2250738585072014e-308', '2.225073858507201e-308', '4.9e-324', '-4.9e-324',
    '-2.5', '-123.456', '0.9999999999999999', '1.0000000000000002', '3.9999999999999996', '4503599627370495.5', '9007199254740991', '-9007199254740991'];
  const pg = await freshDatabase(t, 'postgres');
  const my = await freshDatabase(t, 'mysql');
  const column = (dataType: string) => ({ name: 'v', nativeType: dataType, dataType, nullable: true, autoIncrement: false });
  const read = async (url: string, engine: Engine): Promise<string[]> => {
    const session = await openSession(url, { readOnly: true });
    try {
      const literal = (v: string): string => (engine === 'postgres' ? `'${v}'::float8` : /e/i.test(v) ? v : `${v}e0`);
      const union = values.map((v, i) => `SELECT ${i} AS i, ${literal(v)} AS v`).join(' UNION ALL ');
      const rows = await session.query(`SELECT ${canonicalSql(engine, 'float', 'v', { column: column(engine === 'postgres' ? 'double precision' : 'double') })} AS c FROM (${union}) s ORDER BY i`);
      return rows.map((r) => r.c?.toString() ?? 'NULL');
    } finally {
      await session.close();
    }
  };
  const [onPg, onMy] = await Promise.all([read(pg, 'postgres'), read(my, 'mysql')]);
  t.deepEqual(onMy, onPg);
  t.is(new Set(onPg).size, values.length, `every value has its own text: ${JSON.stringify(onPg)}`);
});
