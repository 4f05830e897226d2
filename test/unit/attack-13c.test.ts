// Issue 13 (third round): the relations a PostgreSQL fragment reads (a view runs its definition, a
// table its row-level security policies), and the bound on a rule's query.
import test from 'ava';
import { calledNames } from '../../src/engine/sql/called-names.ts';
import { DEFAULT_RULE_TIMEOUT_MS, ruleTimeoutMs } from '../../src/engine/validate/rules.ts';

test('calledNames: the relations a PostgreSQL fragment reads, quoted for to_regclass, without the wrapper table', (t) => {
  t.deepEqual(calledNames('postgres', 'where', 'id IN (SELECT id FROM public.a13c_chosen)').relations, ['"public"."a13c_chosen"']);
  t.deepEqual(calledNames('postgres', 'expression', '(SELECT count(*) FROM "We""ird" w JOIN acl ON true)').relations.sort(), ['"We""ird"', '"acl"']);
  t.deepEqual(calledNames('postgres', 'rule', 'WITH c AS (SELECT * FROM a13c_v) SELECT count(*) FROM c').relations.sort(), ['"a13c_v"', '"c"'], 'a CTE name comes along (it resolves to nothing)');
  t.deepEqual(calledNames('postgres', 'where', 'id > 0').relations, []);
  // MySQL: every name not called is a possible relation (the look-up keeps the views among them).
  t.deepEqual(calledNames('mysql', 'where', 'id IN (SELECT id FROM `V`)').relations.sort(), ['from', 'id', 'select', 'v']);
  t.deepEqual(calledNames('mysql', 'where', 'f(id) = 1').relations, ['id']);
});

test('ruleTimeoutMs: DMO_RULE_TIMEOUT_SECONDS, else the default', (t) => {
  t.is(ruleTimeoutMs({}), DEFAULT_RULE_TIMEOUT_MS);
  t.is(ruleTimeoutMs({ DMO_RULE_TIMEOUT_SECONDS: '2.5' }), 2500);
  t.is(ruleTimeoutMs({ DMO_RULE_TIMEOUT_SECONDS: '0' }), DEFAULT_RULE_TIMEOUT_MS);
  t.is(ruleTimeoutMs({ DMO_RULE_TIMEOUT_SECONDS: 'soon' }), DEFAULT_RULE_TIMEOUT_MS);
});
