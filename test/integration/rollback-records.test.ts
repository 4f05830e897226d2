// What rollback returns to is read from records that cannot lie, on real servers: the version
// before a migration is recorded once, by its first schema step, so a retried step cannot move
// it; no record never means "undo every version"; a created table and its record are one
// transaction (PostgreSQL) or an intent recorded first (MySQL), so a step killed in between
// leaves a state rollback handles: it drops what this migration created, never what was there.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { schemaVersion } from '../../src/engine/migrations/migrate.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { schemaStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { rollbackStep } from '../../src/engine/pipeline/validate-steps.ts';
import { createRecordedTable } from '../../src/engine/schema/created-tables.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { execSql, scalar } from '../support/sql.ts';

type InlineMigration = NonNullable<NonNullable<DataMigration['spec']['schema']>['migrations']>[number];

const V1: InlineMigration = { version: '1', description: 'audit', up: 'CREATE TABLE audit (id integer PRIMARY KEY)', down: 'DROP TABLE audit' };
const V2: InlineMigration = { version: '2', description: 'settings', up: 'CREATE TABLE app_settings (name varchar(40) PRIMARY KEY)', down: 'DROP TABLE app_settings' };
const V3: InlineMigration = { version: '3', description: 'flags', up: 'CREATE TABLE flags (name varchar(40) PRIMARY KEY)', down: 'DROP TABLE flags' };

function context(from: Engine, to: Engine, source: string, target: string, name: string, uid: string, migrations: InlineMigration[], createMissingTables = false): StepContext {
  const migration: DataMigration = {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name, namespace: 'test', uid },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      schema: { createMissingTables, migrations }, tables: [{ name: 'orders' }], strategy: { batchSize: 100, parallelism: 1 },
    },
  };
  return { source: { url: source }, target: { url: target }, settings: engineSettings(migration) };
}

const seed = (engine: Engine): string[] => [`CREATE TABLE orders (id integer PRIMARY KEY, note varchar(20))${engine === 'mysql' ? ' ENGINE=InnoDB' : ''}`];

async function version(url: string): Promise<string | null> {
  const session = await openSession(url, { readOnly: true });
  try {
    return await schemaVersion(session);
  } finally {
    await session.close();
  }
}

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: rollback after a retried schema step returns exactly to the version before the first attempt`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    // Version 1 is there before: another migration applied it.
    await schemaStep(context(engine, engine, source, target, 'earlier', 'aaaaaaaa-0000-4000-8000-000000000001', [V1]));

    const first = await schemaStep(context(engine, engine, source, target, 'm', 'aaaaaaaa-0000-4000-8000-000000000002', [V1, V2]));
    t.deepEqual([first.versionBefore, first.version], ['1', '2']);
    // The Job is retried (its pod was lost after the migration was applied): nothing to apply,
    // and the version before is still the first attempt's, not the one the first attempt reached.
    const retried = await schemaStep(context(engine, engine, source, target, 'm', 'aaaaaaaa-0000-4000-8000-000000000002', [V1, V2]));
    t.deepEqual([retried.versionBefore, retried.version, retried.applied], ['1', '2', []]);
    const more = await schemaStep(context(engine, engine, source, target, 'm', 'aaaaaaaa-0000-4000-8000-000000000002', [V1, V2, V3]));
    t.deepEqual([more.versionBefore, more.version], ['1', '3']);
    t.is(await scalar(target, "SELECT version_before FROM dataops_migration WHERE migration_uid = 'aaaaaaaa-0000-4000-8000-000000000002'"), '1');

    // The status says 3 (what a retried Job reported before): the record wins, and says so.
    const down = await rollbackStep(context(engine, engine, source, target, 'm', 'aaaaaaaa-0000-4000-8000-000000000002', [V1, V2, V3]), { versionBefore: '3', action: 'DownMigrations' });
    t.deepEqual(down.reverted, ['3', '2']);
    t.is(down.version, '1');
    t.true(down.warnings.some((w) => /the version given \(3\) is not the one recorded .* \(1, at /.test(w)), down.warnings.join('\n'));
    t.is(await version(target), '1');
  });

  test(`${engine}: an empty version before is "undo every version" only when the record says there was none`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    await schemaStep(context(engine, engine, source, target, 'earlier', 'aaaaaaaa-0000-4000-8000-000000000001', [V1]));
    // A migration whose schema step never ran has no record: nothing is undone for want of a value.
    const never = await rollbackStep(context(engine, engine, source, target, 'never', 'aaaaaaaa-0000-4000-8000-000000000003', [V1]), { versionBefore: null, action: 'DownMigrations' });
    t.deepEqual(never.reverted, []);
    t.is(never.version, '1');
    t.true(never.warnings.some((w) => w.includes('no record of the version before this migration')));

    // On an empty database the record says there was no version: the rollback undoes them all.
    const empty = await freshTargetDatabase(t, engine);
    const fresh = context(engine, engine, source, empty, 'fresh', 'aaaaaaaa-0000-4000-8000-000000000004', [V1, V2]);
    t.is((await schemaStep(fresh)).versionBefore, null);
    t.is(await scalar(empty, "SELECT count(*) FROM dataops_migration WHERE migration_uid = 'aaaaaaaa-0000-4000-8000-000000000004' AND baseline_recorded AND version_before IS NULL"), '1');
    const down = await rollbackStep(fresh, { versionBefore: null, action: 'DownMigrations' });
    t.deepEqual(down.reverted, ['2', '1']);
    t.is(await version(empty), null);
  });
}

test('mysql: a step killed between the intent and CREATE TABLE, or between CREATE TABLE and its record, leaves a state rollback handles', async (t) => {
  const source = await freshDatabase(t, 'mysql');
  const target = await freshTargetDatabase(t, 'mysql');
  await execSql(source, seed('mysql'));
  const p = context('mysql', 'mysql', source, target, 'p', 'aaaaaaaa-0000-4000-8000-000000000005', [], true);
  t.deepEqual((await schemaStep(p)).createdTables, ['orders']);
  // The states a kill leaves, written as the step writes them (intent first, then CREATE, then 'created'):
  //   ghost: intent recorded, killed before CREATE TABLE;  half: CREATE TABLE ran, killed before the record said so;
  //   keep: the target's own table, there before the migration, never recorded.
  await execSql(target, [
    "INSERT INTO dataops_created_table (migration_uid, table_name, state) VALUES ('aaaaaaaa-0000-4000-8000-000000000005', 'ghost', 'intended'), ('aaaaaaaa-0000-4000-8000-000000000005', 'half', 'intended')",
    'CREATE TABLE half (id integer PRIMARY KEY) ENGINE=InnoDB',
    'CREATE TABLE keep (id integer PRIMARY KEY) ENGINE=InnoDB',
    'INSERT INTO keep VALUES (1)',
  ]);
  // A retried schema step confirms what was created after its intent; the ghost stays an intent.
  await schemaStep(p);
  t.is(await scalar(target, "SELECT GROUP_CONCAT(CONCAT(table_name, ':', state) ORDER BY table_name) FROM dataops_created_table"), 'ghost:intended,half:created,orders:created');

  // An injected failure after the CREATE: the table is this migration's and recorded so.
  const session = await openSession(target, { readOnly: false });
  try {
    await t.throwsAsync(createRecordedTable(session, 'aaaaaaaa-0000-4000-8000-000000000005', { table: 'later', types: [], create: ['CREATE TABLE later (id integer PRIMARY KEY) ENGINE=InnoDB', 'SELECT * FROM no_such_table'] }));
    // A CREATE that fails (the table appeared meanwhile): no record, the table is left alone.
    await t.throwsAsync(createRecordedTable(session, 'aaaaaaaa-0000-4000-8000-000000000005', { table: 'raced', types: [], create: ['CREATE TABLE keep (id integer PRIMARY KEY) ENGINE=InnoDB'] }));
  } finally {
    await session.close();
  }
  t.is(await scalar(target, "SELECT GROUP_CONCAT(CONCAT(table_name, ':', state) ORDER BY table_name) FROM dataops_created_table"), 'ghost:intended,half:created,later:created,orders:created');

  const dropped = await rollbackStep(p, { versionBefore: null, action: 'DropCreatedTables' });
  t.deepEqual([...dropped.droppedTables].sort(), ['half', 'later', 'orders']);
  t.is(await scalar(target, 'SELECT count(*) FROM dataops_created_table'), '0', 'the ghost\'s intent is forgotten too');
  t.is(await scalar(target, 'SELECT count(*) FROM keep'), '1', 'a table that was there before is never dropped');
});

test('postgres: a created table and its record commit together; a failure between them leaves neither', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, seed('postgres'));
  const p = context('postgres', 'postgres', source, target, 'p', 'aaaaaaaa-0000-4000-8000-000000000005', [], true);
  t.deepEqual((await schemaStep(p)).createdTables, ['orders']);
  const session = await openSession(target, { readOnly: false });
  try {
    await t.throwsAsync(createRecordedTable(session, 'aaaaaaaa-0000-4000-8000-000000000005', {
      table: 'later', types: ['"later_mood"'], create: ['CREATE TYPE later_mood AS ENUM (\'a\')', 'CREATE TABLE later (id integer PRIMARY KEY, m later_mood)', 'SELECT 1 / 0'],
    }));
  } finally {
    await session.close();
  }
  t.is(await scalar(target, "SELECT (to_regclass('later') IS NULL AND to_regtype('later_mood') IS NULL)::text"), 'true');
  t.is(await scalar(target, "SELECT string_agg(table_name || ':' || state, ',') FROM dataops_created_table"), 'orders:created');

  // A retried first attempt: the pending migration fails part way (V2 applied, V3 not); the
  // fixed retry applies V3; the version before stays the first attempt's.
  const other = await freshTargetDatabase(t, 'postgres');
  await schemaStep(context('postgres', 'postgres', source, other, 'earlier', 'aaaaaaaa-0000-4000-8000-000000000001', [V1]));
  const broken = { ...V3, up: 'CREATE TABLE flags (name varchar(40) PRIMARY KEY); SELECT 1 / 0' };
  await t.throwsAsync(schemaStep(context('postgres', 'postgres', source, other, 'q', 'aaaaaaaa-0000-4000-8000-000000000006', [V1, V2, broken])), { message: /migration 3 \(flags\) failed at statement 2/ });
  t.is(await version(other), '2');
  const fixed = context('postgres', 'postgres', source, other, 'q', 'aaaaaaaa-0000-4000-8000-000000000006', [V1, V2, V3]);
  t.deepEqual((await schemaStep(fixed)).versionBefore, '1');
  const down = await rollbackStep(fixed, { versionBefore: '2', action: 'DownMigrations' });
  t.deepEqual(down.reverted, ['3', '2']);
  t.is(await version(other), '1');
});
