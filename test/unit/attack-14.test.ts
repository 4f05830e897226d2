// Issue 14 attacked by someone who may only create DataMigrations in a namespace: a Job planted
// under a step's predictable name, Events said twice by decisions made on a stale cache, image
// references and ServiceAccount names dressed up to pass the allow-lists, a Service's consent
// stretched (another name, spaces, commas, a race between two migrations, a selector edited after
// the switch), the Secrets a step pod can reach, and status past the CRD's bounds. Each attack
// asserts that nothing was created or patched that must not be, and that status says why.
import { Writable } from 'node:stream';
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import { ABORT_ANNOTATION, API_VERSION, CUTOVER_BY_ANNOTATION, KIND, LABELS, MANAGED_BY, REASONS, SWITCH_RECORD } from '../../src/api/constants.ts';
import { STATUS_LIMITS } from '../../src/api/datamigration-schema.ts';
import type { CutoverSpec, DataMigration, DataMigrationSpec } from '../../src/api/types.ts';
import { ClusterError } from '../../src/controller/cluster.ts';
import { buildStepJob, type EngineConfig } from '../../src/controller/job-builder.ts';
import { createLogger } from '../../src/controller/logger.ts';
import { createMetrics } from '../../src/controller/metrics.ts';
import { controlledByMigration } from '../../src/controller/observe.ts';
import { imageProblem, podIdentity, servedByProblem, type PodPolicyConfig } from '../../src/controller/pod-policy.ts';
import { runPreflight } from '../../src/controller/preflight.ts';
import { Reconciler } from '../../src/controller/reconciler.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const UID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const KEY = 'shop/orders';
const engine: EngineConfig = { image: 'engine:dev', command: ['dmctl'] };
const silent = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));
const T0 = new Date('2025-01-01T00:00:00Z');

/** A cluster whose informer caches can lag the store: a stale DataMigration, a stale Service. */
class LaggingCluster extends MemoryCluster {
  staleMigration: DataMigration | undefined;
  staleService: k8s.V1Service | undefined;
  override migration(namespace: string, name: string): DataMigration | undefined {
    return this.staleMigration ? structuredClone(this.staleMigration) : super.migration(namespace, name);
  }
  override service(namespace: string, name: string): k8s.V1Service | undefined {
    return this.staleService ?? super.service(namespace, name);
  }
}

function migrationOf(name: string, uid: string, spec: Partial<DataMigrationSpec> = {}, annotations?: Record<string, string>): DataMigration {
  return {
    apiVersion: API_VERSION, kind: KIND,
    metadata: { name, namespace: 'shop', uid, generation: 1, ...(annotations ? { annotations } : {}) },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' }, ...spec,
    },
  };
}

function setUp(migrations: DataMigration[], options: { secrets?: boolean; config?: Partial<EngineConfig> } = {}): { cluster: LaggingCluster; reconciler: Reconciler; clock: { now: Date } } {
  const cluster = new LaggingCluster();
  if (options.secrets !== false) {
    cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
    cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  }
  for (const m of migrations) cluster.add(m);
  const clock = { now: T0 };
  const reconciler = new Reconciler({
    cluster, engine: { ...engine, ...options.config }, logger: silent, metrics: createMetrics(), now: () => clock.now,
    readProgress: () => Promise.resolve({ progress: {}, rows: 0, at: clock.now.getTime() }),
  });
  return { cluster, reconciler, clock };
}

const stored = (cluster: MemoryCluster, name = 'orders'): DataMigration => cluster.migrations.get(`shop/${name}`) ?? (() => { throw new Error('gone'); })();
const readyOf = (m: DataMigration) => m.status?.conditions?.find((c) => c.type === 'Ready');
const terminated = (message: string, exitCode = 0, index?: number): k8s.V1Pod => ({
  metadata: { name: `p${String(index ?? 0)}`, ...(index !== undefined ? { annotations: { 'batch.kubernetes.io/job-completion-index': String(index) } } : {}) },
  status: { containerStatuses: [{ name: 'engine', image: 'engine:dev', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, message, finishedAt: T0 } } }] },
});
/** A Service that publishes not-ready addresses (headless peers, as StatefulSets use). */
const publishingNotReady = (service: k8s.V1Service): void => {
  service.spec ??= {};
  service.spec.publishNotReadyAddresses = true;
};
const stepLabels = (step: string, migration = 'orders'): Record<string, string> => ({ [LABELS.migration]: migration, [LABELS.step]: step, [LABELS.run]: 'g1', [LABELS.managedBy]: MANAGED_BY });

// ---------------------------------------------------------------------------------------------
// A Job planted under the step's predictable name

test('only a Job with this migration\'s controller owner reference (its kind, group and uid) is the migration\'s', (t) => {
  const m = migrationOf('orders', UID);
  const job = (ownerReferences: k8s.V1OwnerReference[] | undefined, labels = stepLabels('copy')): k8s.V1Job => ({ metadata: { name: 'orders-g1-copy', namespace: 'shop', labels, ...(ownerReferences ? { ownerReferences } : {}) } });
  const ref = (extra: Partial<k8s.V1OwnerReference> = {}): k8s.V1OwnerReference => ({ apiVersion: API_VERSION, kind: KIND, name: 'orders', uid: UID, controller: true, ...extra });
  t.true(controlledByMigration(job([ref()]), m), 'as job-builder.ts sets it');
  t.false(controlledByMigration(job(undefined), m), 'labels alone');
  t.false(controlledByMigration(job([ref({ controller: false })]), m), 'a reference that is not the controller');
  t.false(controlledByMigration(job([ref({ controller: undefined })]), m), 'controller unset');
  t.false(controlledByMigration(job([ref({ kind: 'ConfigMap', apiVersion: 'v1' })]), m), 'the uid on another kind');
  t.false(controlledByMigration(job([ref({ apiVersion: 'evil.dev/v1alpha1' })]), m), 'a DataMigration of another API group');
  t.false(controlledByMigration(job([ref({ uid: 'a-deleted-namesake' })]), m), 'another uid (a deleted namesake)');
  t.false(controlledByMigration(job([ref()], stepLabels('copy', 'other')), m), 'labels naming another migration');
  t.false(controlledByMigration(job([ref({ uid: '' })]), migrationOf('orders', '')), 'no uid matches nothing');
});

test('a Job planted under the copy step\'s name with a fake result is never the step: refused in status with a reason, its result unread, no Job of ours created', async (t) => {
  const { cluster, reconciler } = setUp([migrationOf('orders', UID)]);
  // Planted before the operator creates its Job: the labels the informer and the old check went by,
  // and an owner reference to the migration's uid that is not the controller (anyone may add one).
  cluster.jobList.push({
    metadata: {
      name: 'orders-g1-copy', namespace: 'shop', uid: 'planted-job', labels: stepLabels('copy'),
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: 'orders', uid: UID, controller: false }],
    },
    spec: { template: {} },
  });
  cluster.finishJob('orders-g1-copy', 'Complete', [terminated(JSON.stringify({ tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 424_242 }], rowsThisRun: 424_242 }))]);
  await reconciler.reconcile(KEY);
  const m = stored(cluster);
  t.is(m.status?.phase, 'Copying', 'not moved on by the planted result');
  t.is(m.status?.tables, undefined);
  t.false(JSON.stringify(m.status).includes('424242'));
  t.is(readyOf(m)?.reason, REASONS.JobRejected);
  t.regex(readyOf(m)?.message ?? '', /a Job named orders-g1-copy exists that this DataMigration does not control/);
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.uid), ['planted-job'], 'the planted Job only: nothing of ours replaced it');
  t.deepEqual(cluster.events.filter((e) => e.type === 'Warning').map((e) => e.reason), [REASONS.JobRejected]);
  t.false(cluster.requests.some((r) => r === 'listPods orders-g1-copy'), 'its pods are never read');
  // Deleting the migration deletes its own Jobs only: the planted one is not the operator's to delete.
  const deleting = stored(cluster);
  deleting.metadata ??= {};
  deleting.metadata.deletionTimestamp = new Date();
  cluster.migrations.set(KEY, deleting);
  await reconciler.reconcile(KEY);
  t.false(cluster.requests.some((r) => r.startsWith('deleteJob')), cluster.requests.join(', '));
});

// ---------------------------------------------------------------------------------------------
// One Event per transition, even when a stale cache makes the operator decide twice

/** The migration as the informer cache holds it after the finalizer patch landed and before the status write did. */
function staleAfterFinalizer(cluster: MemoryCluster, name = 'orders'): DataMigration {
  const stale = structuredClone(stored(cluster, name));
  delete stale.status;
  stale.metadata ??= {};
  stale.metadata.resourceVersion = String(Number(stale.metadata.resourceVersion) - 1);
  return stale;
}

for (const [what, options, reason] of [
  ['a missing Secret (no write-ahead: the Event used to go before the write)', { secrets: false }, REASONS.SecretNotFound],
  ['a foreign image (refused by the pod policy)', { config: { image: 'engine:dev' } }, REASONS.ImageNotAllowed],
  ['a new migration (its first Job asked for)', {}, 'Copying'],
] as const) {
  test(`first reconciles on a stale cache say each Event once: ${what}`, async (t) => {
    const spec: Partial<DataMigrationSpec> = reason === REASONS.ImageNotAllowed ? { jobTemplate: { image: 'evil.example/miner:1' } } : {};
    const { cluster, reconciler } = setUp([migrationOf('orders', UID, spec)], options);
    await reconciler.reconcile(KEY);
    t.deepEqual(cluster.events.map((e) => e.reason), [reason]);
    // The finalizer's watch event arrives first and wakes the migration: the cache has no status yet.
    cluster.staleMigration = staleAfterFinalizer(cluster);
    const error = await t.throwsAsync(reconciler.reconcile(KEY), { instanceOf: ClusterError });
    t.is(error.code, 409, 'the decision made on the stale object is not stored');
    t.deepEqual(cluster.events.map((e) => e.reason), [reason], 'and not said');
    cluster.staleMigration = undefined;
    await reconciler.reconcile(KEY);
    t.deepEqual(cluster.events.map((e) => e.reason), [reason], 'the fresh object finds it announced');
    t.true(cluster.jobList.length <= 1);
  });
}

test('an abort whose status write conflicts still says what it did (the Service restored), once', async (t) => {
  const cutover: CutoverSpec = { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
  const { cluster, reconciler } = setUp([migrationOf('orders', UID, { cutover }, { [ABORT_ANNOTATION]: 'true' })]);
  const m = stored(cluster);
  m.metadata ??= {};
  m.metadata.finalizers = ['dataops.dev/cleanup'];
  m.status = { runId: 'g1', phase: 'CuttingOver', steps: [{ step: 'start', runId: 'g1', outcome: 'Succeeded' }, { step: 'switch', runId: 'g1', requestedAt: '2024-12-31T00:00:00Z' }] };
  cluster.addService('shop', 'orders-api', {
    selector: { track: 'green' },
    annotations: { [CUTOVER_BY_ANNOTATION]: 'orders', [SWITCH_RECORD.uid]: UID, [SWITCH_RECORD.migration]: 'orders', [SWITCH_RECORD.run]: 'g1', [SWITCH_RECORD.before]: '{"track":"blue"}', [SWITCH_RECORD.after]: '{"track":"green"}' },
  });
  cluster.conflictOnNextStatusWrite = true;
  await t.throwsAsync(reconciler.reconcile(KEY), { instanceOf: ClusterError });
  t.deepEqual(cluster.services.get('shop/orders-api')?.spec?.selector, { track: 'blue' }, 'restored');
  t.true(cluster.events.some((e) => e.reason === REASONS.ServiceRestored), 'the restore is said although the write was refused');
  await reconciler.reconcile(KEY);
  t.is(stored(cluster).status?.phase, 'Failed');
  t.is(cluster.events.filter((e) => e.reason === REASONS.ServiceRestored).length, 1);
});

// ---------------------------------------------------------------------------------------------
// Images and ServiceAccounts dressed up to pass the allow-lists

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const policy: PodPolicyConfig = {
  image: 'ghcr.io/acme/dmo:1.4.0',
  allowedImages: ['registry.internal/dataops/', 'ghcr.io/acme/tools', 'postgres:16', `docker.io/acme/pinned@${DIGEST_A}`],
};

test('image reference tricks do not pass the allow-list', (t) => {
  const refused = [
    'ghcr.io/acme/dmo:1.4.1', 'ghcr.io/acme/dmo', `ghcr.io/acme/dmo:1.4.0@${DIGEST_B}`, // the engine's own repository, another build
    'ghcr.io/acme/tools-evil:1', 'ghcr.io/acme/tools/evil:1', 'ghcr.io/acme/toolsx', // look-alike repositories
    'GHCR.IO/acme/tools:1', 'Ghcr.io/acme/tools:1', 'ghcr.io/ACME/tools:1', 'ghcr.io/acme/Tools:1', // case
    'ghcr.io/acme/tools/../../evil/x:1', 'registry.internal/dataops/../evil:1', 'registry.internal/dataops/./x:1', 'registry.internal/dataops//x:1', // paths
    'registry.internal.evil.com/dataops/x:1', 'registry.internal:5000/dataops/x:1', 'registry.internal/dataops', 'registry.internal/dataops-evil/x:1', 'evil.com/registry.internal/dataops/x:1', // prefixes
    'postgres:17', 'postgres', 'postgres:latest', 'evil.com/postgres:16', 'docker.io/evil/postgres:16', `postgres:16@${DIGEST_B}`, // an exact tag entry
    'docker.io/acme/pinned:latest', `acme/pinned@${DIGEST_B}`, `docker.io/acme/pinned@sha256:${'A'.repeat(64)}`, 'docker.io/acme/pinned@md5:abc', // a digest entry
    'ghcr.io/acme/tools@evil.com/x:1', 'evil.com/x@ghcr.io/acme/tools', 'ghcr.io/acme/tools:1@', '@ghcr.io/acme/tools', // @ tricks
    'ghcr.io/acme/tools:1 ', ' ghcr.io/acme/tools:1', 'ghcr.io/acme/tools:1\n', 'ghcr.io/acme/to\u043Els:1', 'ghcr.io/acme/tools:-1', `ghcr.io/acme/tools:${'x'.repeat(129)}`, // junk
    `registry.internal/dataops/${'a/'.repeat(300)}x`, '', ':1', '/x:1', 'https://ghcr.io/acme/tools:1',
  ];
  for (const image of refused) t.truthy(imageProblem(image, policy), `refused: ${JSON.stringify(image)}`);
  const allowed = [
    'ghcr.io/acme/dmo:1.4.0', 'ghcr.io/acme/tools', 'ghcr.io/acme/tools:LATEST', `ghcr.io/acme/tools@${DIGEST_B}`,
    'registry.internal/dataops/x:1', 'registry.internal/dataops/team/x:1', 'postgres:16', 'docker.io/library/postgres:16', 'index.docker.io/library/postgres:16', 'library/postgres:16',
    `docker.io/acme/pinned@${DIGEST_A}`, `acme/pinned:1@${DIGEST_A}`,
  ];
  for (const image of allowed) t.is(imageProblem(image, policy), undefined, `allowed: ${image}`);
  // A Docker Hub namespace as a prefix: that namespace only.
  const hub: PodPolicyConfig = { image: 'engine:dev', allowedImages: ['acme/'] };
  for (const image of ['acmeevil/x:1', 'Acme/x:1', 'docker.io/acmex/y', 'acme', 'library/acme:1', 'ghcr.io/acme/x:1']) t.truthy(imageProblem(image, hub), `refused: ${image}`);
  for (const image of ['acme/x:1', 'docker.io/acme/x', 'index.docker.io/acme/x/y:2']) t.is(imageProblem(image, hub), undefined, `allowed: ${image}`);
  // The engine's reference matched as runtimes read it, not as text.
  t.is(imageProblem('docker.io/library/dmo:1', { image: 'dmo:1' }), undefined);
  t.truthy(imageProblem(`dmo:1@${DIGEST_A}`, { image: 'dmo:1' }), 'a digest decides what runs, whatever the tag says');
});

test('a ServiceAccount named namespace/name, or an entry of another namespace, lends no token', (t) => {
  const config: PodPolicyConfig = { image: 'engine:dev', allowedServiceAccounts: ['shop/cloud-sa', 'migrator'] };
  const identity = (name: string, namespace = 'attacker'): ReturnType<typeof podIdentity> => podIdentity({ serviceAccountName: name }, namespace, config);
  const text = (verdict: ReturnType<typeof podIdentity>): string => (typeof verdict === 'string' ? verdict : JSON.stringify(verdict));
  t.deepEqual(identity('cloud-sa', 'shop'), { serviceAccountName: 'cloud-sa', automountToken: true }, 'the entry\'s own namespace');
  t.regex(text(identity('cloud-sa')), /not allowed/, 'shop/cloud-sa allows it in shop only');
  t.regex(text(identity('shop/cloud-sa')), /not allowed/, 'the entry text as a name (it used to match the entry verbatim)');
  t.regex(text(identity('shop/cloud-sa', 'shop')), /not allowed/, 'a slash is never an account name');
  t.regex(text(identity('kube-system/migrator')), /not allowed/, 'another namespace\'s account');
  t.deepEqual(identity('migrator'), { serviceAccountName: 'migrator', automountToken: true }, 'a bare entry: any namespace');
  t.regex(text(identity('default')), /not allowed/);
  t.regex(text(podIdentity({ serviceAccountName: 'default' }, 'shop', { image: 'engine:dev' })), /allows no ServiceAccount/);
});

test('the Secrets a step pod can reach are the ones its spec names, nothing more (what creating a DataMigration lends)', (t) => {
  const m = migrationOf('orders', UID, {
    source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' }, tls: { mode: 'verify-full', caSecretRef: { name: 'legacy-ca', key: 'ca.crt' } } },
    jobTemplate: { imagePullSecrets: [{ name: 'registry-pull' }] },
  });
  for (const step of ['schema', 'copy', 'validate', 'rollback'] as const) {
    const pod = buildStepJob(m, step, 'g1', engine).spec?.template.spec;
    const container = pod?.containers[0];
    const reached = new Set([
      ...(container?.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [`${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`] : [])),
      ...(pod?.volumes ?? []).flatMap((v) => (v.secret ? (v.secret.items ?? []).map((item) => `${v.secret?.secretName ?? ''}/${item.key}`) : [])),
      ...(pod?.volumes ?? []).flatMap((v) => (v.projected ? ['projected'] : [])),
      ...(container?.envFrom ?? []).map(() => 'envFrom'),
    ]);
    t.deepEqual([...reached].sort(), ['legacy-ca/ca.crt', 'legacy-db/url', 'orders-pg/url'], step);
    t.deepEqual(pod?.imagePullSecrets, [{ name: 'registry-pull' }], 'pull credentials for the allowed image, never mounted');
    t.false(pod?.automountServiceAccountToken);
  }
});

test('labels that a Service publishing not-ready addresses selects are refused (the readiness gate cannot keep the pods out); other Services are kept out by the gate', async (t) => {
  const labels = { app: 'payments', tier: 'web' };
  const cluster = new MemoryCluster();
  const payments = cluster.addService('shop', 'payments', { selector: { app: 'payments' } });
  publishingNotReady(cluster.addService('shop', 'payments-peers', { selector: { app: 'payments', tier: 'web' } }));
  publishingNotReady(cluster.addService('other', 'elsewhere', { selector: { app: 'payments' } }));
  const refused = await runPreflight(cluster, migrationOf('orders', UID, { jobTemplate: { labels } }), engine);
  t.is(refused.podPolicy?.reason, REASONS.ReservedKey);
  t.regex(refused.podPolicy?.message ?? '', /endpoints of Service "payments-peers", which publish not-ready addresses/);
  t.false((refused.podPolicy?.message ?? '').includes('"payments"'), 'a Service routing to Ready pods only is kept out by the gate');
  t.false((refused.podPolicy?.message ?? '').includes('elsewhere'), 'another namespace\'s Services select no pod of this one');
  t.is((await runPreflight(cluster, migrationOf('orders', UID, { jobTemplate: { labels: { app: 'payments' } } }), engine)).podPolicy, undefined, 'a subset of its selector is not selected');
  t.is((await runPreflight(cluster, migrationOf('orders', UID), engine)).podPolicy, undefined, 'no labels of the spec\'s: nothing to check');
  t.truthy(payments);
  // The operator's own labels count: a Service selecting every migration pod of the operator.
  t.truthy(servedByProblem({ 'app.kubernetes.io/managed-by': 'datamigration-operator', x: '1' }, [{ name: 'all-steps', selector: { 'app.kubernetes.io/managed-by': 'datamigration-operator' }, publishNotReadyAddresses: true }]));
  t.is(servedByProblem({ x: '1' }, [{ name: 'empty', selector: {}, publishNotReadyAddresses: true }]), undefined, 'an empty selector selects nothing');
});

test('the reconciler: such labels start no Job, say why once, and the fixed spec starts', async (t) => {
  const { cluster, reconciler } = setUp([migrationOf('orders', UID, { jobTemplate: { labels: { app: 'payments' } } })]);
  publishingNotReady(cluster.addService('shop', 'payments-peers', { selector: { app: 'payments' } }));
  await reconciler.reconcile(KEY);
  t.deepEqual(cluster.jobList, []);
  t.is(readyOf(stored(cluster))?.reason, REASONS.ReservedKey);
  t.deepEqual(cluster.events.map((e) => e.reason), [REASONS.ReservedKey]);
  const m = stored(cluster);
  m.spec.jobTemplate = { labels: { team: 'payments' } };
  m.metadata ??= {};
  m.metadata.generation = 2;
  cluster.migrations.set(KEY, m);
  await reconciler.reconcile(KEY);
  t.is(cluster.jobList.length, 1);
  t.deepEqual(cluster.jobList[0]?.spec?.template.metadata?.labels?.team, 'payments');
});

// ---------------------------------------------------------------------------------------------
// The Service's consent, stretched

const CUTOVER: CutoverSpec = { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
const AT_CUTOVER = { runId: 'g1', steps: [
  { step: 'start' as const, runId: 'g1', outcome: 'Succeeded' as const, finishedAt: '2024-12-31T00:00:00Z' },
  { step: 'copy' as const, runId: 'g1', outcome: 'Succeeded' as const, finishedAt: '2024-12-31T00:00:00Z' },
  { step: 'validate' as const, runId: 'g1', outcome: 'Succeeded' as const, finishedAt: '2024-12-31T00:00:00Z' },
  { step: 'switch' as const, runId: 'g1' },
] };

function atCutover(name: string, uid: string, annotations?: Record<string, string>): DataMigration {
  const m = migrationOf(name, uid, { cutover: CUTOVER }, annotations);
  m.metadata ??= {};
  m.metadata.finalizers = ['dataops.dev/cleanup'];
  m.status = structuredClone(AT_CUTOVER);
  return m;
}

test('consent for another name, a look-alike, or a list that does not name it exactly: never patched', async (t) => {
  for (const consent of ['orders-other', 'orders-', 'order', 'ORDERS', '*', 'shop/orders', 'other orders', 'orders.v2', 'orders;other', '']) {
    const { cluster, reconciler } = setUp([atCutover('orders', UID)]);
    cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: consent } });
    const version = cluster.services.get('shop/orders-api')?.metadata?.resourceVersion;
    await reconciler.reconcile(KEY);
    t.false(cluster.requests.some((r) => r.startsWith('patchService')), `consent ${JSON.stringify(consent)}`);
    t.is(cluster.services.get('shop/orders-api')?.metadata?.resourceVersion, version);
    t.is(readyOf(stored(cluster))?.reason, REASONS.ServiceNotOptedIn);
    t.regex(readyOf(stored(cluster))?.message ?? '', /annotates it with dataops\.dev\/cutover-by=orders/);
  }
});

test('a comma-separated list with spaces names each migration exactly (names hold no spaces or commas)', async (t) => {
  for (const consent of ['other, orders', ' orders ,other', 'orders,,', ',orders']) {
    const { cluster, reconciler } = setUp([atCutover('orders', UID)]);
    cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: consent } });
    await reconciler.reconcile(KEY);
    t.deepEqual(cluster.services.get('shop/orders-api')?.spec?.selector, { track: 'green' }, `consent ${JSON.stringify(consent)}`);
  }
});

test('two migrations racing for one Service: one switch lands, the other is refused at the old version, then told who switched it, and its abort leaves the winner\'s switch', async (t) => {
  const OTHER = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
  const { cluster, reconciler } = setUp([atCutover('orders', UID), atCutover('rival', OTHER)]);
  cluster.addService('shop', 'orders-api', { selector: { app: 'orders', track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders,rival' } });
  const before = structuredClone(cluster.services.get('shop/orders-api'));
  await reconciler.reconcile(KEY);
  t.is(cluster.services.get('shop/orders-api')?.metadata?.annotations?.[SWITCH_RECORD.uid], UID);
  // The rival decided on the Service as it was before orders' switch: its patch is refused.
  cluster.staleService = before;
  const error = await t.throwsAsync(reconciler.reconcile('shop/rival'), { instanceOf: ClusterError });
  t.is(error.code, 409);
  cluster.staleService = undefined;
  const won = structuredClone(cluster.services.get('shop/orders-api'));
  t.deepEqual(won?.spec?.selector, { app: 'orders', track: 'green' });
  await reconciler.reconcile('shop/rival');
  t.is(readyOf(stored(cluster, 'rival'))?.reason, REASONS.ServiceSelectorMismatch);
  t.regex(readyOf(stored(cluster, 'rival'))?.message ?? '', /switched by DataMigration orders \(uid 0f8fad5b/);
  // The rival gives up: nothing of its own to restore.
  const rival = stored(cluster, 'rival');
  rival.metadata ??= {};
  rival.metadata.annotations = { [ABORT_ANNOTATION]: 'true' };
  cluster.migrations.set('shop/rival', rival);
  await reconciler.reconcile('shop/rival');
  t.is(stored(cluster, 'rival').status?.phase, 'Failed');
  t.deepEqual(cluster.services.get('shop/orders-api'), won, 'the winner\'s switch and record stay');
  t.deepEqual(cluster.requests.filter((r) => r.startsWith('patchService')).length, 2, 'orders\' switch and the rival\'s refused one, nothing else');
});

test('restore after the owner edited the selector: left as the owner left it, and said', async (t) => {
  const { cluster, reconciler } = setUp([atCutover('orders', UID)]);
  cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  await reconciler.reconcile(KEY);
  const service = cluster.services.get('shop/orders-api');
  if (service?.spec) service.spec.selector = { track: 'green', tier: 'canary' };
  const edited = structuredClone(service);
  const m = stored(cluster);
  m.metadata ??= {};
  m.metadata.annotations = { [ABORT_ANNOTATION]: 'true' };
  cluster.migrations.set(KEY, m);
  const patches = cluster.requests.filter((r) => r.startsWith('patchService')).length;
  await reconciler.reconcile(KEY);
  t.is(cluster.requests.filter((r) => r.startsWith('patchService')).length, patches, 'no restore');
  t.deepEqual(cluster.services.get('shop/orders-api'), edited);
  t.is(stored(cluster).status?.phase, 'Failed');
  t.regex(stored(cluster).status?.message ?? '', /was not restored: it was changed since this migration switched it/);
  t.deepEqual(cluster.events.filter((e) => e.reason === REASONS.ServiceNotRestored).length, 1);
});

// ---------------------------------------------------------------------------------------------
// Status past the CRD's bounds (the in-memory cluster refuses it with 422 as the API server does)

test('150 created tables and a copy over 3 pods of 60 tables each: status fits (truncated, marked), is written before the switch, and the cutover is recorded', async (t) => {
  const m = migrationOf('orders', UID, { schema: { createMissingTables: true }, strategy: { type: 'BigBang', copyPods: 3 }, cutover: CUTOVER });
  const { cluster, reconciler, clock } = setUp([m]);
  cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  const names = Array.from({ length: 180 }, (_, i) => `table_${String(i).padStart(3, '0')}`);
  const tick = async (): Promise<void> => {
    clock.now = new Date(clock.now.getTime() + 1000);
    await reconciler.reconcile(KEY);
  };
  await tick();
  cluster.finishJob('orders-g1-schema', 'Complete', [terminated(JSON.stringify({ versionBefore: null, createdTables: names.slice(0, 150) }))]);
  await tick();
  t.is(stored(cluster).status?.phase, 'Copying', JSON.stringify(readyOf(stored(cluster))));
  const share = (pod: number): string => JSON.stringify({
    tables: names.slice(pod * 60, pod * 60 + 60).map((name) => ({ name, target: name, state: 'Copied', rowsCopied: 10 })),
    rowsThisRun: 600, pod: { index: pod, count: 3 },
  });
  cluster.finishJob('orders-g1-copy', 'Complete', [0, 1, 2].map((pod) => terminated(share(pod), 0, pod)));
  await tick();
  t.is(stored(cluster).status?.phase, 'Validating', JSON.stringify(readyOf(stored(cluster))));
  cluster.finishJob('orders-g1-validate', 'Complete', [terminated(JSON.stringify({
    passed: true, summary: '180/180 checks passed',
    tables: names.map((name) => ({ name, rowsSource: 10, rowsTarget: 10, checksum: 'Match' })),
  }))]);
  await tick();
  const writesBeforeSwitch = cluster.requests.slice(0, cluster.requests.findIndex((r) => r.startsWith('patchService')));
  t.true(writesBeforeSwitch.at(-1)?.startsWith('writeStatus CuttingOver'), `the intent is stored before the patch: ${cluster.requests.join(', ')}`);
  await tick();
  const done = stored(cluster).status;
  t.is(done?.phase, 'Succeeded', JSON.stringify(done?.conditions));
  t.is(done?.schema?.createdTables?.length, STATUS_LIMITS.tables);
  t.true(done?.schema?.truncated);
  t.is(done?.tables?.length, STATUS_LIMITS.tables);
  t.true(done?.tablesTruncated);
  t.is(done?.conditions?.find((c) => c.type === 'CutOver')?.reason, REASONS.ServiceSwitched);
  t.false(cluster.events.some((e) => e.reason === 'StatusRejected'), 'no status was refused');
});

test('the in-memory cluster refuses a status past the CRD\'s bounds, as the API server does', async (t) => {
  const { cluster } = setUp([migrationOf('orders', UID)]);
  const error = await t.throwsAsync(cluster.writeStatus(stored(cluster), { tables: Array.from({ length: 101 }, (_, i) => ({ name: `t${String(i)}` })) }), { instanceOf: ClusterError });
  t.is(error.code, 422);
  t.regex(error.message, /status\.tables/);
});
