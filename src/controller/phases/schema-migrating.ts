// SchemaMigrating: the schema Job migrates the target; its versions go to status.schema.
import { REASONS } from '../../api/constants.ts';
import { setCond, transition, type Context } from '../context.ts';
import { parseSchemaResult } from '../step-results.ts';
import type { Next } from './next.ts';
import { finishedStep } from './run-step.ts';

export function schemaMigrating(ctx: Context): Next {
  const result = finishedStep(ctx, 'schema', parseSchemaResult);
  if (result === undefined) return 'stop';
  ctx.status.schema = { ...ctx.status.schema, ...result };
  const version = result.version === undefined ? '' : ` at version ${result.version}`;
  setCond(ctx, 'SchemaReady', 'True', REASONS.Succeeded, `The target schema is ready${version}`);
  transition(ctx, 'Copying', 'Copying', `the target schema is ready${version}`);
  return 'continue';
}
