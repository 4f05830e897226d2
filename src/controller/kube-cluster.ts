// The Cluster interface (cluster.ts) on a real API server, with @kubernetes/client-node: reads from
// the informer caches, requests through one shared connection pool (kube-client.ts). Every API
// error becomes a ClusterError with its HTTP code and a one-line message (never the response).
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../api/constants.ts';
import type { DataMigration, DataMigrationStatus } from '../api/types.ts';
import {
  ClusterError, labelSelectorText, serviceMergePatch, type Cluster, type ClusterEvent, type DeploymentReplicas, type DeploymentScale, type ServicePatch,
} from './cluster.ts';
import type { ObservedFenceDeployment } from './model.ts';
import { microTime } from './leader-election.ts';
import { registerSecret } from './logger.ts';

/** An API error in one line: the HTTP code and the Status message, never the whole response. */
export function describeError(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    let message: string;
    try {
      const body = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as { message?: string; reason?: string } | undefined;
      message = [body?.reason, body?.message].filter(Boolean).join(': ');
    } catch {
      message = ''; // not a Status object: the code says enough
    }
    return `HTTP ${String(error.code)}${message ? ` ${message}` : ''}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The request's error as a ClusterError (other errors, such as a refused connection, pass as they are). */
async function request<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    if (error instanceof k8s.ApiException) throw new ClusterError(error.code, describeError(error));
    throw error;
  }
}

async function orMissing<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await request(read);
  } catch (error) {
    if (error instanceof ClusterError && error.code === 404) return undefined;
    throw error;
  }
}

/**
 * Which keys each Secret has, remembered for a few seconds: the preflights of a burst of
 * migrations that name the same Secrets read each once. Only the names of the keys are kept,
 * never a value; a missing Secret is not remembered, so one that appears is seen at once.
 */
export class SecretKeysCache {
  private readonly entries = new Map<string, { keys: Promise<ReadonlySet<string> | undefined>; at: number }>();
  private readonly core: k8s.CoreV1Api;
  private readonly ttlMs: number;

  constructor(core: k8s.CoreV1Api, ttlMs = 10_000) {
    this.core = core;
    this.ttlMs = ttlMs;
  }

  /** The Secret's keys; undefined when it does not exist. */
  async keysOf(namespace: string, name: string): Promise<ReadonlySet<string> | undefined> {
    const id = `${namespace}/${name}`;
    const now = Date.now();
    const hit = this.entries.get(id);
    if (hit && now - hit.at < this.ttlMs) return hit.keys;
    if (this.entries.size >= 1024) for (const [key, entry] of this.entries) if (now - entry.at >= this.ttlMs) this.entries.delete(key);
    // The promise is shared, so reconciles asking at once cause one GET.
    const keys = orMissing(() => this.core.readNamespacedSecret({ name, namespace })).then((secret) => (secret ? new Set(Object.keys(secret.data ?? {})) : undefined));
    this.entries.set(id, { keys, at: now });
    const found = await keys.catch((error: unknown) => {
      this.entries.delete(id);
      throw error;
    });
    if (!found) this.entries.delete(id);
    return found;
  }
}

export interface KubeClusterCaches {
  migrations: k8s.ObjectCache<DataMigration>;
  jobs: k8s.ObjectCache<k8s.V1Job>;
  services: k8s.ObjectCache<k8s.V1Service>;
}

export class KubeCluster implements Cluster {
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  private readonly batch: k8s.BatchV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly events: k8s.EventsV1Api;
  private readonly caches: KubeClusterCaches;
  private readonly secretKeysCache: SecretKeysCache;
  /** Where Events say they come from. */
  private readonly reportingInstance: string;

  constructor(kc: k8s.KubeConfig, caches: KubeClusterCaches, reportingInstance: string) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.batch = kc.makeApiClient(k8s.BatchV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.events = kc.makeApiClient(k8s.EventsV1Api);
    this.caches = caches;
    this.secretKeysCache = new SecretKeysCache(this.core);
    this.reportingInstance = reportingInstance;
  }

  migration(namespace: string, name: string): DataMigration | undefined {
    return this.caches.migrations.get(name, namespace);
  }

  jobs(namespace: string): readonly k8s.V1Job[] {
    return this.caches.jobs.list(namespace);
  }

  service(namespace: string, name: string): k8s.V1Service | undefined {
    return this.caches.services.get(name, namespace);
  }

  servicesIn(namespace: string): readonly k8s.V1Service[] {
    return this.caches.services.list(namespace);
  }

  async jobPods(namespace: string, job: string): Promise<k8s.V1Pod[]> {
    // Anyone who may create a Pod can give it this label: observe.ts keeps only the pods the Job controls.
    return (await request(() => this.core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` }))).items;
  }

  async createJob(job: k8s.V1Job): Promise<void> {
    await request(() => this.batch.createNamespacedJob({ namespace: job.metadata?.namespace ?? '', body: job }));
  }

  async deleteJob(namespace: string, name: string): Promise<void> {
    await request(() => this.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }));
  }

  async patchServiceSelector(namespace: string, name: string, patch: ServicePatch): Promise<void> {
    // A merge patch carrying resourceVersion is refused (409) unless the Service is still at that
    // version: the consent and the selector the decision checked are the ones the patch changes.
    if (patch.resourceVersion === '') throw new Error(`Service ${name}: no resourceVersion observed, so no conditional patch; not sent`);
    await request(() => this.core.patchNamespacedService({
      name, namespace, body: serviceMergePatch(patch),
    }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)));
  }

  async patchMigration(migration: DataMigration, operations: object[]): Promise<DataMigration> {
    return await request(() => this.custom.patchNamespacedCustomObject({
      group: GROUP, version: VERSION, plural: PLURAL, namespace: migration.metadata?.namespace ?? '', name: migration.metadata?.name ?? '', body: operations,
    }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch))) as DataMigration;
  }

  async writeStatus(migration: DataMigration, status: DataMigrationStatus): Promise<DataMigration> {
    // Optimistic concurrency: the resourceVersion we decided on; a conflict retries from fresh state.
    return await request(() => this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP, version: VERSION, plural: PLURAL, namespace: migration.metadata?.namespace ?? '', name: migration.metadata?.name ?? '',
      body: { ...migration, status },
    })) as DataMigration;
  }

  async recordEvent(migration: DataMigration, event: ClusterEvent): Promise<void> {
    const namespace = migration.metadata?.namespace ?? '';
    await request(() => this.events.createNamespacedEvent({
      namespace,
      body: {
        // Named like client-go names Events: the object's name, a dot, a unique suffix.
        metadata: { name: `${migration.metadata?.name ?? 'dm'}.${event.time.getTime().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
        eventTime: microTime(event.time) as unknown as Date, // client-node's Date serialiser drops the microseconds the server requires
        reportingController: `${GROUP}/datamigration-operator`,
        reportingInstance: this.reportingInstance,
        action: event.reason,
        reason: event.reason,
        type: event.type,
        note: event.message.slice(0, 1024),
        regarding: {
          apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', name: migration.metadata?.name ?? '', namespace,
          uid: migration.metadata?.uid ?? '', resourceVersion: migration.metadata?.resourceVersion ?? '',
        },
      },
    }));
  }

  async secretKeys(namespace: string, name: string): Promise<ReadonlySet<string> | undefined> {
    return await this.secretKeysCache.keysOf(namespace, name);
  }

  async secretValue(namespace: string, name: string, key: string): Promise<string | undefined> {
    const secret = await request(() => this.core.readNamespacedSecret({ name, namespace }));
    const data = secret.data?.[key];
    if (data === undefined) return undefined;
    const value = Buffer.from(data, 'base64').toString('utf8');
    if (value !== '') registerSecret(value); // never logged, whatever error quotes it
    return value;
  }

  async configMapExists(namespace: string, name: string): Promise<boolean> {
    return (await orMissing(() => this.core.readNamespacedConfigMap({ name, namespace }))) !== undefined;
  }

  async deploymentReplicas(namespace: string, name: string): Promise<DeploymentReplicas | undefined> {
    const deployment = await orMissing(() => this.apps.readNamespacedDeployment({ name, namespace }));
    if (deployment === undefined) return undefined;
    const status = deployment.status ?? {};
    return { desired: deployment.spec?.replicas ?? 1, ready: Math.min(status.readyReplicas ?? 0, status.updatedReplicas ?? 0) };
  }

  async fenceDeployment(namespace: string, name: string): Promise<ObservedFenceDeployment | undefined> {
    const deployment = await orMissing(() => this.apps.readNamespacedDeployment({ name, namespace }));
    if (deployment === undefined) return undefined;
    const selector = labelSelectorText(deployment.spec?.selector);
    // An empty selector would count every pod of the namespace: a Deployment always has one, so none is "no pods known".
    const pods = selector === '' ? [] : (await request(() => this.core.listNamespacedPod({ namespace, labelSelector: selector }))).items;
    const annotations = Object.fromEntries(Object.entries(deployment.metadata?.annotations ?? {}).filter(([key]) => key.startsWith(`${GROUP}/`)));
    return { replicas: deployment.spec?.replicas ?? 1, annotations, resourceVersion: deployment.metadata?.resourceVersion ?? '', pods: pods.length };
  }

  async scaleDeployment(namespace: string, name: string, patch: DeploymentScale): Promise<void> {
    if (patch.resourceVersion === '') throw new Error(`Deployment ${name}: no resourceVersion observed, so no conditional patch; not sent`);
    await request(() => this.apps.patchNamespacedDeployment({
      name, namespace, body: { metadata: { resourceVersion: patch.resourceVersion, annotations: patch.annotations }, spec: { replicas: patch.replicas } },
    }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)));
  }
}
