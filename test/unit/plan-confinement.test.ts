// Manifest SQL refused by the plan: every step refuses it before it opens a session (the URLs
// here lead nowhere, so a step that tried to connect would fail differently), and the message
// names every refused field at once.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { manifestSqlReasons } from '../../src/engine/pipeline/plan.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, planStep, PlanRefusedError, schemaStep, syncStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { validateStep } from '../../src/engine/pipeline/validate-steps.ts';

function migration(spec: Partial<DataMigration['spec']>): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'm', namespace: 'n' },
    spec: { source: { engine: 'postgres', secretRef: { name: 's' } }, target: { engine: 'mysql', secretRef: { name: 't' } }, ...spec },
  };
}

const HOSTILE = migration({
  tables: [{ name: 'orders', where: 'true) TO STDOUT; DELETE FROM orders; COPY (SELECT 1', columns: [{ name: 'note', expression: "nextval('s')::text" }] }],
  strategy: { type: 'Trickle', incremental: { column: 'updated_at\u0000', mode: 'Timestamp' } },
  validation: { rules: [{ name: 'r', source: 'SELECT 1', target: "SELECT 1 INTO OUTFILE '/tmp/x'", expect: '1' }] },
});

test('every refused fragment is named, in the grammar of its side', (t) => {
  const reasons = manifestSqlReasons(engineSettings(HOSTILE));
  t.deepEqual(reasons.map((r) => r.slice(0, r.indexOf(':'))), [
    'spec.tables[orders].where', 'spec.tables[orders].columns[note].expression', 'spec.strategy.incremental.column', 'spec.validation.rules[r].target',
  ]);
  t.regex(reasons[3] ?? '', /INTO/, 'the target rule is read as MySQL');
  t.deepEqual(manifestSqlReasons(engineSettings(migration({ tables: [{ name: 'orders', where: "status = 'open'", columns: [{ name: 'note', default: "'n/a'" }] }] }))), []);
});

test('plan, schema, copy, sync and validate refuse before opening a session', async (t) => {
  const context: StepContext = {
    source: { url: 'postgres://u:p@127.0.0.1:1/nowhere' }, target: { url: 'mysql://u:p@127.0.0.1:1/nowhere' }, settings: engineSettings(HOSTILE),
  };
  for (const [name, step] of [['plan', planStep], ['schema', schemaStep], ['copy', copyStep], ['sync', syncStep], ['validate', validateStep]] as const) {
    const error = await t.throwsAsync(step(context), { instanceOf: PlanRefusedError }, name);
    t.is(error.reasons.length, 4, name);
  }
});
