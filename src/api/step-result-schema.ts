// The step-result contract: what a step's engine (dmctl step …) leaves in its container's
// termination message and the operator reads back. Written once, with the same builder and the
// same nodes and bounds as the CRD's status (a table's or a check's outcome is the very node
// status.tables and status.validation.checks use). `npm run generate` writes the TypeScript types
// (step-result.generated.ts); step-result.ts reads a result at run time against this schema.
import {
  IDENT, STATUS_LIMITS, bookkeepingTables, checkResult, schemaVersion, tableStatus,
} from './datamigration-schema.ts';
import { array, boolean, enumOf, integer, nullable, object, optional, required, string, type SchemaNode } from './schema-builder.ts';

const count = (description: string): SchemaNode => integer(description, { minimum: 0 });
const names = (description: string): SchemaNode => array(string('A name.', IDENT), description);

export const schemaStepResult = object('SchemaStepResult', 'The schema step: the target schema\'s version before and after, what it created.', {
  // Required: a schema result that does not say what was there before is unreadable (a failure),
  // and null says "no version" (the target had no schema history).
  versionBefore: required(nullable(schemaVersion('The version the target was at before this migration\'s first schema step, as the target records it; null: none.'))),
  version: optional(schemaVersion('The version after the step.')),
  createdTables: optional(names('Tables the step created (createMissingTables), for rollback.')),
  applied: optional(array(schemaVersion('A migration version.'), 'The migrations applied, in order.')),
});

export const POST_COPY = ['ran', 'pending', 'elsewhere'] as const;

const podShare = object('CopyPodShare', 'Which share of the copy a pod took.', {
  index: required(count('The pod\'s index.')),
  count: required(count('How many pods share the copy.')),
});

export const copyStepResult = object('CopyStepResult', 'The copy step (one pod\'s share; the operator merges an Indexed Job\'s pods).', {
  tables: optional(array(tableStatus, 'The tables copied: name, target, state, rowsCopied.')),
  zeroDates: optional({ type: 'object', description: 'MySQL zero dates stored as NULL, per source "table.column".', additionalProperties: count('Values made NULL.') }),
  warnings: optional(array(string('A warning.', { maxLength: STATUS_LIMITS.figure }), 'What a person should know about the copied data (lossy conversions and the like).')),
  rowsThisRun: optional(count('Rows this run wrote.')),
  postCopy: optional(enumOf(POST_COPY, 'Whether this pod ran the post-copy statements (indexes, keys), left them to the last pod, or another pod ran them.')),
  postCopyStatements: optional(count('Post-copy statements run.')),
  pod: optional(podShare),
  pods: optional(array(object('CopyPodResult', 'One pod\'s part (merged results).', {
    pod: optional(podShare),
    rowsThisRun: optional(count('Rows the pod wrote.')),
    postCopy: optional(enumOf(POST_COPY, 'ran, pending or elsewhere.')),
  }), 'Per pod, in a merged result.')),
  truncated: optional(boolean('The result was shortened to fit the termination message.')),
});

export const syncStepResult = object('SyncStepResult', 'The sync step (Trickle): changed rows copied since the copy.', {
  rounds: optional(count('Rounds run.')),
  rowsSynced: optional(count('Changed rows written.')),
  caughtUp: optional(boolean('Whether the sync caught up with the source (Timestamp, Sequence).')),
  rowsDeleted: optional(count('Timestamp, Sequence: target rows deleted because their key is gone from the source (looked for only once caught up).')),
  notes: optional(array(string('A table whose deletes were not looked for, and why.', { maxLength: STATUS_LIMITS.detail }), 'Timestamp, Sequence: what the sync did not check.')),
  mode: optional(string('ChangeCapture when the step followed the source\'s change log (it runs until stopped: the cutover stops it).', { maxLength: 32 })),
  transactions: optional(count('ChangeCapture: source transactions applied by this pod.')),
  changes: optional(count('ChangeCapture: row changes applied by this pod.')),
  appliedPosition: optional(string('ChangeCapture: the source position up to which every change is on the target.', { maxLength: 128 })),
});

export const validateStepResult = object('ValidateStepResult', 'The validate step\'s verdict and report (failed checks first).', {
  passed: required(boolean('Whether every check passed.')),
  checkedAt: optional(string('When validation finished.', { format: 'date-time' })),
  summary: optional(string('One line: checks passed and failed.', { maxLength: STATUS_LIMITS.message })),
  checks: optional(array(checkResult, 'Check outcomes; the operator keeps the first ones, failures first.')),
  truncated: optional(boolean('More checks ran than are listed.')),
  tables: optional(array(tableStatus, 'Per table: rowsSource, rowsTarget, checksum, message.')),
  bookkeeping: optional(bookkeepingTables),
});

export const catchupStepResult = object('CatchupStepResult', 'The catch-up step (ChangeCapture, behind the write fence): the change stream applied up to the source\'s position at the fence, then validation.', {
  fencePosition: required(string('The source\'s change-log position read once writes were fenced.', { maxLength: 128 })),
  appliedPosition: optional(string('The position applied when the step ended.', { maxLength: 128 })),
  catchUpMs: optional(count('Milliseconds from the step\'s start to everything up to the fence position being on the target.')),
  transactions: optional(count('Source transactions applied by this step.')),
  validation: required(validateStepResult),
});

export const fenceStepResult = object('FenceStepResult', 'The fence step (ChangeCapture, fence type SourceReadOnly): the source database made read-only for the application, writes in flight ended.', {
  fenced: required(boolean('The source is read-only for new transactions and no session that could still write is left.')),
  previous: optional(string('The setting before the fence (restored by unfence): on, off or unset.', { maxLength: 16 })),
  sessionsEnded: optional(count('Sessions of the application ended so that none goes on writing.')),
  notes: optional(array(string('What the fence does not stop (accounts that bypass read_only, say).', { maxLength: STATUS_LIMITS.detail }), 'What the fence does not stop.')),
});

export const unfenceStepResult = object('UnfenceStepResult', 'The unfence step: the source database as it was before the fence.', {
  unfenced: required(boolean('The setting the fence changed is restored (or nothing was recorded).')),
  restored: optional(string('What was restored.', { maxLength: 64 })),
});

export const releaseStepResult = object('ReleaseStepResult', 'The release step (ChangeCapture): the source\'s capture resources dropped.', {
  released: required(boolean('Nothing of the capture is left on the source.')),
  slotDropped: optional(boolean('PostgreSQL: the replication slot was dropped by this step.')),
  publicationDropped: optional(boolean('PostgreSQL: the publication was dropped by this step.')),
  problems: optional(array(string('What could not be dropped, and the statement to drop it by hand.', { maxLength: STATUS_LIMITS.detail }), 'What could not be dropped.')),
});

export const rollbackStepResult = object('RollbackStepResult', 'The rollback step: the schema version it returned to, what it undid.', {
  version: optional(schemaVersion('The version after the rollback.')),
  reverted: optional(array(schemaVersion('A migration version.'), 'The migrations reverted.')),
  droppedTables: optional(names('Tables dropped (DropCreatedTables).')),
});

/** Every step's result, by step (the root the types are generated from). */
export const stepResultSchema: SchemaNode = object('StepResults', 'The result of each step, as its Job\'s termination message carries it.', {
  schema: required(schemaStepResult),
  copy: required(copyStepResult),
  sync: required(syncStepResult),
  validate: required(validateStepResult),
  fence: required(fenceStepResult),
  catchup: required(catchupStepResult),
  unfence: required(unfenceStepResult),
  release: required(releaseStepResult),
  rollback: required(rollbackStepResult),
});
