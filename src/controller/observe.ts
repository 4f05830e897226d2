// What the reconciler observes, reduced to decide()'s input (pure): a Job's state from its
// conditions, its step and run from its labels, its result from the engine container's
// termination message (an Indexed copy Job's: every index's, merged). Only pods the Job controls
// count: anyone who may create a Pod can give one the step's labels and a termination message.
import type * as k8s from '@kubernetes/client-node';
import { GROUP, KIND, LABELS, STEPS, type Step } from '../api/constants.ts';
import type { DataMigration } from '../api/types.ts';
import { scrub } from './logger.ts';
import type { DataMigrationStatus } from '../api/types.ts';
import type { ObservedJob, ObservedPodFailure, ObservedService } from './model.ts';

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

/** The engine container's termination state in the Job's newest pod that ended (succeeded or not). */
/**
 * When the container finished, as a time: the client gives a Date (String(Date) starts with the
 * weekday, so comparing texts picks the wrong pod across midnight), a fixture may give text.
 */
function finishedTime(terminated: k8s.V1ContainerStateTerminated | undefined): number {
  const at: unknown = terminated?.finishedAt;
  const ms = at instanceof Date ? at.getTime() : typeof at === 'string' ? Date.parse(at) : Number.NaN;
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

function lastTermination(pods: readonly k8s.V1Pod[], wantSucceeded: boolean): k8s.V1ContainerStateTerminated | undefined {
  const finished = pods
    .map((pod) => ({ pod, terminated: pod.status?.containerStatuses?.find((c) => c.name === 'engine')?.state?.terminated }))
    .filter((p) => p.terminated !== undefined && (p.terminated.exitCode === 0) === wantSucceeded)
    .sort((a, b) => finishedTime(b.terminated) - finishedTime(a.terminated));
  return finished[0]?.terminated;
}

/** The termination message of the engine container of the Job's newest finished pod. */
export function terminationMessage(pods: readonly k8s.V1Pod[], wantSucceeded: boolean): string | undefined {
  return lastTermination(pods, wantSucceeded)?.message ?? undefined;
}

/**
 * Control characters (but tab and newline) and bidirectional overrides, which a terminal or a UI
 * would obey: a step's words reach status and Events, which people read with kubectl, and carry
 * text from the manifest and the databases (a table name, a server's error), so an escape sequence
 * there could rewrite what a person sees. Each becomes U+FFFD.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
export const printable = (text: string): string => text.replace(UNPRINTABLE, '\ufffd');

/** Every string in a parsed result made printable (keys too: they name tables and columns). */
function printableDeep(value: unknown): unknown {
  if (typeof value === 'string') return printable(value);
  if (Array.isArray(value)) return value.map(printableDeep);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, item]) => [printable(key), printableDeep(item)]));
  return value;
}

/**
 * A step's last words as status and Events may hold them: printable, and scrubbed of every secret
 * the operator knows and of URL passwords (the engine redacts its own URLs; this holds for any
 * image the configuration allows, and for a failure read at the end as on the first failed pod).
 */
export const lastWords = (text: string): string => printable(scrub(text));

function parseResult(message: string): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(message) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? printableDeep(parsed) as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the Job controls the pod: an owner reference to a batch Job with the Job's uid, marked
 * controller. Labels prove nothing (anyone may set them); the Job controller sets this reference
 * on the pods it creates.
 */
export function controlledByJob(pod: k8s.V1Pod, job: k8s.V1Job): boolean {
  const uid = job.metadata?.uid;
  if (uid === undefined || uid === '') return false;
  return (pod.metadata?.ownerReferences ?? []).some((owner) => owner.controller === true && owner.kind === 'Job'
    && owner.apiVersion === 'batch/v1' && owner.uid === uid);
}

/**
 * Whether the migration controls the Job: the step labels naming it and an owner reference to a
 * DataMigration of this API group with its uid, marked controller, as job-builder.ts sets it.
 * Labels alone prove nothing, and neither does a reference without `controller: true` (one object
 * has at most one controller): a Job planted under a step's predictable name is never its result.
 */
export function controlledByMigration(job: k8s.V1Job, migration: DataMigration): boolean {
  const uid = migration.metadata?.uid;
  const meta = job.metadata;
  if (uid === undefined || uid === '' || meta === undefined || meta.labels?.[LABELS.migration] !== migration.metadata?.name) return false;
  return (meta.ownerReferences ?? []).some((owner) => owner.controller === true && owner.kind === KIND
    && owner.apiVersion.split('/')[0] === GROUP && owner.uid === uid);
}

/**
 * A Job this migration owns as decide() sees it; undefined for a Job without step labels. Its
 * result and failure are read from the pods it controls only (controlledByJob).
 */
export function observeJob(job: k8s.V1Job, listed: readonly k8s.V1Pod[]): ObservedJob | undefined {
  const pods = listed.filter((pod) => controlledByJob(pod, job));
  const labels = job.metadata?.labels ?? {};
  const step = labels[LABELS.step];
  const runId = labels[LABELS.run];
  if (!isStep(step) || !runId) return undefined;
  const state = jobState(job);
  const observed: ObservedJob = { name: job.metadata?.name ?? '', step, runId, state };
  if (state === 'Succeeded') {
    if (job.spec?.completionMode === 'Indexed') {
      const result = indexedResult(pods);
      if (result !== undefined) observed.result = result;
    } else {
      const message = terminationMessage(pods, true);
      if (message !== undefined) observed.result = parseResult(message) ?? lastWords(message); // decide() reports an unreadable result
    }
  } else if (state === 'Failed') {
    const condition = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');
    const message = terminationMessage(pods, false);
    // A step that ran to a verdict (validation failed: exit 4) leaves its result as JSON.
    const result = message === undefined ? undefined : parseResult(message);
    if (result !== undefined) observed.result = result;
    observed.failureMessage = lastWords([condition?.reason, condition?.message, result === undefined ? message : undefined].filter(Boolean).join(': ') || 'the Job failed');
    // The engine's exit code says why (src/cli/exit-codes.ts): a refused plan, a bad manifest.
    const exitCode = lastTermination(pods, false)?.exitCode;
    if (exitCode !== undefined) observed.exitCode = exitCode;
  } else {
    const podFailure = observePodFailure(job, pods);
    if (podFailure !== undefined) observed.podFailure = podFailure;
  }
  return observed;
}

const COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index';

/** The Job controller's default backoffLimit. */
const DEFAULT_BACKOFF_LIMIT = 6;

/**
 * The side the engine's last words name: connection errors say "cannot connect to postgres (the
 * target): …" (src/engine/db/connect-error.ts), timeouts "target: statement timed out …".
 */
export function sideNamed(message: string): ObservedPodFailure['side'] {
  const side = /\(the (source|target)\)/.exec(message)?.[1] ?? /^(source|target): /m.exec(message)?.[1];
  return side === 'source' || side === 'target' ? side : undefined;
}

const completionIndex = (pod: k8s.V1Pod): string | undefined => pod.metadata?.annotations?.[COMPLETION_INDEX] ?? pod.metadata?.labels?.[COMPLETION_INDEX];

/**
 * A running Job's newest failed pod (pods it controls only, given here), with how many attempts
 * failed and how many it allows; undefined while none failed. Its last words are scrubbed of every
 * secret the operator knows and of URL passwords (the engine already redacts its own URLs).
 */
export function observePodFailure(job: k8s.V1Job, pods: readonly k8s.V1Pod[]): ObservedPodFailure | undefined {
  const failedPods = pods
    .filter((pod) => pod.status?.phase === 'Failed')
    .map((pod) => ({ pod, terminated: pod.status?.containerStatuses?.find((c) => c.name === 'engine')?.state?.terminated }))
    .sort((a, b) => finishedTime(b.terminated) - finishedTime(a.terminated));
  const newest = failedPods[0];
  if (newest === undefined) return undefined;
  const { pod, terminated } = newest;
  const perIndex = job.spec?.completionMode === 'Indexed' && job.spec.backoffLimitPerIndex !== undefined;
  const index = completionIndex(pod);
  const failed = perIndex
    ? failedPods.filter((p) => completionIndex(p.pod) === index).length
    : Math.max(job.status?.failed ?? 0, failedPods.length);
  const attempts = (perIndex ? job.spec?.backoffLimitPerIndex ?? 0 : job.spec?.backoffLimit ?? DEFAULT_BACKOFF_LIMIT) + 1;
  const failing = (job.status?.conditions ?? []).some((c) => c.type === 'FailureTarget' && c.status === 'True');
  const words = terminated?.message?.trim() ?? '';
  const message = lastWords(words !== ''
    ? words
    : [terminated?.reason ?? pod.status?.reason, pod.status?.message, 'no termination message'].filter(Boolean).join(': '));
  const failure: ObservedPodFailure = { failed, attempts, final: failing || failed >= attempts, pod: pod.metadata?.name ?? '', message };
  if (perIndex && index !== undefined) failure.index = index;
  if (terminated?.exitCode !== undefined) failure.exitCode = terminated.exitCode;
  const side = sideNamed(words);
  if (side !== undefined) failure.side = side;
  return failure;
}

/**
 * An Indexed Job's result: the newest succeeded pod of each index, merged (the copy's pods each
 * report their share). A message that is not JSON is returned as it is, for decide() to report.
 */
export function indexedResult(pods: readonly k8s.V1Pod[]): Record<string, unknown> | string | undefined {
  const byIndex = new Map<string, k8s.V1Pod[]>();
  for (const pod of pods) {
    const index = completionIndex(pod);
    if (index !== undefined) byIndex.set(index, [...byIndex.get(index) ?? [], pod]);
  }
  const results: Record<string, unknown>[] = [];
  for (const index of [...byIndex.keys()].sort((a, b) => Number(a) - Number(b))) {
    const message = terminationMessage(byIndex.get(index) ?? [], true);
    if (message === undefined) continue;
    const result = parseResult(message);
    if (result === undefined) return `pod ${index}: ${lastWords(message)}`;
    results.push(result);
  }
  return results.length === 0 ? undefined : mergeCopyResults(results);
}

const count = (value: unknown): number => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0);

/**
 * The copy pods' results as one, in the shape one pod reports: tables by name with their rows
 * summed (a table's state is the worst any pod reports), rowsThisRun and postCopyStatements summed,
 * and per pod what it did. Fields it does not know are left out; malformed tables are passed on
 * for decide() to reject.
 */
export function mergeCopyResults(results: readonly Record<string, unknown>[]): Record<string, unknown> {
  const tables = new Map<string, Record<string, unknown>>();
  const odd: unknown[] = [];
  const states = ['Copied', 'Copying', 'Pending', 'Failed'];
  for (const result of results) {
    for (const table of Array.isArray(result.tables) ? result.tables as unknown[] : []) {
      const name = typeof table === 'object' && table !== null && 'name' in table ? table.name : undefined;
      if (typeof name !== 'string') {
        odd.push(table);
        continue;
      }
      const entry = table as Record<string, unknown>;
      const seen = tables.get(name);
      if (!seen) {
        tables.set(name, { ...entry });
        continue;
      }
      if (typeof entry.rowsCopied === 'number') seen.rowsCopied = count(seen.rowsCopied) + entry.rowsCopied;
      if (states.indexOf(String(entry.state)) > states.indexOf(String(seen.state))) seen.state = entry.state;
      if (entry.message !== undefined) seen.message = entry.message;
    }
  }
  const zeroDates: Record<string, number> = {};
  for (const result of results) {
    if (typeof result.zeroDates !== 'object' || result.zeroDates === null) continue;
    for (const [column, n] of Object.entries(result.zeroDates)) zeroDates[column] = (zeroDates[column] ?? 0) + count(n);
  }
  const warnings = [...new Set(results.flatMap((r) => (Array.isArray(r.warnings) ? r.warnings as unknown[] : [])))];
  const merged: Record<string, unknown> = {
    tables: [...tables.values(), ...odd],
    zeroDates, warnings,
    rowsThisRun: results.reduce((sum, r) => sum + count(r.rowsThisRun), 0),
    postCopyStatements: results.reduce((sum, r) => sum + count(r.postCopyStatements), 0),
    pods: results.map((r) => ({ pod: r.pod, rowsThisRun: r.rowsThisRun, postCopy: r.postCopy })),
  };
  if (results.some((r) => r.truncated === true)) merged.truncated = true;
  return merged;
}

/** A Service as decide() sees it: selector, labels, this project's annotations (not kubectl's large ones), version. */
export function observedService(service: k8s.V1Service): ObservedService {
  const annotations = Object.fromEntries(Object.entries(service.metadata?.annotations ?? {}).filter(([key]) => key.startsWith(`${GROUP}/`)));
  return {
    selector: { ...service.spec?.selector }, labels: { ...service.metadata?.labels }, annotations,
    resourceVersion: service.metadata?.resourceVersion ?? '',
  };
}

/**
 * What a step's engine needs beyond the manifest. The rollback returns to the version the target
 * itself recorded before the first schema step (engine: rollback/rollback.ts); status.schema.versionBefore
 * is passed only as a hint for a target with no such record (a migration whose schema step ran
 * under an engine that did not record it), and the engine says so when it uses it.
 */
export function stepEnv(step: Step, status: DataMigrationStatus): k8s.V1EnvVar[] {
  if (step !== 'rollback') return [];
  const before = status.schema?.versionBefore;
  return [{ name: 'DMO_ROLLBACK_TO_VERSION', value: before ?? '' }];
}
