// A migration is its DataMigration's uid, not its name, on real servers: a migration deleted and
// re-created under the same name is refused (naming the earlier uid and tables) and cannot touch
// the earlier tables; a manifest file without a uid has a stable local identity, so a rerun
// resumes; rows written before uids existed are adopted by the migration of that name; a copy key
// that is not unique on the source is refused by the plan.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { copiedRowsByTable } from '../../src/engine/copy/checkpoint.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, planStep, PlanRefusedError, schemaStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { retireStep, rollbackStep, validateStep } from '../../src/engine/pipeline/validate-steps.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROWS = 3000;

function manifest(from: Engine, to: Engine, name: string, uid: string | undefined, tables: NonNullable<DataMigration['spec']['tables']> = [{ name: 'orders' }], createdAt?: Date): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name, namespace: 'test', ...(uid ? { uid } : {}), ...(createdAt ? { creationTimestamp: createdAt } : {}) },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      schema: { createMissingTables: true }, tables, strategy: { batchSize: 200, parallelism: 2 },
      rollback: { schemaAction: 'DropCreatedTables' },
    },
  };
}

const seed = (engine: Engine): string[] => [
  `CREATE TABLE orders (id bigint PRIMARY KEY, grp integer NOT NULL, code varchar(20) NOT NULL, note varchar(40))${engine === 'mysql' ? ' ENGINE=InnoDB' : ''}`,
  'CREATE UNIQUE INDEX orders_code ON orders (code)',
  engine === 'postgres'
    ? `INSERT INTO orders SELECT g, g % 7, 'c' || g, 'note ' || g FROM generate_series(1, ${String(ROWS)}) g`
    : `INSERT INTO orders SELECT seq, seq % 7, CONCAT('c', seq), CONCAT('note ', seq) FROM seq_1_to_${String(ROWS)}`,
];

const context = (source: string, target: string, migration: DataMigration): StepContext => ({ source: { url: source }, target: { url: target }, settings: engineSettings(migration) });

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PlanRefusedError) return error.reasons.join('\n');
    throw error;
  }
  return '';
}

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: a migration re-created under the same name (another uid) is refused and never touches the earlier tables`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    const first = context(source, target, manifest(engine, engine, 'orders', '11111111-1111-4111-8111-111111111111'));
    await schemaStep(first);
    await copyStep(first);
    t.true((await validateStep(first)).passed);
    // What the application writes once the first migration is done.
    await execSql(target, ["INSERT INTO orders (id, grp, code, note) VALUES (999999, 1, 'app', 'written by the application')"]);

    // Not retired yet (the operator has not called it): the second migration is refused all the same.
    const second = context(source, target, manifest(engine, engine, 'orders', '22222222-2222-4222-8222-222222222222'));
    const planned = await planStep(second);
    const reason = planned.plan.errors.join('\n');
    t.regex(reason, /another migration, migration uid 11111111-1111-4111-8111-111111111111 \(test\/orders\): checkpoints orders/);
    t.regex(reason, /created tables orders/);
    t.regex(reason, /This migration \(uid 22222222-2222-4222-8222-222222222222, test\/orders\) will not touch them/);
    t.regex(reason, /forget its records: DELETE FROM/);
    t.regex(await refusal(schemaStep(second)), /uid 11111111-1111-4111-8111-111111111111/);
    t.regex(await refusal(copyStep(second)), /uid 11111111-1111-4111-8111-111111111111/);
    const rollback = await rollbackStep(second, { versionBefore: null, action: 'DropCreatedTables' });
    t.deepEqual(rollback.droppedTables, [], 'rollback acts only on its own uid');
    await t.throwsAsync(rollbackStep(second, { versionBefore: null, action: 'TruncateTables' }), { message: /TruncateTables refused, nothing was emptied:\s+.*11111111-1111-4111-8111-111111111111/ });
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS + 1), 'the earlier tables are untouched');

    // The first one finishes: checkpoints retired, its table is the application's.
    t.true((await retireStep(first)).checkpoints > 0);
    t.is(await scalar(target, "SELECT count(*) FROM dataops_copy_checkpoint WHERE migration_uid = '11111111-1111-4111-8111-111111111111'"), '0');
    t.regex((await planStep(second)).plan.errors.join('\n'), /migration uid 11111111-1111-4111-8111-111111111111 \(test\/orders\): created tables orders/, 'still refused: the table is the first one\'s');
    t.regex((await planStep(first)).plan.errors.join('\n'), /finished at .*: running it again would copy into the tables it filled/);
    await t.throwsAsync(rollbackStep(first, { versionBefore: null, action: 'DropCreatedTables' }), { message: /DropCreatedTables refused, nothing was changed:\s+.*finished at/ }, 'a finished migration\'s tables are never dropped');
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS + 1));

    // The documented way out: forget the earlier migration's records (the SQL the refusal gives).
    const forget = /forget its records: (.*?); or, to continue/.exec(reason)?.[1] ?? '';
    await execSql(target, forget.split('; '));
    t.deepEqual((await planStep(second)).plan.errors, [], 'nothing of another migration is left');
  });

  test(`${engine}: a manifest without a uid has a stable local identity: a stopped copy resumes under it`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    const local = context(source, target, manifest(engine, engine, 'local', undefined));
    t.is(local.settings.uid, 'local:test/local');
    await schemaStep(local);
    const stop = new AbortController();
    await t.throwsAsync(copyStep({ ...local, settings: { ...local.settings, parallelism: 1 }, signal: stop.signal }, (tables) => {
      if (tables.reduce((sum, s) => sum + s.rowsCopied, 0) >= 600) stop.abort(new Error('stopped'));
    }));
    const copied = Number(await scalar(target, 'SELECT count(*) FROM orders'));
    t.true(copied > 0 && copied < ROWS);
    t.is(await scalar(target, 'SELECT count(DISTINCT migration_uid) FROM dataops_copy_checkpoint'), '1');
    t.is(await scalar(target, 'SELECT min(migration_uid) FROM dataops_copy_checkpoint'), 'local:test/local');
    // A rerun (a new process, the same file) is the same migration.
    const rerun = await copyStep(context(source, target, manifest(engine, engine, 'local', undefined)));
    t.is(rerun.rowsThisRun, ROWS - copied, 'only what was left');
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS));
  });

  test(`${engine}: the plan refuses a copy key that is not unique on the source, and takes a unique NOT NULL index`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    const file = join(await mkdtemp(join(tmpdir(), 'identity-')), 'grp.yaml');
    await writeFile(file, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: grp, namespace: test}
spec:
  source: {engine: ${engine}, secretRef: {name: s}, acceptWritableRole: true}
  target: {engine: ${engine}, secretRef: {name: t}}
  schema: {createMissingTables: true}
  tables: [{name: orders, key: [grp]}]
`);
    const run = await dmctl(['plan', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
    t.is(run.code, 3);
    t.regex(String(run.events.find((e) => e.event === 'error')?.message), /table orders: key \(grp\) is not proven unique on the source/);
    const byCode = context(source, target, manifest(engine, engine, 'code', undefined, [{ name: 'orders', key: ['code'] }]));
    t.deepEqual((await planStep(byCode)).plan.errors, []);
    await schemaStep(byCode);
    t.is((await copyStep(byCode)).rowsThisRun, ROWS);
  });

  test(`${engine}: rows written before uids existed are adopted, once, by the migration of that name created before them`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    const text = engine === 'postgres' ? 'text' : 'varchar(255)';
    const options = engine === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin' : '';
    const time = engine === 'postgres' ? 'timestamptz' : 'datetime(6)';
    // The bookkeeping as the previous version wrote it: keyed by namespace/name. Its copy of
    // orders is done; another migration's rows name another table.
    await execSql(target, [
      `CREATE TABLE dataops_copy_checkpoint (migration ${text} NOT NULL, table_name ${text} NOT NULL, shard integer NOT NULL, last_key ${engine === 'postgres' ? 'text' : 'longtext'}, rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, boundaries ${engine === 'postgres' ? 'text' : 'longtext'} NOT NULL, updated_at ${time} NOT NULL, PRIMARY KEY (migration, table_name, shard))${options}`,
      `CREATE TABLE dataops_created_table (migration ${text} NOT NULL, table_name ${text} NOT NULL, PRIMARY KEY (migration, table_name))${options}`,
      `CREATE TABLE orders (id bigint PRIMARY KEY, grp integer NOT NULL, code varchar(20) NOT NULL, note varchar(40))${engine === 'mysql' ? ' ENGINE=InnoDB' : ''}`,
      "INSERT INTO orders (id, grp, code, note) VALUES (1, 1, 'c1', 'note 1')",
      `INSERT INTO dataops_copy_checkpoint VALUES ('test/legacy', 'orders', 0, '["${String(ROWS)}"]', ${String(ROWS)}, true, '[]', ${engine === 'postgres' ? 'now()' : 'UTC_TIMESTAMP(6)'})`,
      `INSERT INTO dataops_copy_checkpoint VALUES ('test/other', 'elsewhere', 0, NULL, 5, false, '[]', ${engine === 'postgres' ? 'now()' : 'UTC_TIMESTAMP(6)'})`,
      "INSERT INTO dataops_created_table VALUES ('test/legacy', 'orders'), ('test/other', 'elsewhere')",
    ]);
    const legacy = context(source, target, manifest(engine, engine, 'legacy', '33333333-3333-4333-8333-333333333333', undefined, new Date(Date.now() - 3_600_000)));
    // The operator reads progress before any engine step of this version has upgraded the table.
    const session = await openSession(target, { readOnly: true });
    t.deepEqual(Object.fromEntries(await copiedRowsByTable(session, { uid: '33333333-3333-4333-8333-333333333333', name: 'test/legacy' })), { orders: { rowsCopied: ROWS, done: true } });
    await session.close();
    // Created after those rows were written (a migration re-created under the name), or without a
    // creation time (a local file): refused, with the SQL that adopts them explicitly.
    const later = context(source, target, manifest(engine, engine, 'legacy', '66666666-6666-4666-8666-666666666666', undefined, new Date(Date.now() + 3_600_000)));
    t.regex((await planStep(later)).plan.errors.join('\n'), /migration test\/legacy \(written by an operator version without uids\).*continue its work as this migration .*UPDATE/s);
    t.regex(await refusal(copyStep(later)), /migration test\/legacy \(written by an operator version without uids\)/);
    t.regex((await planStep(context(source, target, manifest(engine, engine, 'legacy', undefined)))).plan.errors.join('\n'), /migration test\/legacy \(written by an operator version without uids\)/);
    t.is(await scalar(target, "SELECT count(*) FROM dataops_copy_checkpoint WHERE migration_uid = 'test/legacy'"), '1', 'not adopted');
    t.deepEqual((await planStep(legacy)).plan.errors, [], 'its own name\'s rows are not another migration\'s');

    const copy = await copyStep(legacy);
    t.is(copy.rowsThisRun, 0, 'the adopted checkpoints say the copy is done, as they did');
    t.is(await scalar(target, "SELECT count(*) FROM dataops_copy_checkpoint WHERE migration_uid = '33333333-3333-4333-8333-333333333333'"), '1');
    t.is(await scalar(target, "SELECT count(*) FROM dataops_created_table WHERE migration_uid = '33333333-3333-4333-8333-333333333333' AND table_name = 'orders' AND state = 'created'"), '1');
    t.is(await scalar(target, "SELECT count(*) FROM dataops_copy_checkpoint WHERE migration_uid = 'test/other'"), '1', 'another name\'s rows stay as they were');

    // Once: a migration re-created under that name later (another uid) finds them the first one's.
    const recreated = context(source, target, manifest(engine, engine, 'legacy', '44444444-4444-4444-8444-444444444444'));
    t.regex((await planStep(recreated)).plan.errors.join('\n'), /migration uid 33333333-3333-4333-8333-333333333333 \(test\/legacy\)/);
    // A migration that targets the other name's table is told whose rows they are.
    const other = context(source, target, manifest(engine, engine, 'third', '55555555-5555-4555-8555-555555555555', [{ name: 'orders', target: 'elsewhere' }]));
    t.regex((await planStep(other)).plan.errors.join('\n'), /migration test\/other \(written by an operator version without uids\): checkpoints elsewhere/);
    t.deepEqual((await rollbackStep(legacy, { versionBefore: null, action: 'DropCreatedTables' })).droppedTables, ['orders'], 'adopted records are its own');
  });
}

test('dmctl run retires a migration whose validation passed; running it again is refused with the way out', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshDatabase(t, 'mysql');
  await execSql(source, seed('postgres'));
  const file = join(await mkdtemp(join(tmpdir(), 'identity-')), 'run.yaml');
  await writeFile(file, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: done, namespace: test}
spec:
  source: {engine: postgres, secretRef: {name: s}, acceptWritableRole: true}
  target: {engine: mysql, secretRef: {name: t}}
  schema: {createMissingTables: true}
  tables: [{name: orders}]
`);
  const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };
  const run = await dmctl(['run', '-f', file], env);
  t.is(run.code, 0, JSON.stringify(run.events.filter((e) => e.event === 'error')));
  t.true(run.events.some((e) => e.event === 'step' && e.step === 'retire' && e.state === 'succeeded'));
  t.is(await scalar(target, 'SELECT count(*) FROM dataops_copy_checkpoint'), '0');
  t.is(await scalar(target, "SELECT state FROM dataops_created_table WHERE migration_uid = 'local:test/done'"), 'retired');
  const again = await dmctl(['run', '-f', file], env);
  t.is(again.code, 3);
  t.regex(String(again.events.find((e) => e.event === 'error')?.message), /uid local:test\/done, test\/done\) finished at .*forget its records: DELETE FROM/);
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS), 'nothing was copied twice');
});
