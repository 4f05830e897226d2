// A pod of a step Job failed while the Job is still running (the Job controller retries it after a
// backoff): said at once on the step's condition and Ready (reason StepPodFailed), with the step,
// the attempt, the side the engine named and its last words; one Warning Event per failed pod
// (status.announced counts them). Nothing is deleted: the retries go on, and when the Job later
// succeeds the step moves on as usual; when it fails, JobFailed says so (run-step.ts).
import { REASONS } from '../../api/constants.ts';
import type { Step } from '../../api/constants.ts';
import { bound, ready, setCond, STEP_TITLES, type Context } from '../context.ts';
import { STEP_MARKERS } from '../ledger.ts';
import type { ObservedJob, ObservedPodFailure } from '../model.ts';

/** Room for the engine's last words in the message (status.message holds 1024 characters in all). */
export const MAX_LAST_WORDS = 640;

/** What status says about a running step Job's failed pod. */
export function podFailedMessage(step: Step, job: Pick<ObservedJob, 'name'>, failure: ObservedPodFailure): string {
  const of = failure.index === undefined ? '' : ` of index ${failure.index}`;
  const exit = failure.exitCode === undefined ? '' : `, exit ${String(failure.exitCode)}`;
  const where = failure.side === undefined ? '' : ` on the ${failure.side}`;
  const next = failure.final
    ? 'no attempt is left: the step fails'
    : `the Job retries after its backoff (${String(failure.attempts - failure.failed)} attempt${failure.attempts - failure.failed === 1 ? '' : 's'} left)`;
  return `The ${STEP_TITLES[step]} Job ${job.name}: attempt ${String(failure.failed)} of ${String(failure.attempts)}${of} failed${where} `
    + `(pod ${failure.pod}${exit}): ${bound(failure.message, MAX_LAST_WORDS)}; ${next}`;
}

/**
 * The step's condition and Ready say the pod failure; Ready's occurrence is the failed count, so
 * each new failed pod is announced once (decide.ts readyEvent), and a reconcile that sees the same
 * count says nothing new.
 */
export function stepPodFailed(ctx: Context, step: Step, job: ObservedJob, failure: ObservedPodFailure): void {
  const marker = STEP_MARKERS[step];
  const message = podFailedMessage(step, job, failure);
  setCond(ctx, marker.type, marker.status, REASONS.StepPodFailed, message);
  ready(ctx, 'False', REASONS.StepPodFailed, message, failure.failed);
}
