// Attacks on a migration's identity in the target's bookkeeping, on real servers: a migration
// re-created under the same name after a retired run, a schema-qualified name for the same table,
// two migrations claiming one table at once, a forged or oversized identity, bookkeeping tables
// created by two migrations at once, and copy keys that cannot resume safely (a nullable key
// column, an INVALID PostgreSQL unique index). Each is refused or harmless, and the earlier
// migration's table keeps its rows.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { ensureCheckpointTable } from '../../src/engine/copy/checkpoint.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, planStep, PlanRefusedError, schemaStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { retireStep, validateStep } from '../../src/engine/pipeline/validate-steps.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROWS = 500;
const UID_A = 'a0000000-0000-4000-8000-00000000000a';
const UID_B = 'b0000000-0000-4000-8000-00000000000b';

type Tables = NonNullable<DataMigration['spec']['tables']>;

function manifest(engine: Engine, uid: string, tables: Tables = [{ name: 'orders' }], createMissingTables = false): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders', namespace: 'test', uid },
    spec: {
      source: { engine, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine, secretRef: { name: 't' } },
      schema: { createMissingTables }, tables, strategy: { batchSize: 100, parallelism: 1 },
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
    if (error instanceof PlanRefusedError) return error.reasons.join('\n');
    throw error;
  }
  return '';
}

async function manifestFile(text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'identity-attacks-')), 'm.yaml');
  await writeFile(file, text);
  return file;
}

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: after a retired run into a table that was there before, a re-created migration (new uid) is refused`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    await execSql(target, [ordersDdl(engine)]);
    const first = context(source, target, manifest(engine, UID_A));
    await copyStep(first);
    t.true((await validateStep(first)).passed);
    await retireStep(first);
    await execSql(target, ["INSERT INTO orders VALUES (999999, 'application')"]);
    const second = context(source, target, manifest(engine, UID_B));
    const reason = (await planStep(second)).plan.errors.join('\n');
    t.regex(reason, new RegExp(`migration uid ${UID_A} \\(test/orders\\): tables written \\S*orders`));
    t.regex(reason, /forget its records: DELETE FROM .*dataops_claimed_table/);
    t.regex(await refusal(copyStep(second)), new RegExp(UID_A));
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS + 1));
  });

  test(`${engine}: a schema-qualified target name is the same table: another migration is refused`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    await execSql(target, [ordersDdl(engine)]);
    await copyStep(context(source, target, manifest(engine, UID_A)));
    const schema = await scalar(target, engine === 'postgres' ? 'SELECT current_schema()' : 'SELECT DATABASE()');
    const qualified = context(source, target, manifest(engine, UID_B, [{ name: 'orders', target: `${schema}.orders` }]));
    t.regex((await planStep(qualified)).plan.errors.join('\n'), new RegExp(`migration uid ${UID_A}.*orders`));
    t.regex(await refusal(copyStep(qualified)), new RegExp(UID_A));
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS));
  });

  test(`${engine}: two migrations copying one table at once: one claims it, the other is refused`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    await execSql(target, [ordersDdl(engine)]);
    const results = await Promise.allSettled([copyStep(context(source, target, manifest(engine, UID_A))), copyStep(context(source, target, manifest(engine, UID_B)))]);
    const refused = results.filter((r) => r.status === 'rejected');
    t.is(refused.length, 1, JSON.stringify(results.map((r) => r.status)));
    t.true(refused[0]?.status === 'rejected' && refused[0].reason instanceof PlanRefusedError, String(refused[0]?.status === 'rejected' ? refused[0].reason : ''));
    t.is(await scalar(target, 'SELECT count(DISTINCT migration_uid) FROM dataops_claimed_table'), '1');
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), String(ROWS));
  });

  test(`${engine}: a copy key of the primary key plus a nullable column is refused`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, seed(engine));
    const plan = await planStep(context(source, target, manifest(engine, UID_A, [{ name: 'orders', key: ['id', 'note'] }], true)));
    t.regex(plan.plan.errors.join('\n'), /key \(id, note\) is not proven unique on the source \(key column\(s\) note allow NULL/);
  });
}

test('a forged uid shaped like namespace/name, or a name too long for the bookkeeping, is bad input (exit 2)', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, seed('postgres'));
  const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };
  const body = `spec:
  source: {engine: postgres, secretRef: {name: s}, acceptWritableRole: true}
  target: {engine: postgres, secretRef: {name: t}}
  schema: {createMissingTables: true}
  tables: [{name: orders}]
`;
  const forged = await dmctl(['plan', '-f', await manifestFile(`apiVersion: dataops.dev/v1alpha1\nkind: DataMigration\nmetadata: {name: x, namespace: test, uid: test/victim}\n${body}`)], env);
  t.is(forged.code, 2);
  t.regex(String(forged.events.find((e) => e.event === 'error')?.message), /metadata.uid "test\/victim" is not a Kubernetes uid/);
  const long = await dmctl(['plan', '-f', await manifestFile(`apiVersion: dataops.dev/v1alpha1\nkind: DataMigration\nmetadata: {name: ${'n'.repeat(245)}, namespace: test}\n${body}`)], env);
  t.is(long.code, 2);
  t.regex(String(long.events.find((e) => e.event === 'error')?.message), /is 250 characters; the target's bookkeeping holds at most 240/);
});

test('postgres: migrations creating the bookkeeping tables of a fresh target at once all succeed', async (t) => {
  const target = await freshDatabase(t, 'postgres');
  const sessions = await Promise.all([1, 2, 3, 4, 5, 6].map(() => openSession(target, { readOnly: false })));
  try {
    const results = await Promise.allSettled(sessions.map((s) => ensureCheckpointTable(s)));
    t.deepEqual(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok')), sessions.map(() => 'ok'));
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
});

test('postgres: an INVALID unique index proves no key unique and is not carried over', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, code varchar(20) NOT NULL)', "INSERT INTO orders SELECT g, 'c' || (g % 10) FROM generate_series(1, 100) g"]);
  // CONCURRENTLY over duplicates fails and leaves the index behind, INVALID.
  await t.throwsAsync(execSql(source, ['CREATE UNIQUE INDEX CONCURRENTLY orders_code ON orders (code)']));
  t.is(await scalar(source, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'orders_code' AND NOT i.indisvalid"), '1');
  const byCode = context(source, target, manifest('postgres', UID_A, [{ name: 'orders', key: ['code'] }], true));
  t.regex((await planStep(byCode)).plan.errors.join('\n'), /key \(code\) is not proven unique/);
  const byId = context(source, target, manifest('postgres', UID_B, [{ name: 'orders' }], true));
  await schemaStep(byId);
  t.is((await copyStep(byId)).rowsThisRun, 100);
  t.is(await scalar(target, "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders' AND indexdef LIKE '%(code)%'"), '0');
});
