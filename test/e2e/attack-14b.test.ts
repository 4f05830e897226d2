// Issue 14 attacked again on the real kube-apiserver, where admission and pruning are the API
// server's: a jobTemplate carrying pod fields the CRD does not know (host namespaces, privileged,
// hostPath, other Secrets, containers) never reaches a stored spec or a step Job; what no Job could
// carry (a Secret key no Secret holds, a TTL past int32, a negative quantity) and pod keys that lend
// cloud credentials, other networks or injected containers are refused at admission, while the
// limits themselves are admitted and their Jobs too; a cutover naming a Service of another
// namespace, or an empty or unchanged side, is refused. And a Job someone else made under a step's
// name (without the operator's labels, so not in its cache) is never deleted by the operator, under
// the chart's ServiceAccount, when the migration whose name picks that Job's is aborted or deleted.
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ABORT_ANNOTATION, GROUP, KIND, PLURAL, REASONS, STEPS, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { buildStepJob } from '../../src/controller/job-builder.ts';
import { freshNamespace, kubectl, minimalManifest, testKubeConfig } from '../support/kube.ts';
import { getMigration, readyOf, waitForMigration } from '../support/migrations.ts';
import { runOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';

const ENGINE = { image: 'registry.example.com/dataops/engine:1', command: ['node', '/app/dist/cli/main.js'] };

/** The API server's verdict on a DataMigration with this spec merged in (a server-side dry run): undefined when admitted, else its message. */
async function verdict(namespace: string, spec: Record<string, unknown>): Promise<string | undefined> {
  const custom = testKubeConfig().makeApiClient(k8s.CustomObjectsApi);
  const body = parse(minimalManifest('probe')) as { spec: Record<string, unknown> };
  try {
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { ...body, spec: { ...body.spec, ...spec } }, dryRun: 'All' });
    return undefined;
  } catch (error) {
    return error instanceof k8s.ApiException ? String(error.body) : String(error);
  }
}

/** Every step Job of the migration, as the operator builds it, in a server-side dry run. */
async function dryRunJobs(migration: DataMigration): Promise<k8s.V1Job[]> {
  const batch = testKubeConfig().makeApiClient(k8s.BatchV1Api);
  return Promise.all(STEPS.map((step) => batch.createNamespacedJob({ namespace: migration.metadata?.namespace ?? '', body: buildStepJob(migration, step, 'g1', ENGINE), dryRun: 'All' })));
}

const LOOSE_POD = {
  hostNetwork: true, hostPID: true, hostIPC: true, shareProcessNamespace: true, runtimeClassName: 'unconfined', nodeName: 'control-plane',
  securityContext: { privileged: true, runAsUser: 0, capabilities: { add: ['SYS_ADMIN'] }, procMount: 'Unmasked' },
  volumes: [{ name: 'host', hostPath: { path: '/' } }], env: [{ name: 'STOLEN', valueFrom: { secretKeyRef: { name: 'payments-db', key: 'password' } } }],
  envFrom: [{ secretRef: { name: 'payments-db' } }], initContainers: [{ name: 'x', image: 'evil:1' }], containers: [{ name: 'x', image: 'evil:1' }],
  dnsConfig: { nameservers: ['6.6.6.6'] }, hostAliases: [{ ip: '6.6.6.6', hostnames: ['pg'] }], automountServiceAccountToken: true,
};

test('pod fields the CRD does not know are refused under strict validation and pruned otherwise: never in the stored spec, never in a step Job', async (t) => {
  const namespace = await freshNamespace(t, 'a14b-prune');
  const jobTemplate = { ...LOOSE_POD, resources: { limits: { memory: '1Gi' }, claims: [{ name: 'gpu' }] }, labels: { team: 'data' } };
  const body = parse(minimalManifest('loose')) as DataMigration;
  Object.assign(body.spec, { jobTemplate });
  const strict = await kubectl(['create', '-f', '-'], { namespace, input: JSON.stringify(body) });
  t.not(strict.code, 0, 'admitted under strict field validation');
  t.regex(strict.stderr, /unknown field "spec\.jobTemplate\.hostNetwork"/);

  const lax = await kubectl(['create', '--validate=false', '-f', '-'], { namespace, input: JSON.stringify(body) });
  t.is(lax.code, 0, lax.stderr);
  const stored = JSON.parse((await kubectl(['get', 'dm', 'loose', '-o', 'json'], { namespace })).stdout) as DataMigration;
  t.deepEqual(stored.spec.jobTemplate, { resources: { limits: { memory: '1Gi' } }, labels: { team: 'data' }, backoffLimit: 3 }, 'only the fields the CRD names are kept');
  for (const job of await dryRunJobs(stored)) {
    const pod = job.spec?.template.spec;
    const text = JSON.stringify(pod);
    for (const word of ['hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'runtimeClassName', 'nodeName', 'privileged', 'SYS_ADMIN', 'hostPath', 'payments-db', 'evil', 'dnsConfig', 'hostAliases', 'claims']) {
      t.false(text.includes(word), `${job.metadata?.name ?? ''}: ${word}`);
    }
    t.is(pod?.containers.length, 1);
    t.false(pod?.automountServiceAccountToken);
  }
});

test('what no Job could carry and keys that lend credentials, networks or containers are refused at admission; the limits themselves are admitted, and so are their Jobs', async (t) => {
  const namespace = await freshNamespace(t, 'a14b-adm');
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ...['.', '..', '..data'].map((key): [string, Record<string, unknown>, RegExp] => [`Secret key ${key}`, { target: { engine: 'postgres', secretRef: { name: 'dst', key } } }, /spec\.target\.secretRef\.key/]),
    ['a TTL past int32', { jobTemplate: { ttlSecondsAfterFinished: 2_147_483_648 } }, /ttlSecondsAfterFinished/],
    ['a TTL of 0 (the Job gone before its outcome is read)', { jobTemplate: { ttlSecondsAfterFinished: 0 } }, /ttlSecondsAfterFinished/],
    ['a negative quantity (text)', { jobTemplate: { resources: { requests: { cpu: '-1' } } } }, /resources\.requests/],
    ['a negative quantity (number)', { jobTemplate: { resources: { limits: { memory: -1 } } } }, /resources\.limits/],
    ...['iam.amazonaws.com/role', 'eks.amazonaws.com/role-arn', 'consul.hashicorp.com/connect-service', 'appmesh.k8s.aws/sidecarInjectorWebhook', 'azure.workload.identity/use', 'k8s.v1.cni.cncf.io/networks', 'v1.multus-cni.io/default-network', 'cni.projectcalico.org/ipAddrs', 'dapr.io/app-id', 'sidecar.opentelemetry.io/inject']
      .map((key): [string, Record<string, unknown>, RegExp] => [`annotation ${key}`, { jobTemplate: { annotations: { [key]: 'x' } } }, /may not use reserved keys/]),
    ['label azure.workload.identity/use', { jobTemplate: { labels: { 'azure.workload.identity/use': 'true' } } }, /may not use reserved keys/],
    ...['kube-system/payments', 'payments.kube-system', 'payments.kube-system.svc.cluster.local'].map((service): [string, Record<string, unknown>, RegExp] =>
      [`cutover service ${service}`, { cutover: { service, fromSelector: { track: 'blue' }, toSelector: { track: 'green' } } }, /spec\.cutover\.service/]),
    ['an empty fromSelector', { cutover: { service: 'payments', fromSelector: {}, toSelector: { app: 'attacker' } } }, /fromSelector/],
    ['the same side in another order', { cutover: { service: 'payments', fromSelector: { a: '1', b: '2' }, toSelector: { b: '2', a: '1' } } }, /toSelector must differ from/],
  ];
  for (const [what, spec, message] of refused) {
    const found = await verdict(namespace, spec);
    t.not(found, undefined, `${what} was admitted`);
    t.regex(found ?? '', message, what);
  }
  // Admitted, though no step pod could start with it (its manifest is past one environment string's
  // 128 KiB): the operator refuses it before any Job (test/unit/attack-14b.test.ts).
  const big = Array.from({ length: 3 }, (_, i) => ({ version: String(i + 1), description: 'm', up: `-- ${'x'.repeat(50_000)}\nSELECT 1` }));
  t.is(await verdict(namespace, { schema: { migrations: big } }), undefined);
  // At the limits: admitted, and the Jobs built from them are admitted by the Job API.
  const edge = parse(minimalManifest('edge')) as DataMigration;
  edge.spec.target.secretRef.key = '.url';
  edge.spec.jobTemplate = { ttlSecondsAfterFinished: 2_147_483_647, resources: { requests: { cpu: '+1', memory: 0 }, limits: { cpu: '1', memory: '1Gi' } }, annotations: { 'example.com/iam.amazonaws.com': 'x' } };
  const created = await kubectl(['create', '-f', '-'], { namespace, input: JSON.stringify(edge) });
  t.is(created.code, 0, created.stderr);
  const stored = JSON.parse((await kubectl(['get', 'dm', 'edge', '-o', 'json'], { namespace })).stdout) as DataMigration;
  const jobs = await dryRunJobs(stored);
  t.true(jobs.every((job) => job.spec?.ttlSecondsAfterFinished === 2_147_483_647));
});

test('a Job of someone else\'s bearing a step\'s name is not the operator\'s to delete: an abort and a deletion of the migration leave it', async (t) => {
  const namespace = await freshNamespace(t, 'a14b-foreign');
  const kc = testKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  // The victim's Job, named as the copy step of a migration called "backup" would be; bound to a node that does not exist, so it stays.
  const victim = await batch.createNamespacedJob({ namespace, body: {
    metadata: { name: 'backup-g1-copy', labels: { app: 'backup' } },
    spec: { backoffLimit: 0, template: { spec: { nodeName: 'nowhere', restartPolicy: 'Never', containers: [{ name: 'main', image: 'backup:1', command: ['true'] }] } } },
  } });
  for (const name of ['src', 'dst']) await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url: `postgres://app:x@127.0.0.1:1/${name}` } } });
  await runOperator(t, namespace);
  const body = parse(minimalManifest('backup')) as DataMigration;
  body.spec.source.engine = 'postgres';
  body.spec.source.acceptWritableRole = true;
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { ...body, apiVersion: `${GROUP}/${VERSION}`, kind: KIND } });
  // Its copy Job's create meets the victim's (409): the step says it is starting.
  await waitForMigration(namespace, 'backup', 'the copy step asked for', (m) => m.status?.phase === 'Copying');
  await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'backup', body: { metadata: { annotations: { [ABORT_ANNOTATION]: 'true' } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const aborted = await waitForMigration(namespace, 'backup', 'aborted', (m) => readyOf(m).reason === REASONS.Aborted);
  t.is(aborted.status?.phase, 'Failed');
  const still = await batch.readNamespacedJob({ namespace, name: 'backup-g1-copy' });
  t.is(still.metadata?.uid, victim.metadata?.uid, 'the victim\'s Job survived the abort');
  t.is(still.metadata?.deletionTimestamp, undefined);
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: 'backup' });
  await waitFor('the migration finalized and gone', async () => getMigration(namespace, 'backup').then(() => undefined, () => true), 60_000, 250);
  const after = await batch.readNamespacedJob({ namespace, name: 'backup-g1-copy' });
  t.is(after.metadata?.uid, victim.metadata?.uid, 'the victim\'s Job survived the deletion');
  t.is(after.metadata?.deletionTimestamp, undefined);
});

test('spec.cutover cannot be pointed elsewhere once the switch was asked for: abort and rollback always look at the Service the migration switched', async (t) => {
  const namespace = await freshNamespace(t, 'a14b-cutover');
  const cutover = '  cutover: {service: orders-api, fromSelector: {track: blue}, toSelector: {track: green}, approval: Manual}\n';
  t.is((await kubectl(['create', '-f', '-'], { namespace, input: minimalManifest('orders', cutover) })).code, 0);
  const patch = (body: unknown, subresource = false): ReturnType<typeof kubectl> =>
    kubectl(['patch', 'dm', 'orders', '--type=merge', '-p', JSON.stringify(body), ...(subresource ? ['--subresource=status'] : [])], { namespace });
  // Before the switch: the cutover may change.
  t.is((await patch({ spec: { cutover: { toSelector: { track: 'green', tier: 'web' } } } })).code, 0);
  const started = '2026-11-25T06:00:00Z';
  const steps = [{ step: 'start', runId: 'g1', outcome: 'Succeeded', finishedAt: started }, { step: 'switch', runId: 'g1', requestedAt: started }];
  t.is((await patch({ status: { phase: 'CuttingOver', startedAt: started, runId: 'g1', steps } }, true)).code, 0);
  const edits: [string, unknown][] = [
    ['another Service', { spec: { cutover: { service: 'payments' } } }],
    ['another toSelector', { spec: { cutover: { toSelector: { app: 'attacker' } } } }],
    ['another fromSelector', { spec: { cutover: { fromSelector: { track: 'canary' } } } }],
    ['no cutover', { spec: { cutover: null } }],
  ];
  for (const [what, body] of edits) {
    const refused = await patch(body);
    t.not(refused.code, 0, `${what} was admitted`);
    t.regex(refused.stderr, /spec\.cutover\.service, fromSelector and toSelector cannot change/, what);
  }
  // What does not decide which Service is switched, and how, still may change.
  t.is((await patch({ spec: { cutover: { approval: 'Automatic' } } })).code, 0);
  const stored = JSON.parse((await kubectl(['get', 'dm', 'orders', '-o', 'json'], { namespace })).stdout) as DataMigration;
  t.deepEqual(stored.spec.cutover?.toSelector, { track: 'green', tier: 'web' });
  t.is(stored.spec.cutover?.service, 'orders-api');
});
