// What decide() is given and what it returns: the observations the reconciler gathers before it
// decides (Jobs, preflight, the cutover Service, copy progress) and the decision (the new status,
// the actions in order, when to look again). Types and timings only.
import type { Phase, Reason, Step } from '../api/constants.ts';
import type { DataMigration, DataMigrationStatus, Progress } from '../api/types.generated.ts';
import type { LabelSelector } from './selectors.ts';
import type { PodPolicyRefusal } from './pod-policy.ts';

export type JobState = 'Running' | 'Succeeded' | 'Failed';

/**
 * The newest failed pod of a step Job that still runs (its retries go on): what status says at
 * once, instead of "running" for the whole backoff.
 */
export interface ObservedPodFailure {
  /** Failed pods so far (of the failing index, for an Indexed Job): one Event per new count. */
  failed: number;
  /** Attempts the Job allows (backoffLimit + 1, or backoffLimitPerIndex + 1 per index). */
  attempts: number;
  /** The Job will not retry: it is failing (FailureTarget), or the attempts are used up. */
  final: boolean;
  pod: string;
  /** The completion index of an Indexed Job's failed pod. */
  index?: string;
  exitCode?: number;
  /** Which side the engine named in its last words ("cannot connect to postgres (the target): …"). */
  side?: 'source' | 'target';
  /** The engine's last words (its termination message, secrets scrubbed), or the container's reason. */
  message: string;
}

/** A step Job this migration owns, reduced to what decisions need. */
export interface ObservedJob {
  name: string;
  step: Step;
  /** The Job's run label. */
  runId: string;
  state: JobState;
  /** The parsed JSON termination message of the step's container, when there is one. */
  result?: unknown;
  /** Why the Job failed (condition message, termination message), when it failed. */
  failureMessage?: string;
  /** The engine container's exit code, when the Job failed (src/cli/exit-codes.ts). */
  exitCode?: number;
  /** A Running Job's newest failed pod, when one failed (only pods the Job controls count). */
  podFailure?: ObservedPodFailure;
}

export type PreflightKind = 'Secret' | 'SecretKey' | 'ConfigMap' | 'Service' | 'Deployment';

/** An object the spec refers to that does not exist (for SecretKey: the Secret exists, the key does not). */
export interface MissingObject {
  kind: PreflightKind;
  name: string;
  key?: string;
}

export interface Preflight {
  missing: readonly MissingObject[];
  /** The cutover readiness gate's Deployment has enough ready replicas (undefined: no gate, or unknown). */
  deploymentReady?: boolean;
  /** What the operator's pod policy refuses in spec.jobTemplate (pod-policy.ts); no step Job starts until the spec changes. */
  podPolicy?: PodPolicyRefusal;
}

/** The cutover Service as the informer's cache holds it, reduced to what the switch decides on. */
export interface ObservedService {
  selector: Record<string, string>;
  /** Its labels (the operator's opt-in selector is matched against them). */
  labels: Record<string, string>;
  /** Its annotations under this project's prefix (dataops.dev/): the opt-in and the switch record. */
  annotations: Record<string, string>;
  /** The version observed: a patch decided on it applies to that version only (409 otherwise). */
  resourceVersion: string;
}

/** ChangeCapture, fence type ScaleDown: the blue Deployment as observed. */
export interface ObservedFenceDeployment {
  /** spec.replicas. */
  replicas: number;
  /** Its annotations under this project's prefix (dataops.dev/): the consent and the fence record. */
  annotations: Record<string, string>;
  resourceVersion: string;
  /** Pods its selector matches that still exist, terminating ones included: writes stop only at 0. */
  pods: number;
}

/** What a ChangeCapture decision needs besides the Jobs (gathered only for such migrations). */
export interface CaptureObservation {
  /** The sync pod's last lag report (engine/sync/capture-lag.ts), when one was read. */
  lag?: CaptureLag;
  /** Pods of this run's sync Job that still exist (a deleted Job's pod may still hold the stream). */
  syncPods: number;
  /** fence.type ScaleDown: the blue Deployment; undefined when it does not exist. */
  fenceDeployment?: ObservedFenceDeployment;
}

/** engine/sync/capture-lag.ts's CaptureLagReport, as decisions read it. */
export interface CaptureLag {
  appliedPosition: string;
  lagMs: number;
  pendingBytes: number;
  transactions: number;
  changes: number;
  sampledAt: string;
  /** The sync's validation at a cut that passed (engine/sync/changed-keys.ts), if any. */
  validatedPosition?: string;
  validatedAt?: string;
}

export interface DecideInput {
  migration: DataMigration;
  jobs: readonly ObservedJob[];
  /**
   * What the preflight found. The reconciler runs it when preflightNeeded() says something may
   * start (a Job, the switch); a decision that reaches a start without it throws.
   */
  preflight?: Preflight;
  /** The cutover Service as observed now (only when spec.cutover is set and the Service exists). */
  service?: ObservedService;
  /** The operator's configured opt-in label selector for cutover Services (CUTOVER_OPT_IN_SELECTOR), if any. */
  optInSelector?: LabelSelector;
  /**
   * Set while the copy Job runs and the reconciler follows its progress: the decision asks to be
   * woken every REQUEUE.copyProgress seconds, and records `progress` when one was read this time.
   */
  copyProgress?: { progress?: Progress };
  /** ChangeCapture migrations: the stream's lag, the sync pods, the fence's Deployment. */
  capture?: CaptureObservation;
  /** The current time, RFC 3339. */
  now: string;
}

export interface CreateJobAction { kind: 'createJob'; step: Step; runId: string }
/** Delete a Job (with its pods, propagationPolicy Background). */
export interface DeleteJobAction { kind: 'deleteJob'; name: string }
/**
 * One merge patch of the Service, at the version the decision saw: spec.selector becomes exactly
 * `selector` (labels of `from` it lacks are removed), and `annotations` are set (a string) or
 * removed (null) in the same request, so the switch and its record land together or not at all.
 */
export interface PatchServiceSelectorAction {
  kind: 'patchServiceSelector';
  service: string;
  resourceVersion: string;
  /** The selector observed (what the patch changes from). */
  from: Record<string, string>;
  selector: Record<string, string>;
  annotations: Record<string, string | null>;
}
/**
 * One merge patch of a Deployment, at the version the decision saw: spec.replicas and the fence
 * record (FENCE_RECORD_ANNOTATION) together, so a fence and its record land together or not at all.
 */
export interface ScaleDeploymentAction {
  kind: 'scaleDeployment';
  deployment: string;
  resourceVersion: string;
  replicas: number;
  annotations: Record<string, string | null>;
}
export type EventReason = Reason | Phase;
export interface EventAction { kind: 'event'; type: 'Normal' | 'Warning'; reason: EventReason; message: string }
export type Action = CreateJobAction | DeleteJobAction | PatchServiceSelectorAction | ScaleDeploymentAction | EventAction;

export interface Decision {
  /** The complete new status. */
  status: DataMigrationStatus;
  /** To be carried out in order. */
  actions: Action[];
  /** Reconcile again after this many seconds (absent: only when something changes). */
  requeueAfterSeconds?: number;
}

/** A created Job not yet observed after this long is created again (AlreadyExists is success). */
export const JOB_APPEAR_GRACE_SECONDS = 60;
/** A Service switch not yet observed after this long is patched again. */
export const SWITCH_GRACE_SECONDS = 30;
export const REQUEUE = {
  /** Safety net while a Job runs (its completion is watched anyway). */
  jobRunning: 30,
  /** Waiting for a just-created Job to show up. */
  jobStarting: 10,
  /** A Job the API server refused is asked for again after this long (or when anything changes). */
  jobRejected: 60,
  /** Waiting for a Service patch to show up. */
  switching: 5,
  /**
   * A switch refused (no opt-in, a selector without fromSelector): looked at again after this long,
   * and at once when the Service or the DataMigration changes (both are watched).
   */
  serviceRefused: 120,
  /** Waiting for the gate Deployment (not watched). */
  deploymentNotReady: 15,
  /** Preflight backoff: the wait so far, between these bounds (so each check doubles the wait). */
  preflightMin: 30,
  preflightMax: 300,
  /** How often a running copy's progress reaches status. */
  copyProgress: 10,
  /** ChangeCapture: how often the stream's lag reaches status while it runs (the sync pod writes it every 5 s). */
  syncLag: 5,
  /** Waiting for the fence (pods ending, the annotation) and for the sync pod to let go of the stream. */
  fencing: 1,
} as const;
