// Attacks on ChangeCapture's cutover (issue 16), each a test that fails if a guarantee breaks:
// the write fence only on a Deployment that consented to this migration, never held while writes
// may go on (a fence claimed before it was asked for, a Deployment scaled up behind it), status in
// the CRD's bounds whatever the target's bookkeeping says, a refused release Job not a request loop,
// an abort or a suspend behind the fence never leaving blue at zero.
import { Writable } from 'node:stream';
import test from 'ava';
import { FENCE_RECORD_ANNOTATION, FENCED_ANNOTATION, REASONS } from '../../src/api/constants.ts';
import { STATUS_LIMITS } from '../../src/api/datamigration-schema.ts';
import type { DataMigration, DataMigrationSpec } from '../../src/api/types.generated.ts';
import { decide, preflightNeeded, recordRejectedJob, recordRejectedSwitch, type ObservedFenceDeployment } from '../../src/controller/decide.ts';
import { observedService } from '../support/cutover-service.ts';
import { finalizeCapture } from '../../src/controller/capture-finalize.ts';
import type { EngineConfig } from '../../src/controller/job-builder.ts';
import { createLogger } from '../../src/controller/logger.ts';
import {
  annotated, at, blue, captureSpec, copied, CUTOVER, fenced, job, kinds, lag, OTHER_UID, ready, runningSync, scaleOf, step, syncing, T0, UID,
} from '../support/capture-decide.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const spec = (fence: NonNullable<NonNullable<DataMigrationSpec['cutover']>['fence']>): DataMigrationSpec => captureSpec({ fence });

/** Fence held, sync stopped, catch-up running. */
function catchingUp(): DataMigration {
  let r = step(syncing(), { jobs: [copied, runningSync], capture: { lag: lag(100), fenceDeployment: blue() } });
  r = step(r.m, { jobs: [copied, runningSync], capture: { fenceDeployment: fenced(0) }, now: at(1) });
  r = step(r.m, { jobs: [copied], capture: { fenceDeployment: fenced(0) }, now: at(2) });
  return r.m;
}

test('the fence never goes up on a Deployment that did not consent, consented to another migration, or carries another migration\'s record', (t) => {
  const cases: [string, ObservedFenceDeployment][] = [
    ['no consent', blue({ annotations: {} })],
    ['consent to another migration', blue({ annotations: { 'dataops.dev/cutover-by': 'orders-v2, payments' } })],
    ['consent by prefix only', blue({ annotations: { 'dataops.dev/cutover-by': 'orders-' } })],
    ['another migration\'s record', blue({ annotations: { 'dataops.dev/cutover-by': 'orders', [FENCE_RECORD_ANNOTATION]: JSON.stringify({ uid: OTHER_UID, run: 'g1', replicas: 3 }) } })],
  ];
  for (const [what, deployment] of cases) {
    const r = step(syncing(), { jobs: [copied, runningSync], capture: { lag: lag(0), fenceDeployment: deployment } });
    t.is(scaleOf(r.d), undefined, what);
    t.is(r.d.status.phase, 'Syncing', what);
    t.is(ready(r.d)?.reason, REASONS.FenceRefused, what);
  }
});

test('an External fence claimed before the cutover asked for it is not a fence: the cutover is not cleared until the claim is made after', (t) => {
  const external = spec({ type: 'External', timeoutSeconds: 120 });
  const early = syncing(external, { [FENCED_ANNOTATION]: 'true' });
  let r = step(early, { jobs: [copied, runningSync], capture: { lag: lag(0) } });
  t.not(r.d.status.phase, 'CuttingOver', 'a stale "fenced" annotation does not clear the cutover');
  t.false(r.d.actions.some((a) => a.kind === 'deleteJob'), 'the stream is not stopped on an old claim');
  t.regex(ready(r.d)?.message ?? '', new RegExp(FENCED_ANNOTATION.replace('.', '\\.')));
  // Removed: the cutover clears and waits for the claim.
  r = step(annotated(r.m, {}), { jobs: [copied, runningSync], capture: { lag: lag(0) }, now: at(1) });
  t.is(r.d.status.phase, 'CuttingOver');
  t.is(ready(r.d)?.reason, REASONS.Fencing);
  r = step(annotated(r.m, { [FENCED_ANNOTATION]: 'true' }), { jobs: [copied, runningSync], now: at(2) });
  t.true(kinds(r.d).includes('deleteJob'), 'claimed after the request: the sync stops');
});

test('blue scaled up behind a held fence (a person, an HPA) stops the cutover before the switch: no catch-up result is trusted, traffic stays on blue', (t) => {
  const m = catchingUp();
  t.is(m.status?.phase, 'CuttingOver');
  const passed = job('catchup', 'Succeeded', { fencePosition: '0/16B4000', validation: { passed: true, summary: 'ok' } });
  const r = step(m, { jobs: [copied, passed], capture: { fenceDeployment: fenced(2, { replicas: 2, resourceVersion: '15' }) }, now: at(5) });
  t.false(kinds(r.d).includes('patchServiceSelector'), 'writes resumed behind the fence: no switch');
  t.is(r.d.status.phase, 'Failed');
  t.is(ready(r.d)?.reason, REASONS.FenceRefused);
  t.is(scaleOf(r.d)?.replicas, 2, 'left at what someone set; only the record goes');
});

test('an External fence withdrawn behind the fence stops the cutover before the switch', (t) => {
  const external = spec({ type: 'External', timeoutSeconds: 120 });
  let r = step(syncing(external), { jobs: [copied, runningSync], capture: { lag: lag(0) } });
  r = step(annotated(r.m, { [FENCED_ANNOTATION]: 'true' }), { jobs: [copied, runningSync], now: at(1) });
  r = step(r.m, { jobs: [copied], now: at(2) });
  const passed = job('catchup', 'Succeeded', { fencePosition: '0/16B4000', validation: { passed: true, summary: 'ok' } });
  r = step(annotated(r.m, { [FENCED_ANNOTATION]: 'false' }), { jobs: [copied, passed], now: at(5) });
  t.false(kinds(r.d).includes('patchServiceSelector'), 'the person lifted the fence: no switch');
  t.is(r.d.status.phase, 'Failed');
});

test('a lag report out of the CRD\'s bounds (the target\'s bookkeeping is writable by its users) stays in bounds in status and clears nothing', (t) => {
  const forged = { appliedPosition: 'x'.repeat(5000), lagMs: -1_000_000, pendingBytes: -5, transactions: -1, changes: -1, sampledAt: T0 };
  const r = step(syncing(), { jobs: [copied, runningSync], capture: { lag: forged, fenceDeployment: blue() } });
  const sync = r.d.status.sync ?? {};
  t.true((sync.appliedPosition ?? '').length <= STATUS_LIMITS.figure, 'appliedPosition bounded');
  t.true((sync.lagMs ?? 0) >= 0, 'lagMs is never negative (minimum 0 in the CRD)');
  t.true((sync.lag ?? '').length <= STATUS_LIMITS.figure);
  t.not(r.d.status.phase, 'CuttingOver', 'a negative lag is not a lag under the bound');
  t.is(scaleOf(r.d), undefined);
  const long = { ...lag(0), appliedPosition: 'x'.repeat(5000), sampledAt: 'Wed, 01 Jan 2025 00:00:00 GMT' };
  const bounded = step(syncing(), { jobs: [copied, runningSync], capture: { lag: long, fenceDeployment: blue() } });
  t.true((bounded.d.status.sync?.appliedPosition ?? '').length <= STATUS_LIMITS.figure, 'appliedPosition bounded');
  t.is(bounded.d.status.sync?.sampledAt, T0.replace('Z', '.000Z'), 'sampledAt as RFC 3339, the CRD\'s date-time');
  const future = step(syncing(), { jobs: [copied, runningSync], capture: { lag: lag(0, at(86_400)), fenceDeployment: blue() } });
  t.not(future.d.status.phase, 'CuttingOver', 'a report from the future is not fresh');
  const huge = step(syncing(), { jobs: [copied, runningSync], capture: { lag: lag(Number.MAX_VALUE), fenceDeployment: blue() } });
  t.true(Number.isSafeInteger(huge.d.status.sync?.lagMs ?? 0), 'an int64 the API server can hold');
});

test('a release Job refused by a quota after the run ended is asked for again only after REQUEUE.jobRejected, not in a loop', (t) => {
  const m = syncing();
  let r = step(m, { jobs: [copied, job('sync', 'Failed', undefined, { failureMessage: 'boom', exitCode: 1 })] });
  t.is(r.d.status.phase, 'Failed');
  r = step(r.m, { jobs: [copied], now: at(1) });
  t.deepEqual(kinds(r.d).filter((k) => k.startsWith('createJob')), ['createJob:release']);
  const refused = recordRejectedJob(r.m, r.d, { step: 'release', runId: 'g1', message: 'exceeded quota: jobs' }, at(1));
  let m2: DataMigration = { ...r.m, status: refused.status };
  const again = step(m2, { jobs: [copied], now: at(2) });
  t.false(kinds(again.d).includes('createJob:release'), 'not asked for again at once');
  t.is(again.d.status.phase, 'Failed', 'still the run\'s ending');
  m2 = again.m;
  const later = step(m2, { jobs: [copied], now: at(120) });
  t.true(kinds(later.d).includes('createJob:release'), 'asked for again after the wait');
});

test('an abort while fencing, or a suspend behind the fence, never leaves blue at zero', (t) => {
  let r = step(syncing(), { jobs: [copied, runningSync], capture: { lag: lag(100), fenceDeployment: blue() } });
  r = step(r.m, { jobs: [copied, runningSync], capture: { fenceDeployment: fenced(2) }, now: at(1) });
  const aborted = step(annotated(r.m, { 'dataops.dev/abort': 'true' }), { jobs: [copied, runningSync], capture: { fenceDeployment: fenced(2) }, now: at(2) });
  t.is(aborted.d.status.phase, 'Failed');
  const next = step(aborted.m, { jobs: [copied, runningSync], capture: { fenceDeployment: fenced(1) }, now: at(3) });
  t.is(scaleOf(aborted.d)?.replicas ?? scaleOf(next.d)?.replicas, 3, 'blue back to 3');

  const m = catchingUp();
  const suspended = structuredClone(m);
  suspended.spec.suspend = true;
  let s = step(suspended, { jobs: [copied], capture: { fenceDeployment: fenced(0) }, now: at(10) });
  t.is(scaleOf(s.d), undefined);
  s = step(s.m, { jobs: [copied], capture: { fenceDeployment: fenced(0) }, now: at(200) });
  t.is(scaleOf(s.d)?.replicas, 3, 'the fence timeout holds while suspended');
  t.is(s.d.status.phase, 'Failed');
});

test('a fence record of this uid but another run is lifted to its replicas only while blue is still at zero', (t) => {
  const stale = fenced(0, { annotations: { 'dataops.dev/cutover-by': 'orders', [FENCE_RECORD_ANNOTATION]: JSON.stringify({ uid: UID, run: 'g0', replicas: 3 }) } });
  const r = step(catchingUp(), { jobs: [copied, job('catchup', 'Failed', undefined, { failureMessage: 'x', exitCode: 1 })], capture: { fenceDeployment: stale }, now: at(5) });
  t.is(scaleOf(r.d)?.replicas, 3);
  const forgedRecord = fenced(0, { annotations: { 'dataops.dev/cutover-by': 'orders', [FENCE_RECORD_ANNOTATION]: '{"uid":"x","run":"g1","replicas":1e9}' } });
  const f = step(catchingUp(), { jobs: [copied, job('catchup', 'Failed', undefined, { failureMessage: 'x', exitCode: 1 })], capture: { fenceDeployment: forgedRecord }, now: at(5) });
  t.is(scaleOf(f.d), undefined, 'a record not ours is never acted on');
});

test('a DataMigration deleted behind its fence scales blue back (once, only while the record is its own) before its finalizer goes; a re-created one of the same name is refused the Deployment its predecessor fenced', async (t) => {
  const cluster = new MemoryCluster();
  const log = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));
  const engine: EngineConfig = { image: 'engine:dev', command: ['dmctl'] };
  const m = catchingUp();
  const deleted = structuredClone(m);
  deleted.metadata ??= {};
  deleted.metadata.deletionTimestamp = new Date(at(3));
  cluster.fenceDeployments.set('shop/orders-blue', fenced(0));
  t.is(await finalizeCapture({ cluster, engine, log, now: new Date(at(4)), saidExternal: new Set() }, deleted), 'waiting', 'the release runs first');
  t.is(cluster.fenceDeployments.get('shop/orders-blue')?.replicas, 3, 'blue back to its 3 replicas');
  t.is(cluster.fenceDeployments.get('shop/orders-blue')?.annotations[FENCE_RECORD_ANNOTATION], undefined, 'the record gone');
  // Scaled down by someone since: a second pass leaves it alone.
  cluster.fenceDeployments.set('shop/orders-blue', { ...blue({ replicas: 0, pods: 0 }) });
  await finalizeCapture({ cluster, engine, log, now: new Date(at(5)), saidExternal: new Set() }, deleted);
  t.is(cluster.fenceDeployments.get('shop/orders-blue')?.replicas, 0, 'a Deployment without its record is not its to scale');
  // The predecessor's record left (its finalizer gave up): the new one with the same name never scales it.
  const predecessor = fenced(0, { annotations: { 'dataops.dev/cutover-by': 'orders', [FENCE_RECORD_ANNOTATION]: JSON.stringify({ uid: OTHER_UID, run: 'g1', replicas: 3 }) } });
  const r = step(syncing(), { jobs: [copied, runningSync], capture: { lag: lag(0), fenceDeployment: predecessor } });
  t.is(scaleOf(r.d), undefined);
  t.is(ready(r.d)?.reason, REASONS.FenceRefused);
});

test('a switch the API server refused (a policy, RBAC) did not land: the fence timeout still lifts the fence, blue is not left at zero for ever', (t) => {
  const passed = job('catchup', 'Succeeded', { fencePosition: '0/16B4000', validation: { passed: true, summary: 'ok' } });
  const r = step(catchingUp(), { jobs: [copied, passed], capture: { fenceDeployment: fenced(0) }, now: at(5) });
  t.true(kinds(r.d).includes('patchServiceSelector'));
  const refused = recordRejectedSwitch(r.m, r.d, { runId: 'g1', service: 'orders-api', message: 'admission webhook denied the request' }, at(5));
  let m: DataMigration = { ...r.m, status: refused.status };
  let lifted: number | undefined;
  for (const seconds of [70, 140, 200]) {
    const next = step(m, { jobs: [copied, passed], capture: { fenceDeployment: fenced(0) }, now: at(seconds) });
    lifted ??= scaleOf(next.d)?.replicas;
    // Each patch sent again is refused again.
    const answered = kinds(next.d).includes('patchServiceSelector') ? recordRejectedSwitch(next.m, next.d, { runId: 'g1', service: 'orders-api', message: 'denied' }, at(seconds)) : next.d;
    m = { ...next.m, status: answered.status };
  }
  t.is(lifted, 3, 'blue back to its replicas once fence.timeoutSeconds passed');
  t.is(m.status?.phase, 'Failed');
});

test('a Service switched by hand behind the fence: the migration does not claim the switch, and blue is not left at zero', (t) => {
  const passed = job('catchup', 'Succeeded', { fencePosition: '0/16B4000', validation: { passed: true, summary: 'ok' } });
  const byHand = observedService({ app: 'orders', track: 'green' });
  const base = { jobs: [copied, passed], service: byHand, capture: { syncPods: 0, fenceDeployment: fenced(0) } };
  let m = catchingUp();
  let scaled: number | undefined;
  const phases: string[] = [];
  for (const seconds of [5, 6, 7, 200, 201]) {
    const input = { migration: m, ...base, now: at(seconds) };
    const d = decide(preflightNeeded(input) ? { ...input, preflight: { missing: [] } } : input);
    scaled ??= scaleOf(d)?.replicas;
    t.false(d.actions.some((a) => a.kind === 'patchServiceSelector'), 'a Service switched by someone else is not patched');
    phases.push(d.status.phase ?? '');
    m = { ...m, status: d.status };
  }
  t.not(m.status?.phase, 'Succeeded', `not claimed as this migration's switch: ${phases.join(' → ')}`);
  t.is(scaled, 3, `blue back to its replicas: ${phases.join(' → ')}`);
});

test('a DataMigration deleted behind its External fence says, once, that the person must lift it (nothing else can)', async (t) => {
  const cluster = new MemoryCluster();
  const log = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));
  const engine: EngineConfig = { image: 'engine:dev', command: ['dmctl'] };
  const deleted = structuredClone(catchingUp());
  deleted.spec.cutover = { ...CUTOVER, fence: { type: 'External' } };
  deleted.metadata ??= {};
  deleted.metadata.deletionTimestamp = new Date(at(3));
  deleted.metadata.finalizers = ['dataops.dev/cleanup'];
  const said = new Set<string>();
  await finalizeCapture({ cluster, engine, log, now: new Date(at(4)), saidExternal: said }, deleted);
  await finalizeCapture({ cluster, engine, log, now: new Date(at(6)), saidExternal: said }, deleted);
  const warnings = cluster.events.filter((e) => e.reason === REASONS.FenceLifted);
  t.is(warnings.length, 1);
  t.regex(warnings[0]?.message ?? '', /lift the fence you put up/);
});
