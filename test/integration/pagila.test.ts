// A second public schema not written by this project: Pagila (test/fixtures/pagila/, MIT-style
// licence beside it), the PostgreSQL port of Sakila, with a partitioned table, views, a
// materialized view, triggers, functions, a domain, an enum, arrays and a tsvector column.
// Schema only (its data files were not reachable from here). With spec.tables omitted, each plan
// names every object it does not carry over, or refuses naming it; an accepted plan's run
// succeeds, and its target is compared with the source through the catalogs.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { loadSqlScript } from '../../bench/support/chinook.ts';
import { schemaDifferences, schemaShape } from '../../bench/support/schema-snapshot.ts';
import { planStep } from '../../src/engine/pipeline/steps.ts';
import { corpusSetup, runAccepted } from '../support/schema-corpus.ts';
import { execSql, scalar } from '../support/sql.ts';

const schema = (): Promise<string> => readFile(new URL('../fixtures/pagila/pagila-schema.sql', import.meta.url), 'utf8');
const TABLES = 'actor address category city country customer film film_actor film_category inventory language payment rental staff store';

/** What the plan names as not carried over, in either direction (one grouped warning each). */
const NAMED = [
  /views of the source schema public are not migrated.*actor_info, customer_list, film_list, nicer_but_slower_film_list, sales_by_film_category, sales_by_store, staff_list/,
  /materialized views of the source schema public are not migrated.*rental_by_category/,
  /routines .* are not migrated.*film_in_stock/,
  /triggers on the migrated tables are not migrated.*film\.film_fulltext_trigger.*film\.last_updated/,
  /partitioned tables are created as plain tables.*payment/,
];

/** PostgreSQL → PostgreSQL: what differs from the source, each named in the plan (NAMED) or by design. */
const DOCUMENTED = [
  { reason: 'a domain becomes its base type plus its CHECK on the column (issue 15: "domain → its base type plus its CHECK")', differences: /^film\.release_year: type integer ≠ year$|^film check CHECK \(\(\(release_year >= 1901\) AND \(release_year <= 2155\)\)\): only on ours$/ },
  { reason: 'views and the materialized view are not migrated (named in the plan)', differences: /^view (actor_info|customer_list|film_list|nicer_but_slower_film_list|rental_by_category|sales_by_film_category|sales_by_store|staff_list): missing$/ },
  { reason: 'triggers are not migrated (named in the plan)', differences: /^trigger \w+\.(last_updated|film_fulltext_trigger): missing$/ },
  { reason: 'routines are not migrated (named in the plan)', differences: /^routine \w+: missing$/ },
];

test('Pagila postgres → mysql: the plan refuses film naming its array and tsvector columns, names what it leaves, creates nothing', async (t) => {
  const { context, target } = await corpusSetup(t, 'pagila', 'postgres', 'mysql', []);
  await loadSqlScript('postgres', context.source.url, await schema());
  const { plan } = await planStep(context);
  t.is(plan.tables.map((p) => p.spec.name).join(' '), TABLES, 'payment once, not its partitions');
  t.regex(plan.errors.join('\n'), /table film: column special_features: PostgreSQL type text\[\] has no mapping/);
  t.regex(plan.errors.join('\n'), /table film: column fulltext: PostgreSQL type tsvector has no mapping/);
  const warnings = plan.warnings.join('\n');
  for (const named of [...NAMED, /domain rules .* not reproduced.*film\.release_year \(domain year/]) t.regex(warnings, named);
  t.is(await scalar(target, 'SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()'), '0');
});

test('Pagila postgres → postgres: accepted, the run succeeds, the tables equal the source\'s but for what the plan names', async (t) => {
  const { context, source, target } = await corpusSetup(t, 'pagila', 'postgres', 'postgres', []);
  await loadSqlScript('postgres', source, await schema());
  // The dump (from PostgreSQL 12) grants CREATE on schema public to PUBLIC, so the target's account
  // could write the source: the engine refuses that on one server (README, "Source and target on one server").
  await execSql(source, ['REVOKE CREATE ON SCHEMA public FROM PUBLIC']);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  const warnings = plan.warnings.join('\n');
  for (const named of NAMED) t.regex(warnings, named);
  await runAccepted(t, context);
  const differences = schemaDifferences(await schemaShape(target), await schemaShape(source), { names: true });
  const unexplained = differences.filter((d) => !DOCUMENTED.some((m) => m.differences.test(d)));
  t.deepEqual(unexplained, [], `differences that are neither fixed nor documented:\n${unexplained.join('\n')}`);
  t.deepEqual(DOCUMENTED.filter((m) => !differences.some((d) => m.differences.test(d))).map((m) => m.reason), [], 'documented mappings that no longer apply');
  // Found here and fixed: the GiST index on film.fulltext was created as a btree one.
  t.is(await scalar(target, "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.relname = 'film_fulltext_idx'"), 'gist');
});
