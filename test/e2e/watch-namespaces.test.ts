// An operator watching a list of namespaces (the chart's watchNamespaces: a Role in each, an
// informer per namespace and kind) reconciles DataMigrations in each of them, under the chart's
// RBAC, and leaves those of any other namespace alone.
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { freshNamespace, testKubeConfig } from '../support/kube.ts';
import { runOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';

const custom = testKubeConfig().makeApiClient(k8s.CustomObjectsApi);

const create = (namespace: string): Promise<unknown> => custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: {
  apiVersion: API_VERSION, kind: KIND, metadata: { name: 'orders' },
  // Secrets that do not exist: the preflight says so in status, and nothing starts.
  spec: { source: { engine: 'postgres', secretRef: { name: 'absent-source' } }, target: { engine: 'postgres', secretRef: { name: 'absent-target' } } },
} });
const read = async (namespace: string): Promise<DataMigration> =>
  await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'orders' }) as DataMigration;

test('watchNamespaces: DataMigrations in each listed namespace are reconciled, another namespace\'s are not', async (t) => {
  const home = await freshNamespace(t, 'watch-home');
  const second = await freshNamespace(t, 'watch-second');
  const other = await freshNamespace(t, 'watch-other');
  const operator = await runOperator(t, home, { alsoWatch: [second] });
  for (const namespace of [home, second, other]) await create(namespace);
  for (const namespace of [home, second]) {
    const migration = await waitFor(`a status in ${namespace}`, async () => {
      const m = await read(namespace);
      return m.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'SecretNotFound') ? m : undefined;
    }, 30_000, 200);
    t.is(migration.status?.phase, 'Pending', namespace);
    t.deepEqual(migration.metadata?.finalizers, ['dataops.dev/cleanup']);
  }
  // By the time both listed namespaces have status, an unwatched one would have had its reconcile.
  const untouched = await read(other);
  t.is(untouched.status, undefined, 'not watched: no status');
  t.is(untouched.metadata?.finalizers, undefined, 'not watched: no finalizer');
  t.false(operator.logs().includes(other), 'the operator never names the other namespace');
});
