// The phase machine's transition table: from each phase, the phases a decision may move it to.
// context.transition() checks every move against it, so a handler that moves anywhere else throws
// (a bug, never a state to record); test/unit/controller-transitions.test.ts drives every handler.
import type { Phase } from '../api/constants.ts';

export const TRANSITIONS: Readonly<Record<Phase, readonly Phase[]>> = {
  Pending: ['SchemaMigrating', 'Copying', 'Failed'],
  SchemaMigrating: ['Copying', 'Failed'],
  Copying: ['Syncing', 'Validating', 'Failed'],
  // ChangeCapture: Syncing goes on to the approval gate or straight to the cutover (validation runs
  // behind the fence); its validation at a cut that fails rolls back, in AwaitingApproval too.
  Syncing: ['Validating', 'AwaitingApproval', 'CuttingOver', 'RollingBack', 'Failed'],
  Validating: ['AwaitingApproval', 'CuttingOver', 'Succeeded', 'RollingBack', 'Failed'],
  AwaitingApproval: ['CuttingOver', 'Succeeded', 'RollingBack', 'Failed'],
  // ChangeCapture: a validation behind the fence that fails rolls back like any other.
  CuttingOver: ['Succeeded', 'RollingBack', 'Failed'],
  RollingBack: ['RolledBack', 'Failed'],
  // A retry resumes the step that stopped (retry.ts): a start aborted before anything ran, a Job
  // step, or the cutover at the approval gate.
  Failed: ['Pending', 'SchemaMigrating', 'Copying', 'Syncing', 'Validating', 'AwaitingApproval', 'RollingBack'],
  Succeeded: [],
  RolledBack: [],
};

export class InvalidTransitionError extends Error {
  readonly from: Phase;
  readonly to: Phase;
  constructor(from: Phase, to: Phase) {
    super(`the phase machine has no transition ${from} → ${to}`);
    this.from = from;
    this.to = to;
  }
}

export function assertTransition(from: Phase, to: Phase): void {
  if (!TRANSITIONS[from].includes(to)) throw new InvalidTransitionError(from, to);
}
