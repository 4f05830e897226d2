// Step pods without borrowed privileges, end to end under the chart's ServiceAccount: a
// DataMigration naming a foreign image, an account nobody allowed, or a reserved annotation is
// refused with a reason and gets no Job; a step pod mounts no token unless the operator's
// configuration allows its account; a Pod planted with a step's labels and a fake result is
// ignored (the migration takes its own pods' results only).
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { GROUP, LABELS, PLURAL, REASONS, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { NEVER_READY_GATE } from '../../src/controller/job-builder.ts';
import { freshDatabase } from '../support/databases.ts';
import { freshNamespace, testKubeConfig } from '../support/kube.ts';
import { E2E_ENGINE_IMAGE, runOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';
import { execSql } from '../support/sql.ts';
import { getMigration } from '../support/migrations.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);


async function apply(namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', metadata: { name }, spec } });
}

/** Secrets for the preflight; the URLs are never reached by these tests' refused migrations. */
async function fakeSecrets(namespace: string): Promise<Record<string, unknown>> {
  for (const name of ['source-db', 'target-db']) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url: `postgres://app:x@127.0.0.1:1/${name}` } } });
  }
  return { source: { engine: 'postgres', secretRef: { name: 'source-db' } }, target: { engine: 'postgres', secretRef: { name: 'target-db' } } };
}

async function readyReason(namespace: string, name: string, reason: string): Promise<DataMigration> {
  let last: DataMigration | undefined;
  try {
    return await waitFor(`${name} Ready reason ${reason}`, async () => {
      last = await getMigration(namespace, name);
      return last.status?.conditions?.find((c) => c.type === 'Ready')?.reason === reason ? last : undefined;
    }, 60_000, 200);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.status ?? {})}`, { cause: error });
  }
}

const jobsOf = async (namespace: string, name: string): Promise<k8s.V1Job[]> =>
  (await batch.listNamespacedJob({ namespace, labelSelector: `${LABELS.migration}=${name}` })).items;
const warningsOf = async (namespace: string, name: string): Promise<string[]> =>
  (await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name}` })).items.filter((e) => e.type === 'Warning').map((e) => e.reason ?? '');
const hasToken = (pod: k8s.V1Pod): boolean => (pod.spec?.volumes ?? []).some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken !== undefined));

/** The first pod the Job controller makes for the Job (the API server's admission has run on it). */
async function firstPod(namespace: string, job: k8s.V1Job): Promise<k8s.V1Pod> {
  return await waitFor(`a pod of ${job.metadata?.name ?? ''}`, async () =>
    (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/controller-uid=${job.metadata?.uid ?? ''}` })).items[0], 30_000, 200);
}

async function refused(t: ExecutionContext, namespace: string, name: string, reason: string, says: RegExp): Promise<void> {
  const m = await readyReason(namespace, name, reason);
  t.is(m.status?.phase, 'Pending', name);
  // kstatus: stalled until the spec changes (kubectl wait --for=condition=Stalled, Argo CD, Flux).
  t.like(m.status?.conditions?.find((c) => c.type === 'Stalled'), { status: 'True', reason });
  t.regex(m.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '', says);
  await waitFor(`a Warning Event ${reason} for ${name}`, async () => ((await warningsOf(namespace, name)).includes(reason) ? true : undefined), 10_000, 200);
}

test('a foreign image, an account nobody allowed, a reserved annotation: refused with a reason, no Job; the fixed spec runs without a token', async (t) => {
  const namespace = await freshNamespace(t, 'pp-refused');
  await runOperator(t, namespace);
  const endpoints = await fakeSecrets(namespace);
  await apply(namespace, 'foreign-image', { ...endpoints, jobTemplate: { image: 'evil.example/miner:1' } });
  await apply(namespace, 'borrowed-account', { ...endpoints, jobTemplate: { serviceAccountName: 'default' } });
  // The CRD may refuse this at admission already; either way no pod may get it.
  const unconfined = await apply(namespace, 'unconfined', { ...endpoints, jobTemplate: { annotations: { 'container.apparmor.security.beta.kubernetes.io/engine': 'unconfined' } } })
    .then(() => undefined, (error: unknown) => error);

  await refused(t, namespace, 'foreign-image', REASONS.ImageNotAllowed,
    new RegExp(`image "evil\\.example/miner:1" is not allowed; allowed: the operator's engine image "${E2E_ENGINE_IMAGE}" \\(its configuration allows no other\\)`));
  await refused(t, namespace, 'borrowed-account', REASONS.ServiceAccountNotAllowed, /serviceAccountName "default" is not allowed: the operator's configuration allows no ServiceAccount/);
  if (unconfined === undefined) {
    await refused(t, namespace, 'unconfined', REASONS.ReservedKey, /annotations key "container\.apparmor\.security\.beta\.kubernetes\.io\/engine"/);
  } else {
    t.is((unconfined as { code?: number }).code, 422, unconfined instanceof Error ? unconfined.message : 'not an API error');
    t.regex(String((unconfined as { body?: unknown }).body), /spec\.jobTemplate\.annotations.*reserved keys/, 'refused at admission (the CRD\'s rule)');
  }
  // Terminal until the spec changes: no retry makes a Job appear.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  for (const name of ['foreign-image', 'borrowed-account', 'unconfined']) t.deepEqual(await jobsOf(namespace, name), [], `no Job for ${name}`);
  const said = (await warningsOf(namespace, 'foreign-image')).filter((r) => r === REASONS.ImageNotAllowed).length;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  t.is((await warningsOf(namespace, 'foreign-image')).filter((r) => r === REASONS.ImageNotAllowed).length, said, 'said, not repeated');

  // The spec fixed: the Job is created, with the engine image, no token, and never Ready.
  await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'foreign-image', body: { spec: { jobTemplate: { image: null } } } }, mergePatch);
  const [job] = await waitFor('the fixed migration\'s Job', async () => { const jobs = await jobsOf(namespace, 'foreign-image'); return jobs.length > 0 ? jobs : undefined; }, 60_000, 200);
  if (job === undefined) throw new Error('no Job');
  const pod = job.spec?.template.spec;
  t.is(pod?.automountServiceAccountToken, false);
  t.is(pod?.serviceAccountName, undefined);
  t.is(pod?.containers[0]?.image, E2E_ENGINE_IMAGE);
  t.deepEqual(pod?.readinessGates?.map((gate) => gate.conditionType), [NEVER_READY_GATE], 'never Ready: no Service endpoint');
  t.false(hasToken(await firstPod(namespace, job)), 'the API server mounted no token into the step pod');
});

test('an allowed account gets its token and an allowed image runs; anything else stays refused', async (t) => {
  const namespace = await freshNamespace(t, 'pp-allowed');
  await runOperator(t, namespace, { engine: { allowedImages: ['registry.internal/dataops/'], allowedServiceAccounts: [`${namespace}/migrator`] } });
  const endpoints = await fakeSecrets(namespace);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'migrator' } } });
  await apply(namespace, 'allowed', { ...endpoints, jobTemplate: { image: 'registry.internal/dataops/dmo:2', serviceAccountName: 'migrator' } });
  await apply(namespace, 'look-alike', { ...endpoints, jobTemplate: { image: 'registry.internal/dataops-evil/dmo:2' } });
  await apply(namespace, 'other-account', { ...endpoints, jobTemplate: { serviceAccountName: 'default' } });

  const [job] = await waitFor('the allowed migration\'s Job', async () => { const jobs = await jobsOf(namespace, 'allowed'); return jobs.length > 0 ? jobs : undefined; }, 60_000, 200);
  if (job === undefined) throw new Error('no Job');
  t.is(job.spec?.template.spec?.automountServiceAccountToken, true);
  t.is(job.spec?.template.spec?.serviceAccountName, 'migrator');
  t.is(job.spec?.template.spec?.containers[0]?.image, 'registry.internal/dataops/dmo:2');
  t.true(hasToken(await firstPod(namespace, job)), 'the allowed account\'s token is mounted (so its absence above is no accident)');

  await refused(t, namespace, 'look-alike', REASONS.ImageNotAllowed, /"registry\.internal\/dataops\/"/);
  await refused(t, namespace, 'other-account', REASONS.ServiceAccountNotAllowed, new RegExp(`allows "${namespace}/migrator"`));
  t.deepEqual(await jobsOf(namespace, 'look-alike'), []);
  t.deepEqual(await jobsOf(namespace, 'other-account'), []);
});

/** A Pod anyone with `create pods` can make: the step's labels, on no node, then a termination message as if it had run. */
async function plant(namespace: string, job: string, step: string, exitCode: number, message: string): Promise<void> {
  const name = `planted-${step}`;
  await core.createNamespacedPod({ namespace, body: {
    metadata: { name, labels: { 'batch.kubernetes.io/job-name': job, 'job-name': job, [LABELS.migration]: 'audited', [LABELS.step]: step, [LABELS.run]: 'g1' } },
    // Bound to a node that does not exist: the node stand-in leaves it alone; its status is written below.
    spec: { nodeName: 'nowhere', restartPolicy: 'Never', containers: [{ name: 'engine', image: 'planted:1', command: ['true'] }] },
  } });
  const finishedAt = new Date(Date.now() + 3_600_000); // the newest pod of all
  await core.patchNamespacedPodStatus({ namespace, name, body: { status: {
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    containerStatuses: [{ name: 'engine', image: 'planted:1', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, message, startedAt: new Date(), finishedAt } } }],
  } } }, mergePatch);
}

test('Pods planted with the steps\' labels and fake results are ignored: the copy counts its own rows, a failed validation rolls back', async (t) => {
  const namespace = await freshNamespace(t, 'pp-planted');
  await runOperator(t, namespace);
  const source = await freshDatabase(t, 'postgres');
  // Two servers: a target on the source's server, under a superuser, would be refused by the plan.
  const target = await freshDatabase(t, 'mysql');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(10,2))', 'INSERT INTO orders SELECT g, g / 100.0 FROM generate_series(1, 50) g']);
  await execSql(target, ['CREATE TABLE orders (id bigint PRIMARY KEY, amount decimal(10,2)) ENGINE=InnoDB']);
  for (const [name, url] of [['source-db', source], ['target-db', target]] as const) await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
  // Planted before the Jobs exist (their names are deterministic): present whenever the operator reads.
  await plant(namespace, 'audited-g1-copy', 'copy', 0, JSON.stringify({ tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 424242 }], rowsThisRun: 424242 }));
  await plant(namespace, 'audited-g1-validate', 'validate', 4, JSON.stringify({ passed: true, summary: 'FAKE-VERDICT: all good' }));
  await apply(namespace, 'audited', {
    source: { engine: 'postgres', secretRef: { name: 'source-db' }, acceptWritableRole: true },
    target: { engine: 'mysql', secretRef: { name: 'target-db' } },
    tables: [{ name: 'orders' }],
    // The real verdict fails; the planted pod says it passed.
    validation: { rowCount: true, rules: [{ name: 'impossible', target: 'SELECT count(*) FROM orders', expect: '999' }] },
    rollback: { schemaAction: 'None' },
  });
  let last: DataMigration | undefined;
  const done = await waitFor('the migration to end', async () => {
    last = await getMigration(namespace, 'audited');
    return ['RolledBack', 'Failed', 'Succeeded'].includes(last.status?.phase ?? '') ? last : undefined;
  }, 240_000, 250).catch((error: unknown) => { throw new Error(`${String(error)}; last status: ${JSON.stringify(last?.status ?? {})}`); });
  t.is(done.status?.phase, 'RolledBack', JSON.stringify(done.status?.conditions));
  t.is(done.status?.conditions?.find((c) => c.type === 'Validated')?.reason, REASONS.ValidationFailed);
  t.deepEqual(done.status?.tables?.map((table) => [table.name, table.rowsCopied]), [['orders', 50]], 'the copy Job\'s own pod counted');
  const status = JSON.stringify(done.status);
  t.false(status.includes('FAKE-VERDICT') || status.includes('424242'), `nothing of the planted results in status: ${status}`);
  // The planted pods were there all along, with the labels the operator lists pods by.
  const listed = await core.listNamespacedPod({ namespace, labelSelector: 'batch.kubernetes.io/job-name=audited-g1-validate' });
  t.true(listed.items.some((pod) => pod.metadata?.name === 'planted-validate'));
});
