// What decide() is given and what it returns: the observations the reconciler gathers before it
// decides (Jobs, preflight, the cutover Service, copy progress) and the decision (the new status,
// the actions in order, when to look again). Types and timings only.
import type { Phase, Reason, Step } from '../api/constants.ts';
import type { DataMigration, DataMigrationStatus, Progress } from '../api/types.generated.ts';

export type JobState = 'Running' | 'Succeeded' | 'Failed';

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
}

export interface ObservedService {
  selector: Record<string, string>;
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
  /**
   * Set while the copy Job runs and the reconciler follows its progress: the decision asks to be
   * woken every REQUEUE.copyProgress seconds, and records `progress` when one was read this time.
   */
  copyProgress?: { progress?: Progress };
  /** The current time, RFC 3339. */
  now: string;
}

export interface CreateJobAction { kind: 'createJob'; step: Step; runId: string }
/** Delete a Job (with its pods, propagationPolicy Background). */
export interface DeleteJobAction { kind: 'deleteJob'; name: string }
/** Replace the Service's spec.selector with exactly `selector` (a JSON patch replace, not a merge). */
export interface PatchServiceSelectorAction { kind: 'patchServiceSelector'; service: string; selector: Record<string, string> }
export type EventReason = Reason | Phase;
export interface EventAction { kind: 'event'; type: 'Normal' | 'Warning'; reason: EventReason; message: string }
export type Action = CreateJobAction | DeleteJobAction | PatchServiceSelectorAction | EventAction;

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
  /** Waiting for the gate Deployment (not watched). */
  deploymentNotReady: 15,
  /** Preflight backoff: the wait so far, between these bounds (so each check doubles the wait). */
  preflightMin: 30,
  preflightMax: 300,
  /** How often a running copy's progress reaches status. */
  copyProgress: 10,
} as const;
