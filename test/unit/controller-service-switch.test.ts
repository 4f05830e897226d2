// The cutover Service's consent and record, attacked through decide(): a DataMigration switches a
// Service only when the Service opted in (its annotation names the migration, or its labels match
// the operator's opt-in selector) and selects fromSelector; the switch carries a record with the
// migration's uid; done, abort and rollback go only by that record. A Service switched by hand, by
// another DataMigration, or by an earlier DataMigration of the same name is never flipped back.
import test from 'ava';
import { ABORT_ANNOTATION, CUTOVER_BY_ANNOTATION, REASONS, SWITCH_RECORD } from '../../src/api/constants.ts';
import type { Phase } from '../../src/api/constants.ts';
import type { CutoverSpec, DataMigration, DataMigrationStatus, StepRecord } from '../../src/api/types.generated.ts';
import { decide, preflightNeeded, REQUEUE, SWITCH_GRACE_SECONDS } from '../../src/controller/decide.ts';
import type { Action, DecideInput, Decision, ObservedJob, ObservedService } from '../../src/controller/decide.ts';
import { parseLabelSelector } from '../../src/controller/selectors.ts';
import { afterPatch, observedService, switchedService } from '../support/cutover-service.ts';

const T0 = '2025-01-01T00:00:00Z';
const T1 = '2025-01-01T00:00:10Z';
const LATER = '2025-01-01T01:00:00Z';
const UID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const BLUE = { app: 'orders', track: 'blue' };
const GREEN = { app: 'orders', track: 'green' };
const CUTOVER: CutoverSpec = { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
const ME = { name: 'orders', uid: UID, runId: 'g1' };

/** A ledger that puts the machine in `phase` (phase-of.ts). */
function ledgerAt(phase: Phase, switchRequestedAt?: string): StepRecord[] {
  const done = (step: StepRecord['step']): StepRecord => ({ step, runId: 'g1', outcome: 'Succeeded', finishedAt: T0 });
  const steps = [done('start'), done('copy')];
  if (phase === 'Pending') return [];
  if (phase === 'RollingBack') return [...steps, { step: 'validate', runId: 'g1', outcome: 'Failed', reason: REASONS.ValidationFailed, message: 'Validation failed', finishedAt: T0 }];
  if (phase === 'CuttingOver') return [...steps, done('validate'), { step: 'switch', runId: 'g1', ...(switchRequestedAt ? { requestedAt: switchRequestedAt } : {}) }];
  throw new Error(`no ledger for ${phase}`);
}

function migration(phase: Phase, options: { cutover?: CutoverSpec; annotations?: Record<string, string>; uid?: string; name?: string; switchRequestedAt?: string; rollback?: DataMigration['spec']['rollback'] } = {}): DataMigration {
  const status: DataMigrationStatus = { runId: 'g1', steps: ledgerAt(phase, options.switchRequestedAt) };
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: options.name ?? 'orders', namespace: 'shop', uid: options.uid ?? UID, generation: 1, ...(options.annotations ? { annotations: options.annotations } : {}) },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' }, cutover: options.cutover ?? CUTOVER, rollback: options.rollback ?? { schemaAction: 'None' },
    },
    ...(phase === 'Pending' ? {} : { status }),
  };
}

interface Seen { service?: ObservedService; jobs?: ObservedJob[]; missing?: { kind: 'Secret'; name: string }[]; now?: string; optIn?: string }

/** Decides as the reconciler does: the preflight's findings only when something may start. */
function decideAs(m: DataMigration, seen: Seen): Decision {
  const optInSelector = seen.optIn === undefined ? undefined : parseLabelSelector(seen.optIn);
  const base: Omit<DecideInput, 'preflight'> = {
    migration: m, jobs: seen.jobs ?? [], now: seen.now ?? T1,
    ...(seen.service ? { service: seen.service } : {}), ...(optInSelector ? { optInSelector } : {}),
  };
  return decide(preflightNeeded(base) ? { ...base, preflight: { missing: seen.missing ?? [] } } : base);
}

const patches = (d: Decision): Extract<Action, { kind: 'patchServiceSelector' }>[] => d.actions.flatMap((a) => (a.kind === 'patchServiceSelector' ? [a] : []));
const events = (d: Decision): string[] => d.actions.flatMap((a) => (a.kind === 'event' ? [`${a.type}:${a.reason}`] : []));
const ready = (d: Decision): { reason?: string; message?: string } => d.status.conditions?.find((c) => c.type === 'Ready') ?? {};
const after = (m: DataMigration, d: Decision): DataMigration => ({ ...m, status: d.status });
const validated: ObservedJob[] = [{ name: 'orders-g1-validate', step: 'validate', runId: 'g1', state: 'Succeeded', result: { passed: true } }];

// ---- the confused deputy ------------------------------------------------------------------

test('the confused deputy: cutover payments from app=attacker to app=payments, missing Secrets, abort: payments is never patched', (t) => {
  const attack: CutoverSpec = { service: 'payments', fromSelector: { app: 'attacker' }, toSelector: { app: 'payments' } };
  const m = migration('Pending', { cutover: attack, annotations: { [ABORT_ANNOTATION]: 'true' } });
  for (const service of [
    observedService({ app: 'payments' }, { optIn: null }),
    observedService({ app: 'payments' }, { optIn: 'orders' }), // even one that opted in: it was never switched by this migration
    switchedService({ app: 'attacker' }, attack, { name: 'orders', uid: 'another-uid', runId: 'g1' }), // switched by a namesake that was deleted
  ]) {
    const d = decideAs(m, { service, missing: [{ kind: 'Secret', name: 'legacy-db' }], now: T0 });
    t.is(d.status.phase, 'Failed');
    t.is(ready(d).reason, REASONS.Aborted);
    t.deepEqual(patches(d), [], 'no patch, whatever the Service says');
    t.deepEqual(events(d).filter((e) => e.startsWith('Warning:ServiceNot')), ['Warning:ServiceNotRestored']);
    t.regex(d.status.message ?? '', /Service payments selects app=payments \(toSelector\), but this migration did not switch it .*; it is left as it is/);
  }
});

// ---- consent ------------------------------------------------------------------------------

test('a Service without the opt-in is refused: ServiceNotOptedIn in Ready and CutOver, one Warning, a requeue, no patch; the opt-in then switches it', (t) => {
  const m = migration('CuttingOver');
  const service = observedService(BLUE, { optIn: null });
  const d = decideAs(m, { service, jobs: validated });
  t.is(d.status.phase, 'CuttingOver');
  t.deepEqual(patches(d), []);
  t.like(ready(d), { reason: REASONS.ServiceNotOptedIn });
  t.regex(ready(d).message ?? '', new RegExp(`Service orders-api has not opted in .* annotates it with ${CUTOVER_BY_ANNOTATION}=orders$`));
  t.like(d.status.conditions?.find((c) => c.type === 'CutOver'), { status: 'False', reason: REASONS.ServiceNotOptedIn });
  t.deepEqual(events(d), ['Warning:ServiceNotOptedIn']);
  t.is(d.requeueAfterSeconds, REQUEUE.serviceRefused);
  t.false((ready(d).message ?? '').includes('track=blue'), 'the refusal is about consent, not the selector');
  // Said once: the same observation again changes nothing.
  const again = decideAs(after(m, d), { service, jobs: validated, now: LATER });
  t.deepEqual(again.actions, []);
  t.deepEqual(again.status.conditions, d.status.conditions);
  // The owner opts in: the next decision switches.
  const consented = decideAs(after(m, d), { service: observedService(BLUE, { optIn: 'orders' }), jobs: validated, now: LATER });
  t.deepEqual(patches(consented).map((p) => p.selector), [GREEN]);
});

for (const [value, allowed] of [
  ['orders', true], [' other , orders ', true], ['other,orders-v2', false], ['order', false], ['Orders', false], ['*', false], ['', false],
] as const) {
  test(`opt-in annotation ${JSON.stringify(value)}: ${allowed ? 'switched' : 'refused'}`, (t) => {
    const d = decideAs(migration('CuttingOver'), { service: observedService(BLUE, { optIn: value }), jobs: validated });
    t.is(patches(d).length, allowed ? 1 : 0);
    if (!allowed) t.is(ready(d).reason, REASONS.ServiceNotOptedIn);
  });
}

test('the operator\'s opt-in label selector: a matching Service is switched without naming the migration; the refusal names the selector', (t) => {
  const m = migration('CuttingOver');
  const labelled = observedService(BLUE, { optIn: null, labels: { 'dataops.dev/cutover': 'allowed' } });
  t.is(patches(decideAs(m, { service: labelled, jobs: validated, optIn: 'dataops.dev/cutover=allowed' })).length, 1);
  t.is(patches(decideAs(m, { service: labelled, jobs: validated })).length, 0, 'without the operator\'s selector the label means nothing');
  const other = observedService(BLUE, { optIn: null, labels: { 'dataops.dev/cutover': 'no' } });
  const refused = decideAs(m, { service: other, jobs: validated, optIn: 'dataops.dev/cutover=allowed' });
  t.deepEqual(patches(refused), []);
  t.regex(ready(refused).message ?? '', /or labels it to match the operator's opt-in selector dataops\.dev\/cutover=allowed$/);
});

// ---- fromSelector, and switches made by others --------------------------------------------

test('a Service whose selector does not contain fromSelector is refused (ServiceSelectorMismatch), never patched', (t) => {
  const d = decideAs(migration('CuttingOver'), { service: observedService({ app: 'orders', track: 'canary' }), jobs: validated });
  t.deepEqual(patches(d), []);
  t.like(ready(d), { reason: REASONS.ServiceSelectorMismatch });
  t.regex(ready(d).message ?? '', /selects app=orders,track=canary, which does not contain fromSelector track=blue: not switched/);
  t.deepEqual(events(d), ['Warning:ServiceSelectorMismatch']);
  const empty = decideAs(migration('CuttingOver'), { service: observedService({}), jobs: validated });
  t.regex(ready(empty).message ?? '', /selects nothing, which does not contain fromSelector/);
});

test('a Service already on toSelector without this migration\'s record is not "done": switched by hand, by another DataMigration, or by a deleted namesake', (t) => {
  const cases: [string, ObservedService, RegExp][] = [
    ['by hand', observedService(GREEN), /it carries no switch record/],
    ['by another DataMigration', switchedService(BLUE, CUTOVER, { name: 'billing', uid: 'uid-billing', runId: 'g3' }, { optIn: 'billing,orders' }), /switched by DataMigration billing \(uid uid-billing, run g3\)/],
    ['by a deleted DataMigration of the same name', switchedService(BLUE, CUTOVER, { name: 'orders', uid: 'uid-before', runId: 'g1' }), /switched by DataMigration orders \(uid uid-before/],
  ];
  for (const [label, service, why] of cases) {
    const d = decideAs(migration('CuttingOver', { switchRequestedAt: T0 }), { service, jobs: validated, now: LATER });
    t.is(d.status.phase, 'CuttingOver', label);
    t.deepEqual(patches(d), [], label);
    t.is(ready(d).reason, REASONS.ServiceSelectorMismatch, label);
    t.regex(ready(d).message ?? '', why, label);
  }
});

// ---- the switch and its record ------------------------------------------------------------

test('the switch is one patch at the observed version: selector (other labels kept) and the record (uid, run, selectors before and after)', (t) => {
  const service = observedService({ ...BLUE, tier: 'web' }, { resourceVersion: '41', annotations: { 'dataops.dev/other': 'kept' } });
  const d = decideAs(migration('CuttingOver'), { service, jobs: validated });
  t.deepEqual(patches(d), [{
    kind: 'patchServiceSelector', service: 'orders-api', resourceVersion: '41', from: { ...BLUE, tier: 'web' }, selector: { ...GREEN, tier: 'web' },
    annotations: {
      [SWITCH_RECORD.migration]: 'orders', [SWITCH_RECORD.uid]: UID, [SWITCH_RECORD.run]: 'g1',
      [SWITCH_RECORD.before]: '{"app":"orders","tier":"web","track":"blue"}', [SWITCH_RECORD.after]: '{"app":"orders","tier":"web","track":"green"}',
    },
  }]);
  // Done only once the Service shows it, record and all.
  const switched = afterPatch(service, patches(d)[0] ?? (() => { throw new Error('no patch'); })());
  const done = decideAs(after(migration('CuttingOver'), d), { service: switched, jobs: validated });
  t.is(done.status.phase, 'Succeeded');
  t.regex(done.status.message ?? '', /switched from app=orders,tier=web,track=blue to app=orders,tier=web,track=green/);
  // The selector changed by hand after the switch, before it was seen: not this migration's switch any more.
  const edited = { ...switched, selector: { ...GREEN, tier: 'api' } };
  t.is(decideAs(after(migration('CuttingOver'), d), { service: edited, jobs: validated, now: LATER }).status.phase, 'CuttingOver');
});

// ---- abort --------------------------------------------------------------------------------

const aborting = (extra: Parameters<typeof migration>[1] = {}): DataMigration => migration('CuttingOver', { switchRequestedAt: T0, annotations: { [ABORT_ANNOTATION]: 'true' }, ...extra });

test('abort right after the switch was sent: waits to see whether it landed, then restores only a switch that shows this migration\'s record', (t) => {
  const sent = observedService(BLUE);
  const waiting = decideAs(aborting(), { service: sent, now: T1 });
  t.is(waiting.status.phase, 'CuttingOver');
  t.deepEqual(waiting.actions.filter((a) => a.kind !== 'event'), []);
  t.is(waiting.requeueAfterSeconds, REQUEUE.switching);
  t.regex(waiting.status.message ?? '', /^Aborting: waiting up to 30 s/);
  // It landed: restored to the recorded selector, the record removed, at the version seen.
  const landed = switchedService(BLUE, CUTOVER, ME, { resourceVersion: '100' });
  const restored = decideAs(aborting(), { service: landed, now: T1 });
  t.is(restored.status.phase, 'Failed');
  t.deepEqual(patches(restored), [{
    kind: 'patchServiceSelector', service: 'orders-api', resourceVersion: landed.resourceVersion, from: GREEN, selector: BLUE,
    annotations: Object.fromEntries(Object.values(SWITCH_RECORD).map((key) => [key, null])),
  }]);
  t.true(events(restored).includes('Normal:ServiceRestored'));
  const back = afterPatch(landed, patches(restored)[0] ?? (() => { throw new Error('no patch'); })());
  t.deepEqual(back.selector, BLUE);
  t.deepEqual(Object.keys(back.annotations), [CUTOVER_BY_ANNOTATION], 'the record is gone, the opt-in stays');
  // It never landed: after the grace period, Failed without touching the Service.
  const late = new Date(Date.parse(T0) + (SWITCH_GRACE_SECONDS + 1) * 1000).toISOString();
  const gaveUp = decideAs(aborting(), { service: sent, now: late });
  t.is(gaveUp.status.phase, 'Failed');
  t.deepEqual(patches(gaveUp), []);
});

test('abort restores the recorded previous selector, not fromSelector swapped in', (t) => {
  // The Service had a label the switch kept; someone's record says what it was: that comes back exactly.
  const landed = switchedService({ ...BLUE, tier: 'web' }, CUTOVER, ME);
  const d = decideAs(aborting(), { service: landed, now: T1 });
  t.deepEqual(patches(d).map((p) => p.selector), [{ ...BLUE, tier: 'web' }]);
});

test('abort leaves alone a Service this migration switched but someone changed since, and one whose record cannot be read', (t) => {
  const landed = switchedService(BLUE, CUTOVER, ME);
  const changed = { ...landed, selector: { ...GREEN, canary: 'yes' } };
  const d = decideAs(aborting(), { service: changed, now: T1 });
  t.is(d.status.phase, 'Failed');
  t.deepEqual(patches(d), []);
  t.regex(d.status.message ?? '', /was not restored: it was changed since this migration switched it to app=orders,track=green; it is left as it is/);
  t.true(events(d).includes('Warning:ServiceNotRestored'));
  const garbled = { ...landed, annotations: { ...landed.annotations, [SWITCH_RECORD.before]: '{"app": 1}' } };
  const unreadable = decideAs(aborting(), { service: garbled, now: T1 });
  t.deepEqual(patches(unreadable), []);
  t.regex(unreadable.status.message ?? '', /its switch record cannot be read/);
});

// ---- rollback -----------------------------------------------------------------------------

test('rollback leaves a Service switched by hand alone: ServiceNotRestored once (ledger, CutOver, one Warning), RolledBack says so', (t) => {
  const m = migration('RollingBack', { rollback: { schemaAction: 'DownMigrations' } });
  const byHand = observedService(GREEN);
  const first = decideAs(m, { service: byHand });
  t.is(first.status.phase, 'RollingBack');
  t.deepEqual(patches(first), []);
  t.deepEqual(events(first).filter((e) => e.includes('Service')), ['Warning:ServiceNotRestored']);
  t.like(first.status.conditions?.find((c) => c.type === 'CutOver'), { status: 'False', reason: REASONS.ServiceNotRestored });
  t.like(first.status.steps?.find((s) => s.step === 'restore'), { outcome: 'Succeeded', reason: REASONS.ServiceNotRestored });
  const rollbackJob = (state: ObservedJob['state']): ObservedJob[] => [{ name: 'orders-g1-rollback', step: 'rollback', runId: 'g1', state, ...(state === 'Succeeded' ? { result: { version: '0' } } : {}) }];
  const running = decideAs(after(m, first), { service: byHand, jobs: rollbackJob('Running') });
  t.deepEqual(events(running).filter((e) => e.includes('Service')), [], 'said once');
  const done = decideAs(after(m, running), { service: byHand, jobs: rollbackJob('Succeeded') });
  t.is(done.status.phase, 'RolledBack');
  t.deepEqual(patches(done), []);
  t.regex(done.status.message ?? '', /rolled back: target rolled back \(DownMigrations\); Service orders-api selects app=orders,track=green \(toSelector\), but this migration did not switch it/);
});

test('rollback restores a Service only by this migration\'s record; another DataMigration\'s switch stays', (t) => {
  const m = migration('RollingBack');
  const theirs = switchedService(BLUE, CUTOVER, { name: 'billing', uid: 'uid-billing', runId: 'g1' });
  const left = decideAs(m, { service: theirs });
  t.deepEqual(patches(left), []);
  t.is(left.status.phase, 'RolledBack');
  const mine = switchedService(BLUE, CUTOVER, ME);
  const restoring = decideAs(m, { service: mine });
  t.deepEqual(patches(restoring).map((p) => [p.selector, p.annotations[SWITCH_RECORD.uid]]), [[BLUE, null]]);
  t.is(restoring.status.phase, 'RollingBack', 'done only once the restore is seen');
});
