// One copy spread over several pods, as the copy step's Indexed Job runs it: each pod takes its
// share of the (table, key range) units, at the same time as the others, on real servers. The
// target must end equal to the source with no row twice, the post-copy work (indexes, foreign
// keys) must run once, when the last unit is done, and a pod killed part way must resume.
import test from 'ava';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { readShardStates } from '../../src/engine/copy/checkpoint.ts';
import { recordSplits, unitsOf, unlessLocked, type PodShare } from '../../src/engine/copy/units.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, schemaStep, type CopyStepResult, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl, type CliRun } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';

const CUSTOMERS = 50;

function seed(engine: Engine, rows: number): string[] {
  if (engine === 'postgres') {
    return [
      'CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)',
      `INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, ${String(CUSTOMERS)}) g`,
      'CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL CONSTRAINT orders_customer_fk REFERENCES customers (id), note text, amount numeric(12,2))',
      'CREATE INDEX orders_customer ON orders (customer)',
      `INSERT INTO orders SELECT g, 1 + g % ${String(CUSTOMERS)}, CASE WHEN g % 9 = 0 THEN NULL ELSE 'order ' || g END, (g % 100000) / 100.0 FROM generate_series(1, ${String(rows)}) g`,
      'ANALYZE customers', 'ANALYZE orders',
    ];
  }
  return [
    'CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL) ENGINE=InnoDB',
    `INSERT INTO customers SELECT seq, CONCAT('customer ', seq) FROM seq_1_to_${String(CUSTOMERS)}`,
    'CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, note text, amount decimal(12,2), KEY orders_customer (customer), CONSTRAINT orders_customer_fk FOREIGN KEY (customer) REFERENCES customers (id)) ENGINE=InnoDB',
    `INSERT INTO orders SELECT seq, 1 + seq % ${String(CUSTOMERS)}, IF(seq % 9 = 0, NULL, CONCAT('order ', seq)), (seq % 100000) / 100 FROM seq_1_to_${String(rows)}`,
    'ANALYZE TABLE customers', 'ANALYZE TABLE orders',
  ];
}

const fingerprint = (engine: Engine, url: string): Promise<string> => scalar(url, engine === 'postgres'
  ? `SELECT count(*) || ':' || count(DISTINCT id) || ':' || sum(id) || ':' || sum(customer) || ':' || sum(amount) || ':' || sum(length(note)) || ':' || count(note) FROM orders`
  : `SELECT CONCAT(count(*), ':', count(DISTINCT id), ':', sum(id), ':', sum(customer), ':', sum(amount), ':', sum(length(note)), ':', count(note)) FROM orders`);

/** The target's indexes and foreign keys on orders, each name once per occurrence. */
async function indexesOf(engine: Engine, url: string): Promise<string> {
  return scalar(url, engine === 'postgres'
    ? `SELECT string_agg(name, ',' ORDER BY name) FROM (SELECT indexname AS name FROM pg_indexes WHERE tablename = 'orders'
         UNION ALL SELECT conname FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'f') n`
    : `SELECT GROUP_CONCAT(name ORDER BY name) FROM (SELECT DISTINCT INDEX_NAME AS name FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders'
         UNION ALL SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'orders') n`);
}

function manifest(from: Engine, to: Engine, strategy: NonNullable<DataMigration['spec']['strategy']>): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'pods', namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      schema: { createMissingTables: true }, tables: [{ name: 'customers' }, { name: 'orders' }], strategy,
    },
  };
}

/** Copied rows per pod share, from the checkpoints: what the recorded split gives each pod. */
async function rowsOfShare(target: string, migration: string, share: PodShare): Promise<number> {
  const session = await openSession(target, { readOnly: true });
  try {
    const states = await readShardStates(session, migration).catch(() => []);
    const shards = new Map<string, number>();
    for (const state of states) shards.set(state.table, Math.max(shards.get(state.table) ?? 0, state.shard + 1));
    const order = ['customers', 'orders'].filter((table) => shards.has(table));
    const units = new Set(unitsOf(order.map((table) => ({ table, boundaries: Array.from({ length: (shards.get(table) ?? 1) - 1 }, String) })), share).map((u) => `${u.table}#${String(u.shard)}`));
    return states.filter((s) => units.has(`${s.table}#${String(s.shard)}`)).reduce((sum, s) => sum + s.rowsCopied, 0);
  } finally {
    await session.close();
  }
}

for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: three pods copy their shares at once; one stopped part way resumes; post-copy work runs once`, async (t) => {
    const rows = 90_000;
    const source = await freshDatabase(t, from);
    const target = await freshTargetDatabase(t, to);
    await execSql(source, seed(from, rows));
    const settings = { ...engineSettings(manifest(from, to, { batchSize: 500, parallelism: 2, copyPods: 3 })), minRowsToShard: 10_000 };
    const context: StepContext = { source: { url: source }, target: { url: target }, settings };
    await schemaStep(context);

    // Pod 1 is stopped between two batches once it has copied some of its share.
    const stop = new AbortController();
    const pods = [0, 1, 2].map((index) => copyStep({ ...context, pod: { index, count: 3 }, ...(index === 1 ? { signal: stop.signal } : {}) }, index === 1
      ? (tables) => { if (tables.reduce((sum, s) => sum + s.rowsCopied, 0) >= 3000) stop.abort(new Error('pod 1 stopped')); }
      : undefined));
    const [first, stopped, third] = await Promise.allSettled(pods);
    t.is(stopped?.status, 'rejected');
    const finished = [first, third].map((r) => (r?.status === 'fulfilled' ? r.value : undefined));
    t.deepEqual(finished.map((r) => r?.postCopy), ['pending', 'pending'], 'pod 1\'s units are not done: no post-copy work yet');
    t.is(await indexesOf(to, target), to === 'postgres' ? 'orders_pkey' : 'PRIMARY', 'only the key made before the copy');

    // 6 ranges of orders (parallelism 2 × 3 pods), after customers' one: pod 1 has two of them.
    const session = await openSession(target, { readOnly: true });
    const states = await readShardStates(session, settings.uid);
    await session.close();
    t.is(states.filter((s) => s.table === 'orders').length, 6);
    t.is(states.filter((s) => s.table === 'customers').length, 1);
    const share = await rowsOfShare(target, settings.uid, { index: 1, count: 3 });
    t.true(share >= 3000 && share < rows / 3, `pod 1 stopped with ${String(share)} rows of its share`);

    const rerun = await copyStep({ ...context, pod: { index: 1, count: 3 } });
    t.true(rerun.rowsThisRun > 0);
    t.is(rerun.rowsThisRun, rerun.tables.reduce((sum, s) => sum + s.rowsCopied, 0) - share, 'the rerun copied only what its share lacked');
    t.is(rerun.postCopy, 'ran');
    t.is(rerun.postCopyStatements, 2, 'the index and the foreign key');
    t.deepEqual(rerun.pod, { index: 1, count: 3 });
    const all: CopyStepResult[] = [...finished.filter((r) => r !== undefined), rerun];
    t.is(all.reduce((sum, r) => sum + r.tables.filter((s) => s.target === 'orders').reduce((n, s) => n + s.rowsCopied, 0), 0), rows, 'the shares add up to the table');

    t.is(await fingerprint(to, target), await fingerprint(from, source));
    t.is(await scalar(target, 'SELECT count(*) FROM customers'), String(CUSTOMERS));
    t.is(await indexesOf(to, target), to === 'postgres' ? 'orders_customer,orders_customer_fk,orders_pkey' : 'orders_customer,orders_customer_fk,PRIMARY');

    // Any pod run again finds its share done and the post-copy work done: nothing happens twice.
    const again = await copyStep({ ...context, pod: { index: 2, count: 3 } });
    t.is(again.rowsThisRun, 0);
    t.is(again.postCopy, 'ran');
    t.is(again.postCopyStatements, 0);
  });
}

test('the first pod to record a table\'s split wins; the others read it back, whatever their source says', async (t) => {
  const target = await freshDatabase(t, 'postgres');
  const sessions = await Promise.all([0, 1, 2].map(() => openSession(target, { readOnly: false })));
  t.teardown(() => Promise.all(sessions.map((s) => s.close())));
  let planned = 0;
  // Three pods at once, each having read a different min/max on the source (it keeps changing).
  const views = [['100', '200'], ['150', '300', '450'], []];
  const splits = await Promise.all(sessions.map((session, i) => recordSplits(session, 'm', [{
    table: 'orders',
    plan: async () => {
      planned++;
      await new Promise((resolve) => setTimeout(resolve, 200));
      return views[i] ?? [];
    },
  }])));
  t.is(planned, 1, 'one pod planned; the others waited and read its split');
  t.true(splits.every((s) => JSON.stringify(s) === JSON.stringify(splits[0])), JSON.stringify(splits));
  const [session] = sessions;
  if (!session) throw new Error('no session');
  const recorded = await readShardStates(session, 'm');
  t.is(recorded.length, (splits[0]?.[0]?.boundaries.length ?? 0) + 1, 'a checkpoint row per shard, each once');
  t.true(recorded.every((s) => s.rowsCopied === 0 && !s.done));

  // The post-copy lock: while one pod holds it, another is told so instead of waiting.
  const [a, b] = sessions;
  if (!a || !b) throw new Error('no sessions');
  let release: () => void = () => undefined;
  const held = unlessLocked(a, 'm', 'finish', () => new Promise<string>((resolve) => { release = () => { resolve('ran'); }; }));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(await unlessLocked(b, 'm', 'finish', () => Promise.resolve('ran too')), undefined);
  release();
  t.is(await held, 'ran');
  t.is(await unlessLocked(b, 'm', 'finish', () => Promise.resolve('ran after')), 'ran after', 'released afterwards');
});

test('Phased over two pods: a phase starts only when both pods have finished the one before', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, seed('postgres', 40_000));
  const settings = {
    ...engineSettings(manifest('postgres', 'postgres', { type: 'Phased', batchSize: 500, parallelism: 2, copyPods: 2, phases: [{ name: 'big', tables: ['orders'] }, { name: 'small', tables: ['customers'] }] })),
    minRowsToShard: 10_000,
  };
  const context: StepContext = { source: { url: source }, target: { url: target }, settings };
  await schemaStep(context);
  const results = await Promise.all([0, 1].map((index) => copyStep({ ...context, pod: { index, count: 2 } })));
  t.is(results.reduce((sum, r) => sum + r.rowsThisRun, 0), 40_000 + CUSTOMERS);
  t.true(results.some((r) => r.postCopy === 'ran'));
  t.is(results.reduce((sum, r) => sum + r.postCopyStatements, 0), 2, 'the post-copy work ran once');
  // customers' checkpoints are written when its phase starts: after every range of orders was done.
  t.is(await scalar(target, `SELECT count(*) FROM dataops_copy_checkpoint WHERE table_name = 'orders'`), '4');
  t.is(await scalar(target, `SELECT (SELECT min(updated_at) FROM dataops_copy_checkpoint WHERE table_name = 'customers')
    >= (SELECT max(updated_at) FROM dataops_copy_checkpoint WHERE table_name = 'orders')`), 't');
  t.is(await fingerprint('postgres', target), await fingerprint('postgres', source));
});

/** `dmctl step copy` as a pod runs it (see dmctl()), with the termination message it leaves. */
async function copyPod(args: string[], env: Record<string, string>, killWhen?: () => Promise<boolean>): Promise<CliRun & { termination: string }> {
  const termination = join(await mkdtemp(join(tmpdir(), 'dmctl-pod-')), 'termination-log');
  const run = await dmctl(['step', 'copy', ...args], { ...env, DMO_TERMINATION_LOG: termination, DMO_MIN_ROWS_TO_SHARD: '10000' }, killWhen);
  return { ...run, termination: await readFile(termination, 'utf8').catch(() => JSON.stringify(run.events.filter((e) => e.event === 'error'))) };
}

test('mysql → postgres through dmctl processes: JOB_COMPLETION_INDEX and --pod; a SIGKILLed pod resumes', async (t) => {
  const rows = 150_000;
  const source = await freshDatabase(t, 'mysql');
  const target = await freshDatabase(t, 'postgres');
  await execSql(source, seed('mysql', rows));
  const spec = manifest('mysql', 'postgres', { batchSize: 300, parallelism: 2, copyPods: 2 });
  const file = join(await mkdtemp(join(tmpdir(), 'dmctl-')), 'migration.yaml');
  await writeFile(file, JSON.stringify(spec));
  const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };
  const settings = engineSettings(spec);
  await schemaStep({ source: { url: source }, target: { url: target }, settings });

  // Pod 0 as Kubernetes starts it (its index in the environment, the count from the manifest);
  // pod 1 by hand, killed once it has copied part of its share.
  const killed = copyPod(['-f', file, '--pod', '1/2'], env, async () => (await rowsOfShare(target, settings.uid, { index: 1, count: 2 })) >= 6000);
  const whole = copyPod(['-f', file], { ...env, JOB_COMPLETION_INDEX: '0' });
  const [one, zero] = await Promise.all([killed, whole]);
  t.is(one.signal, 'SIGKILL', 'the kill landed before pod 1 finished');
  t.is(zero.code, 0, zero.termination);
  const zeroResult = JSON.parse(zero.termination) as { pod: PodShare; postCopy: string; rowsThisRun: number };
  t.deepEqual(zeroResult.pod, { index: 0, count: 2 });
  t.is(zeroResult.postCopy, 'pending');
  const before = await rowsOfShare(target, settings.uid, { index: 1, count: 2 });
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), await scalar(target, "SELECT sum(rows_copied) FROM dataops_copy_checkpoint WHERE table_name = 'orders'"),
    'the target holds exactly the checkpointed rows');

  const resumed = await copyPod(['-f', file], { ...env, JOB_COMPLETION_INDEX: '1' });
  t.is(resumed.code, 0, resumed.termination);
  const result = JSON.parse(resumed.termination) as { pod: PodShare; postCopy: string; postCopyStatements: number; rowsThisRun: number; tables: { name: string; rowsCopied: number }[] };
  t.deepEqual(result.pod, { index: 1, count: 2 });
  t.is(result.rowsThisRun, (result.tables.find((s) => s.name === 'orders')?.rowsCopied ?? 0) + (result.tables.find((s) => s.name === 'customers')?.rowsCopied ?? 0) - before, 'resumed after its last batch');
  t.true(before > 0);
  t.is(result.postCopy, 'ran');
  t.is(result.postCopyStatements, 2);
  t.is(await fingerprint('postgres', target), await fingerprint('mysql', source));
  t.is(await indexesOf('postgres', target), 'orders_customer,orders_customer_fk,orders_pkey');

  const bad = await copyPod(['-f', file], { ...env, JOB_COMPLETION_INDEX: '2' });
  t.is(bad.code, 2, 'an index outside strategy.copyPods is a usage error');
});
