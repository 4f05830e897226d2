// Conditions and the phase are for people, never the phase machine's memory: a status taken
// mid-run, its conditions scrambled (statuses, reasons, messages, transition times) and its phase
// changed, decides exactly as the original does (the phase is computed from the ledger, phase-of.ts). What must be remembered lives in the ledger (status.steps), status.waitingSince
// (the preflight's backoff) and status.announced (the Ready change last announced by an Event).
import { readFileSync } from 'node:fs';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { APPROVE_ANNOTATION, PHASES, REASONS, RETRY_ANNOTATION } from '../../src/api/constants.ts';
import type { Step } from '../../src/api/constants.ts';
import type { Condition, DataMigration, DataMigrationSpec, DataMigrationStatus } from '../../src/api/types.generated.ts';
import { decide, preflightNeeded, recordRejectedJob } from '../../src/controller/decide.ts';
import type { DecideInput, Decision, MissingObject, ObservedJob, ObservedService } from '../../src/controller/decide.ts';
import { afterPatch, observedService } from '../support/cutover-service.ts';

const at = (seconds: number): string => new Date(Date.parse('2025-01-01T00:00:00Z') + seconds * 1000).toISOString();
const BLUE = { app: 'orders', track: 'blue' };
const GREEN = { app: 'orders', track: 'green' };
const MISSING: MissingObject[] = [{ kind: 'Secret', name: 'orders-pg' }];

function migration(spec: Partial<DataMigrationSpec> = {}, annotations?: Record<string, string>): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', generation: 1, ...(annotations ? { annotations } : {}) },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } },
      target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' }, ...spec,
    },
  };
}

interface Observe { jobs?: ObservedJob[]; missing?: MissingObject[]; selector?: Record<string, string>; service?: ObservedService; now: string }

function decideAsReconciler(m: DataMigration, observe: Observe): Decision {
  const service = observe.service ?? (observe.selector ? observedService(observe.selector) : undefined);
  const base: Omit<DecideInput, 'preflight'> = { migration: m, jobs: observe.jobs ?? [], now: observe.now, ...(service ? { service } : {}) };
  return decide(preflightNeeded(base) ? { ...base, preflight: { missing: observe.missing ?? [] } } : base);
}

const job = (step: Step, state: ObservedJob['state'], result?: unknown, extra: Partial<ObservedJob> = {}): ObservedJob => ({
  name: `orders-g1-${step}`, step, runId: 'g1', state, ...(result !== undefined ? { result } : {}), ...extra,
});

const ROTATE: Record<Condition['status'], Condition['status']> = { True: 'False', False: 'Unknown', Unknown: 'True' };

/** Every condition turned into nonsense a decision must not read (another status, reason, message and time), and another phase. */
function scrambled(m: DataMigration): DataMigration {
  const copy = structuredClone(m);
  const status: DataMigrationStatus = copy.status ?? {};
  status.conditions = (status.conditions ?? []).map((c, i) => ({
    ...c, status: ROTATE[c.status], reason: i % 2 === 0 ? REASONS.JobRejected : REASONS.SecretNotFound, message: 'scrambled', lastTransitionTime: '1999-12-31T23:59:59Z',
  }));
  // The phase too: it is computed from the ledger, never read back.
  status.phase = PHASES[(PHASES.indexOf(status.phase ?? 'Pending') + 3) % PHASES.length];
  copy.status = status;
  return copy;
}

/** The same decision with the original status and with its conditions scrambled. */
function assertConditionsAreNotMemory(t: ExecutionContext, m: DataMigration, observe: Observe, label: string): Decision {
  const original = decideAsReconciler(m, observe);
  const other = decideAsReconciler(scrambled(m), observe);
  t.deepEqual(other.actions, original.actions, `${label}: the same actions`);
  t.is(other.requeueAfterSeconds, original.requeueAfterSeconds, `${label}: the same requeue`);
  for (const field of ['phase', 'steps', 'runId', 'waitingSince', 'announced', 'message'] as const) {
    t.deepEqual(other.status[field], original.status[field], `${label}: the same status.${field}`);
  }
  return original;
}

const after = (m: DataMigration, d: Decision): DataMigration => ({ ...m, status: d.status });

/** A copy with these annotations (V1ObjectMeta is a class type, so no spreading). */
function annotated(m: DataMigration, annotations: Record<string, string>): DataMigration {
  const copy = structuredClone(m);
  copy.metadata ??= {};
  copy.metadata.annotations = annotations;
  return copy;
}

test('a run taken at every stop, its conditions scrambled, decides as the original does', (t) => {
  const spec: Partial<DataMigrationSpec> = {
    schema: { createMissingTables: true },
    cutover: { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual' },
  };
  let m = migration(spec);
  // Waiting for a Secret: twice, so the backoff has a wait to grow from.
  m = after(m, assertConditionsAreNotMemory(t, m, { missing: MISSING, selector: BLUE, now: at(0) }, 'preflight'));
  m = after(m, assertConditionsAreNotMemory(t, m, { missing: MISSING, selector: BLUE, now: at(100) }, 'preflight again'));
  t.is(m.status?.waitingSince, at(0));
  const jobs: ObservedJob[] = [];
  const observe = (seconds: number): Observe => ({ jobs: [...jobs], selector: BLUE, now: at(seconds) });
  m = after(m, assertConditionsAreNotMemory(t, m, observe(200), 'schema requested'));
  t.is(m.status?.waitingSince, undefined, 'the wait is over');
  m = after(m, assertConditionsAreNotMemory(t, m, observe(210), 'schema asked for, not seen'));
  jobs.push(job('schema', 'Running'));
  m = after(m, assertConditionsAreNotMemory(t, m, observe(220), 'schema running'));
  jobs[0] = job('schema', 'Succeeded', { versionBefore: null, version: '1' });
  m = after(m, assertConditionsAreNotMemory(t, m, observe(230), 'schema done, copy requested'));
  jobs.push(job('copy', 'Running'));
  m = after(m, assertConditionsAreNotMemory(t, m, observe(240), 'copy running'));
  jobs[1] = job('copy', 'Succeeded', { tables: [{ name: 'a', rowsCopied: 1 }] });
  m = after(m, assertConditionsAreNotMemory(t, m, observe(250), 'copy done, validation requested'));
  jobs.push(job('validate', 'Succeeded', { passed: true }));
  m = after(m, assertConditionsAreNotMemory(t, m, observe(260), 'validated, awaiting approval'));
  t.is(m.status?.phase, 'AwaitingApproval');
  m = after(m, assertConditionsAreNotMemory(t, m, observe(270), 'still awaiting approval'));
  m = annotated(m, { [APPROVE_ANNOTATION]: 'true' });
  const requested = assertConditionsAreNotMemory(t, m, observe(280), 'approved: switch requested');
  const patch = requested.actions.find((a) => a.kind === 'patchServiceSelector');
  if (patch?.kind !== 'patchServiceSelector') throw new Error('no switch');
  const switched = afterPatch(observedService(BLUE), patch);
  m = after(m, requested);
  m = after(m, assertConditionsAreNotMemory(t, m, observe(290), 'switch asked for, not seen'));
  const done = assertConditionsAreNotMemory(t, m, { ...observe(300), service: switched }, 'switch seen');
  t.is(done.status.phase, 'Succeeded');
  t.deepEqual(done.status.activeSelector, GREEN);
  assertConditionsAreNotMemory(t, after(m, done), { ...observe(400), service: switched }, 'succeeded');
});

test('a failed step and its retry, conditions scrambled, decide as the original does', (t) => {
  let m = migration();
  m = after(m, decideAsReconciler(m, { now: at(0) }));
  const failed = job('copy', 'Failed', undefined, { exitCode: 1, failureMessage: 'BackoffLimitExceeded: connection refused' });
  m = after(m, assertConditionsAreNotMemory(t, m, { jobs: [failed], now: at(10) }, 'copy failed'));
  t.is(m.status?.phase, 'Failed');
  m = after(m, assertConditionsAreNotMemory(t, m, { jobs: [failed], now: at(20) }, 'failed, nothing asked'));
  m = annotated(m, { [RETRY_ANNOTATION]: '1' });
  const retried = assertConditionsAreNotMemory(t, m, { jobs: [failed], now: at(30) }, 'retry');
  t.deepEqual(retried.actions.filter((a) => a.kind === 'createJob'), [{ kind: 'createJob', step: 'copy', runId: 'g1-r1' }]);
});

test('the preflight backoff grows from status.waitingSince, whatever Ready\'s transition time says', (t) => {
  let m = migration();
  const first = decideAsReconciler(m, { missing: MISSING, now: at(0) });
  t.is(first.requeueAfterSeconds, 30);
  t.is(first.status.waitingSince, at(0));
  m = after(m, first);
  // Ready's transition time is for people: moved to a moment ago, the wait is still 200 s.
  const ready = m.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready) ready.lastTransitionTime = at(199);
  t.is(decideAsReconciler(m, { missing: MISSING, now: at(200) }).requeueAfterSeconds, 200);
  t.is(decideAsReconciler(m, { missing: MISSING, now: at(1000) }).requeueAfterSeconds, 300, 'bounded');
  const started = decideAsReconciler(m, { now: at(1000) });
  t.is(started.status.waitingSince, undefined);
  t.deepEqual(started.actions.filter((a) => a.kind === 'createJob'), [{ kind: 'createJob', step: 'copy', runId: 'g1' }]);
});

test('a Ready change is announced once, as status.announced remembers, whatever Ready now says', (t) => {
  let m = migration();
  const first = decideAsReconciler(m, { missing: MISSING, now: at(0) });
  t.deepEqual(first.actions.filter((a) => a.kind === 'event').map((a) => a.reason), [REASONS.SecretNotFound]);
  t.is(first.status.announced, `False/${REASONS.SecretNotFound}`);
  m = after(m, first);
  // Ready edited to say something else: the same missing Secret is not announced again.
  const ready = m.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready) ready.reason = REASONS.JobRunning;
  t.deepEqual(decideAsReconciler(m, { missing: MISSING, now: at(60) }).actions, []);
  // A refused Job: announced once, remembered in status.announced.
  const asked = decideAsReconciler(m, { now: at(120) });
  const refused = recordRejectedJob(after(m, asked), asked, { step: 'copy', runId: 'g1', message: 'quota exceeded' }, at(120));
  t.deepEqual(refused.actions.map((a) => a.kind === 'event' && a.reason), [REASONS.JobRejected]);
  t.is(refused.status.announced, `False/${REASONS.JobRejected}`);
  const again = recordRejectedJob(after(m, refused), asked, { step: 'copy', runId: 'g1', message: 'quota exceeded' }, at(180));
  t.deepEqual(again.actions, [], 'the same refusal is not announced twice');
});

test('a status written before status.announced and status.waitingSince takes them from its conditions once', (t) => {
  const m = migration();
  const status: DataMigrationStatus = {
    phase: 'Pending', observedGeneration: 1,
    conditions: [{ type: 'Ready', status: 'False', reason: REASONS.SecretNotFound, message: 'the migration waits for: Secret "orders-pg" not found', lastTransitionTime: at(0) }],
  };
  const d = decideAsReconciler({ ...m, status }, { missing: MISSING, now: at(120) });
  t.deepEqual(d.actions, [], 'the missing Secret was announced by the earlier version');
  t.is(d.status.waitingSince, at(0));
  t.is(d.requeueAfterSeconds, 120, 'the wait goes on from when the earlier version began it');
  t.is(d.status.announced, `False/${REASONS.SecretNotFound}`);
});

// Statuses the version with the ledger but before status.announced/waitingSince wrote (generated
// with that version's decide(), then these fields removed): they go on without a repeated Event.
interface Fixture { name: string; migration: DataMigration }
const BEFORE_ANNOUNCED = JSON.parse(readFileSync(new URL('../fixtures/controller/status-before-announced.json', import.meta.url), 'utf8')) as Fixture[];

test('the fixtures were written without the memory fields', (t) => {
  t.is(BEFORE_ANNOUNCED.length, 3);
  t.true(BEFORE_ANNOUNCED.every((f) => f.migration.status?.announced === undefined && f.migration.status?.waitingSince === undefined));
});

for (const fixture of BEFORE_ANNOUNCED) {
  test(`an upgraded status goes on without announcing again: ${fixture.name}`, (t) => {
    const observe: Observe = fixture.name.startsWith('Pending')
      ? { missing: MISSING, now: at(120) }
      // A refused Job is asked for again a minute after the refusal (REQUEUE.jobRejected).
      : { jobs: fixture.name.includes('running') ? [job('copy', 'Running')] : [], now: fixture.name.includes('refused') ? at(60) : at(30) };
    const d = decideAsReconciler(fixture.migration, observe);
    const readyBefore = fixture.migration.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
    if (fixture.name.includes('refused')) {
      // Asked for again (a reconcile a minute after a refusal): the new request is news, the refusal is not.
      t.deepEqual(d.actions.map((a) => (a.kind === 'event' ? a.reason : a.kind)), ['createJob', REASONS.JobRunning]);
      // Refused again: the reconciler records it against the status as stored (the older one).
      const again = recordRejectedJob(fixture.migration, d, { step: 'copy', runId: 'g1', message: 'HTTP 403 Forbidden: exceeded quota: jobs' }, at(60));
      t.deepEqual(again.actions, [], 'the refusal the earlier version announced is not announced again');
      t.is(again.status.announced, `False/${REASONS.JobRejected}`);
      return;
    }
    t.deepEqual(d.actions.filter((a) => a.kind === 'event'), [], 'what the earlier version announced is not announced again');
    t.is(d.status.announced, `False/${String(readyBefore)}`);
    if (fixture.name.startsWith('Pending')) {
      t.is(d.status.waitingSince, '2025-01-01T00:00:00.000Z');
      t.is(d.requeueAfterSeconds, 120);
    }
    // And from here on, its conditions are not memory.
    assertConditionsAreNotMemory(t, { ...fixture.migration, status: d.status }, { ...observe, now: at(200) }, fixture.name);
  });
}
