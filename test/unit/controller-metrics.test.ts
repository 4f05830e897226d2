// The operator's metrics (src/controller/metrics.ts): what names a migration is computed at scrape
// time from the cached DataMigrations (a deleted one leaves no series); step durations observed
// once per step end the reconciler writes; client-go's work-queue series from the queue's hooks.
import { Writable } from 'node:stream';
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import type { DataMigration } from '../../src/api/types.ts';
import { createLogger } from '../../src/controller/logger.ts';
import { createMetrics, endedSteps, phaseSince, type OperatorMetrics } from '../../src/controller/metrics.ts';
import { exponentialLimiter } from '../../src/controller/rate-limiter.ts';
import { Reconciler } from '../../src/controller/reconciler.ts';
import { WorkQueue } from '../../src/controller/workqueue.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

function migration(name: string, status?: DataMigration['status']): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    // The cache holds the raw JSON: a string where client-node's type says Date.
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, generation: 1, creationTimestamp: '2025-01-01T00:00:00Z' as unknown as Date },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } },
      target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'Trickle', incremental: { column: 'updated_at', mode: 'Timestamp' } },
    },
    ...(status ? { status } : {}),
  };
}

const copying: DataMigration['status'] = {
  phase: 'Copying', runId: 'g1',
  steps: [
    { step: 'start', runId: 'g1', requestedAt: '2025-01-01T00:00:00Z', outcome: 'Succeeded', finishedAt: '2025-01-01T00:00:05Z' },
    { step: 'copy', runId: 'g1', requestedAt: '2025-01-01T00:00:06Z', job: 'orders-g1-copy' },
  ],
  progress: { rowsCopied: 4_100_000, rowsEstimated: 9_000_000, etaSeconds: 26, rowsPerSecond: 210_000 },
};

/** The value of one series, or undefined when the scrape has none with these labels. */
async function value(metrics: OperatorMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l))?.value;
}

test('per-migration series come from the cached list at scrape time; a deleted migration leaves none', async (t) => {
  const cache: DataMigration[] = [migration('orders', copying), migration('users')];
  const metrics = createMetrics({ migrations: () => cache });
  const named = { namespace: 'shop', name: 'orders' };
  t.is(await value(metrics, 'datamigration_info', { ...named, phase: 'Copying', strategy: 'Trickle', source_engine: 'mysql', target_engine: 'postgres', suspended: 'false' }), 1);
  t.is(await value(metrics, 'datamigration_rows_copied', named), 4_100_000);
  t.is(await value(metrics, 'datamigration_rows_estimated', named), 9_000_000);
  t.is(await value(metrics, 'datamigration_eta_seconds', named), 26);
  t.is(await value(metrics, 'datamigration_phase_since_timestamp_seconds', { ...named, phase: 'Copying' }), Date.parse('2025-01-01T00:00:06Z') / 1000);
  // Without a status: Pending since it was created, and no progress series.
  t.is(await value(metrics, 'datamigration_info', { name: 'users', phase: 'Pending', strategy: 'Trickle' }), 1);
  t.is(await value(metrics, 'datamigration_phase_since_timestamp_seconds', { name: 'users', phase: 'Pending' }), Date.parse('2025-01-01T00:00:00Z') / 1000);
  t.is(await value(metrics, 'datamigration_rows_copied', { name: 'users' }), undefined);
  t.is(await value(metrics, 'datamigration_migrations', { phase: 'Copying' }), 1);
  t.is(await value(metrics, 'datamigration_migrations', { phase: 'Pending' }), 1);
  t.is(await value(metrics, 'datamigration_migrations', { phase: 'Failed' }), 0);
  t.regex(await metrics.registry.metrics(), /name="orders"/);

  // The phase moves on: the old phase's series go with it (one info series per migration).
  cache[0] = migration('orders', { ...copying, phase: 'Validating', steps: [...(copying.steps ?? []), { step: 'validate', runId: 'g1', requestedAt: '2025-01-01T01:00:00Z' }] });
  const text = await metrics.registry.metrics();
  t.false(text.includes('phase="Copying",strategy'), 'no info series for the phase it left');
  t.is(await value(metrics, 'datamigration_eta_seconds', named), undefined, 'no ETA once the copy is over');
  t.is(await value(metrics, 'datamigration_phase_since_timestamp_seconds', { ...named, phase: 'Validating' }), Date.parse('2025-01-01T01:00:00Z') / 1000);

  cache.splice(0, 1); // deleted
  const after = await metrics.registry.metrics();
  t.false(after.includes('name="orders"'), after.split('\n').filter((l) => l.includes('orders')).join('\n'));
  t.is(await value(metrics, 'datamigration_migrations', { phase: 'Validating' }), 0);
  t.true(after.includes('name="users"'));
});

test('phaseSince: the latest ledger time; times that do not parse are ignored', (t) => {
  t.is(phaseSince(migration('a', { phase: 'Copying', steps: [
    { step: 'start', runId: 'g1', requestedAt: 'yesterday', outcome: 'Succeeded', finishedAt: '2025-01-01T00:00:05Z' },
    { step: 'copy', runId: 'g1', requestedAt: 'not a time' },
  ] })), Date.parse('2025-01-01T00:00:05Z') / 1000);
  t.is(phaseSince(migration('b', { phase: 'Copying', startedAt: '2025-01-02T00:00:00Z' })), Date.parse('2025-01-02T00:00:00Z') / 1000);
  const bare = migration('c');
  delete bare.metadata?.creationTimestamp;
  t.is(phaseSince(bare), undefined);
});

test('endedSteps: a step end is reported once; the same status again, a running step, a backwards clock or the finish are not', (t) => {
  const running = { step: 'copy' as const, runId: 'g1', requestedAt: '2025-01-01T00:00:00Z' };
  const ended = { ...running, outcome: 'Succeeded' as const, finishedAt: '2025-01-01T00:01:30Z' };
  t.deepEqual(endedSteps({ steps: [running] }, { steps: [ended] }), [{ step: 'copy', outcome: 'Succeeded', seconds: 90 }]);
  t.deepEqual(endedSteps({ steps: [ended] }, { steps: [ended] }), []);
  t.deepEqual(endedSteps(undefined, { steps: [running] }), []);
  t.deepEqual(endedSteps(undefined, { steps: [{ ...ended, finishedAt: '2024-12-31T00:00:00Z' }] }), []);
  t.deepEqual(endedSteps(undefined, { steps: [{ step: 'finish', runId: 'g1', requestedAt: running.requestedAt, outcome: 'Succeeded', finishedAt: ended.finishedAt }] }), []);
  // A retry of the same step in the same run ends again: a second observation.
  t.deepEqual(endedSteps({ steps: [{ ...ended, outcome: 'Failed' }] }, { steps: [{ ...ended, requestedAt: '2025-01-01T00:01:00Z', finishedAt: '2025-01-01T00:01:10Z' }] }),
    [{ step: 'copy', outcome: 'Succeeded', seconds: 10 }]);
});

const silent = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));
const resultPod = (message: string): k8s.V1Pod => ({
  metadata: { name: 'p' },
  status: { containerStatuses: [{ name: 'engine', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message, finishedAt: new Date() } } }] },
});

test('the reconciler observes a step duration once, when it writes the end (not on a conflicted write, not on later reconciles)', async (t) => {
  const cluster = new MemoryCluster();
  cluster.secrets.set('shop/legacy-db', { url: 'mysql://u:p@legacy/db' });
  cluster.secrets.set('shop/orders-pg', { url: 'postgres://u:p@pg/db' });
  const m = migration('orders');
  m.spec.strategy = { type: 'BigBang' };
  cluster.add(m);
  const metrics = createMetrics({ migrations: () => [...cluster.migrations.values()] });
  const clock = { now: new Date('2025-01-01T00:00:00Z') };
  const reconciler = new Reconciler({
    cluster, engine: { image: 'engine:dev', command: ['dmctl'] }, logger: silent, metrics, now: () => clock.now,
    readProgress: () => Promise.resolve({ progress: {}, rows: 0, at: clock.now.getTime() }),
  });
  const copies = async (): Promise<number | undefined> => value(metrics, 'datamigration_step_duration_seconds', { step: 'copy', outcome: 'Succeeded' });
  await reconciler.reconcile('shop/orders');
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.name), ['orders-g1-copy']);
  clock.now = new Date('2025-01-01T00:02:00Z');
  cluster.finishJob('orders-g1-copy', 'Complete', [resultPod(JSON.stringify({ tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 7 }], rowsThisRun: 7 }))]);
  cluster.conflictOnNextStatusWrite = true;
  await t.throwsAsync(reconciler.reconcile('shop/orders'));
  t.is(await copies(), undefined, 'nothing observed when the write was refused');
  await reconciler.reconcile('shop/orders');
  clock.now = new Date('2025-01-01T00:02:30Z');
  await reconciler.reconcile('shop/orders');
  await reconciler.reconcile('shop/orders');
  const text = await metrics.registry.metrics();
  t.regex(text, /datamigration_step_duration_seconds_count\{step="copy",outcome="Succeeded"\} 1\n/);
  t.regex(text, /datamigration_step_duration_seconds_sum\{step="copy",outcome="Succeeded"\} 120\n/);
  t.regex(text, /datamigration_step_duration_seconds_bucket\{le="60",step="copy",outcome="Succeeded"\} 0\n/);
  t.regex(text, /datamigration_step_duration_seconds_bucket\{le="120",step="copy",outcome="Succeeded"\} 1\n/);
  t.false(text.split('\n').some((l) => l.startsWith('datamigration_step_duration') && l.includes('orders')), 'the histogram names no migration');
});

test('work-queue metrics as client-go names them: adds, depth, queue and work durations, retries, work in flight', async (t) => {
  const metrics = createMetrics();
  let now = 1000;
  const queue = new WorkQueue(exponentialLimiter(5, 1000), metrics.workqueue, () => now);
  const q = { name: 'datamigration' };
  t.is(await value(metrics, 'workqueue_adds_total', q), 0, 'zero series from the start');
  for (let i = 0; i < 5; i++) queue.add('ns/a'); // waiting already: one add
  queue.add('ns/b');
  t.is(await value(metrics, 'workqueue_adds_total', q), 2);
  t.is(await value(metrics, 'workqueue_depth', q), 2);
  now += 250;
  t.is(await queue.get(), 'ns/a');
  t.is(await value(metrics, 'workqueue_depth', q), 1);
  queue.add('ns/a'); // added again while in progress: counted, waits for done
  t.is(await value(metrics, 'workqueue_adds_total', q), 3);
  t.is(await value(metrics, 'workqueue_depth', q), 2);
  now += 2000;
  t.is(await value(metrics, 'workqueue_unfinished_work_seconds', q), 2);
  t.is(await value(metrics, 'workqueue_longest_running_processor_seconds', q), 2);
  queue.done('ns/a');
  t.is(await value(metrics, 'workqueue_unfinished_work_seconds', q), 0);
  queue.addRateLimited('ns/c');
  queue.addRateLimited('ns/c');
  t.is(await value(metrics, 'workqueue_retries_total', q), 2);
  const text = await metrics.registry.metrics();
  // ns/a waited 0.25 s (bucket le=1), worked 2 s (le=10).
  t.regex(text, /workqueue_queue_duration_seconds_count\{name="datamigration"\} 1\n/);
  t.regex(text, /workqueue_queue_duration_seconds_bucket\{le="0\.1",name="datamigration"\} 0\n/);
  t.regex(text, /workqueue_queue_duration_seconds_bucket\{le="1",name="datamigration"\} 1\n/);
  t.regex(text, /workqueue_work_duration_seconds_sum\{name="datamigration"\} 2\n/);
  // Its second add is counted from when it was made, not again at done.
  now += 500;
  t.is(await queue.get(), 'ns/b');
  t.is(await queue.get(), 'ns/a');
  t.is(await value(metrics, 'workqueue_adds_total', q), 3);
  t.regex(await metrics.registry.metrics(), /workqueue_queue_duration_seconds_sum\{name="datamigration"\} 5\.5\n/);
  queue.shutDown();
});
