// The transition table: every phase handler is driven through what it may meet (its Job running,
// succeeded, failed, with a bad result; the Service switched or not; abort) and every phase it
// moves to must be in the table (context.transition throws otherwise); a move outside it throws.
import test from 'ava';
import { PHASES, REASONS, TERMINAL_PHASES, type Phase, type Step } from '../../src/api/constants.ts';
import type { DataMigration, DataMigrationSpec, DataMigrationStatus, StepRecord } from '../../src/api/types.generated.ts';
import { createContext, transition } from '../../src/controller/context.ts';
import { decide, type ObservedJob } from '../../src/controller/decide.ts';
import { HANDLERS, type ActivePhase } from '../../src/controller/phases/index.ts';
import { assertTransition, InvalidTransitionError, TRANSITIONS } from '../../src/controller/transitions.ts';
import { observedService, switchedService } from '../support/cutover-service.ts';

const T0 = '2025-01-01T00:00:00Z';
const spec = (extra: Partial<DataMigrationSpec>): DataMigrationSpec => ({
  source: { engine: 'mysql', secretRef: { name: 's', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 't', key: 'url' } },
  strategy: { type: 'BigBang' }, ...extra,
});
const CAPTURE = {
  strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } },
  cutover: { service: 'api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, fence: { type: 'ScaleDown', deployment: 'web-blue' } },
} satisfies Partial<DataMigrationSpec>;
const SPECS: Partial<DataMigrationSpec>[] = [
  {},
  { schema: { createMissingTables: true } },
  { strategy: { type: 'Trickle', incremental: { column: 'updated_at' } } },
  { cutover: { service: 'api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual' } },
  { cutover: { service: 'api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } }, rollback: { onValidationFailure: false } },
  { rollback: { schemaAction: 'None' } },
  CAPTURE,
  { ...CAPTURE, cutover: { ...CAPTURE.cutover, service: 'api', approval: 'Manual' } },
];
const RESULTS: Record<Step, unknown[]> = {
  schema: [{ versionBefore: null, version: '2' }, 'unreadable'],
  copy: [{ tables: [{ name: 'a', rowsCopied: 1 }] }, { tables: [{ name: 'a', state: 'Failed' }] }],
  // The second: a ChangeCapture sync's validation at a cut that found the target differs (exit 4).
  sync: [{ rowsSynced: 1 }, { passed: false, checks: [{ name: 'a', kind: 'Checksum', passed: false }] }],
  validate: [{ passed: true }, { passed: false, checks: [{ name: 'a', kind: 'Checksum', passed: false }] }, undefined],
  catchup: [{ fencePosition: '0/1', validation: { passed: true } }, { fencePosition: '0/1', validation: { passed: false, checks: [{ name: 'a', kind: 'Checksum', passed: false }] } }, undefined],
  release: [{ released: true }],
  fence: [{ fenced: true }],
  unfence: [{ unfenced: true }],
  rollback: [{}],
};
/** The cutover Service: opted in on blue, switched by hand, switched by this migration (its record), not opted in. */
const SERVICES = [
  observedService({ track: 'blue' }, { optIn: 'dm' }),
  observedService({ track: 'green' }, { optIn: 'dm' }),
  switchedService({ track: 'blue' }, { service: 'api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } }, { name: 'dm', uid: 'dm-uid', runId: 'g1' }),
  observedService({ track: 'blue' }, { optIn: null }),
];
const STEP_OF: Partial<Record<Phase, Step>> = { SchemaMigrating: 'schema', Copying: 'copy', Syncing: 'sync', Validating: 'validate', RollingBack: 'rollback' };

/** ChangeCapture: the sync Job runs through Syncing and AwaitingApproval, the catch-up behind the fence. */
const CAPTURE_STEP_OF: Partial<Record<Phase, Step>> = { ...STEP_OF, AwaitingApproval: 'sync', CuttingOver: 'catchup' };
/** What a ChangeCapture decision observes: no lag, the fence's Deployment scaled by this migration with no pods left. */
const CAPTURE_SEEN = {
  syncPods: 0, lag: { appliedPosition: '0/1', lagMs: 0, pendingBytes: 0, transactions: 1, changes: 1, sampledAt: T0 },
  fenceDeployment: { replicas: 0, pods: 0, resourceVersion: '7', annotations: { 'dataops.dev/cutover-by': 'dm', 'dataops.dev/fenced-by': JSON.stringify({ uid: 'dm-uid', run: 'g1', replicas: 2 }) } },
};

function observations(phase: Phase, capture = false): ObservedJob[][] {
  const step = (capture ? CAPTURE_STEP_OF : STEP_OF)[phase];
  if (step === undefined) return [[]];
  const job = (state: ObservedJob['state'], result?: unknown): ObservedJob => ({ name: `dm-g1-${step}`, step, runId: 'g1', state, ...(result !== undefined ? { result } : {}) });
  return [[], [job('Running')], [job('Failed')], ...RESULTS[step].map((r) => [job('Succeeded', r)]), [job('Failed', RESULTS[step][1])]];
}

/** A ledger that puts the machine in `phase` (the phase is computed from it, src/controller/phase-of.ts). */
function ledgerAt(phase: Phase): StepRecord[] {
  const done = (step: StepRecord['step']): StepRecord => ({ step, runId: 'g1', outcome: 'Succeeded', finishedAt: T0 });
  const order: Phase[] = ['Pending', 'SchemaMigrating', 'Copying', 'Syncing', 'Validating', 'AwaitingApproval', 'CuttingOver'];
  if (phase === 'RollingBack') return [...ledgerAt('Validating'), { step: 'validate', runId: 'g1', outcome: 'Failed', reason: REASONS.ValidationFailed, finishedAt: T0 }];
  const steps: StepRecord['step'][] = ['start', 'schema', 'copy', 'sync', 'validate'];
  const out = steps.slice(0, order.indexOf(phase)).map(done);
  // The fence's entry puts a ChangeCapture migration in CuttingOver (the switch's entry, one without).
  if (phase === 'CuttingOver') out.push({ step: 'fence', runId: 'g1' }, { step: 'switch', runId: 'g1' });
  return out;
}

test('every handler, in every situation, moves only along the transition table', (t) => {
  const seen = new Set<string>();
  for (const phase of Object.keys(HANDLERS) as ActivePhase[]) {
    for (const extra of SPECS) {
      const capture = extra.strategy?.incremental?.mode === 'ChangeCapture';
      for (const jobs of observations(phase, capture)) {
        for (const service of SERVICES) {
          for (const annotations of [{}, { 'dataops.dev/abort': 'true' }, { 'dataops.dev/approve': 'true' }] as Record<string, string>[]) {
            const status: DataMigrationStatus = { phase, runId: 'g1', steps: ledgerAt(phase) };
            const migration: DataMigration = { metadata: { name: 'dm', namespace: 'ns', uid: 'dm-uid', generation: 1, annotations }, spec: spec(extra), status };
            const d = decide({ migration, jobs, service, preflight: { missing: [], deploymentReady: true }, ...(capture ? { capture: CAPTURE_SEEN } : {}), now: T0 });
            for (const action of d.actions) {
              const moved = action.kind === 'event' ? /^(\w+) → (\w+):/.exec(action.message) : null;
              if (moved) {
                t.true(TRANSITIONS[moved[1] as Phase].includes(moved[2] as Phase), `${moved[1]} → ${moved[2]}`);
                seen.add(`${moved[1]}→${moved[2]}`);
              }
            }
          }
        }
      }
    }
  }
  // Every move the table allows out of a running phase happens somewhere above (retries: controller-decide).
  const allowed = Object.entries(TRANSITIONS).filter(([from]) => from !== 'Failed').flatMap(([from, tos]) => tos.map((to) => `${from}→${to}`));
  t.deepEqual(allowed.filter((move) => !seen.has(move)), []);
});

test('the table names every phase; terminal phases go nowhere but a Failed one may be retried', (t) => {
  t.deepEqual(Object.keys(TRANSITIONS).sort(), [...PHASES].sort());
  for (const phase of TERMINAL_PHASES) if (phase !== 'Failed') t.deepEqual(TRANSITIONS[phase], []);
  for (const phase of PHASES) if (!TERMINAL_PHASES.includes(phase)) t.true(TRANSITIONS[phase].includes('Failed'), `${phase} can fail (abort)`);
});

test('a move outside the table throws', (t) => {
  t.throws(() => { assertTransition('Copying', 'CuttingOver'); }, { instanceOf: InvalidTransitionError, message: /Copying → CuttingOver/ });
  t.throws(() => { assertTransition('Succeeded', 'Copying'); }, { instanceOf: InvalidTransitionError });
  const ctx = createContext({ migration: { metadata: { name: 'dm' }, spec: spec({}), status: { phase: 'Validating', steps: ledgerAt('Validating') } }, jobs: [], now: T0 });
  t.throws(() => { transition(ctx, 'SchemaMigrating', 'SchemaMigrating', 'back'); }, { instanceOf: InvalidTransitionError });
  t.is(ctx.status.phase, 'Validating', 'the phase is left as it was');
});
