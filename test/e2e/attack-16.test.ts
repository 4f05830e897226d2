// Issue 16 attacked on the real kube-apiserver: once a ChangeCapture cutover asked for its write
// fence (status.steps has a fence entry), the manifest author cannot rename the fence's Deployment
// or turn the fence External: lifting it finds the Deployment to scale back through the spec, and
// blue would stay at zero replicas. Before the fence the fence may still change.
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { GROUP, KIND, PLURAL, VERSION } from '../../src/api/constants.ts';
import type { DataMigrationStatus } from '../../src/api/types.ts';
import { freshNamespace, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const T0 = '2025-01-01T00:00:00Z';

const SPEC = {
  source: { engine: 'postgres', secretRef: { name: 'source-db' }, acceptWritableRole: true },
  target: { engine: 'postgres', secretRef: { name: 'target-db' } },
  strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } },
  cutover: { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, fence: { type: 'ScaleDown', deployment: 'orders-blue' } },
};

async function patchSpec(namespace: string, name: string, spec: Record<string, unknown>): Promise<number | undefined> {
  try {
    await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name, body: { spec } }, mergePatch);
    return undefined;
  } catch (error) {
    return (error as { code?: number }).code;
  }
}

async function setStatus(namespace: string, name: string, status: DataMigrationStatus): Promise<void> {
  await custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name, body: { status } }, mergePatch);
}

test('spec.cutover.fence is frozen once the fence was asked for: the Deployment that lifting scales back cannot be renamed, nor the fence made External', async (t) => {
  const namespace = await freshNamespace(t, 'a16-fence');
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata: { name: 'orders' }, spec: SPEC } });
  await setStatus(namespace, 'orders', { phase: 'Syncing', startedAt: T0, runId: 'g1', steps: [{ step: 'copy', runId: 'g1', requestedAt: T0, outcome: 'Succeeded', finishedAt: T0 }] });
  t.is(await patchSpec(namespace, 'orders', { cutover: { fence: { type: 'ScaleDown', deployment: 'orders-blue-2' } } }), undefined, 'before the fence the fence may change');
  await setStatus(namespace, 'orders', { phase: 'CuttingOver', steps: [{ step: 'copy', runId: 'g1', requestedAt: T0, outcome: 'Succeeded', finishedAt: T0 }, { step: 'fence', runId: 'g1', requestedAt: T0 }] });
  t.is(await patchSpec(namespace, 'orders', { cutover: { fence: { type: 'ScaleDown', deployment: 'somebody-else' } } }), 422, 'renamed behind the fence: refused');
  t.is(await patchSpec(namespace, 'orders', { cutover: { fence: { type: 'External', deployment: null } } }), 422, 'turned External behind the fence: refused');
  t.is(await patchSpec(namespace, 'orders', { cutover: { fence: { type: 'ScaleDown', deployment: 'orders-blue-2', timeoutSeconds: 60 } } }), undefined, 'the timeout may still change');
  const stored = await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'orders' }) as { spec: typeof SPEC };
  t.is(stored.spec.cutover.fence.deployment, 'orders-blue-2');
});
