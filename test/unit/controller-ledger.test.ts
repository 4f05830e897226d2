// The step ledger (status.steps): how it records a run, and the upgrade from a status written
// before it existed. test/fixtures/controller/status-before-ledger.json holds statuses the
// previous version's decide() wrote in every non-terminal phase (and in retryable Failed ones),
// each with the observation that came next and what that version decided then: the ledger
// derived from such a status must lead to the same decision.
import { readFileSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { REASONS } from '../../src/api/constants.ts';
import type { DataMigration, DataMigrationStatus, StepRecord } from '../../src/api/types.generated.ts';
import { setCondition } from '../../src/controller/conditions.ts';
import { decide, preflightNeeded, REQUEUE } from '../../src/controller/decide.ts';
import type { Action, Decision, DecideInput, ObservedJob, ObservedService } from '../../src/controller/decide.ts';
import { entryOf, ledgerFromConditions, retryPoint } from '../../src/controller/ledger.ts';
import { replaceSelector, selectsSide } from '../../src/controller/selectors.ts';
import { observedService, switchedService } from '../support/cutover-service.ts';

interface Fixture {
  label: string;
  migration: DataMigration;
  next: { jobs?: ObservedJob[]; missing?: { kind: 'Secret'; name: string }[]; selector?: Record<string, string>; now?: string };
  expected: Pick<Decision, 'actions' | 'requeueAfterSeconds'> & Pick<DataMigrationStatus, 'phase' | 'runId' | 'conditions' | 'jobs'>;
}

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/controller/status-before-ledger.json', import.meta.url), 'utf8')) as Fixture[];

/**
 * The version before asked for a refused Job again at once (a hot loop: controller-findings 1);
 * this one waits REQUEUE.jobRejected from the refusal, so that fixture is observed a minute after it.
 */
const nowOf = (f: Fixture): string => (f.label.includes('rejected by the API server') ? '2025-01-01T00:01:00Z' : f.next.now ?? '2025-01-01T00:00:00Z');

/**
 * The fixture's Service as this version sees it: opted in for the migration, and, where it selects
 * toSelector, carrying the migration's switch record (the version before switched without one; this
 * one counts a switch, and restores it, only by its record).
 */
function serviceOf(f: Fixture): ObservedService | undefined {
  const selector = f.next.selector;
  const cutover = f.migration.spec.cutover;
  if (selector === undefined || cutover === undefined) return undefined;
  const name = f.migration.metadata?.name ?? '';
  if (!selectsSide(selector, cutover.toSelector, cutover.fromSelector)) return observedService(selector, { optIn: name });
  return switchedService(replaceSelector(selector, cutover.toSelector, cutover.fromSelector), cutover, { name, uid: f.migration.metadata?.uid ?? '', runId: f.migration.status?.runId ?? 'g1' });
}

/** A Service patch as its name and selector (the record it carries: controller-service-switch.test.ts). */
const normalised = (actions: readonly Action[]): unknown[] => actions.map((a) => (a.kind === 'patchServiceSelector' ? { kind: a.kind, service: a.service, selector: a.selector } : a));

function decideAsReconciler(f: Fixture): Decision {
  const service = serviceOf(f);
  const base: Omit<DecideInput, 'preflight'> = {
    migration: f.migration, jobs: f.next.jobs ?? [], now: nowOf(f), ...(service ? { service } : {}),
  };
  return decide(preflightNeeded(base) ? { ...base, preflight: { missing: f.next.missing ?? [], deploymentReady: true } } : base);
}

test('the fixtures cover every non-terminal phase and the retryable failures', (t) => {
  const phases = new Set(fixtures.map((f) => f.migration.status?.phase));
  for (const phase of ['Pending', 'SchemaMigrating', 'Copying', 'Syncing', 'Validating', 'AwaitingApproval', 'CuttingOver', 'RollingBack', 'Failed']) {
    t.true(phases.has(phase as DataMigrationStatus['phase']), phase);
  }
  t.true(fixtures.every((f) => f.migration.status?.steps === undefined), 'written before the ledger');
});

/**
 * Decisions this version changed on purpose: the version before restored, on abort, a Service whose
 * switch it had sent moments before and not yet seen, whatever the Service then selected; this one
 * waits up to SWITCH_GRACE_SECONDS to see whether the switch landed (it restores only its own).
 */
const CHANGED: Record<string, (t: ExecutionContext, d: Decision) => void> = {
  'CuttingOver: switch requested, abort': (t, d) => {
    t.is(d.status.phase, 'CuttingOver');
    t.deepEqual(d.actions.filter((a) => a.kind !== 'event'), []);
    t.is(d.requeueAfterSeconds, REQUEUE.switching);
    t.regex(d.status.message ?? '', /^Aborting: waiting up to 30 s to see whether the switch of Service orders-api/);
  },
};

for (const f of fixtures) {
  const changed = CHANGED[f.label];
  test(`upgrade: ${f.label}: ${changed ? 'as this version decides it' : 'the same decision as the version before'}`, (t) => {
    const d = decideAsReconciler(f);
    if (changed) {
      changed(t, d);
      return;
    }
    t.is(d.status.phase, f.expected.phase);
    t.is(d.status.runId, f.expected.runId);
    t.deepEqual(normalised(d.actions), f.expected.actions);
    // This version adds the kstatus conditions (Reconciling, Stalled) on purpose; the rest is as before.
    t.deepEqual(d.status.conditions?.filter((c) => c.type !== 'Reconciling' && c.type !== 'Stalled'), f.expected.conditions);
    t.deepEqual(d.status.conditions?.filter((c) => c.type === 'Reconciling' || c.type === 'Stalled').map((c) => c.type), ['Reconciling', 'Stalled']);
    t.deepEqual(d.status.jobs, f.expected.jobs);
    t.is(d.requeueAfterSeconds, f.expected.requeueAfterSeconds);
    if (d.status.phase !== 'Pending') t.true((d.status.steps?.length ?? 0) > 0, 'the ledger is written from then on');
    // From then on the ledger is the memory: the same observation again is a fixed point.
    const again = decideAsReconciler({ ...f, migration: { ...f.migration, status: d.status } });
    t.deepEqual(again.actions.filter((a) => a.kind !== 'event' && a.kind !== 'createJob' && a.kind !== 'patchServiceSelector'), []);
    t.deepEqual(again.status.steps, d.status.steps);
    // The phase is the ledger's from then on (phase-of.ts): status.phase written wrong changes nothing.
    t.is(again.status.phase, d.status.phase);
    const wrongPhase = decideAsReconciler({ ...f, migration: { ...f.migration, status: { ...d.status, phase: d.status.phase === 'Copying' ? 'Validating' : 'Copying' } } });
    t.deepEqual(wrongPhase.actions, again.actions);
    t.is(wrongPhase.status.phase, again.status.phase);
  });
}

const T0 = '2025-01-01T00:00:00Z';
const cond = (type: 'Ready' | 'DataCopied' | 'CutOver' | 'Validated', status: 'True' | 'False' | 'Unknown', reason: string, message = 'm'): ReturnType<typeof setCondition>[number] =>
  setCondition([], { type, status, reason: reason as never, message }, T0)[0] ?? (() => { throw new Error('no condition'); })();

test('ledgerFromConditions: copy and sync told apart, requests keep their time, failures their reason', (t) => {
  const syncRunning: DataMigrationStatus = { phase: 'Syncing', runId: 'g1', startedAt: T0, conditions: [cond('DataCopied', 'Unknown', REASONS.JobRunning)], jobs: [{ step: 'copy', name: 'orders-g1-copy', state: 'Succeeded' }] };
  t.deepEqual(ledgerFromConditions(syncRunning, 'g1'), [
    { step: 'start', runId: 'g1', requestedAt: T0, outcome: 'Succeeded', finishedAt: T0 },
    { step: 'copy', runId: 'g1', job: 'orders-g1-copy', outcome: 'Succeeded' },
    { step: 'sync', runId: 'g1', requestedAt: T0 },
  ]);
  const copyFailed: DataMigrationStatus = { phase: 'Failed', runId: 'g1', conditions: [cond('Ready', 'False', REASONS.JobFailed), cond('DataCopied', 'False', REASONS.JobFailed, 'boom')] };
  t.like(entryOf({ steps: ledgerFromConditions(copyFailed, 'g1') }, 'copy'), { outcome: 'Failed', reason: REASONS.JobFailed, message: 'boom' });
  t.like(retryPoint({ ...copyFailed, steps: ledgerFromConditions(copyFailed, 'g1') }), { phase: 'Copying', step: 'copy' });
  const switching: DataMigrationStatus = { phase: 'CuttingOver', runId: 'g1', conditions: [cond('CutOver', 'False', REASONS.InProgress)] };
  t.deepEqual(ledgerFromConditions(switching, 'g1'), [{ step: 'switch', runId: 'g1', requestedAt: T0 }]);
  const abortedBeforeStart: DataMigrationStatus = { phase: 'Failed', conditions: [cond('Ready', 'False', REASONS.Aborted)] };
  t.like(retryPoint({ ...abortedBeforeStart, steps: ledgerFromConditions(abortedBeforeStart, 'g1') }), { phase: 'Pending', entry: 'start' });
  const validationFailed: DataMigrationStatus = { phase: 'Failed', conditions: [cond('Ready', 'False', REASONS.ValidationFailed), cond('Validated', 'False', REASONS.ValidationFailed)] };
  t.is(retryPoint({ ...validationFailed, steps: ledgerFromConditions(validationFailed, 'g1') }), undefined, 'a validation failure is not retried');
});

test('a run in the ledger: each step requested, seen and ended once; the memory is the ledger, not the conditions', (t) => {
  const base: DataMigration = {
    metadata: { name: 'orders', namespace: 'shop', uid: 'u', generation: 1 },
    spec: { source: { engine: 'mysql', secretRef: { name: 's', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 't', key: 'url' } }, strategy: { type: 'BigBang' } },
  };
  const at = (seconds: number): string => new Date(Date.parse(T0) + seconds * 1000).toISOString();
  const run = (m: DataMigration, jobs: ObservedJob[], now: string): DataMigration => {
    const d = decide({ migration: m, jobs, now, preflight: { missing: [] } });
    return { ...m, status: d.status };
  };
  let m = run(base, [], at(0));
  t.deepEqual(m.status?.steps, [
    { step: 'start', runId: 'g1', outcome: 'Succeeded', finishedAt: at(0) },
    { step: 'copy', runId: 'g1', requestedAt: at(0), job: 'orders-g1-copy' },
  ] satisfies StepRecord[]);
  // Conditions are for people: scribbling on them changes no decision.
  const scribbled: DataMigration = { ...m, status: { ...m.status, conditions: [] } };
  t.deepEqual(decide({ migration: scribbled, jobs: [], now: at(10), preflight: { missing: [] } }).actions.filter((a) => a.kind === 'createJob'), [], 'still waits for the requested Job');
  m = run(m, [{ name: 'orders-g1-copy', step: 'copy', runId: 'g1', state: 'Running' }], at(5));
  m = run(m, [{ name: 'orders-g1-copy', step: 'copy', runId: 'g1', state: 'Failed', exitCode: 3, failureMessage: 'PodFailurePolicy: plan refused' }], at(20));
  t.is(m.status?.phase, 'Failed');
  t.like(entryOf(m.status ?? {}, 'copy'), { outcome: 'Failed', reason: REASONS.PlanRefused, exitCode: 3, requestedAt: at(0), finishedAt: at(20) });
  t.is(m.status?.conditions?.find((c) => c.type === 'Ready')?.reason, REASONS.PlanRefused, 'exit 3 is PlanRefused');
});
