// kubectl-dm's I/O: the DataMigration, its step Jobs, their pods' logs and the Events about it,
// through the user's kubeconfig (client-node), and the merge patches that approve, abort, retry,
// suspend and resume.
import * as k8s from '@kubernetes/client-node';
import type { MigrationPatch } from '../api/annotations.ts';
import { GROUP, KIND, LABELS, PLURAL, VERSION } from '../api/constants.ts';
import type { DataMigration } from '../api/types.ts';
import type { Target } from './args.ts';
import type { EventView, JobView } from './render.ts';

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export interface Cluster {
  readonly namespace: string;
  getMigration(name: string): Promise<DataMigration>;
  patchMigration(name: string, patch: MigrationPatch): Promise<DataMigration>;
  listJobs(name: string): Promise<JobView[]>;
  listEvents(name: string): Promise<EventView[]>;
  /** The pods of a Job, oldest first. */
  listJobPods(job: string): Promise<string[]>;
  podLog(pod: string, tail?: number): Promise<string>;
}

/** The kubeconfig as kubectl would read it: --kubeconfig, else $KUBECONFIG, else ~/.kube/config (or in-cluster). */
export function loadKubeConfig(target: Pick<Target, 'kubeconfig' | 'context'>): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (target.kubeconfig !== undefined) kc.loadFromFile(target.kubeconfig);
  else kc.loadFromDefault();
  if (target.context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === target.context)) throw new Error(`context ${target.context} is not in the kubeconfig`);
    kc.setCurrentContext(target.context);
  }
  return kc;
}

/** An API error as one line: the server's message (Status.message) when there is one. */
export function describeApiError(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    const body: unknown = typeof error.body === 'string' ? safeJson(error.body) : error.body;
    const message = typeof body === 'object' && body !== null && 'message' in body ? String((body).message) : undefined;
    return `${message ?? 'request failed'} (HTTP ${error.code})`;
  }
  return error instanceof Error ? error.message : String(error);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const date = (value: Date | string | undefined): Date | undefined => (value === undefined ? undefined : new Date(value));

export function jobView(job: k8s.V1Job): JobView {
  const labels = job.metadata?.labels ?? {};
  const finished = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  const createdAt = date(job.status?.startTime ?? job.metadata?.creationTimestamp);
  const completedAt = date(job.status?.completionTime ?? finished?.lastTransitionTime);
  return {
    name: job.metadata?.name ?? '',
    step: labels[LABELS.step] ?? '',
    run: labels[LABELS.run] ?? '',
    ...(createdAt ? { createdAt } : {}),
    ...(completedAt && finished ? { completedAt } : {}),
    active: job.status?.active ?? 0,
    succeeded: job.status?.succeeded ?? 0,
    failed: job.status?.failed ?? 0,
    ...(finished ? {
      finished: {
        type: finished.type as 'Complete' | 'Failed',
        ...(finished.reason ? { reason: finished.reason } : {}),
        ...(finished.message ? { message: finished.message } : {}),
      },
    } : {}),
  };
}

export function eventView(event: k8s.EventsV1Event): EventView {
  // eventTime is required by the type, but Events recorded through core/v1 come without it.
  const eventTime = event.eventTime as Date | string | undefined;
  const time = date(event.series?.lastObservedTime ?? eventTime ?? event.deprecatedLastTimestamp ?? event.metadata?.creationTimestamp);
  return { ...(time ? { time } : {}), type: event.type ?? '', reason: event.reason ?? '', message: event.note ?? '' };
}

export function connect(target: Target): Cluster {
  const kc = loadKubeConfig(target);
  const namespace = target.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const events = kc.makeApiClient(k8s.EventsV1Api);
  const object = { group: GROUP, version: VERSION, plural: PLURAL, namespace };
  return {
    namespace,
    async getMigration(name) {
      return await custom.getNamespacedCustomObject({ ...object, name }) as DataMigration;
    },
    async patchMigration(name, patch) {
      return await custom.patchNamespacedCustomObject({ ...object, name, body: patch }, mergePatch) as DataMigration;
    },
    async listJobs(name) {
      const list = await batch.listNamespacedJob({ namespace, labelSelector: `${LABELS.migration}=${name}` });
      return list.items.map(jobView).sort((a, b) => (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0));
    },
    async listEvents(name) {
      const list = await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.kind=${KIND},regarding.name=${name}` });
      return list.items.map(eventView);
    },
    async listJobPods(job) {
      const list = await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` });
      return list.items
        .sort((a, b) => (a.metadata?.creationTimestamp?.getTime() ?? 0) - (b.metadata?.creationTimestamp?.getTime() ?? 0))
        .map((pod) => pod.metadata?.name ?? '');
    },
    async podLog(pod, tail) {
      return await core.readNamespacedPodLog({ name: pod, namespace, ...(tail !== undefined ? { tailLines: tail } : {}) });
    },
  };
}
