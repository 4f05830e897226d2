// Reconciling and Stalled, the kstatus conventions that kubectl wait, Flux, Argo CD and cli-utils
// read: derived at the end of every decision from the phase and Ready, never read back.
//   Stalled True      the migration cannot go on without a person: Failed, RolledBack, or a
//                     refusal that stays until the spec changes (a refused Job, a refused spec).
//   Reconciling True  the operator is working on it (every other non-terminal state, waiting for
//                     approval or for a missing Secret included); False once it ended or is suspended.
// So `kubectl wait --for=condition=Ready` ends on success and `--for=condition=Stalled` on failure.
import { REASONS, TERMINAL_PHASES } from '../api/constants.ts';
import type { Reason } from '../api/constants.ts';
import type { Condition, DataMigrationStatus } from '../api/types.generated.ts';
import { findCondition, setCondition, type ConditionUpdate } from './conditions.ts';

/** Ready reasons of a non-terminal migration that no retry of the operator's own will clear. */
export const STALLING_REASONS: ReadonlySet<string> = new Set<Reason>([
  REASONS.JobRejected, REASONS.ServiceSwitchRejected, REASONS.InvalidSpec,
  // the operator's pod policy (pod-policy.ts): lifted only by a spec change
  REASONS.ImageNotAllowed, REASONS.ServiceAccountNotAllowed, REASONS.ReservedKey,
]);

type Derived = Record<'reconciling' | 'stalled', Pick<ConditionUpdate, 'status' | 'reason' | 'message'>>;

/** What Reconciling and Stalled say for this status (pure). */
export function deriveKstatus(status: DataMigrationStatus): Derived {
  const phase = status.phase ?? 'Pending';
  const ready = findCondition(status.conditions, 'Ready');
  // Ready's reason is always one of REASONS: this operator is the only writer of status.
  const reason = (ready?.reason ?? REASONS.Initializing) as Reason;
  const message = ready?.message ?? status.message ?? phase;
  const not = (why: Reason): Derived['stalled'] => ({ status: 'False', reason: why, message: `Not stalled: ${phase}` });
  if (phase === 'Succeeded') {
    return { reconciling: { status: 'False', reason: REASONS.Succeeded, message }, stalled: not(REASONS.Succeeded) };
  }
  if ((TERMINAL_PHASES as readonly string[]).includes(phase) || STALLING_REASONS.has(reason)) {
    return {
      reconciling: { status: 'False', reason, message: `Stopped: ${message}` },
      stalled: { status: 'True', reason, message },
    };
  }
  if (reason === REASONS.Suspended) {
    return { reconciling: { status: 'False', reason, message }, stalled: not(reason) };
  }
  return { reconciling: { status: 'True', reason, message }, stalled: not(REASONS.InProgress) };
}

/** The conditions with Reconciling and Stalled set from the rest of the status. */
export function withKstatus(status: DataMigrationStatus, generation: number, now: string): Condition[] {
  const derived = deriveKstatus(status);
  const conditions = setCondition(status.conditions, { type: 'Reconciling', ...derived.reconciling, observedGeneration: generation }, now);
  return setCondition(conditions, { type: 'Stalled', ...derived.stalled, observedGeneration: generation }, now);
}
