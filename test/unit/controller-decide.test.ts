// The controller's pure decision function: every transition of the phase machine, driven directly.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { APPROVE_ANNOTATION, REASONS } from '../../src/api/constants.ts';
import type { ConditionType, Phase, Step } from '../../src/api/constants.ts';
import type { Condition, DataMigration, DataMigrationSpec, DataMigrationStatus, SchemaSpec } from '../../src/api/types.generated.ts';
import { findCondition, removeCondition, setCondition } from '../../src/controller/conditions.ts';
import {
  decide, JOB_APPEAR_GRACE_SECONDS, parseCopyResult, parseSchemaResult, parseValidationResult, replaceSelector, selectsSide,
} from '../../src/controller/decide.ts';
import type { Action, DecideInput, Decision, MissingObject, ObservedJob } from '../../src/controller/decide.ts';

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
    metadata: { name: 'orders', namespace: 'shop', uid: 'uid-1', generation: options.generation ?? 1 },
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
  selector?: Record<string, string>;
  now?: string;
}

function input(m: DataMigration, observe: Observe = {}): DecideInput {
  const out: DecideInput = {
    migration: m,
    jobs: observe.jobs ?? [],
    preflight: { missing: observe.missing ?? [] },
    now: observe.now ?? T0,
  };
  if (observe.deploymentReady !== undefined) out.preflight = { ...out.preflight, deploymentReady: observe.deploymentReady };
  if (observe.selector) out.service = { selector: observe.selector };
  return out;
}

/** Decides, and returns the decision with the migration as it would be after the status write. */
function step(m: DataMigration, observe: Observe = {}): { d: Decision; m: DataMigration } {
  const d = decide(input(m, observe));
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
const nonEvents = (d: Decision): Action[] => d.actions.filter((a) => a.kind !== 'event');
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
  t.deepEqual(d.status.conditions?.map((c) => c.type), ['Ready', 'SchemaReady', 'DataCopied', 'Validated']);
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

test('Manual approval: waits in AwaitingApproval without patching; the Service is untouched', (t) => {
  const m = walkTo(cutover('Manual'), 'Validating');
  const observe = { jobs: [job('validate', 'Succeeded', { passed: true })], selector: BLUE, now: T1 };
  const { d, m: waiting } = step(m, observe);
  t.is(d.status.phase, 'AwaitingApproval');
  t.deepEqual(nonEvents(d), []);
  t.is(cond(d, 'Ready')?.reason, REASONS.ApprovalPending);
  t.regex(d.status.message ?? '', /dataops\.dev\/approve/);
  t.true(kinds(d).includes('event:Normal:ApprovalPending'));
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

test('cutover: patch once, wait while the switch is not observed, re-patch after the grace period, done when the Service selects toSelector', (t) => {
  const m = walkTo(cutover(), 'Validating');
  const jobs = [job('validate', 'Succeeded', { passed: true })];
  const { d: first, m: switching } = step(m, { jobs, selector: BLUE, now: T0 });
  t.is(first.actions.filter((a) => a.kind === 'patchServiceSelector').length, 1);
  t.is(cond(first, 'CutOver')?.reason, REASONS.InProgress);
  assertIdempotent(t, switching, { jobs, selector: BLUE, now: T1 }, 'switch requested, not yet observed');
  const { d: again } = step(switching, { jobs, selector: BLUE, now: T2 });
  t.deepEqual(nonEvents(again), [{ kind: 'patchServiceSelector', service: 'orders-api', selector: GREEN }], 'patched again after the grace period');
  const { d: done, m: succeeded } = step(switching, { jobs, selector: GREEN, now: T1 });
  t.is(done.status.phase, 'Succeeded');
  t.is(cond(done, 'CutOver')?.status, 'True');
  t.is(cond(done, 'CutOver')?.reason, REASONS.ServiceSwitched);
  t.deepEqual(done.status.activeSelector, GREEN);
  t.is(done.status.active, 'app=orders,track=green');
  t.deepEqual(nonEvents(done), []);
  t.true(kinds(done).includes('event:Normal:ServiceSwitched'));
  assertIdempotent(t, succeeded, { jobs, selector: GREEN, now: T1 }, 'succeeded after cutover');
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
  const results: Record<string, unknown> = { schema: { version: '1' }, copy: { tables: [{ name: 'a', rowsCopied: 1 }] }, validate: { passed: true } };
  let selector: Record<string, string> = BLUE;
  for (let i = 0; i < 12; i++) {
    const { d, m: next } = step(m, { jobs, selector, now: T0 });
    m = next;
    phases.push(m.status?.phase ?? '');
    assertIdempotent(t, m, { jobs, selector, now: T0 }, `after ${m.status?.phase ?? ''}`);
    if (m.status?.phase === 'Succeeded') break;
    for (const s of creates(d)) jobs.push(job(s, 'Succeeded', results[s]));
    if (m.status?.phase === 'AwaitingApproval') m = withMeta(m, { annotations: { [APPROVE_ANNOTATION]: 'true' } });
    for (const a of d.actions) if (a.kind === 'patchServiceSelector') selector = a.selector;
  }
  t.deepEqual(phases, ['SchemaMigrating', 'Copying', 'Validating', 'AwaitingApproval', 'CuttingOver', 'Succeeded']);
  t.deepEqual(m.status?.jobs?.map((j) => `${j.step}:${j.state ?? ''}`), ['schema:Succeeded', 'copy:Succeeded', 'validate:Succeeded']);
  t.deepEqual(m.status?.conditions?.map((c) => `${c.type}=${c.status}`), ['Ready=True', 'SchemaReady=True', 'DataCopied=True', 'Validated=True', 'CutOver=True']);
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

test('rollback restores the Service when it had been switched, and finishes only once the restore is observed', (t) => {
  const m = walkTo(cutover(), 'Validating');
  const jobs = [job('validate', 'Succeeded', { passed: false })];
  // Someone (or a later gate) switched the Service to green before validation failed.
  const { d, m: rolling } = step(m, { jobs, selector: GREEN, now: T1 });
  t.is(d.status.phase, 'RollingBack');
  t.deepEqual(nonEvents(d), [
    { kind: 'patchServiceSelector', service: 'orders-api', selector: BLUE },
    { kind: 'createJob', step: 'rollback', runId: 'g1' },
  ]);
  t.is(cond(d, 'CutOver')?.status, 'Unknown');
  assertIdempotent(t, rolling, { jobs, selector: GREEN, now: T1 }, 'restore requested');
  const withRollback = [...jobs, job('rollback', 'Succeeded')];
  const { d: notYet } = step(rolling, { jobs: withRollback, selector: GREEN, now: T1 });
  t.is(notYet.status.phase, 'RollingBack', 'the Service still selects green');
  const { d: done } = step(rolling, { jobs: withRollback, selector: BLUE, now: T1 });
  t.is(done.status.phase, 'RolledBack');
  t.is(cond(done, 'CutOver')?.status, 'False');
  t.is(cond(done, 'CutOver')?.reason, REASONS.ServiceRestored);
  t.true(kinds(done).includes('event:Normal:ServiceRestored'));
});

test('rollback.restoreService false leaves a switched Service alone', (t) => {
  const m = walkTo({ ...cutover(), rollback: { restoreService: false } }, 'Validating');
  const { d } = step(m, { jobs: [job('validate', 'Succeeded', { passed: false })], selector: GREEN, now: T1 });
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
  ['schema version of a wrong type', 'SchemaMigrating', 'schema', { version: true }, /result\.version is not a string/],
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

test('result parsers accept absent results where they carry no decision, and bound what they keep', (t) => {
  t.deepEqual(parseSchemaResult(undefined), { ok: true, value: {} });
  t.deepEqual(parseCopyResult(null), { ok: true, value: { tables: [], failedTables: [] } });
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
