// The Job of one step of one run, built from the DataMigration alone (pure): a deterministic name,
// an owner reference, labels, the engine's command, connection URLs from the referenced Secrets,
// the schema ConfigMap mounted, the user's jobTemplate applied over secure defaults. What the
// jobTemplate may ask (image, ServiceAccount token, label and annotation keys) is the operator's
// pod policy (pod-policy.ts): a Job that breaks it is never built. The engine needs no Kubernetes
// API access, so the pod gets no service account token unless the policy allows the account it
// names. The copy Job is an Indexed Job when strategy.copyPods > 1.
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { API_VERSION, GROUP, KIND, LABELS, MANAGED_BY, REASONS, type Step } from '../api/constants.ts';
import { endpointSecrets } from '../api/defaults.ts';
import type { DataMigration, JobTemplateSpec } from '../api/types.ts';
import { DEFAULT_COPY_DEADLINE_SECONDS, DEFAULT_STEP_DEADLINE_SECONDS } from '../api/datamigration-schema.ts';
import { EXIT } from '../cli/exit-codes.ts';
import type { LogFormat } from '../api/log-schema.ts';
import { withPodDefaults, type PodDefaults } from './pod-defaults.ts';
import { ENGINE_NODE_FLAGS } from '../cli/node-flags.ts';
import { engineSettings } from '../engine/pipeline/settings.ts';
import { isChangeCapture } from './context.ts';
import { checkPodPolicy, podIdentity, PodPolicyError, type PodPolicyConfig, type PodPolicyRefusal } from './pod-policy.ts';

/** The engine's image (by default the operator's own), its account, and what a spec may choose instead (pod-policy.ts). */
export interface EngineConfig extends PodPolicyConfig {
  /** The engine's entry point in that image; `step <name>` is appended. */
  command: string[];
  /** What every step pod gets unless its spec.jobTemplate sets the field (ENGINE_POD_DEFAULTS, pod-defaults.ts). */
  podDefaults?: PodDefaults;
  /** The operator's LOG_FORMAT, passed to the engine so its lines read like the operator's. */
  logFormat?: LogFormat;
}

/**
 * A pod condition nobody sets: the step pods are never Ready, so a label a spec adds cannot make
 * them endpoints of a Service (they serve nothing; Jobs count pods by phase, not readiness).
 */
export const NEVER_READY_GATE = `${GROUP}/serves-no-traffic`;

export const MIGRATIONS_DIR = '/migrations';
/** Where the Dockerfile puts the compiled CLI. */
export const DEFAULT_ENGINE_COMMAND = ['node', ...ENGINE_NODE_FLAGS, '/app/dist/cli/main.js'];
const CA_DIR = '/etc/datamigration/ca';
const SCRATCH_DIR = '/scratch';
const NON_ROOT_UID = 65532;

/** `<migration>-<run>-<step>`, at most 63 characters (a label value), unique by a hash when shortened. */
export function stepJobName(migration: string, runId: string, step: Step): string {
  const name = `${migration}-${runId}-${step}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const suffix = `-${runId}-${step}`.slice(-40);
  return `${migration.slice(0, 63 - suffix.length - 9).replace(/-+$/, '')}-${hash}${suffix}`;
}

/**
 * Limits and requests, and nothing else the object may carry: the API server prunes fields the
 * CRD does not name, but the Job must not depend on it (resources.claims would hand the pod a
 * ResourceClaim's devices).
 */
function resourcesOf(resources: NonNullable<JobTemplateSpec['resources']>): k8s.V1ResourceRequirements {
  return { ...(resources.limits ? { limits: resources.limits } : {}), ...(resources.requests ? { requests: resources.requests } : {}) } as k8s.V1ResourceRequirements;
}

/** The manifest the engine step runs (spec, name, namespace): what `dmctl step` reads from DMO_MANIFEST. */
export function engineManifest(migration: DataMigration): string {
  return JSON.stringify({
    apiVersion: API_VERSION, kind: KIND,
    metadata: { name: migration.metadata?.name, namespace: migration.metadata?.namespace, generation: migration.metadata?.generation, uid: migration.metadata?.uid, creationTimestamp: migration.metadata?.creationTimestamp },
    spec: migration.spec,
  });
}

/**
 * Linux refuses to start a process any one of whose environment strings ("NAME=value" and its NUL)
 * is over 32 pages (MAX_ARG_STRLEN, 128 KiB): every step pod of a larger manifest would fail at exec.
 */
export const MAX_ENV_STRING_BYTES = 128 * 1024;
const MANIFEST_ENV = 'DMO_MANIFEST';

/**
 * Why the step pods could not start with this manifest, or undefined. The CRD admits specs far
 * larger than the environment variable the engine reads them from (inline migrations alone may hold
 * megabytes), so the operator refuses them before any Job, rather than have each pod fail at exec.
 */
export function manifestProblem(migration: DataMigration): PodPolicyRefusal | undefined {
  const bytes = Buffer.byteLength(`${MANIFEST_ENV}=${engineManifest(migration)}`) + 1;
  if (bytes <= MAX_ENV_STRING_BYTES) return undefined;
  return {
    reason: REASONS.InvalidSpec,
    message: `the step pods read the manifest from the environment variable ${MANIFEST_ENV}, which would hold ${String(bytes)} bytes: `
      + `Linux starts no process with an environment string over ${String(MAX_ENV_STRING_BYTES)} bytes. Make the spec smaller `
      + '(move inline migrations to a ConfigMap with spec.schema.configMapRef, or split the tables over several DataMigrations)',
  };
}

export function buildStepJob(migration: DataMigration, step: Step, runId: string, engine: EngineConfig, extraEnv: k8s.V1EnvVar[] = []): k8s.V1Job {
  const name = migration.metadata?.name ?? '';
  const namespace = migration.metadata?.namespace ?? 'default';
  const { spec } = migration;
  const template = withPodDefaults(spec.jobTemplate, engine.podDefaults);
  const refusal = checkPodPolicy(migration, engine) ?? manifestProblem(migration);
  if (refusal !== undefined) throw new PodPolicyError(refusal);
  const identity = podIdentity(template, namespace, engine);
  if (typeof identity === 'string') throw new PodPolicyError({ reason: 'ServiceAccountNotAllowed', message: identity });
  // The engine divides the copy by the same figure (engineSettings), so the two cannot disagree.
  const pods = step === 'copy' ? engineSettings(migration).copyPods : 1;
  const source = endpointSecrets(spec.source);
  const target = endpointSecrets(spec.target);
  const labels = { [LABELS.migration]: name, [LABELS.step]: step, [LABELS.run]: runId, [LABELS.managedBy]: MANAGED_BY };

  const env: k8s.V1EnvVar[] = [
    { name: 'DMO_SOURCE_URL', valueFrom: { secretKeyRef: source.url } },
    { name: 'DMO_TARGET_URL', valueFrom: { secretKeyRef: target.url } },
    { name: MANIFEST_ENV, value: engineManifest(migration) },
    { name: 'DMO_TERMINATION_LOG', value: '/dev/termination-log' },
    // The root filesystem is read only; scratch space is an emptyDir of its own (not over /tmp,
    // so nothing the image keeps under /tmp is hidden).
    { name: 'HOME', value: SCRATCH_DIR },
    { name: 'TMPDIR', value: SCRATCH_DIR },
    ...(engine.logFormat !== undefined ? [{ name: 'LOG_FORMAT', value: engine.logFormat }] : []),
    ...extraEnv,
  ];
  const volumes: k8s.V1Volume[] = [{ name: 'scratch', emptyDir: { sizeLimit: '256Mi' } }];
  const mounts: k8s.V1VolumeMount[] = [{ name: 'scratch', mountPath: SCRATCH_DIR }];
  if (spec.schema?.configMapRef && (step === 'schema' || step === 'rollback')) {
    volumes.push({ name: 'migrations', configMap: { name: spec.schema.configMapRef.name } });
    mounts.push({ name: 'migrations', mountPath: MIGRATIONS_DIR, readOnly: true });
    env.push({ name: 'DMO_MIGRATIONS_DIR', value: MIGRATIONS_DIR });
  }
  for (const [side, secrets] of [['source', source], ['target', target]] as const) {
    const ca = secrets.ca;
    if (!ca) continue;
    volumes.push({ name: `${side}-ca`, secret: { secretName: ca.name, items: [{ key: ca.key, path: 'ca.crt' }] } });
    mounts.push({ name: `${side}-ca`, mountPath: `${CA_DIR}/${side}`, readOnly: true });
    env.push({ name: `DMO_${side.toUpperCase()}_CA_FILE`, value: `${CA_DIR}/${side}/ca.crt` });
  }

  const podSpec: k8s.V1PodSpec = {
    restartPolicy: 'Never',
    // The engine talks to databases only: a token only for an account the operator's configuration
    // allows (cloud IAM), and always said, so no admission default can mount one.
    automountServiceAccountToken: identity.automountToken,
    ...(identity.serviceAccountName !== undefined ? { serviceAccountName: identity.serviceAccountName } : {}),
    readinessGates: [{ conditionType: NEVER_READY_GATE }],
    securityContext: { runAsNonRoot: true, runAsUser: NON_ROOT_UID, runAsGroup: NON_ROOT_UID, fsGroup: NON_ROOT_UID, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [{
      name: 'engine',
      image: template.image ?? engine.image,
      ...(template.imagePullPolicy ? { imagePullPolicy: template.imagePullPolicy } : {}),
      command: [...engine.command, 'step', step],
      env,
      volumeMounts: mounts,
      ...(template.resources ? { resources: resourcesOf(template.resources) } : {}),
      terminationMessagePolicy: 'FallbackToLogsOnError',
      securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
    }],
    volumes,
    ...(template.nodeSelector ? { nodeSelector: template.nodeSelector } : {}),
    ...(template.tolerations ? { tolerations: template.tolerations } : {}),
    ...(template.affinity ? { affinity: template.affinity } : {}),
    ...(template.priorityClassName ? { priorityClassName: template.priorityClassName } : {}),
    ...(template.imagePullSecrets ? { imagePullSecrets: template.imagePullSecrets } : {}),
  };

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: stepJobName(name, runId, step),
      namespace,
      labels,
      ownerReferences: [{
        apiVersion: API_VERSION, kind: KIND, name, uid: migration.metadata?.uid ?? '', controller: true, blockOwnerDeletion: true,
      }],
    },
    spec: {
      ...(pods > 1 ? {
        // Pod i copies share i of the units (dmctl reads JOB_COMPLETION_INDEX): every index must
        // succeed, each retried on its own, and the first index out of retries fails the Job.
        completionMode: 'Indexed', completions: pods, parallelism: pods,
        backoffLimitPerIndex: template.backoffLimit ?? 3, maxFailedIndexes: 0,
      } : { backoffLimit: template.backoffLimit ?? 3 }),
      // A bad manifest (2), a refused plan (3) or failed validation (4) fails the same way every
      // time: fail the Job at once instead of retrying it (src/cli/exit-codes.ts). A pod the
      // cluster disrupted (evicted, preempted, its node drained) is retried without using up
      // backoffLimit: the step resumes from its checkpoints, and a drain is not the step's failure.
      podFailurePolicy: { rules: [
        { action: 'FailJob', onExitCodes: { containerName: 'engine', operator: 'In', values: [EXIT.usage, EXIT.planRefused, EXIT.validationFailed] } },
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        // ChangeCapture's stream runs for days: a pod stopped by a signal (exit 130, after a clean
        // stop) resumes exactly where it was, so it does not use up backoffLimit either.
        ...(step === 'sync' && isChangeCapture(spec) ? [{ action: 'Ignore', onExitCodes: { containerName: 'engine', operator: 'In', values: [EXIT.interrupted] } }] : []),
      ] },
      // Every step has a deadline: a step hung on a half-open connection fails instead of waiting
      // for ever. Except ChangeCapture's sync, which runs until the cutover (days, if approval
      // takes that long): a stream that hangs shows in its lag report going stale instead.
      ...(step === 'sync' && isChangeCapture(spec) ? {} : {
        activeDeadlineSeconds: template.activeDeadlineSeconds ?? (step === 'copy' ? DEFAULT_COPY_DEADLINE_SECONDS : DEFAULT_STEP_DEADLINE_SECONDS),
      }),
      ...(template.ttlSecondsAfterFinished !== undefined ? { ttlSecondsAfterFinished: template.ttlSecondsAfterFinished } : {}),
      template: {
        metadata: { labels: { ...template.labels, ...labels }, ...(template.annotations ? { annotations: template.annotations } : {}) },
        spec: podSpec,
      },
    },
  };
}
