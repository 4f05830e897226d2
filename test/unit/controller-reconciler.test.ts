// The reconciler's own rules, against an in-memory Cluster (test/support/memory-cluster.ts): the
// order of status writes and actions, a refused Job recorded in status, conflicts, results read
// once, copy progress gathered before the decision. The real client keeps the e2e tests.
import { Writable } from 'node:stream';
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import { ABORT_ANNOTATION, LABELS, REASONS } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { ClusterError } from '../../src/controller/cluster.ts';
import { entryOf } from '../../src/controller/ledger.ts';
import { createLogger, type Logger } from '../../src/controller/logger.ts';
import { createMetrics } from '../../src/controller/metrics.ts';
import { observeJob } from '../../src/controller/observe.ts';
import { applyOutcome, CONFLICT_RETRY_MS, outcomeOf, type OutcomeQueue } from '../../src/controller/outcome.ts';
import { Reconciler, type ProgressReader } from '../../src/controller/reconciler.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const KEY = 'shop/orders';
const silent = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));

function setUp(extra: { annotations?: Record<string, string>; logger?: Logger } = {}): { cluster: MemoryCluster; reconciler: Reconciler; clock: { now: Date }; reads: number[] } {
  const cluster = new MemoryCluster();
  cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
  cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  const migration: DataMigration = {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', generation: 1, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } }, strategy: { type: 'BigBang' } },
  };
  cluster.add(migration);
  const clock = { now: new Date('2025-01-01T00:00:00Z') };
  const reads: number[] = [];
  const readProgress: ProgressReader = (_m, _key, urls, previous) => {
    reads.push(clock.now.getTime());
    if (!urls.source.startsWith('mysql://')) throw new Error('wrong URL');
    return Promise.resolve({ progress: { rowsCopied: 5 + (previous?.rows ?? 0), summary: 'some' }, rows: 5, at: clock.now.getTime() });
  };
  const reconciler = new Reconciler({
    cluster, engine: { image: 'engine:dev', command: ['dmctl'] }, logger: extra.logger ?? silent, metrics: createMetrics(), now: () => clock.now, readProgress,
  });
  return { cluster, reconciler, clock, reads };
}

const pod = (message: string, exitCode = 0): k8s.V1Pod => ({
  metadata: { name: 'p' },
  status: { containerStatuses: [{ name: 'engine', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, message, finishedAt: new Date() } } }] },
});
const stored = (cluster: MemoryCluster): DataMigration => cluster.migration('shop', 'orders') ?? (() => { throw new Error('gone'); })();

test('a new migration: finalizer, the status (the ledger\'s request) written before the Job is created', async (t) => {
  const { cluster, reconciler } = setUp();
  const result = await reconciler.reconcile(KEY);
  t.deepEqual(cluster.requests.filter((r) => !r.startsWith('readSecret')), ['patchMigration', 'writeStatus Copying', 'createJob orders-g1-copy']);
  const m = stored(cluster);
  t.deepEqual(m.metadata?.finalizers, ['dataops.dev/cleanup']);
  t.is(m.status?.phase, 'Copying');
  t.like(entryOf(m.status ?? {}, 'copy'), { runId: 'g1', requestedAt: '2025-01-01T00:00:00.000Z', job: 'orders-g1-copy' });
  t.deepEqual(result, { requeueAfterSeconds: 10 });
  t.deepEqual(cluster.events.map((e) => e.reason), ['Copying']);
});

test('a Job the API server refuses is recorded in status (ledger Rejected, Ready, one Warning), not retried in a loop', async (t) => {
  const { cluster, reconciler, clock } = setUp();
  cluster.refuseNextJob = new ClusterError(422, 'HTTP 422 Invalid: spec.template.spec.containers[0].resources.requests: Invalid value');
  const result = await reconciler.reconcile(KEY);
  t.deepEqual(result, { requeueAfterSeconds: 60 });
  const m = stored(cluster);
  t.like(entryOf(m.status ?? {}, 'copy'), { outcome: 'Rejected', reason: REASONS.JobRejected });
  t.is(m.status?.conditions?.find((c) => c.type === 'Ready')?.reason, REASONS.JobRejected);
  t.regex(m.status?.message ?? '', /Invalid value.*spec\.jobTemplate/);
  t.is(cluster.jobList.length, 0);
  t.deepEqual(cluster.events.filter((e) => e.type === 'Warning').map((e) => e.reason), ['JobRejected']);
  // Asked for again later: created this time.
  clock.now = new Date('2025-01-01T00:01:00Z');
  await reconciler.reconcile(KEY);
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.name), ['orders-g1-copy']);
  t.like(entryOf(stored(cluster).status ?? {}, 'copy'), { requestedAt: '2025-01-01T00:01:00.000Z' });
});

test('a refused Job is not asked for again at once: a reconcile 1 s later creates nothing and writes nothing', async (t) => {
  const { cluster, reconciler, clock } = setUp();
  cluster.refuseNextJob = new ClusterError(422, 'HTTP 422 Invalid: spec.template.spec.containers[0].resources.requests: Invalid value');
  await reconciler.reconcile(KEY);
  const before = cluster.requests.length;
  const version = stored(cluster).metadata?.resourceVersion;
  clock.now = new Date('2025-01-01T00:00:01Z');
  const result = await reconciler.reconcile(KEY);
  const after = cluster.requests.slice(before);
  t.false(after.some((r) => r.startsWith('createJob')), after.join(', '));
  t.false(after.some((r) => r.startsWith('writeStatus')), after.join(', '));
  t.is(stored(cluster).metadata?.resourceVersion, version);
  t.deepEqual(result, { requeueAfterSeconds: 59 });
  t.is(stored(cluster).status?.conditions?.find((c) => c.type === 'Ready')?.reason, REASONS.JobRejected);
  t.deepEqual(cluster.events.filter((e) => e.type === 'Warning').map((e) => e.reason), ['JobRejected']);
});

test('a refused Job is asked for again at once when the spec changed', async (t) => {
  const { cluster, reconciler, clock } = setUp();
  cluster.refuseNextJob = new ClusterError(422, 'HTTP 422 Invalid: resources.requests: Invalid value');
  await reconciler.reconcile(KEY);
  const m = structuredClone(stored(cluster));
  m.metadata ??= {};
  m.metadata.generation = 2;
  cluster.add(m);
  clock.now = new Date('2025-01-01T00:00:01Z');
  await reconciler.reconcile(KEY);
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.name), ['orders-g1-copy']);
});

test('a conflicting status write stops the reconcile before the Job is sent; the work queue retries it at once', async (t) => {
  const { cluster, reconciler } = setUp();
  cluster.conflictOnNextStatusWrite = true;
  const error = await t.throwsAsync(reconciler.reconcile(KEY));
  t.is((error as ClusterError).code, 409);
  t.false(cluster.requests.some((r) => r.startsWith('createJob')), 'nothing irreversible was sent');
  t.deepEqual(outcomeOf({ error }), { kind: 'conflict' });
  // The retry goes through.
  await reconciler.reconcile(KEY);
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.name), ['orders-g1-copy']);
});

test('an abort deletes the running Job first, then records Failed', async (t) => {
  const { cluster, reconciler } = setUp();
  await reconciler.reconcile(KEY);
  const m = stored(cluster);
  m.metadata ??= {};
  m.metadata.annotations = { [ABORT_ANNOTATION]: 'true' };
  cluster.migrations.set(KEY, m);
  cluster.requests.length = 0;
  await reconciler.reconcile(KEY);
  t.deepEqual(cluster.requests, ['deleteJob orders-g1-copy', 'writeStatus Failed']);
  t.like(entryOf(stored(cluster).status ?? {}, 'copy'), { outcome: 'Aborted' });
});

test('a finished Job\'s result is read once from its pods; the exit code gives the reason', async (t) => {
  const { cluster, reconciler, clock } = setUp();
  await reconciler.reconcile(KEY);
  cluster.finishJob('orders-g1-copy', 'Failed', [pod('the plan refused: no key on orders', 3)]);
  clock.now = new Date('2025-01-01T00:00:30Z');
  await reconciler.reconcile(KEY);
  await reconciler.reconcile(KEY);
  t.is(cluster.requests.filter((r) => r === 'listPods orders-g1-copy').length, 1);
  const m = stored(cluster);
  t.is(m.status?.phase, 'Failed');
  t.is(m.status?.conditions?.find((c) => c.type === 'Ready')?.reason, REASONS.PlanRefused);
  t.like(entryOf(m.status ?? {}, 'copy'), { outcome: 'Failed', reason: REASONS.PlanRefused, exitCode: 3 });
});

test('entering Failed is logged at error, each reconcile\'s lines under their own reconcileID', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done(); } }));
  const { cluster, reconciler, clock } = setUp({ logger });
  await reconciler.reconcile(KEY);
  cluster.finishJob('orders-g1-copy', 'Failed', [pod('cannot connect to postgres (the target): password authentication failed', 1)]);
  clock.now = new Date('2025-01-01T00:00:30Z');
  await reconciler.reconcile(KEY);
  const changes = lines.filter((line) => line.msg === 'phase changed');
  t.deepEqual(changes.map((line) => [line.level, line.to]), [['info', 'Copying'], ['error', 'Failed']]);
  t.true(changes.every((line) => typeof line.reconcileID === 'string' && line.namespace === 'shop' && line.name === 'orders'));
  t.not(changes[0]?.reconcileID, changes[1]?.reconcileID, 'one id per reconcile');
});

/** Lets the background progress reads settle (they are promise callbacks, not timers). */
const settle = (): Promise<void> => new Promise((resolve) => { setImmediate(resolve); });

test('a running copy\'s progress is read in the background (the reconcile never waits), at most every 10 s, and asks to be woken for the next', async (t) => {
  const { cluster, reconciler, clock, reads } = setUp();
  await reconciler.reconcile(KEY);
  const job = cluster.jobList[0];
  if (job) job.status = { active: 1 };
  clock.now = new Date('2025-01-01T00:00:05Z');
  t.deepEqual(await reconciler.reconcile(KEY), { requeueAfterSeconds: 10 });
  // Started by the reconcile, not awaited by it (it reads the Secrets first, then the databases).
  await settle();
  t.is(reads.length, 1, 'a read started');
  clock.now = new Date('2025-01-01T00:00:08Z');
  t.deepEqual(await reconciler.reconcile(KEY), { requeueAfterSeconds: 10 });
  t.is(stored(cluster).status?.progress?.rowsCopied, 5, 'the sample that arrived meanwhile is recorded');
  t.is(reads.length, 1, 'not read again within 10 s');
  clock.now = new Date('2025-01-01T00:00:20Z');
  await reconciler.reconcile(KEY);
  await settle();
  t.is(reads.length, 2);
  await reconciler.reconcile(KEY);
  t.is(stored(cluster).status?.progress?.rowsCopied, 10, 'the rate\'s previous sample is passed on');
});

test('progress reads that never answer hold no worker: other migrations reconcile, and the stuck ones are given up on after the deadline', async (t) => {
  const cluster = new MemoryCluster();
  cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
  cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  const names = ['stuck-a', 'stuck-b', 'healthy'];
  for (const name of names) {
    cluster.add({
      apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name, namespace: 'shop', uid: `0f8fad5b-d9cb-469f-a165-${String(names.indexOf(name)).padStart(12, '0')}`, generation: 1 },
      spec: { source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } }, strategy: { type: 'BigBang' } },
    });
  }
  const clock = { now: new Date('2025-01-01T00:00:00Z') };
  const started: string[] = [];
  const warnings: string[] = [];
  // Two hosts that accept and never answer: their reads never settle.
  const readProgress: ProgressReader = (migration) => {
    const name = migration.metadata?.name ?? '';
    started.push(name);
    return name.startsWith('stuck') ? new Promise(() => undefined) : Promise.resolve({ progress: { rowsCopied: 42 }, rows: 42, at: clock.now.getTime() });
  };
  const logger = createLogger('warn', new Writable({ write: (chunk: Buffer, _encoding, done) => { warnings.push(chunk.toString()); done(); } }));
  const reconciler = new Reconciler({
    cluster, engine: { image: 'engine:dev', command: ['dmctl'] }, logger, metrics: createMetrics(), now: () => clock.now, readProgress, progressDeadlineMs: 20,
  });
  for (const name of names) await reconciler.reconcile(`shop/${name}`);
  for (const job of cluster.jobList) job.status = { active: 1 };
  clock.now = new Date('2025-01-01T00:00:05Z');
  const timeout = new Promise<'stuck'>((resolve) => { setTimeout(() => { resolve('stuck'); }, 2000).unref(); });
  // Two workers' worth of stuck migrations, then the healthy one: each reconcile returns at once.
  for (const name of names) {
    t.deepEqual(await Promise.race([reconciler.reconcile(`shop/${name}`), timeout]), { requeueAfterSeconds: 10 }, `${name} reconciled`);
  }
  await settle();
  await reconciler.reconcile('shop/healthy');
  t.is(cluster.migration('shop', 'healthy')?.status?.progress?.rowsCopied, 42);
  t.is(cluster.migration('shop', 'stuck-a')?.status?.progress, undefined);
  await new Promise((resolve) => { setTimeout(resolve, 50); });
  t.is(warnings.filter((w) => w.includes('could not read copy progress') && w.includes('given up')).length, 2, 'each stuck read is reported at its deadline');
  // A read still hanging is not started again (one per migration), however often it is reconciled.
  clock.now = new Date('2025-01-01T00:01:00Z');
  for (const name of names) await reconciler.reconcile(`shop/${name}`);
  await settle();
  t.deepEqual(started.filter((n) => n.startsWith('stuck')).sort(), ['stuck-a', 'stuck-b']);
  t.is(started.filter((n) => n === 'healthy').length, 2);
});

test('a succeeded copy moves on to validation with its result recorded', async (t) => {
  const { cluster, reconciler } = setUp();
  await reconciler.reconcile(KEY);
  cluster.finishJob('orders-g1-copy', 'Complete', [pod(JSON.stringify({ tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 7 }], rowsThisRun: 7 }))]);
  await reconciler.reconcile(KEY);
  const m = stored(cluster);
  t.is(m.status?.phase, 'Validating');
  t.like(m.status?.tables?.[0], { name: 'orders', rowsCopied: 7 });
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.name), ['orders-g1-copy', 'orders-g1-validate']);
});

test('the outcome handler: done forgets, requeue waits, conflict retries quickly, an error backs off', (t) => {
  const calls: string[] = [];
  const queue: OutcomeQueue = {
    forget: (key) => calls.push(`forget ${key}`),
    addAfter: (key, ms) => calls.push(`after ${key} ${String(ms)}`),
    addRateLimited: (key) => calls.push(`backoff ${key}`),
  };
  applyOutcome(queue, 'a', outcomeOf({ result: {} }));
  applyOutcome(queue, 'b', outcomeOf({ result: { requeueAfterSeconds: 30 } }));
  applyOutcome(queue, 'c', outcomeOf({ error: new ClusterError(409, 'conflict') }));
  applyOutcome(queue, 'd', outcomeOf({ error: new Error('connection refused') }));
  applyOutcome(queue, 'e', outcomeOf({ error: new ClusterError(500, 'internal') }));
  t.deepEqual(calls, ['forget a', 'forget b', 'after b 30000', `after c ${String(CONFLICT_RETRY_MS)}`, 'backoff d', 'backoff e']);
});

test('a re-created DataMigration refused by the engine (exit 3, another uid\'s records): the reason reaches status.message and a Warning Event', async (t) => {
  const { cluster, reconciler, clock } = setUp();
  await reconciler.reconcile(KEY);
  // What `dmctl step copy` leaves when the target holds the records of the earlier DataMigration of this name.
  const refusal = 'the plan was refused:\n  the target holds records of another migration, migration uid 5d0c-earlier (shop/orders): checkpoints orders, items (last written 2025-01-01T00:00:00Z). '
    + 'This migration (uid 0f8fad5b-d9cb-469f-a165-70867728950e, shop/orders) will not touch them. If that migration is finished or gone and what it made is yours now, forget its records: DELETE FROM "dataops_copy_checkpoints" WHERE migration_uid IN (\'5d0c-earlier\', \'5d0c-earlier#sync\')';
  cluster.finishJob('orders-g1-copy', 'Failed', [pod(refusal, 3)]);
  clock.now = new Date('2025-01-01T00:00:30Z');
  await reconciler.reconcile(KEY);
  const m = stored(cluster);
  t.is(m.status?.phase, 'Failed');
  t.is(m.status?.conditions?.find((c) => c.type === 'Ready')?.reason, REASONS.PlanRefused);
  t.regex(m.status?.message ?? '', /migration uid 5d0c-earlier \(shop\/orders\)/);
  t.regex(m.status?.message ?? '', /This migration \(uid 0f8fad5b-d9cb-469f-a165-70867728950e/);
  const warnings = cluster.events.filter((e) => e.type === 'Warning');
  t.deepEqual(warnings.map((e) => e.reason), [REASONS.PlanRefused]);
  t.regex(warnings[0]?.message ?? '', /migration uid 5d0c-earlier/);
  t.like(entryOf(m.status ?? {}, 'copy'), { outcome: 'Failed', reason: REASONS.PlanRefused, exitCode: 3 });
});

test('a failed Job\'s exit code is the newest pod\'s, compared as times (Sunday 23:59 before Monday 00:01)', (t) => {
  const failedPod = (exitCode: number, finishedAt: Date): k8s.V1Pod => ({
    metadata: { name: `p${String(exitCode)}`, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'orders-g1-copy', uid: 'job-1', controller: true }] },
    status: { containerStatuses: [{ name: 'engine', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, message: 'x', finishedAt } } }] },
  });
  const job: k8s.V1Job = {
    metadata: { name: 'orders-g1-copy', uid: 'job-1', labels: { [LABELS.step]: 'copy', [LABELS.run]: 'g1' } },
    status: { conditions: [{ type: 'Failed', status: 'True' }] },
  };
  // String(Date) starts with the weekday: as text "Sun …" sorts after "Mon …".
  const pods = [failedPod(3, new Date(2025, 0, 6, 0, 1)), failedPod(2, new Date(2025, 0, 5, 23, 59))];
  t.is(observeJob(job, pods)?.exitCode, 3);
  t.is(observeJob(job, [...pods].reverse())?.exitCode, 3);
});

test('a status the API server refuses as invalid (422) is said: logged at error with the reason, one Warning Event, and backed off', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('error', new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(chunk.toString()); done(); } }));
  class RefusingStatus extends MemoryCluster {
    override writeStatus(): Promise<DataMigration> {
      this.requests.push('writeStatus refused');
      return Promise.reject(new ClusterError(422, 'DataMigration.dataops.dev "orders" is invalid: status.steps[0].message: Too long: may not be more than 2048 bytes'));
    }
  }
  const cluster = new RefusingStatus();
  cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
  cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  cluster.add({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders', namespace: 'shop', uid: 'u1', generation: 1 },
    spec: { source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } }, strategy: { type: 'BigBang' } },
  });
  const reconciler = new Reconciler({ cluster, engine: { image: 'engine:dev', command: ['dmctl'] }, logger, metrics: createMetrics(), now: () => new Date('2025-01-01T00:00:00Z') });
  for (let i = 0; i < 3; i++) {
    const error = await t.throwsAsync(reconciler.reconcile(KEY));
    t.is(outcomeOf({ error }).kind, 'error');
  }
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(cluster.events.map((e) => `${e.type}:${e.reason}`), ['Warning:StatusRejected']);
  t.regex(cluster.events[0]?.message ?? '', /Too long/);
  t.true(lines.length >= 3 && lines.every((line) => line.includes('"level":"error"') && line.includes('Too long')), lines.join(''));
  t.false(cluster.requests.some((r) => r.startsWith('createJob')));
});
