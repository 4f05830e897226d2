// Preflight: the objects a migration refers to exist before any Job is created or the Service is
// switched (the reconciler runs it when preflightNeeded() says so). Secrets are read with GET only
// (the operator never lists or watches Secrets, and the cluster remembers which keys they have for
// seconds, never their data); the cutover Service comes from the informer's cache; the reconcile
// is requeued with backoff until they appear. The operator's pod policy is checked here too (pure,
// pod-policy.ts), and the spec's pod labels against the Services that publish not-ready addresses
// (which the step pods' readiness gate cannot keep out), and the manifest's size against what the
// step pods' environment can hold (job-builder.ts manifestProblem): what it refuses waits for a spec change.
import { endpointSecrets } from '../api/defaults.ts';
import type { DataMigration } from '../api/types.ts';
import type { Cluster, DeploymentReplicas } from './cluster.ts';
import type { MissingObject, Preflight } from './model.ts';
import { LABELS, MANAGED_BY, REASONS } from '../api/constants.ts';
import { checkPodPolicy, servedByProblem, type PodPolicyConfig, type PodPolicyRefusal } from './pod-policy.ts';
import { manifestProblem } from './job-builder.ts';

export async function runPreflight(cluster: Cluster, migration: DataMigration, policy: PodPolicyConfig): Promise<Preflight> {
  const namespace = migration.metadata?.namespace ?? 'default';
  const { spec } = migration;
  const missing: MissingObject[] = [];
  const endpoints = [endpointSecrets(spec.source), endpointSecrets(spec.target)];
  // URLs first, then CAs: the order the missing objects are reported in.
  const secretKeys = [...endpoints.map((e) => e.url), ...endpoints.flatMap((e) => (e.ca ? [e.ca] : []))];
  const configMap = spec.schema?.configMapRef?.name;
  const gate = spec.cutover?.readinessGate;
  // Everything is read at once (each Secret once), then checked in order.
  const secretNames = [...new Set(secretKeys.map((s) => s.name))];
  const [keysByName, configMapFound, replicas] = await Promise.all([
    Promise.all(secretNames.map(async (name) => [name, await cluster.secretKeys(namespace, name)] as const)).then((entries) => new Map(entries)),
    configMap ? cluster.configMapExists(namespace, configMap) : undefined,
    gate ? cluster.deploymentReplicas(namespace, gate.deployment) : undefined,
  ]);
  for (const { name, key } of secretKeys) {
    const keys = keysByName.get(name);
    if (!keys) {
      if (!missing.some((m) => m.kind === 'Secret' && m.name === name)) missing.push({ kind: 'Secret', name });
    } else if (!keys.has(key)) {
      missing.push({ kind: 'SecretKey', name, key });
    }
  }
  if (configMap && !configMapFound) missing.push({ kind: 'ConfigMap', name: configMap });
  if (spec.cutover && !cluster.service(namespace, spec.cutover.service)) {
    missing.push({ kind: 'Service', name: spec.cutover.service });
  }
  let deploymentReady: boolean | undefined;
  if (gate) {
    if (replicas === undefined) missing.push({ kind: 'Deployment', name: gate.deployment });
    else deploymentReady = gateOpen(replicas, gate.minReadyReplicas);
  }
  const podPolicy = checkPodPolicy(migration, policy) ?? manifestProblem(migration) ?? servedBy(cluster, migration);
  return { missing, ...(deploymentReady !== undefined ? { deploymentReady } : {}), ...(podPolicy !== undefined ? { podPolicy } : {}) };
}

/**
 * Whether the green Deployment may take the traffic: `minReadyReplicas` ready pods of its current
 * template, by default all it asks for, and never none (a Deployment scaled to zero serves nothing).
 */
export function gateOpen(replicas: DeploymentReplicas, minReadyReplicas: number | undefined): boolean {
  return replicas.ready >= Math.max(1, minReadyReplicas ?? replicas.desired);
}

/**
 * Labels the spec adds that a Service publishing not-ready addresses selects (pod-policy.ts
 * servedByProblem), against the Services in the informer's cache. Refused with the pod policy's
 * reason for labels (ReservedKey): the labels are taken by that Service's selector.
 */
function servedBy(cluster: Cluster, migration: DataMigration): PodPolicyRefusal | undefined {
  const labels = migration.spec.jobTemplate?.labels;
  if (labels === undefined || Object.keys(labels).length === 0) return undefined;
  const podLabels = { ...labels, [LABELS.migration]: migration.metadata?.name ?? '', [LABELS.managedBy]: MANAGED_BY };
  const services = cluster.servicesIn(migration.metadata?.namespace ?? 'default').map((service) => ({
    name: service.metadata?.name ?? '', selector: service.spec?.selector ?? {}, publishNotReadyAddresses: service.spec?.publishNotReadyAddresses === true,
  }));
  const problem = servedByProblem(podLabels, services);
  return problem === undefined ? undefined : { reason: REASONS.ReservedKey, message: problem };
}
