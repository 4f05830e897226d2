// The operator's RBAC is exactly what its code calls, proven on the real API server: one operator
// under the chart's ServiceAccount drives a migration through every path that reaches the API
// (preflight reading a Secret, a ConfigMap and a readiness-gate Deployment, the step Jobs and their
// pods, the Service switch, status, Events, leader election, the finalizer on delete); the API
// server's audit log (test/support/controlplane.ts) then lists each request that account made,
// and a second, ChangeCapture migration takes the paths only a change stream has (the lag read, the
// ScaleDown write fence patching a blue Deployment and listing its pods by selector, the release);
// and the set of (API group, resource, verb) must equal what the chart's rules grant. A rule the
// code never uses fails this test, and so does a call the rules lack (a 403 in the log).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { buildStepJob } from '../../src/controller/job-builder.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { captureSlots, createItems, deleteStandIns, readBlue, stageBlue } from '../support/capture-e2e.ts';
import { auditLogPath, freshNamespace, testKubeConfig } from '../support/kube.ts';
import { E2E_ENGINE_IMAGE, runOperator } from '../support/operator.ts';
import { repoRoot } from '../support/platform.ts';
import { waitFor } from '../support/process.ts';
import { execSql, scalar } from '../support/sql.ts';

interface PolicyRule { apiGroups: string[]; resources: string[]; verbs: string[] }
interface AuditEvent {
  verb: string;
  user: { username: string };
  objectRef?: { apiGroup?: string; resource?: string; subresource?: string };
  responseStatus?: { code?: number };
}

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);

/** `group resource[/subresource] verb`, the unit both RBAC rules and audit events are compared in. */
const permission = (group: string, resource: string, verb: string): string => `${group === '' ? 'core' : group} ${resource} ${verb}`;

/** What the chart's rule files grant (test/unit/packaging.test.ts: config/rbac has the same rules). */
function granted(...files: string[]): Set<string> {
  const rules = files.flatMap((file) => parse(readFileSync(join(repoRoot, 'charts', 'datamigration-operator', 'files', file), 'utf8')) as PolicyRule[]);
  return new Set(rules.flatMap((rule) => rule.apiGroups.flatMap((group) => rule.resources.flatMap((resource) => rule.verbs.map((verb) => permission(group, resource, verb))))));
}

const called = (event: AuditEvent): string => permission(event.objectRef?.apiGroup ?? '',
  `${event.objectRef?.resource ?? ''}${event.objectRef?.subresource ? `/${event.objectRef.subresource}` : ''}`, event.verb);

test('the chart grants the operator exactly the API calls it makes (audited on the real API server)', async (t) => {
  const namespace = await freshNamespace(t, 'rbac-exact');
  await runOperator(t, namespace);
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note text)', "INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 300) g"]);
  for (const [name, url] of [['source-db', source], ['target-db', target]] as const) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
  }
  // Every reference preflight reads: migration files from a ConfigMap, a readiness gate, a Service that consents.
  await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'orders-schema' }, data: {
    'V1__create_orders.sql': 'CREATE TABLE orders (id bigint PRIMARY KEY, note text)', 'U1__create_orders.sql': 'DROP TABLE orders',
  } } });
  const labels = { app: 'shop', track: 'green' };
  await apps.createNamespacedDeployment({ namespace, body: { metadata: { name: 'shop-green' }, spec: {
    replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'shop:green' }] } },
  } } });
  // No Deployment controller runs here: the test says the green side is ready, as it would be.
  await apps.patchNamespacedDeploymentStatus({ namespace, name: 'shop-green', body: { status: { replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'shop', annotations: { 'dataops.dev/cutover-by': 'everything' } },
    spec: { selector: { app: 'shop', track: 'blue' }, ports: [{ port: 80 }] } } });
  const manifest = { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'everything' }, spec: {
    source: { engine: 'postgres', secretRef: { name: 'source-db' }, acceptWritableRole: true },
    target: { engine: 'postgres', secretRef: { name: 'target-db' } },
    schema: { configMapRef: { name: 'orders-schema' } },
    tables: [{ name: 'orders' }],
    cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, readinessGate: { deployment: 'shop-green' } },
  } };
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: manifest });

  // ChangeCapture: a PostgreSQL stream, and a ScaleDown fence on a blue Deployment whose pods the test stands in for.
  const captureSource = await freshDatabase(t, 'postgres');
  const captureTarget = await freshTargetDatabase(t, 'postgres');
  await createItems('postgres', captureSource, captureTarget, 200);
  for (const [name, url] of [['capture-source-db', captureSource], ['capture-target-db', captureTarget]] as const) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
  }
  const { podNames } = await stageBlue(namespace, 'capture');
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: {
    apiVersion: API_VERSION, kind: KIND, metadata: { name: 'capture' }, spec: {
      source: { engine: 'postgres', secretRef: { name: 'capture-source-db' }, acceptWritableRole: true },
      target: { engine: 'postgres', secretRef: { name: 'capture-target-db' } },
      tables: [{ name: 'items' }],
      strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } },
      cutover: { service: 'web', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, fence: { type: 'ScaleDown', deployment: 'web-blue' } },
    },
  } });
  await waitFor('web-blue scaled to 0 by the fence', async () => ((await readBlue(namespace)).spec?.replicas === 0 ? true : undefined), 120_000, 200);
  await deleteStandIns(namespace, podNames);

  const ended = (name: string): Promise<DataMigration> => waitFor(`${name} ends`, async () => {
    const migration = await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name }) as DataMigration;
    return ['Succeeded', 'Failed'].includes(migration.status?.phase ?? '') ? migration : undefined;
  }, 180_000, 250);
  const done = await ended('everything');
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.is(await scalar(target, 'SELECT count(*) FROM orders'), '300');
  t.is((await core.readNamespacedService({ namespace, name: 'shop' })).spec?.selector?.track, 'green');
  const captured = await ended('capture');
  t.is(captured.status?.phase, 'Succeeded', captured.status?.message);
  t.is(await scalar(captureTarget, 'SELECT count(*) FROM items'), '200');
  t.is((await core.readNamespacedService({ namespace, name: 'web' })).spec?.selector?.track, 'green');
  await waitFor('the capture released', async () => ((await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'capture' }) as DataMigration)
    .status?.sync?.released === true ? true : undefined), 60_000, 250);
  t.deepEqual(await captureSlots(captureSource, { temporary: true }), []);
  // The finalizer's path: the operator deletes the migration's Jobs, then lets it go.
  for (const name of ['everything', 'capture']) {
    await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
    await waitFor(`${name} is gone`, async () => (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })
      .then(() => undefined, () => true)), 60_000, 250);
  }

  const account = `system:serviceaccount:${namespace}:`;
  const events = (await readFile(auditLogPath(), 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditEvent)
    .filter((event) => event.user.username.startsWith(account) && event.objectRef?.resource !== undefined);
  t.true(events.length > 0, 'the audit log has the operator\'s requests');
  t.deepEqual([...new Set(events.filter((event) => event.responseStatus?.code === 403).map(called))], [], 'calls the rules lack');
  const calls = new Set(events.map(called));
  // Not a call but an admission check: a Job's owner reference with blockOwnerDeletion needs
  // `update` on the owner's finalizers where OwnerReferencesPermissionEnforcement is on (it is here).
  const job = buildStepJob(done, 'schema', 'r1', { image: E2E_ENGINE_IMAGE, command: ['dmctl'] });
  t.true(job.metadata?.ownerReferences?.[0]?.blockOwnerDeletion, 'the Jobs ask that their DataMigration outlive them');
  calls.add(permission(GROUP, 'datamigrations/finalizers', 'update'));
  const rules = granted('operator-rules.yaml', 'leader-election-rules.yaml');
  t.deepEqual([...rules].filter((p) => !calls.has(p)).sort(), [], 'granted but never called');
  t.deepEqual([...calls].filter((p) => !rules.has(p)).sort(), [], 'called but not granted');
});
