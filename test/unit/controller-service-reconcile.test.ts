// The Service switch through the reconciler on the in-memory Cluster (test/support/memory-cluster.ts):
// the status written before the patch, the patch conditional on the version the decision saw (a
// consent withdrawn meanwhile makes it fail with 409, not land), the record written with the
// selector and removed by the restore; the confused deputy never patches; the merge patch's body;
// and the operator's opt-in label selector (CUTOVER_OPT_IN_SELECTOR) parsed and matched.
import { Writable } from 'node:stream';
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import { ABORT_ANNOTATION, CUTOVER_BY_ANNOTATION, REASONS, SWITCH_RECORD } from '../../src/api/constants.ts';
import type { CutoverSpec, DataMigration } from '../../src/api/types.ts';
import { ClusterError, serviceMergePatch } from '../../src/controller/cluster.ts';
import { createLogger } from '../../src/controller/logger.ts';
import { createMetrics } from '../../src/controller/metrics.ts';
import { observedService } from '../../src/controller/observe.ts';
import { Reconciler } from '../../src/controller/reconciler.ts';
import { matchesLabels, parseLabelSelector } from '../../src/controller/selectors.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const KEY = 'shop/orders';
const UID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const CUTOVER: CutoverSpec = { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
const silent = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));

/** A cluster whose Service cache can lag the store (as an informer's does), and a reconciler on it. */
class LaggingCluster extends MemoryCluster {
  cached: k8s.V1Service | undefined;
  override service(namespace: string, name: string): k8s.V1Service | undefined {
    return this.cached ?? super.service(namespace, name);
  }
}

function setUp(options: { cutover?: CutoverSpec; annotations?: Record<string, string>; phase?: 'CuttingOver' | 'Pending'; secrets?: boolean } = {}): { cluster: LaggingCluster; reconciler: Reconciler } {
  const cluster = new LaggingCluster();
  if (options.secrets !== false) {
    cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
    cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  }
  const done = (step: 'start' | 'copy' | 'validate'): { step: typeof step; runId: string; outcome: 'Succeeded'; finishedAt: string } => ({ step, runId: 'g1', outcome: 'Succeeded', finishedAt: '2025-01-01T00:00:00Z' });
  const migration: DataMigration = {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: UID, generation: 1, finalizers: ['dataops.dev/cleanup'], ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' }, cutover: options.cutover ?? CUTOVER,
    },
    ...(options.phase === 'Pending' ? {} : { status: { runId: 'g1', steps: [done('start'), done('copy'), done('validate'), { step: 'switch', runId: 'g1' }] } }),
  };
  cluster.add(migration);
  const reconciler = new Reconciler({ cluster, engine: { image: 'engine:dev', command: ['dmctl'] }, logger: silent, metrics: createMetrics(), now: () => new Date('2025-01-01T00:01:00Z') });
  return { cluster, reconciler };
}

const stored = (cluster: MemoryCluster): DataMigration => cluster.migration('shop', 'orders') ?? (() => { throw new Error('gone'); })();
const svc = (cluster: MemoryCluster, name = 'orders-api'): k8s.V1Service => cluster.services.get(`shop/${name}`) ?? (() => { throw new Error('no Service'); })();

test('an opted-in Service: status first, then one conditional patch with the record (other annotations kept); done when the record is seen', async (t) => {
  const { cluster, reconciler } = setUp();
  cluster.addService('shop', 'orders-api', { selector: { app: 'orders', track: 'blue', tier: 'web' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders', 'kubectl.kubernetes.io/last-applied-configuration': '{}' } });
  await reconciler.reconcile(KEY);
  t.deepEqual(cluster.requests.filter((r) => r.startsWith('writeStatus') || r.startsWith('patchService')), ['writeStatus CuttingOver', 'patchService orders-api app=orders,tier=web,track=green']);
  const switched = svc(cluster);
  t.deepEqual(switched.spec?.selector, { app: 'orders', track: 'green', tier: 'web' });
  t.like(switched.metadata?.annotations, {
    [CUTOVER_BY_ANNOTATION]: 'orders', 'kubectl.kubernetes.io/last-applied-configuration': '{}',
    [SWITCH_RECORD.uid]: UID, [SWITCH_RECORD.migration]: 'orders', [SWITCH_RECORD.run]: 'g1',
    [SWITCH_RECORD.before]: '{"app":"orders","tier":"web","track":"blue"}', [SWITCH_RECORD.after]: '{"app":"orders","tier":"web","track":"green"}',
  });
  await reconciler.reconcile(KEY);
  t.is(stored(cluster).status?.phase, 'Succeeded');
  t.is(stored(cluster).status?.conditions?.find((c) => c.type === 'CutOver')?.reason, REASONS.ServiceSwitched);
});

test('consent withdrawn after the cache was read: the patch is refused at the old version (409) and nothing lands', async (t) => {
  const { cluster, reconciler } = setUp();
  cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  cluster.cached = structuredClone(svc(cluster));
  // The owner takes the opt-in back; the cache has not seen it yet.
  await cluster.patchServiceSelector('shop', 'orders-api', { resourceVersion: svc(cluster).metadata?.resourceVersion ?? '', from: { track: 'blue' }, selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: null } });
  const before = structuredClone(svc(cluster));
  const error = await t.throwsAsync(reconciler.reconcile(KEY), { instanceOf: ClusterError });
  t.is(error.code, 409);
  t.deepEqual(svc(cluster), before, 'the Service is exactly as its owner left it');
  // Fresh cache: refused by consent, never patched.
  cluster.cached = undefined;
  cluster.requests.length = 0;
  await reconciler.reconcile(KEY);
  t.false(cluster.requests.some((r) => r.startsWith('patchService')));
  t.is(stored(cluster).status?.conditions?.find((c) => c.type === 'Ready')?.reason, REASONS.ServiceNotOptedIn);
  t.deepEqual(cluster.events.filter((e) => e.type === 'Warning').map((e) => e.reason), ['ServiceNotOptedIn']);
});

test('the confused deputy through the reconciler: payments is never patched, its version unchanged; the abort says why', async (t) => {
  const attack: CutoverSpec = { service: 'payments', fromSelector: { app: 'attacker' }, toSelector: { app: 'payments' } };
  const { cluster, reconciler } = setUp({ cutover: attack, annotations: { [ABORT_ANNOTATION]: 'true' }, phase: 'Pending', secrets: false });
  cluster.addService('shop', 'payments', { selector: { app: 'payments' } });
  const version = svc(cluster, 'payments').metadata?.resourceVersion;
  await reconciler.reconcile(KEY);
  t.false(cluster.requests.some((r) => r.startsWith('patchService')));
  t.is(svc(cluster, 'payments').metadata?.resourceVersion, version);
  t.deepEqual(svc(cluster, 'payments').spec?.selector, { app: 'payments' });
  t.is(stored(cluster).status?.phase, 'Failed');
  t.true(cluster.events.some((e) => e.type === 'Warning' && e.reason === REASONS.ServiceNotRestored && /payments/.test(e.message)));
});

test('abort after this migration\'s switch: the recorded selector comes back and the record goes, in one patch', async (t) => {
  const { cluster, reconciler } = setUp();
  cluster.addService('shop', 'orders-api', { selector: { app: 'orders', track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  await reconciler.reconcile(KEY);
  t.is(svc(cluster).spec?.selector?.track, 'green');
  // Abort comes before the switch is seen as done (the next reconcile would finish the migration).
  const m = stored(cluster);
  m.metadata ??= {};
  m.metadata.annotations = { [ABORT_ANNOTATION]: 'true' };
  cluster.migrations.set(KEY, m);
  await reconciler.reconcile(KEY);
  t.deepEqual(svc(cluster).spec?.selector, { app: 'orders', track: 'blue' });
  t.deepEqual(svc(cluster).metadata?.annotations, { [CUTOVER_BY_ANNOTATION]: 'orders' });
  t.is(stored(cluster).status?.phase, 'Failed');
});

test('the merge patch: removed selector labels are null, the version makes it conditional, annotations set or removed', (t) => {
  t.deepEqual(serviceMergePatch({ resourceVersion: '7', from: { a: '1', color: 'blue' }, selector: { a: '1', version: 'v2' }, annotations: { x: 'y', z: null } }), {
    metadata: { resourceVersion: '7', annotations: { x: 'y', z: null } },
    spec: { selector: { color: null, a: '1', version: 'v2' } },
  });
});

test('the observed Service keeps labels, this project\'s annotations only, and its version', (t) => {
  const seen = observedService({
    metadata: { resourceVersion: '9', labels: { team: 'a' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders', 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(10_000) } },
    spec: { selector: { track: 'blue' } },
  });
  t.deepEqual(seen, { selector: { track: 'blue' }, labels: { team: 'a' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' }, resourceVersion: '9' });
});

test('opt-in label selector: Kubernetes syntax, matched as Kubernetes matches', (t) => {
  const s = parseLabelSelector('dataops.dev/cutover=allowed, tier in (web, api), !legacy, env!=prod');
  if (s === undefined) throw new Error('parsed nothing');
  t.true(matchesLabels(s, { 'dataops.dev/cutover': 'allowed', tier: 'web' }));
  t.true(matchesLabels(s, { 'dataops.dev/cutover': 'allowed', tier: 'api', env: 'dev' }));
  t.false(matchesLabels(s, { 'dataops.dev/cutover': 'allowed', tier: 'db' }));
  t.false(matchesLabels(s, { 'dataops.dev/cutover': 'allowed', tier: 'web', legacy: '' }));
  t.false(matchesLabels(s, { 'dataops.dev/cutover': 'allowed', tier: 'web', env: 'prod' }));
  t.false(matchesLabels(s, { tier: 'web' }));
  const exists = parseLabelSelector('team');
  t.true(exists !== undefined && matchesLabels(exists, { team: '' }));
  const equal = parseLabelSelector('a==b');
  t.true(equal !== undefined && matchesLabels(equal, { a: 'b' }) && !matchesLabels(equal, { a: 'c' }));
  t.is(parseLabelSelector('   '), undefined, 'empty: no Service opts in by labels (never "everything")');
});

for (const [text, why] of [
  ['!legacy', /must require a label/], ['env!=prod', /must require a label/], ['tier notin (db)', /must require a label/],
  ['a=b,,c', /empty requirement/], ['a=b,', /empty requirement/], ['tier in (web', /unbalanced/], ['a)', /unbalanced/],
  ['bad key!=x', /not a label selector requirement/], ['a=' + 'v'.repeat(64), /not a label selector requirement/], ['a in (b c)', /not a label value/],
  ['UPPER.example/x=y', /not a label selector requirement/],
] as const) {
  test(`opt-in label selector ${JSON.stringify(text.length > 30 ? `${text.slice(0, 30)}…` : text)} is refused`, (t) => {
    t.throws(() => parseLabelSelector(text), { message: why });
  });
}

test('a Service patch the API server refuses (a policy, 422): recorded in status, one Warning, no patch again for a minute, then again; the Service unchanged', async (t) => {
  const cluster = new LaggingCluster();
  cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
  cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  const done = (step: 'start' | 'copy' | 'validate'): { step: typeof step; runId: string; outcome: 'Succeeded'; finishedAt: string } => ({ step, runId: 'g1', outcome: 'Succeeded', finishedAt: '2025-01-01T00:00:00Z' });
  cluster.add({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: UID, generation: 1, finalizers: ['dataops.dev/cleanup'] },
    spec: { source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } }, strategy: { type: 'BigBang' }, cutover: CUTOVER },
    status: { runId: 'g1', phase: 'CuttingOver', observedGeneration: 1, steps: [done('start'), done('copy'), done('validate'), { step: 'switch', runId: 'g1' }] },
  });
  cluster.addService('shop', 'orders-api', { selector: { app: 'orders', track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  cluster.refuseServicePatches = new ClusterError(422, 'admission webhook "policy.example.com" denied the request: selectors may not change');
  const clock = { now: new Date('2025-01-01T00:01:00Z') };
  const reconciler = new Reconciler({ cluster, engine: { image: 'engine:dev', command: ['dmctl'] }, logger: silent, metrics: createMetrics(), now: () => clock.now });
  const result = await reconciler.reconcile(KEY);
  const patches = (): number => cluster.requests.filter((r) => r.startsWith('patchService')).length;
  t.is(patches(), 1);
  t.deepEqual(result, { requeueAfterSeconds: 60 });
  const refused = stored(cluster);
  t.is(refused.status?.phase, 'CuttingOver', 'not terminal: a fixed policy lets it finish');
  t.like(refused.status?.steps?.find((s) => s.step === 'switch'), { outcome: 'Rejected', reason: REASONS.ServiceSwitchRejected });
  const ready = refused.status?.conditions?.find((c) => c.type === 'Ready');
  t.is(ready?.reason, REASONS.ServiceSwitchRejected);
  t.regex(ready?.message ?? '', /refused the patch of Service orders-api .*selectors may not change.*the Service is unchanged/);
  t.is(refused.status?.conditions?.find((c) => c.type === 'Stalled')?.status, 'True', 'kubectl wait --for=condition=Stalled ends');
  t.deepEqual(svc(cluster).spec?.selector, { app: 'orders', track: 'blue' });
  // Within the minute: nothing sent, nothing said again.
  clock.now = new Date('2025-01-01T00:01:30Z');
  await reconciler.reconcile(KEY);
  t.is(patches(), 1);
  t.deepEqual(cluster.events.map((e) => `${e.type}:${e.reason}`).filter((e) => e.endsWith('ServiceSwitchRejected')), ['Warning:ServiceSwitchRejected']);
  // The policy fixed; after the minute the patch goes again and lands.
  cluster.refuseServicePatches = undefined;
  clock.now = new Date('2025-01-01T00:02:05Z');
  await reconciler.reconcile(KEY);
  t.is(patches(), 2);
  t.deepEqual(svc(cluster).spec?.selector, { app: 'orders', track: 'green' });
});
