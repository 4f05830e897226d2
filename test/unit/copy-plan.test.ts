// Copy planning: the source SELECT, shard boundaries, and the per-table plan with its errors.
import test from 'ava';
import { mysqlAdapter as mysqlDialect } from '../../src/engine/db/mysql/adapter.ts';
import { postgresAdapter as postgresDialect } from '../../src/engine/db/postgres/adapter.ts';
import { buildSourceSelect, keyAfter } from '../../src/engine/copy/source-query.ts';
import { integerBoundaries } from '../../src/engine/copy/shards.ts';
import { shardRange } from '../../src/engine/copy/copy-shard.ts';
import { planTableCopy, type MapValue } from '../../src/engine/copy/planner.ts';
import type { ColumnInfo, TableInfo } from '../../src/engine/schema/model.ts';
import { checkExpression, checkWhere } from '../../src/engine/sql/fragments.ts';
import { assertMysqlSelect, assertPostgresCopyOut } from '../../src/engine/sql/statement-guard.ts';

test('source select: keyset resume, range, filter; identifiers quoted, never OFFSET', (t) => {
  const sql = buildSourceSelect({
    dialect: postgresDialect, table: 'shop.Order Items', columns: ['"id"', '"sku"'], key: ['id'],
    where: checkWhere('postgres', "status <> 'test'", 'where'), range: { lower: '100', upper: '200' }, after: ['150'],
  });
  t.is(sql, `SELECT "id", "sku" FROM "shop"."Order Items" WHERE (status <> 'test') AND "id" >= '100' AND "id" < '200' AND "id" > '150' ORDER BY "id"`);
  t.notRegex(sql, /OFFSET/i);
});

test('source select: a composite key resumes with an expanded comparison', (t) => {
  t.is(keyAfter(mysqlDialect, ['a', 'b'], ['1', "it's"]), "((`a` > '1') OR (`a` = '1' AND `b` > 'it''s'))");
  t.is(keyAfter(postgresDialect, ['k'], [Buffer.from([1, 2])]), `"k" > pg_catalog.decode('0102', 'hex')`);
});

test('source select: dedupe keeps the latest row per group, filtered before ranking', (t) => {
  const sql = buildSourceSelect({
    dialect: mysqlDialect, table: 'customers', columns: ['`id`', 'LOWER(`email`)'], key: ['id'], where: checkWhere('mysql', 'active = 1', 'where'),
    dedupe: { by: ['email'], keep: 'latest', orderBy: 'updated_at' }, after: ['7'],
  });
  t.is(sql, 'SELECT `id`, LOWER(`email`) FROM (SELECT dataops_t.*, ROW_NUMBER() OVER (PARTITION BY `email` ORDER BY `updated_at` DESC, `id` DESC) AS dataops_rank '
    + 'FROM `customers` AS dataops_t WHERE (active = 1)) AS dataops_deduped WHERE dataops_rank = 1 AND `id` > \'7\' ORDER BY `id`');
});

test('shards: boundaries split the key range evenly and the outer shards are open', (t) => {
  t.deepEqual(integerBoundaries(1n, 100n, 4), ['26', '51', '76']);
  t.deepEqual(integerBoundaries(5n, 5n, 4), []);
  t.deepEqual(integerBoundaries(-9223372036854775808n, 9223372036854775807n, 2), ['0']);
  t.deepEqual(shardRange(['26', '51', '76'], 0), { upper: '26' });
  t.deepEqual(shardRange(['26', '51', '76'], 2), { lower: '51', upper: '76' });
  t.deepEqual(shardRange(['26', '51', '76'], 3), { lower: '76' });
  t.deepEqual(shardRange([], 0), {});
});

const column = (name: string, dataType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo =>
  ({ name, dataType, nativeType: dataType, nullable: true, autoIncrement: false, ...extra });
const table = (engine: 'postgres' | 'mysql', name: string, columns: ColumnInfo[], primaryKey: string[] = ['id']): TableInfo =>
  ({ engine, schema: 'public', name, columns, primaryKey, uniqueKeys: [], indexes: [], foreignKeys: [], estimatedRows: 0 });
const identity: MapValue = () => ({});

test('plan: renames, skips, expressions, transforms and defaults; key columns first', (t) => {
  const source = table('mysql', 'orders', [column('total', 'decimal'), column('id', 'bigint'), column('cust_id', 'int'),
    column('email', 'varchar'), column('legacy', 'int'), column('calc', 'int', { generated: { kind: 'virtual', expression: 'id*2' } })]);
  const target = table('postgres', 'orders', [column('total_cents', 'bigint'), column('id', 'bigint'), column('customer_id', 'integer'),
    column('email', 'text'), column('region', 'text', { nullable: false })]);
  const outcome = planTableCopy({
    spec: { name: 'orders', columns: [
      { name: 'cust_id', target: 'customer_id' }, { name: 'email', transforms: ['trim', 'lowercase'] },
      { name: 'total', target: 'total_cents', expression: 'ROUND(total * 100)' }, { name: 'legacy', skip: true },
      { name: 'region', default: "'eu'" },
    ] },
    source, target, conflictPolicy: 'fail', mapValue: identity,
  });
  t.deepEqual(outcome.errors, []);
  t.deepEqual(outcome.plan?.targetColumns.map((c) => c.name), ['id', 'total_cents', 'customer_id', 'email', 'region']);
  t.deepEqual(outcome.plan?.selectColumns, ['`id`', '(ROUND(total * 100))', '`cust_id`', 'LOWER(TRIM(`email`))', "('eu')"]);
  t.true(outcome.warnings.some((w) => w.includes('generated column calc')));
});

test('plan: SQL fragments become checked SQL, or errors naming their field', (t) => {
  const source = table('postgres', 'orders', [column('id', 'bigint'), column('total', 'numeric'), column('note', 'text')]);
  const target = table('postgres', 'orders', [column('id', 'bigint'), column('total', 'numeric'), column('note', 'text'), column('added', 'text')]);
  const plan = (spec: Parameters<typeof planTableCopy>[0]['spec']) => planTableCopy({ spec, source, target, conflictPolicy: 'fail', mapValue: identity });
  const good = plan({ name: 'orders', where: 'total > 0 OR note IS NULL', columns: [{ name: 'note', default: "'none'" }, { name: 'added', default: 'now()' }] });
  t.deepEqual(good.errors, []);
  t.is(good.plan?.where?.sql, '(total > 0 OR note IS NULL)', 'spliced in the parentheses it was checked in');
  t.deepEqual(good.plan?.selectColumns, ['"id"', '"total"', `COALESCE("note", ('none'))`, '(now())']);
  const bad = plan({ name: 'orders', where: 'true) TO STDOUT; DELETE FROM orders; COPY (SELECT 1', columns: [
    { name: 'total', expression: 'total; COMMIT' }, { name: 'added', default: "pg_sleep(1)" },
  ] });
  t.is(bad.plan, undefined);
  t.is(bad.errors.length, 3);
  t.regex(bad.errors[0] ?? '', /^spec\.tables\[orders\]\.where: expected /);
  t.regex(bad.errors[1] ?? '', /^spec\.tables\[orders\]\.columns\[total\]\.expression: /);
  t.regex(bad.errors[2] ?? '', /^spec\.tables\[orders\]\.columns\[added\]\.default: /);
});

test('plan: every reason the copy cannot be right is reported before anything runs', (t) => {
  const source = table('postgres', 'events', [column('id', 'bigint'), column('payload', 'jsonb'), column('extra', 'text')], []);
  const target = table('mysql', 'events', [column('payload', 'json'), column('must', 'int', { nullable: false })], []);
  const outcome = planTableCopy({
    spec: { name: 'events', columns: [{ name: 'new_col' }] }, source, target, conflictPolicy: 'upsert',
    mapValue: (c): ReturnType<MapValue> => (c.dataType === 'jsonb' ? { error: `column ${c.name}: no mapping for jsonb here` } : {}),
  });
  t.is(outcome.plan, undefined);
  const text = outcome.errors.join('\n');
  t.regex(text, /has no primary key/);
  t.regex(text, /Upsert needs a primary or unique key/);
  t.regex(text, /column new_col is not in the source; give it an expression or a default/);
  t.regex(text, /target table events has no column id/);
  t.regex(text, /no mapping for jsonb/);
  t.regex(text, /target column must is NOT NULL without a default/);
});

test('plan: key columns cannot be transformed; binary and BIT targets load through expressions', (t) => {
  const source = table('mysql', 'files', [column('id', 'varchar'), column('body', 'blob'), column('flags', 'bit')]);
  const bad = planTableCopy({ spec: { name: 'files', columns: [{ name: 'id', transforms: ['lowercase'] }] }, source, target: { ...source }, conflictPolicy: 'fail', mapValue: identity });
  t.regex(bad.errors.join(), /key column id cannot be skipped, computed or transformed/);
  const good = planTableCopy({ spec: { name: 'files' }, source, target: { ...source }, conflictPolicy: 'fail', mapValue: identity });
  t.deepEqual(good.plan?.targetColumns.map((c) => [c.name, c.binary, c.loadExpression?.('@v')]), [
    ['id', false, undefined], ['body', true, undefined], ['flags', false, 'CAST(CONV(@v, 16, 10) AS UNSIGNED)'],
  ]);
});

test('source select: what the copy builds passes the statement guard on both engines (quotes, backslashes, bytes, dedupe, transforms)', (t) => {
  for (const dialect of [postgresDialect, mysqlDialect]) {
    const engine = dialect === postgresDialect ? 'postgres' : 'mysql';
    const q = (name: string): string => dialect.quoteIdent(name);
    const sql = buildSourceSelect({
      dialect, table: 'shop.Order`s "x"', key: ['id', 'k2'],
      columns: [q('id'), q('k2'), `NULLIF(TRIM(${dialect.sha256HexSql(q('e'))}), '')`, checkExpression(engine, "concat('a', 'b')", 'expression').sql],
      where: checkWhere(engine, "id > 3 AND e LIKE 'x%'", 'where'), dedupe: { by: ['e'], keep: 'latest', orderBy: 'u' },
      range: { lower: "1'2", upper: '5\\' }, after: ["it's \\ odd", Buffer.from([0, 39, 92])],
      conditions: [`${q('u')} > ${dialect.timestampMinusSecondsSql(dialect.quoteLiteral("2020-01-01'\\"), 5)}`],
    });
    if (engine === 'postgres') t.notThrows(() => { assertPostgresCopyOut(`COPY (${sql}) TO STDOUT`); });
    else t.notThrows(() => { assertMysqlSelect(sql); });
  }
  // Something unchecked spliced into the copy is stopped before it is sent.
  t.throws(() => { assertPostgresCopyOut('COPY (SELECT 1) TO STDOUT; COPY (SELECT 1) TO PROGRAM \'touch /tmp/x\''); }, { name: 'UnsafeStatement' });
  t.throws(() => { assertMysqlSelect("SELECT `id` FROM `t` WHERE (1) INTO OUTFILE '/tmp/x'"); }, { name: 'UnsafeStatement' });
});
