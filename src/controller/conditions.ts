// status.conditions in the Kubernetes shape, keyed by type. Pure helpers: they never read the
// clock (the caller passes `now`) and never mutate their input.
import { CONDITION_TYPES } from '../api/constants.ts';
import type { ConditionType, Reason } from '../api/constants.ts';
import type { Condition } from '../api/types.generated.ts';

export type ConditionStatus = Condition['status'];

/** What a caller sets; lastTransitionTime is the helper's business. */
export interface ConditionUpdate {
  type: ConditionType;
  status: ConditionStatus;
  reason: Reason;
  message: string;
  observedGeneration?: number;
}

/** Messages are bounded by the CRD (32 KiB); keep well inside it. */
const MAX_MESSAGE = 4096;

const order = (type: ConditionType): number => CONDITION_TYPES.indexOf(type);

export function findCondition(conditions: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

/**
 * Sets one condition and returns the new list (sorted in CONDITION_TYPES order). lastTransitionTime
 * is kept when the status did not change (reason and message may change freely), and becomes `now`
 * when it did or the condition is new.
 */
export function setCondition(conditions: readonly Condition[] | undefined, update: ConditionUpdate, now: string): Condition[] {
  const previous = findCondition(conditions, update.type);
  const message = update.message.length > MAX_MESSAGE ? `${update.message.slice(0, MAX_MESSAGE - 1)}…` : update.message;
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message,
    lastTransitionTime: previous !== undefined && previous.status === update.status ? previous.lastTransitionTime : now,
  };
  const generation = update.observedGeneration ?? previous?.observedGeneration;
  if (generation !== undefined) next.observedGeneration = generation;
  const others = (conditions ?? []).filter((condition) => condition.type !== update.type);
  return [...others, next].sort((a, b) => order(a.type) - order(b.type));
}

/** Drops a condition (for one that no longer applies). */
export function removeCondition(conditions: readonly Condition[] | undefined, type: ConditionType): Condition[] {
  return (conditions ?? []).filter((condition) => condition.type !== type);
}

/** Whether the condition is present with exactly this status and reason. */
export function conditionIs(conditions: readonly Condition[] | undefined, type: ConditionType, status: ConditionStatus, reason?: Reason): boolean {
  const condition = findCondition(conditions, type);
  return condition !== undefined && condition.status === status && (reason === undefined || condition.reason === reason);
}
