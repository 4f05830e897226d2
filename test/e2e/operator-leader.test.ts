// Leader election through a coordination.k8s.io Lease on the real API server: of two replicas only
// the leader reconciles; when it stops (SIGTERM path: stop() releases the Lease) the standby takes
// over and reconciles what arrives next.
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { createLogger } from '../../src/controller/logger.ts';
import { startOperator, type RunningOperator } from '../../src/controller/operator.ts';
import { freshNamespace, testKubeConfig } from '../support/kube.ts';
import { waitFor } from '../support/process.ts';

const kc = testKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const coordination = kc.makeApiClient(k8s.CoordinationV1Api);

function replica(namespace: string, identity: string): Promise<RunningOperator> {
  return startOperator({
    kc, logger: createLogger('error'), identity, watchNamespaces: [namespace],
    engine: { image: 'unused', command: ['false'] },
    leaderElection: { namespace, name: 'dmo-leader', identity, leaseDurationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 0.5 },
  });
}

/** A migration whose Secrets do not exist: the leader marks it Pending (SecretNotFound); a standby leaves it alone. */
async function createMigration(namespace: string, name: string): Promise<void> {
  await custom.createNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: PLURAL, namespace,
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', metadata: { name }, spec: { source: { engine: 'postgres', secretRef: { name: 'a' } }, target: { engine: 'postgres', secretRef: { name: 'b' } } } },
  });
}

const reconciledBy = async (namespace: string, name: string): Promise<string | undefined> => {
  const migration = await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name }) as DataMigration;
  return migration.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
};

test('one leader reconciles; when it stops, the standby takes the Lease and carries on', async (t) => {
  const namespace = await freshNamespace(t, 'op-leader');
  const first = await replica(namespace, 'replica-a');
  await waitFor('replica-a leads', () => Promise.resolve(first.isLeader() ? true : undefined), 20_000, 100);
  const second = await replica(namespace, 'replica-b');
  t.teardown(async () => { await first.stop().catch(() => undefined); await second.stop().catch(() => undefined); });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.true(first.isLeader());
  t.false(second.isLeader(), 'only one leader');

  await createMigration(namespace, 'before');
  t.is(await waitFor('reconciled by the leader', () => reconciledBy(namespace, 'before'), 20_000, 100), 'SecretNotFound');

  await first.stop();
  await waitFor('replica-b takes over', () => Promise.resolve(second.isLeader() ? true : undefined), 20_000, 100);
  const lease = await coordination.readNamespacedLease({ name: 'dmo-leader', namespace });
  t.is(lease.spec?.holderIdentity, 'replica-b');
  t.true((lease.spec?.leaseTransitions ?? 0) >= 1);

  await createMigration(namespace, 'after');
  t.is(await waitFor('reconciled by the new leader', () => reconciledBy(namespace, 'after'), 20_000, 100), 'SecretNotFound');
  const metrics = await second.metrics.registry.getSingleMetricAsString('datamigration_leader');
  t.regex(metrics, /datamigration_leader 1/);
});
