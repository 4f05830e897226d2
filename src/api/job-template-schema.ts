// spec.jobTemplate: what a DataMigration may set on its step Jobs' pods, each field checked at
// admission as the API server would check it on the Job (src/controller/job-builder.ts builds it).
import { IMAGE_PULL_POLICIES } from './constants.ts';
import { affinity, K8S_NAME, labelMap, podAnnotations, podLabels, quantities, toleration } from './k8s-schema.ts';
import { ALLOWED_ANNOTATIONS, RESERVED_KEYS_TEXT } from './reserved-keys.ts';
import { array, enumOf, integer, object, optional, required, string } from './schema-builder.ts';

/** Step Jobs' default activeDeadlineSeconds (spec.jobTemplate.activeDeadlineSeconds overrides both): generous, a stop for a hung step, not a budget. */
export const DEFAULT_COPY_DEADLINE_SECONDS = 86_400;
export const DEFAULT_STEP_DEADLINE_SECONDS = 21_600;
/** The shortest ttlSecondsAfterFinished: time for the operator to read a finished step's outcome, even across a restart. */
export const MIN_TTL_SECONDS = 300;

export const jobTemplate = object('JobTemplateSpec', 'Overrides for the step Jobs\' pods. Security settings (non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp) are not overridable.', {
  image: optional(string('The engine image (default: the operator\'s own image). Any other image must be on the operator\'s allow-list (chart engine.allowedImages), else the migration stops with reason ImageNotAllowed before any Job.', { minLength: 1, maxLength: 512, pattern: '^[^\\s]+$' })),
  imagePullPolicy: optional(enumOf(IMAGE_PULL_POLICIES, 'Always, IfNotPresent or Never.')),
  imagePullSecrets: optional(array(object('LocalObjectReference', 'A Secret in the DataMigration\'s namespace.', {
    name: required(string('The Secret\'s name.', K8S_NAME)),
  }), 'Secrets for pulling the image.', { maxItems: 8 })),
  resources: optional(object('ResourceRequirements', 'CPU and memory for the engine container.', {
    limits: optional(quantities('Limits, such as cpu: "2", memory: 1Gi.', 'spec.jobTemplate.resources.limits')),
    requests: optional(quantities('Requests, such as cpu: 500m, memory: 256Mi.', 'spec.jobTemplate.resources.requests')),
  })),
  serviceAccountName: optional(string('The ServiceAccount the pods run as (default: the operator\'s engine account, or the namespace\'s default; its token is never mounted). Only accounts on the operator\'s allow-list (chart engine.allowedServiceAccounts) may be named, and then their token is mounted; any other stops the migration with reason ServiceAccountNotAllowed before any Job.', K8S_NAME)),
  backoffLimit: optional(integer('Retries of a failed step pod before the step fails; the copy resumes from its checkpoints on each retry.', { default: 3, minimum: 0, maximum: 20 })),
  activeDeadlineSeconds: optional(integer(`Longest a step Job may run, retries included; past it Kubernetes stops the Job and the step fails. Default: ${String(DEFAULT_COPY_DEADLINE_SECONDS)} (24 h) for copy, ${String(DEFAULT_STEP_DEADLINE_SECONDS)} (6 h) for the other steps; set it to override both. The sync Job of ChangeCapture has none: it runs until the cutover.`, { minimum: 1, format: 'int64' })),
  // The Job's field is an int32: a larger value would have every step Job refused (400) for ever.
  // A step's outcome is read from its finished Job's pods: a Job deleted before the operator saw it
  // finish is a step that never reported, asked for again, so a TTL under a few minutes (0: at once)
  // would run the step over and over and never say how it ended.
  ttlSecondsAfterFinished: optional(integer(`Delete finished step Jobs after this many seconds (default: keep them while the DataMigration exists); at least ${String(MIN_TTL_SECONDS)}, so that the operator reads each step's outcome before its Job goes.`, { minimum: MIN_TTL_SECONDS, maximum: 2_147_483_647 })),
  nodeSelector: optional(labelMap('Node labels the pods must match (label keys and values).', 'spec.jobTemplate.nodeSelector')),
  tolerations: optional(array(toleration, 'Tolerations for the pods.', { maxItems: 32 })),
  affinity: optional(affinity('Affinity rules for the pods: Kubernetes\' core/v1 Affinity (nodeAffinity, podAffinity, podAntiAffinity), checked at admission as the API server checks a Pod\'s; unknown fields are refused.')),
  priorityClassName: optional(string('The pods\' PriorityClass.', K8S_NAME)),
  annotations: optional(podAnnotations(`Annotations added to the pods (at most 32; keys are qualified names, values at most 4096 characters). Reserved keys are refused: ${RESERVED_KEYS_TEXT}; ${ALLOWED_ANNOTATIONS.join(', ')} is allowed.`)),
  labels: optional(podLabels(`Labels added to the pods (at most 32; label keys and values). Reserved keys are refused: ${RESERVED_KEYS_TEXT}.`)),
});

