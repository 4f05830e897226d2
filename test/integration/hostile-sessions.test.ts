// Hostile servers and sessions (issue 13, second round of attacks): settings a source database or
// role can carry that change how the engine's own SQL reads — standard_conforming_strings off, a
// search_path ahead of pg_catalog, NO_BACKSLASH_ESCAPES/ANSI_QUOTES — and credential catalogs named
// as tables or reached through *_to_xml. Each is either read as the engine meant it or refused
// (exit 3, naming the problem, no URL or password), and the source's fingerprint is unchanged.
// The sources are the servers' superusers, accepted with acceptWritableRole so that only the project's
// own guards stand between these cases and the source.
import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { beginPostgresSnapshot, postgresCopyOut } from '../../src/engine/copy/sources.ts';
import { buildSourceSelect } from '../../src/engine/copy/source-query.ts';
import { readIdentity } from '../../src/engine/db/identity.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { mysqlConnectionOptions, prepareMysqlSession } from '../../src/engine/db/mysql/connection.ts';
import { postgresAdapter } from '../../src/engine/db/postgres/adapter.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl, type CliRun } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';

async function manifest(body: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'dmctl-hostile-sessions-')), 'migration.yaml');
  await writeFile(path, `apiVersion: dataops.dev/v1alpha1\nkind: DataMigration\nmetadata: {name: hostile, namespace: test}\nspec:\n${body}`);
  return path;
}

/** The run was refused (exit 3) with a message matching `reason`, and no URL or password printed. */
function assertRefused(t: import('ava').ExecutionContext, run: CliRun, reason: RegExp, urls: readonly string[]): void {
  t.is(run.code, 3, JSON.stringify(run.events));
  t.true(run.events.some((e) => e.event === 'error' && reason.test(String(e.message))), JSON.stringify(run.events));
  const output = JSON.stringify(run.events);
  for (const url of urls) for (const secret of [url, decodeURIComponent(new URL(url).password)]) t.false(output.includes(secret), 'no URL or password in the output');
}

// Finding 2: a key value ending in a backslash, on a server reading backslashes as escapes,
// closed the resume literal early and ran the rest as a second statement of the COPY.
test('PostgreSQL with standard_conforming_strings off: a hostile text key resumes as data, and a session that kept it off is refused', async (t) => {
  const url = await freshDatabase(t, 'postgres', 'scs');
  const database = new URL(url).pathname.slice(1);
  const hostile = String.raw`a\'); DELETE FROM accounts; --`;
  await execSql(url, [
    'CREATE TABLE accounts (name text PRIMARY KEY, balance int NOT NULL)',
    `INSERT INTO accounts VALUES (${postgresAdapter.quoteLiteral(hostile)}, 1), ('b', 2), ('c', 3)`,
    `ALTER DATABASE "${database}" SET standard_conforming_strings = off`,
  ]);
  const before = await sourceFingerprint(url);
  const select = buildSourceSelect({ dialect: postgresAdapter, table: 'accounts', columns: ['"name"', '"balance"'], key: ['name'], after: [hostile] });
  const client = await connectPostgres(url, { readOnly: true, applicationName: 'hostile sessions test' });
  try {
    t.is((await client.query<{ standard_conforming_strings: string }>('SHOW standard_conforming_strings')).rows[0]?.standard_conforming_strings, 'on', 'the engine\'s startup option wins over the database\'s');
    await beginPostgresSnapshot(client);
    let text = '';
    for await (const chunk of postgresCopyOut(client, select) as AsyncIterable<Buffer>) text += chunk.toString();
    await client.query('ROLLBACK');
    t.is(text, 'b\t2\nc\t3\n', 'the rows after the hostile key, nothing else run');
  } finally {
    await client.end();
  }
  // A session without the engine's startup options (the database's setting in force): refused before any COPY.
  const raw = new pg.Client({ connectionString: url });
  await raw.connect();
  try {
    t.is((await raw.query<{ standard_conforming_strings: string }>('SHOW standard_conforming_strings')).rows[0]?.standard_conforming_strings, 'off');
    // The literal itself reads back as the same text under either setting.
    t.is((await raw.query<{ v: string }>(`SELECT ${postgresAdapter.quoteLiteral(hostile)} AS v`)).rows[0]?.v, hostile);
    await t.throwsAsync(beginPostgresSnapshot(raw), { message: /standard_conforming_strings off/ });
  } finally {
    await raw.end();
  }
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(url)), []);
});

// Finding 3: functions of a schema ahead of pg_catalog in the search path answered the identity
// queries, so one database passed for two.
test('PostgreSQL: a search_path ahead of pg_catalog does not change the identity; one database stays refused', async (t) => {
  const url = await freshDatabase(t, 'postgres', 'spoof');
  const database = new URL(url).pathname.slice(1);
  await execSql(url, [
    'CREATE TABLE public.orders (id bigint PRIMARY KEY, note text)', "INSERT INTO public.orders VALUES (1, 'a')",
    'CREATE SCHEMA evil',
    'CREATE FUNCTION evil.pg_control_system(OUT system_identifier bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT (random() * 1e15)::bigint $$',
    "CREATE FUNCTION evil.current_database() RETURNS name LANGUAGE sql AS $$ SELECT md5(random()::text)::name $$",
    "CREATE FUNCTION evil.pg_postmaster_start_time() RETURNS timestamptz LANGUAGE sql AS $$ SELECT now() - random() * interval '1 day' $$",
    `ALTER DATABASE "${database}" SET search_path = evil, pg_catalog, public`,
  ]);
  const before = await sourceFingerprint(url);
  const session = await openSession(url, { readOnly: true });
  try {
    const identity = await readIdentity(session);
    const [real] = await session.query('SELECT s.system_identifier::pg_catalog.text AS id FROM pg_catalog.pg_control_system() s');
    t.is(identity.server, real?.id?.toString(), 'the real system identifier');
    t.is(identity.databaseName, database);
  } finally {
    await session.close();
  }
  const file = await manifest('  source: {engine: postgres, secretRef: {name: s}, acceptWritableRole: true}\n  target: {engine: postgres, secretRef: {name: t}}\n  tables: [{name: orders}]\n  strategy: {conflictPolicy: Upsert}\n');
  const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: url, DMO_TARGET_URL: url });
  assertRefused(t, run, /the source and the target are the same database/, [url]);
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(url)), []);
});

// Finding 4: under NO_BACKSLASH_ESCAPES mysql2's backslash escaping of a parameter ends the string
// early; the engine's sessions take the server's mode without it (and without ANSI_QUOTES).
test('MySQL: sessions drop NO_BACKSLASH_ESCAPES and ANSI_QUOTES, so an escaped name stays one string', async (t) => {
  const url = await freshDatabase(t, 'mysql', 'nbe');
  await execSql(url, ['CREATE TABLE accounts (id int PRIMARY KEY)', 'INSERT INTO accounts VALUES (1), (2)']);
  const before = await sourceFingerprint(url);
  const connection = await mysql.createConnection(mysqlConnectionOptions(url, { readOnly: true }));
  try {
    // What a server (or an account's init) configured with these modes hands every new session.
    await connection.query("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI,STRICT_TRANS_TABLES'");
    await prepareMysqlSession(connection, { readOnly: true });
    const [rows] = await connection.query('SELECT @@SESSION.sql_mode AS mode');
    const mode = String((rows as { mode: string }[])[0]?.mode).split(',');
    t.false(mode.includes('NO_BACKSLASH_ESCAPES'));
    t.false(mode.includes('ANSI_QUOTES'));
    t.true(mode.includes('STRICT_TRANS_TABLES'), 'the rest of the mode is kept');
    t.true(mode.includes('PIPES_AS_CONCAT'), 'ANSI\'s other flags are kept');
    const hostile = "' OR extractvalue(1,concat(0x7e,user(),0x7e,@@datadir))#";
    const [found] = await connection.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [hostile]);
    t.deepEqual(found, [], 'the name is one string: no table, no error');
  } finally {
    await connection.end();
  }
  const file = await manifest(`  source: {engine: mysql, secretRef: {name: s}, acceptWritableRole: true}\n  target: {engine: mysql, secretRef: {name: t}}\n  tables: [{name: "' OR extractvalue(1,concat(0x7e,user(),0x7e,@@datadir))#", target: x}]\n`);
  const target = await freshTargetDatabase(t, 'mysql', 'nbe_dst');
  const run = await dmctl(['plan', '-f', file], { DMO_SOURCE_URL: url, DMO_TARGET_URL: target });
  t.not(run.code, 0);
  t.false(JSON.stringify(run.events).includes('~'), 'no user() or datadir leaked through an error');
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(url)), []);
});

// Finding 5: credential catalogs named as tables, or read whole through table_to_xml.
for (const [engine, tables, reason] of [
  ['postgres', '[{name: pg_catalog.pg_authid, target: stolen, key: [oid]}]', /spec\.tables\[pg_catalog\.pg_authid\]\.name: expected an application table; found the credentials catalog/],
  ['postgres', '[{name: PG_SHADOW, target: stolen, key: [usesysid]}]', /the credentials catalog PG_SHADOW/],
  ['mysql', '[{name: mysql.global_priv, target: stolen, key: [Host, User]}]', /the credentials catalog mysql\.global_priv/],
  ['mysql', '[{name: performance_schema.threads, target: stolen, key: [THREAD_ID]}]', /the credentials catalog performance_schema\.threads/],
  ['postgres', '[{name: orders, where: "id = 1", columns: [{name: note, expression: "table_to_xml(\'pg_authid\', true, false, \'\')::text"}]}]', /a call of table_to_xml\(\)/],
] as const) {
  test(`${engine}: credential catalogs are not copied: ${tables.slice(0, 60)}`, async (t) => {
    const source = await freshDatabase(t, engine, 'cred');
    const target = await freshTargetDatabase(t, engine, 'cred_dst');
    await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, note text)', "INSERT INTO orders VALUES (1, 1, 'a')"]);
    const before = await sourceFingerprint(source);
    const file = await manifest(`  source: {engine: ${engine}, secretRef: {name: s}, acceptWritableRole: true}\n  target: {engine: ${engine}, secretRef: {name: t}}\n  schema: {createMissingTables: true}\n  tables: ${tables}\n`);
    const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
    assertRefused(t, run, reason, [source, target]);
    t.is(await scalar(target, engine === 'postgres'
      ? "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
      : 'SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()'), '0', 'nothing written to the target');
    t.deepEqual(fingerprintChanges(before, await sourceFingerprint(source)), []);
  });
}

// Finding 1 (in part): one MySQL account on one server reaches every schema, the source's
// among them: a target table qualified with the source's schema would upsert over the source.
test('MySQL on one server: a target table in another schema than the target database is refused', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'app');
  const target = await freshTargetDatabase(t, 'mysql', 'app_copy');
  const sourceDb = new URL(source).pathname.slice(1);
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(40))', "INSERT INTO orders VALUES (1, 'a'), (2, 'b')"]);
  const before = await sourceFingerprint(source);
  for (const tables of [
    `[{name: orders, target: ${sourceDb}.orders, columns: [{name: note, expression: "CONCAT('PWNED ', note)"}]}]`,
    `[{name: ${sourceDb}.orders}]`,
  ]) {
    const file = await manifest(`  source: {engine: mysql, secretRef: {name: s}, acceptWritableRole: true}\n  target: {engine: mysql, secretRef: {name: t}}\n  tables: ${tables}\n  strategy: {conflictPolicy: Upsert}\n`);
    for (const command of ['plan', 'run']) {
      const run = await dmctl([command, '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
      assertRefused(t, run, new RegExp(`the target table ${sourceDb}\\.orders is in schema ${sourceDb}, not the target database`), [source, target]);
    }
  }
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(source)), []);
});
