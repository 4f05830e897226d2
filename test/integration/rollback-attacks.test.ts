// Rollbacks that must not act, on real servers: TruncateTables on a table that held rows before
// the copy (refused, exit 3, nothing emptied) while a table that was empty at the claim is
// emptied; a retired migration's DownMigrations (refused); DownMigrations over versions another
// migration applied (refused); a MySQL intent record naming a table someone else created later
// (never dropped).
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, PlanRefusedError, schemaStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { retireStep, rollbackStep } from '../../src/engine/pipeline/validate-steps.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type InlineMigration = NonNullable<NonNullable<DataMigration['spec']['schema']>['migrations']>[number];
const V1: InlineMigration = { version: '1', description: 'audit', up: 'CREATE TABLE audit (id integer PRIMARY KEY)', down: 'DROP TABLE audit' };
const V2: InlineMigration = { version: '2', description: 'flags', up: 'CREATE TABLE flags (id integer PRIMARY KEY)', down: 'DROP TABLE flags' };
const UID_A = 'a0000000-0000-4000-8000-0000000000a1';
const UID_B = 'b0000000-0000-4000-8000-0000000000b1';
const ROWS = 300;

function manifest(engine: Engine, name: string, uid: string, migrations: InlineMigration[] = [], createMissingTables = false): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name, namespace: 'test', uid },
    spec: {
      source: { engine, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine, secretRef: { name: 't' } },
      schema: { createMissingTables, migrations }, tables: [{ name: 'orders' }], strategy: { batchSize: 100, parallelism: 1 },
      rollback: { schemaAction: 'TruncateTables' },
    },
  };
}

const context = (source: string, target: string, migration: DataMigration): StepContext => ({ source: { url: source }, target: { url: target }, settings: engineSettings(migration) });
const ordersDdl = (engine: Engine): string => `CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(40))${engine === 'mysql' ? ' ENGINE=InnoDB' : ''}`;
const seed = (engine: Engine): string[] => [
  ordersDdl(engine),
  engine === 'postgres' ? `INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, ${String(ROWS)}) g` : `INSERT INTO orders SELECT seq, CONCAT('n', seq) FROM seq_1_to_${String(ROWS)}`,
];

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PlanRefusedError) return error.message;
    throw error;
  }
  return '';
}

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: TruncateTables empties only a table that was empty when the migration claimed it; otherwise refuses (exit 3)`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    // The application's rows were in the table before the copy.
    await execSql(target, [ordersDdl(engine), "INSERT INTO orders VALUES (999999, 'application')"]);
    const m = context(source, target, manifest(engine, 'm', UID_A));
    await copyStep(m);
    t.regex(await refusal(rollbackStep(m, { versionBefore: null, action: 'TruncateTables' })), /TruncateTables refused, nothing was emptied:\n.*table orders held rows before this migration first wrote to it/);
    const file = join(await mkdtemp(join(tmpdir(), 'rollback-attacks-')), 'm.yaml');
    await writeFile(file, JSON.stringify(manifest(engine, 'm', UID_A)));
    const run = await dmctl(['step', 'rollback', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
    t.is(run.code, 3, JSON.stringify(run.events.filter((e) => e.event === 'error')));
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS + 1), 'nothing was emptied');

    // Empty when claimed: the rows are the migration's, and the table is emptied.
    const other = await freshTargetDatabase(t, engine);
    await execSql(other, [ordersDdl(engine)]);
    const n = context(source, other, manifest(engine, 'n', UID_B));
    await copyStep(n);
    t.deepEqual((await rollbackStep(n, { versionBefore: null, action: 'TruncateTables' })).truncatedTables, ['orders']);
    t.is(await scalar(other, 'SELECT count(*) FROM orders'), '0');
  });

  test(`${engine}: a retired migration's rollback is refused, and DownMigrations never undoes another migration's versions`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    const a = context(source, target, manifest(engine, 'a', UID_A, [V1]));
    await schemaStep(a);
    const b = context(source, target, manifest(engine, 'b', UID_B, [V1, V2]));
    await schemaStep(b);
    // A's version before is none: undoing to it would undo B's version 2 too.
    t.regex(await refusal(rollbackStep(a, { versionBefore: null, action: 'DownMigrations' })), /DownMigrations refused, nothing was undone:\n.*version 2 was applied by another migration \(datamigration uid=b0000000/);
    t.is(await scalar(target, 'SELECT count(*) FROM dataops_schema_history'), '2');
    // B finishes; then its own rollback is no longer its to do.
    await retireStep(b);
    t.regex(await refusal(rollbackStep(b, { versionBefore: '1', action: 'DownMigrations' })), /DownMigrations refused, nothing was changed:\n.*finished at/);
    t.regex(await refusal(rollbackStep(b, { versionBefore: '1', action: 'DropCreatedTables' })), /finished at/);
    t.is(await scalar(target, 'SELECT count(*) FROM dataops_schema_history'), '2');
    t.is(await scalar(target, 'SELECT count(*) FROM flags'), '0', 'version 2\'s table is still there');
  });
}

test('postgres: versions whose history names no migration are not undone when another migration started above this one', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, seed('postgres'));
  const a = context(source, target, manifest('postgres', 'a', UID_A, [V1]));
  await schemaStep(a);
  await schemaStep(context(source, target, manifest('postgres', 'b', UID_B, [V1, V2])));
  // History rows as an earlier version (or a person) wrote them: no uid in installed_by.
  await execSql(target, ["UPDATE dataops_schema_history SET installed_by = 'someone'"]);
  t.regex(await refusal(rollbackStep(a, { versionBefore: null, action: 'DownMigrations' })), new RegExp(`migration uid ${UID_B} \\(test/b\\) started at version 1, above this migration's none`));
  t.is(await scalar(target, 'SELECT count(*) FROM dataops_schema_history'), '2');
});

test('mysql: an intent record never claims a table someone else created later', async (t) => {
  const source = await freshDatabase(t, 'mysql');
  const target = await freshTargetDatabase(t, 'mysql');
  await execSql(source, seed('mysql'));
  const p = context(source, target, manifest('mysql', 'p', UID_A, [], true));
  await schemaStep(p);
  // The step stopped after its intent an hour ago, before its CREATE; someone made the table since.
  await execSql(target, [
    `INSERT INTO dataops_created_table (migration_uid, table_name, state, recorded_at) VALUES ('${UID_A}', 'late', 'intended', NOW(6) - INTERVAL 1 HOUR)`,
    'CREATE TABLE late (id integer PRIMARY KEY) ENGINE=InnoDB', 'INSERT INTO late VALUES (1)',
  ]);
  await schemaStep(p);
  t.is(await scalar(target, "SELECT state FROM dataops_created_table WHERE table_name = 'late'"), 'intended');
  const dropped = await rollbackStep(p, { versionBefore: null, action: 'DropCreatedTables' });
  t.deepEqual(dropped.droppedTables, ['orders']);
  t.true(dropped.warnings.some((w) => /table late was left in place/.test(w)), dropped.warnings.join('\n'));
  t.is(await scalar(target, 'SELECT count(*) FROM late'), '1');
});
