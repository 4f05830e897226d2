// The cutover Service switched only by consent and by record, on the real kube-apiserver with the
// operator under the Helm chart's ServiceAccount (test/support/operator.ts): the confused-deputy
// manifest leaves `payments` untouched; a Service without the opt-in is refused with a reason
// until its owner opts in, then switched with a record of the migration's uid; a Service switched
// by hand is not flipped back by a failing migration; and the merge patch the operator sends is
// conditional on the version it decided on (the API server answers 409 to a stale one).
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { ABORT_ANNOTATION, CUTOVER_BY_ANNOTATION, GROUP, PLURAL, REASONS, SWITCH_RECORD, VERSION } from '../../src/api/constants.ts';
import { ClusterError } from '../../src/controller/cluster.ts';
import { KubeCluster } from '../../src/controller/kube-cluster.ts';
import { freshDatabase } from '../support/databases.ts';
import { createCutoverService, freshNamespace, kubectl, testKubeConfig } from '../support/kube.ts';
import { runOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';
import { limitConcurrency } from '../support/slots.ts';
import { execSql } from '../support/sql.ts';
import { readyOf, waitForMigration } from '../support/migrations.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);
// Two of these tests drive whole migrations: one at a time on two cores.
const oneAtATime = limitConcurrency(1);

const readService = (namespace: string, name: string): Promise<k8s.V1Service> => core.readNamespacedService({ name, namespace });


async function apply(namespace: string, name: string, spec: Record<string, unknown>, annotations?: Record<string, string>): Promise<void> {
  await custom.createNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: PLURAL, namespace,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', metadata: { name, ...(annotations ? { annotations } : {}) }, spec },
  });
}

async function eventsOf(namespace: string, name: string): Promise<k8s.EventsV1Event[]> {
  return (await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name}` })).items;
}

/** A namespace with its operator, a MariaDB source with `orders` (100 rows), an empty PostgreSQL target, their Secrets. */
async function stage(t: ExecutionContext, prefix: string): Promise<{ namespace: string; endpoints: Record<string, unknown> }> {
  const namespace = await freshNamespace(t, prefix);
  await runOperator(t, namespace);
  // Two servers: a target account on the source's server could write the source, and the plan refuses that.
  const source = await freshDatabase(t, 'mysql');
  const target = await freshDatabase(t, 'postgres');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, amount decimal(10,2) NOT NULL) ENGINE=InnoDB', 'INSERT INTO orders SELECT seq, seq / 10 FROM seq_1_to_100']);
  for (const [name, url] of [['source-db', source], ['target-db', target]] as const) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
  }
  return {
    namespace,
    endpoints: {
      // The test servers' admin user is a superuser: accepted (a read-only role is refused by default).
      source: { engine: 'mysql', secretRef: { name: 'source-db' }, acceptWritableRole: true },
      target: { engine: 'postgres', secretRef: { name: 'target-db' } },
      schema: { createMissingTables: true },
      tables: [{ name: 'orders' }],
    },
  };
}

test('the confused deputy: cutover of payments from app=attacker, missing Secrets, abort: payments is never patched', async (t) => {
  const namespace = await freshNamespace(t, 'consent-deputy');
  const operator = await runOperator(t, namespace);
  const payments = await createCutoverService(namespace, 'payments', { app: 'payments' }, null);
  await apply(namespace, 'sneaky', {
    source: { engine: 'postgres', secretRef: { name: 'absent-source' } },
    target: { engine: 'postgres', secretRef: { name: 'absent-target' } },
    tables: [{ name: 'orders' }],
    cutover: { service: 'payments', fromSelector: { app: 'attacker' }, toSelector: { app: 'payments' } },
  }, { [ABORT_ANNOTATION]: 'true' });
  const failed = await waitForMigration(namespace, 'sneaky', 'Failed', (m) => m.status?.phase === 'Failed', 60_000);
  t.is(readyOf(failed).reason, REASONS.Aborted);
  t.regex(failed.status?.message ?? '', /Service payments selects app=payments \(toSelector\), but this migration did not switch it \(it carries no switch record\); it is left as it is/);
  const after = await readService(namespace, 'payments');
  t.is(after.metadata?.resourceVersion, payments.metadata?.resourceVersion, 'not one write to payments');
  t.deepEqual(after.spec?.selector, { app: 'payments' });
  const said = await waitFor('the ServiceNotRestored Event', async () => {
    const found = (await eventsOf(namespace, 'sneaky')).filter((e) => e.reason === REASONS.ServiceNotRestored);
    return found.length > 0 ? found : undefined;
  }, 10_000, 200);
  t.is(said[0]?.type, 'Warning');
  t.false(operator.logs().includes('patched Service selector'));
});

test('a Service without the opt-in is refused with a reason and left untouched; once its owner opts in, the switch lands with a record of the migration\'s uid', oneAtATime(async (t) => {
  const { namespace, endpoints } = await stage(t, 'consent-optin');
  const shop = await createCutoverService(namespace, 'shop', { app: 'shop', track: 'blue' }, null);
  await apply(namespace, 'shop-move', { ...endpoints, cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } } });
  const refused = await waitForMigration(namespace, 'shop-move', 'refused for want of consent', (m) => readyOf(m).reason === REASONS.ServiceNotOptedIn || m.status?.phase === 'Failed');
  t.is(refused.status?.phase, 'CuttingOver', refused.status?.message);
  t.regex(readyOf(refused).message ?? '', new RegExp(`Service shop has not opted in .*${CUTOVER_BY_ANNOTATION}=shop-move`));
  t.is(refused.status?.conditions?.find((c) => c.type === 'CutOver')?.reason, REASONS.ServiceNotOptedIn);
  t.is((await readService(namespace, 'shop')).metadata?.resourceVersion, shop.metadata?.resourceVersion, 'no patch without consent');
  const warnings = await waitFor('the ServiceNotOptedIn Event', async () => {
    const found = (await eventsOf(namespace, 'shop-move')).filter((e) => e.reason === REASONS.ServiceNotOptedIn);
    return found.length > 0 ? found : undefined;
  }, 10_000, 200);
  t.is(warnings.length, 1, 'said once');
  t.is(warnings[0]?.type, 'Warning');

  // The owner consents, as a person would: the Service's change wakes the migration.
  const annotated = await kubectl(['annotate', 'service', 'shop', `${CUTOVER_BY_ANNOTATION}=shop-move`], { namespace });
  t.is(annotated.code, 0, annotated.stderr);
  const done = await waitForMigration(namespace, 'shop-move', 'Succeeded', (m) => m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed', 60_000);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  const switched = await readService(namespace, 'shop');
  t.deepEqual(switched.spec?.selector, { app: 'shop', track: 'green' });
  t.like(switched.metadata?.annotations, {
    [CUTOVER_BY_ANNOTATION]: 'shop-move',
    [SWITCH_RECORD.uid]: done.metadata?.uid ?? '(no uid)', [SWITCH_RECORD.migration]: 'shop-move', [SWITCH_RECORD.run]: done.status?.runId ?? '(no run)',
    [SWITCH_RECORD.before]: '{"app":"shop","track":"blue"}', [SWITCH_RECORD.after]: '{"app":"shop","track":"green"}',
  });
  t.is(done.status?.conditions?.find((c) => c.type === 'CutOver')?.message, 'Service shop switched from app=shop,track=blue to app=shop,track=green');
}));

test('a Service switched by hand is not flipped back by a failing migration: RolledBack, the Service as its owner left it, and status says so', oneAtATime(async (t) => {
  const { namespace, endpoints } = await stage(t, 'consent-byhand');
  // Opted in, but someone already moved it to green by hand.
  const shop = await createCutoverService(namespace, 'shop', { app: 'shop', track: 'green' }, 'doomed');
  await apply(namespace, 'doomed', {
    ...endpoints,
    validation: { rowCount: true, rules: [{ name: 'impossible', target: 'SELECT count(*) FROM orders', expect: '0' }] },
    cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } },
    rollback: { onValidationFailure: true, schemaAction: 'None', restoreService: true },
  });
  const done = await waitForMigration(namespace, 'doomed', 'ended', (m) => ['RolledBack', 'Failed', 'Succeeded'].includes(m.status?.phase ?? ''));
  t.is(done.status?.phase, 'RolledBack', done.status?.message);
  t.regex(done.status?.message ?? '', /Service shop selects app=shop,track=green \(toSelector\), but this migration did not switch it .*; it is left as it is/);
  t.is(done.status?.conditions?.find((c) => c.type === 'CutOver')?.reason, REASONS.ServiceNotRestored);
  const after = await readService(namespace, 'shop');
  t.is(after.metadata?.resourceVersion, shop.metadata?.resourceVersion, 'not one write to the Service');
  t.deepEqual(after.spec?.selector, { app: 'shop', track: 'green' });
  const warnings = (await eventsOf(namespace, 'doomed')).filter((e) => e.reason === REASONS.ServiceNotRestored);
  t.is(warnings.length, 1);
  t.is(warnings[0]?.type, 'Warning');
}));

test('the operator\'s merge patch on the real API server: labels that go are removed, the record set, and a stale version is refused (409)', async (t) => {
  const namespace = await freshNamespace(t, 'consent-patch');
  const service = await createCutoverService(namespace, 'shop', { app: 'shop', color: 'blue' }, 'x');
  const empty = { get: () => undefined, list: () => [] };
  const cluster = new KubeCluster(kc, { migrations: empty, jobs: empty, services: empty }, 'e2e');
  const version = service.metadata?.resourceVersion ?? '';
  await cluster.patchServiceSelector(namespace, 'shop', { resourceVersion: version, from: { app: 'shop', color: 'blue' }, selector: { app: 'shop', version: 'v2' }, annotations: { [SWITCH_RECORD.uid]: 'u1' } });
  const patched = await readService(namespace, 'shop');
  t.deepEqual(patched.spec?.selector, { app: 'shop', version: 'v2' });
  t.like(patched.metadata?.annotations, { [CUTOVER_BY_ANNOTATION]: 'x', [SWITCH_RECORD.uid]: 'u1' });
  const stale = await t.throwsAsync(cluster.patchServiceSelector(namespace, 'shop', { resourceVersion: version, from: { app: 'shop', version: 'v2' }, selector: { app: 'shop', color: 'blue' }, annotations: { [SWITCH_RECORD.uid]: null } }), { instanceOf: ClusterError });
  t.is(stale.code, 409);
  t.deepEqual((await readService(namespace, 'shop')).spec?.selector, { app: 'shop', version: 'v2' }, 'nothing of the stale patch landed');
  await t.throwsAsync(cluster.patchServiceSelector(namespace, 'shop', { resourceVersion: '', from: {}, selector: { app: 'x' }, annotations: {} }), { message: /no resourceVersion/ });
});
