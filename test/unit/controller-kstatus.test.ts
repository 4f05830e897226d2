// Reconciling and Stalled (the kstatus conventions): derived from the phase and Ready at every exit
// of a decision, so `kubectl wait --for=condition=Stalled` ends on every terminal failure.
import test from 'ava';
import { REASONS } from '../../src/api/constants.ts';
import type { Phase } from '../../src/api/constants.ts';
import type { Condition, DataMigration, DataMigrationStatus } from '../../src/api/types.generated.ts';
import { findCondition } from '../../src/controller/conditions.ts';
import { decide, recordRejectedJob } from '../../src/controller/decide.ts';
import { deriveKstatus } from '../../src/controller/kstatus.ts';

const NOW = '2026-01-01T00:00:00Z';

const readyCondition = (status: Condition['status'], reason: string, message = reason): Condition => ({ type: 'Ready', status, reason, message, lastTransitionTime: NOW });

function statusOf(phase: Phase, ready?: Condition): DataMigrationStatus {
  return { phase, ...(ready ? { conditions: [ready] } : {}) };
}

const cases: Array<{ phase: Phase; ready?: Condition; reconciling: Condition['status']; stalled: Condition['status'] }> = [
  { phase: 'Pending', reconciling: 'True', stalled: 'False' },
  { phase: 'Pending', ready: readyCondition('False', REASONS.SecretNotFound), reconciling: 'True', stalled: 'False' },
  { phase: 'Copying', ready: readyCondition('False', REASONS.JobRunning), reconciling: 'True', stalled: 'False' },
  { phase: 'Copying', ready: readyCondition('False', REASONS.JobRejected), reconciling: 'False', stalled: 'True' },
  { phase: 'Pending', ready: readyCondition('False', REASONS.InvalidSpec), reconciling: 'False', stalled: 'True' },
  { phase: 'Copying', ready: readyCondition('False', REASONS.Suspended), reconciling: 'False', stalled: 'False' },
  { phase: 'AwaitingApproval', ready: readyCondition('False', REASONS.AwaitingApproval), reconciling: 'True', stalled: 'False' },
  { phase: 'Succeeded', ready: readyCondition('True', REASONS.Succeeded), reconciling: 'False', stalled: 'False' },
  { phase: 'Failed', ready: readyCondition('False', REASONS.JobFailed), reconciling: 'False', stalled: 'True' },
  { phase: 'RolledBack', ready: readyCondition('False', REASONS.RolledBack), reconciling: 'False', stalled: 'True' },
];

for (const c of cases) {
  test(`${c.phase} with Ready ${c.ready?.reason ?? '(none)'}: Reconciling ${c.reconciling}, Stalled ${c.stalled}`, (t) => {
    const derived = deriveKstatus(statusOf(c.phase, c.ready));
    t.is(derived.reconciling.status, c.reconciling);
    t.is(derived.stalled.status, c.stalled);
    // A stalled migration says why in Ready's words.
    if (c.stalled === 'True') {
      const reason: string = derived.stalled.reason;
      t.is(reason, c.ready?.reason ?? '');
      t.is(derived.stalled.message, c.ready?.message ?? '');
    }
  });
}

function migration(status?: DataMigrationStatus, generation = 1): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1',
    kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', generation },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } },
      target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' },
    },
    ...(status ? { status } : {}),
  };
}

test('every decision carries both conditions for its generation: first reconcile Reconciling, a failed run Stalled', (t) => {
  const first = decide({ migration: migration(), jobs: [], preflight: { missing: [] }, now: NOW });
  t.is(findCondition(first.status.conditions, 'Reconciling')?.status, 'True');
  t.is(findCondition(first.status.conditions, 'Stalled')?.status, 'False');
  t.is(findCondition(first.status.conditions, 'Stalled')?.observedGeneration, 1);
  // The copy Job fails for good: Failed, Stalled True with the failure's reason, Reconciling False.
  const failedJob = { step: 'copy' as const, name: 'orders-g1-copy', runId: 'g1', state: 'Failed' as const, failureMessage: 'target refused: password authentication failed' };
  const failed = decide({ migration: migration(first.status), jobs: [failedJob], preflight: { missing: [] }, now: NOW });
  t.is(failed.status.phase, 'Failed');
  t.is(findCondition(failed.status.conditions, 'Stalled')?.status, 'True');
  t.is(findCondition(failed.status.conditions, 'Reconciling')?.status, 'False');
  t.regex(findCondition(failed.status.conditions, 'Stalled')?.message ?? '', /password authentication failed/);
  // A spec edit after the end: still Stalled, for the new generation.
  const edited = decide({ migration: migration(failed.status, 2), jobs: [failedJob], now: NOW });
  t.is(findCondition(edited.status.conditions, 'Stalled')?.status, 'True');
  t.is(findCondition(edited.status.conditions, 'Stalled')?.observedGeneration, 2);
});

test('a Job the API server refuses is Stalled until the spec changes', (t) => {
  const first = decide({ migration: migration(), jobs: [], preflight: { missing: [] }, now: NOW });
  const rejected = recordRejectedJob(migration(first.status), first, { step: 'copy', runId: 'g1', message: 'exceeded quota' }, NOW);
  t.is(findCondition(rejected.status.conditions, 'Stalled')?.status, 'True');
  t.is(findCondition(rejected.status.conditions, 'Stalled')?.reason, REASONS.JobRejected);
  t.is(findCondition(rejected.status.conditions, 'Reconciling')?.status, 'False');
});
