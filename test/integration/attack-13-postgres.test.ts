// Issue 13, an adversary's own attempts with PostgreSQL as the source (MariaDB as the target),
// beyond the hostile-sql suite: functions the attacker defined in the source beforehand and that a
// fragment calls (a VOLATILE SQL function that writes, PL/pgSQL that turns the transaction
// read-write, runs a program or writes a server file, and a look-alike of a built-in that
// PostgreSQL prefers for a varchar argument), views as the copied table, spellings of denied
// functions the scanner does not see as plain words (U&"…", "UPPER", pg_catalog . name),
// functions behind the refused credential catalogs, size and character limits, key and dedupe
// on expressions, and the same database reached through other URL spellings. Each attempt is
// refused by the plan naming its field, or runs harmlessly; the source's fingerprint (and the
// directory its server can write) is unchanged after every one.
import test from 'ava';
import pg from 'pg';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSession } from '../../src/engine/db/connect.ts';
import { freshDatabase } from '../support/databases.ts';
import { dmctl, errorOf } from '../support/dmctl.ts';
import { hostileCases, plantedEnvironment, sharedEnvironment, MARKERS, type HostileCase } from '../support/hostile.ts';
import { execSql, scalar } from '../support/sql.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';

const WHERE = /spec\.tables\[orders\]\.where: expected one SQL condition/;
const EXPRESSION = /spec\.tables\[orders\]\.columns\[note\]\.expression: expected one SQL scalar expression/;
const SOURCE_RULE = /spec\.validation\.rules\[hostile\]\.source: expected /;
/** The plan refused a fragment calling a function the attacker defined in the source. */
const DEFINED_FUNCTION = (field: RegExp): RegExp => new RegExp(`${field.source}.*function .* defined in the source database`);

const where = (title: string, text: string, expect: HostileCase['expect'] = { refused: WHERE }): HostileCase => ({ field: 'where', title, table: { where: text }, expect });
/** A computed column's type is unknown to createMissingTables: the target table comes from a migration, so an expression that passes really runs. */
const TARGET_TABLE = { schema: { migrations: [{ version: '1', description: 'orders', up: 'CREATE TABLE c$N_orders (id bigint PRIMARY KEY, customer int NOT NULL, note text, amount decimal(12,2), updated_at datetime NOT NULL)' }] } };
const expression = (title: string, text: string, expect: HostileCase['expect'] = { refused: EXPRESSION }): HostileCase => ({ field: 'expression', title, table: { columns: [{ name: 'note', expression: text }] }, spec: TARGET_TABLE, expect });
const sourceRule = (title: string, text: string, expect: HostileCase['expect'] = { refused: SOURCE_RULE }): HostileCase => ({
  field: 'rule source', title, spec: { validation: { rules: [{ name: 'hostile', source: text, expect: '1' }] } }, expect,
});

/**
 * What the attacker put in the source beforehand (as a role that owns nothing of the migration's):
 * functions a fragment can call by name. $DIR is the directory the server can write.
 */
const PLANTED = [
  'CREATE TABLE a13_people (id integer PRIMARY KEY, name varchar(40) NOT NULL)',
  "INSERT INTO a13_people SELECT g, 'Person ' || g FROM generate_series(1, 20) g",
  "CREATE FUNCTION a13_bump() RETURNS integer LANGUAGE sql VOLATILE AS $$UPDATE orders SET note = 'hijacked' WHERE id = 1 RETURNING 1$$",
  `CREATE FUNCTION a13_read_write() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
     BEGIN PERFORM set_config('transaction_read_only', 'off', true); DELETE FROM orders WHERE id = 2; RETURN true; END $$`,
  `CREATE FUNCTION a13_program() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
     BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('touch $DIR/program-ran'); RETURN true; END $$`,
  `CREATE FUNCTION a13_outfile() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
     BEGIN EXECUTE 'COPY (SELECT 1) TO ' || quote_literal('$DIR/outfile'); RETURN true; END $$`,
  // CVE-2018-1058's shape: for a varchar argument this is a better match than pg_catalog.lower(text),
  // so an innocent `lower(name)` in a manifest runs it.
  `CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
     BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('touch $DIR/copy-program'); RETURN pg_catalog.lower($1::text); END $$`,
  // Functional notation: orders.a13_attr is a13_attr(orders) when orders has no column of that name.
  `CREATE FUNCTION a13_attr(orders) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
     BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('touch $DIR/program-ran'); RETURN true; END $$`,
  'CREATE DOMAIN a13_dom AS text CHECK (VALUE IS NOT NULL AND a13_program())',
  // The same signature as the built-in: harmless while pg_catalog comes first, and refused all the same.
  'CREATE FUNCTION public.initcap(text) RETURNS text LANGUAGE sql AS $$SELECT pg_catalog.initcap($1)$$',
  'CREATE VIEW a13_next AS SELECT nextval(\'s\') AS n',
  'CREATE VIEW a13_orders_bumped AS SELECT o.*, a13_bump() AS bumped FROM orders o',
];

const CASES: HostileCase[] = [
  // Functions defined in the source: whatever they do runs with the migration's role.
  where('calls a source SQL function that UPDATEs', 'a13_bump() = 1', { refused: DEFINED_FUNCTION(WHERE) }),
  where('calls PL/pgSQL that turns the transaction read-write and DELETEs', 'a13_read_write()', { refused: DEFINED_FUNCTION(WHERE) }),
  where('calls PL/pgSQL that runs COPY TO PROGRAM', 'a13_program()', { refused: DEFINED_FUNCTION(WHERE) }),
  where('calls a schema-qualified PL/pgSQL that writes a server file', 'public.a13_outfile()', { refused: DEFINED_FUNCTION(WHERE) }),
  {
    field: 'where', title: 'an innocent lower(name) resolves to a planted public.lower(varchar)',
    tables: [{ name: 'a13_people', target: 'c$N_people', where: "lower(name) LIKE 'person%'" }],
    expect: { refused: DEFINED_FUNCTION(/spec\.tables\[a13_people\]\.where: expected one SQL condition/) },
  },
  { field: 'where', title: 'upper(name) on the same varchar column copies (control: no look-alike of upper)', tables: [{ name: 'a13_people', target: 'c$N_people', where: "upper(name) LIKE 'PERSON 1%'" }], expect: { ran: 0 } },
  where('functional notation: orders.a13_attr calls a13_attr(orders)', 'orders.a13_attr', { refused: DEFINED_FUNCTION(WHERE) }),
  where('functional notation in parentheses: (orders).a13_attr', '(orders).a13_attr', { refused: DEFINED_FUNCTION(WHERE) }),
  where('a cast to a domain whose CHECK runs COPY TO PROGRAM', "'x'::a13_dom IS NOT NULL", { refused: /spec\.tables\[orders\]\.where: .*the domain public\.a13_dom \(its CHECK calls a function\), defined in the source database/ }),
  where('a same-signature look-alike of a built-in (initcap)', "initcap(note) LIKE 'Order%'", { refused: DEFINED_FUNCTION(WHERE) }),
  expression('calls a source function in an expression', 'a13_bump()::text', { refused: DEFINED_FUNCTION(EXPRESSION) }),
  sourceRule('calls a source function in a rule', 'SELECT count(*) FROM orders WHERE a13_program()', { refused: DEFINED_FUNCTION(SOURCE_RULE) }),
  where('nextval through a view runs into the read-only transaction', 'id > (SELECT n FROM a13_next)', { ran: 1 }),

  // Denied functions spelled so that the scanner sees no plain word.
  where('pg_sleep as a Unicode-escaped name', 'U&"pg\\005fsleep"(0.01) IS NOT NULL'),
  where('set_config as an upper-case quoted name', '"SET_CONFIG"(\'default_transaction_read_only\', \'off\', false) = \'off\''),
  where('pg_advisory_lock qualified with spaces', 'pg_catalog . pg_advisory_lock ( 7 ) IS NOT NULL'),
  where('txid_current in a where', 'txid_current() > 0'),
  where('pg_current_xact_id assigns a transaction id', 'pg_current_xact_id() IS NOT NULL'),
  where('lo_import reads a server file into a large object', "lo_import('/etc/hostname') > 0"),
  where('dblink_exec writes through a connection of its own', "dblink_exec('dbname=postgres', 'DELETE FROM orders') = 'x'"),
  where('pg_ls_dir lists the data directory', "EXISTS (SELECT 1 FROM pg_ls_dir('.') f)"),
  where('pg_sleep as a table function', 'EXISTS (SELECT 1 FROM ROWS FROM (pg_sleep(0.01)))'),

  // The functions behind refused catalogs: other sessions' statements and the server's files.
  expression('other sessions\' statements through pg_stat_get_activity', '(SELECT string_agg(query, \';\') FROM pg_stat_get_activity(NULL))'),
  expression('another backend\'s statement through pg_stat_get_backend_activity', 'pg_stat_get_backend_activity(1)'),
  expression('the configuration files through pg_show_all_file_settings', '(SELECT string_agg(setting, \',\') FROM pg_show_all_file_settings())'),
  expression('pg_hba.conf through pg_hba_file_rules()', '(SELECT count(*) FROM pg_hba_file_rules())::text'),
  sourceRule('other sessions\' statements in a rule', 'SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE query LIKE \'%PASSWORD%\''),

  // Text the checker must read as the server does.
  where('an E-string with a backslash-escaped quote', "note = E'a\\' OR true) TO STDOUT; DELETE FROM orders; --'"),
  where('a hex-escaped quote stays inside its E-string (runs as data)', "note = E'\\x27) TO STDOUT; DELETE FROM orders; --'", { ran: 0 }),
  where('a dollar-quoted tag holding a parenthesis and a semicolon (runs as data)', 'note = $a13$); DELETE FROM orders; --$a13$', { ran: 0 }),
  where('a NUL byte', 'id > 0\u0000) TO STDOUT; DELETE FROM orders'),
  where('a right-to-left override hides the text\'s order', 'id > 0 \u202e--'),
  where('a condition nested 100 parentheses deep', `${'('.repeat(100)}id > 0${')'.repeat(100)}`),
  where('a WINDOW clause after the condition', 'true WINDOW w AS (ORDER BY id)'),
  where('GROUP BY after the condition', 'true GROUP BY id'),
  where('a temp table of the session (no CREATE in a read-only transaction)', 'EXISTS (SELECT 1 FROM pg_temp.a13_scratch)', { refused: /the source refuses the copy's query .*a13_scratch/ }),
  where('system column ctid, read only (control)', "ctid <> '(0,0)'", { ran: 0 }),

  sourceRule('VALUES calling pg_sleep', 'VALUES (pg_sleep(0.01))'),
  sourceRule('FOR NO KEY UPDATE in one arm of a UNION', '(SELECT 1) UNION (SELECT 1 FROM orders LIMIT 1 FOR NO KEY UPDATE)'),
  sourceRule('EXPLAIN ANALYZE runs the DELETE it explains', 'EXPLAIN ANALYZE DELETE FROM orders'),
  sourceRule('TABLE on a credentials catalog', 'TABLE pg_authid'),

  { field: 'key', title: 'a key on an expression', table: { key: ['lower(note)'] }, expect: { refused: /key column lower\(note\) is not a column/ } },
  { field: 'dedupe', title: 'dedupe by an expression', table: { dedupe: { by: ['customer + 0'], keep: 'first' } }, expect: { refused: /spec\.tables\[orders\]\.dedupe\.by\[0\]: .* is not a column of the source table/ } },
  { field: 'table name', title: 'a Cyrillic look-alike of orders', tables: [{ name: '\u043erders', target: 'lookalike' }], expect: { refused: /table \u043erders does not exist on the source/ } },
  { field: 'table name', title: 'a three-part name', tables: [{ name: 'other.public.orders', target: 'three' }], expect: { refused: /\.name: expected a table name or schema\.name; found 3 dot-separated parts/ } },
  { field: 'table name', title: 'a view whose rows call a writing function is no table to copy', tables: [{ name: 'a13_orders_bumped', target: 'bumped' }], expect: { refused: /table a13_orders_bumped does not exist on the source/ } },
  { field: 'table name', title: 'the schema-qualified table copies (control)', tables: [{ name: 'public.orders', target: 'qualified' }], expect: { ran: 0 } },
  { field: 'column name', title: 'a system column as a key', table: { key: ['xmin'] }, expect: { refused: /key column xmin is not a column/ } },
];

/** A manifest file copying `tables` from `from` to `to` (the source role accepted: a superuser on purpose). */
async function writeManifest(from: string, to: string, spec: Record<string, unknown>): Promise<{ file: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'attack-13-'));
  const file = join(dir, 'migration.yaml');
  await writeFile(file, JSON.stringify({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'attack-13', namespace: 'attack' },
    spec: { source: { engine: from, secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 'target' } }, schema: { createMissingTables: true }, ...spec },
  }));
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The shared environment with the attacker's objects in the source, fingerprinted after they were made. */
const environment = plantedEnvironment(sharedEnvironment('postgres', 'mysql'), PLANTED);

hostileCases('postgres', 'mysql', environment, CASES);

// The same database through URL spellings: refused (or unreachable) before anything is written.
for (const [title, spell, reason] of [
  ['a trailing slash (names another database)', (url: URL): void => { url.pathname = `${url.pathname}/`; }, /does not exist/],
  ['the host in upper case', (url: URL): void => { url.hostname = url.hostname.toUpperCase(); }, /same database/],
  ['localhost for 127.0.0.1', (url: URL): void => { url.hostname = url.hostname === '127.0.0.1' ? 'localhost' : '127.0.0.1'; }, /same database/],
  ['the postgresql: scheme', (url: URL): void => { url.protocol = 'postgresql:'; }, /same database/],
  ['?options= setting the search_path', (url: URL): void => { url.searchParams.set('options', '-c search_path=other'); }, /sets "options", which the engine sets itself/],
  ['the database name in upper case (another name to PostgreSQL)', (url: URL): void => { url.pathname = url.pathname.toUpperCase(); }, /does not exist/],
  ['?host= naming the same server', (url: URL): void => { url.searchParams.set('host', url.hostname); }, /same database/],
] as const) {
  test.serial(`postgres: the source database as the target through ${title} is refused`, async (t) => {
    const env = await environment();
    const url = new URL(env.source);
    spell(url);
    const manifest = await writeManifest('postgres', 'postgres', { tables: [{ name: 'orders', target: 'same_db_orders' }] });
    const run = await dmctl(['run', '-f', manifest.file], { DMO_SOURCE_URL: env.source, DMO_TARGET_URL: url.toString() }).finally(manifest.remove);
    const error = errorOf(run);
    t.not(run.code, 0, 'not run');
    t.regex(error, reason);
    t.false(error.includes(env.source), 'no URL in the message');
    t.deepEqual(fingerprintChanges(env.before, await sourceFingerprint(env.source, { files: MARKERS.map((name) => join(env.dir, name)) })), []);
  });
}

test.serial('postgres: a 1 MB where is refused before anything opens, naming the field', async (t) => {
  const env = await environment();
  const manifest = await writeManifest('postgres', 'mysql', { tables: [{ name: 'orders', target: 'huge', where: `id > 0${' AND id > 0'.repeat(100_000)}` }] });
  const run = await dmctl(['run', '-f', manifest.file], { DMO_SOURCE_URL: env.source, DMO_TARGET_URL: env.target }).finally(manifest.remove);
  const error = errorOf(run);
  t.is(run.code, 2, error.slice(0, 300));
  t.regex(error, /spec\.tables\[0\]\.where: Too long: at most 4096 characters/);
  t.true(error.length < 2000, 'the message does not repeat the megabyte');
  t.deepEqual(fingerprintChanges(env.before, await sourceFingerprint(env.source, { files: MARKERS.map((name) => join(env.dir, name)) })), []);
});

for (const plant of [
  {
    title: 'a comparison operator on varchar (the copy\'s keyset comparison would run it)',
    table: 'CREATE TABLE codes (code varchar(20) PRIMARY KEY, label text)',
    rows: "INSERT INTO codes SELECT 'c' || g, 'label ' || g FROM generate_series(1, 50) g",
    // For varchar keys PostgreSQL prefers this exact match to pg_catalog's text > text (CVE-2018-1058).
    // PL/pgSQL, so that the plan below shows the operator rather than an inlined body.
    objects: [
      'CREATE FUNCTION public.a13_gt(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN RETURN $1::text > $2::text; END$$',
      'CREATE OPERATOR public.> (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.a13_gt)',
    ],
    probe: "EXPLAIN (VERBOSE, COSTS OFF) SELECT code FROM codes WHERE code > 'c17'",
    chosen: /code > 'c17'::character varying|OPERATOR\(public\.>\)/,
    reason: /the source database defines public\.> \(character varying, character varying\), named like the built-in comparisons/,
  },
  {
    title: 'an array_to_string overload for integer[] (the checksums of an array column would run it)',
    table: 'CREATE TABLE codes (code integer PRIMARY KEY, tags integer[])',
    rows: 'INSERT INTO codes SELECT g, ARRAY[g, g + 1] FROM generate_series(1, 50) g',
    objects: ["CREATE FUNCTION public.array_to_string(integer[], text) RETURNS text LANGUAGE plpgsql AS $$BEGIN RETURN 'planted'; END$$"],
    probe: "SELECT array_to_string(tags, ',') FROM codes LIMIT 1",
    chosen: /planted/,
    reason: /the source database defines public\.array_to_string\(integer\[\], text\), named like the built-in comparisons and functions/,
  },
]) {
  test(`postgres: ${plant.title} refuses the migration`, async (t) => {
    const source = await freshDatabase(t, 'postgres', 'a13_plant_src');
    const target = await freshDatabase(t, 'mysql', 'a13_plant_dst');
    await execSql(source, [plant.table, plant.rows, ...plant.objects]);
    // The danger is real: the server picks the look-alike for what the engine would send.
    const session = await openSession(source, { readOnly: true });
    const probed = await session.query(plant.probe).finally(() => session.close());
    t.regex(probed.map((row) => String(Object.values(row)[0])).join('\n'), plant.chosen);
    const before = await sourceFingerprint(source);
    const manifest = await writeManifest('postgres', 'mysql', { tables: [{ name: 'codes' }] });
    try {
      for (const command of [['plan'], ['run'], ['step', 'copy'], ['validate']]) {
        const run = await dmctl([...command, '-f', manifest.file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
        t.is(run.code, 3, `${command.join(' ')}: ${errorOf(run)}`);
        t.regex(errorOf(run), plant.reason, command.join(' '));
      }
    } finally {
      await manifest.remove();
    }
    t.deepEqual(fingerprintChanges(before, await sourceFingerprint(source)), []);
    t.is(await scalar(target, "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'codes'"), '0', 'nothing created on the target');
  });
}

test('postgres: a database whose search_path puts look-alikes before pg_catalog: the engine\'s own SQL calls the built-ins, a fragment naming one is refused', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a13_path_src');
  const target = await freshDatabase(t, 'mysql', 'a13_path_dst');
  const dir = await mkdtemp(join(tmpdir(), 'a13-path-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o777); // the server runs as its own user
  const marker = join(dir, 'planted-ran');
  const database = decodeURIComponent(new URL(source).pathname.slice(1));
  const program = `EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || pg_catalog.quote_literal('touch ${marker}');`;
  await execSql(source, [
    'CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL)',
    "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 30) g",
    // Same signatures as the built-ins the engine's checksums and a manifest would call.
    `CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE plpgsql AS $$BEGIN ${program} RETURN pg_catalog.sha256($1); END$$`,
    `CREATE FUNCTION public.encode(bytea, text) RETURNS text LANGUAGE plpgsql AS $$BEGIN ${program} RETURN pg_catalog.encode($1, $2); END$$`,
    `CREATE FUNCTION public.upper(text) RETURNS text LANGUAGE plpgsql AS $$BEGIN ${program} RETURN pg_catalog.upper($1); END$$`,
    `ALTER DATABASE "${database.replaceAll('"', '""')}" SET search_path = public, pg_catalog`,
  ]);
  // The premise: a plain session of this database runs the look-alike.
  const plain = new pg.Client({ connectionString: source });
  await plain.connect();
  await plain.query("SELECT upper('x')").finally(() => plain.end());
  t.deepEqual(await readdir(dir), ['planted-ran'], 'a plain session ran the planted upper()');
  await rm(marker);
  // The engine's sessions put pg_catalog first.
  const session = await openSession(source, { readOnly: true });
  try {
    const [row] = await session.query("SELECT upper('x') AS v, current_setting('search_path') AS p");
    t.is(row?.v, 'X');
    t.is(row?.p, 'public', 'pg_catalog out of the list: searched first, implicitly');
  } finally {
    await session.close();
  }
  const before = await sourceFingerprint(source);
  const copy = await writeManifest('postgres', 'mysql', { tables: [{ name: 'orders' }], validation: { checksum: { mode: 'Full' } } });
  const run = await dmctl(['run', '-f', copy.file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target }).finally(copy.remove);
  // The checksums would call encode() and sha256(): the look-alikes are refused outright too.
  t.is(run.code, 3, errorOf(run));
  t.regex(errorOf(run), /the source database defines .*public\.sha256\(bytea\)/);
  const hostile = await writeManifest('postgres', 'mysql', { tables: [{ name: 'orders', target: 'upper_orders', where: "upper(note) LIKE 'ORDER%'" }] });
  const refused = await dmctl(['plan', '-f', hostile.file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target }).finally(hostile.remove);
  t.is(refused.code, 3, errorOf(refused));
  t.regex(errorOf(refused), /spec\.tables\[orders\]\.where: .*the function public\.upper\(\), defined in the source database/);
  t.deepEqual(await readdir(dir), [], 'no look-alike ran');
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(source)), []);
  // An empty search_path still makes a valid session.
  await execSql(source, [`ALTER DATABASE "${database.replaceAll('"', '""')}" SET search_path = ''`]);
  const empty = await openSession(source, { readOnly: true });
  t.is((await empty.query("SELECT upper('x') AS v").finally(() => empty.close()))[0]?.v, 'X');
});
