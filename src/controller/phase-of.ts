// The phase is computed, not remembered: where the ledger (status.steps) and the inputs (the
// spec, the approval) put the machine. decide() starts from this phase whatever status.phase says;
// status.phase is written for people at the end of each decision (test/unit/controller-memory.test.ts
// scrambles it). The handlers move the phase on within a decision, checked against transitions.ts.
import { REASONS } from '../api/constants.ts';
import type { Phase } from '../api/constants.ts';
import type { DataMigrationStatus } from '../api/types.generated.ts';
import { entryOf } from './ledger.ts';

/** What the phase depends on besides the ledger. */
export interface PhaseInputs {
  /** The run has a schema step (spec.schema; fixed once the run started). */
  schemaStep: boolean;
  /** Trickle: a sync follows the copy (spec.strategy; fixed once the run started). */
  trickle: boolean;
  /** Trickle with ChangeCapture: the sync runs until the write fence, validation runs behind it (phases/capture.ts). */
  changeCapture: boolean;
  /** spec.cutover.approval is Manual. */
  manualApproval: boolean;
}

/** A validate step that ended with a verdict (not a failed Job): the rollback's way in. */
const VERDICTS: ReadonlySet<string> = new Set<string>([REASONS.ValidationFailed, REASONS.ChecksumMismatch]);

export function phaseOf(status: DataMigrationStatus, inputs: PhaseInputs): Phase {
  const finish = entryOf(status, 'finish');
  if (finish?.outcome !== undefined) {
    if (finish.outcome === 'Succeeded') return 'Succeeded';
    return finish.reason === REASONS.RolledBack ? 'RolledBack' : 'Failed';
  }
  if (entryOf(status, 'start')?.outcome !== 'Succeeded') return 'Pending';
  const validate = entryOf(status, 'validate');
  if (validate?.outcome === 'Failed' && VERDICTS.has(validate.reason ?? '')) return 'RollingBack';
  if (inputs.changeCapture) return changeCapturePhase(status, inputs);
  // The switch's entry is made when the cutover is cleared to go (context.ts transition()), before it is sent.
  if (validate?.outcome === 'Succeeded') return entryOf(status, 'switch') === undefined ? 'AwaitingApproval' : 'CuttingOver';
  if (inputs.schemaStep && entryOf(status, 'schema')?.outcome !== 'Succeeded') return 'SchemaMigrating';
  if (entryOf(status, 'copy')?.outcome !== 'Succeeded') return 'Copying';
  if (inputs.trickle && entryOf(status, 'sync')?.outcome !== 'Succeeded') return 'Syncing';
  return 'Validating';
}

/** ChangeCapture: the stream runs until the cutover is cleared to go (the fence's entry, made before anything is fenced); validation runs behind the fence. */
function changeCapturePhase(status: DataMigrationStatus, inputs: PhaseInputs): Phase {
  if (inputs.schemaStep && entryOf(status, 'schema')?.outcome !== 'Succeeded') return 'SchemaMigrating';
  if (entryOf(status, 'copy')?.outcome !== 'Succeeded') return 'Copying';
  if (entryOf(status, 'fence') !== undefined) return 'CuttingOver';
  return inputs.manualApproval ? 'AwaitingApproval' : 'Syncing';
}
