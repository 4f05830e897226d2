// Hostile manifests, PostgreSQL as the source (MariaDB as the target): every manifest field that
// reaches SQL, attacked as an attacker would (closing parentheses and quotes, comments, stacked
// statements, transaction control, settings, side-effecting functions, COPY TO PROGRAM). Each
// attempt is refused by the plan (exit 3, naming the field) or runs harmlessly, and the source
// (owned by a superuser, so only the project's guards stop the writes) is unchanged after every
// one. Then the layers below the parser, each alone: with the fragment check bypassed, the
// statement guard, the read-only transaction and the one-statement protocol still refuse.
import test from 'ava';
import { join } from 'node:path';
import type pg from 'pg';
import { beginPostgresSnapshot, postgresCopyOut } from '../../src/engine/copy/sources.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
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
  where('closes the COPY and stacks COMMIT; BEGIN READ WRITE; DELETE (the reported attack)', 'true) TO STDOUT; COMMIT; BEGIN READ WRITE; DELETE FROM orders; COPY (SELECT 1 WHERE (true'),
  where('closes the parentheses and stacks COPY TO PROGRAM', "true)) TO STDOUT; COPY (SELECT 1) TO PROGRAM 'touch $DIR/program-ran'; COPY ((SELECT 1 WHERE true"),
  where('comments out the rest of the COPY', 'id > 0) TO STDOUT; DELETE FROM orders --'),
  where('a block comment swallows the closing parenthesis', 'id > 0 /* ) TO STDOUT; DELETE FROM orders; COPY (SELECT 1'),
  where('a quote closed early, then the COPY\'s parenthesis', "note = 'a' OR true) TO STDOUT; DELETE FROM orders; --"),
  { field: 'where', title: 'a doubled quote keeps the attack inside one string (runs as data)', table: { where: "note = 'a'' OR true) TO STDOUT; DELETE FROM orders; --'" }, expect: { ran: 0 } },
  where('dollar quoting around a stacked statement', 'note = $$x$$) TO STDOUT; DELETE FROM orders; COPY (SELECT $$x$$'),
  where('a data-modifying CTE inside a subquery', 'id IN (WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d)'),
  where('set_config turns the session read-write', "set_config('default_transaction_read_only', 'off', false) = 'off'"),
  where('stacked SET SESSION CHARACTERISTICS … READ WRITE', 'true; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'),
  where('an advisory lock held by the source session', 'pg_advisory_lock(42) IS NOT NULL'),
  where('nextval moves a sequence', "nextval('s') > 0"),
  where('a sleep per row', 'pg_sleep(0.01) IS NOT NULL'),
  where('a locking read', 'id IN (SELECT id FROM orders FOR UPDATE)'),
  where('query_to_xml runs SQL given as text', "query_to_xml('DELETE FROM orders RETURNING 1', true, false, '') IS NOT NULL"),
  where('reads a server file', "length(pg_read_file('/etc/hostname')) > 0"),
  where('reads the credential catalog', 'EXISTS (SELECT 1 FROM pg_authid WHERE rolpassword IS NOT NULL)'),
  { field: 'where', title: 'an ordinary filter runs (control)', table: { where: "customer <> 3 AND note LIKE 'order%'" }, expect: { ran: 0 } },

  expression('closes the select and reaches COPY TO PROGRAM', "note FROM orders) TO PROGRAM 'touch $DIR/copy-program' --"),
  expression('stacks a DELETE between two halves', 'note); DELETE FROM orders; SELECT (note'),
  expression('setval moves a sequence', "setval('s', 1000)::text"),
  expression('txid_current assigns a transaction id', 'txid_current()::text'),
  expression('terminates its own backend', 'pg_terminate_backend(pg_backend_pid())::text'),
  expression('copies password hashes out', "(SELECT string_agg(rolpassword, ',') FROM pg_authid)"),
  expression('lo_export writes a file on the server', "lo_export(1, '$DIR/outfile')::text"),
  expression('SELECT INTO in a scalar subquery', '(SELECT note INTO stolen FROM orders LIMIT 1)'),
  {
    field: 'expression', title: 'an ordinary expression runs (control)', table: { columns: [{ name: 'note', expression: "upper(note) || ' ok'" }] }, expect: { ran: 0 },
    // A computed column's type is unknown to createMissingTables: the target table comes from a migration.
    spec: { schema: { migrations: [{ version: '1', description: 'orders', up: 'CREATE TABLE c$N_orders (id bigint PRIMARY KEY, customer int NOT NULL, note text, amount decimal(12,2), updated_at datetime NOT NULL)' }] } },
  },

  fallback('closes COALESCE and stacks a DELETE', "'x'); DELETE FROM orders; SELECT ('x'"),
  fallback('nextval as a default', "nextval('s')"),
  fallback('a subquery as a default', '(SELECT count(*) FROM orders)'),
  { field: 'default', title: 'a quoted literal with a doubled quote runs (control)', table: { columns: [{ name: 'note', default: "'it''s fine'" }] }, expect: { ran: 0 } },

  { field: 'dedupe', title: 'a by column that closes its quote', table: { dedupe: { by: ['note"); DELETE FROM orders; --'], keep: 'first' } }, expect: { refused: /spec\.tables\[orders\]\.dedupe\.by\[0\]: .* is not a column of the source table/ } },
  { field: 'dedupe', title: 'an orderBy with a stacked statement', table: { dedupe: { by: ['customer'], keep: 'latest', orderBy: 'updated_at DESC; DELETE FROM orders' } }, expect: { refused: /spec\.tables\[orders\]\.dedupe\.orderBy: .* is not a column of the source table/ } },
  { field: 'dedupe', title: 'ordinary dedupe runs (control)', table: { dedupe: { by: ['customer'], keep: 'latest', orderBy: 'updated_at' } }, expect: { ran: 0 } },

  { field: 'key', title: 'a key column that closes the COPY', table: { key: ['id") TO STDOUT; DELETE FROM orders; --'] }, expect: { refused: /key column id"\) TO STDOUT; DELETE FROM orders; -- is not a column/ } },
  { field: 'key', title: 'a second key column smuggling a condition', table: { key: ['id', 'customer" > 0 OR "id'] }, expect: { refused: /key column customer" > 0 OR "id is not a column/ } },

  { field: 'table name', title: 'a table name that closes its quote', tables: [{ name: 'orders"; DELETE FROM orders; --', target: 'stolen' }], expect: { refused: /table orders"; DELETE FROM orders; -- does not exist on the source/ } },
  { field: 'table name', title: 'a name PostgreSQL would silently cut to another table', tables: [{ name: 'é'.repeat(40), target: 'cut' }], expect: { refused: /spec\.tables\[.*\]\.name: expected a PostgreSQL name of 1 to 63 bytes/ } },
  { field: 'table name', title: 'a NUL in the table name', tables: [{ name: 'orders\u0000; DROP TABLE orders', target: 'nul' }], expect: { refused: /\.name: expected .*; found a NUL character/ } },
  { field: 'table name', title: 'a real table named with a quote, a semicolon and a parenthesis copies as data (control)', tables: [{ name: "we'ird; name", target: 'weird_copy' }], expect: { ran: 0 } },

  { field: 'column name', title: 'a new column named to close its quote', table: { columns: [{ name: 'note"); DELETE FROM orders; --', expression: "'x'" }] }, expect: { refused: /has no column note"\); DELETE FROM orders; --/ } },
  { field: 'column name', title: 'a NUL in a target column name', table: { columns: [{ name: 'note', target: 'no\u0000te' }] }, expect: { refused: /spec\.tables\[orders\]\.columns\[note\]\.target: expected .*NUL/ } },
  { field: 'column name', title: 'a target column named like SQL is created as that name (control)', table: { columns: [{ name: 'note', target: 'no"te`); DROP TABLE orders; --' }] }, expect: { ran: 0 } },

  { field: 'incremental column', title: 'an incremental column that closes its quote', spec: { strategy: { type: 'Trickle', batchSize: 1000, parallelism: 1, incremental: { column: `updated_at" > '2000-01-01'; DELETE FROM orders; --`, mode: 'Timestamp' } } }, expect: { ran: 3, message: /has no column updated_at" > '2000-01-01'; DELETE FROM orders; -- \(strategy\.incremental\.column\)/ } },
  { field: 'incremental column', title: 'a NUL in the incremental column', spec: { strategy: { type: 'Trickle', batchSize: 1000, parallelism: 1, incremental: { column: 'updated_at\u0000', mode: 'Timestamp' } } }, expect: { refused: /spec\.strategy\.incremental\.column: expected .*NUL/ } },

  rule('rule source', 'a stacked DELETE', 'SELECT 1; DELETE FROM orders'),
  rule('rule source', 'set_config turns the session read-write', "SELECT set_config('default_transaction_read_only', 'off', false)"),
  rule('rule source', 'SET SESSION CHARACTERISTICS … READ WRITE', 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE'),
  rule('rule source', 'COMMIT ends the read-only transaction', 'COMMIT'),
  rule('rule source', 'a data-modifying CTE', 'WITH d AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM d'),
  rule('rule source', 'an advisory lock', 'SELECT pg_advisory_lock(42)'),
  rule('rule source', 'COPY TO PROGRAM', "COPY (SELECT 1) TO PROGRAM 'touch $DIR/program-ran'"),
  rule('rule source', 'SELECT INTO creates a table', 'SELECT * INTO stolen FROM orders'),
  rule('rule source', 'a locking read', 'SELECT count(*) FROM orders FOR UPDATE'),
  rule('rule source', 'an anonymous code block', 'DO $$BEGIN DELETE FROM orders; END$$'),
  rule('rule source', 'a comment hiding a stacked statement', 'SELECT 1 -- ; DELETE FROM orders'),
  rule('rule source', 'an ordinary count runs (control)', 'SELECT 1 FROM orders WHERE id = 1', { ran: 0 }),

  rule('rule target', 'INTO OUTFILE on the target', "SELECT 1 INTO OUTFILE '$DIR/rule-outfile'"),
  rule('rule target', 'a stacked DROP on the target', 'SELECT 1; DROP TABLE dataops_copy_checkpoint'),
  rule('rule target', 'SET SESSION TRANSACTION READ WRITE', 'SET SESSION TRANSACTION READ WRITE'),
  rule('rule target', 'GET_LOCK', "SELECT GET_LOCK('hostile', 0)"),
  rule('rule target', 'SLEEP', 'SELECT SLEEP(0.1)'),
  rule('rule target', 'an executable version comment', "SELECT 1 /*!50000 INTO OUTFILE '$DIR/version-comment' */"),
  rule('rule target', 'a user variable assignment', 'SELECT @x := 1'),
  rule('rule target', 'an ordinary query runs read only (control)', 'SELECT 1', { ran: 0 }),
];

const environment = sharedEnvironment('postgres', 'mysql');

test.serial('postgres source: the suite covers every field, 40 attempts or more', async (t) => {
  await environment();
  const counts = countByField(CASES);
  t.log(JSON.stringify(counts));
  t.true(CASES.length >= 40, `${String(CASES.length)} cases`);
  for (const [field, count] of Object.entries(counts)) t.true(count > 0, `no case for ${field}`);
});

hostileCases('postgres', 'mysql', environment, CASES);

/** A connection as the copy opens one on the source (read only), for the layer tests. */
async function sourceClient(url: string): Promise<pg.Client> {
  return connectPostgres(url, { readOnly: true, applicationName: 'hostile layer test' });
}

test.serial('layers: the statement guard refuses a stacked or TO PROGRAM COPY before it is sent (fragment check bypassed)', async (t) => {
  const env = await environment();
  const client = await sourceClient(env.source);
  try {
    await beginPostgresSnapshot(client);
    t.throws(() => postgresCopyOut(client, 'SELECT 1) TO STDOUT; COMMIT; BEGIN READ WRITE; DELETE FROM orders; COPY (SELECT 1'), { name: 'UnsafeStatement', message: /2 statements|4 statements|statements/ });
    t.throws(() => postgresCopyOut(client, `SELECT 1) TO PROGRAM 'touch ${join(env.dir, 'layer')}' --`), { name: 'UnsafeStatement' });
    // The connection is still usable: nothing was sent.
    t.deepEqual((await client.query('SELECT 1 AS one')).rows, [{ one: '1' }]);
  } finally {
    await client.end();
  }
  await assertUnchanged(t, env, 'statement guard');
});

// The layer tests below write on purpose if a layer fails: they get a database of their own.
test.serial('layers: the read-only transaction refuses a write sent as one statement (fragment check and guard bypassed)', async (t) => {
  const url = await freshDatabase(t, 'postgres', 'hostile_layer');
  await execSql(url, ['CREATE TABLE orders (id bigint PRIMARY KEY)', 'INSERT INTO orders SELECT generate_series(1, 10)', 'CREATE SEQUENCE s']);
  const before = await sourceFingerprint(url);
  const client = await sourceClient(url);
  try {
    await beginPostgresSnapshot(client); // the copy's own transaction
    await t.throwsAsync(client.query('DELETE FROM orders'), { message: /read-only transaction/ });
    await client.query('ROLLBACK');
  } finally {
    await client.end();
  }
  const session = await openSession(url, { readOnly: true, applicationName: 'hostile layer test' });
  try {
    await t.throwsAsync(session.query('DELETE FROM orders'), { message: /read-only transaction/ });
    await t.throwsAsync(session.query("SELECT nextval('s')"), { message: /read-only transaction/ });
    // A setting changed by one statement does not open the next one to writes: each runs READ ONLY.
    await session.query("SELECT set_config('default_transaction_read_only', 'off', false)").catch(() => undefined);
    await t.throwsAsync(session.query('DELETE FROM orders'), { message: /read-only transaction/ });
  } finally {
    await session.close();
  }
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(url)), []);
});

test.serial('layers: a source session sends one statement per message, so nothing can be stacked (fragment check bypassed)', async (t) => {
  const url = await freshDatabase(t, 'postgres', 'hostile_layer');
  await execSql(url, ['CREATE TABLE orders (id bigint PRIMARY KEY)', 'INSERT INTO orders SELECT generate_series(1, 10)']);
  const before = await sourceFingerprint(url);
  const session = await openSession(url, { readOnly: true, applicationName: 'hostile layer test' });
  try {
    await t.throwsAsync(session.query('SELECT 1; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM orders'), { message: /multiple commands|read-only/ });
    await t.throwsAsync(session.query('SELECT 1; COMMIT; BEGIN READ WRITE; DELETE FROM orders'), { message: /multiple commands|read-only/ });
  } finally {
    await session.close();
  }
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(url)), []);
});
