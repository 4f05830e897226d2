// The schema corpus tests' set-up (schema-fidelity, schema-silence): a manifest that creates the
// target tables, a fresh source and target database with the case's source schema, and the run of
// an accepted plan (schema, copy, validation, all succeeding).
import type { ExecutionContext } from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, schemaStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { validateStep } from '../../src/engine/pipeline/validate-steps.ts';
import { freshDatabase, freshTargetDatabase } from './databases.ts';
import { execSql } from './sql.ts';

export type Tables = NonNullable<DataMigration['spec']['tables']>;

export function corpusManifest(name: string, from: Engine, to: Engine, tables?: Tables): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name, namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      schema: { createMissingTables: true }, ...(tables ? { tables } : {}), strategy: { batchSize: 100, parallelism: 2 },
    },
  };
}

export async function corpusSetup(t: ExecutionContext, name: string, from: Engine, to: Engine, seed: string[], tables?: Tables): Promise<{ context: StepContext; source: string; target: string }> {
  const source = await freshDatabase(t, from);
  const target = await freshTargetDatabase(t, to);
  await execSql(source, seed);
  return { context: { source: { url: source }, target: { url: target }, settings: engineSettings(corpusManifest(name, from, to, tables)) }, source, target };
}

/** The run of an accepted plan: schema, copy, validation, all succeeding. */
export async function runAccepted(t: ExecutionContext, context: StepContext): Promise<void> {
  await schemaStep(context);
  await copyStep(context);
  const report = await validateStep(context);
  t.true(report.passed, report.summary);
}
