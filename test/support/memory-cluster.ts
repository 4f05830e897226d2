// The Cluster interface (src/controller/cluster.ts) in memory, for the reconciler's unit tests:
// the objects a test sets up, the requests the reconciler makes (in order, in `requests`), and
// the API server's answers a test asks for (a refused Job, a conflicting status write), and a
// status past the CRD's structural schema refused with 422 as the API server refuses it. Not a
// Kubernetes fake: only the project's own small interface, with the semantics it documents.
import type * as k8s from '@kubernetes/client-node';
import { dataMigrationCrd } from '../../src/api/crd.ts';
import type { DataMigration, DataMigrationStatus } from '../../src/api/types.ts';
import { schemaErrors, type CrdSchema } from '../../src/cli/crd-schema-check.ts';
import { crdSchemaOf } from '../../src/cli/lint.ts';
import { ClusterError, serviceMergePatch, type Cluster, type ClusterEvent, type DeploymentReplicas, type DeploymentScale, type ServicePatch } from '../../src/controller/cluster.ts';
import type { ObservedFenceDeployment } from '../../src/controller/model.ts';

const key = (namespace: string, name: string): string => `${namespace}/${name}`;

/** The CRD's status schema: a status past its bounds is refused (422) as the API server refuses it. */
const STATUS_SCHEMA: CrdSchema = crdSchemaOf(dataMigrationCrd()).properties?.status ?? {};

export class MemoryCluster implements Cluster {
  readonly migrations = new Map<string, DataMigration>();
  readonly jobList: k8s.V1Job[] = [];
  /** Deployments the readiness gate reads, by namespace/name. */
  readonly deployments = new Map<string, DeploymentReplicas>();
  /** Deployments a ScaleDown fence reads and scales, by namespace/name (pods: how many still exist). */
  readonly fenceDeployments = new Map<string, ObservedFenceDeployment>();
  readonly services = new Map<string, k8s.V1Service>();
  /** Pods by Job name. */
  readonly pods = new Map<string, k8s.V1Pod[]>();
  /** Secret data (plain text) by namespace/name. */
  readonly secrets = new Map<string, Record<string, string>>();
  readonly events: ClusterEvent[] = [];
  /** Every request, in order: "createJob orders-g1-copy", "writeStatus Copying", … */
  readonly requests: string[] = [];
  /** The next Job create is answered with this. */
  refuseNextJob: ClusterError | undefined;
  /** The next status write is answered with 409 (the object moved on). */
  conflictOnNextStatusWrite = false;
  /** The API server's answer to every Service patch while set (an admission policy refusing it, say). */
  refuseServicePatches: ClusterError | undefined;
  private version = 1;
  private uid = 1;

  add(migration: DataMigration): void {
    const meta = migration.metadata ?? {};
    meta.resourceVersion = String(this.version++);
    migration.metadata = meta;
    this.migrations.set(key(meta.namespace ?? '', meta.name ?? ''), structuredClone(migration));
  }

  /**
   * Marks a Job finished, with its pods. A pod without ownerReferences gets the Job's controller
   * reference, as the Job controller sets it; one given `ownerReferences` (even []) keeps them (a planted pod).
   */
  finishJob(name: string, state: 'Complete' | 'Failed', pods: k8s.V1Pod[]): void {
    const job = this.jobList.find((j) => j.metadata?.name === name);
    if (!job) throw new Error(`no Job ${name}`);
    job.status = { conditions: [{ type: state, status: 'True', reason: state === 'Failed' ? 'BackoffLimitExceeded' : undefined }] };
    const owner: k8s.V1OwnerReference = { apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata?.uid ?? '', controller: true, blockOwnerDeletion: true };
    this.pods.set(name, pods.map((pod) => {
      if (pod.metadata?.ownerReferences !== undefined) return pod;
      const owned = structuredClone(pod);
      owned.metadata ??= {};
      owned.metadata.ownerReferences = [owner];
      return owned;
    }));
  }

  migration(namespace: string, name: string): DataMigration | undefined {
    const found = this.migrations.get(key(namespace, name));
    return found ? structuredClone(found) : undefined;
  }

  jobs(namespace: string): readonly k8s.V1Job[] {
    return this.jobList.filter((job) => job.metadata?.namespace === namespace);
  }

  service(namespace: string, name: string): k8s.V1Service | undefined {
    return this.services.get(key(namespace, name));
  }

  servicesIn(namespace: string): readonly k8s.V1Service[] {
    return [...this.services.values()].filter((service) => service.metadata?.namespace === namespace);
  }

  jobPods(_namespace: string, job: string): Promise<k8s.V1Pod[]> {
    this.requests.push(`listPods ${job}`);
    return Promise.resolve(this.pods.get(job) ?? []);
  }

  createJob(job: k8s.V1Job): Promise<void> {
    const name = job.metadata?.name ?? '';
    this.requests.push(`createJob ${name}`);
    const refusal = this.refuseNextJob;
    if (refusal) {
      this.refuseNextJob = undefined;
      return Promise.reject(refusal);
    }
    if (this.jobList.some((j) => j.metadata?.name === name)) return Promise.reject(new ClusterError(409, `jobs "${name}" already exists`));
    const created = structuredClone(job);
    created.metadata ??= {};
    created.metadata.uid = `job-${String(this.uid++)}`;
    created.status = {};
    this.jobList.push(created);
    return Promise.resolve();
  }

  deleteJob(namespace: string, name: string): Promise<void> {
    this.requests.push(`deleteJob ${name}`);
    const index = this.jobList.findIndex((j) => j.metadata?.name === name && j.metadata.namespace === namespace);
    if (index === -1) return Promise.reject(new ClusterError(404, `jobs "${name}" not found`));
    this.jobList.splice(index, 1);
    return Promise.resolve();
  }

  /** Adds a Service (with a resourceVersion, as the API server would). */
  addService(namespace: string, name: string, spec: { selector: Record<string, string>; labels?: Record<string, string>; annotations?: Record<string, string> }): k8s.V1Service {
    const service: k8s.V1Service = {
      metadata: { name, namespace, resourceVersion: String(this.version++), ...(spec.labels ? { labels: { ...spec.labels } } : {}), ...(spec.annotations ? { annotations: { ...spec.annotations } } : {}) },
      spec: { selector: { ...spec.selector } },
    };
    this.services.set(key(namespace, name), service);
    return service;
  }

  /** As the API server applies the reconciler's merge patch: only at its resourceVersion (409 otherwise); null removes. */
  patchServiceSelector(namespace: string, name: string, patch: ServicePatch): Promise<void> {
    this.requests.push(`patchService ${name} ${Object.entries(patch.selector).map(([k, v]) => `${k}=${v}`).join(',')}`);
    const service = this.services.get(key(namespace, name));
    if (!service) return Promise.reject(new ClusterError(404, `services "${name}" not found`));
    if (this.refuseServicePatches) return Promise.reject(this.refuseServicePatches);
    const body = serviceMergePatch(patch);
    if (body.metadata.resourceVersion !== undefined && body.metadata.resourceVersion !== service.metadata?.resourceVersion) {
      return Promise.reject(new ClusterError(409, `Operation cannot be fulfilled on services "${name}": the object has been modified`));
    }
    const merge = (into: Record<string, string>, changes: Record<string, string | null>): Record<string, string> =>
      Object.fromEntries(Object.entries({ ...into, ...changes }).flatMap(([k, v]) => (v === null ? [] : [[k, v]])));
    service.spec ??= {};
    service.spec.selector = merge(service.spec.selector ?? {}, body.spec.selector);
    service.metadata ??= {};
    service.metadata.annotations = merge(service.metadata.annotations ?? {}, body.metadata.annotations);
    service.metadata.resourceVersion = String(this.version++);
    return Promise.resolve();
  }

  patchMigration(migration: DataMigration, operations: object[]): Promise<DataMigration> {
    this.requests.push('patchMigration');
    const stored = this.migrations.get(key(migration.metadata?.namespace ?? '', migration.metadata?.name ?? ''));
    if (!stored?.metadata) return Promise.reject(new ClusterError(404, 'not found'));
    for (const op of operations as { op: string; path: string; value?: unknown }[]) {
      if (op.op === 'add' && op.path === '/metadata/finalizers') stored.metadata.finalizers = op.value as string[];
      else if (op.op === 'add' && op.path === '/metadata/finalizers/-') stored.metadata.finalizers = [...stored.metadata.finalizers ?? [], op.value as string];
      else if (op.op === 'remove') stored.metadata.finalizers = (stored.metadata.finalizers ?? []).filter((_, i) => `/metadata/finalizers/${String(i)}` !== op.path);
    }
    stored.metadata.resourceVersion = String(this.version++);
    return Promise.resolve(structuredClone(stored));
  }

  writeStatus(migration: DataMigration, status: DataMigrationStatus): Promise<DataMigration> {
    this.requests.push(`writeStatus ${status.phase ?? ''}`);
    const stored = this.migrations.get(key(migration.metadata?.namespace ?? '', migration.metadata?.name ?? ''));
    if (!stored?.metadata) return Promise.reject(new ClusterError(404, 'not found'));
    if (this.conflictOnNextStatusWrite || stored.metadata.resourceVersion !== migration.metadata?.resourceVersion) {
      this.conflictOnNextStatusWrite = false;
      return Promise.reject(new ClusterError(409, 'the object has been modified; please apply your changes to the latest version and try again'));
    }
    // The structural checks (bounds, types, enums); the status CEL rules are not run here.
    const invalid = schemaErrors(STATUS_SCHEMA, JSON.parse(JSON.stringify(status)) as unknown, 'status');
    if (invalid.length > 0) return Promise.reject(new ClusterError(422, `DataMigration.dataops.dev "${migration.metadata?.name ?? ''}" is invalid: ${invalid.join(', ')}`));
    stored.status = structuredClone(status);
    stored.metadata.resourceVersion = String(this.version++);
    return Promise.resolve(structuredClone(stored));
  }

  recordEvent(_migration: DataMigration, event: ClusterEvent): Promise<void> {
    this.events.push(event);
    return Promise.resolve();
  }

  secretKeys(namespace: string, name: string): Promise<ReadonlySet<string> | undefined> {
    this.requests.push(`readSecret ${name}`);
    const data = this.secrets.get(key(namespace, name));
    return Promise.resolve(data ? new Set(Object.keys(data)) : undefined);
  }

  secretValue(namespace: string, name: string, secretKey: string): Promise<string | undefined> {
    return Promise.resolve(this.secrets.get(key(namespace, name))?.[secretKey]);
  }

  configMapExists(): Promise<boolean> {
    return Promise.resolve(false);
  }

  deploymentReplicas(namespace: string, name: string): Promise<DeploymentReplicas | undefined> {
    return Promise.resolve(this.deployments.get(key(namespace, name)));
  }

  fenceDeployment(namespace: string, name: string): Promise<ObservedFenceDeployment | undefined> {
    const found = this.fenceDeployments.get(key(namespace, name));
    return Promise.resolve(found === undefined ? undefined : structuredClone(found));
  }

  scaleDeployment(namespace: string, name: string, patch: DeploymentScale): Promise<void> {
    this.requests.push(`scaleDeployment ${name} ${String(patch.replicas)}`);
    const found = this.fenceDeployments.get(key(namespace, name));
    if (found === undefined) return Promise.reject(new ClusterError(404, `deployments "${name}" not found`));
    if (found.resourceVersion !== patch.resourceVersion) return Promise.reject(new ClusterError(409, `deployments "${name}": the object has been modified`));
    // A merge patch: null removes the key.
    const merged = Object.entries({ ...found.annotations, ...patch.annotations }).filter((entry): entry is [string, string] => entry[1] !== null);
    const annotations = Object.fromEntries(merged);
    this.fenceDeployments.set(key(namespace, name), { ...found, replicas: patch.replicas, annotations, resourceVersion: String(this.version++) });
    return Promise.resolve();
  }
}
