// The controller's pure decision function: every transition of the phase machine, driven directly.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { ABORT_ANNOTATION, APPROVE_ANNOTATION, REASONS, RETRY_ANNOTATION } from '../../src/api/constants.ts';
import type { ConditionType, Phase, Reason, Step } from '../../src/api/constants.ts';
import type { Condition, DataMigration, DataMigrationSpec, DataMigrationStatus, SchemaSpec } from '../../src/api/types.generated.ts';
import { STATUS_LIMITS } from '../../src/api/datamigration-schema.ts';
import { dataMigrationCrd } from '../../src/api/crd.ts';
import { findCondition, removeCondition, setCondition } from '../../src/controller/conditions.ts';
import { baseRunId, isAbortRequested, retryToken } from '../../src/controller/annotations.ts';
import { decide, JOB_APPEAR_GRACE_SECONDS, preflightNeeded, recordRejectedJob } from '../../src/controller/decide.ts';
import type { Action, DecideInput, Decision, MissingObject, ObservedJob, ObservedService } from '../../src/controller/decide.ts';
import { replaceSelector, selectsSide } from '../../src/controller/selectors.ts';
import { parseCopyResult, parseSchemaResult, parseValidationResult } from '../../src/controller/step-results.ts';
import { afterPatch, observedService, switchedService } from '../support/cutover-service.ts';

const T0 = '2025-01-01T00:00:00Z';
const T1 = '2025-01-01T00:00:10Z';
const T2 = '2025-01-01T00:05:00Z';
const LATER = '2025-01-01T01:00:00Z';

const BLUE = { app: 'orders', track: 'blue' };
const GREEN = { app: 'orders', track: 'green' };

function baseSpec(): DataMigrationSpec {
  return {
    source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } },
    target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
    strategy: { type: 'BigBang' },
    validation: {},
    rollback: {},
  };
}

function migration(spec: Partial<DataMigrationSpec> = {}, options: { generation?: number; status?: DataMigrationStatus; annotations?: Record<string, string> } = {}): DataMigration {
  const m: DataMigration = {
    apiVersion: 'dataops.dev/v1alpha1',
    kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', generation: options.generation ?? 1 },
    spec: { ...baseSpec(), ...spec },
  };
  if (options.annotations && m.metadata) m.metadata.annotations = options.annotations;
  if (options.status) m.status = options.status;
  return m;
}

const cutover = (approval: 'Automatic' | 'Manual' = 'Automatic', extra: Partial<NonNullable<DataMigrationSpec['cutover']>> = {}): Partial<DataMigrationSpec> => ({
  cutover: { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval, ...extra },
});

interface Observe {
  jobs?: ObservedJob[];
  missing?: MissingObject[];
  deploymentReady?: boolean;
  /** The cutover Service's selector (opted in for orders, no switch record); `service` gives the whole Service. */
  selector?: Record<string, string>;
  service?: ObservedService;
  now?: string;
}

function input(m: DataMigration, observe: Observe = {}): DecideInput {
  const out: DecideInput = {
    migration: m,
    jobs: observe.jobs ?? [],
    preflight: { missing: observe.missing ?? [], ...(observe.deploymentReady !== undefined ? { deploymentReady: observe.deploymentReady } : {}) },
    now: observe.now ?? T0,
  };
  if (observe.service) out.service = observe.service;
  else if (observe.selector) out.service = observedService(observe.selector);
  return out;
}

/**
 * Decides as the reconciler does (with the preflight's findings only when preflightNeeded says
 * something may start: a decision that starts something without them throws), and returns the
 * decision with the migration as it would be after the status write.
 */
function step(m: DataMigration, observe: Observe = {}): { d: Decision; m: DataMigration } {
  const { preflight, ...withoutPreflight } = input(m, observe);
  const d = decide(preflightNeeded(withoutPreflight) && preflight ? { ...withoutPreflight, preflight } : withoutPreflight);
  return { d, m: { ...m, status: d.status } };
}

function job(step: Step, state: ObservedJob['state'], result?: unknown, extra: Partial<ObservedJob> = {}): ObservedJob {
  const out: ObservedJob = { name: `orders-g1-${step}`, step, runId: 'g1', state, ...extra };
  if (result !== undefined) out.result = result;
  return out;
}

/** A copy with metadata changed (V1ObjectMeta is a class type, so no spreading). */
function withMeta(m: DataMigration, meta: { generation?: number; annotations?: Record<string, string> }): DataMigration {
  const copy = structuredClone(m);
  copy.metadata ??= {};
  if (meta.generation !== undefined) copy.metadata.generation = meta.generation;
  if (meta.annotations !== undefined) copy.metadata.annotations = meta.annotations;
  return copy;
}

const kinds = (d: Decision): string[] => d.actions.map((a) => (a.kind === 'event' ? `event:${a.type}:${a.reason}` : a.kind === 'createJob' ? `createJob:${a.step}` : a.kind));
/** The actions besides Events; a Service patch as its name and new selector (its record: controller-service-switch.test.ts). */
const nonEvents = (d: Decision): unknown[] => d.actions.filter((a) => a.kind !== 'event')
  .map((a) => (a.kind === 'patchServiceSelector' ? { kind: a.kind, service: a.service, selector: a.selector } : a));
const patchOf = (d: Decision): Extract<Action, { kind: 'patchServiceSelector' }> => {
  const found = d.actions.find((a) => a.kind === 'patchServiceSelector');
  if (found?.kind !== 'patchServiceSelector') throw new Error('no Service patch');
  return found;
};
const CUTOVER_SPEC = { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
/** The cutover Service as this migration's switch left it (its record). */
const SWITCHED = (): ObservedService => switchedService(BLUE, CUTOVER_SPEC, ORDERS);
/** The migration of these tests, as the switch record names it. */
const ORDERS = { name: 'orders', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', runId: 'g1' };
const creates = (d: Decision): Step[] => d.actions.flatMap((a) => (a.kind === 'createJob' ? [a.step] : []));
const cond = (d: Decision | DataMigration, type: ConditionType): Condition | undefined => findCondition(d.status?.conditions, type);

/** Feeding the output back with the same observations produces no actions and the same status. */
function assertIdempotent(t: ExecutionContext, m: DataMigration, observe: Observe, label: string): void {
  const again = decide(input(m, observe));
  t.deepEqual(again.actions, [], `${label}: no new actions`);
  t.deepEqual(again.status, m.status, `${label}: status is a fixed point`);
}

/** Walks a migration until it is in `phase` (happy path), returning the migration there. */
function walkTo(spec: Partial<DataMigrationSpec>, phase: Phase, annotations?: Record<string, string>): DataMigration {
  let m = migration(spec, annotations ? { annotations } : {});
  const jobs: ObservedJob[] = [];
  const results: Record<Step, unknown> = {
    schema: { versionBefore: '0', version: '2' },
    copy: { tables: [{ name: 'orders', rowsCopied: 10 }] },
    sync: { rounds: 2, rowsSynced: 3 },
    validate: { passed: true, summary: '2/2 checks passed' },
    fence: { fenced: true },
    catchup: { fencePosition: '0/1', validation: { passed: true } },
    unfence: { unfenced: true },
    release: { released: true },
    rollback: {},
  };
  for (let i = 0; i < 10 && (m.status?.phase ?? 'Pending') !== phase; i++) {
    const { d, m: next } = step(m, { jobs, selector: BLUE });
    m = next;
    if (m.status?.phase === phase) break;
    for (const s of creates(d)) jobs.push(job(s, 'Succeeded', results[s]));
  }
  return m;
}

// ---- starting -------------------------------------------------------------------------------

test('first reconcile: Pending → Copying (no schema step), copy Job created, conditions initialised, observedGeneration stamped', (t) => {
  const { d } = step(migration({}, { generation: 3 }));
  t.is(d.status.phase, 'Copying');
  t.is(d.status.runId, 'g3');
  t.is(d.status.startedAt, T0);
  t.is(d.status.observedGeneration, 3);
  t.deepEqual(creates(d), ['copy']);
  t.deepEqual(d.actions.find((a) => a.kind === 'createJob'), { kind: 'createJob', step: 'copy', runId: 'g3' });
  t.deepEqual(d.status.conditions?.map((c) => c.type), ['Ready', 'Reconciling', 'Stalled', 'SchemaReady', 'DataCopied', 'Validated']);
  t.true(d.status.conditions?.every((c) => c.observedGeneration === 3));
  t.is(cond(d, 'SchemaReady')?.reason, REASONS.NotRequired);
  t.is(cond(d, 'SchemaReady')?.status, 'True');
  t.is(cond(d, 'DataCopied')?.reason, REASONS.JobRunning);
  t.is(cond(d, 'Ready')?.status, 'False');
  t.true(kinds(d).includes('event:Normal:Copying'));
  t.is(typeof d.requeueAfterSeconds, 'number');
});

const schemaCases: [string, SchemaSpec][] = [
  ['inline migrations', { migrations: [{ version: '1', description: 'init', up: 'CREATE TABLE t (id int)' }] }],
  ['a ConfigMap of migrations', { configMapRef: { name: 'orders-schema' } }],
  ['createMissingTables', { createMissingTables: true }],
];
for (const [label, schema] of schemaCases) {
  test(`schema step runs for ${label}: Pending → SchemaMigrating`, (t) => {
    const { d } = step(migration({ schema }));
    t.is(d.status.phase, 'SchemaMigrating');
    t.deepEqual(creates(d), ['schema']);
    t.is(cond(d, 'SchemaReady')?.status, 'False');
    t.is(cond(d, 'SchemaReady')?.reason, REASONS.JobRunning);
  });
}

test('a schema spec with nothing to run (only historyTable) skips the schema step', (t) => {
  const { d } = step(migration({ schema: { historyTable: 'h' } }));
  t.is(d.status.phase, 'Copying');
  t.deepEqual(creates(d), ['copy']);
});

test('invalid spec (Trickle without incremental): stays Pending with InvalidSpec, nothing created', (t) => {
  const { d, m } = step(migration({ strategy: { type: 'Trickle' } }));
  t.is(d.status.phase, 'Pending');
  t.deepEqual(nonEvents(d), []);
  t.is(cond(d, 'Ready')?.reason, REASONS.InvalidSpec);
  t.true(kinds(d).includes('event:Warning:InvalidSpec'));
  assertIdempotent(t, m, {}, 'invalid spec');
});

// ---- the happy paths ------------------------------------------------------------------------

test('schema Job running: wait (requeue), no new Job; the Job is recorded in status', (t) => {
  const { m } = step(migration({ schema: { createMissingTables: true } }));
  const { d } = step(m, { jobs: [job('schema', 'Running')], now: T1 });
  t.deepEqual(d.actions, []);
  t.is(d.status.phase, 'SchemaMigrating');
  t.is(d.requeueAfterSeconds, 30);
  t.deepEqual(d.status.jobs, [{ step: 'schema', name: 'orders-g1-schema', state: 'Running' }]);
  t.regex(d.status.message ?? '', /orders-g1-schema is running/);
});

test('schema Job succeeded: versions recorded, SchemaReady True, → Copying with a copy Job', (t) => {
  const { m } = step(migration({ schema: { configMapRef: { name: 'cm' } } }));
  const { d } = step(m, { jobs: [job('schema', 'Succeeded', { versionBefore: '1', version: '3', createdTables: ['orders'] })], now: T1 });
  t.is(d.status.phase, 'Copying');
  t.deepEqual(d.status.schema, { versionBefore: '1', version: '3', createdTables: ['orders'] });
  t.is(cond(d, 'SchemaReady')?.status, 'True');
  t.is(cond(d, 'SchemaReady')?.reason, REASONS.Succeeded);
  t.deepEqual(creates(d), ['copy']);
});

test('copy Job succeeded (BigBang): tables and progress recorded, DataCopied True, → Validating with a validate Job', (t) => {
  const { m } = step(migration());
  const result = { tables: [{ name: 'orders', target: 'orders', rowsCopied: 900 }, { name: 'items', rowsCopied: 100 }] };
  const { d } = step(m, { jobs: [job('copy', 'Succeeded', result)], now: T1 });
  t.is(d.status.phase, 'Validating');
  t.deepEqual(creates(d), ['validate']);
  t.is(cond(d, 'DataCopied')?.status, 'True');
  t.deepEqual(d.status.tables, [
    { name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 900 },
    { name: 'items', state: 'Copied', rowsCopied: 100 },
  ]);
  t.like(d.status.progress, { tablesTotal: 2, tablesDone: 2, rowsCopied: 1000, percent: 100, updatedAt: T1 });
});

test('a copy with zero dates made NULL and plan warnings: one Warning Event (CopyNotices) naming them, then Validating', (t) => {
  const { m } = step(migration());
  const warnings = Array.from({ length: 10 }, (_, i) => `orders.c${String(i)}: double precision → float is lossy`);
  const result = { tables: [{ name: 'orders', rowsCopied: 10 }], zeroDates: { 'orders.created': 3, 'orders.shipped': 0, 'items.made': 2 }, warnings };
  const { d, m: after } = step(m, { jobs: [job('copy', 'Succeeded', result)], now: T1 });
  t.is(d.status.phase, 'Validating');
  const notices = d.actions.filter((a) => a.kind === 'event' && a.reason === REASONS.CopyNotices);
  t.is(notices.length, 1);
  const text = notices[0]?.kind === 'event' ? notices[0].message : '';
  t.regex(text, /5 MySQL zero date\(s\) stored as NULL \(orders\.created: 3, items\.made: 2\)/);
  t.true(text.includes('orders.c7: double precision'));
  t.false(text.includes('orders.c8:'), 'at most 8 warnings named');
  t.true(text.includes('2 more warning(s)'));
  t.is(notices[0]?.kind === 'event' ? notices[0].type : '', 'Warning');
  // Said once: the next reconcile (validate Job running) does not repeat it.
  const { d: later } = step(after, { jobs: [job('copy', 'Succeeded', result), job('validate', 'Running')], now: T2 });
  t.false(later.actions.some((a) => a.kind === 'event' && a.reason === REASONS.CopyNotices));
  // Nothing to say: no such Event.
  const { d: quiet } = step(m, { jobs: [job('copy', 'Succeeded', { tables: [] })], now: T1 });
  t.false(quiet.actions.some((a) => a.kind === 'event' && a.reason === REASONS.CopyNotices));
});

test('Trickle: copy → Syncing (sync Job), sync caught up → Validating; DataCopied False → Unknown → True', (t) => {
  const spec = { strategy: { type: 'Trickle' as const, incremental: { column: 'updated_at' } } };
  const { m: copying } = step(migration(spec));
  t.is(copying.status?.phase, 'Copying');
  const { d: toSync, m: syncing } = step(copying, { jobs: [job('copy', 'Succeeded', { tables: [] })], now: T1 });
  t.is(toSync.status.phase, 'Syncing');
  t.deepEqual(creates(toSync), ['sync']);
  t.is(cond(toSync, 'DataCopied')?.status, 'Unknown');
  t.is(cond(toSync, 'DataCopied')?.lastTransitionTime, T1, 'the sync request has its own transition time');
  assertIdempotent(t, syncing, { jobs: [job('copy', 'Succeeded', { tables: [] })], now: T1 }, 'syncing requested');
  const { d: running } = step(syncing, { jobs: [job('copy', 'Succeeded'), job('sync', 'Running')], now: T2 });
  t.deepEqual(running.actions, []);
  t.is(running.status.phase, 'Syncing');
  const { d: done } = step(syncing, { jobs: [job('copy', 'Succeeded'), job('sync', 'Succeeded', { rounds: 4, rowsSynced: 12 })], now: T2 });
  t.is(done.status.phase, 'Validating');
  t.deepEqual(creates(done), ['validate']);
  t.is(cond(done, 'DataCopied')?.status, 'True');
  t.regex(cond(done, 'DataCopied')?.message ?? '', /12 changed rows/);
});

test('validation passed, Automatic cutover: → CuttingOver and the selector is patched (other labels kept)', (t) => {
  const m = walkTo(cutover('Automatic'), 'Validating');
  const { d } = step(m, { jobs: [job('validate', 'Succeeded', { passed: true, checks: [{ name: 'orders', kind: 'RowCount', passed: true, source: 5, target: 5 }] })], selector: BLUE, now: T1 });
  t.is(d.status.phase, 'CuttingOver');
  t.is(cond(d, 'Validated')?.status, 'True');
  t.is(cond(d, 'Validated')?.reason, REASONS.ValidationPassed);
  t.like(d.status.validation, { passed: true, checkedAt: T1, summary: '1/1 checks passed' });
  t.deepEqual(d.status.validation?.checks, [{ name: 'orders', kind: 'RowCount', passed: true, source: '5', target: '5' }]);
  t.deepEqual(nonEvents(d), [{ kind: 'patchServiceSelector', service: 'orders-api', selector: GREEN }]);
  t.deepEqual(d.status.activeSelector, BLUE);
  t.is(d.status.active, 'app=orders,track=blue');
});

test('validation passed without cutover: → Succeeded, Ready True, completedAt', (t) => {
  const m = walkTo({}, 'Validating');
  const { d, m: done } = step(m, { jobs: [job('validate', 'Succeeded', { passed: true })], now: T1 });
  t.is(d.status.phase, 'Succeeded');
  t.is(d.status.completedAt, T1);
  t.is(cond(d, 'Ready')?.status, 'True');
  t.is(cond(d, 'Ready')?.reason, REASONS.Succeeded);
  t.true(kinds(d).includes('event:Normal:Succeeded'));
  assertIdempotent(t, done, { jobs: [job('validate', 'Succeeded', { passed: true })], now: T1 }, 'succeeded');
});

test('the bookkeeping tables the validate step found are named in status; a result without them leaves none', (t) => {
  const m = walkTo({}, 'Validating');
  const tables = ['dataops_copy_checkpoint', 'dataops_migration', 'dataops_schema_history'];
  const { d } = step(m, { jobs: [job('validate', 'Succeeded', { passed: true, bookkeeping: tables })], now: T1 });
  t.deepEqual(d.status.bookkeeping, tables);
  t.is(step(walkTo({}, 'Validating'), { jobs: [job('validate', 'Succeeded', { passed: true })], now: T1 }).d.status.bookkeeping, undefined);
  // Cut to the CRD's bound: a longer list would have every status write refused.
  const many = Array.from({ length: 20 }, (_, i) => `dataops_t${String(i).padStart(2, '0')}`);
  t.deepEqual(step(walkTo({}, 'Validating'), { jobs: [job('validate', 'Succeeded', { passed: true, bookkeeping: many })], now: T1 }).d.status.bookkeeping, many.slice(0, 16));
});

test('Manual approval: waits in AwaitingApproval without patching; the Service is untouched', (t) => {
  const m = walkTo(cutover('Manual'), 'Validating');
  const observe = { jobs: [job('validate', 'Succeeded', { passed: true })], selector: BLUE, now: T1 };
  const { d, m: waiting } = step(m, observe);
  t.is(d.status.phase, 'AwaitingApproval');
  t.deepEqual(nonEvents(d), []);
  t.is(cond(d, 'Ready')?.reason, REASONS.AwaitingApproval);
  t.regex(d.status.message ?? '', /dataops\.dev\/approve/);
  t.true(kinds(d).includes('event:Normal:AwaitingApproval'));
  t.is(d.requeueAfterSeconds, undefined);
  assertIdempotent(t, waiting, observe, 'awaiting approval');
});

for (const [label, value, generation, approved] of [
  ['"true"', 'true', 1, true],
  ['the current generation', '4', 4, true],
  ['an older generation', '3', 4, false],
  ['"false"', 'false', 1, false],
  ['"yes"', 'yes', 1, false],
] as const) {
  test(`approval annotation set to ${label}: ${approved ? 'cuts over' : 'keeps waiting'}`, (t) => {
    const m = walkTo(cutover('Manual'), 'AwaitingApproval');
    const annotated = withMeta(m, { generation, annotations: { [APPROVE_ANNOTATION]: value } });
    const { d } = step(annotated, { jobs: [job('validate', 'Succeeded', { passed: true })], selector: BLUE, now: T1 });
    t.is(d.status.phase, approved ? 'CuttingOver' : 'AwaitingApproval');
    t.is(d.actions.some((a) => a.kind === 'patchServiceSelector'), approved);
    t.is(d.status.observedGeneration, generation);
  });
}

test('cutover: patch once, wait while the switch is not observed, re-patch after the grace period, done when the Service shows the switch and its record', (t) => {
  const m = walkTo(cutover(), 'Validating');
  const jobs = [job('validate', 'Succeeded', { passed: true })];
  const { d: first, m: switching } = step(m, { jobs, selector: BLUE, now: T0 });
  t.is(first.actions.filter((a) => a.kind === 'patchServiceSelector').length, 1);
  t.is(cond(first, 'CutOver')?.reason, REASONS.InProgress);
  assertIdempotent(t, switching, { jobs, selector: BLUE, now: T1 }, 'switch requested, not yet observed');
  const { d: again } = step(switching, { jobs, selector: BLUE, now: T2 });
  t.deepEqual(nonEvents(again), [{ kind: 'patchServiceSelector', service: 'orders-api', selector: GREEN }], 'patched again after the grace period');
  const switched = afterPatch(observedService(BLUE), patchOf(first));
  const { d: done, m: succeeded } = step(switching, { jobs, service: switched, now: T1 });
  t.is(done.status.phase, 'Succeeded');
  t.is(cond(done, 'CutOver')?.status, 'True');
  t.is(cond(done, 'CutOver')?.reason, REASONS.ServiceSwitched);
  t.deepEqual(done.status.activeSelector, GREEN);
  t.is(done.status.active, 'app=orders,track=green');
  t.deepEqual(nonEvents(done), []);
  t.true(kinds(done).includes('event:Normal:ServiceSwitched'));
  assertIdempotent(t, succeeded, { jobs, service: switched, now: T1 }, 'succeeded after cutover');
});

test('cutover with a readiness gate waits for the Deployment, then switches', (t) => {
  const spec = cutover('Automatic', { readinessGate: { deployment: 'orders-green' } });
  const m = walkTo(spec, 'Validating');
  const jobs = [job('validate', 'Succeeded', { passed: true })];
  const { d: waiting, m: gated } = step(m, { jobs, selector: BLUE, deploymentReady: false, now: T1 });
  t.is(waiting.status.phase, 'CuttingOver');
  t.deepEqual(nonEvents(waiting), []);
  t.is(cond(waiting, 'Ready')?.reason, REASONS.DeploymentNotReady);
  t.true(kinds(waiting).includes('event:Warning:DeploymentNotReady'));
  t.is(waiting.requeueAfterSeconds, 15);
  const { d: ready } = step(gated, { jobs, selector: BLUE, deploymentReady: true, now: T2 });
  t.true(ready.actions.some((a) => a.kind === 'patchServiceSelector'));
});

test('full happy path with schema, Manual approval and cutover; every call is idempotent', (t) => {
  let m = migration({ schema: { createMissingTables: true }, ...cutover('Manual') });
  const jobs: ObservedJob[] = [];
  const phases: string[] = [];
  const results: Record<string, unknown> = { schema: { versionBefore: null, version: '1' }, copy: { tables: [{ name: 'a', rowsCopied: 1 }] }, validate: { passed: true } };
  let service = observedService(BLUE);
  for (let i = 0; i < 12; i++) {
    const { d, m: next } = step(m, { jobs, service, now: T0 });
    m = next;
    phases.push(m.status?.phase ?? '');
    assertIdempotent(t, m, { jobs, service, now: T0 }, `after ${m.status?.phase ?? ''}`);
    if (m.status?.phase === 'Succeeded') break;
    for (const s of creates(d)) jobs.push(job(s, 'Succeeded', results[s]));
    if (m.status?.phase === 'AwaitingApproval') m = withMeta(m, { annotations: { [APPROVE_ANNOTATION]: 'true' } });
    for (const a of d.actions) if (a.kind === 'patchServiceSelector') service = afterPatch(service, a);
  }
  t.deepEqual(phases, ['SchemaMigrating', 'Copying', 'Validating', 'AwaitingApproval', 'CuttingOver', 'Succeeded']);
  t.deepEqual(m.status?.jobs?.map((j) => `${j.step}:${j.state ?? ''}`), ['schema:Succeeded', 'copy:Succeeded', 'validate:Succeeded']);
  t.deepEqual(m.status?.conditions?.map((c) => `${c.type}=${c.status}`), ['Ready=True', 'Reconciling=False', 'Stalled=False', 'SchemaReady=True', 'DataCopied=True', 'Validated=True', 'CutOver=True']);
});

// ---- failures and rollback ------------------------------------------------------------------

test('validation failed, rollback on (default): → RollingBack with a rollback Job, then → RolledBack', (t) => {
  const m = walkTo(cutover(), 'Validating');
  const failed = { passed: false, checks: [{ name: 'revenue', kind: 'Rule', passed: false, source: '10.1', target: '10.0' }, { name: 'orders', kind: 'RowCount', passed: true }] };
  const jobs = [job('validate', 'Succeeded', failed)];
  const { d, m: rolling } = step(m, { jobs, selector: BLUE, now: T1 });
  t.is(d.status.phase, 'RollingBack');
  t.deepEqual(creates(d), ['rollback']);
  t.false(d.actions.some((a) => a.kind === 'patchServiceSelector'), 'the Service never switched: nothing to restore');
  t.is(cond(d, 'Validated')?.status, 'False');
  t.is(cond(d, 'Validated')?.reason, REASONS.ValidationFailed);
  t.is(cond(d, 'RolledBack')?.status, 'False');
  t.deepEqual(d.status.validation?.checks?.map((c) => c.name), ['revenue', 'orders'], 'failures first');
  t.true(kinds(d).includes('event:Warning:ValidationFailed'));
  assertIdempotent(t, rolling, { jobs, selector: BLUE, now: T1 }, 'rolling back');
  const { d: done, m: rolledBack } = step(rolling, { jobs: [...jobs, job('rollback', 'Succeeded', { version: '0' })], selector: BLUE, now: T2 });
  t.is(done.status.phase, 'RolledBack');
  t.is(done.status.completedAt, T2);
  t.is(cond(done, 'RolledBack')?.status, 'True');
  t.is(cond(done, 'Ready')?.reason, REASONS.RolledBack);
  t.is(done.status.schema?.version, '0');
  t.true(kinds(done).includes('event:Warning:RolledBack'));
  assertIdempotent(t, rolledBack, { jobs: [...jobs, job('rollback', 'Succeeded')], selector: BLUE, now: LATER }, 'rolled back');
});

test('validation failed with only checksum mismatches: reason ChecksumMismatch', (t) => {
  const m = walkTo({}, 'Validating');
  const { d } = step(m, { jobs: [job('validate', 'Succeeded', { passed: false, checks: [{ name: 'orders', kind: 'Checksum', passed: false }] })], now: T1 });
  t.is(cond(d, 'Validated')?.reason, REASONS.ChecksumMismatch);
  t.is(d.status.phase, 'RollingBack');
});

test('validation failed, rollback.onValidationFailure false: → Failed, nothing rolled back', (t) => {
  const m = walkTo({ rollback: { onValidationFailure: false } }, 'Validating');
  const { d, m: failed } = step(m, { jobs: [job('validate', 'Succeeded', { passed: false })], now: T1 });
  t.is(d.status.phase, 'Failed');
  t.deepEqual(nonEvents(d), []);
  t.is(cond(d, 'Ready')?.reason, REASONS.ValidationFailed);
  t.is(d.status.completedAt, T1);
  t.true(kinds(d).includes('event:Warning:ValidationFailed'));
  assertIdempotent(t, failed, { jobs: [job('validate', 'Succeeded', { passed: false })], now: T1 }, 'failed');
});

test('rollback restores a Service this migration switched (its record), and finishes only once the restore is observed', (t) => {
  const m = walkTo(cutover(), 'Validating');
  const jobs = [job('validate', 'Succeeded', { passed: false })];
  // The Service carries this migration's switch (a retried rollback after a switch, say).
  const switched = SWITCHED();
  const { d, m: rolling } = step(m, { jobs, service: switched, now: T1 });
  t.is(d.status.phase, 'RollingBack');
  t.deepEqual(nonEvents(d), [
    { kind: 'patchServiceSelector', service: 'orders-api', selector: BLUE },
    { kind: 'createJob', step: 'rollback', runId: 'g1' },
  ]);
  t.is(cond(d, 'CutOver')?.status, 'Unknown');
  assertIdempotent(t, rolling, { jobs, service: switched, now: T1 }, 'restore requested');
  const withRollback = [...jobs, job('rollback', 'Succeeded', {})];
  const { d: notYet } = step(rolling, { jobs: withRollback, service: switched, now: T1 });
  t.is(notYet.status.phase, 'RollingBack', 'the Service still shows the switch');
  const { d: done } = step(rolling, { jobs: withRollback, service: afterPatch(switched, patchOf(d)), now: T1 });
  t.is(done.status.phase, 'RolledBack');
  t.is(cond(done, 'CutOver')?.status, 'False');
  t.is(cond(done, 'CutOver')?.reason, REASONS.ServiceRestored);
  t.true(kinds(done).includes('event:Normal:ServiceRestored'));
});

test('rollback.restoreService false leaves a switched Service alone', (t) => {
  const m = walkTo({ ...cutover(), rollback: { restoreService: false } }, 'Validating');
  const switched = switchedService(BLUE, CUTOVER_SPEC, ORDERS);
  const { d } = step(m, { jobs: [job('validate', 'Succeeded', { passed: false })], service: switched, now: T1 });
  t.false(d.actions.some((a) => a.kind === 'patchServiceSelector'));
});

test('rollback.schemaAction None: no rollback Job, → RolledBack directly', (t) => {
  const m = walkTo({ rollback: { schemaAction: 'None' } }, 'Validating');
  const { d } = step(m, { jobs: [job('validate', 'Succeeded', { passed: false })], now: T1 });
  t.is(d.status.phase, 'RolledBack');
  t.deepEqual(creates(d), []);
  t.is(cond(d, 'RolledBack')?.status, 'True');
});

test('rollback Job failed: → Failed with RollbackFailed', (t) => {
  const m = walkTo({}, 'Validating');
  const { m: rolling } = step(m, { jobs: [job('validate', 'Succeeded', { passed: false })], now: T1 });
  const { d } = step(rolling, { jobs: [job('validate', 'Succeeded', { passed: false }), job('rollback', 'Failed', undefined, { failureMessage: 'down script U2 failed' })], now: T2 });
  t.is(d.status.phase, 'Failed');
  t.is(cond(d, 'Ready')?.reason, REASONS.RollbackFailed);
  t.is(cond(d, 'RolledBack')?.reason, REASONS.RollbackFailed);
  t.regex(d.status.message ?? '', /down script U2 failed/);
});

for (const [label, phase, failing, spec] of [
  ['schema', 'SchemaMigrating', 'schema', { schema: { createMissingTables: true } }],
  ['copy', 'Copying', 'copy', {}],
  ['sync', 'Syncing', 'sync', { strategy: { type: 'Trickle', incremental: { column: 'updated_at' } } }],
  ['validate (no result)', 'Validating', 'validate', {}],
] as const) {
  test(`a failed ${label} Job → Failed (JobFailed), its message in status.jobs, no rollback`, (t) => {
    const m = walkTo(spec, phase);
    t.is(m.status?.phase, phase);
    const previous = (m.status?.jobs ?? []).map((j): ObservedJob => ({ name: j.name, step: j.step, runId: 'g1', state: 'Succeeded', result: j.step === 'copy' ? { tables: [] } : {} }));
    const { d, m: failed } = step(m, { jobs: [...previous, job(failing, 'Failed', undefined, { failureMessage: 'BackoffLimitExceeded: connection refused' })], now: T2 });
    t.is(d.status.phase, 'Failed');
    t.deepEqual(nonEvents(d), []);
    t.is(cond(d, 'Ready')?.reason, REASONS.JobFailed);
    t.is(d.status.completedAt, T2);
    t.regex(d.status.message ?? '', /connection refused/);
    t.like(d.status.jobs?.find((j) => j.step === failing), { state: 'Failed', message: 'BackoffLimitExceeded: connection refused' });
    t.true(kinds(d).includes('event:Warning:JobFailed'));
    assertIdempotent(t, failed, { now: LATER }, 'failed');
  });
}

test('a failed validate Job whose result says passed:false is a validation failure (rollback), not a Job failure', (t) => {
  const m = walkTo({}, 'Validating');
  const { d } = step(m, { jobs: [job('validate', 'Failed', { passed: false }, { failureMessage: 'exit 3' })], now: T1 });
  t.is(d.status.phase, 'RollingBack');
  t.is(cond(d, 'Validated')?.reason, REASONS.ValidationFailed);
});

for (const [label, phase, stepName, result, pattern] of [
  ['schema result not an object', 'SchemaMigrating', 'schema', 'oops', /schema result is unreadable: result is not an object/],
  ['schema version of a wrong type', 'SchemaMigrating', 'schema', { versionBefore: null, version: true }, /result\.version is not a string/],
  ['schema result without versionBefore', 'SchemaMigrating', 'schema', { version: '2' }, /result\.versionBefore is missing/],
  ['schema without a result', 'SchemaMigrating', 'schema', undefined, /schema Job left no result/],
  ['copy without a result', 'Copying', 'copy', undefined, /copy Job left no result/],
  ['copy tables not a list', 'Copying', 'copy', { tables: 'all' }, /result\.tables is not a list/],
  ['copy table without a name', 'Copying', 'copy', { tables: [{ rowsCopied: 1 }] }, /tables\[0\]\.name is missing/],
  ['copy rows negative', 'Copying', 'copy', { tables: [{ name: 'a', rowsCopied: -1 }] }, /rowsCopied is not a non-negative integer/],
  ['copy table reported Failed', 'Copying', 'copy', { tables: [{ name: 'a', state: 'Failed', message: 'bad date' }] }, /failed tables: a \(bad date\)/],
  ['validate without a result', 'Validating', 'validate', undefined, /left no result/],
  ['validate passed not a boolean', 'Validating', 'validate', { passed: 'yes' }, /result\.passed is not true or false/],
  ['validate passed missing', 'Validating', 'validate', { summary: 'ok' }, /result\.passed is missing/],
  ['validate check of an unknown kind', 'Validating', 'validate', { passed: true, checks: [{ name: 'x', kind: 'Magic', passed: true }] }, /kind is not one of/],
] as const) {
  test(`a succeeded Job with a bad result fails the migration clearly: ${label}`, (t) => {
    const spec = phase === 'SchemaMigrating' ? { schema: { createMissingTables: true } } : {};
    const m = walkTo(spec, phase);
    const { d } = step(m, { jobs: [job(stepName, 'Succeeded', result)], now: T1 });
    t.is(d.status.phase, 'Failed');
    t.is(cond(d, 'Ready')?.reason, REASONS.JobFailed);
    t.regex(d.status.message ?? '', pattern);
  });
}

// ---- preflight ------------------------------------------------------------------------------

for (const [missing, reason, text] of [
  [{ kind: 'Secret', name: 'legacy-db' }, REASONS.SecretNotFound, 'Secret "legacy-db" not found'],
  [{ kind: 'SecretKey', name: 'legacy-db', key: 'url' }, REASONS.SecretKeyNotFound, 'key "url" not found in Secret "legacy-db"'],
  [{ kind: 'ConfigMap', name: 'orders-schema' }, REASONS.ConfigMapNotFound, 'ConfigMap "orders-schema" not found'],
  [{ kind: 'Service', name: 'orders-api' }, REASONS.ServiceNotFound, 'Service "orders-api" not found'],
  [{ kind: 'Deployment', name: 'orders-green' }, REASONS.DeploymentNotFound, 'Deployment "orders-green" not found'],
] as const) {
  test(`preflight: a missing ${missing.kind} keeps it Pending (${reason}), warns once, requeues, and recovers`, (t) => {
    const m0 = migration();
    const { d, m } = step(m0, { missing: [missing] });
    t.is(d.status.phase, 'Pending');
    t.deepEqual(nonEvents(d), []);
    t.is(cond(d, 'Ready')?.status, 'False');
    t.is(cond(d, 'Ready')?.reason, reason);
    t.true(d.status.message?.includes(text));
    t.deepEqual(d.actions, [{ kind: 'event', type: 'Warning', reason, message: d.status.message ?? '' }]);
    t.is(d.requeueAfterSeconds, 30);
    t.is(d.status.runId, undefined, 'not started');
    t.is(d.status.startedAt, undefined);
    // Still missing later: no second Warning, a longer backoff, the transition time kept.
    const { d: later } = step(m, { missing: [missing], now: T2 });
    t.deepEqual(later.actions, []);
    t.is(later.requeueAfterSeconds, 300);
    t.is(cond(later, 'Ready')?.lastTransitionTime, T0);
    // It appears: the migration starts.
    const { d: recovered } = step(m, { now: T2 });
    t.is(recovered.status.phase, 'Copying');
    t.deepEqual(creates(recovered), ['copy']);
  });
}

test('preflight is asked for only where something would start: a new Job or the switch', (t) => {
  const m0 = migration();
  t.true(preflightNeeded({ migration: m0, jobs: [], now: T0 }), 'Pending: the first Job waits for the preflight');
  t.throws(() => decide({ migration: m0, jobs: [], now: T0 }), { message: /without the preflight's findings/ }, 'nothing starts without the preflight');
  const { d: started, m } = step(m0);
  t.deepEqual(kinds(started).filter((k) => k.startsWith('event:')), ['event:Normal:Copying'], 'one Event for the start, not one per condition');
  t.false(preflightNeeded({ migration: m, jobs: [job('copy', 'Running')], now: T1 }), 'a running Job: nothing starts, no Secret is read');
  const running = decide({ migration: m, jobs: [job('copy', 'Running')], now: T1 });
  t.is(running.status.phase, 'Copying');
  t.true(preflightNeeded({ migration: m, jobs: [job('copy', 'Succeeded', { tables: [] })], now: T1 }), 'the next step would start');
  t.false(preflightNeeded({ migration: migration({ suspend: true }), jobs: [], now: T0 }), 'suspended: nothing would start');
  t.is(decide({ migration: migration({ suspend: true }), jobs: [], now: T0 }).status.phase, 'Pending');
  const approval = step(step(step(migration(cutover('Manual'))).m, { jobs: [job('copy', 'Succeeded', { tables: [] })], now: T1 }).m,
    { jobs: [job('copy', 'Succeeded', { tables: [] }), job('validate', 'Succeeded', { passed: true, tables: [] })], now: T1, selector: { track: 'blue' } });
  t.is(approval.d.status.phase, 'AwaitingApproval');
  t.false(preflightNeeded({ migration: approval.m, jobs: [job('copy', 'Succeeded', { tables: [] }), job('validate', 'Succeeded', { passed: true, tables: [] })], service: observedService({ track: 'blue' }), now: T1 }),
    'awaiting approval: nothing would start');
});

test('a Job the API server refused: no Job, Ready False JobRejected with the answer, one Warning, asked for again later', (t) => {
  const m0 = migration();
  const refused = 'HTTP 422 Invalid: Job.batch "orders-g1-copy" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1';
  // As the reconciler does: the decision asks for the copy Job, the create is refused, the refusal is recorded.
  const asked = decide(input(m0));
  t.deepEqual(creates(asked), ['copy']);
  const d = recordRejectedJob(m0, asked, { step: 'copy', runId: 'g1', message: refused }, T0);
  t.deepEqual(creates(d), []);
  t.is(d.status.phase, 'Copying');
  t.is(cond(d, 'Ready')?.reason, REASONS.JobRejected);
  t.is(cond(d, 'DataCopied')?.reason, REASONS.JobRejected);
  t.true(d.status.message?.includes('must be less than or equal to cpu limit'));
  t.true(d.status.message?.includes('spec.jobTemplate'));
  t.true(kinds(d).includes('event:Warning:JobRejected'));
  t.is(d.requeueAfterSeconds, 60);
  // 10 s later: not asked for again yet (it would be refused at once), the status unchanged.
  const m = { ...m0, status: d.status };
  const soon = decide(input(m, { now: T1 }));
  t.deepEqual(soon.actions, []);
  t.deepEqual(soon.status, d.status);
  t.is(soon.requeueAfterSeconds, 50);
  // After REQUEUE.jobRejected: the Job is asked for again; a refusal again warns no second time.
  const minuteLater = '2025-01-01T00:01:00Z';
  t.deepEqual(creates(decide(input(m, { now: minuteLater }))), ['copy']);
  const again = recordRejectedJob(m, decide(input(m, { now: minuteLater })), { step: 'copy', runId: 'g1', message: refused }, minuteLater);
  t.false(kinds(again).some((k) => k.startsWith('event:')));
});

test('preflight backoff grows with the time waited, between 30 s and 5 min', (t) => {
  const { m } = step(migration(), { missing: [{ kind: 'Secret', name: 's' }] });
  t.is(decide(input(m, { missing: [{ kind: 'Secret', name: 's' }], now: '2025-01-01T00:01:40Z' })).requeueAfterSeconds, 100);
  t.is(decide(input(m, { missing: [{ kind: 'Secret', name: 's' }], now: T1 })).requeueAfterSeconds, 30);
  t.is(decide(input(m, { missing: [{ kind: 'Secret', name: 's' }], now: LATER })).requeueAfterSeconds, 300);
});

test('preflight missing mid-run: the next step waits, a finished step is still recorded', (t) => {
  const { m } = step(migration());
  const missing: MissingObject[] = [{ kind: 'Secret', name: 'orders-pg' }];
  const { d } = step(m, { jobs: [job('copy', 'Succeeded', { tables: [] })], missing, now: T1 });
  t.is(d.status.phase, 'Validating');
  t.is(cond(d, 'DataCopied')?.status, 'True');
  t.deepEqual(creates(d), []);
  t.is(cond(d, 'Ready')?.reason, REASONS.SecretNotFound);
  t.true(kinds(d).includes('event:Warning:SecretNotFound'));
  const { d: running } = step(m, { jobs: [job('copy', 'Running')], missing, now: T1 });
  t.is(cond(running, 'Ready')?.reason, REASONS.JobRunning, 'a running Job is left alone');
});

// ---- suspend --------------------------------------------------------------------------------

test('suspend before start: no Job, Ready False Suspended, no requeue; resuming starts', (t) => {
  const { d, m } = step(migration({ suspend: true }));
  t.is(d.status.phase, 'Pending');
  t.deepEqual(nonEvents(d), []);
  t.is(cond(d, 'Ready')?.reason, REASONS.Suspended);
  t.is(d.requeueAfterSeconds, undefined);
  assertIdempotent(t, m, {}, 'suspended');
  const { d: resumed } = step({ ...m, spec: { ...m.spec, suspend: false } }, { now: T1 });
  t.deepEqual(creates(resumed), ['copy']);
});

test('suspend mid-run: the running Job finishes and is recorded, the next step waits until resumed', (t) => {
  const { m: copying } = step(migration());
  const suspended = { ...copying, spec: { ...copying.spec, suspend: true } };
  const { d: running } = step(suspended, { jobs: [job('copy', 'Running')], now: T1 });
  t.deepEqual(running.actions.filter((a) => a.kind !== 'event'), []);
  t.is(cond(running, 'Ready')?.reason, REASONS.Suspended);
  const { d: copied, m: waiting } = step(suspended, { jobs: [job('copy', 'Succeeded', { tables: [] })], now: T1 });
  t.is(copied.status.phase, 'Validating');
  t.deepEqual(creates(copied), []);
  t.is(cond(copied, 'Ready')?.reason, REASONS.Suspended);
  const { d: resumed } = step({ ...waiting, spec: { ...waiting.spec, suspend: false } }, { jobs: [job('copy', 'Succeeded', { tables: [] })], now: T2 });
  t.deepEqual(creates(resumed), ['validate']);
});

test('suspend holds the Service switch', (t) => {
  const m = walkTo(cutover(), 'CuttingOver');
  const { d } = step({ ...m, spec: { ...m.spec, suspend: true } }, { jobs: [], selector: BLUE, now: LATER });
  t.false(d.actions.some((a) => a.kind === 'patchServiceSelector'));
  t.is(cond(d, 'Ready')?.reason, REASONS.Suspended);
});

// ---- never twice ----------------------------------------------------------------------------

test('a requested Job not yet observed is not created again within the grace period, but is after it', (t) => {
  const { m } = step(migration());
  t.deepEqual(decide(input(m, { now: T1 })).actions, []);
  const after = new Date(Date.parse(T0) + (JOB_APPEAR_GRACE_SECONDS + 1) * 1000).toISOString();
  t.deepEqual(creates(decide(input(m, { now: after }))), ['copy']);
});

test('a running Job for the current step means wait, never a second Job', (t) => {
  const { m } = step(migration());
  const d = decide(input(m, { jobs: [job('copy', 'Running')], now: LATER }));
  t.deepEqual(d.actions, []);
  t.is(d.requeueAfterSeconds, 30);
});

test('a running Job of another run is deleted; Jobs of another run are otherwise ignored', (t) => {
  const { m } = step(migration());
  const stale = job('copy', 'Running', undefined, { name: 'orders-g0-copy', runId: 'g0' });
  const old = job('validate', 'Failed', undefined, { name: 'orders-g0-validate', runId: 'g0' });
  const d = decide(input(m, { jobs: [stale, old, job('copy', 'Running')], now: T1 }));
  t.deepEqual(d.actions, [{ kind: 'deleteJob', name: 'orders-g0-copy' }]);
  t.is(d.status.phase, 'Copying');
});

test('a lost status is rebuilt from the Jobs: their run is adopted and their results replayed', (t) => {
  const jobs = [job('copy', 'Succeeded', { tables: [{ name: 'a', rowsCopied: 3 }] }), job('validate', 'Running')];
  const d = decide(input(migration({}, { generation: 2 }), { jobs }));
  t.is(d.status.runId, 'g1');
  t.is(d.status.phase, 'Validating');
  t.deepEqual(creates(d), []);
  t.is(cond(d, 'DataCopied')?.status, 'True');
});

// ---- conditions and generations -------------------------------------------------------------

test('lastTransitionTime is kept while a condition keeps its status, and moves when it changes', (t) => {
  const { m: copying } = step(migration(), { now: T0 });
  const { m: validating } = step(copying, { jobs: [job('copy', 'Succeeded', { tables: [] })], now: T1 });
  t.is(cond(validating, 'Ready')?.lastTransitionTime, T0, 'Ready stayed False across steps');
  t.is(cond(validating, 'SchemaReady')?.lastTransitionTime, T0);
  t.is(cond(validating, 'DataCopied')?.lastTransitionTime, T1, 'DataCopied went False → True');
  const { m: done } = step(validating, { jobs: [job('validate', 'Succeeded', { passed: true })], now: T2 });
  t.is(cond(done, 'Ready')?.lastTransitionTime, T2);
  t.is(cond(done, 'DataCopied')?.lastTransitionTime, T1);
});

test('observedGeneration follows a spec change mid-run, on status and every condition; the run keeps its id', (t) => {
  const { m } = step(migration({}, { generation: 1 }));
  const changed = withMeta(m, { generation: 2 });
  const d = decide(input(changed, { jobs: [job('copy', 'Running')], now: T1 }));
  t.is(d.status.observedGeneration, 2);
  t.true(d.status.conditions?.every((c) => c.observedGeneration === 2));
  t.is(d.status.runId, 'g1');
  t.deepEqual(d.actions, []);
});

for (const phase of ['Succeeded', 'Failed', 'RolledBack'] as const) {
  test(`terminal ${phase} stays terminal: no actions; a spec change only moves observedGeneration and says so on Ready`, (t) => {
    const conditions = setCondition([], { type: 'Ready', status: phase === 'Succeeded' ? 'True' : 'False', reason: phase === 'Succeeded' ? REASONS.Succeeded : REASONS.JobFailed, message: 'done', observedGeneration: 1 }, T0);
    const status: DataMigrationStatus = { phase, observedGeneration: 1, runId: 'g1', message: 'finished', conditions, completedAt: T0 };
    const same = decide(input(migration({}, { status }), { jobs: [job('copy', 'Failed')], now: T1 }));
    t.deepEqual(same.actions, []);
    t.is(same.status.phase, phase);
    t.is(same.requeueAfterSeconds, undefined);
    const changed = decide(input(migration({ suspend: false, validation: { sampleRows: 5 } }, { status, generation: 2 }), { now: T2 }));
    t.deepEqual(changed.actions, []);
    t.is(changed.status.phase, phase);
    t.is(changed.status.observedGeneration, 2);
    t.is(changed.status.completedAt, T0);
    const ready = cond(changed, 'Ready');
    t.is(ready?.lastTransitionTime, T0, 'status unchanged: transition time kept');
    t.is(ready?.observedGeneration, 2);
    t.regex(ready?.message ?? '', /create a new DataMigration/);
    t.deepEqual(decide(input({ ...migration({}, { generation: 2 }), status: changed.status }, { now: LATER })).status, changed.status);
  });
}

// ---- helpers --------------------------------------------------------------------------------

test('setCondition keeps lastTransitionTime when the status is unchanged, sorts by type, and findCondition finds', (t) => {
  let conditions = setCondition(undefined, { type: 'Validated', status: 'False', reason: REASONS.JobRunning, message: 'a' }, T0);
  conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: REASONS.JobRunning, message: 'b', observedGeneration: 4 }, T0);
  conditions = setCondition(conditions, { type: 'Validated', status: 'False', reason: REASONS.ValidationFailed, message: 'c' }, T1);
  t.deepEqual(conditions.map((c) => c.type), ['Ready', 'Validated']);
  t.like(findCondition(conditions, 'Validated'), { reason: REASONS.ValidationFailed, message: 'c', lastTransitionTime: T0 });
  conditions = setCondition(conditions, { type: 'Validated', status: 'True', reason: REASONS.ValidationPassed, message: 'd' }, T2);
  t.is(findCondition(conditions, 'Validated')?.lastTransitionTime, T2);
  t.is(findCondition(conditions, 'Ready')?.observedGeneration, 4);
  t.is(findCondition(conditions, 'CutOver'), undefined);
  t.deepEqual(removeCondition(conditions, 'Ready').map((c) => c.type), ['Validated']);
});

test('selector helpers: replace keeps unrelated labels; sides are told apart', (t) => {
  t.deepEqual(replaceSelector(BLUE, { track: 'blue' }, { track: 'green' }), GREEN);
  t.deepEqual(replaceSelector({ app: 'x', color: 'blue' }, { color: 'blue' }, { version: 'v2' }), { app: 'x', version: 'v2' });
  t.true(selectsSide(GREEN, { track: 'green' }, { track: 'blue' }));
  t.false(selectsSide(BLUE, { track: 'green' }, { track: 'blue' }));
  t.false(selectsSide({ app: 'x', color: 'blue', version: 'v2' }, { version: 'v2' }, { color: 'blue' }), 'the old label still narrows it');
});

test('result parsers: a result is required (absent is a failure, never a success), and what they keep is bounded', (t) => {
  for (const absent of [undefined, null]) {
    t.deepEqual(parseSchemaResult(absent), { ok: false, error: 'the schema Job left no result (termination message)' });
    t.deepEqual(parseCopyResult(absent), { ok: false, error: 'the copy Job left no result (termination message)' });
  }
  t.deepEqual(parseCopyResult({}), { ok: true, value: { tables: [], failedTables: [], zeroDates: {}, warnings: [] } });
  t.false(parseCopyResult({ tables: [], zeroDates: { 'orders.created': -1 } }).ok, 'a count is a non-negative integer');
  t.false(parseCopyResult({ tables: [], warnings: [{ evil: true }] }).ok);
  const many = Array.from({ length: 70 }, (_, i) => ({ name: `c${i}`, kind: 'Rule', passed: i !== 69 }));
  const parsed = parseValidationResult({ passed: false, checks: many });
  t.true(parsed.ok);
  if (parsed.ok) {
    t.is(parsed.value.validation.checks?.length, 64);
    t.is(parsed.value.validation.checks?.[0]?.name, 'c69', 'the failure is listed first');
    t.true(parsed.value.validation.truncated);
    t.is(parsed.value.validation.summary, '69/70 checks passed');
  }
});

// ---- abort ----------------------------------------------------------------------------------

const TRICKLE: Partial<DataMigrationSpec> = { strategy: { type: 'Trickle', incremental: { column: 'updated_at' } } };
const abortAnnotation = { [ABORT_ANNOTATION]: 'true' };

interface AbortCase {
  label: string;
  spec: Partial<DataMigrationSpec>;
  /** Where the migration is when the abort comes. */
  phase: Phase;
  jobs?: ObservedJob[];
  selector?: Record<string, string>;
  service?: ObservedService;
  deletes: string[];
  /** The selector patched back, if any. */
  patch?: Record<string, string>;
  /** A Service not this migration's to restore: a Warning ServiceNotRestored. */
  leftAlone?: boolean;
  /** The condition that records where it stopped. */
  stopped?: [ConditionType, Condition['status'], string];
}

const abortCases: AbortCase[] = [
  { label: 'a running schema Job', spec: { schema: { createMissingTables: true } }, phase: 'SchemaMigrating', jobs: [job('schema', 'Running')], deletes: ['orders-g1-schema'], stopped: ['SchemaReady', 'False', REASONS.Aborted] },
  { label: 'a running copy Job', spec: {}, phase: 'Copying', jobs: [job('copy', 'Running')], deletes: ['orders-g1-copy'], stopped: ['DataCopied', 'False', REASONS.Aborted] },
  { label: 'a copy Job requested but not yet observed (deleted by its deterministic name)', spec: {}, phase: 'Copying', jobs: [], deletes: ['orders-g1-copy'], stopped: ['DataCopied', 'False', REASONS.Aborted] },
  { label: 'a running sync Job', spec: TRICKLE, phase: 'Syncing', jobs: [job('copy', 'Succeeded', { tables: [] }), job('sync', 'Running')], deletes: ['orders-g1-sync'], stopped: ['DataCopied', 'Unknown', REASONS.Aborted] },
  { label: 'a running validate Job', spec: {}, phase: 'Validating', jobs: [job('copy', 'Succeeded', { tables: [] }), job('validate', 'Running')], deletes: ['orders-g1-validate'], stopped: ['Validated', 'False', REASONS.Aborted] },
  { label: 'a running rollback Job and a Service this migration switched', spec: cutover(), phase: 'RollingBack', jobs: [job('validate', 'Succeeded', { passed: false }), job('rollback', 'Running')], service: SWITCHED(), deletes: ['orders-g1-rollback'], patch: BLUE, stopped: ['RolledBack', 'False', REASONS.Aborted] },
  { label: 'a running rollback Job and a Service switched by hand (left alone)', spec: cutover(), phase: 'RollingBack', jobs: [job('validate', 'Succeeded', { passed: false }), job('rollback', 'Running')], selector: GREEN, deletes: ['orders-g1-rollback'], leftAlone: true, stopped: ['RolledBack', 'False', REASONS.Aborted] },
  { label: 'a running rollback Job (the Service is not switched)', spec: cutover(), phase: 'RollingBack', jobs: [job('validate', 'Succeeded', { passed: false }), job('rollback', 'Running')], selector: BLUE, deletes: ['orders-g1-rollback'], stopped: ['RolledBack', 'False', REASONS.Aborted] },
  { label: 'approval pending', spec: cutover('Manual'), phase: 'AwaitingApproval', jobs: [job('validate', 'Succeeded', { passed: true })], selector: BLUE, deletes: [], stopped: ['CutOver', 'False', REASONS.Aborted] },
  { label: 'a cutover already observed (the Service is restored)', spec: cutover(), phase: 'CuttingOver', jobs: [job('validate', 'Succeeded', { passed: true })], service: SWITCHED(), deletes: [], patch: BLUE, stopped: ['CutOver', 'False', REASONS.Aborted] },
  { label: 'a Service switched by hand, not by this migration (left alone)', spec: cutover(), phase: 'CuttingOver', jobs: [job('validate', 'Succeeded', { passed: true })], selector: GREEN, deletes: [], leftAlone: true, stopped: ['CutOver', 'False', REASONS.Aborted] },
  { label: 'a switched Service with rollback.restoreService false (left alone)', spec: { ...cutover(), rollback: { restoreService: false } }, phase: 'CuttingOver', jobs: [job('validate', 'Succeeded', { passed: true })], service: SWITCHED(), deletes: [], stopped: ['CutOver', 'False', REASONS.Aborted] },
];

/** walkTo, and for RollingBack a failed validation first. */
function reach(spec: Partial<DataMigrationSpec>, phase: Phase): DataMigration {
  if (phase !== 'RollingBack') return walkTo(spec, phase);
  return step(walkTo(spec, 'Validating'), { jobs: [job('validate', 'Succeeded', { passed: false })], selector: BLUE }).m;
}

for (const c of abortCases) {
  test(`abort during ${c.phase} with ${c.label}: ${c.deletes.length > 0 ? 'Job deleted, ' : ''}${c.patch ? 'Service restored, ' : ''}nothing started, → Failed (Aborted)`, (t) => {
    const walked = reach(c.spec, c.phase);
    t.is(walked.status?.phase, c.phase);
    const m = withMeta(walked, { annotations: abortAnnotation });
    const observe: Observe = { jobs: c.jobs ?? [], now: T1, ...(c.selector ? { selector: c.selector } : {}), ...(c.service ? { service: c.service } : {}) };
    const { d, m: aborted } = step(m, observe);
    t.is(d.status.phase, 'Failed');
    t.is(d.status.completedAt, T1);
    t.is(cond(d, 'Ready')?.status, 'False');
    t.is(cond(d, 'Ready')?.reason, REASONS.Aborted);
    t.deepEqual(creates(d), [], 'never another step');
    t.deepEqual(d.actions.flatMap((a) => (a.kind === 'deleteJob' ? [a.name] : [])), c.deletes);
    const patches = d.actions.flatMap((a) => (a.kind === 'patchServiceSelector' ? [a.selector] : []));
    t.deepEqual(patches, c.patch ? [c.patch] : []);
    t.is(kinds(d).includes('event:Normal:ServiceRestored'), c.patch !== undefined);
    t.is(kinds(d).includes('event:Warning:ServiceNotRestored'), c.leftAlone === true);
    if (c.leftAlone) t.regex(d.status.message ?? '', /this migration did not switch it .*; it is left as it is/);
    t.is(kinds(d).filter((k) => k === 'event:Warning:Aborted').length, 1, 'one Warning Event');
    t.regex(d.status.message ?? '', /no rollback Job runs/);
    if (c.stopped) t.like(cond(d, c.stopped[0]), { status: c.stopped[1], reason: c.stopped[2] });
    if (c.patch && c.phase !== 'CuttingOver') t.like(cond(d, 'CutOver'), { status: 'False', reason: REASONS.ServiceRestored });
    assertIdempotent(t, aborted, { ...observe, now: LATER }, 'aborted');
  });
}

test('abort during Pending (preflight waiting): nothing to delete, → Failed (Aborted)', (t) => {
  const { m } = step(migration(), { missing: [{ kind: 'Secret', name: 'legacy-db' }] });
  t.is(m.status?.phase, 'Pending');
  const { d } = step(withMeta(m, { annotations: abortAnnotation }), { missing: [{ kind: 'Secret', name: 'legacy-db' }], now: T1 });
  t.is(d.status.phase, 'Failed');
  t.deepEqual(nonEvents(d), []);
  t.is(cond(d, 'Ready')?.reason, REASONS.Aborted);
  t.regex(d.status.message ?? '', /nothing was running/);
});

for (const [label, value, generation, aborts] of [
  ['"true"', 'true', 1, true],
  ['the current generation', '2', 2, true],
  ['an older generation', '1', 2, false],
  ['"false"', 'false', 1, false],
  ['empty', '', 1, false],
] as const) {
  test(`abort annotation set to ${label}: ${aborts ? 'aborts' : 'ignored'}`, (t) => {
    const { m } = step(migration());
    const annotated = withMeta(m, { generation, annotations: { [ABORT_ANNOTATION]: value } });
    t.is(isAbortRequested(annotated), aborts);
    const { d } = step(annotated, { jobs: [job('copy', 'Running')], now: T1 });
    t.is(d.status.phase, aborts ? 'Failed' : 'Copying');
    t.is(d.actions.some((a) => a.kind === 'deleteJob'), aborts);
  });
}

for (const phase of ['Succeeded', 'Failed', 'RolledBack'] as const) {
  test(`abort on a terminal ${phase} migration does nothing`, (t) => {
    const conditions = setCondition([], { type: 'Ready', status: phase === 'Succeeded' ? 'True' : 'False', reason: REASONS.Succeeded, message: 'done', observedGeneration: 1 }, T0);
    const status: DataMigrationStatus = { phase, observedGeneration: 1, runId: 'g1', message: 'done', conditions, completedAt: T0 };
    const d = decide(input(migration(cutover(), { status, annotations: abortAnnotation }), { jobs: [job('copy', 'Running')], selector: GREEN, now: T1 }));
    t.deepEqual(d.actions, []);
    t.is(d.status.phase, phase);
    t.is(cond(d, 'Ready')?.message, 'done');
  });
}

// ---- retry ----------------------------------------------------------------------------------

const retryAnnotation = (token: string): Record<string, string> => ({ [RETRY_ANNOTATION]: token });

interface RetryCase {
  label: string;
  spec: Partial<DataMigrationSpec>;
  /** The phase the failure happens in, the Jobs that make it fail. */
  phase: Phase;
  jobs: ObservedJob[];
  /** Aborted instead of a failed Job (the abort annotation is removed for the retry). */
  abort?: boolean;
  failedReason: string;
  resumes: Phase;
  creates: Step[];
  condition?: [ConditionType, Condition['status']];
}

const boom = { failureMessage: 'BackoffLimitExceeded: Job has reached the specified backoff limit: connection refused' };
const retryCases: RetryCase[] = [
  { label: 'a failed schema Job', spec: { schema: { createMissingTables: true } }, phase: 'SchemaMigrating', jobs: [job('schema', 'Failed', undefined, boom)], failedReason: REASONS.JobFailed, resumes: 'SchemaMigrating', creates: ['schema'], condition: ['SchemaReady', 'False'] },
  { label: 'a failed copy Job', spec: {}, phase: 'Copying', jobs: [job('copy', 'Failed', undefined, boom)], failedReason: REASONS.JobFailed, resumes: 'Copying', creates: ['copy'], condition: ['DataCopied', 'False'] },
  { label: 'a copy that reported failed tables', spec: {}, phase: 'Copying', jobs: [job('copy', 'Succeeded', { tables: [{ name: 'a', state: 'Failed', message: 'bad date' }] })], failedReason: REASONS.JobFailed, resumes: 'Copying', creates: ['copy'], condition: ['DataCopied', 'False'] },
  { label: 'a failed sync Job', spec: TRICKLE, phase: 'Syncing', jobs: [job('copy', 'Succeeded', { tables: [] }), job('sync', 'Failed', undefined, boom)], failedReason: REASONS.JobFailed, resumes: 'Syncing', creates: ['sync'], condition: ['DataCopied', 'Unknown'] },
  { label: 'a failed validate Job', spec: {}, phase: 'Validating', jobs: [job('validate', 'Failed', undefined, boom)], failedReason: REASONS.JobFailed, resumes: 'Validating', creates: ['validate'], condition: ['Validated', 'False'] },
  { label: 'a failed rollback Job', spec: {}, phase: 'RollingBack', jobs: [job('validate', 'Succeeded', { passed: false }), job('rollback', 'Failed', undefined, boom)], failedReason: REASONS.RollbackFailed, resumes: 'RollingBack', creates: ['rollback'], condition: ['RolledBack', 'False'] },
  { label: 'an aborted copy', spec: {}, phase: 'Copying', jobs: [job('copy', 'Running')], abort: true, failedReason: REASONS.Aborted, resumes: 'Copying', creates: ['copy'], condition: ['DataCopied', 'False'] },
  { label: 'an aborted sync', spec: TRICKLE, phase: 'Syncing', jobs: [job('copy', 'Succeeded', { tables: [] })], abort: true, failedReason: REASONS.Aborted, resumes: 'Syncing', creates: ['sync'], condition: ['DataCopied', 'Unknown'] },
  { label: 'an aborted Manual approval (still approved: straight to the switch)', spec: cutover('Manual'), phase: 'AwaitingApproval', jobs: [job('validate', 'Succeeded', { passed: true })], abort: true, failedReason: REASONS.Aborted, resumes: 'CuttingOver', creates: [] },
];

/** A migration Failed as the case says, with the Jobs observed then. */
function failedBy(c: RetryCase): { m: DataMigration; jobs: ObservedJob[] } {
  const walked = reach(c.spec, c.phase);
  const { m } = step(c.abort ? withMeta(walked, { annotations: abortAnnotation }) : walked, { jobs: c.jobs, selector: BLUE, now: T1 });
  return { m: c.abort ? withMeta(m, { annotations: {} }) : m, jobs: c.jobs.map((j) => (j.state === 'Running' ? { ...j, state: 'Failed' as const, failureMessage: 'DeadlineExceeded' } : j)) };
}

for (const c of retryCases) {
  test(`retry after ${c.label}: → ${c.resumes} under run g1-r<token>, the step runs again`, (t) => {
    const { m: failed, jobs } = failedBy(c);
    t.is(failed.status?.phase, 'Failed');
    t.is(cond(failed, 'Ready')?.reason, c.failedReason);
    const annotations = { ...(c.spec.cutover?.approval === 'Manual' ? { [APPROVE_ANNOTATION]: 'true' } : {}), ...retryAnnotation('1712345') };
    const observe: Observe = { jobs, selector: BLUE, now: T2 };
    const { d, m: retried } = step(withMeta(failed, { annotations }), observe);
    t.is(d.status.runId, 'g1-r1712345');
    t.is(d.status.phase, c.resumes);
    t.is(d.status.completedAt, undefined);
    t.deepEqual(d.actions.flatMap((a) => (a.kind === 'createJob' ? [`${a.step}@${a.runId}`] : [])), c.creates.map((s) => `${s}@g1-r1712345`));
    if (c.resumes === 'CuttingOver') t.deepEqual(nonEvents(d), [{ kind: 'patchServiceSelector', service: 'orders-api', selector: GREEN }]);
    t.true(kinds(d).includes('event:Normal:Retrying'));
    t.false(d.actions.some((a) => a.kind === 'deleteJob'));
    if (c.condition) {
      t.like(cond(d, c.condition[0]), { status: c.condition[1], reason: REASONS.JobRunning, lastTransitionTime: T2 });
      const stepName = c.creates[0];
      t.false((d.status.jobs ?? []).some((j) => j.step === stepName), 'the old Job of the step is no longer listed');
    }
    t.is(cond(d, 'Ready')?.status, 'False');
    assertIdempotent(t, retried, observe, 'retry requested');
    // The new run's Job shows up: it is waited for, then its result counts.
    const stepName = c.creates[0];
    if (stepName !== undefined) {
      const running = job(stepName, 'Running', undefined, { name: `orders-g1-r1712345-${stepName}`, runId: 'g1-r1712345' });
      const { d: waiting } = step(retried, { ...observe, jobs: [...jobs, running] });
      t.deepEqual(waiting.actions, []);
      t.deepEqual(waiting.status.jobs?.find((j) => j.step === stepName), { step: stepName, name: `orders-g1-r1712345-${stepName}`, state: 'Running' });
    }
  });
}

test('retry end to end: copy fails, is retried, the retried copy succeeds and the migration completes', (t) => {
  const { m: copying } = step(migration());
  const failedCopy = job('copy', 'Failed', undefined, boom);
  const { m: failed } = step(copying, { jobs: [failedCopy], now: T1 });
  t.is(failed.status?.phase, 'Failed');
  const annotated = withMeta(failed, { annotations: retryAnnotation('42') });
  const { m: retried } = step(annotated, { jobs: [failedCopy], now: T2 });
  const copied = job('copy', 'Succeeded', { tables: [{ name: 'orders', rowsCopied: 7 }] }, { name: 'orders-g1-r42-copy', runId: 'g1-r42' });
  const { d: validating, m: v } = step(retried, { jobs: [failedCopy, copied], now: T2 });
  t.is(validating.status.phase, 'Validating');
  t.deepEqual(validating.actions.find((a) => a.kind === 'createJob'), { kind: 'createJob', step: 'validate', runId: 'g1-r42' });
  const validated = job('validate', 'Succeeded', { passed: true }, { name: 'orders-g1-r42-validate', runId: 'g1-r42' });
  const { d: done, m: succeeded } = step(v, { jobs: [failedCopy, copied, validated], now: LATER });
  t.is(done.status.phase, 'Succeeded');
  t.deepEqual(done.status.jobs?.map((j) => `${j.name}:${j.state ?? ''}`), ['orders-g1-r42-copy:Succeeded', 'orders-g1-r42-validate:Succeeded']);
  // The token stays on the object: handled, so nothing happens.
  assertIdempotent(t, succeeded, { jobs: [failedCopy, copied, validated], now: LATER }, 'succeeded after a retry');
});

test('retry of a retried run: the new token replaces the old suffix; the same token never retries twice', (t) => {
  const conditions = [
    ...setCondition([], { type: 'Ready', status: 'False', reason: REASONS.JobFailed, message: 'the copy Job failed', observedGeneration: 1 }, T0),
    ...setCondition([], { type: 'DataCopied', status: 'False', reason: REASONS.JobFailed, message: 'the copy Job failed', observedGeneration: 1 }, T0),
  ];
  const status: DataMigrationStatus = { phase: 'Failed', observedGeneration: 1, runId: 'g1-rabc', message: 'the copy Job failed', conditions, completedAt: T0 };
  const jobs = [job('copy', 'Failed', undefined, { name: 'orders-g1-rabc-copy', runId: 'g1-rabc' })];
  const same = decide(input(migration({}, { status, annotations: retryAnnotation('abc') }), { jobs, now: T1 }));
  t.deepEqual(same.actions, [], 'token abc is the current run: handled');
  t.is(same.status.phase, 'Failed');
  const next = decide(input(migration({}, { status, annotations: retryAnnotation('def') }), { jobs, now: T1 }));
  t.is(next.status.runId, 'g1-rdef');
  t.deepEqual(creates(next), ['copy']);
});

interface RefusedCase { label: string; status: DataMigrationStatus; annotations?: Record<string, string>; jobs?: ObservedJob[]; why: RegExp }

const terminalStatus = (phase: Phase, reason: Reason, extra: Condition[] = [], runId = 'g1'): DataMigrationStatus => ({
  phase, observedGeneration: 1, runId, message: `ended: ${reason}`, completedAt: T0,
  conditions: [...setCondition([], { type: 'Ready', status: phase === 'Succeeded' ? 'True' : 'False', reason, message: `ended: ${reason}`, observedGeneration: 1 }, T0), ...extra],
});
const copyFailedCondition = setCondition([], { type: 'DataCopied', status: 'False', reason: REASONS.JobFailed, message: 'x', observedGeneration: 1 }, T0);

const refusedCases: RefusedCase[] = [
  { label: 'Succeeded', status: terminalStatus('Succeeded', REASONS.Succeeded), why: /a Succeeded migration is never retried/ },
  { label: 'RolledBack', status: terminalStatus('RolledBack', REASONS.RolledBack), why: /a RolledBack migration is never retried/ },
  { label: 'Failed by validation (rollback off)', status: terminalStatus('Failed', REASONS.ValidationFailed), why: /only a migration that failed in a step Job/ },
  { label: 'Failed by a Job while the abort annotation is still set', status: terminalStatus('Failed', REASONS.JobFailed, copyFailedCondition), annotations: abortAnnotation, why: /dataops\.dev\/abort is still set/ },
  { label: 'Failed by a Job, with a token whose run exists already', status: terminalStatus('Failed', REASONS.JobFailed, copyFailedCondition, 'g1-r8'), jobs: [job('copy', 'Failed', undefined, { name: 'orders-g1-r7-copy', runId: 'g1-r7' })], annotations: {}, why: /run g1-r7 exists already/ },
];

for (const c of refusedCases) {
  test(`retry refused on ${c.label}: no action, the phase stays, Ready says why`, (t) => {
    const m = migration({}, { status: c.status, annotations: { ...retryAnnotation('7'), ...c.annotations } });
    const observe: Observe = { jobs: c.jobs ?? [], now: T1 };
    const { d, m: after } = step(m, observe);
    t.deepEqual(d.actions, []);
    t.is(d.status.phase, c.status.phase);
    t.is(d.status.runId, c.status.runId);
    t.regex(cond(d, 'Ready')?.message ?? '', c.why);
    t.regex(cond(d, 'Ready')?.message ?? '', /^ended: /, 'the outcome is kept');
    t.is(cond(d, 'Ready')?.lastTransitionTime, T0);
    t.is(d.status.message, c.status.message);
    assertIdempotent(t, after, observe, 'refused');
  });
}

for (const [value, token] of [
  ['1712345', '1712345'],
  ['1712345678', '12345678'],
  ['2025-01-01T00:00:00Z', 't000000z'],
  ['A-b_C', 'abc'],
  ['  ', undefined],
  ['!!!', undefined],
] as const) {
  test(`retry token from ${JSON.stringify(value)}: ${token ?? 'none'}`, (t) => {
    t.is(retryToken(migration({}, { annotations: retryAnnotation(value) })), token);
  });
}

test('run ids: baseRunId strips one retry suffix; a lost status adopts this generation\'s latest run with a running Job', (t) => {
  t.is(baseRunId('g1'), 'g1');
  t.is(baseRunId('g1-r1712345'), 'g1');
  t.is(baseRunId('g12-rabc'), 'g12');
  const jobs = [job('copy', 'Failed'), job('copy', 'Running', undefined, { name: 'orders-g1-r5-copy', runId: 'g1-r5' })];
  const d = decide(input(migration(), { jobs }));
  t.is(d.status.runId, 'g1-r5');
  t.deepEqual(d.actions.filter((a) => a.kind !== 'event'), []);
});

// ---- failure messages and the cutover record ------------------------------------------------

for (const [label, failureMessage, expected] of [
  ['backoff limit with the engine message', 'BackoffLimitExceeded: Job has reached the specified backoff limit: ECONNREFUSED 10.0.0.5:5432', /the copy Job orders-g1-copy failed: BackoffLimitExceeded: .*ECONNREFUSED 10\.0\.0\.5:5432; fix the cause, then retry/],
  ['a deadline', 'DeadlineExceeded: Job was active longer than specified deadline', /the copy Job orders-g1-copy failed: DeadlineExceeded/],
  ['no message at all', undefined, /the copy Job orders-g1-copy failed: the Job failed \(no reason recorded\)/],
  ['a huge engine message', `PodFailurePolicy: exit 1: ${'x'.repeat(5000)}`, /the copy Job orders-g1-copy failed: PodFailurePolicy: exit 1: x+…; fix the cause/],
] as const) {
  test(`a Job that exhausted its retries → Failed, the message names step, Job, reason and engine message (${label}), bounded`, (t) => {
    const { m } = step(migration());
    const failed = job('copy', 'Failed', undefined, failureMessage === undefined ? {} : { failureMessage });
    const { d } = step(m, { jobs: [failed], now: T1 });
    t.is(d.status.phase, 'Failed');
    t.is(cond(d, 'Ready')?.reason, REASONS.JobFailed);
    t.regex(d.status.message ?? '', expected);
    t.regex(d.status.message ?? '', /dataops\.dev\/retry/);
    t.true((d.status.message ?? '').length <= 1024);
    t.is(cond(d, 'DataCopied')?.message, d.status.message);
    const warning = d.actions.find((a) => a.kind === 'event' && a.reason === REASONS.JobFailed);
    t.regex(warning?.kind === 'event' ? warning.message : '', /Copying → Failed: the copy Job orders-g1-copy failed/);
  });
}

test('the cutover records the previous selector: "switched from … to …" (from the Service\'s record); activeSelector is what the Service selects now', (t) => {
  const m = walkTo(cutover(), 'Validating');
  const jobs = [job('validate', 'Succeeded', { passed: true })];
  const { d: switching, m: requested } = step(m, { jobs, selector: BLUE, now: T1 });
  t.is(cond(switching, 'CutOver')?.message, 'Switching Service orders-api from app=orders,track=blue to app=orders,track=green');
  t.deepEqual(switching.status.activeSelector, BLUE);
  const { d: done } = step(requested, { jobs, service: afterPatch(observedService(BLUE), patchOf(switching)), now: T2 });
  t.is(cond(done, 'CutOver')?.message, 'Service orders-api switched from app=orders,track=blue to app=orders,track=green');
  t.regex(done.status.message ?? '', /switched from app=orders,track=blue to app=orders,track=green/);
  t.deepEqual(done.status.activeSelector, GREEN);
  t.is(done.status.active, 'app=orders,track=green');
  const event = done.actions.find((a) => a.kind === 'event' && a.reason === REASONS.ServiceSwitched);
  t.regex(event?.kind === 'event' ? event.message : '', /from app=orders,track=blue/);
  // The previous selector is the one the Service's record holds, whatever status lost.
  const withoutRecord = structuredClone(requested.status ?? {});
  delete withoutRecord.activeSelector;
  const web = switchedService({ ...BLUE, tier: 'web' }, CUTOVER_SPEC, ORDERS);
  const { d: rebuilt } = step({ ...requested, status: withoutRecord }, { jobs, service: web, now: T2 });
  t.is(cond(rebuilt, 'CutOver')?.message, 'Service orders-api switched from app=orders,tier=web,track=blue to app=orders,tier=web,track=green');
});

/** Where `value` breaks the CRD's maxLength or maxItems (the API server would answer 422). */
function outOfBounds(schema: Record<string, unknown>, value: unknown, path: string): string[] {
  if (typeof value === 'string') return typeof schema.maxLength === 'number' && value.length > schema.maxLength ? [`${path}: ${String(value.length)} > ${String(schema.maxLength)}`] : [];
  if (Array.isArray(value)) {
    const over = typeof schema.maxItems === 'number' && value.length > schema.maxItems ? [`${path}: ${String(value.length)} items > ${String(schema.maxItems)}`] : [];
    const items = (schema.items ?? {}) as Record<string, unknown>;
    return [...over, ...value.flatMap((item, i) => outOfBounds(items, item, `${path}[${String(i)}]`))];
  }
  if (value !== null && typeof value === 'object') {
    const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
    return Object.entries(value).flatMap(([key, v]) => outOfBounds(properties[key] ?? {}, v, `${path}.${key}`));
  }
  return [];
}

function statusSchema(): Record<string, unknown> {
  const crd = dataMigrationCrd() as { spec: { versions: { schema: { openAPIV3Schema: { properties: { status: Record<string, unknown> } } } }[] } };
  const version = crd.spec.versions[0];
  if (version === undefined) throw new Error('the CRD has no version');
  return version.schema.openAPIV3Schema.properties.status;
}

test('a validation failure at the result contract\'s bounds (summary at its max, five check names of 256 chars) leaves every status string within the CRD\'s bounds', (t) => {
  const m = walkTo({ rollback: { onValidationFailure: false } }, 'Validating');
  const verdict = {
    passed: false, summary: 's'.repeat(STATUS_LIMITS.message),
    checks: Array.from({ length: 5 }, (_, i) => ({ name: String(i).repeat(STATUS_LIMITS.figure), kind: 'Rule', passed: false })),
  };
  const { d } = step(m, { jobs: [job('validate', 'Failed', verdict, { exitCode: 4 })], now: T1 });
  t.is(d.status.phase, 'Failed');
  t.deepEqual(outOfBounds(statusSchema(), d.status, 'status'), []);
  // The ledger still says why, cut to its bound.
  t.is(d.status.steps?.find((e) => e.step === 'validate')?.message?.length, STATUS_LIMITS.detail);
});

test('a status written before the ledger with conditions at their old bound (4096) upgrades to a ledger within the CRD\'s bounds', (t) => {
  const long = 'x'.repeat(4096);
  const status: DataMigrationStatus = {
    phase: 'Failed', runId: 'g1',
    conditions: [
      { type: 'Ready', status: 'False', reason: REASONS.JobFailed, message: long, lastTransitionTime: T0 },
      { type: 'DataCopied', status: 'False', reason: REASONS.JobFailed, message: long, lastTransitionTime: T0 },
    ],
  };
  const d = decide(input(migration({}, { status })));
  t.deepEqual(outOfBounds(statusSchema(), d.status, 'status'), []);
  t.truthy(d.status.steps?.find((e) => e.step === 'copy'));
});

test('lists from step results are cut to the CRD\'s maxItems with a truncated mark (createdTables, tables; failed tables kept)', (t) => {
  const names = Array.from({ length: STATUS_LIMITS.tables + 20 }, (_, i) => `t${String(i)}`);
  const schema = parseSchemaResult({ versionBefore: null, version: '1', createdTables: names });
  t.true(schema.ok);
  if (!schema.ok) return;
  t.is(schema.value.createdTables?.length, STATUS_LIMITS.tables);
  t.true(schema.value.truncated);
  const m = walkTo({}, 'Copying');
  const tables = names.map((name, i) => ({ name, rowsCopied: 1, state: i === names.length - 1 ? 'Failed' : 'Copied', ...(i === names.length - 1 ? { message: 'broke' } : {}) }));
  const { d } = step(m, { jobs: [job('copy', 'Succeeded', { tables })], now: T1 });
  t.is(d.status.tables?.length, STATUS_LIMITS.tables);
  t.true(d.status.tablesTruncated);
  t.true(d.status.tables?.some((table) => table.name === names.at(-1)));
  t.deepEqual(outOfBounds(statusSchema(), d.status, 'status'), []);
});
