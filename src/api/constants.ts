// The closed sets of the API: every phase, condition type, reason, label and annotation the
// operator writes or reads is named here once. The CRD's enums are built from these lists.

export const GROUP = 'dataops.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'DataMigration';
export const PLURAL = 'datamigrations';
export const SINGULAR = 'datamigration';
export const SHORT_NAMES = ['dm'] as const;
export const CATEGORIES = ['dataops'] as const;

export const ENGINES = ['postgres', 'mysql'] as const;
export type EngineName = (typeof ENGINES)[number];

/** libpq's sslmode names, which both drivers' users already know. */
export const TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

export const STRATEGY_TYPES = ['BigBang', 'Phased', 'Trickle'] as const;
export const INCREMENTAL_MODES = ['ChangeCapture', 'Timestamp', 'Sequence'] as const;
export const FENCE_TYPES = ['ScaleDown', 'SourceReadOnly', 'External'] as const;
export const CONFLICT_POLICIES = ['Fail', 'Upsert'] as const;
export const DEDUPE_KEEP = ['first', 'latest'] as const;
export const CHECKSUM_MODES = ['Full', 'Sample', 'None'] as const;
export const APPROVAL_MODES = ['Automatic', 'Manual'] as const;
export const ROLLBACK_SCHEMA_ACTIONS = ['DownMigrations', 'DropCreatedTables', 'TruncateTables', 'None'] as const;
export const IMAGE_PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

/** Column transforms, applied in the source's SELECT in the order listed. */
export const TRANSFORMS = ['trim', 'ltrim', 'rtrim', 'lowercase', 'uppercase', 'nullIfEmpty', 'emptyIfNull', 'sha256'] as const;
export type TransformName = (typeof TRANSFORMS)[number];

export const PHASES = [
  'Pending', 'SchemaMigrating', 'Copying', 'Syncing', 'Validating', 'AwaitingApproval',
  'CuttingOver', 'Succeeded', 'RollingBack', 'RolledBack', 'Failed',
] as const;
export type Phase = (typeof PHASES)[number];
export const TERMINAL_PHASES: readonly Phase[] = ['Succeeded', 'RolledBack', 'Failed'];

/**
 * Ready, Reconciling and Stalled follow the kstatus conventions (kubectl wait, Flux, Argo CD); the
 * others record the milestones.
 */
export const CONDITION_TYPES = ['Ready', 'Reconciling', 'Stalled', 'SchemaReady', 'DataCopied', 'Validated', 'CutOver', 'RolledBack'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** Condition reasons (CamelCase, as Kubernetes conventions ask). */
export const REASONS = {
  // lifecycle
  Initializing: 'Initializing',
  Suspended: 'Suspended',
  InProgress: 'InProgress',
  Succeeded: 'Succeeded',
  NotStarted: 'NotStarted',
  NotRequired: 'NotRequired',
  // preflight
  SecretNotFound: 'SecretNotFound',
  SecretKeyNotFound: 'SecretKeyNotFound',
  ConfigMapNotFound: 'ConfigMapNotFound',
  ServiceNotFound: 'ServiceNotFound',
  DeploymentNotFound: 'DeploymentNotFound',
  DeploymentNotReady: 'DeploymentNotReady',
  InvalidSpec: 'InvalidSpec',
  // the operator's pod policy (src/controller/pod-policy.ts): only a spec change lifts these
  ImageNotAllowed: 'ImageNotAllowed',
  ServiceAccountNotAllowed: 'ServiceAccountNotAllowed',
  ReservedKey: 'ReservedKey',
  // steps
  JobRunning: 'JobRunning',
  JobRejected: 'JobRejected',
  JobFailed: 'JobFailed',
  // a pod of a step Job failed while the Job retries (src/controller/phases/step-pod-failed.ts)
  StepPodFailed: 'StepPodFailed',
  CopyNotices: 'CopyNotices',
  PlanRefused: 'PlanRefused',
  ChecksumMismatch: 'ChecksumMismatch',
  ValidationFailed: 'ValidationFailed',
  ValidationPassed: 'ValidationPassed',
  AwaitingApproval: 'AwaitingApproval',
  ServiceSwitched: 'ServiceSwitched',
  ServiceRestored: 'ServiceRestored',
  // the cutover Service's consent and record (src/controller/service-switch.ts)
  ServiceNotOptedIn: 'ServiceNotOptedIn',
  ServiceSelectorMismatch: 'ServiceSelectorMismatch',
  ServiceSwitchRejected: 'ServiceSwitchRejected',
  ServiceNotRestored: 'ServiceNotRestored',
  // ChangeCapture: the stream, the write fence and the capture's release (src/controller/phases/fence.ts)
  Syncing: 'Syncing',
  SyncLagging: 'SyncLagging',
  Fencing: 'Fencing',
  FenceRefused: 'FenceRefused',
  FenceLifted: 'FenceLifted',
  CatchingUp: 'CatchingUp',
  CaptureReleased: 'CaptureReleased',
  CaptureNotReleased: 'CaptureNotReleased',
  RollbackFailed: 'RollbackFailed',
  RolledBack: 'RolledBack',
  // people's requests (annotations)
  Aborted: 'Aborted',
  Retrying: 'Retrying',
} as const;
export type Reason = (typeof REASONS)[keyof typeof REASONS];

/** The steps a migration runs, one Job each. */
export const STEPS = ['schema', 'copy', 'sync', 'validate', 'fence', 'catchup', 'unfence', 'release', 'rollback'] as const;
export type Step = (typeof STEPS)[number];

/**
 * What the step ledger (status.steps) records: the start of the run, the Job steps, the two
 * Service actions (the cutover's switch, the rollback's restore), and how the run finished.
 */
export const LEDGER_STEPS = ['start', 'schema', 'copy', 'sync', 'validate', 'fence', 'catchup', 'switch', 'unfence', 'release', 'rollback', 'restore', 'finish'] as const;
export type LedgerStep = (typeof LEDGER_STEPS)[number];
/** How a step ended: Rejected is a Job the API server refused to create (it is asked for again). */
export const STEP_OUTCOMES = ['Succeeded', 'Failed', 'Aborted', 'Rejected'] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

export const TABLE_STATES = ['Pending', 'Copying', 'Copied', 'Failed'] as const;
export const CHECK_OUTCOMES = ['Match', 'Mismatch', 'Skipped'] as const;
export const CHECK_KINDS = ['RowCount', 'Checksum', 'Sample', 'Rule'] as const;
export const JOB_STATES = ['Running', 'Succeeded', 'Failed'] as const;

/** Set to "true" (or to the generation it approves) to let a Manual cutover proceed. */
export const APPROVE_ANNOTATION = `${GROUP}/approve`;
/** Set to "true" (or to the current generation) to abort a running migration: phase Failed, reason Aborted. */
export const ABORT_ANNOTATION = `${GROUP}/abort`;
/**
 * Set to a new token (a-z and 0-9 are kept, the last 8 of them) to run the failed step of a migration
 * that failed in a step Job (or was aborted) again, under the run id `<run>-r<token>`.
 */
export const RETRY_ANNOTATION = `${GROUP}/retry`;
export const FINALIZER = `${GROUP}/cleanup`;
/** ChangeCapture with fence type External: set to "true" on the DataMigration once writes to the source have stopped. */
export const FENCED_ANNOTATION = `${GROUP}/fenced`;
/** On the blue Deployment a ScaleDown fence scaled to zero: its replicas before, and the migration's uid (JSON), so the fence is lifted exactly. */
export const FENCE_RECORD_ANNOTATION = `${GROUP}/fenced-by`;
/**
 * On a Service, set by whoever owns it: the DataMigrations (names, comma-separated) that may switch
 * its selector. Without it (or a label the operator's CUTOVER_OPT_IN_SELECTOR matches) no switch.
 */
export const CUTOVER_BY_ANNOTATION = `${GROUP}/cutover-by`;
/**
 * Written by the operator on a Service it switched, in the same patch as the selector, and removed
 * by the patch that restores it: abort and rollback restore only a switch whose record carries
 * their migration's uid. The selectors are JSON objects.
 */
export const SWITCH_RECORD = {
  migration: `${GROUP}/switched-by`,
  uid: `${GROUP}/switched-by-uid`,
  run: `${GROUP}/switched-run`,
  before: `${GROUP}/selector-before`,
  after: `${GROUP}/selector-after`,
} as const;
export const LABELS = {
  migration: `${GROUP}/migration`,
  step: `${GROUP}/step`,
  run: `${GROUP}/run`,
  managedBy: 'app.kubernetes.io/managed-by',
} as const;
export const MANAGED_BY = 'datamigration-operator';
