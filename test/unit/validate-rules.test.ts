// Validation rules: exact decimal comparison with absolute and relative tolerance, and how rule
// outcomes are decided (both queries, or one query against expect).
import test from 'ava';
import { checkRule, compareValues, parseDecimal, parseTolerance, runRule, withinTolerance } from '../../src/engine/validate/rules.ts';
import type { ValidationRule } from '../../src/api/types.ts';
import { FragmentRefused } from '../../src/engine/sql/fragments.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import { postgresAdapter as postgresDialect } from '../../src/engine/db/postgres/adapter.ts';

const d = (text: string) => {
  const value = parseDecimal(text);
  if (!value) throw new Error(text);
  return value;
};

test('decimals parse exactly, scientific notation too', (t) => {
  t.deepEqual(parseDecimal('12.50'), { digits: 1250n, scale: 2 });
  t.deepEqual(parseDecimal('-0.001'), { digits: -1n, scale: 3 });
  t.deepEqual(parseDecimal('1.5e3'), { digits: 1500n, scale: 0 });
  t.deepEqual(parseDecimal('2E-2'), { digits: 2n, scale: 2 });
  t.deepEqual(parseDecimal('99999999999999999999.000000001'), { digits: 99999999999999999999000000001n, scale: 9 });
  t.is(parseDecimal('abc'), undefined);
  t.is(parseDecimal(''), undefined);
  t.is(parseDecimal('.'), undefined);
});

test('tolerance: absolute and relative, exact at the boundary', (t) => {
  t.true(withinTolerance(d('10.004'), d('10'), parseTolerance('0.005')));
  t.true(withinTolerance(d('10.005'), d('10'), parseTolerance('0.005')));
  t.false(withinTolerance(d('10.0051'), d('10'), parseTolerance('0.005')));
  t.true(withinTolerance(d('1001'), d('1000'), parseTolerance('0.1%')));
  t.false(withinTolerance(d('1001.01'), d('1000'), parseTolerance('0.1%')));
  t.true(withinTolerance(d('-1001'), d('-1000'), parseTolerance('0.1%')));
  t.true(withinTolerance(d('0.1'), d('0.10'), undefined), 'equal without tolerance');
  t.false(withinTolerance(d('0.1'), d('0.10000000000000001'), undefined), 'no float rounding');
  t.throws(() => parseTolerance('-1'));
  t.is(parseTolerance(undefined), undefined);
});

test('values compare as numbers when both are numbers, else as text; NULL equals only NULL', (t) => {
  t.deepEqual(compareValues('100.50', '100.5', undefined), { equal: true, comparedAs: 'number', difference: '0' });
  t.deepEqual(compareValues('12', '10', parseTolerance('1')), { equal: false, comparedAs: 'number', difference: '2' });
  t.deepEqual(compareValues('abc', 'abc', undefined), { equal: true, comparedAs: 'text' });
  t.false(compareValues('abc', 'abd', undefined).equal);
  t.true(compareValues(null, null, undefined).equal);
  t.false(compareValues(null, '0', undefined).equal);
});

/** A read-only session that knows a few queries' values and records what it was sent. */
function fakeSession(values: Record<string, string | null>, sent: string[] = []): SqlSession {
  return {
    engine: 'postgres', dialect: postgresDialect,
    query: (sql) => {
      sent.push(sql);
      if (sql === 'START TRANSACTION READ ONLY' || sql === 'ROLLBACK' || sql.startsWith('SET LOCAL statement_timeout = ')) return Promise.resolve([]);
      // The rule's statement bound (rules.ts) reads the session's own first: none here.
      if (sql.includes("name OPERATOR(pg_catalog.=) 'statement_timeout'")) return Promise.resolve([{ setting: '0' }]);
      if (!(sql in values)) return Promise.reject(new Error(`cannot execute ${sql} in a read-only transaction`));
      const value = values[sql];
      return Promise.resolve(value === undefined ? [] : [{ v: value }]);
    },
    close: () => Promise.resolve(),
  };
}

const checked = (rule: ValidationRule) => checkRule(rule, { source: 'postgres', target: 'postgres' });

test('rules: both queries compared, or one against expect; errors fail the rule', async (t) => {
  const sent: string[] = [];
  const source = fakeSession({ 'SELECT sum(x)': '100.00', 'SELECT 1': '1' });
  const target = fakeSession({ 'SELECT sum(x)': '100.004', 'SELECT count(*)': '42' }, sent);
  const sessions = { source, target };
  t.true((await runRule(checked({ name: 'sum', source: 'SELECT sum(x)', target: 'SELECT sum(x)', tolerance: '0.01' }), sessions)).passed);
  const tight = await runRule(checked({ name: 'sum', source: 'SELECT sum(x)', target: 'SELECT sum(x)' }), sessions);
  t.false(tight.passed);
  t.is(tight.message, 'target 100.004 ≠ source 100.00 (difference 0.004)');
  t.true((await runRule(checked({ name: 'count', target: 'SELECT count(*)', expect: '42' }), sessions)).passed);
  t.false((await runRule(checked({ name: 'count', target: 'SELECT count(*)', expect: '43' }), sessions)).passed);
  t.true((await runRule(checked({ name: 'src', source: 'SELECT 1', expect: '1.0' }), sessions)).passed);
  const failing = await runRule(checked({ name: 'gone', target: 'SELECT count(*) FROM elsewhere', expect: '0' }), sessions);
  t.false(failing.passed);
  t.regex(failing.error ?? '', /read-only/);
  t.false((await runRule(checked({ name: 'none' }), sessions)).passed);
  t.false((await runRule(checked({ name: 'one', source: 'SELECT 1' }), sessions)).passed, 'one query needs expect');
  // Every query ran alone in a read-only transaction that was rolled back, the failing one too,
  // under the rule's statement bound (SET LOCAL: it ends with the transaction).
  const bound = ["SELECT setting FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'statement_timeout'", 'SET LOCAL statement_timeout = 900000'];
  t.deepEqual(sent.slice(0, 5), ['START TRANSACTION READ ONLY', ...bound, 'SELECT sum(x)', 'ROLLBACK']);
  t.deepEqual(sent.slice(-5), ['START TRANSACTION READ ONLY', ...bound, 'SELECT count(*) FROM elsewhere', 'ROLLBACK']);
});

test('rules: a query that is not one read-only SELECT is refused before it runs, naming the field', (t) => {
  const error = t.throws(() => checked({ name: 'write', target: 'DELETE FROM t', expect: '0' }), { instanceOf: FragmentRefused });
  t.is(error.field, 'spec.validation.rules[write].target');
  t.throws(() => checkRule({ name: 'stack', source: 'SELECT 1; COMMIT', expect: '1' }, { source: 'mysql', target: 'postgres' }), { message: /^spec\.validation\.rules\[stack\]\.source: / });
});
