// Issue 15: MySQL's case-insensitive collations into PostgreSQL as citext (schema/citext.ts), on
// real servers through `dmctl plan` and `dmctl run` (which validates): a utf8mb4_general_ci
// varchar key and text column become citext, so a lookup that found a row on the source finds it
// on the target, the key stays case-insensitive, LIKE works, and varchar(n)'s bound holds as a
// CHECK. A target role that may not create the extension keeps plain varchar, and the plan's
// warning names the columns and says why citext was not used. A rollback leaves the extension.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { adminQueryOn, databaseOf, freshDatabase, freshTargetDatabase, testAccount } from '../support/databases.ts';
import { dmctl, errorOf } from '../support/dmctl.ts';
import { corpusManifest } from '../support/schema-corpus.ts';
import { execSql, scalar } from '../support/sql.ts';

const SEED = [
  `CREATE TABLE people (name varchar(8) COLLATE utf8mb4_general_ci PRIMARY KEY, bio text COLLATE utf8mb4_general_ci,
     code varchar(8) COLLATE utf8mb4_bin) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
  "INSERT INTO people VALUES ('alice', 'Likes Tea', 'a1'), ('Bob', 'likes COFFEE', 'b1')",
];

/** A MariaDB source with SEED, a manifest file, and `dmctl plan` then `dmctl run` into `target`; returns the plan's warnings. */
async function migrate(t: ExecutionContext, target: string): Promise<{ warnings: string[]; source: string; file: string }> {
  const source = await freshDatabase(t, 'mysql');
  await execSql(source, SEED);
  const manifest = corpusManifest('citext', 'mysql', 'postgres', [{ name: 'people' }]);
  manifest.spec.rollback = { schemaAction: 'DropCreatedTables' };
  const file = join(await mkdtemp(join(tmpdir(), 'dmo-citext-')), 'dm.yaml');
  await writeFile(file, stringify(manifest));
  const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };
  const planned = await dmctl(['plan', '-f', file], env);
  t.is(planned.code, 0, errorOf(planned));
  const plan = planned.events.find((e) => e.event === 'plan')?.plan as { errors: string[]; warnings: string[] } | undefined;
  t.deepEqual(plan?.errors, []);
  const run = await dmctl(['run', '-f', file], env);
  t.is(run.code, 0, errorOf(run));
  // `run` validates: its validate step passed.
  t.true(run.events.some((e) => e.event === 'step' && e.step === 'validate' && e.state === 'succeeded'), JSON.stringify(run.events));
  return { warnings: plan?.warnings ?? [], source, file };
}

const typeOf = (url: string, column: string): Promise<string> => scalar(url, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname = '${column}'`);

test('mariadb → postgres: utf8mb4_general_ci varchar key and text become citext; lookups, the key and LIKE ignore case; the bound holds', async (t) => {
  const target = await freshTargetDatabase(t, 'postgres');
  const { warnings, source, file } = await migrate(t, target);
  t.is(await typeOf(target, 'name'), 'citext');
  t.is(await typeOf(target, 'bio'), 'citext');
  t.is(await typeOf(target, 'code'), 'character varying(8)');
  // Named once, with what citext does not reproduce; not as "not reproduced".
  t.regex(warnings.join('\n'), /^case-insensitive collations become citext: .*: people\.name \(utf8mb4_general_ci\), people\.bio \(utf8mb4_general_ci\)$/m);
  t.false(warnings.some((w) => /collations are not reproduced/.test(w)), warnings.join('\n'));
  t.is(await scalar(target, "SELECT bio FROM people WHERE name = 'ALICE'"), 'Likes Tea');
  t.is(await scalar(target, "SELECT count(*) FROM people WHERE bio LIKE '%coffee%'"), '1');
  t.is(await scalar(target, "SELECT string_agg(name::text, ',' ORDER BY name) FROM people WHERE name LIKE 'b%'"), 'Bob');
  await t.throwsAsync(execSql(target, ["INSERT INTO people (name) VALUES ('ALICE')"]), { message: /duplicate key|unique/i });
  await t.throwsAsync(execSql(target, ["INSERT INTO people (name) VALUES ('ninechars')"]), { message: /check constraint/i });
  await execSql(target, ["INSERT INTO people (name) VALUES ('eightchr')"]);
  // A rollback drops the table it created, never the extension (other objects may use it): on
  // another target (the run above finished, so its tables are the application's).
  const other = await freshTargetDatabase(t, 'postgres');
  const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: other };
  const schema = await dmctl(['step', 'schema', '-f', file], env);
  t.is(schema.code, 0, errorOf(schema));
  t.is(await typeOf(other, 'name'), 'citext');
  const rollback = await dmctl(['step', 'rollback', '-f', file], env);
  t.is(rollback.code, 0, errorOf(rollback));
  t.is(await scalar(other, "SELECT (to_regclass('people') IS NULL)::int"), '1');
  t.is(await scalar(other, "SELECT count(*) FROM pg_extension WHERE extname = 'citext'"), '1');
});

test('mariadb → postgres: a target role that may not create citext keeps varchar, and the plan says why', async (t) => {
  // A database the admin owns: the account may create tables in schema public, not extensions.
  const database = await freshDatabase(t, 'postgres', 'nocitext');
  const account = await testAccount(t, 'postgres', { prefix: 'nocitext' });
  await account.grantOn(database, [`GRANT CONNECT ON DATABASE "${databaseOf(database)}" TO ${account.name}`, `GRANT USAGE, CREATE ON SCHEMA public TO ${account.name}`]);
  await adminQueryOn('postgres', databaseOf(database), `REVOKE CREATE ON DATABASE "${databaseOf(database)}" FROM PUBLIC`);
  const target = account.urlFor(database);
  const { warnings } = await migrate(t, target);
  t.regex(warnings.join('\n'), /^case-insensitive collations are not reproduced: .*citext was not used: the extension citext is not installed on the target and the target role may not create it.*: people\.name \(utf8mb4_general_ci\), people\.bio \(utf8mb4_general_ci\)$/m);
  t.is(await typeOf(target, 'name'), 'character varying(8)');
  t.is(await typeOf(target, 'bio'), 'text');
  t.is(await scalar(target, "SELECT count(*) FROM people WHERE name = 'ALICE'"), '0');
  t.is(await scalar(target, "SELECT count(*) FROM pg_extension WHERE extname = 'citext'"), '0');
});
