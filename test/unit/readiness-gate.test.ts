// The readiness gate before a cutover: the green Deployment must have all the replicas it asks for
// ready (or spec.cutover.readinessGate.minReadyReplicas), pods of its current template only, and
// never none. Preflight reads it through the Cluster interface (the in-memory one here).
import test from 'ava';
import { API_VERSION, KIND } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { gateOpen, runPreflight } from '../../src/controller/preflight.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const POLICY = { image: 'engine:dev' };

test('by default every desired replica must be ready; minReadyReplicas lowers it; zero is never enough', (t) => {
  t.false(gateOpen({ desired: 3, ready: 1 }, undefined), 'one of three is not the green side');
  t.false(gateOpen({ desired: 3, ready: 2 }, undefined));
  t.true(gateOpen({ desired: 3, ready: 3 }, undefined));
  t.true(gateOpen({ desired: 3, ready: 2 }, 2));
  t.false(gateOpen({ desired: 3, ready: 1 }, 2));
  t.false(gateOpen({ desired: 0, ready: 0 }, undefined), 'a Deployment scaled to zero serves nothing');
  t.true(gateOpen({ desired: 0, ready: 1 }, undefined));
});

test('preflight: a missing Deployment is missing, a partly ready one holds the gate, a ready one opens it', async (t) => {
  const cluster = new MemoryCluster();
  cluster.secrets.set('shop/src', { url: 'postgres://u:p@a/db' });
  cluster.secrets.set('shop/dst', { url: 'postgres://u:p@b/db' });
  cluster.services.set('shop/web', { metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { track: 'blue' } } });
  const migration: DataMigration = {
    apiVersion: API_VERSION, kind: KIND, metadata: { name: 'm', namespace: 'shop', uid: 'u1' },
    spec: {
      source: { engine: 'postgres', secretRef: { name: 'src' } }, target: { engine: 'postgres', secretRef: { name: 'dst' } },
      cutover: { service: 'web', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, readinessGate: { deployment: 'web-green' } },
    },
  };
  t.deepEqual((await runPreflight(cluster, migration, POLICY)).missing, [{ kind: 'Deployment', name: 'web-green' }]);
  cluster.deployments.set('shop/web-green', { desired: 4, ready: 3 });
  t.false((await runPreflight(cluster, migration, POLICY)).deploymentReady);
  cluster.deployments.set('shop/web-green', { desired: 4, ready: 4 });
  t.true((await runPreflight(cluster, migration, POLICY)).deploymentReady);
});
