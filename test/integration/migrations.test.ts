// Versioned schema migrations on real servers: apply, rerun, checksum refusal, concurrent
// migrators, undo, and what a failure half way leaves behind on each engine.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import { migrationChecksum, migrationsFromInline, readMigrationDirectory, type InlineMigration } from '../../src/engine/migrations/files.ts';
import { DEFAULT_HISTORY_TABLE, historyTableExists, readHistory } from '../../src/engine/migrations/history.ts';
import { withMigrationLock } from '../../src/engine/migrations/lock.ts';
import { migrateDown, migrateUp, schemaVersion } from '../../src/engine/migrations/migrate.ts';
import { freshDatabase } from '../support/databases.ts';

const HISTORY = DEFAULT_HISTORY_TABLE;

/** V1..V3 with undo scripts; V3 holds a routine whose body has semicolons. */
function scripts(engine: Engine): InlineMigration[] {
  const routine = engine === 'postgres'
    ? [
      'CREATE FUNCTION add_customer(p_id integer, p_name varchar) RETURNS void LANGUAGE plpgsql AS $body$',
      'BEGIN',
      "  INSERT INTO customers (id, name) VALUES (p_id, p_name || ';');",
      'END;',
      '$body$;',
    ].join('\n')
    : [
      'DELIMITER //',
      'CREATE PROCEDURE add_customer(IN p_id integer, IN p_name varchar(100))',
      'BEGIN',
      "  INSERT INTO customers (id, name) VALUES (p_id, CONCAT(p_name, ';'));",
      'END //',
      'DELIMITER ;',
    ].join('\n');
  const dropRoutine = engine === 'postgres' ? 'DROP FUNCTION add_customer(integer, varchar);' : 'DROP PROCEDURE add_customer;';
  return [
    {
      version: '1', description: 'create customers',
      up: "-- the first table\nCREATE TABLE customers (id integer PRIMARY KEY, name varchar(100) NOT NULL);\nINSERT INTO customers VALUES (1, 'semi;colon');\n",
      down: 'DROP TABLE customers;',
    },
    {
      version: '2', description: 'orders and email',
      up: 'CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers (id));\r\nALTER TABLE customers ADD COLUMN email varchar(200);\r\n',
      down: 'ALTER TABLE customers DROP COLUMN email;\nDROP TABLE orders;',
    },
    {
      version: '3', description: 'routine and view',
      up: `${routine}\nCREATE VIEW customer_names AS SELECT name FROM customers;\n`,
      down: `DROP VIEW customer_names;\n${dropRoutine}`,
    },
  ];
}

async function open(t: ExecutionContext, url: string): Promise<SqlSession> {
  const session = await openSession(url, { readOnly: false });
  t.teardown(() => session.close());
  return session;
}

async function columnExists(session: SqlSession, table: string, column: string): Promise<boolean> {
  const schema = session.engine === 'postgres' ? 'current_schema()' : 'DATABASE()';
  const p = (n: number): string => session.dialect.placeholder(n);
  const rows = await session.query(
    `SELECT 1 AS present FROM information_schema.columns WHERE table_schema = ${schema} AND table_name = ${p(1)} AND column_name = ${p(2)}`,
    [table, column],
  );
  return rows.length > 0;
}

async function historyVersions(session: SqlSession): Promise<string[]> {
  return (await readHistory(session, HISTORY)).map((row) => `${row.version}:${row.success ? 'ok' : 'failed'}`);
}

async function writeDirectory(t: ExecutionContext, list: InlineMigration[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'migrations-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const m of list) {
    const name = (m.description ?? '').replaceAll(' ', '_');
    await writeFile(join(dir, `V${m.version}__${name}.sql`), m.up);
    if (m.down !== undefined) await writeFile(join(dir, `U${m.version}__${name}.sql`), m.down);
  }
  await writeFile(join(dir, 'README.md'), 'not a migration');
  return dir;
}

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: V1..V3 from a directory are applied in order and recorded; a rerun applies nothing`, async (t) => {
    const session = await open(t, await freshDatabase(t, engine));
    const migrations = await readMigrationDirectory(await writeDirectory(t, scripts(engine)));
    t.is(await schemaVersion(session, HISTORY), null, 'no history table yet');

    const partial = await migrateUp(session, migrations, { historyTable: HISTORY, targetVersion: '2', installedBy: 'tester' });
    t.deepEqual(partial, { applied: ['1', '2'], version: '2', versionBefore: null });
    const first = await migrateUp(session, migrations, { historyTable: HISTORY, installedBy: 'tester' });
    t.deepEqual(first, { applied: ['3'], version: '3', versionBefore: '2' });

    const history = await readHistory(session, HISTORY);
    t.deepEqual(history.map((row) => [row.version, row.description, row.checksum, row.installedBy, row.success]),
      migrations.map((m) => [m.version, m.description, m.checksum, 'tester', true]));
    t.true(history.every((row) => row.executionMs >= 0 && row.installedOn !== ''));
    t.is(await schemaVersion(session, HISTORY), '3');

    // What the scripts did: the routine body with its semicolons arrived whole.
    await session.query(engine === 'postgres' ? "SELECT add_customer(2, 'bo')" : "CALL add_customer(2, 'bo')");
    const names = await session.query('SELECT name FROM customer_names ORDER BY name');
    t.deepEqual(names.map((row) => row.name), ['bo;', 'semi;colon']);
    t.true(await columnExists(session, 'customers', 'email'));

    const again = await migrateUp(session, migrations, { historyTable: HISTORY, installedBy: 'tester' });
    t.deepEqual(again, { applied: [], version: '3', versionBefore: '3' });
    t.deepEqual(await historyVersions(session), ['1:ok', '2:ok', '3:ok']);
  });

  test(`${engine}: an applied migration that was edited is refused, naming both checksums, before anything runs`, async (t) => {
    const session = await open(t, await freshDatabase(t, engine));
    const original = scripts(engine);
    await migrateUp(session, migrationsFromInline(original.slice(0, 2)), { historyTable: HISTORY });
    const applied = migrationChecksum(original[1]?.up ?? '');

    const edited = original.map((m) => (m.version === '2' ? { ...m, up: `${m.up}CREATE TABLE sneaky (id integer);\n` } : m));
    const fileChecksum = migrationChecksum(edited[1]?.up ?? '');
    const error = await t.throwsAsync(migrateUp(session, migrationsFromInline(edited), { historyTable: HISTORY }));
    t.is(error.message, `migration 2 was changed after it was applied: applied checksum ${applied}, file checksum ${fileChecksum}`);
    t.deepEqual(await historyVersions(session), ['1:ok', '2:ok'], 'V3 was not applied either');
    t.false(await historyTableExists(session, 'sneaky'));

    // Line endings and trailing whitespace are not edits.
    const reformatted = original.map((m) => ({ ...m, up: `${m.up.replaceAll('\r\n', '\n')}\n\n  ` }));
    const result = await migrateUp(session, migrationsFromInline(reformatted), { historyTable: HISTORY });
    t.deepEqual(result.applied, ['3']);

    // A version applied in the database but gone from the files is refused too.
    await t.throwsAsync(migrateUp(session, migrationsFromInline(original.slice(0, 2)), { historyTable: HISTORY }),
      { message: /migration 3 \(routine and view\) is applied in the database .* but is not among the migrations/ });
  });

  test(`${engine}: two migrators at once take turns; each migration is applied exactly once`, async (t) => {
    const url = await freshDatabase(t, engine);
    const [a, b] = await Promise.all([open(t, url), open(t, url)]);
    const migrations = migrationsFromInline(scripts(engine));
    const results = await Promise.all([
      migrateUp(a, migrations, { historyTable: HISTORY, installedBy: 'a' }),
      migrateUp(b, migrations, { historyTable: HISTORY, installedBy: 'b' }),
    ]);
    t.deepEqual(results.flatMap((r) => r.applied).sort(), ['1', '2', '3']);
    t.true(results.some((r) => r.applied.length === 3), 'the lock holder applied all three; the other found nothing to do');
    t.deepEqual(results.map((r) => r.version), ['3', '3']);
    t.deepEqual(await historyVersions(a), ['1:ok', '2:ok', '3:ok']);
    const [count] = await a.query('SELECT count(*) AS n FROM customers');
    t.is(count?.n?.toString(), '1', 'V1 inserted its row once');
  });

  test(`${engine}: the migration lock times out with a clear error and is released afterwards`, async (t) => {
    const url = await freshDatabase(t, engine);
    const [a, b] = await Promise.all([open(t, url), open(t, url)]);
    const name = `test_lock_${engine}_${Date.now().toString()}`;
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => { release = resolve; });
    let entered = (): void => undefined;
    const inside = new Promise<void>((resolve) => { entered = resolve; });
    const holder = withMigrationLock(a, name, async () => {
      entered();
      await held;
      return 'a done';
    });
    await inside;
    await t.throwsAsync(withMigrationLock(b, name, () => Promise.resolve('b'), { timeoutSeconds: 1 }),
      { message: `timed out after 1 s waiting for the migration lock "${name}": another migration is running against this database` });
    release();
    t.is(await holder, 'a done');
    t.is(await withMigrationLock(b, name, () => Promise.resolve('b done'), { timeoutSeconds: 1 }), 'b done');
    // A failing body releases the lock too.
    await t.throwsAsync(withMigrationLock(a, name, () => Promise.reject(new Error('boom'))), { message: 'boom' });
    t.is(await withMigrationLock(b, name, () => Promise.resolve('again'), { timeoutSeconds: 1 }), 'again');
  });

  test(`${engine}: migrateDown to version 1 restores the earlier schema and history`, async (t) => {
    const session = await open(t, await freshDatabase(t, engine));
    const list = scripts(engine);
    await migrateUp(session, migrationsFromInline(list), { historyTable: HISTORY });
    t.true(await historyTableExists(session, 'orders'));

    // Without V2's undo script nothing runs at all.
    const noUndo = migrationsFromInline(list.map((m) => (m.version === '2' ? { ...m, down: undefined } : m)));
    await t.throwsAsync(migrateDown(session, noUndo, { historyTable: HISTORY, toVersion: '1' }),
      { message: 'cannot undo to version 1: no undo script (U<version>__<description>.sql) for migration 2 (orders and email); nothing was undone' });
    t.deepEqual(await historyVersions(session), ['1:ok', '2:ok', '3:ok']);
    t.true(await historyTableExists(session, 'customer_names'), 'V3 was not undone');

    const down = await migrateDown(session, migrationsFromInline(list), { historyTable: HISTORY, toVersion: '1' });
    t.deepEqual(down, { reverted: ['3', '2'], version: '1', versionBefore: '3' });
    t.false(await historyTableExists(session, 'orders'), 'the table V2 created is gone');
    t.false(await historyTableExists(session, 'customer_names'));
    t.false(await columnExists(session, 'customers', 'email'));
    t.true(await historyTableExists(session, 'customers'));
    t.deepEqual(await historyVersions(session), ['1:ok']);
    t.is(await schemaVersion(session, HISTORY), '1');

    const up = await migrateUp(session, migrationsFromInline(list), { historyTable: HISTORY });
    t.deepEqual(up, { applied: ['2', '3'], version: '3', versionBefore: '1' });
    const all = await migrateDown(session, migrationsFromInline(list), { historyTable: HISTORY, toVersion: null });
    t.deepEqual(all, { reverted: ['3', '2', '1'], version: null, versionBefore: '3' });
    t.false(await historyTableExists(session, 'customers'));
    t.is(await schemaVersion(session, HISTORY), null);
  });
}

const brokenV3: InlineMigration = {
  version: '3', description: 'half done',
  up: 'CREATE TABLE partial_things (id integer PRIMARY KEY);\nCREATE INDEX partial_idx ON partial_things (id);\nINSERT INTO no_such_table VALUES (1);\n',
};

test('postgres: a failure mid-migration rolls the whole migration back', async (t) => {
  const session = await open(t, await freshDatabase(t, 'postgres'));
  const good = scripts('postgres').slice(0, 2);
  const error = await t.throwsAsync(migrateUp(session, migrationsFromInline([...good, brokenV3]), { historyTable: HISTORY }));
  t.is(error.message, 'migration 3 (half done) failed at statement 3 of 3 (line 3): INSERT INTO no_such_table VALUES (1): '
    + 'relation "no_such_table" does not exist; the transaction was rolled back, nothing of this migration was applied');
  t.false(await historyTableExists(session, 'partial_things'), 'the table from statement 1 is gone');
  t.deepEqual(await historyVersions(session), ['1:ok', '2:ok'], 'V1 and V2 stay applied, V3 left no row');
  t.is(await schemaVersion(session, HISTORY), '2');

  const fixed = { ...brokenV3, up: brokenV3.up.replace('no_such_table', 'partial_things') };
  const result = await migrateUp(session, migrationsFromInline([...good, fixed]), { historyTable: HISTORY });
  t.deepEqual(result, { applied: ['3'], version: '3', versionBefore: '2' });
});

test('mysql: a failure mid-migration is recorded as failed and the next run asks for a repair by hand', async (t) => {
  const session = await open(t, await freshDatabase(t, 'mysql'));
  const good = scripts('mysql').slice(0, 2);
  const error = await t.throwsAsync(migrateUp(session, migrationsFromInline([...good, brokenV3]), { historyTable: HISTORY }));
  t.regex(error.message, /^migration 3 \(half done\) failed at statement 3 of 3 \(line 3\): INSERT INTO no_such_table VALUES \(1\): Table '[^']+\.no_such_table' doesn't exist\. /);
  t.regex(error.message, /statements 1 to 2 of this migration were already committed \(MySQL has no transactional DDL/);
  t.regex(error.message, /it is recorded as failed in dataops_schema_history\. Repair the schema by hand, then delete the row with: DELETE FROM `dataops_schema_history` WHERE version = '3'/);
  t.true(await historyTableExists(session, 'partial_things'), 'MySQL committed statement 1');
  t.deepEqual(await historyVersions(session), ['1:ok', '2:ok', '3:failed']);
  t.is(await schemaVersion(session, HISTORY), '2');

  const fixed = { ...brokenV3, up: brokenV3.up.replace('no_such_table', 'partial_things') };
  const refused = await t.throwsAsync(migrateUp(session, migrationsFromInline([...good, fixed]), { historyTable: HISTORY }));
  t.regex(refused.message, /^migration 3 \(half done\) failed on .* and is recorded as failed in dataops_schema_history/);
  t.regex(refused.message, /Repair the schema by hand .* then delete the row with: DELETE FROM `dataops_schema_history` WHERE version = '3'; and run the migrations again/);
  t.true(await historyTableExists(session, 'partial_things'), 'nothing ran');

  // The operator repairs by hand, as told; then the fixed migration applies.
  await session.query('DROP TABLE partial_things');
  await session.query("DELETE FROM `dataops_schema_history` WHERE version = '3'");
  const result = await migrateUp(session, migrationsFromInline([...good, fixed]), { historyTable: HISTORY });
  t.deepEqual(result, { applied: ['3'], version: '3', versionBefore: '2' });
  t.deepEqual(await historyVersions(session), ['1:ok', '2:ok', '3:ok']);
});
