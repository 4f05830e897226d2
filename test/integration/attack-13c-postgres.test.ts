// Issue 13, code the source database defines that runs with no fragment naming it, while the engine
// reads the copied tables (PostgreSQL as the source): a CREATE CAST from a column's type with a
// function of the database's (the checksums cast ::text), row-level security policies calling
// such a function (for a role they apply to, and through a view a policy reads), a base type's
// I/O functions and a domain's CHECK on a copied column (also inside arrays and composites), a
// view a where reads; and what does not run: event triggers (the engine runs no DDL on the
// source), extension types (citext, hstore) copy as before. Also a heavy but legal rule ends
// within DMO_RULE_TIMEOUT_SECONDS. Each refusal is exit 3 in every step, naming the table,
// column and object; the source's fingerprint and the directory its server can write are unchanged.
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, freshTargetDatabase, testAccount } from '../support/databases.ts';
import { dmctl, errorOf } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';

/** A manifest file (the source role accepted whatever it is: a superuser on purpose in most tests). */
async function writeManifest(t: ExecutionContext, to: 'mysql' | 'postgres', spec: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attack-13c-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'migration.yaml');
  await writeFile(file, JSON.stringify({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'attack-13c', namespace: 'attack' },
    spec: { source: { engine: 'postgres', secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 'target' } }, schema: { createMissingTables: true }, ...spec },
  }));
  return file;
}

/** A directory the server can write into, and a PL/pgSQL statement that touches `name` there. */
async function markerDir(t: ExecutionContext): Promise<{ dir: string; touch: (name: string) => string }> {
  const dir = await mkdtemp(join(tmpdir(), 'a13c-marker-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o777); // the server runs as its own user
  // The program reads its input: a COPY into one that does not can fail with a broken pipe.
  return { dir, touch: (name) => `EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || pg_catalog.quote_literal('cat > /dev/null; touch ${join(dir, name)}');` };
}

/**
 * Every step refuses (exit 3) with a message matching each pattern; nothing changed on the source
 * (fingerprinted through `admin`, a superuser: row-level security would run the policies).
 */
async function refusedEverywhere(t: ExecutionContext, source: string, target: string, file: string, reasons: readonly RegExp[], dir: string, admin = source): Promise<void> {
  const before = await sourceFingerprint(admin);
  for (const command of [['plan'], ['run'], ['step', 'copy'], ['validate']]) {
    const run = await dmctl([...command, '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
    t.is(run.code, 3, `${command.join(' ')}: ${errorOf(run)}`);
    for (const reason of reasons) t.regex(errorOf(run), reason, command.join(' '));
    t.regex(errorOf(run), /drop it, or move it into an extension/, 'says how to fix it');
  }
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(admin)), []);
  t.deepEqual(await readdir(dir), [], 'no code of the database\'s ran');
}

/** A login with SELECT on the source's tables only: row-level security applies to it. */
async function reader(t: ExecutionContext, source: string): Promise<string> {
  const account = await testAccount(t, 'postgres', { prefix: 'a13c_reader' });
  await account.grantOn(source, [`GRANT USAGE ON SCHEMA public TO ${account.name}`, `GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${account.name}`]);
  return account.urlFor(source);
}

test('postgres: a CREATE CAST (integer AS text) with a function of the database\'s is refused in every step, superuser or not', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a13c_cast_src');
  const target = await freshDatabase(t, 'mysql', 'a13c_cast_dst');
  const { dir, touch } = await markerDir(t);
  await execSql(source, [
    'CREATE TABLE codes (id integer PRIMARY KEY, label text NOT NULL)',
    "INSERT INTO codes SELECT g, 'label ' || g FROM generate_series(1, 40) g",
    // $1::varchar is no cast of pg_cast's (I/O conversion): no recursion.
    `CREATE FUNCTION a13c_int_text(integer) RETURNS text LANGUAGE plpgsql AS $$BEGIN ${touch('cast-ran')} RETURN $1::varchar; END$$`,
    'CREATE CAST (integer AS text) WITH FUNCTION a13c_int_text(integer)',
  ]);
  // The premise: an innocent ::text on an integer column runs it.
  t.is(await scalar(source, 'SELECT id::text FROM codes WHERE id = 1'), '1');
  t.deepEqual(await readdir(dir), ['cast-ran']);
  await rm(join(dir, 'cast-ran'));
  const file = await writeManifest(t, 'mysql', { tables: [{ name: 'codes' }], validation: { checksum: { mode: 'Full' } } });
  const reason = /the source database: the cast \(integer AS text\) WITH FUNCTION (public\.)?a13c_int_text\(integer\) \(table codes, column id\), defined in the source database/;
  await refusedEverywhere(t, source, target, file, [reason], dir);
  await refusedEverywhere(t, await reader(t, source), target, file, [reason], dir, source);
});

test('postgres: row-level security policies calling a function of the database\'s are refused for a role they apply to, and pass for a superuser', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a13c_rls_src');
  const target = await freshDatabase(t, 'mysql', 'a13c_rls_dst');
  const { dir, touch } = await markerDir(t);
  await execSql(source, [
    'CREATE TABLE docs (id integer PRIMARY KEY, owner text NOT NULL)',
    "INSERT INTO docs SELECT g, 'owner ' || g FROM generate_series(1, 30) g",
    'CREATE TABLE acl (id integer PRIMARY KEY)',
    'INSERT INTO acl SELECT g FROM generate_series(1, 30) g',
    'CREATE TABLE docs2 (id integer PRIMARY KEY)',
    'INSERT INTO docs2 SELECT g FROM generate_series(1, 30) g',
    // SECURITY DEFINER, owned by the superuser: what the policy runs may run programs whoever reads.
    `CREATE FUNCTION a13c_visible(text) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN ${touch('policy-ran')} RETURN true; END$$`,
    'CREATE VIEW acl_visible AS SELECT id FROM acl WHERE a13c_visible(\'v\')',
    'ALTER TABLE docs ENABLE ROW LEVEL SECURITY',
    'CREATE POLICY p ON docs FOR SELECT USING (a13c_visible(owner))',
    'ALTER TABLE docs2 ENABLE ROW LEVEL SECURITY',
    // The policy calls nothing itself: the view it reads does.
    'CREATE POLICY p2 ON docs2 USING (id IN (SELECT id FROM acl_visible))',
  ]);
  const readerUrl = await reader(t, source);
  // The premise: a plain read as the reader runs the policy's function.
  const plain = new pg.Client({ connectionString: readerUrl });
  await plain.connect();
  await plain.query('SELECT count(*) FROM docs').finally(() => plain.end());
  t.deepEqual(await readdir(dir), ['policy-ran']);
  await rm(join(dir, 'policy-ran'));
  const file = await writeManifest(t, 'mysql', { tables: [{ name: 'docs' }, { name: 'docs2' }] });
  await refusedEverywhere(t, readerUrl, target, file, [
    /table docs: policy p on table docs \(row-level security applies to the source role\) calls (public\.)?a13c_visible\(text\), defined in the source database/,
    /table docs2: rule _RETURN on view acl_visible calls (public\.)?a13c_visible\(text\)/,
  ], dir, source);
  // A superuser bypasses row-level security: nothing of the policies runs, the copy goes ahead.
  const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
  t.is(run.code, 0, errorOf(run));
  t.is(await scalar(target, 'SELECT count(*) FROM docs'), '30');
  t.deepEqual(await readdir(dir), [], 'the policies did not run');
});

test('postgres: a copied column of a base type or domain whose functions or CHECK are the database\'s is refused, in arrays and composites too', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a13c_type_src');
  const target = await freshDatabase(t, 'mysql', 'a13c_type_dst');
  const { dir, touch } = await markerDir(t);
  await execSql(source, [
    // A base type's I/O must be C: wrappers of the built-in text functions, made in this database.
    'CREATE TYPE a13c_t',
    "CREATE FUNCTION a13c_t_in(cstring) RETURNS a13c_t AS 'textin' LANGUAGE internal IMMUTABLE STRICT",
    "CREATE FUNCTION a13c_t_out(a13c_t) RETURNS cstring AS 'textout' LANGUAGE internal IMMUTABLE STRICT",
    'CREATE TYPE a13c_t (INPUT = a13c_t_in, OUTPUT = a13c_t_out, LIKE = text)',
    'CREATE TABLE gadgets (id integer PRIMARY KEY, tag a13c_t)',
    "INSERT INTO gadgets VALUES (1, 'a'), (2, 'b')",
    `CREATE FUNCTION a13c_check(text) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN ${touch('check-ran')} RETURN true; END$$`,
    'CREATE DOMAIN a13c_dom AS text CHECK (a13c_check(VALUE))',
    'CREATE TABLE labels (id integer PRIMARY KEY, label a13c_dom NOT NULL)',
    'CREATE TYPE a13c_pair AS (x integer, d a13c_dom)',
    'CREATE TABLE pairs (id integer PRIMARY KEY, p a13c_pair[])',
  ]);
  await execSql(source, ["INSERT INTO labels SELECT g, 'label ' || g FROM generate_series(1, 20) g"]);
  await rm(join(dir, 'check-ran'), { force: true });
  const labels = await writeManifest(t, 'mysql', { tables: [{ name: 'labels' }] });
  await refusedEverywhere(t, source, target, labels, [/table labels, column label: the domain a13c_dom \(its CHECK a13c_dom_check calls (public\.)?a13c_check\(text\)\)/], dir);
  const file = await writeManifest(t, 'mysql', { tables: [{ name: 'gadgets', columns: [{ name: 'tag', skip: true }] }, { name: 'pairs' }] });
  const run = await dmctl(['plan', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
  t.is(run.code, 3, errorOf(run));
  t.regex(errorOf(run), /table gadgets, column tag: the type a13c_t \(its (in|out)put function (public\.)?a13c_t_(in|out)\((cstring|a13c_t)\)\)/);
  t.regex(errorOf(run), /table pairs, column p: the domain a13c_dom \(its CHECK a13c_dom_check calls/);
});

test('postgres: a where or a rule reading a view whose definition calls a function of the database\'s is refused', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a13c_view_src');
  const target = await freshDatabase(t, 'mysql', 'a13c_view_dst');
  const { dir, touch } = await markerDir(t);
  await execSql(source, [
    'CREATE TABLE orders (id integer PRIMARY KEY, note text NOT NULL)',
    "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 40) g",
    `CREATE FUNCTION a13c_program() RETURNS boolean LANGUAGE plpgsql AS $$BEGIN ${touch('view-ran')} RETURN true; END$$`,
    'CREATE VIEW a13c_chosen AS SELECT id FROM orders WHERE a13c_program()',
  ]);
  const where = await writeManifest(t, 'mysql', { tables: [{ name: 'orders', where: 'id IN (SELECT id FROM public.a13c_chosen)' }] });
  await refusedEverywhere(t, source, target, where, [/the relation "public"\."a13c_chosen" a fragment reads: rule _RETURN on view a13c_chosen calls (public\.)?a13c_program\(\)/], dir);
  const rule = await writeManifest(t, 'mysql', { tables: [{ name: 'orders' }], validation: { rules: [{ name: 'chosen', source: 'WITH c AS (SELECT * FROM a13c_chosen) SELECT count(*) FROM c', expect: '40' }] } });
  await refusedEverywhere(t, source, target, rule, [/the relation "a13c_chosen" a fragment reads: rule _RETURN on view a13c_chosen calls/], dir);
});

test('postgres: event triggers do not fire for the engine (it runs no DDL on the source), and extension types copy', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a13c_ext_src');
  const target = await freshTargetDatabase(t, 'postgres', 'a13c_ext_dst');
  const { dir, touch } = await markerDir(t);
  await execSql(source, [
    'CREATE EXTENSION citext',
    'CREATE EXTENSION hstore',
    'CREATE TABLE tagged (id integer PRIMARY KEY, name citext NOT NULL, attrs hstore, names citext[])',
    "INSERT INTO tagged SELECT g, 'Name ' || g, hstore('k', g::text), ARRAY['A' || g]::citext[] FROM generate_series(1, 25) g",
    `CREATE FUNCTION a13c_on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN ${touch('ddl-ran')} END$$`,
    'CREATE EVENT TRIGGER a13c_ddl ON ddl_command_start EXECUTE FUNCTION a13c_on_ddl()',
    'CREATE EVENT TRIGGER a13c_drop ON sql_drop EXECUTE FUNCTION a13c_on_ddl()',
  ]);
  // The premise: DDL in this database runs it.
  await execSql(source, ['CREATE TABLE premise (x integer)']);
  t.deepEqual(await readdir(dir), ['ddl-ran']);
  await rm(join(dir, 'ddl-ran'));
  await execSql(target, ['CREATE EXTENSION citext', 'CREATE EXTENSION hstore']);
  const before = await sourceFingerprint(source);
  const file = await writeManifest(t, 'postgres', { tables: [{ name: 'tagged' }], validation: { checksum: { mode: 'Full' }, rules: [{ name: 'names', source: "SELECT count(*) FROM tagged WHERE name = 'name 1'", expect: '1' }] } });
  const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
  t.is(run.code, 0, errorOf(run));
  t.is(await scalar(target, "SELECT count(*) FROM tagged WHERE name = 'NAME 7' AND attrs -> 'k' = '7'"), '1');
  t.deepEqual(await readdir(dir), [], 'no event trigger fired');
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(source)), []);
});

test('postgres: a heavy but legal rule stops on the server within DMO_RULE_TIMEOUT_SECONDS', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a13c_slow_src');
  const target = await freshDatabase(t, 'mysql', 'a13c_slow_dst');
  await execSql(source, ['CREATE TABLE orders (id integer PRIMARY KEY)', 'INSERT INTO orders SELECT g FROM generate_series(1, 300) g']);
  // 300^5 rows of a cross join: hours of CPU, no disk (generate_series would spill to a tuplestore).
  const file = await writeManifest(t, 'mysql', { tables: [{ name: 'orders' }], validation: { rules: [{ name: 'heavy', source: 'SELECT count(*) FROM orders a, orders b, orders c, orders d, orders e', expect: '1' }] } });
  const started = Date.now();
  const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target, DMO_RULE_TIMEOUT_SECONDS: '2' }, () => Promise.resolve(Date.now() - started > 120_000));
  t.is(run.signal, null, 'dmctl ended by itself');
  t.not(run.code, 0);
  t.regex(JSON.stringify(run.events), /heavy.*the query ran longer than 2 s, the bound on a rule's query \(DMO_RULE_TIMEOUT_SECONDS\)/);
  t.is(await scalar(source, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%orders a, orders b%' AND pid <> pg_backend_pid()"), '0', 'nothing left running on the source');
});
