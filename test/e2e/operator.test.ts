// The operator end to end on the real kube-apiserver and controller manager: DataMigrations
// become step Jobs that the node stand-in runs (the engine CLI as a local process against real
// PostgreSQL and MariaDB); phases, conditions, Events, the blue-green Service switch, manual
// approval, rollback on failed validation, and preflight that waits for a missing Secret.
//
// Least privilege, proven: each test runs its own operator with the Helm chart's ServiceAccount
// (a token from the TokenRequest API, not the admin certificate) under RBAC authorization, with
// leader election on (test/support/operator.ts). Any permission the chart lacks fails these tests;
// the packaging tests check that the chart grants no more than src/controller uses.
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { execSql, scalar } from '../support/sql.ts';
import { freshNamespace, kubectl, testKubeConfig } from '../support/kube.ts';
import { runOperator, type TestOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';
import { limitConcurrency } from '../support/slots.ts';
import { eventReasons, getMigration, waitForPhase } from '../support/migrations.ts';

const kc = testKubeConfig();
// Each test drives whole migrations: three at a time keep every step well inside its deadline.
const oneOfThree = limitConcurrency(3);
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);


async function seedOrders(engine: Engine, url: string, rows: number): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    if (engine === 'postgres') {
      await session.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2))');
      await session.query(`INSERT INTO orders SELECT g, 'customer ' || (g % 97), g / 100.0 FROM generate_series(1, ${String(rows)}) g`);
    } else {
      await session.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer varchar(100) NOT NULL, amount decimal(10,2)) ENGINE=InnoDB');
      await session.query(`INSERT INTO orders SELECT seq, CONCAT('customer ', seq % 97), seq / 100 FROM seq_1_to_${String(rows)}`);
    }
  } finally {
    await session.close();
  }
}


/** A test's namespace with its own operator, a seeded source and an empty target, and their Secrets. */
async function stage(t: ExecutionContext, prefix: string, from: Engine, to: Engine, rows: number): Promise<{ namespace: string; operator: TestOperator; source: string; target: string }> {
  const namespace = await freshNamespace(t, prefix);
  const operator = await runOperator(t, namespace);
  const source = await freshDatabase(t, from);
  const target = await freshTargetDatabase(t, to);
  await seedOrders(from, source, rows);
  await createSecret(namespace, 'source-db', source);
  await createSecret(namespace, 'target-db', target);
  return { namespace, operator, source, target };
}

/** spec.source and spec.target naming the Secrets stage() creates. */
const endpoints = (from: Engine, to: Engine): Pick<DataMigration['spec'], 'source' | 'target'> => ({
  // The test servers' admin user is a superuser: accepted (a read-only role is refused by default).
  source: { engine: from, secretRef: { name: 'source-db' }, acceptWritableRole: true },
  target: { engine: to, secretRef: { name: 'target-db' } },
});

async function createSecret(namespace: string, name: string, url: string): Promise<void> {
  await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
}

async function apply(namespace: string, migration: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', ...migration } });
}


test('PostgreSQL → MariaDB with manual approval: schema, copy, validation, approval, Service switched, Succeeded', oneOfThree(async (t) => {
  const { namespace, source, target } = await stage(t, 'op-happy', 'postgres', 'mysql', 20_000);
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'shop', annotations: { 'dataops.dev/cutover-by': 'shop-move' } }, spec: { selector: { app: 'shop', track: 'blue' }, ports: [{ port: 80 }] } } });
  await apply(namespace, {
    metadata: { name: 'shop-move' },
    spec: {
      ...endpoints('postgres', 'mysql'),
      schema: {
        createMissingTables: true,
        migrations: [{ version: '1', description: 'audit table', up: 'CREATE TABLE audit (id int PRIMARY KEY)', down: 'DROP TABLE audit' }],
      },
      tables: [{ name: 'orders' }],
      strategy: { batchSize: 1000, parallelism: 2 },
      validation: { rowCount: true, checksum: { mode: 'Full' }, rules: [{ name: 'all-rows', target: 'SELECT count(*) FROM orders', expect: '20000' }] },
      cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual' },
    },
  });

  const waiting = await waitForPhase(namespace, 'shop-move', ['AwaitingApproval', 'Failed']);
  t.is(waiting.status?.phase, 'AwaitingApproval', waiting.status?.message);
  t.is(waiting.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'AwaitingApproval');
  t.is(waiting.status?.schema?.version, '1');
  t.deepEqual(waiting.status?.schema?.createdTables, ['orders']);
  t.true(waiting.status?.validation?.passed);
  t.is((await core.readNamespacedService({ name: 'shop', namespace })).spec?.selector?.track, 'blue', 'no switch before approval');

  await custom.patchNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'shop-move',
    body: { metadata: { annotations: { 'dataops.dev/approve': 'true' } } },
  }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const done = await waitForPhase(namespace, 'shop-move', ['Succeeded', 'Failed']);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.deepEqual((await core.readNamespacedService({ name: 'shop', namespace })).spec?.selector, { app: 'shop', track: 'green' });
  t.is(done.status?.observedGeneration, done.metadata?.generation);
  const ready = done.status?.conditions?.find((c) => c.type === 'Ready');
  t.is(ready?.status, 'True');
  for (const type of ['SchemaReady', 'DataCopied', 'Validated', 'CutOver'] as const) {
    t.is(done.status?.conditions?.find((c) => c.type === type)?.status, 'True', type);
  }
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), '20000');
  const reasons = await eventReasons(namespace, 'shop-move');
  t.true(reasons.length >= 4, reasons.join(', '));
  const secretText = JSON.stringify({ status: done.status, reasons });
  t.false(secretText.includes(new URL(source).password), 'no password in status or events');
}));

test('failed validation rolls back: down migrations run, the Service stays on blue, the source is untouched', oneOfThree(async (t) => {
  const namespace = await freshNamespace(t, 'op-rollback');
  await runOperator(t, namespace);
  const source = await freshDatabase(t, 'mysql');
  const target = await freshDatabase(t, 'postgres');
  await seedOrders('mysql', source, 5_000);
  const sourceBefore = await scalar(source, 'SELECT CONCAT(count(*), sum(id), sum(amount)) FROM orders');
  await createSecret(namespace, 'source-db', source);
  await createSecret(namespace, 'target-db', target);
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'shop', annotations: { 'dataops.dev/cutover-by': 'doomed' } }, spec: { selector: { track: 'blue' }, ports: [{ port: 80 }] } } });
  await apply(namespace, {
    metadata: { name: 'doomed' },
    spec: {
      ...endpoints('mysql', 'postgres'),
      schema: { migrations: [{ version: '1', description: 'orders', up: 'CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2))', down: 'DROP TABLE orders' }] },
      tables: [{ name: 'orders' }],
      validation: { rowCount: true, rules: [{ name: 'impossible', target: 'SELECT count(*) FROM orders', expect: '0' }] },
      cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } },
      rollback: { onValidationFailure: true, schemaAction: 'DownMigrations', restoreService: true },
    },
  });
  const done = await waitForPhase(namespace, 'doomed', ['RolledBack', 'Failed', 'Succeeded']);
  t.is(done.status?.phase, 'RolledBack', done.status?.message);
  t.false(done.status?.validation?.passed);
  t.truthy(done.status?.validation?.checks?.find((c) => c.name === 'impossible' && !c.passed));
  t.is(done.status?.conditions?.find((c) => c.type === 'RolledBack')?.status, 'True');
  t.is((await core.readNamespacedService({ name: 'shop', namespace })).spec?.selector?.track, 'blue');
  t.is(await scalar(target, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders'"), '0', 'the down migration dropped the table');
  t.is(await scalar(source, 'SELECT CONCAT(count(*), sum(id), sum(amount)) FROM orders'), sourceBefore);
  t.true((await eventReasons(namespace, 'doomed')).includes('ValidationFailed'));
}));

test('a missing Secret holds the migration in Pending with a reason and an Event; it proceeds when the Secret appears', oneOfThree(async (t) => {
  const namespace = await freshNamespace(t, 'op-preflight');
  await runOperator(t, namespace);
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await seedOrders('postgres', source, 1_000);
  await createSecret(namespace, 'source-db', source);
  await apply(namespace, {
    metadata: { name: 'patient' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true },
      tables: [{ name: 'orders' }],
      validation: { rowCount: true, checksum: { mode: 'Full' } },
    },
  });
  const pending = await waitFor('SecretNotFound', async () => {
    const migration = await getMigration(namespace, 'patient');
    const ready = migration.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.reason === 'SecretNotFound' ? migration : undefined;
  }, 60_000, 250);
  t.is(pending.status?.phase, 'Pending');
  t.regex(pending.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '', /target-db/);
  t.true((await eventReasons(namespace, 'patient')).includes('SecretNotFound'));
  t.is((await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace })).items.length, 0, 'no Job before preflight passes');

  await createSecret(namespace, 'target-db', target);
  // The preflight backoff starts at 30 s; an edit of the resource wakes it at once.
  await custom.patchNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'patient', body: { metadata: { annotations: { poke: 'now' } } },
  }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const done = await waitForPhase(namespace, 'patient', ['Succeeded', 'Failed']);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), '1000');
}));

test('while the copy runs, status.progress reports the committed rows', oneOfThree(async (t) => {
  const rows = 1_000_000;
  const { namespace } = await stage(t, 'op-progress', 'postgres', 'postgres', rows);
  await apply(namespace, {
    metadata: { name: 'big' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true },
      tables: [{ name: 'orders' }],
      strategy: { batchSize: 500, parallelism: 1 },
      validation: { rowCount: true, checksum: { mode: 'None' } },
    },
  });
  const samples: { rows: number; summary: string }[] = [];
  const done = await waitFor('the migration to finish', async () => {
    const migration = await getMigration(namespace, 'big');
    const progress = migration.status?.progress;
    if (migration.status?.phase === 'Copying' && progress?.rowsCopied !== undefined) samples.push({ rows: progress.rowsCopied, summary: progress.summary ?? '' });
    return ['Succeeded', 'Failed'].includes(migration.status?.phase ?? '') ? migration : undefined;
  }, 180_000, 200);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  const partial = samples.filter((s) => s.rows > 0 && s.rows < rows);
  t.true(partial.length > 0, `progress seen while copying: ${JSON.stringify(samples.slice(0, 5))}`);
  t.regex(partial[0]?.summary ?? '', /% · 0\/1 tables · \d+ rows/);
}));

/** Passwords of the URLs: none may appear in status, Events or the operator's log. */
function assertNoPasswords(t: ExecutionContext, texts: string[], urls: string[]): void {
  for (const url of urls) {
    const password = decodeURIComponent(new URL(url).password);
    for (const text of texts) t.false(text.includes(password), 'a password leaked');
  }
}

async function jobsByStep(namespace: string): Promise<Record<string, number>> {
  const jobs = await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace });
  const counts: Record<string, number> = {};
  for (const job of jobs.items) {
    const step = job.metadata?.labels?.['dataops.dev/step'] ?? '?';
    counts[step] = (counts[step] ?? 0) + 1;
  }
  return counts;
}

test('MySQL → PostgreSQL big bang with migrations and transforms: Succeeded, green, `kubectl wait --for=condition=Ready` returns', oneOfThree(async (t) => {
  const { namespace, operator, source, target } = await stage(t, 'op-bigbang', 'mysql', 'postgres', 10_000);
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'shop', annotations: { 'dataops.dev/cutover-by': 'orders-to-pg' } }, spec: { selector: { app: 'shop', track: 'blue' }, ports: [{ port: 80 }] } } });
  await apply(namespace, {
    metadata: { name: 'orders-to-pg' },
    spec: {
      ...endpoints('mysql', 'postgres'),
      schema: { migrations: [{ version: '1', description: 'orders', up: 'CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(10,2))', down: 'DROP TABLE orders' }] },
      tables: [{ name: 'orders', columns: [{ name: 'customer', transforms: ['uppercase'] }] }],
      validation: { rowCount: true, rules: [{ name: 'revenue', source: 'SELECT sum(amount) FROM orders', target: 'SELECT sum(amount) FROM orders' }] },
      cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } },
    },
  });
  const wait = await kubectl(['wait', '--for=condition=Ready', 'dm/orders-to-pg', '--timeout=120s'], { namespace });
  t.is(wait.code, 0, wait.stderr);
  const done = await getMigration(namespace, 'orders-to-pg');
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.deepEqual((await core.readNamespacedService({ name: 'shop', namespace })).spec?.selector, { app: 'shop', track: 'green' });
  t.is(done.status?.schema?.version, '1');
  t.is(done.status?.tables?.find((table) => table.name === 'orders')?.rowsCopied, 10_000);
  t.is(done.status?.progress?.percent, 100);
  t.true(done.status?.validation?.passed);
  t.is(await scalar(target, "SELECT count(*) FROM orders WHERE customer = upper(customer) AND customer LIKE 'CUSTOMER %'"), '10000');
  // The project's own tables the target now holds are named where people look.
  t.true(['dataops_migration', 'dataops_schema_history'].every((table) => done.status?.bookkeeping?.includes(table)), JSON.stringify(done.status?.bookkeeping));
  const reasons = await eventReasons(namespace, 'orders-to-pg');
  t.true(reasons.includes('Succeeded'), reasons.join(', '));
  assertNoPasswords(t, [JSON.stringify(done), reasons.join(), operator.logs()], [source, target]);
}));

test('a step that keeps failing is retried per backoffLimit, then Failed with the step and the reason; no Job twice', oneOfThree(async (t) => {
  const namespace = await freshNamespace(t, 'op-failing');
  const operator = await runOperator(t, namespace);
  const source = await freshDatabase(t, 'postgres');
  await seedOrders('postgres', source, 100);
  const unreachable = 'postgres://app:n0t-the-real-one@127.0.0.1:1/shop';
  await createSecret(namespace, 'source-db', source);
  await createSecret(namespace, 'target-db', unreachable);
  await apply(namespace, {
    metadata: { name: 'unlucky' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true },
      tables: [{ name: 'orders' }],
      jobTemplate: { backoffLimit: 1 },
    },
  });
  // kstatus: a terminal failure ends `kubectl wait --for=condition=Stalled` (and Ready never turns True).
  const stalled = await kubectl(['wait', '--for=condition=Stalled', 'dm/unlucky', '--timeout=180s'], { namespace });
  t.is(stalled.code, 0, stalled.stderr);
  const failed = await waitForPhase(namespace, 'unlucky', ['Failed', 'Succeeded']);
  t.is(failed.status?.phase, 'Failed');
  t.is(failed.status?.conditions?.find((c) => c.type === 'Reconciling')?.status, 'False');
  t.is(failed.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
  // The printer column: `kubectl get dm` shows Ready beside the phase.
  const table = (await kubectl(['get', 'dm/unlucky'], { namespace })).stdout.trim().split('\n').map((line) => line.split(/\s{2,}/));
  t.is(table[1]?.[table[0]?.indexOf('READY') ?? -1], 'False', JSON.stringify(table));
  t.regex(failed.status?.message ?? '', /schema Job .* failed: BackoffLimitExceeded/);
  t.regex(failed.status?.message ?? '', /cannot connect to postgres/);
  t.deepEqual(await jobsByStep(namespace), { schema: 1 });
  const pods = await core.listNamespacedPod({ namespace, labelSelector: 'dataops.dev/step=schema' });
  t.is(pods.items.length, 2, 'one try and one retry (backoffLimit 1)');
  t.true((await eventReasons(namespace, 'unlucky')).includes('JobFailed'));
  assertNoPasswords(t, [JSON.stringify(failed), operator.logs()], [source, unreachable]);
}));

test('an operator restarted during the copy finds its Jobs, creates none twice, and finishes', oneOfThree(async (t) => {
  const { namespace, operator, target } = await stage(t, 'op-restart', 'postgres', 'mysql', 400_000);
  await apply(namespace, {
    metadata: { name: 'survivor' },
    spec: {
      ...endpoints('postgres', 'mysql'),
      schema: { createMissingTables: true },
      tables: [{ name: 'orders' }],
      strategy: { batchSize: 1000, parallelism: 1 },
      validation: { rowCount: true },
    },
  });
  await waitForPhase(namespace, 'survivor', ['Copying']);
  await operator.restart();
  const done = await waitForPhase(namespace, 'survivor', ['Succeeded', 'Failed'], 180_000);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.deepEqual(await jobsByStep(namespace), { schema: 1, copy: 1, validate: 1 });
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), '400000');
}));

test('a Job the API server refuses (an invalid jobTemplate) is explained in status and an Event; fixing the spec lets it run', oneOfThree(async (t) => {
  const { namespace } = await stage(t, 'op-refused', 'postgres', 'postgres', 500);
  await apply(namespace, {
    metadata: { name: 'greedy' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true },
      tables: [{ name: 'orders' }],
      // Valid for the CRD, refused by the API server: a request above its limit.
      jobTemplate: { resources: { requests: { cpu: '2' }, limits: { cpu: '1' } } },
    },
  });
  const refused = await waitFor('JobRejected', async () => {
    const migration = await getMigration(namespace, 'greedy');
    return migration.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'JobRejected' ? migration : undefined;
  }, 60_000, 250);
  t.regex(refused.status?.message ?? '', /HTTP 422 .*less than or equal to cpu limit.*spec\.jobTemplate/);
  t.true((await eventReasons(namespace, 'greedy')).includes('JobRejected'));
  t.deepEqual(await jobsByStep(namespace), {}, 'no Job was created');
  await custom.patchNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'greedy', body: { spec: { jobTemplate: { resources: { requests: { cpu: '500m' } } } } },
  }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const done = await waitForPhase(namespace, 'greedy', ['Succeeded', 'Failed']);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
}));

test('suspend holds a migration before its first Job; resuming lets it run', oneOfThree(async (t) => {
  const { namespace } = await stage(t, 'op-suspend', 'postgres', 'postgres', 500);
  await apply(namespace, {
    metadata: { name: 'later' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true },
      tables: [{ name: 'orders' }],
      suspend: true,
    },
  });
  const held = await waitFor('Suspended', async () => {
    const migration = await getMigration(namespace, 'later');
    return migration.status?.conditions?.find((c) => c.type === 'Ready')?.reason === 'Suspended' ? migration : undefined;
  }, 60_000, 250);
  t.is(held.status?.phase, 'Pending');
  await new Promise((resolve) => setTimeout(resolve, 2000));
  t.deepEqual(await jobsByStep(namespace), {}, 'no Job while suspended');
  await custom.patchNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'later', body: { spec: { suspend: false } },
  }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const done = await waitForPhase(namespace, 'later', ['Succeeded', 'Failed']);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
}));

test('deleting a DataMigration removes its Jobs through the finalizer and leaves the databases alone', oneOfThree(async (t) => {
  const { namespace, operator, target } = await stage(t, 'op-delete', 'postgres', 'postgres', 500);
  await apply(namespace, {
    metadata: { name: 'short-lived' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true }, tables: [{ name: 'orders' }],
    },
  });
  const done = await waitForPhase(namespace, 'short-lived', ['Succeeded', 'Failed']);
  t.deepEqual(done.metadata?.finalizers, ['dataops.dev/cleanup']);
  // What /metrics serves (the registry the HTTP server renders): series name it while it exists, none after.
  const scrape = (): Promise<string> => operator.current().metrics.registry.metrics();
  // The series come from the informer's cache, which sees the final status a moment after the API server.
  const series = `datamigration_info{namespace="${namespace}",name="short-lived",phase="${done.status?.phase ?? ''}"`;
  await waitFor('the series names it', async () => ((await scrape()).includes(series) ? true : undefined), 10_000, 100);
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'short-lived' });
  await waitFor('the DataMigration is gone', async () => (await getMigration(namespace, 'short-lived').then(() => undefined, () => true)), 60_000, 250);
  // The informer sees the delete a moment after the API server answers 404.
  await waitFor('no series names it', async () => (!(await scrape()).includes('name="short-lived"') ? true : undefined), 10_000, 100);
  // Each step its ledger records as ended was observed once (and this namespace's operator ran no other migration).
  const ended = (done.status?.steps ?? []).filter((e) => e.step !== 'finish' && e.requestedAt !== undefined && e.outcome !== undefined);
  t.true(ended.length > 0);
  const text = await scrape();
  for (const e of ended) t.true(text.includes(`datamigration_step_duration_seconds_count{step="${e.step}",outcome="${e.outcome ?? ''}"} 1\n`), `${e.step} ${e.outcome ?? ''}`);
  await waitFor('its Jobs are gone', async () => (Object.keys(await jobsByStep(namespace)).length === 0 ? true : undefined), 60_000, 250);
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), '500', 'the target keeps its data');
}));

test('abort stops a running copy (Failed, reason Aborted); retry resumes it from its checkpoints to Succeeded', oneOfThree(async (t) => {
  const { namespace, target } = await stage(t, 'op-abort', 'postgres', 'postgres', 600_000);
  await apply(namespace, {
    metadata: { name: 'second-thoughts' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true }, tables: [{ name: 'orders' }],
      // Small batches: the copy must still be running when the abort's Job deletion reaches its pod,
      // however busy the machine (a commit per 100 rows).
      strategy: { batchSize: 100, parallelism: 1 },
      validation: { rowCount: true },
    },
  });
  await waitForPhase(namespace, 'second-thoughts', ['Copying']);
  const annotate = (annotations: Record<string, string | null>): Promise<unknown> => custom.patchNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'second-thoughts', body: { metadata: { annotations } },
  }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  await annotate({ 'dataops.dev/abort': 'true' });
  const aborted = await waitForPhase(namespace, 'second-thoughts', ['Failed', 'Succeeded']);
  t.is(aborted.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'Aborted');
  const copiedBefore = Number(await scalar(target, 'SELECT count(*) FROM orders'));
  t.true(copiedBefore < 600_000, `the copy stopped part way (${String(copiedBefore)} rows)`);

  await annotate({ 'dataops.dev/abort': null, 'dataops.dev/retry': '1' });
  // Until the retry is taken the migration is still Failed: wait for the retried run to finish.
  const done = await waitFor('the retried run to finish', async () => {
    const migration = await getMigration(namespace, 'second-thoughts');
    return migration.status?.runId?.endsWith('-r1') && ['Succeeded', 'Failed'].includes(migration.status.phase ?? '') ? migration : undefined;
  }, 180_000, 250);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.regex(done.status?.runId ?? '', /-r1$/);
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), '600000');
  t.true((await eventReasons(namespace, 'second-thoughts')).includes('Retrying'));
}));

test('copyPods: 2 copies through an Indexed Job of two pods, each its share of the key ranges, and the results add up', oneOfThree(async (t) => {
  const rows = 600_000; // above the engine's threshold for splitting a table into key ranges
  const { namespace, source, target } = await stage(t, 'op-pods', 'postgres', 'postgres', rows);
  await execSql(source, ['ANALYZE orders']);
  await apply(namespace, {
    metadata: { name: 'spread' },
    spec: {
      ...endpoints('postgres', 'postgres'),
      schema: { createMissingTables: true }, tables: [{ name: 'orders' }],
      strategy: { batchSize: 5000, parallelism: 2, copyPods: 2 },
      validation: { rowCount: true, checksum: { mode: 'None' } },
    },
  });
  const done = await waitForPhase(namespace, 'spread', ['Succeeded', 'Failed'], 180_000);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.is(done.status?.tables?.find((table) => table.name === 'orders')?.rowsCopied, rows, 'the pods\' shares, summed');
  t.is(await scalar(target, 'SELECT count(*) || \':\' || count(DISTINCT id) FROM orders'), `${String(rows)}:${String(rows)}`);

  const [job] = (await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace, labelSelector: 'dataops.dev/step=copy' })).items;
  t.is(job?.spec?.completionMode, 'Indexed');
  t.is(job?.spec?.completions, 2);
  t.is(job?.status?.succeeded, 2);
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'dataops.dev/step=copy' })).items;
  const results = pods.map((pod) => JSON.parse(pod.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '{}') as { pod?: { index: number; count: number }; rowsThisRun?: number; postCopy?: string });
  t.deepEqual(results.map((r) => r.pod?.index).sort(), [0, 1], 'one pod per index, each knowing its index');
  t.true(results.every((r) => (r.rowsThisRun ?? 0) > 0), `both pods copied: ${JSON.stringify(results)}`);
  t.true(results.some((r) => r.postCopy === 'ran'), 'the last pod to finish ran the post-copy work');
  t.is(await scalar(target, "SELECT count(*) || ':' || bool_and(done) FROM dataops_copy_checkpoint WHERE table_name = 'orders'"), '4:true', 'parallelism 2 × 2 pods key ranges');
}));
