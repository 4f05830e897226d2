// Issue 13, an adversary's own attempts at the pure checks: spellings of denied functions the
// scanner does not see as plain words, the functions behind the refused credential catalogs,
// MySQL tokens a JavaScript lexer might split differently from the server, identifiers at the
// engines' limits, and what the plan looks up on the source: every function and operator name a
// source-side fragment calls (calledNames, sourceFragments), so that a function someone defined
// in the source database is refused however the fragment reaches it.
import test from 'ava';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { sourceFragments } from '../../src/engine/pipeline/defined-functions.ts';
import { calledNames } from '../../src/engine/sql/called-names.ts';
import { isCredentialTable, isDeniedFunction } from '../../src/engine/sql/deny-list.ts';
import { checkExpression, checkIdentifier, checkQualifiedName, checkRuleQuery, checkWhere, FragmentRefused, type FragmentKind } from '../../src/engine/sql/fragments.ts';

const CHECKS = { where: checkWhere, expression: checkExpression, rule: checkRuleQuery } as const;
type Checked = keyof typeof CHECKS;

/** Refused, naming the field, and saying `why`. */
function refused(engine: Engine, kind: Checked, text: string, why: RegExp): void {
  test(`${engine} ${kind} refused: ${JSON.stringify(text).slice(0, 90)}`, (t) => {
    const field = `spec.tables[orders].${kind}`;
    const error = t.throws(() => CHECKS[kind](engine, text, field), { instanceOf: FragmentRefused });
    t.true(error.message.startsWith(`${field}: expected `), error.message);
    t.regex(error.message, why);
  });
}

function accepted(engine: Engine, kind: Checked, text: string): void {
  test(`${engine} ${kind} accepted: ${JSON.stringify(text).slice(0, 90)}`, (t) => {
    t.notThrows(() => CHECKS[kind](engine, text, 'field'));
  });
}

const CALL = /a call of|which a fragment may not call/;

// PostgreSQL: the tree names a function however the text spells it.
refused('postgres', 'where', 'U&"pg\\005fsleep"(1) IS NOT NULL', /pg_sleep/);
refused('postgres', 'where', 'U&"!0070g_sleep" UESCAPE \'!\' (1) IS NOT NULL', /pg_sleep/);
refused('postgres', 'where', '"PG_ADVISORY_LOCK"(1) IS NOT NULL', CALL);
refused('postgres', 'where', 'pg_catalog . pg_advisory_xact_lock ( 1 ) IS NOT NULL', CALL);
refused('postgres', 'where', '"pg_catalog"."set_config"(\'a.b\', \'c\', false) = \'c\'', CALL);
refused('postgres', 'expression', '(SELECT string_agg(query, \';\') FROM pg_stat_get_activity(NULL))', /pg_stat_get_activity/);
refused('postgres', 'expression', 'pg_stat_get_backend_activity(1)', /pg_stat_get_backend_activity/);
refused('postgres', 'expression', 'pg_stat_get_backend_activity_start(1)::text', CALL);
refused('postgres', 'rule', 'SELECT string_agg(setting, \',\') FROM pg_show_all_file_settings()', /pg_show_all_file_settings/);
refused('postgres', 'rule', 'SELECT count(*) FROM pg_hba_file_rules()', /pg_hba_file_rules/);
refused('postgres', 'rule', 'SELECT count(*) FROM pg_ident_file_mappings()', /pg_ident_file_mappings/);
refused('postgres', 'rule', 'SELECT count(*) FROM ROWS FROM (generate_series(1, 2), pg_sleep(1))', /pg_sleep/);
refused('postgres', 'rule', 'SELECT 1 FROM "PG_AUTHID"', /credentials catalog/);
refused('postgres', 'rule', 'SELECT 1 FROM U&"pg\\005fauthid"', /credentials catalog/);
refused('postgres', 'where', "note = E'a\\' OR true) TO STDOUT; DELETE FROM orders; --'", /backslash-escaped quote/);
refused('postgres', 'where', 'true WINDOW w AS (ORDER BY id)', /syntax error at or near "WINDOW"|reaches outside its place/);
refused('postgres', 'where', `${'('.repeat(65)}true${')'.repeat(65)}`, /nested deeper than 64/);
refused('postgres', 'where', 'id > 0 \u202e--', /invisible character U\+202E/);
refused('postgres', 'where', 'id > 0\u0000', /control or invisible character U\+0000/);
refused('postgres', 'rule', 'EXPLAIN ANALYZE DELETE FROM orders', /EXPLAIN statement/);
accepted('postgres', 'where', "note = E'\\x27) TO STDOUT; DELETE FROM orders; --'");
accepted('postgres', 'where', 'note = $a13$); DELETE FROM orders; --$a13$');
accepted('postgres', 'where', "ctid <> '(0,0)'");
accepted('postgres', 'expression', "current_setting('TimeZone')");

// MySQL: the lexer is stricter than the server wherever they could differ.
refused('mysql', 'where', '`SLEEP`(0.01) = 0', CALL);
refused('mysql', 'where', 'BENCHMARK (10000000, MD5(note)) = 0', CALL);
refused('mysql', 'where', '\uff33\uff2c\uff25\uff25\uff30(1) = 0', CALL);
refused('mysql', 'where', 'RELEASE_ALL_LOCKS() >= 0', CALL);
refused('mysql', 'where', "IS_USED_LOCK('a') IS NULL", CALL);
refused('mysql', 'where', 'id > 0\u00a0INTO\u00a0OUTFILE \'/tmp/x\'', /INTO/);
refused('mysql', 'where', 'id > 0\u3000INTO @x', /INTO/);
refused('mysql', 'where', 'id IN (SELECT id FROM orders FOR UPDATE SKIP LOCKED)', /FOR UPDATE/);
refused('mysql', 'where', 'id IN (SELECT NEXT\nVALUE FOR s)', /NEXT VALUE FOR/);
refused('mysql', 'where', "id > 0 /*M!100100 INTO OUTFILE '/tmp/x' */", /executable comment/);
refused('mysql', 'where', 'id > 0 /*+ MAX_EXECUTION_TIME(1) */', /comment/);
refused('mysql', 'where', 'id > 0 \\G', /grammar cannot read|expected/);
refused('mysql', 'where', 'id > 0 HAVING 1', /reaches outside its place|grammar cannot read/);
refused('mysql', 'expression', '(SELECT GROUP_CONCAT(trx_query) FROM information_schema.INNODB_TRX)', /credentials table/);
refused('mysql', 'expression', '(SELECT `authentication_string` FROM `mysql`.`user` LIMIT 1)', /credentials table/);
refused('mysql', 'rule', 'HANDLER orders OPEN', /expected one read-only SELECT/);
refused('mysql', 'rule', "EXECUTE IMMEDIATE 'DELETE FROM orders'", /expected one read-only SELECT/);
refused('mysql', 'rule', "TABLE orders INTO OUTFILE '/tmp/x'", /INTO/);
accepted('mysql', 'where', '@a13 IS NULL');
accepted('mysql', 'where', "note <> x'27' AND note <> _binary 0x29");
accepted('mysql', 'where', 's.nextval > 0');

test('credential catalogs: innodb_trx is refused like the processlist, in any case', (t) => {
  t.true(isCredentialTable('mysql', 'information_schema', 'INNODB_TRX'));
  t.true(isCredentialTable('mysql', 'INFORMATION_SCHEMA', 'innodb_trx'));
  t.false(isCredentialTable('mysql', undefined, 'innodb_trx'), 'an application table of that name is the application\'s');
  for (const name of ['pg_stat_get_activity', 'PG_STAT_GET_ACTIVITY', 'pg_stat_get_backend_activity', 'pg_stat_get_backend_activity_start', 'pg_show_all_file_settings', 'pg_hba_file_rules', 'pg_ident_file_mappings']) {
    t.true(isDeniedFunction('postgres', name), name);
  }
  t.false(isDeniedFunction('postgres', 'pg_stat_get_numscans'), 'counters stay allowed');
});

test('identifiers at the engines\' limits, and look-alikes that are names of their own', (t) => {
  t.is(checkIdentifier('postgres', 'é'.repeat(31), 'f'), 'é'.repeat(31), '62 bytes');
  t.throws(() => checkIdentifier('postgres', `${'é'.repeat(31)}ab`, 'f'), { message: /found a name of 64 bytes/ });
  t.is(checkIdentifier('mysql', 'é'.repeat(64), 'f'), 'é'.repeat(64), '64 characters, whatever their bytes');
  t.throws(() => checkIdentifier('mysql', 'o'.repeat(65), 'f'), { message: /found a name of 65 characters/ });
  t.throws(() => checkQualifiedName('postgres', 'other.public.orders', 'f'), { message: /3 dot-separated parts/ });
  t.is(checkIdentifier('postgres', '\u043erders', 'f'), '\u043erders', 'a Cyrillic o is a different name, left to the catalog');
  t.throws(() => checkIdentifier('mysql', 'ord\u200bers', 'f'), { instanceOf: FragmentRefused, message: /invisible character U\+200B at character 4/ }, 'a zero-width space');
  t.throws(() => checkIdentifier('postgres', 'orders\u202e', 'f'), { message: /invisible character U\+202E/ }, 'a right-to-left override');
  t.throws(() => checkQualifiedName('postgres', 'public.ord\u0007ers', 'f'), { message: /invisible character U\+0007/ }, 'a control character');
  t.is(checkIdentifier('postgres', 'می\u200cخواهم', 'f'), 'می\u200cخواهم', 'a zero-width non-joiner, which Persian needs');
});

type Names = { functions: string[]; operators: string[]; types: string[] };
const names = (engine: Engine, kind: FragmentKind, text: string): Names => {
  const called = calledNames(engine, kind, text);
  return { functions: [...called.functions].sort(), operators: [...called.operators].sort(), types: [...called.types].sort() };
};

test('calledNames: PostgreSQL names every function and operator as the server looks them up', (t) => {
  t.deepEqual(names('postgres', 'where', "lower(name) LIKE 'p%' AND public.a13_bump() = 1"), { functions: ['a13_bump', 'lower', 'name'], operators: ['=', '~~'], types: [] });
  t.deepEqual(names('postgres', 'where', 'U&"a13\\005fbump"() IS NOT NULL OR "MixedCase"(1) = 2').functions, ['MixedCase', 'a13_bump']);
  t.deepEqual(names('postgres', 'where', '1 OPERATOR(public.===) 2').operators, ['===']);
  t.deepEqual(names('postgres', 'expression', "coalesce(note, '') || upper(note)"), { functions: ['note', 'upper'], operators: ['||'], types: [] }, 'COALESCE is syntax, not a function');
  t.deepEqual(names('postgres', 'rule', 'SELECT count(*) FROM orders o JOIN ROWS FROM (a13_rows()) r ON true').functions, ['a13_rows', 'count']);
  t.deepEqual(names('postgres', 'default', "'x'"), { functions: [], operators: [], types: [] });
});

test('calledNames: PostgreSQL functional notation, casts to domains, and the operators BETWEEN runs', (t) => {
  t.deepEqual(names('postgres', 'where', 'orders.a13_attr').functions, ['a13_attr', 'orders'], 'orders.a13_attr calls a13_attr(orders) when orders has no such column');
  t.deepEqual(names('postgres', 'where', '(orders).a13_attr').functions, ['a13_attr', 'orders'], 'the parenthesised spelling too');
  t.deepEqual(names('postgres', 'where', "'x'::public.a13_dom IS NOT NULL AND CAST(1 AS a13_other) = 1").types, ['a13_dom', 'a13_other']);
  t.deepEqual(names('postgres', 'where', 'id BETWEEN 1 AND 2 OR id NOT BETWEEN SYMMETRIC 3 AND 4').operators, ['<=', '>=']);
});

test('calledNames: MySQL names every word before a parenthesis, lower-cased, quoted and spaced ones too', (t) => {
  t.deepEqual(names('mysql', 'where', 'A13_LOCK () = 1 OR `a13_Lock`() = 1 OR db.a13_bump(1) = 1').functions, ['a13_bump', 'a13_lock']);
  t.deepEqual(names('mysql', 'where', "id IN (1, 2) AND CONCAT(note, 'f(x)') <> ''").functions, ['concat', 'in'], 'a keyword comes along; a string does not');
});

test('sourceFragments: where, expression, default and source rules, each with its field; target rules are not the source\'s', (t) => {
  const fragments = sourceFragments({
    tables: [{ name: 'orders', where: 'a13()', columns: [{ name: 'note', expression: 'b13()' }, { name: 'region', default: "'eu'" }] }],
    validation: { rules: [{ name: 'revenue', source: 'SELECT c13()', target: 'SELECT d13()' }] },
  });
  t.deepEqual(fragments.map((f) => [f.field, f.kind]), [
    ['spec.tables[orders].where', 'where'],
    ['spec.tables[orders].columns[note].expression', 'expression'],
    ['spec.tables[orders].columns[region].default', 'default'],
    ['spec.validation.rules[revenue].source', 'rule'],
  ]);
});
