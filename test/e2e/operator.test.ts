// The operator end to end on the real kube-apiserver and controller manager: DataMigrations
// become step Jobs that the node stand-in runs (the engine CLI as a local process against real
// PostgreSQL and MariaDB); phases, conditions, Events, the blue-green Service switch, manual
// approval, rollback on failed validation, and preflight that waits for a missing Secret.
//
// Least privilege, proven: the operator runs with the Helm chart's ServiceAccount (a token for it
// from the TokenRequest API, not the admin certificate) under RBAC authorization, with leader
// election on. Any permission the chart lacks fails these tests; the packaging tests check that
// the chart grants no more than src/controller uses.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { GROUP, PLURAL, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { createLogger } from '../../src/controller/logger.ts';
import { startOperator, type RunningOperator } from '../../src/controller/operator.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { freshDatabase } from '../support/databases.ts';
import { scalar } from '../support/sql.ts';
import { freshNamespace, kubectl, testKubeConfig } from '../support/kube.ts';
import { helmTemplate } from '../support/tools.ts';
import { repoRoot } from '../support/platform.ts';
import { waitFor } from '../support/process.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);
let operator: RunningOperator | undefined;
const release = `dmo-${randomBytes(3).toString('hex')}`;
const releaseNamespace = `${release}-system`;

/** The chart's RBAC objects applied, and a kubeconfig holding a token of the operator's ServiceAccount. */
async function operatorKubeConfig(): Promise<k8s.KubeConfig> {
  await core.createNamespace({ body: { metadata: { name: releaseNamespace } } });
  const rendered = parseAllDocuments(await helmTemplate(release, releaseNamespace))
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null)
    .filter((m) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(m?.kind ?? ''));
  const applied = await kubectl(['apply', '--server-side', '-f', '-'], { input: rendered.map((m) => JSON.stringify(m)).join('\n') });
  if (applied.code !== 0) throw new Error(applied.stderr);
  const account = rendered.find((m) => m?.kind === 'ServiceAccount')?.metadata?.name ?? '';
  const token = await waitFor('a token for the operator ServiceAccount', async () => (await core.createNamespacedServiceAccountToken({
    name: account, namespace: releaseNamespace, body: { spec: { expirationSeconds: 3600 } },
  }).catch(() => undefined))?.status?.token, 30_000, 200);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the test kubeconfig has no cluster');
  const scoped = new k8s.KubeConfig();
  scoped.loadFromOptions({
    clusters: [{ ...cluster, name: 'test' }], users: [{ name: account, token }],
    contexts: [{ name: 'operator', cluster: 'test', user: account }], currentContext: 'operator',
  });
  return scoped;
}

test.before(async () => {
  const scoped = await operatorKubeConfig();
  operator = await startOperator({
    kc: scoped, logger: createLogger(process.env.DMO_TEST_LOG_LEVEL ?? 'warn'), identity: 'e2e-operator',
    // The node stand-in runs the command on this machine: the engine CLI from the source tree.
    engine: { image: 'datamigration-operator:e2e', command: [process.execPath, join(repoRoot, 'src/cli/main.ts')] },
    workers: 4,
    leaderElection: { namespace: releaseNamespace, name: 'datamigration-operator', identity: 'e2e-operator' },
  });
  await waitFor('the operator leads', () => Promise.resolve(operator?.isLeader() ? true : undefined), 30_000, 100);
});

test.after.always(async () => {
  await operator?.stop();
  await core.deleteNamespace({ name: releaseNamespace }).catch(() => undefined);
  for (const kind of ['clusterrolebinding', 'clusterrole']) await kubectl(['delete', kind, '-l', `app.kubernetes.io/instance=${release}`, '--ignore-not-found']);
});

async function getMigration(namespace: string, name: string): Promise<DataMigration> {
  return await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name }) as DataMigration;
}

async function waitForPhase(namespace: string, name: string, phases: string[], timeoutMs = 120_000): Promise<DataMigration> {
  let last: DataMigration | undefined;
  try {
    return await waitFor(`DataMigration ${name} in ${phases.join('/')}`, async () => {
      last = await getMigration(namespace, name);
      return phases.includes(last.status?.phase ?? '') ? last : undefined;
    }, timeoutMs, 250);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.status ?? {})}`, { cause: error });
  }
}

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


async function createSecret(namespace: string, name: string, url: string): Promise<void> {
  await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
}

async function apply(namespace: string, migration: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', ...migration } });
}

async function eventReasons(namespace: string, name: string): Promise<string[]> {
  const list = await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name}` });
  return list.items.map((e) => e.reason ?? '');
}

test('PostgreSQL → MariaDB with manual approval: schema, copy, validation, approval, Service switched, Succeeded', async (t) => {
  const namespace = await freshNamespace(t, 'op-happy');
  const source = await freshDatabase(t, 'postgres');
  const target = await freshDatabase(t, 'mysql');
  await seedOrders('postgres', source, 20_000);
  await createSecret(namespace, 'source-db', source);
  await createSecret(namespace, 'target-db', target);
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'shop' }, spec: { selector: { app: 'shop', track: 'blue' }, ports: [{ port: 80 }] } } });
  await apply(namespace, {
    metadata: { name: 'shop-move' },
    spec: {
      source: { engine: 'postgres', secretRef: { name: 'source-db' } },
      target: { engine: 'mysql', secretRef: { name: 'target-db' } },
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
});

test('failed validation rolls back: down migrations run, the Service stays on blue, the source is untouched', async (t) => {
  const namespace = await freshNamespace(t, 'op-rollback');
  const source = await freshDatabase(t, 'mysql');
  const target = await freshDatabase(t, 'postgres');
  await seedOrders('mysql', source, 5_000);
  const sourceBefore = await scalar(source, 'SELECT CONCAT(count(*), sum(id), sum(amount)) FROM orders');
  await createSecret(namespace, 'source-db', source);
  await createSecret(namespace, 'target-db', target);
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'shop' }, spec: { selector: { track: 'blue' }, ports: [{ port: 80 }] } } });
  await apply(namespace, {
    metadata: { name: 'doomed' },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'source-db' } },
      target: { engine: 'postgres', secretRef: { name: 'target-db' } },
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
});

test('a missing Secret holds the migration in Pending with a reason and an Event; it proceeds when the Secret appears', async (t) => {
  const namespace = await freshNamespace(t, 'op-preflight');
  const source = await freshDatabase(t, 'postgres');
  const target = await freshDatabase(t, 'postgres');
  await seedOrders('postgres', source, 1_000);
  await createSecret(namespace, 'source-db', source);
  await apply(namespace, {
    metadata: { name: 'patient' },
    spec: {
      source: { engine: 'postgres', secretRef: { name: 'source-db' } },
      target: { engine: 'postgres', secretRef: { name: 'target-db' } },
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
});

test('while the copy runs, status.progress reports the committed rows', async (t) => {
  const namespace = await freshNamespace(t, 'op-progress');
  const source = await freshDatabase(t, 'postgres');
  const target = await freshDatabase(t, 'postgres');
  const rows = 1_000_000;
  await seedOrders('postgres', source, rows);
  await createSecret(namespace, 'source-db', source);
  await createSecret(namespace, 'target-db', target);
  await apply(namespace, {
    metadata: { name: 'big' },
    spec: {
      source: { engine: 'postgres', secretRef: { name: 'source-db' } },
      target: { engine: 'postgres', secretRef: { name: 'target-db' } },
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
});
