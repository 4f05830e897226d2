// The one small interface the reconciler talks to Kubernetes through: the informer caches it
// reads, and the few requests it makes. kube-cluster.ts implements it with @kubernetes/client-node
// (and keeps the e2e tests); test/support/memory-cluster.ts implements it in memory for the
// reconciler's unit tests. Errors carry the API server's HTTP code (ClusterError), never a response.
import type * as k8s from '@kubernetes/client-node';
import type { DataMigration, DataMigrationStatus } from '../api/types.ts';
import type { ObservedFenceDeployment } from './model.ts';

/** An Event as the reconciler records it (the implementation fills in the rest). */
export interface ClusterEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  time: Date;
}

/** A Service switch or restore (model.ts PatchServiceSelectorAction without its kind and name). */
export interface ServicePatch {
  resourceVersion: string;
  from: Record<string, string>;
  selector: Record<string, string>;
  annotations: Record<string, string | null>;
}

/** The merge patch body of a ServicePatch (removed selector labels as null; resourceVersion makes it conditional). */
export function serviceMergePatch(patch: ServicePatch): { metadata: { resourceVersion?: string; annotations: Record<string, string | null> }; spec: { selector: Record<string, string | null> } } {
  const selector: Record<string, string | null> = {};
  for (const key of Object.keys(patch.from)) if (!Object.hasOwn(patch.selector, key)) selector[key] = null;
  Object.assign(selector, patch.selector);
  return {
    metadata: { ...(patch.resourceVersion !== '' ? { resourceVersion: patch.resourceVersion } : {}), annotations: { ...patch.annotations } },
    spec: { selector },
  };
}

export interface Cluster {
  /** From the informer caches (no request). */
  migration(namespace: string, name: string): DataMigration | undefined;
  jobs(namespace: string): readonly k8s.V1Job[];
  service(namespace: string, name: string): k8s.V1Service | undefined;
  /** Every Service of the namespace (the step pods' labels are checked against their selectors). */
  servicesIn(namespace: string): readonly k8s.V1Service[];

  /** The pods of a Job (their termination messages are the step's result). */
  jobPods(namespace: string, job: string): Promise<k8s.V1Pod[]>;
  /** Creates a Job; an existing one of that name is a ClusterError 409. */
  createJob(job: k8s.V1Job): Promise<void>;
  /** Deletes a Job with its pods; an absent one is a ClusterError 404. */
  deleteJob(namespace: string, name: string): Promise<void>;
  /**
   * One JSON merge patch of the Service, applied only at `patch.resourceVersion` (ClusterError 409
   * when it moved on): spec.selector becomes exactly `patch.selector` (labels of `patch.from` it
   * lacks are removed) and the annotations are set or (null) removed, all in one request.
   */
  patchServiceSelector(namespace: string, name: string, patch: ServicePatch): Promise<void>;
  /** A JSON patch of the DataMigration's metadata (its finalizer); returns the object as stored. */
  patchMigration(migration: DataMigration, operations: object[]): Promise<DataMigration>;
  /** Replaces the status at the migration's resourceVersion (ClusterError 409 when it moved on); returns the object as stored. */
  writeStatus(migration: DataMigration, status: DataMigrationStatus): Promise<DataMigration>;
  /** Records an Event about the migration. */
  recordEvent(migration: DataMigration, event: ClusterEvent): Promise<void>;
  /** Which keys a Secret has (never its values); undefined when it does not exist. */
  secretKeys(namespace: string, name: string): Promise<ReadonlySet<string> | undefined>;
  /** One value of a Secret (for the copy's progress); undefined when the Secret or key is absent. */
  secretValue(namespace: string, name: string, key: string): Promise<string | undefined>;
  configMapExists(namespace: string, name: string): Promise<boolean>;
  /** A Deployment's desired and ready replicas; undefined when it does not exist. */
  deploymentReplicas(namespace: string, name: string): Promise<DeploymentReplicas | undefined>;
  /** The ScaleDown fence's Deployment, with the pods its selector matches (terminating ones too); undefined when it does not exist. */
  fenceDeployment(namespace: string, name: string): Promise<ObservedFenceDeployment | undefined>;
  /**
   * One JSON merge patch of a Deployment, applied only at `patch.resourceVersion` (ClusterError
   * 409 when it moved on): spec.replicas and the annotations set or (null) removed, in one request.
   */
  scaleDeployment(namespace: string, name: string, patch: DeploymentScale): Promise<void>;
}

export interface DeploymentScale {
  resourceVersion: string;
  replicas: number;
  annotations: Record<string, string | null>;
}

/** A label selector as the API's list calls take it (matchLabels and matchExpressions). */
export function labelSelectorText(selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined): string {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`);
  for (const expression of selector?.matchExpressions ?? []) {
    const values = (expression.values ?? []).join(',');
    if (expression.operator === 'In') parts.push(`${expression.key} in (${values})`);
    else if (expression.operator === 'NotIn') parts.push(`${expression.key} notin (${values})`);
    else if (expression.operator === 'Exists') parts.push(expression.key);
    else if (expression.operator === 'DoesNotExist') parts.push(`!${expression.key}`);
  }
  return parts.join(',');
}

/**
 * What the readiness gate reads of a Deployment: `spec.replicas` (default 1) and its ready pods
 * of the current template (the lower of `readyReplicas` and `updatedReplicas`: in a rollout, ready
 * pods of the old template are not the green side).
 */
export interface DeploymentReplicas {
  desired: number;
  ready: number;
}

/** An API server's refusal: the HTTP code and a one-line message. */
export class ClusterError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}
