// The one place a reconcile's outcome is turned into what the work queue does next, as
// controller-runtime's reconcileHandler does: a result (requeue after, or nothing) or an error.
// A conflict (409: our cache was behind the object we wrote) retries at once from fresh state; a
// refused Job never gets here (the reconciler records it in status and asks again later, no retry
// loop); anything else backs off, per key, exponentially.
import type { Step } from '../api/constants.ts';

export interface ReconcileResult {
  /** Reconcile again after this many seconds; absent when only a change should wake it. */
  requeueAfterSeconds?: number;
}

/** What the API server refused: a step's Job, or the cutover's Service patch. */
export type Refused = { kind: 'job'; step: Step } | { kind: 'switch'; service: string };

/**
 * The API server refused a request of this run as it would refuse it again (a Job: 400, 403, 404,
 * 422; a Service patch: 400, 403, 422): recorded in status and asked for again later, not retried.
 */
export class RequestRefusedError extends Error {
  readonly refused: Refused;
  readonly runId: string;
  constructor(refused: Refused, runId: string, message: string) {
    super(message);
    this.refused = refused;
    this.runId = runId;
  }
}

/** A Service patch's refusals that a retry meets again (not 404: the Service went, which the next decision sees; not 409). */
export const SWITCH_REFUSED_CODES: ReadonlySet<number> = new Set([400, 403, 422]);

/** Answers to a Job create that the same request would get again (not 409, 429 or 5xx). */
export const REFUSED_CODES: ReadonlySet<number> = new Set([400, 403, 404, 422]);
/** A conflict is retried after this long: the informer has the fresh object by then, almost always. */
export const CONFLICT_RETRY_MS = 200;

export function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export type Outcome =
  | { kind: 'done' }
  | { kind: 'requeue'; afterMs: number }
  | { kind: 'conflict' }
  | { kind: 'error'; error: unknown };

export function outcomeOf(run: { result: ReconcileResult } | { error: unknown }): Outcome {
  if ('error' in run) return statusCode(run.error) === 409 ? { kind: 'conflict' } : { kind: 'error', error: run.error };
  const seconds = run.result.requeueAfterSeconds;
  return seconds === undefined ? { kind: 'done' } : { kind: 'requeue', afterMs: seconds * 1000 };
}

/** What the work queue offers for this. */
export interface OutcomeQueue {
  forget(key: string): void;
  addAfter(key: string, delayMs: number): void;
  addRateLimited(key: string): void;
}

/** The one switch over outcomes. */
export function applyOutcome(queue: OutcomeQueue, key: string, outcome: Outcome): void {
  switch (outcome.kind) {
    case 'done':
      queue.forget(key);
      return;
    case 'requeue':
      queue.forget(key);
      queue.addAfter(key, outcome.afterMs);
      return;
    case 'conflict':
      queue.addAfter(key, CONFLICT_RETRY_MS);
      return;
    case 'error':
      queue.addRateLimited(key);
      return;
  }
}
