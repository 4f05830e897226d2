// Hostile manifests, MariaDB as the source (PostgreSQL as the target): every manifest field that
// reaches SQL, attacked as an attacker would (closing parentheses and quotes, comments, `/*!`
// executable comments, stacked statements, transaction control, settings, side-effecting
// functions, INTO OUTFILE/DUMPFILE into a directory the server can write). Each attempt is
// refused by the plan (exit 3, naming the field) or runs harmlessly, and the source (owned by
// root, with FILE, so only the project's guards stop the writes) is unchanged after every one.
// Then the layers below the parser, each alone: with the fragment check bypassed, the statement
// guard, the read-only transaction and the one-statement protocol still refuse.
import test from 'ava';
import { join } from 'node:path';
import { beginMysqlSnapshot, mysqlRowBlocks } from '../../src/engine/copy/sources.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { connectMysqlCore } from '../../src/engine/db/mysql/connection.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import { freshDatabase } from '../support/databases.ts';
import { assertUnchanged, countByField, hostileCases, sharedEnvironment, type HostileCase } from '../support/hostile.ts';
import { execSql } from '../support/sql.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';

const WHERE = /spec\.tables\[orders\]\.where: expected one SQL condition/;
const EXPRESSION = /spec\.tables\[orders\]\.columns\[note\]\.expression: expected one SQL scalar expression/;
const DEFAULT = /spec\.tables\[orders\]\.columns\[note\]\.default: expected /;
const SOURCE_RULE = /spec\.validation\.rules\[hostile\]\.source: expected /;
const TARGET_RULE = /spec\.validation\.rules\[hostile\]\.target: expected /;
const where = (title: string, text: string): HostileCase => ({ field: 'where', title, table: { where: text }, expect: { refused: WHERE } });
const expression = (title: string, text: string): HostileCase => ({ field: 'expression', title, table: { columns: [{ name: 'note', expression: text }] }, expect: { refused: EXPRESSION } });
const fallback = (title: string, text: string): HostileCase => ({ field: 'default', title, table: { columns: [{ name: 'note', default: text }] }, expect: { refused: DEFAULT } });
const rule = (field: 'rule source' | 'rule target', title: string, text: string, expect: HostileCase['expect'] = { refused: field === 'rule source' ? SOURCE_RULE : TARGET_RULE }): HostileCase => ({
  field, title, spec: { validation: { rules: [{ name: 'hostile', [field === 'rule source' ? 'source' : 'target']: text, expect: '1' }] } }, expect,
});

const CASES: HostileCase[] = [
  where('a stacked DELETE', '1=1; DELETE FROM orders'),
  where('stacked SET SESSION TRANSACTION READ WRITE, then a DELETE', '1=1; SET SESSION TRANSACTION READ WRITE; DELETE FROM orders'),
  where('closes the parentheses, UNION … INTO OUTFILE', "1=1) UNION SELECT 1, 2, 3, 4, 5 INTO OUTFILE '$DIR/outfile' -- "),
  where('INTO OUTFILE after the condition', "id > 0 INTO OUTFILE '$DIR/outfile'"),
  where('an executable /*! comment closing the parenthesis', "id > 0 /*!50000 ) INTO OUTFILE '$DIR/version-comment' -- */"),
  where('a # comment swallows the rest', 'id > 0) OR (1=1 # '),
  where('a backslash-escaped quote ends the string elsewhere', "note = 'a\\' OR 1=1) INTO DUMPFILE '$DIR/dumpfile' -- '"),
  where('GET_LOCK held by the source session', "GET_LOCK('hostile', 0) = 1"),
  where('a sleep per row', 'SLEEP(0.01) = 0'),
  where('a user variable assignment', '(@a := 1) = 1'),
  where('a locking read in a subquery', 'id IN (SELECT id FROM orders FOR UPDATE)'),
  where('LOCK IN SHARE MODE', 'id > 0 LOCK IN SHARE MODE'),
  where('NEXTVAL moves a sequence', 'NEXTVAL(s) > 0'),
  where('reads a server file', "LOAD_FILE('/etc/hostname') IS NOT NULL"),
  where('BENCHMARK burns the server', "BENCHMARK(1000000, MD5('x')) = 0"),
  where('reads the credential table', 'EXISTS (SELECT 1 FROM mysql.user)'),
  { field: 'where', title: 'an ordinary filter runs (control)', table: { where: "customer > 1 AND note LIKE 'order%'" }, expect: { ran: 0 } },

  expression('closes the select, INTO OUTFILE', "note) FROM orders INTO OUTFILE '$DIR/outfile' -- "),
  expression('INTO DUMPFILE after the value', "note INTO DUMPFILE '$DIR/dumpfile'"),
  expression('SELECT … INTO @variable in a subquery', '(SELECT note INTO @x FROM orders LIMIT 1)'),
  expression('LAST_INSERT_ID(expr) sets session state', 'LAST_INSERT_ID(5)'),
  expression('SETVAL moves a sequence', 'SETVAL(s, 1000)'),
  expression('copies password hashes out', 'CONCAT(note, (SELECT authentication_string FROM mysql.user LIMIT 1))'),
  expression('an executable comment adds a subquery with OUTFILE', "note /*!50000 , (SELECT 1 INTO OUTFILE '$DIR/version-comment') */"),
  expression('a stacked statement after the value', 'note; DELETE FROM orders'),
  {
    field: 'expression', title: 'an ordinary expression runs (control)', table: { columns: [{ name: 'note', expression: "CONCAT(UPPER(note), ' ok')" }] }, expect: { ran: 0 },
    // A computed column's type is unknown to createMissingTables: the target table comes from a migration.
    spec: { schema: { migrations: [{ version: '1', description: 'orders', up: 'CREATE TABLE c$N_orders (id bigint PRIMARY KEY, customer integer NOT NULL, note text, amount numeric(12,2), updated_at timestamp NOT NULL)' }] } },
  },

  fallback('closes COALESCE and stacks a DELETE', "'x'); DELETE FROM orders; SELECT ('x'"),
  fallback('SLEEP as a default', 'SLEEP(1)'),
  fallback('a subquery as a default', '(SELECT COUNT(*) FROM orders)'),
  { field: 'default', title: 'a quoted literal with a doubled quote runs (control)', table: { columns: [{ name: 'note', default: "'it''s fine'" }] }, expect: { ran: 0 } },

  { field: 'dedupe', title: 'a by column that closes its backtick', table: { dedupe: { by: ['note`); DELETE FROM orders; --'], keep: 'first' } }, expect: { refused: /spec\.tables\[orders\]\.dedupe\.by\[0\]: .* is not a column of the source table/ } },
  { field: 'dedupe', title: 'an orderBy with INTO OUTFILE', table: { dedupe: { by: ['customer'], keep: 'latest', orderBy: "updated_at INTO OUTFILE '$DIR/outfile'" } }, expect: { refused: /spec\.tables\[orders\]\.dedupe\.orderBy: .* is not a column of the source table/ } },
  { field: 'dedupe', title: 'ordinary dedupe runs (control)', table: { dedupe: { by: ['customer'], keep: 'latest', orderBy: 'updated_at' } }, expect: { ran: 0 } },

  { field: 'key', title: 'a key column that closes its backtick', table: { key: ['id`) INTO OUTFILE \'/tmp/x\' --'] }, expect: { refused: /key column id`\) INTO OUTFILE '\/tmp\/x' -- is not a column/ } },
  { field: 'key', title: 'a key column ending in a space (MySQL would ignore it)', table: { key: ['id '] }, expect: { refused: /spec\.tables\[orders\]\.key\[0\]: expected a MySQL name .*ending in a space/ } },
  { field: 'key', title: 'a second key column smuggling a condition', table: { key: ['id', 'customer` > 0 OR `id'] }, expect: { refused: /key column customer` > 0 OR `id is not a column/ } },

  { field: 'table name', title: 'a table name that closes its backtick', tables: [{ name: 'orders`; DELETE FROM orders; -- ', target: 'stolen' }], expect: { refused: /\.name: expected a MySQL name of 1 to 64 characters; found a name ending in a space/ } },
  { field: 'table name', title: 'a table name with a stacked statement', tables: [{ name: 'orders`; DELETE FROM `orders', target: 'stolen' }], expect: { refused: /table orders`; DELETE FROM `orders does not exist on the source/ } },
  { field: 'table name', title: 'a NUL in the table name', tables: [{ name: 'orders\u0000; DROP TABLE orders', target: 'nul' }], expect: { refused: /\.name: expected .*; found a NUL character/ } },
  { field: 'table name', title: 'a real table named with a quote, a semicolon and a parenthesis copies as data (control)', tables: [{ name: "we'ird; name", target: 'weird_copy' }], expect: { ran: 0 } },

  { field: 'column name', title: 'a new column named to close its backtick', table: { columns: [{ name: 'note`); DELETE FROM orders; #', expression: "'x'" }] }, expect: { refused: /has no column note`\); DELETE FROM orders; #/ } },
  { field: 'column name', title: 'a character MySQL names cannot hold', table: { columns: [{ name: 'note😀', expression: "'x'" }] }, expect: { refused: /spec\.tables\[orders\]\.columns\[.*\]\.name: expected a MySQL name .*Basic Multilingual Plane/ } },
  { field: 'column name', title: 'a target column named like SQL is created as that name (control)', table: { columns: [{ name: 'note', target: 'no"te`); DROP TABLE orders; --' }] }, expect: { ran: 0 } },

  { field: 'incremental column', title: 'an incremental column that closes its backtick', spec: { strategy: { type: 'Trickle', batchSize: 1000, parallelism: 1, incremental: { column: "updated_at` > '2000-01-01' INTO OUTFILE '/tmp/x' -- ", mode: 'Timestamp' } } }, expect: { refused: /spec\.strategy\.incremental\.column: expected a MySQL name .*ending in a space/ } },
  { field: 'incremental column', title: 'an incremental column with a stacked statement', spec: { strategy: { type: 'Trickle', batchSize: 1000, parallelism: 1, incremental: { column: 'updated_at`; DELETE FROM `orders', mode: 'Timestamp' } } }, expect: { ran: 3, message: /has no column updated_at`; DELETE FROM `orders \(strategy\.incremental\.column\)/ } },

  rule('rule source', 'a stacked DELETE', 'SELECT 1; DELETE FROM orders'),
  rule('rule source', 'SET SESSION TRANSACTION READ WRITE', 'SET SESSION TRANSACTION READ WRITE'),
  rule('rule source', 'INTO OUTFILE', "SELECT 1 INTO OUTFILE '$DIR/rule-outfile'"),
  rule('rule source', 'INTO DUMPFILE', "SELECT note FROM orders LIMIT 1 INTO DUMPFILE '$DIR/dumpfile'"),
  rule('rule source', 'GET_LOCK', "SELECT GET_LOCK('hostile', 0)"),
  rule('rule source', 'SLEEP', 'SELECT SLEEP(0.1)'),
  rule('rule source', 'an executable comment with INTO OUTFILE', "SELECT 1 /*!50000 INTO OUTFILE '$DIR/version-comment' */"),
  rule('rule source', 'an executable comment holding a DELETE', '/*!50000 DELETE FROM orders */ SELECT 1'),
  rule('rule source', 'DO SLEEP', 'DO SLEEP(1)'),
  rule('rule source', 'a locking read', 'SELECT count(*) FROM orders FOR UPDATE'),
  rule('rule source', 'COMMIT ends the read-only transaction', 'COMMIT'),
  rule('rule source', 'NEXTVAL moves a sequence', 'SELECT NEXTVAL(s)'),
  rule('rule source', 'an ordinary query runs (control)', 'SELECT 1 FROM orders WHERE id = 1', { ran: 0 }),

  rule('rule target', 'set_config turns the session read-write', "SELECT set_config('default_transaction_read_only', 'off', false)"),
  rule('rule target', 'COPY TO PROGRAM on the target', "COPY (SELECT 1) TO PROGRAM 'touch $DIR/program-ran'"),
  rule('rule target', 'a stacked DROP on the target', 'SELECT 1; DROP TABLE dataops_copy_checkpoint'),
  rule('rule target', 'an advisory lock', 'SELECT pg_advisory_lock(1)'),
  rule('rule target', 'a data-modifying CTE', 'WITH d AS (DELETE FROM dataops_copy_checkpoint RETURNING 1) SELECT count(*) FROM d'),
  rule('rule target', 'an ordinary query runs read only (control)', 'SELECT 1', { ran: 0 }),
];

const environment = sharedEnvironment('mysql', 'postgres');

test.serial('mysql source: the suite covers every field, 40 attempts or more', async (t) => {
  await environment();
  const counts = countByField(CASES);
  t.log(JSON.stringify(counts));
  t.true(CASES.length >= 40, `${String(CASES.length)} cases`);
  for (const [field, count] of Object.entries(counts)) t.true(count > 0, `no case for ${field}`);
});

hostileCases('mysql', 'postgres', environment, CASES);

test.serial('layers: the statement guard refuses INTO OUTFILE and stacked SQL before it is sent (fragment check bypassed)', async (t) => {
  const env = await environment();
  const connection = await connectMysqlCore(env.source, { readOnly: true, applicationName: 'hostile layer test' });
  try {
    await beginMysqlSnapshot(connection);
    for (const select of [`SELECT 1 INTO OUTFILE '${join(env.dir, 'layer')}'`, 'SELECT 1; DELETE FROM orders', 'SELECT 1 /*!50000 INTO DUMPFILE \'/tmp/x\' */']) {
      await t.throwsAsync(async () => {
        for await (const rows of mysqlRowBlocks(connection, select)) t.fail(`rows came back: ${JSON.stringify(rows)}`);
      }, { name: 'UnsafeStatement' }, select);
    }
  } finally {
    connection.destroy();
  }
  await assertUnchanged(t, env, 'statement guard');
});

// The layer tests below write on purpose if a layer fails: they get a database of their own.
async function layerDatabase(t: Parameters<typeof freshDatabase>[0]): Promise<string> {
  const url = await freshDatabase(t, 'mysql', 'hostile_layer');
  await execSql(url, ['CREATE TABLE orders (id bigint PRIMARY KEY) ENGINE=InnoDB', 'INSERT INTO orders SELECT seq FROM seq_1_to_10']);
  return url;
}

test.serial('layers: the read-only transaction refuses a write sent as one statement (fragment check and guard bypassed)', async (t) => {
  const url = await layerDatabase(t);
  const before = await sourceFingerprint(url);
  const core = await connectMysqlCore(url, { readOnly: true, applicationName: 'hostile layer test' });
  try {
    await beginMysqlSnapshot(core); // the copy's own transaction
    await t.throwsAsync(core.promise().query('DELETE FROM orders'), { message: /READ ONLY transaction/i });
  } finally {
    core.destroy();
  }
  const session = await openSession(url, { readOnly: true, applicationName: 'hostile layer test' });
  try {
    await t.throwsAsync(session.query('DELETE FROM orders'), { message: /READ ONLY/i });
    // A setting changed by one statement does not open the next one to writes: each runs READ ONLY.
    await session.query('SET SESSION TRANSACTION READ WRITE').catch(() => undefined);
    await t.throwsAsync(session.query('DELETE FROM orders'), { message: /READ ONLY/i });
  } finally {
    await session.close();
  }
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(url)), []);
});

test.serial('layers: a source session runs one statement per query, even when its URL asks for multipleStatements', async (t) => {
  const url = await layerDatabase(t);
  const before = await sourceFingerprint(url);
  const separator = url.includes('?') ? '&' : '?';
  for (const candidate of [url, `${url}${separator}multipleStatements=true`]) {
    let session: SqlSession;
    try {
      session = await openSession(candidate, { readOnly: true, applicationName: 'hostile layer test' });
    } catch (error) {
      // Refusing the parameter outright is as good as ignoring it.
      t.regex(error instanceof Error ? error.message : String(error), /multipleStatements/, 'refused for the parameter, not for another reason');
      continue;
    }
    try {
      // Harmless second statements: if they run, the protocol let two through.
      await t.throwsAsync(session.query('SELECT 1; SELECT 2'), { message: /SQL syntax/ }, candidate === url ? 'plain URL' : '?multipleStatements=true');
      await t.throwsAsync(session.query('SELECT 1; SET SESSION TRANSACTION READ WRITE; DELETE FROM orders'), { message: /SQL syntax|READ ONLY/i });
    } finally {
      await session.close();
    }
  }
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(url)), []);
});
