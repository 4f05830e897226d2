// Pending: the spec is checked, the preflight gates the start; the run starts with the schema
// step when there is one, else with the copy.
import { REASONS } from '../../api/constants.ts';
import type { DataMigrationSpec } from '../../api/types.generated.ts';
import { mayStartJob, ready, schemaStepRequired, transition, type Context } from '../context.ts';
import { recordOutcome } from '../ledger.ts';
import type { Next } from './next.ts';

function specProblem(spec: DataMigrationSpec): string | undefined {
  if (spec.strategy?.type === 'Trickle' && spec.strategy.incremental === undefined) {
    return 'spec.strategy.incremental is required when spec.strategy.type is Trickle';
  }
  return undefined;
}

export function pending(ctx: Context): Next {
  const problem = specProblem(ctx.spec);
  if (problem !== undefined) {
    ready(ctx, 'False', REASONS.InvalidSpec, problem);
    return 'stop';
  }
  // The run always starts with a step Job: the pod policy is checked before it starts.
  if (!mayStartJob(ctx, 'the migration')) return 'stop';
  ctx.status.runId = ctx.runId;
  ctx.status.startedAt ??= ctx.now;
  recordOutcome(ctx.status, 'start', ctx.runId, 'Succeeded', ctx.now);
  if (schemaStepRequired(ctx.spec)) transition(ctx, 'SchemaMigrating', 'SchemaMigrating', `run ${ctx.runId} started: migrating the target schema`);
  else transition(ctx, 'Copying', 'Copying', `run ${ctx.runId} started: copying (no schema step needed)`);
  return 'continue';
}
