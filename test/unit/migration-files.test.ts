// Versioned migrations without a database: file naming, version order, checksums, the
// statement splitter and the checks made against the history before anything runs.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  compareVersions, migrationChecksum, migrationsFromInline, normalizeVersion, parseMigrationFileName, readMigrationDirectory,
} from '../../src/engine/migrations/files.ts';
import type { HistoryRow } from '../../src/engine/migrations/history.ts';
import { checkHistory, statementPreview } from '../../src/engine/migrations/migrate.ts';
import { mysqlLockName } from '../../src/engine/db/mysql/adapter.ts';
import { splitScript, splitStatements } from '../../src/engine/migrations/split.ts';

async function directory(t: ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'migrations-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

test('file names: V and U with dotted or underscored versions; underscores in descriptions become spaces', (t) => {
  t.deepEqual(parseMigrationFileName('V1__init.sql'), { kind: 'V', version: '1', description: 'init' });
  t.deepEqual(parseMigrationFileName('V1.2.3__add_orders_table.sql'), { kind: 'V', version: '1.2.3', description: 'add orders table' });
  t.deepEqual(parseMigrationFileName('U2024_01_15__drop_it.sql'), { kind: 'U', version: '2024.01.15', description: 'drop it' });
  t.is(parseMigrationFileName('README.md'), undefined);
  t.is(parseMigrationFileName('seed.sql'), undefined);
  t.is(parseMigrationFileName('Vendor.txt'), undefined);
  for (const bad of ['V1_init.sql', 'Vx__init.sql', 'V1__.sql', 'U__x.sql', 'V1.__x.sql']) {
    t.throws(() => parseMigrationFileName(bad), { message: new RegExp(`bad migration file name "${bad.replaceAll('.', '\\.')}"`) }, bad);
  }
});

test('versions sort numerically part by part; 1 and 1.0 are the same version', (t) => {
  t.true(compareVersions('1.10', '1.9') > 0);
  t.true(compareVersions('2', '1.999') > 0);
  t.true(compareVersions('1.2', '1.2.1') < 0);
  t.is(compareVersions('1', '1.0'), 0);
  t.is(compareVersions('01.2', '1_2'), 0);
  t.true(compareVersions('20240115000000000000001', '20240115000000000000000') > 0, 'beyond 2^53');
  const sorted = ['10', '1.10', '1.9', '2', '1', '1.1'].sort(compareVersions);
  t.deepEqual(sorted, ['1', '1.1', '1.9', '1.10', '2', '10']);
  t.is(normalizeVersion('3_1'), '3.1');
  t.throws(() => normalizeVersion('1.x'), { message: /invalid migration version "1\.x"/ });
});

test('checksum: sha256 hex, the same for CRLF and LF and for trailing whitespace; content changes it', (t) => {
  const lf = 'CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n';
  const checksum = migrationChecksum(lf);
  t.regex(checksum, /^[0-9a-f]{64}$/);
  t.is(migrationChecksum('CREATE TABLE a (id int);\r\nINSERT INTO a VALUES (1);\r\n\r\n  \t'), checksum);
  t.is(migrationChecksum('CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);'), checksum);
  t.not(migrationChecksum('CREATE TABLE a (id bigint);\nINSERT INTO a VALUES (1);'), checksum);
  t.not(migrationChecksum(' CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);'), checksum, 'leading whitespace counts');
});

test('directory: reads V and U files sorted by version, ignores other files, normalises checksums', async (t) => {
  const dir = await directory(t, {
    'V1__create_users.sql': 'CREATE TABLE users (id int);\r\n',
    'V1.10__late.sql': 'SELECT 110;',
    'V1.9__early.sql': 'SELECT 19;',
    'U1.9__undo_early.sql': 'SELECT -19;',
    'V2_1__with_underscores.sql': '\uFEFFSELECT 21;',
    'README.md': '# notes',
    'seed.sql': 'INSERT INTO users VALUES (1);',
    'notes.txt': 'V2 is important',
  });
  await mkdir(join(dir, 'V3__a_directory.sql'));
  const migrations = await readMigrationDirectory(dir);
  t.deepEqual(migrations.map((m) => [m.version, m.description, m.down !== undefined]), [
    ['1', 'create users', false], ['1.9', 'early', true], ['1.10', 'late', false], ['2.1', 'with underscores', false],
  ]);
  t.is(migrations[0]?.checksum, migrationChecksum('CREATE TABLE users (id int);'));
  t.is(migrations[1]?.down, 'SELECT -19;');
  t.is(migrations[3]?.up, 'SELECT 21;', 'a byte order mark is dropped');
});

test('directory: duplicate versions, an undo without its migration and bad names are all reported', async (t) => {
  const dir = await directory(t, {
    'V1__first.sql': 'SELECT 1;',
    'V1.0__same_version.sql': 'SELECT 1;',
    'U2__orphan.sql': 'SELECT 2;',
    'V3-bad.sql': 'SELECT 3;',
  });
  const error = await t.throwsAsync(readMigrationDirectory(dir));
  t.regex(error.message, /two migration files have the same version 1: V1\.0__same_version\.sql and V1__first\.sql/);
  t.regex(error.message, /undo file U2__orphan\.sql has no migration V2__<description>\.sql/);
  t.regex(error.message, /bad migration file name "V3-bad\.sql"/);
  const undo = await directory(t, { 'V1__a.sql': 'SELECT 1;', 'U1__a.sql': 'SELECT 1;', 'U1_0__b.sql': 'SELECT 1;' });
  await t.throwsAsync(readMigrationDirectory(undo), { message: /two undo files have the same version/ });
});

test('inline migrations: validated, sorted, checksummed; duplicates refused', (t) => {
  const migrations = migrationsFromInline([
    { version: '2', description: 'second', up: 'SELECT 2;', down: 'SELECT -2;' },
    { version: '1_5', up: 'SELECT 15;\r\n' },
  ]);
  t.deepEqual(migrations.map((m) => m.version), ['1.5', '2']);
  t.is(migrations[0]?.description, '');
  t.is(migrations[0]?.checksum, migrationChecksum('SELECT 15;'));
  t.is(migrations[1]?.down, 'SELECT -2;');
  t.throws(() => migrationsFromInline([{ version: '1', up: 'SELECT 1' }, { version: '1.0', up: 'SELECT 2' }]), { message: /two migrations have the same version/ });
  t.throws(() => migrationsFromInline([{ version: 'v1', up: 'SELECT 1' }]), { message: /invalid migration version "v1"/ });
  t.throws(() => migrationsFromInline([{ version: '1', up: '  ' }]), { message: /empty up script/ });
});

test('split: semicolons inside quotes stay; empty statements are dropped', (t) => {
  t.deepEqual(splitStatements("INSERT INTO t VALUES ('a;b', 'it''s;'); ;; SELECT \"x;y\" FROM t;", 'postgres'),
    ["INSERT INTO t VALUES ('a;b', 'it''s;')", 'SELECT "x;y" FROM t']);
  t.deepEqual(splitStatements("INSERT INTO t VALUES ('a\\';b', \"c;\\\"d\"); SELECT `we;ird` FROM t", 'mysql'),
    ["INSERT INTO t VALUES ('a\\';b', \"c;\\\"d\")", 'SELECT `we;ird` FROM t']);
  // PostgreSQL: a backslash escapes only in E'' strings.
  t.deepEqual(splitStatements("SELECT 'a\\'; SELECT E'b\\';c'; SELECT 1", 'postgres'), ["SELECT 'a\\'", "SELECT E'b\\';c'", 'SELECT 1']);
  t.deepEqual(splitStatements('  \n;\n  ', 'mysql'), []);
});

test('split: comments hide delimiters; comment-only statements are dropped; lines are counted', (t) => {
  const script = [
    '-- create things; carefully',
    'CREATE TABLE a (id int); /* a; b',
    '   still a comment; */',
    'CREATE TABLE b (id int -- trailing; comment',
    ');',
    '/* only a comment; */ ;',
    '# mysql comment; here',
    'SELECT 1',
  ].join('\n');
  t.deepEqual(splitScript(script, 'mysql'), [
    { text: 'CREATE TABLE a (id int)', line: 2 },
    { text: 'CREATE TABLE b (id int -- trailing; comment\n)', line: 4 },
    { text: 'SELECT 1', line: 8 },
  ]);
  // MySQL needs whitespace after "--"; on PostgreSQL "--" always starts a comment, and "#" does not.
  t.deepEqual(splitStatements('SELECT 1--1; SELECT 2', 'mysql'), ['SELECT 1--1', 'SELECT 2']);
  t.deepEqual(splitStatements('SELECT 1--1; SELECT 2\n;SELECT 3', 'postgres'), ['SELECT 1', 'SELECT 3']);
  t.deepEqual(splitStatements('SELECT 2 # 1; SELECT 3', 'postgres'), ['SELECT 2 # 1', 'SELECT 3']);
  // Nested block comments on PostgreSQL.
  t.deepEqual(splitStatements('/* a /* b; */ c; */ SELECT 1; SELECT 2', 'postgres'), ['SELECT 1', 'SELECT 2']);
  // MySQL executable comments are part of the statement.
  t.deepEqual(splitStatements('/*!40101 SET NAMES utf8mb4 */; SELECT 1', 'mysql'), ['/*!40101 SET NAMES utf8mb4 */', 'SELECT 1']);
});

test('split: PostgreSQL dollar quotes, tagged and untagged, around a function body', (t) => {
  const fn = [
    'CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$',
    'BEGIN',
    "  NEW.note := $$it's; fine$$ || ';';",
    '  RETURN NEW;',
    'END;',
    '$body$',
  ].join('\n');
  t.deepEqual(splitStatements(`${fn};\nDO $$ BEGIN PERFORM 1; END $$;\nSELECT $1, a$b$c FROM t`, 'postgres'), [fn, 'DO $$ BEGIN PERFORM 1; END $$', 'SELECT $1, a$b$c FROM t']);
  // On MySQL a dollar sign is nothing special.
  t.deepEqual(splitStatements('SELECT $$; SELECT 2', 'mysql'), ['SELECT $$', 'SELECT 2']);
});

test('split: MySQL DELIMITER lines change the delimiter around a procedure body and are not statements', (t) => {
  const procedure = [
    'CREATE PROCEDURE add_user(IN name varchar(50))',
    'BEGIN',
    "  INSERT INTO users (name) VALUES (name);",
    "  SELECT 'done; really' AS result;",
    'END',
  ].join('\n');
  const script = [
    'CREATE TABLE users (id int AUTO_INCREMENT PRIMARY KEY, name varchar(50));',
    'DELIMITER //',
    `${procedure} //`,
    'CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW BEGIN SET NEW.name = TRIM(NEW.name); END//',
    'delimiter ;',
    'CALL add_user(\'ann\');',
    '  DELIMITER $$',
    'SELECT 1$$',
    'DELIMITER ;',
  ].join('\n');
  t.deepEqual(splitScript(script, 'mysql'), [
    { text: 'CREATE TABLE users (id int AUTO_INCREMENT PRIMARY KEY, name varchar(50))', line: 1 },
    { text: procedure, line: 3 },
    { text: 'CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW BEGIN SET NEW.name = TRIM(NEW.name); END', line: 8 },
    { text: "CALL add_user('ann')", line: 10 },
    { text: 'SELECT 1', line: 12 },
  ]);
});

test('split: an unterminated quote, comment or dollar quote is an error naming its line', (t) => {
  t.throws(() => splitStatements("SELECT 1;\nSELECT 'oops;", 'postgres'), { message: 'unterminated string starting on line 2' });
  t.throws(() => splitStatements('SELECT 1; /* never closed', 'mysql'), { message: 'unterminated comment starting on line 1' });
  t.throws(() => splitStatements('\n\nDO $x$ BEGIN END $y$', 'postgres'), { message: 'unterminated dollar quote $x$ starting on line 3' });
  t.throws(() => splitStatements('SELECT `a', 'mysql'), { message: /unterminated quoted identifier/ });
});

function row(version: string, checksum: string, success = true): HistoryRow {
  return { version, description: `v${version}`, checksum, installedBy: 'me', installedOn: '2024-01-01 00:00:00', executionMs: 1, success };
}

test('history check: an edited migration is refused with both checksums; missing and failed ones too', (t) => {
  const migrations = migrationsFromInline([{ version: '1', up: 'SELECT 1' }, { version: '2', up: 'SELECT 2' }]);
  const [one, two] = migrations.map((m) => m.checksum);
  const context = { engine: 'mysql' as const, table: 'hist', repairSql: (v: string) => `DELETE FROM hist WHERE version = '${v}'` };
  t.notThrows(() => { checkHistory([row('1', one ?? ''), row('2', two ?? '')], migrations, context); });
  t.throws(() => { checkHistory([row('1', one ?? ''), row('2', 'abc')], migrations, context); },
    { message: `migration 2 was changed after it was applied: applied checksum abc, file checksum ${two ?? ''}` });
  t.throws(() => { checkHistory([row('1', one ?? ''), row('3', 'x')], migrations, context); }, { message: /migration 3 \(v3\) is applied in the database \(hist\) but is not among the migrations/ });
  t.throws(() => { checkHistory([row('1', one ?? ''), row('2', two ?? '', false)], migrations, context); },
    { message: /migration 2 \(v2\) failed .* Repair the schema by hand .* DELETE FROM hist WHERE version = '2'/ });
});

test('statement previews are one line of at most 200 characters; long MySQL lock names are hashed', (t) => {
  t.is(statementPreview('SELECT\n  1,\n\t2'), 'SELECT 1, 2');
  const long = `SELECT ${'x'.repeat(300)}`;
  t.is(statementPreview(long), `${long.slice(0, 200)}…`);
  t.is(mysqlLockName('short'), 'short');
  const hashed = mysqlLockName(`dataops_migrate:${'d'.repeat(64)}.history`);
  t.is(hashed.length, 64);
  t.not(hashed, mysqlLockName(`dataops_migrate:${'d'.repeat(64)}.history2`));
});
