// Issue 14 attacked on the real kube-apiserver and Job controller, with the operator under the
// Helm chart's ServiceAccount (test/support/operator.ts): a Job planted under a step's predictable
// name, with the step's labels, an owner reference to the migration that is not the controller's,
// and a completed pod whose termination message is a fake result, is never taken for the step;
// and a migration's first reconciles say each Event once (a stale informer cache used to make the
// operator decide, and say, the first transition twice); and labels that a Service publishing
// not-ready addresses selects are refused before any Job (the readiness gate cannot keep step pods
// out of such a Service).
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, GROUP, KIND, LABELS, MANAGED_BY, PLURAL, REASONS, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { freshNamespace, testKubeConfig } from '../support/kube.ts';
import { runOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';
import { eventReasons, getMigration, readyOf, waitForMigration } from '../support/migrations.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));


async function apply(namespace: string, name: string, spec: Record<string, unknown>): Promise<DataMigration> {
  return await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata: { name }, spec } }) as DataMigration;
}

async function secrets(namespace: string): Promise<void> {
  // Nothing listens on port 1: a step that connects fails at once.
  for (const name of ['source-db', 'target-db']) await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url: `postgres://app:x@127.0.0.1:1/${name}` } } });
}

const ENDPOINTS = {
  source: { engine: 'postgres', secretRef: { name: 'source-db' }, acceptWritableRole: true },
  target: { engine: 'postgres', secretRef: { name: 'target-db' } },
  tables: [{ name: 'orders' }],
};

/** Each Event reason said, with how often (a reason said twice for one transition is the defect). */
function counted(reasons: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const reason of reasons) out[reason] = (out[reason] ?? 0) + 1;
  return out;
}

test('a Job planted under the copy step\'s name with a fake result is never the step: JobRejected with a reason, its result unread, each Event once', async (t) => {
  const namespace = await freshNamespace(t, 'a14-planted');
  const operator = await runOperator(t, namespace);
  // The Secrets are missing: the migration waits, and its uid is there to forge a reference with.
  const created = await apply(namespace, 'victim', ENDPOINTS);
  await waitForMigration(namespace, 'victim', 'waiting for its Secrets', (m) => readyOf(m).reason === REASONS.SecretNotFound);
  const uid = created.metadata?.uid ?? '';
  const fake = JSON.stringify({ tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 424_242 }], rowsThisRun: 424_242 });
  const planted = await batch.createNamespacedJob({ namespace, body: {
    metadata: {
      name: 'victim-g1-copy',
      labels: { [LABELS.migration]: 'victim', [LABELS.step]: 'copy', [LABELS.run]: 'g1', [LABELS.managedBy]: MANAGED_BY },
      // Anyone may add an owner reference; only the one the operator sets is the controller.
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: 'victim', uid, controller: false }],
    },
    spec: { backoffLimit: 0, template: { metadata: { labels: { [LABELS.migration]: 'victim', [LABELS.step]: 'copy' } }, spec: {
      // Bound to a node that does not exist: the node stand-in leaves its pod alone; its status is written below.
      nodeName: 'nowhere', restartPolicy: 'Never', containers: [{ name: 'engine', image: 'planted:1', command: ['true'] }],
    } } },
  } });
  const pod = await waitFor('the planted Job\'s pod', async () =>
    (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/controller-uid=${planted.metadata?.uid ?? ''}` })).items[0], 30_000, 200);
  await core.patchNamespacedPodStatus({ namespace, name: pod.metadata?.name ?? '', body: { status: {
    phase: 'Succeeded',
    containerStatuses: [{ name: 'engine', image: 'planted:1', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message: fake, startedAt: new Date(), finishedAt: new Date() } } }],
  } } }, mergePatch);
  await waitFor('the planted Job complete', async () =>
    ((await batch.readNamespacedJob({ namespace, name: 'victim-g1-copy' })).status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True') ? true : undefined, 60_000, 250);

  await secrets(namespace);
  const refused = await waitForMigration(namespace, 'victim', 'the planted Job refused', (m) => readyOf(m).reason === REASONS.JobRejected);
  t.is(refused.status?.phase, 'Copying', 'not moved on by the planted result');
  t.regex(readyOf(refused).message ?? '', /a Job named victim-g1-copy exists that this DataMigration does not control/);
  t.is(refused.status?.tables, undefined);
  t.false(JSON.stringify(refused.status).includes('424242'));
  const jobs = (await batch.listNamespacedJob({ namespace })).items;
  t.deepEqual(jobs.map((j) => j.metadata?.uid), [planted.metadata?.uid], 'only the planted Job: the operator created none of its own');
  await sleep(3000);
  t.is((await getMigration(namespace, 'victim')).status?.phase, 'Copying');
  const said = counted(await eventReasons(namespace, 'victim'));
  t.deepEqual(said, { [REASONS.SecretNotFound]: 1, Copying: 1, [REASONS.JobRejected]: 1 }, JSON.stringify(said));
  t.false(operator.logs().includes('patched Service selector'));
});

test('a migration\'s first reconciles say each Event once, through its failure', async (t) => {
  const namespace = await freshNamespace(t, 'a14-events');
  await runOperator(t, namespace);
  await secrets(namespace);
  await apply(namespace, 'once', { ...ENDPOINTS, jobTemplate: { backoffLimit: 0 } });
  const failed = await waitForMigration(namespace, 'once', 'Failed', (m) => m.status?.phase === 'Failed', 120_000);
  t.regex(failed.status?.message ?? '', /copy Job once-g1-copy failed/);
  // Events are written without waiting: give the last one time to land.
  await sleep(2000);
  const said = counted(await eventReasons(namespace, 'once'));
  t.is(said.Copying, 1, JSON.stringify(said));
  t.true(Object.values(said).every((n) => n === 1), `one Event per transition: ${JSON.stringify(said)}`);
});

test('labels a Service publishing not-ready addresses selects: refused before any Job, with the Service named', async (t) => {
  const namespace = await freshNamespace(t, 'a14-labels');
  await runOperator(t, namespace);
  await secrets(namespace);
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'payments-peers' }, spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector: { app: 'payments' }, ports: [{ port: 80 }] } } });
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'payments' }, spec: { selector: { app: 'payments', tier: 'web' }, ports: [{ port: 80 }] } } });
  await apply(namespace, 'lurker', { ...ENDPOINTS, jobTemplate: { labels: { app: 'payments', tier: 'web' } } });
  const refused = await waitForMigration(namespace, 'lurker', 'refused', (m) => readyOf(m).reason === REASONS.ReservedKey, 60_000);
  t.regex(readyOf(refused).message ?? '', /endpoints of Service "payments-peers", which publish not-ready addresses/);
  t.is(refused.status?.phase, 'Pending');
  await sleep(2000);
  t.deepEqual((await batch.listNamespacedJob({ namespace })).items, [], 'no Job');
  t.deepEqual(counted(await eventReasons(namespace, 'lurker')), { [REASONS.ReservedKey]: 1 });
});
