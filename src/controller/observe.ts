// What the reconciler observes, reduced to decide()'s input (pure): a Job's state from its
// conditions, its step and run from its labels, its result from the engine container's
// termination message.
import type * as k8s from '@kubernetes/client-node';
import { LABELS, STEPS, type Step } from '../api/constants.ts';
import type { ObservedJob } from './decide.ts';

const isStep = (value: string | undefined): value is Step => STEPS.some((step) => step === value);

export function jobState(job: k8s.V1Job): ObservedJob['state'] {
  const conditions = job.status?.conditions ?? [];
  const isTrue = (type: string): boolean => conditions.some((c) => c.type === type && c.status === 'True');
  // Only the final conditions: SuccessCriteriaMet and FailureTarget come first, while pods are still
  // being cleaned up, and a result read then could miss the last pod's termination message.
  if (isTrue('Complete')) return 'Succeeded';
  if (isTrue('Failed')) return 'Failed';
  return 'Running';
}

/** The termination message of the engine container of the Job's newest finished pod. */
export function terminationMessage(pods: readonly k8s.V1Pod[], wantSucceeded: boolean): string | undefined {
  const finished = pods
    .map((pod) => ({ pod, terminated: pod.status?.containerStatuses?.find((c) => c.name === 'engine')?.state?.terminated }))
    .filter((p) => p.terminated !== undefined && (p.terminated.exitCode === 0) === wantSucceeded)
    .sort((a, b) => String(b.terminated?.finishedAt ?? '').localeCompare(String(a.terminated?.finishedAt ?? '')));
  return finished[0]?.terminated?.message ?? undefined;
}

function parseResult(message: string): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(message) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/** A Job this migration owns as decide() sees it; undefined for a Job without step labels. */
export function observeJob(job: k8s.V1Job, pods: readonly k8s.V1Pod[]): ObservedJob | undefined {
  const labels = job.metadata?.labels ?? {};
  const step = labels[LABELS.step];
  const runId = labels[LABELS.run];
  if (!isStep(step) || !runId) return undefined;
  const state = jobState(job);
  const observed: ObservedJob = { name: job.metadata?.name ?? '', step, runId, state };
  if (state === 'Succeeded') {
    const message = terminationMessage(pods, true);
    if (message !== undefined) observed.result = parseResult(message) ?? message; // decide() reports an unreadable result
  } else if (state === 'Failed') {
    const condition = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
    const message = terminationMessage(pods, false);
    // A step that ran to a verdict (validation failed: exit 4) leaves its result as JSON.
    const result = message === undefined ? undefined : parseResult(message);
    if (result !== undefined) observed.result = result;
    observed.failureMessage = [condition?.reason, condition?.message, result === undefined ? message : undefined].filter(Boolean).join(': ') || 'the Job failed';
  }
  return observed;
}
