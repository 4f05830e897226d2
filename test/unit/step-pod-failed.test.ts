// A step Job's pod that fails while the Job retries is said at once (issue 14): observed from the
// pods the Job controls (observe.ts), decided purely (phases/step-pod-failed.ts): Ready and the
// step's condition StepPodFailed with the step, the attempt, the side and the engine's last words,
// Reconciling still True, one Warning Event per failed pod, nothing deleted; normal again when the
// Job succeeds. The reconciler reads a running Job's pods once per failed count.
import { Writable } from 'node:stream';
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import { API_VERSION, KIND, REASONS } from '../../src/api/constants.ts';
import type { DataMigration, DataMigrationSpec } from '../../src/api/types.ts';
import { STATUS_LIMITS } from '../../src/api/datamigration-schema.ts';
import { findCondition } from '../../src/controller/conditions.ts';
import { decide, preflightNeeded } from '../../src/controller/decide.ts';
import type { Decision, ObservedJob, ObservedPodFailure } from '../../src/controller/decide.ts';
import { createLogger, registerSecret } from '../../src/controller/logger.ts';
import { createMetrics } from '../../src/controller/metrics.ts';
import { observeJob, observePodFailure, sideNamed } from '../../src/controller/observe.ts';
import { MAX_LAST_WORDS, podFailedMessage } from '../../src/controller/phases/step-pod-failed.ts';
import { Reconciler } from '../../src/controller/reconciler.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const UID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const T0 = '2025-01-01T00:00:00Z';
const PG_REFUSED = 'cannot connect to postgres (the target): password authentication failed for user "app"';
const MY_REFUSED = 'cannot connect to mysql (the source): Access denied for user \'app\'@\'10.0.0.7\' (using password: YES)';

function migration(spec: Partial<DataMigrationSpec> = {}): DataMigration {
  return {
    apiVersion: API_VERSION, kind: KIND,
    metadata: { name: 'orders', namespace: 'shop', uid: UID, generation: 1 },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } },
      target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' }, ...spec,
    },
  };
}

/** Decides as the reconciler does (the preflight only when something may start); returns the migration as stored after. */
function step(m: DataMigration, jobs: ObservedJob[], now = T0): { d: Decision; m: DataMigration } {
  const base = { migration: m, jobs, now };
  const d = decide(preflightNeeded(base) ? { ...base, preflight: { missing: [] } } : base);
  return { d, m: { ...m, status: d.status } };
}

const failure = (failed: number, extra: Partial<ObservedPodFailure> = {}): ObservedPodFailure => ({
  failed, attempts: 4, final: false, pod: `orders-g1-copy-p${String(failed)}`, exitCode: 1, side: 'target', message: PG_REFUSED, ...extra,
});
const copyJob = (state: ObservedJob['state'], podFailure?: ObservedPodFailure, extra: Partial<ObservedJob> = {}): ObservedJob => ({
  name: 'orders-g1-copy', step: 'copy', runId: 'g1', state, ...(podFailure ? { podFailure } : {}), ...extra,
});
const readyOf = (m: DataMigration) => findCondition(m.status?.conditions, 'Ready');
const warnings = (d: Decision): string[] => d.actions.flatMap((a) => (a.kind === 'event' && a.type === 'Warning' ? [a.reason] : []));

/** A migration whose copy Job was asked for and is running. */
function copying(): DataMigration {
  const started = step(migration(), []);
  const running = step(started.m, [copyJob('Running')]);
  return running.m;
}

// ---------------------------------------------------------------------------------------------
// The decision

test('a running step Job\'s failed pod: Ready and DataCopied say StepPodFailed at once, naming the step, the attempt, the side and the error', (t) => {
  const { d, m } = step(copying(), [copyJob('Running', failure(1))]);
  const ready = readyOf(m);
  t.is(ready?.status, 'False');
  t.is(ready?.reason, REASONS.StepPodFailed);
  t.is(ready?.message, `The copy Job orders-g1-copy: attempt 1 of 4 failed on the target (pod orders-g1-copy-p1, exit 1): ${PG_REFUSED}; the Job retries after its backoff (3 attempts left)`);
  t.is(findCondition(m.status?.conditions, 'DataCopied')?.reason, REASONS.StepPodFailed);
  t.is(m.status?.message, ready?.message);
  t.is(m.status?.phase, 'Copying', 'the phase stays: the retries go on');
  t.regex(m.status?.jobs?.find((j) => j.step === 'copy')?.message ?? '', /attempt 1 of 4 failed on the target/);
  // kstatus: still reconciling (the Job retries), not stalled.
  t.like(findCondition(m.status?.conditions, 'Reconciling'), { status: 'True', reason: REASONS.StepPodFailed });
  t.like(findCondition(m.status?.conditions, 'Stalled'), { status: 'False' });
  t.deepEqual(warnings(d), [REASONS.StepPodFailed]);
  t.false(d.actions.some((a) => a.kind === 'deleteJob' || a.kind === 'createJob'), 'nothing deleted or created');
  t.is(d.requeueAfterSeconds, 30);
});

test('one Warning Event per failed pod: the same count says nothing again, the next count is said once', (t) => {
  const first = step(copying(), [copyJob('Running', failure(1))]);
  const again = step(first.m, [copyJob('Running', failure(1))]);
  t.deepEqual(again.d.actions, []);
  t.deepEqual(again.d.status, first.m.status, 'the same observation writes nothing new');
  const second = step(again.m, [copyJob('Running', failure(2))]);
  t.deepEqual(warnings(second.d), [REASONS.StepPodFailed]);
  t.regex(readyOf(second.m)?.message ?? '', /attempt 2 of 4 failed on the target .*2 attempts left/);
  t.deepEqual(step(second.m, [copyJob('Running', failure(2))]).d.actions, []);
  const events = [first, second].flatMap((s) => s.d.actions.filter((a) => a.kind === 'event'));
  t.is(events.length, 2);
  t.true(events.every((e) => e.message.includes(PG_REFUSED)));
});

test('when the Job later succeeds, the step moves on and Ready is back to normal', (t) => {
  const failed = step(copying(), [copyJob('Running', failure(2))]);
  const result = { tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 10 }], rowsThisRun: 10 };
  const { m } = step(failed.m, [copyJob('Succeeded', undefined, { result })]);
  t.not(m.status?.phase, 'Copying');
  t.not(readyOf(m)?.reason, REASONS.StepPodFailed);
  t.not(findCondition(m.status?.conditions, 'DataCopied')?.reason, REASONS.StepPodFailed);
  t.like(findCondition(m.status?.conditions, 'Stalled'), { status: 'False' });
});

test('when the Job fails in the end, JobFailed carries the side and the engine\'s words', (t) => {
  const failing = step(copying(), [copyJob('Running', failure(4, { final: true }))]);
  t.regex(readyOf(failing.m)?.message ?? '', /attempt 4 of 4 failed on the target .*no attempt is left: the step fails/);
  const { d, m } = step(failing.m, [copyJob('Failed', undefined, { failureMessage: `BackoffLimitExceeded: Job has reached the specified backoff limit: ${PG_REFUSED}`, exitCode: 1 })]);
  t.is(m.status?.phase, 'Failed');
  t.is(readyOf(m)?.reason, REASONS.JobFailed);
  t.regex(readyOf(m)?.message ?? '', /\(the target\): password authentication failed/);
  t.deepEqual(warnings(d), [REASONS.JobFailed]);
});

test('the message is bounded: the engine\'s last words to MAX_LAST_WORDS, status.message to the CRD\'s limit', (t) => {
  const long = `${PG_REFUSED} ${'x'.repeat(10_000)}`;
  const { m } = step(copying(), [copyJob('Running', failure(1, { message: long }))]);
  const message = readyOf(m)?.message ?? '';
  t.true(message.length < MAX_LAST_WORDS + 300, String(message.length));
  t.true((m.status?.message ?? '').length <= STATUS_LIMITS.message);
  t.true(message.includes(PG_REFUSED));
});

test('a suspended migration with a failed pod says the failure (the running Job still retries)', (t) => {
  const m = copying();
  m.spec = { ...m.spec, suspend: true };
  t.is(readyOf(step(m, [copyJob('Running', failure(1))]).m)?.reason, REASONS.StepPodFailed);
});

test('the message without a side, for an Indexed Job\'s index, and with no attempt left', (t) => {
  t.is(podFailedMessage('schema', { name: 'm-g1-schema' }, { failed: 1, attempts: 1, final: true, pod: 'p', message: 'disk full' }),
    'The schema Job m-g1-schema: attempt 1 of 1 failed (pod p): disk full; no attempt is left: the step fails');
  t.is(podFailedMessage('copy', { name: 'm-g1-copy' }, { failed: 2, attempts: 4, final: false, pod: 'p', index: '2', exitCode: 1, side: 'source', message: MY_REFUSED }),
    `The copy Job m-g1-copy: attempt 2 of 4 of index 2 failed on the source (pod p, exit 1): ${MY_REFUSED}; the Job retries after its backoff (2 attempts left)`);
});

// ---------------------------------------------------------------------------------------------
// The observation

const JOB_UID = 'job-1';
const ownerOf = (uid: string): k8s.V1OwnerReference => ({ apiVersion: 'batch/v1', kind: 'Job', name: 'orders-g1-copy', uid, controller: true });
const owner = ownerOf(JOB_UID);
function runningJob(status: { failed?: number; conditions?: k8s.V1JobCondition[] } = {}, indexed?: { backoffLimitPerIndex: number }): k8s.V1Job {
  return {
    metadata: { name: 'orders-g1-copy', uid: JOB_UID, labels: { 'dataops.dev/step': 'copy', 'dataops.dev/run': 'g1' } },
    spec: indexed === undefined ? { backoffLimit: 3, template: {} } : { completionMode: 'Indexed', backoffLimitPerIndex: indexed.backoffLimitPerIndex, template: {} },
    status: { active: 1, ...status },
  };
}
function failedPod(name: string, message: string, finishedAt: string, options: { owners?: k8s.V1OwnerReference[]; index?: string; exitCode?: number } = {}): k8s.V1Pod {
  return {
    metadata: { name, ownerReferences: options.owners ?? [owner], ...(options.index !== undefined ? { annotations: { 'batch.kubernetes.io/job-completion-index': options.index } } : {}) },
    status: {
      phase: 'Failed',
      containerStatuses: [{ name: 'engine', image: 'e', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: options.exitCode ?? 1, reason: 'Error', message, finishedAt: new Date(finishedAt) } } }],
    },
  };
}
const runningPod: k8s.V1Pod = { metadata: { name: 'now', ownerReferences: [owner] }, status: { phase: 'Running' } };

test('observeJob: a running Job\'s newest failed pod it controls, with the attempts, the side and the last words', (t) => {
  const pods = [failedPod('a', 'older', '2025-01-01T00:00:01Z'), failedPod('b', PG_REFUSED, '2025-01-01T00:00:12Z'), runningPod];
  t.deepEqual(observeJob(runningJob({ failed: 2 }), pods)?.podFailure, {
    failed: 2, attempts: 4, final: false, pod: 'b', exitCode: 1, side: 'target', message: PG_REFUSED,
  });
  t.is(observeJob(runningJob(), [runningPod])?.podFailure, undefined, 'no failed pod: nothing to say');
});

test('observeJob: a failed pod the Job does not control is never the step\'s failure', (t) => {
  const planted = failedPod('planted', 'cannot connect to postgres (the source): fake', '2025-01-01T00:00:30Z', { owners: [ownerOf('other')] });
  t.is(observeJob(runningJob({ failed: 1 }), [planted])?.podFailure, undefined);
  t.is(observeJob(runningJob({ failed: 1 }), [planted, failedPod('real', PG_REFUSED, '2025-01-01T00:00:01Z')])?.podFailure?.pod, 'real');
});

test('observePodFailure: FailureTarget or attempts used up are final; an Indexed Job counts per index', (t) => {
  const failing = runningJob({ failed: 1, conditions: [{ type: 'FailureTarget', status: 'True' }] });
  t.true(observePodFailure(failing, [failedPod('a', 'x', T0)])?.final);
  t.true(observePodFailure(runningJob({ failed: 4 }), [failedPod('a', 'x', T0)])?.final);
  const indexed = runningJob({ failed: 3 }, { backoffLimitPerIndex: 2 });
  const pods = [failedPod('i0', 'x', '2025-01-01T00:00:01Z', { index: '0' }), failedPod('i1a', 'y', '2025-01-01T00:00:02Z', { index: '1' }), failedPod('i1b', MY_REFUSED, '2025-01-01T00:00:03Z', { index: '1' })];
  t.like(observePodFailure(indexed, pods), { failed: 2, attempts: 3, index: '1', pod: 'i1b', side: 'source', final: false });
});

test('observePodFailure: no termination message gives the container\'s reason; secrets and URL passwords are scrubbed', (t) => {
  const silent: k8s.V1Pod = { metadata: { name: 'oom', ownerReferences: [owner] }, status: { phase: 'Failed', containerStatuses: [{ name: 'engine', image: 'e', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] } };
  t.like(observePodFailure(runningJob({ failed: 1 }), [silent]), { message: 'OOMKilled: no termination message', exitCode: 137 });
  const evicted: k8s.V1Pod = { metadata: { name: 'ev', ownerReferences: [owner] }, status: { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' } };
  t.like(observePodFailure(runningJob({ failed: 1 }), [evicted]), { message: 'Evicted: The node was low on resource: memory.: no termination message' });
  registerSecret('s3cr3t-target-pass');
  const leaky = failedPod('l', 'target: error near s3cr3t-target-pass in postgres://app:hunter22@db:5432/orders', T0);
  const observed = observePodFailure(runningJob({ failed: 1 }), [leaky]);
  t.false(observed?.message.includes('s3cr3t-target-pass'));
  t.false(observed?.message.includes('hunter22'));
  t.is(observed?.side, 'target');
});

test('sideNamed: connection errors of both engines and timeouts name the side; other words name none', (t) => {
  t.is(sideNamed(PG_REFUSED), 'target');
  t.is(sideNamed(MY_REFUSED), 'source');
  t.is(sideNamed('source: statement timed out after 120 s (statement_timeout): canceling statement'), 'source');
  t.is(sideNamed('disk full; the source is fine'), undefined);
});

// ---------------------------------------------------------------------------------------------
// The reconciler: a running Job's pods are read when its failed count changes, once per count

const silentLog = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));

test('the reconciler says a failed pod on the reconcile the Job\'s update wakes, reads pods once per failed count, and deletes nothing', async (t) => {
  const cluster = new MemoryCluster();
  cluster.secrets.set('shop/legacy-db', { url: 'mysql://app:source-pass@legacy/db' });
  cluster.secrets.set('shop/orders-pg', { url: 'postgres://app:target-pass@pg/db' });
  cluster.add(migration());
  const reconciler = new Reconciler({
    cluster, engine: { image: 'engine:dev', command: ['dmctl'] }, logger: silentLog, metrics: createMetrics(), now: () => new Date(T0),
    readProgress: () => Promise.resolve({ progress: {}, rows: 0, at: Date.parse(T0) }),
  });
  await reconciler.reconcile('shop/orders');
  const job = cluster.jobList.find((j) => j.metadata?.name === 'orders-g1-copy');
  if (job === undefined) return t.fail('no copy Job');
  await reconciler.reconcile('shop/orders');
  t.false(cluster.requests.some((r) => r.startsWith('listPods')), 'a running Job without failures: no pod read');
  const jobOwner = ownerOf(job.metadata?.uid ?? '');
  job.status = { active: 0, failed: 1 };
  cluster.pods.set('orders-g1-copy', [failedPod('p1', PG_REFUSED, '2025-01-01T00:00:05Z', { owners: [jobOwner] })]);
  await reconciler.reconcile('shop/orders');
  const stored = cluster.migration('shop', 'orders');
  t.is(stored === undefined ? undefined : readyOf(stored)?.reason, REASONS.StepPodFailed);
  t.regex(stored?.status?.message ?? '', /attempt 1 of 4 failed on the target/);
  t.deepEqual(cluster.events.filter((e) => e.reason === REASONS.StepPodFailed).map((e) => e.type), ['Warning']);
  const reads = (): number => cluster.requests.filter((r) => r === 'listPods orders-g1-copy').length;
  t.is(reads(), 1);
  await reconciler.reconcile('shop/orders');
  t.is(reads(), 1, 'the same failed count: the pods are not read again');
  t.is(cluster.events.filter((e) => e.reason === REASONS.StepPodFailed).length, 1);
  job.status = { active: 0, failed: 2 };
  cluster.pods.set('orders-g1-copy', [...cluster.pods.get('orders-g1-copy') ?? [], failedPod('p2', PG_REFUSED, '2025-01-01T00:00:25Z', { owners: [jobOwner] })]);
  await reconciler.reconcile('shop/orders');
  t.is(reads(), 2);
  t.is(cluster.events.filter((e) => e.reason === REASONS.StepPodFailed).length, 2);
  t.true(cluster.jobList.includes(job), 'the Job is not deleted');
  t.false(JSON.stringify(cluster.events).includes('target-pass'));
  t.false(JSON.stringify(cluster.migration('shop', 'orders')?.status).includes('target-pass'));
});
