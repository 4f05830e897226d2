// The pod policy in the decision and the reconciler: a refused jobTemplate starts no Job (at the
// start or before a later step), says why once, and waits for a spec change without a retry
// loop; step results come only from pods the step's Job controls.
import { Writable } from 'node:stream';
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import { LABELS, REASONS } from '../../src/api/constants.ts';
import type { DataMigration, JobTemplateSpec } from '../../src/api/types.ts';
import { decide, type DecideInput, type Decision, type ObservedJob } from '../../src/controller/decide.ts';
import type { EngineConfig } from '../../src/controller/job-builder.ts';
import { createLogger } from '../../src/controller/logger.ts';
import { createMetrics } from '../../src/controller/metrics.ts';
import { controlledByJob, observeJob } from '../../src/controller/observe.ts';
import { checkPodPolicy } from '../../src/controller/pod-policy.ts';
import { runPreflight } from '../../src/controller/preflight.ts';
import { Reconciler } from '../../src/controller/reconciler.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const T0 = '2025-01-01T00:00:00.000Z';
const T1 = '2025-01-01T00:00:30.000Z';
const T2 = '2025-01-01T00:10:00.000Z';
const UID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const engine: EngineConfig = { image: 'engine:dev', command: ['dmctl'] };
const silent = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));

function migration(jobTemplate?: JobTemplateSpec, generation = 1): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: UID, generation },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } },
      target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' }, validation: {}, rollback: {},
      ...(jobTemplate !== undefined ? { jobTemplate } : {}),
    },
  };
}

/** decide() with the preflight the reconciler would gather: nothing missing, the policy's verdict. */
function decideFor(m: DataMigration, jobs: ObservedJob[] = [], now = T0): Decision {
  const podPolicy = checkPodPolicy(m, engine);
  const input: DecideInput = { migration: m, jobs, now, preflight: { missing: [], ...(podPolicy ? { podPolicy } : {}) } };
  return decide(input);
}

const jobActions = (d: Decision): string[] => d.actions.flatMap((a) => (a.kind === 'createJob' ? [`createJob:${a.step}`] : a.kind === 'deleteJob' ? [`deleteJob:${a.name}`] : []));
const warnings = (d: Decision): string[] => d.actions.flatMap((a) => (a.kind === 'event' && a.type === 'Warning' ? [a.reason] : []));
const readyOf = (d: Decision) => d.status.conditions?.find((c) => c.type === 'Ready');

test('a foreign image is refused before the run starts: no Job, one Warning, no retry loop; a fixed spec starts', (t) => {
  const foreign = migration({ image: 'evil.example/miner:1' });
  const first = decideFor(foreign);
  t.deepEqual(jobActions(first), []);
  t.is(first.status.phase, 'Pending');
  t.is(readyOf(first)?.reason, REASONS.ImageNotAllowed);
  t.regex(readyOf(first)?.message ?? '', /^the migration is refused by the operator's pod policy: spec\.jobTemplate\.image "evil\.example\/miner:1" is not allowed; allowed: the operator's engine image "engine:dev"/);
  t.deepEqual(warnings(first), [REASONS.ImageNotAllowed]);
  t.is(first.requeueAfterSeconds, undefined, 'time cannot change the verdict: nothing is requeued');
  t.is(first.status.runId, undefined, 'the run has not started');
  t.like(first.status.conditions?.find((c) => c.type === 'Stalled'), { status: 'True', reason: REASONS.ImageNotAllowed }, 'kstatus: stalled until the spec changes');

  const again = decideFor({ ...foreign, status: first.status }, [], T2);
  t.deepEqual(again.actions, [], 'said once');
  t.is(again.requeueAfterSeconds, undefined);

  const fixed = decideFor({ ...migration({}, 2), status: again.status }, [], T2);
  t.deepEqual(jobActions(fixed), ['createJob:copy']);
  t.is(fixed.status.phase, 'Copying');
  t.is(fixed.status.conditions?.find((c) => c.type === 'Stalled')?.status, 'False');
});

test('a ServiceAccount or a reserved key the policy refuses is refused the same way, with its own reason', (t) => {
  const account = decideFor(migration({ serviceAccountName: 'cluster-admin' }));
  t.deepEqual(jobActions(account), []);
  t.is(readyOf(account)?.reason, REASONS.ServiceAccountNotAllowed);
  t.regex(readyOf(account)?.message ?? '', /serviceAccountName "cluster-admin" is not allowed/);
  const apparmor = decideFor(migration({ annotations: { 'container.apparmor.security.beta.kubernetes.io/engine': 'unconfined' } }));
  t.deepEqual(jobActions(apparmor), []);
  t.is(readyOf(apparmor)?.reason, REASONS.ReservedKey);
  t.regex(readyOf(apparmor)?.message ?? '', /annotations key "container\.apparmor\.security\.beta\.kubernetes\.io\/engine"/);
  t.deepEqual(warnings(apparmor), [REASONS.ReservedKey]);
});

test('a spec changed mid-run to a foreign image: the next step\'s Job is not created, the finished step is kept', (t) => {
  const started = decideFor(migration());
  t.deepEqual(jobActions(started), ['createJob:copy']);
  const copied: ObservedJob = { name: 'orders-g1-copy', step: 'copy', runId: 'g1', state: 'Succeeded', result: { tables: [] } };
  const changed = { ...migration({ image: 'evil.example/miner:1' }, 2), status: started.status };
  const next = decideFor(changed, [copied], T1);
  t.deepEqual(jobActions(next), [], 'no validate Job');
  t.is(next.status.phase, 'Validating');
  t.is(readyOf(next)?.reason, REASONS.ImageNotAllowed);
  t.regex(readyOf(next)?.message ?? '', /^the validation step is refused by the operator's pod policy/);
  t.is(next.requeueAfterSeconds, undefined);
});

test('suspended: Ready says Suspended, not the refusal (nothing would start anyway)', (t) => {
  const d = decideFor(migration({ image: 'evil.example/miner:1' }));
  const suspended = decideFor({ ...migration({ image: 'evil.example/miner:1' }), spec: { ...migration().spec, jobTemplate: { image: 'evil.example/miner:1' }, suspend: true }, status: d.status });
  t.is(readyOf(suspended)?.reason, REASONS.Suspended);
  t.deepEqual(jobActions(suspended), []);
});

const jobOf = (state: 'Complete' | 'Failed'): k8s.V1Job => ({
  metadata: { name: 'orders-g1-validate', uid: 'job-uid', labels: { [LABELS.step]: 'validate', [LABELS.run]: 'g1' } },
  status: { conditions: [{ type: state, status: 'True' }] },
});
const terminatedPod = (name: string, exitCode: number, message: string, finishedAt: Date, owners?: k8s.V1OwnerReference[]): k8s.V1Pod => ({
  metadata: { name, labels: { 'batch.kubernetes.io/job-name': 'orders-g1-validate', [LABELS.step]: 'validate', [LABELS.run]: 'g1' }, ...(owners ? { ownerReferences: owners } : {}) },
  status: { containerStatuses: [{ name: 'engine', image: 'engine:dev', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, message, finishedAt } } }] },
});
const ownerRef = (changes: Partial<Record<'apiVersion' | 'kind' | 'uid', string>> & { controller?: boolean } = {}): k8s.V1OwnerReference => ({
  apiVersion: changes.apiVersion ?? 'batch/v1', kind: changes.kind ?? 'Job', name: 'orders-g1-validate', uid: changes.uid ?? 'job-uid', controller: changes.controller ?? true,
});
const byJob = ownerRef();
/** Planted pods, all newer than the real one: labels only, another uid, not the controller, another kind or API group. */
const planted = (exitCode: number, message: string): k8s.V1Pod[] => [
  terminatedPod('labels-only', exitCode, message, new Date('2030-01-01T00:00:00Z')),
  terminatedPod('other-uid', exitCode, message, new Date('2030-01-01T00:00:01Z'), [ownerRef({ uid: 'another' })]),
  terminatedPod('not-controller', exitCode, message, new Date('2030-01-01T00:00:02Z'), [ownerRef({ controller: false })]),
  terminatedPod('other-kind', exitCode, message, new Date('2030-01-01T00:00:03Z'), [ownerRef({ kind: 'ReplicaSet', apiVersion: 'apps/v1' })]),
  terminatedPod('other-group', exitCode, message, new Date('2030-01-01T00:00:04Z'), [ownerRef({ apiVersion: 'example.com/v1' })]),
];

test('a result is read only from pods the step\'s Job controls: planted pods with the step\'s labels are ignored', (t) => {
  const real = terminatedPod('real', 0, JSON.stringify({ passed: true, summary: 'real' }), new Date('2025-01-01T00:00:00Z'), [byJob]);
  const fake = JSON.stringify({ passed: true, summary: 'planted', checks: [] });
  t.true(controlledByJob(real, jobOf('Complete')));
  t.deepEqual(planted(0, fake).map((pod) => controlledByJob(pod, jobOf('Complete'))), [false, false, false, false, false]);
  t.deepEqual(observeJob(jobOf('Complete'), [real, ...planted(0, fake)])?.result, { passed: true, summary: 'real' });
  t.is(observeJob(jobOf('Complete'), planted(0, fake))?.result, undefined, 'only planted pods: no result (a failure, never a success)');
  t.false(controlledByJob(real, { metadata: { name: 'x' } }), 'a Job without a uid controls nothing');

  // A failed validation (exit 4, passed: false): a planted pod cannot turn it into another failure, or a pass.
  const failed = terminatedPod('real', 4, JSON.stringify({ passed: false, summary: 'real' }), new Date('2025-01-01T00:00:00Z'), [byJob]);
  const observed = observeJob(jobOf('Failed'), [failed, ...planted(4, fake), ...planted(1, 'planted: connection refused')]);
  t.deepEqual(observed?.result, { passed: false, summary: 'real' });
  t.is(observed?.exitCode, 4);
  t.false(observed?.failureMessage?.includes('planted'));
});

function reconcilerFor(m: DataMigration): { cluster: MemoryCluster; reconciler: Reconciler; clock: { now: Date } } {
  const cluster = new MemoryCluster();
  cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
  cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  cluster.add(m);
  const clock = { now: new Date(T0) };
  const reconciler = new Reconciler({
    cluster, engine, logger: silent, metrics: createMetrics(), now: () => clock.now,
    readProgress: () => Promise.resolve({ progress: {}, rows: 0, at: clock.now.getTime() }),
  });
  return { cluster, reconciler, clock };
}

test('the reconciler: a refused migration creates no Job, says so in status and one Warning Event, and goes quiet', async (t) => {
  const { cluster, reconciler, clock } = reconcilerFor(migration({ image: 'evil.example/miner:1', serviceAccountName: 'cluster-admin' }));
  const result = await reconciler.reconcile('shop/orders');
  t.false(cluster.requests.some((r) => r.startsWith('createJob')), cluster.requests.join(', '));
  t.deepEqual(result, {}, 'no requeue');
  const stored = cluster.migration('shop', 'orders');
  const ready = stored?.status?.conditions?.find((c) => c.type === 'Ready');
  t.is(ready?.reason, REASONS.ImageNotAllowed);
  t.regex(ready?.message ?? '', /image "evil\.example\/miner:1".*serviceAccountName "cluster-admin"/);
  t.deepEqual(cluster.events.filter((e) => e.type === 'Warning').map((e) => e.reason), [REASONS.ImageNotAllowed]);

  const writes = cluster.requests.filter((r) => r.startsWith('writeStatus')).length;
  clock.now = new Date(T2);
  await reconciler.reconcile('shop/orders');
  t.is(cluster.requests.filter((r) => r.startsWith('writeStatus')).length, writes, 'nothing new to write');
  t.is(cluster.events.length, 1, 'no second Event');
  t.is(cluster.jobList.length, 0);
});

test('the reconciler: a copy Job\'s result comes from its own pod, not from a planted one with the same labels', async (t) => {
  const { cluster, reconciler, clock } = reconcilerFor(migration());
  await reconciler.reconcile('shop/orders');
  t.is(cluster.jobList.length, 1);
  const result = (rows: number): string => JSON.stringify({ tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: rows }], rowsThisRun: rows });
  const pod = (name: string, rows: number, finishedAt: Date, ownerReferences?: k8s.V1OwnerReference[]): k8s.V1Pod => ({
    metadata: { name, ...(ownerReferences ? { ownerReferences } : {}) },
    status: { containerStatuses: [{ name: 'engine', image: 'engine:dev', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message: result(rows), finishedAt } } }] },
  });
  // The real pod gets the Job's controller reference (memory-cluster.ts, as the Job controller does); the planted ones keep theirs.
  const copyJob = cluster.jobList[0];
  cluster.finishJob('orders-g1-copy', 'Complete', [
    pod('orders-g1-copy-abcde', 7, new Date('2025-01-01T00:00:20Z')),
    pod('planted', 424_242, new Date('2030-01-01T00:00:00Z'), []),
    pod('forged-uid', 424_242, new Date('2030-01-01T00:00:01Z'), [{ apiVersion: 'batch/v1', kind: 'Job', name: 'orders-g1-copy', uid: 'not-the-job', controller: true }]),
  ]);
  t.truthy(copyJob?.metadata?.uid);
  clock.now = new Date(T1);
  await reconciler.reconcile('shop/orders');
  const stored = cluster.migration('shop', 'orders');
  t.deepEqual(stored?.status?.tables?.map((table) => [table.name, table.rowsCopied]), [['orders', 7]]);
  t.is(stored?.status?.phase, 'Validating');
});

test('the preflight carries the policy\'s verdict (and reads the Secrets as before)', async (t) => {
  const cluster = new MemoryCluster();
  const refused = await runPreflight(cluster, migration({ labels: { 'batch.kubernetes.io/job-name': 'other' } }), engine);
  t.is(refused.podPolicy?.reason, REASONS.ReservedKey);
  t.deepEqual(refused.missing.map((m) => m.name), ['legacy-db', 'orders-pg']);
  const allowed = await runPreflight(cluster, migration({ image: 'registry.internal/dataops/dmo:2' }), { ...engine, allowedImages: ['registry.internal/dataops/'] });
  t.is(allowed.podPolicy, undefined);
});
