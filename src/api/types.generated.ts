// Generated from src/api/datamigration-schema.ts by `npm run generate`. Do not edit.
import type { V1Affinity, V1ObjectMeta } from '@kubernetes/client-node';

/** DataMigration moves data from a source database to a target database: target schema migrations, a resumable copy, validation, blue-green cutover of a Service, and rollback when validation fails. */
export interface DataMigration {
  /** dataops.dev/v1alpha1 */
  apiVersion?: string;
  /** DataMigration */
  kind?: string;
  metadata?: V1ObjectMeta;
  /** What to migrate, how, and what must hold before traffic moves. */
  spec: DataMigrationSpec;
  /** What the operator observed and did; written only by the operator. */
  status?: DataMigrationStatus;
}

/** What the operator observed and did; written only by the operator. */
export interface DataMigrationStatus {
  /** Where the migration is: Pending, SchemaMigrating, Copying, Syncing (Trickle), Validating, AwaitingApproval (Manual), CuttingOver, Succeeded; RollingBack, RolledBack; Failed. */
  phase?: "Pending" | "SchemaMigrating" | "Copying" | "Syncing" | "Validating" | "AwaitingApproval" | "CuttingOver" | "Succeeded" | "RollingBack" | "RolledBack" | "Failed";
  /** The generation of the spec this status reflects. */
  observedGeneration?: number;
  /** A one-line summary of the current state, for people. */
  message?: string;
  /** Identifies this run; step Jobs are named from it, so a restarted operator finds instead of duplicating them. */
  runId?: string;
  /** When the first step started. Once set it cannot be removed or changed, not even through the status subresource: it freezes spec.tables, spec.strategy and spec.schema. */
  startedAt?: string;
  /** When the migration reached Succeeded, RolledBack or Failed. */
  completedAt?: string;
  /** Conditions, one per type. */
  conditions?: Condition[];
  /** When the operator began waiting for objects the spec refers to (a Secret, a key, a ConfigMap, the Service, the readiness Deployment); its recheck backoff grows with this wait. Absent when nothing is missing. */
  waitingSince?: string;
  /** The Ready status and reason ("False/SecretNotFound") last announced by an Event, so each change is announced once. The operator's memory; read Ready instead. */
  announced?: string;
  /** The step ledger: per step of the current run, when it was asked for, its Job and how it ended. */
  steps?: StepRecord[];
  /** Copy progress, updated while the copy runs. */
  progress?: Progress;
  /** ChangeCapture: the change stream from the source to the target, read from the target's bookkeeping while the sync Job runs, and the cutover's fence. */
  sync?: SyncStatus;
  /** Per-table results. */
  tables?: TableStatus[];
  /** More tables had results than status.tables lists (failed tables are listed first; every table is in the step Jobs' logs). */
  tablesTruncated?: boolean;
  /** The validation report, bounded to fit in status (the full report is in the validate Job's log). */
  validation?: ValidationStatus;
  /** The target schema's versions. */
  schema?: SchemaStatus;
  /** This project's own tables in the target (dataops_*), as the validate step found them: the migrations' records (identity, checkpoints, created tables, claims) and the schema history. They stay after the migration ends; once no migration needs them (`dmctl retire`), `dmctl cleanup` drops all but the schema history. */
  bookkeeping?: string[];
  /** The selector the cutover Service points at now. */
  activeSelector?: Record<string, string>;
  /** activeSelector as text (track=green), for kubectl get. */
  active?: string;
  /** The step Jobs. */
  jobs?: StepJob[];
}

/** A step Job of this run. */
export interface StepJob {
  /** The step. */
  step: "schema" | "copy" | "sync" | "validate" | "fence" | "catchup" | "unfence" | "release" | "rollback";
  /** The Job's name. */
  name: string;
  /** Running, Succeeded or Failed. */
  state?: "Running" | "Succeeded" | "Failed";
  /** The step's failure, bounded. */
  message?: string;
}

/** The target schema's versions. */
export interface SchemaStatus {
  /** The version before this migration ran (rollback returns here). */
  versionBefore?: string;
  /** The version now. */
  version?: string;
  /** Tables this migration created (createMissingTables), for people: rollback reads the target's own record. */
  createdTables?: string[];
  /** More tables were created than createdTables lists (the target's own record is complete). */
  truncated?: boolean;
}

/** The validation report, bounded to fit in status (the full report is in the validate Job's log). */
export interface ValidationStatus {
  /** Whether every check passed. */
  passed?: boolean;
  /** When validation finished. */
  checkedAt?: string;
  /** One line: checks passed and failed. */
  summary?: string;
  /** Check outcomes (failures first when truncated). */
  checks?: CheckResult[];
  /** More checks ran than are listed here. */
  truncated?: boolean;
}

/** One check's outcome. */
export interface CheckResult {
  /** The rule name, or the table for built-in checks. */
  name: string;
  /** RowCount, Checksum, Sample or Rule. */
  kind: "RowCount" | "Checksum" | "Sample" | "Rule";
  /** Whether it passed. */
  passed: boolean;
  /** The source side's figure. */
  source?: string;
  /** The target side's figure. */
  target?: string;
  /** The expected value (rules with expect). */
  expected?: string;
  /** What differs (keys, columns), bounded. */
  message?: string;
}

/** The outcome for one table. */
export interface TableStatus {
  /** The source table. */
  name: string;
  /** The target table. */
  target?: string;
  /** Pending, Copying, Copied or Failed. */
  state?: "Pending" | "Copying" | "Copied" | "Failed";
  /** Rows written by the copy. */
  rowsCopied?: number;
  /** Rows on the source (validation, where filter applied). */
  rowsSource?: number;
  /** Rows on the target (validation). */
  rowsTarget?: number;
  /** Match, Mismatch or Skipped. */
  checksum?: "Match" | "Mismatch" | "Skipped";
  /** Differences or the error, bounded. */
  message?: string;
}

/** ChangeCapture: the change stream from the source to the target, read from the target's bookkeeping while the sync Job runs, and the cutover's fence. */
export interface SyncStatus {
  /** Milliseconds the target is behind the source: 0 when everything the source committed is applied, else the time since the target was last caught up. */
  lagMs?: number;
  /** lagMs for people ("0.4s"), for kubectl get. */
  lag?: string;
  /** Change-log bytes the source wrote that are not applied yet (WAL or binlog). */
  pendingBytes?: number;
  /** The source position (LSN, or binlog file:position) up to which every change is on the target. */
  appliedPosition?: string;
  /** Source transactions applied by the sync Job's current pod. */
  transactions?: number;
  /** Row changes applied by the sync Job's current pod. */
  changes?: number;
  /** When the sync Job wrote these figures. */
  sampledAt?: string;
  /** The source position at which the sync Job compared the whole target with a snapshot of the source and found them equal (behind the fence only the rows changed since are compared again). */
  validatedPosition?: string;
  /** When that comparison began. */
  validatedAt?: string;
  /** When writes to the source were fenced. */
  fencedAt?: string;
  /** ScaleDown: the blue Deployment's replicas before the fence (restored when the fence is lifted). */
  fenceReplicas?: number;
  /** From the fence to the Service switch (or to the fence being lifted). */
  writeBlockedMs?: number;
  /** The source's capture resources (PostgreSQL: the replication slot and publication) are dropped. */
  released?: boolean;
}

/** Copy progress, updated while the copy runs. */
export interface Progress {
  /** Tables to copy. */
  tablesTotal?: number;
  /** Tables copied. */
  tablesDone?: number;
  /** Rows copied so far. */
  rowsCopied?: number;
  /** The source's row estimate (catalog statistics). */
  rowsEstimated?: number;
  /** rowsCopied against rowsEstimated, 0 to 100. */
  percent?: number;
  /** Recent copy rate. */
  rowsPerSecond?: number;
  /** Estimated seconds left. */
  etaSeconds?: number;
  /** The progress for people ("45% · 5/12 tables · 4.1M rows"). */
  summary?: string;
  /** When progress was last written. */
  updatedAt?: string;
}

/** One step of the run as the operator asked for it and saw it end. The operator decides from these entries; phase and conditions are derived for people. */
export interface StepRecord {
  /** start (the run started), schema, copy, sync, validate, rollback (a step Job), switch (the cutover's Service patch), restore (the rollback's), or finish (the run ended: Succeeded; Failed with reason RolledBack, or why it failed). */
  step: "start" | "schema" | "copy" | "sync" | "validate" | "fence" | "catchup" | "switch" | "unfence" | "release" | "rollback" | "restore" | "finish";
  /** The run the step belongs to. */
  runId: string;
  /** When the operator last asked for it: created the Job or patched the Service. */
  requestedAt?: string;
  /** The step's Job. */
  job?: string;
  /** How it ended: Succeeded, Failed, Aborted, or Rejected (the API server refused the Job; it is asked for again). Absent while it runs. */
  outcome?: "Succeeded" | "Failed" | "Aborted" | "Rejected";
  /** Why it ended, as a condition reason; a failed Job's reason comes from the engine's exit code (2 InvalidSpec, 3 PlanRefused, 4 ValidationFailed, otherwise JobFailed). */
  reason?: string;
  /** The engine's exit code, when its Job failed. */
  exitCode?: number;
  /** When the operator saw it end. */
  finishedAt?: string;
  /** Why it failed, was aborted or refused, bounded. */
  message?: string;
}

/** A condition in the Kubernetes shape; conditions are the truth, phase is for display. */
export interface Condition {
  /** Ready summarises (True once Succeeded); Reconciling is True while the operator works on it; Stalled is True when it cannot go on without a person (Failed, RolledBack, a refused Job or spec). SchemaReady, DataCopied, Validated, CutOver and RolledBack record the milestones. */
  type: "Ready" | "Reconciling" | "Stalled" | "SchemaReady" | "DataCopied" | "Validated" | "CutOver" | "RolledBack";
  /** True, False or Unknown. */
  status: "True" | "False" | "Unknown";
  /** A CamelCase reason, for programs. */
  reason: string;
  /** A message for people. */
  message: string;
  /** The generation the condition was set for. */
  observedGeneration?: number;
  /** When the status last changed. */
  lastTransitionTime: string;
}

/** What to migrate, how, and what must hold before traffic moves. */
export interface DataMigrationSpec {
  /** The database to read from. It is only ever opened read only (a read-only session enforced by the server), so nothing in this manifest can write to it. */
  source: SourceEndpoint;
  /** The database to write to: schema migrations, copied rows, and the copy's checkpoints go here. */
  target: DatabaseEndpoint;
  /** Versioned schema migrations for the target, Flyway style: V<version>__<description>.sql (up) and U<version>__<description>.sql (down). */
  schema?: SchemaSpec;
  /** The tables to copy, in order (default: every table of the source's database or schema). */
  tables?: TableSpec[];
  /** How the copy is run. Default: {"type":"BigBang"}. */
  strategy?: StrategySpec;
  /** What must be true before cutover. A failure stops the migration before any traffic moves (and rolls back when rollback.onValidationFailure). Default: {}. */
  validation?: ValidationSpec;
  /** The blue-green switch: after validation passes, the Service's selector changes from fromSelector to toSelector. */
  cutover?: CutoverSpec;
  /** What happens when validation fails. The source is never touched. Default: {}. */
  rollback?: RollbackSpec;
  /** Overrides for the step Jobs' pods. Security settings (non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp) are not overridable. */
  jobTemplate?: JobTemplateSpec;
  /** Pause: no new step starts while true (a running step finishes). Resuming continues where the run stopped. Default: false. */
  suspend?: boolean;
}

/** Overrides for the step Jobs' pods. Security settings (non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp) are not overridable. */
export interface JobTemplateSpec {
  /** The engine image (default: the operator's own image). Any other image must be on the operator's allow-list (chart engine.allowedImages), else the migration stops with reason ImageNotAllowed before any Job. */
  image?: string;
  /** Always, IfNotPresent or Never. */
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** Secrets for pulling the image. */
  imagePullSecrets?: LocalObjectReference[];
  /** CPU and memory for the engine container. */
  resources?: ResourceRequirements;
  /** The ServiceAccount the pods run as (default: the operator's engine account, or the namespace's default; its token is never mounted). Only accounts on the operator's allow-list (chart engine.allowedServiceAccounts) may be named, and then their token is mounted; any other stops the migration with reason ServiceAccountNotAllowed before any Job. */
  serviceAccountName?: string;
  /** Retries of a failed step pod before the step fails; the copy resumes from its checkpoints on each retry. Default: 3. */
  backoffLimit?: number;
  /** Longest a step Job may run, retries included; past it Kubernetes stops the Job and the step fails. Default: 86400 (24 h) for copy, 21600 (6 h) for the other steps; set it to override both. The sync Job of ChangeCapture has none: it runs until the cutover. */
  activeDeadlineSeconds?: number;
  /** Delete finished step Jobs after this many seconds (default: keep them while the DataMigration exists); at least 300, so that the operator reads each step's outcome before its Job goes. */
  ttlSecondsAfterFinished?: number;
  /** Node labels the pods must match (label keys and values). */
  nodeSelector?: Record<string, string>;
  /** Tolerations for the pods. */
  tolerations?: Toleration[];
  /** Affinity rules for the pods: Kubernetes' core/v1 Affinity (nodeAffinity, podAffinity, podAntiAffinity), checked at admission as the API server checks a Pod's; unknown fields are refused. */
  affinity?: V1Affinity;
  /** The pods' PriorityClass. */
  priorityClassName?: string;
  /** Annotations added to the pods (at most 32; keys are qualified names, values at most 4096 characters). Reserved keys are refused: dataops.dev/*, kubernetes.io/*, k8s.io/*, istio.io/*, linkerd.io/*, vault.hashicorp.com/*, consul.hashicorp.com/*, amazonaws.com/*, k8s.aws/*, azure.workload.identity/*, cni.cncf.io/*, multus-cni.io/*, projectcalico.org/*, dapr.io/*, opentelemetry.io/* and their subdomains (app.kubernetes.io/*, batch.kubernetes.io/*, AppArmor and seccomp annotations among them), keys starting with io.kubernetes., io.containerd., io.katacontainers., run.oci. (container runtimes), controller-uid and job-name; cluster-autoscaler.kubernetes.io/safe-to-evict is allowed. */
  annotations?: Record<string, string>;
  /** Labels added to the pods (at most 32; label keys and values). Reserved keys are refused: dataops.dev/*, kubernetes.io/*, k8s.io/*, istio.io/*, linkerd.io/*, vault.hashicorp.com/*, consul.hashicorp.com/*, amazonaws.com/*, k8s.aws/*, azure.workload.identity/*, cni.cncf.io/*, multus-cni.io/*, projectcalico.org/*, dapr.io/*, opentelemetry.io/* and their subdomains (app.kubernetes.io/*, batch.kubernetes.io/*, AppArmor and seccomp annotations among them), keys starting with io.kubernetes., io.containerd., io.katacontainers., run.oci. (container runtimes), controller-uid and job-name. */
  labels?: Record<string, string>;
}

/** A toleration, as in a Pod spec. */
export interface Toleration {
  /** The taint key, a qualified name (empty, with operator Exists: every taint). */
  key?: string;
  /** Exists or Equal (default). */
  operator?: "Exists" | "Equal";
  /** The taint value (Equal), a label value. */
  value?: string;
  /** The taint effect to tolerate (empty: all). */
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  /** NoExecute: how long the pod stays bound after the taint appears. */
  tolerationSeconds?: number;
}

/** CPU and memory for the engine container. */
export interface ResourceRequirements {
  /** Limits, such as cpu: "2", memory: 1Gi. */
  limits?: Record<string, number | string>;
  /** Requests, such as cpu: 500m, memory: 256Mi. */
  requests?: Record<string, number | string>;
}

/** A Secret in the DataMigration's namespace. */
export interface LocalObjectReference {
  /** The Secret's name. */
  name: string;
}

/** What happens when validation fails. The source is never touched. */
export interface RollbackSpec {
  /** Roll back automatically when validation fails (else stop in Failed, leaving the target for inspection). Default: true. */
  onValidationFailure?: boolean;
  /** DownMigrations runs the down scripts back to the version recorded before this migration; DropCreatedTables drops the tables (and PostgreSQL enum types) this migration created; TruncateTables empties the copied tables; None leaves the target as it is. Default: "DownMigrations". */
  schemaAction?: "DownMigrations" | "DropCreatedTables" | "TruncateTables" | "None";
  /** Point the Service back at fromSelector if this migration switched it (as the Service's dataops.dev/switched-by-uid annotation records) and nobody has changed its selector since; a Service switched by hand or by another run is never touched. Default: true. */
  restoreService?: boolean;
}

/** The blue-green switch: after validation passes, the Service's selector changes from fromSelector to toSelector. */
export interface CutoverSpec {
  /** The Service in the DataMigration's namespace whose selector is switched: a Service name (a DNS-1035 label: lower-case letters, digits and "-", starting with a letter, at most 63 characters). */
  service: string;
  /** Selector labels of the old (blue) side, replaced in the Service's selector. Keys are label keys (an optional DNS subdomain prefix and "/", then a name of at most 63 characters), values label values (at most 63 characters). */
  fromSelector: Record<string, string>;
  /** Selector labels of the new (green) side; keys and values as in fromSelector. */
  toSelector: Record<string, string>;
  /** Automatic switches as soon as validation passes; Manual waits in AwaitingApproval until the annotation dataops.dev/approve is set to "true". Default: "Automatic". */
  approval?: "Automatic" | "Manual";
  /** ChangeCapture: the write fence is put up only once the change stream is at most this many seconds behind the source (status.sync.lagMs). Default: 5. */
  maxLagSeconds?: number;
  /** ChangeCapture: how writes to the source stop before the final catch-up. ScaleDown scales the blue Deployment to zero and waits for its pods to end, and scales it back if the cutover fails after it; SourceReadOnly (opt in: it changes a setting of the source) makes the source database read-only for new transactions and ends the application's sessions (PostgreSQL: default_transaction_read_only on the database, which a session could still turn off for itself; MySQL: read_only, which accounts with SUPER bypass), restores the setting if the cutover fails, and leaves the source read-only after the switch (as ScaleDown leaves blue at zero); External waits until a person or tool that stopped the writers sets the annotation dataops.dev/fenced on the DataMigration to "true". */
  fence?: FenceSpec;
  /** Switch only when this Deployment (the green side) is available. */
  readinessGate?: ReadinessGate;
}

/** Switch only when this Deployment (the green side) is available. */
export interface ReadinessGate {
  /** Name of a Deployment in the DataMigration's namespace. */
  deployment: string;
  /** Ready replicas needed (default: all desired replicas). */
  minReadyReplicas?: number;
}

/** ChangeCapture: how writes to the source stop before the final catch-up. ScaleDown scales the blue Deployment to zero and waits for its pods to end, and scales it back if the cutover fails after it; SourceReadOnly (opt in: it changes a setting of the source) makes the source database read-only for new transactions and ends the application's sessions (PostgreSQL: default_transaction_read_only on the database, which a session could still turn off for itself; MySQL: read_only, which accounts with SUPER bypass), restores the setting if the cutover fails, and leaves the source read-only after the switch (as ScaleDown leaves blue at zero); External waits until a person or tool that stopped the writers sets the annotation dataops.dev/fenced on the DataMigration to "true". */
export interface FenceSpec {
  /** ScaleDown or External. */
  type: "ScaleDown" | "SourceReadOnly" | "External";
  /** ScaleDown: the blue Deployment in the DataMigration's namespace; it must carry the annotation dataops.dev/cutover-by naming this DataMigration, as the Service does. */
  deployment?: string;
  /** How long the fence and the catch-up after it may take before the cutover gives up, lifts the fence and stays on blue. Default: 300. */
  timeoutSeconds?: number;
}

/** What must be true before cutover. A failure stops the migration before any traffic moves (and rolls back when rollback.onValidationFailure). */
export interface ValidationSpec {
  /** Compare exact row counts per table (with the table's where filter). Default: true. */
  rowCount?: boolean;
  /** Compare rows by checksums computed inside both databases per key range; ranges that differ are bisected to the rows. Default: {"mode":"Full"}. */
  checksum?: ChecksumSpec;
  /** Rows per table picked at random by key and compared value by value (0: none). Default: 0. */
  sampleRows?: number;
  /** Differing keys reported per table. Default: 20. */
  maxReportedDifferences?: number;
  /** SQL rules. */
  rules?: ValidationRule[];
}

/** A check written in SQL: a query on the source compared with one on the target, or one query compared with an expected value. Queries return one value and run read only. */
export interface ValidationRule {
  /** A name for the rule, shown in status. */
  name: string;
  /** A query on the source returning one value. */
  source?: string;
  /** A query on the target returning one value. */
  target?: string;
  /** The value the one query must return (compared as a number when both are numbers, else as text). */
  expect?: string;
  /** For numbers: the largest allowed difference, absolute (0.01) or relative to the expected or source value (0.1%). */
  tolerance?: string;
}

/** Compare rows by checksums computed inside both databases per key range; ranges that differ are bisected to the rows. */
export interface ChecksumSpec {
  /** Full checks every row; Sample checks samplePercent of the key ranges; None skips checksums. Default: "Full". */
  mode?: "Full" | "Sample" | "None";
  /** Sample mode: the percentage of key ranges checked. */
  samplePercent?: number;
}

/** How the copy is run. */
export interface StrategySpec {
  /** BigBang copies every table at once; Phased copies the groups in phases one after another; Trickle copies, then keeps syncing changed rows (by strategy.incremental) until cutover. Default: "BigBang". */
  type?: "BigBang" | "Phased" | "Trickle";
  /** Phased: the groups, in order. */
  phases?: PhaseSpec[];
  /** Trickle: how changes are found after the first copy. */
  incremental?: IncrementalSpec;
  /** Rows per batch: a batch commits together with its checkpoint at this many rows or 32 MiB of row data, whichever comes first. The copy streams rows, so memory does not grow with it. Default: 10000. */
  batchSize?: number;
  /** Tables, or key-range shards of one large table, copied at once by each copy pod. Default: 4. */
  parallelism?: number;
  /** Pods of the copy step's Indexed Job: each takes its share of the (table, key range) units, and a large table is split into parallelism × copyPods key ranges; parallelism stays the concurrency inside each pod. Phased runs a phase only after every pod finished the one before. Default: 1. */
  copyPods?: number;
  /** What a row whose key already exists in the target does: Fail stops the copy (the target was expected empty), Upsert overwrites it. Trickle syncs always upsert. Default: "Fail". */
  conflictPolicy?: "Fail" | "Upsert";
}

/** Trickle: how changes are found after the first copy. */
export interface IncrementalSpec {
  /** ChangeCapture reads the source's own change log (PostgreSQL logical decoding, MySQL/MariaDB row binlog) from the initial copy's snapshot until the cutover's write fence: inserts, updates and deletes. Timestamp (column is a time) and Sequence (a number that grows on every insert and update) re-copy changed rows in rounds until a round finds nothing new; once caught up they compare the keys of each table and delete on the target the rows whose key the source no longer has (tables whose key reads differently on the two engines are skipped, and the step result says so). Default: "Timestamp". */
  mode?: "ChangeCapture" | "Timestamp" | "Sequence";
  /** Timestamp and Sequence: a column that grows on every insert and update (updated_at, a version or sequence number). */
  column?: string;
  /** Not used, kept so that manifests that set it stay valid: Timestamp and Sequence rounds run back to back until one finds nothing new (at most 50), and ChangeCapture streams continuously. Default: 30. */
  intervalSeconds?: number;
  /** How far back each round re-reads, for commits that landed late: Timestamp mode by the column's time (rows stamped in the last overlapSeconds), Sequence mode by the clock (from the maximum read overlapSeconds ago). A commit later than that is missed. Default: 60. */
  overlapSeconds?: number;
}

/** A group of tables copied together. */
export interface PhaseSpec {
  /** A name for the phase, shown in status and Events. */
  name: string;
  /** The tables of this phase. */
  tables: string[];
}

/** One source table to copy. */
export interface TableSpec {
  /** The source table: a name or schema.name. */
  name: string;
  /** The target table (default: the same name). */
  target?: string;
  /** Columns identifying a row (default: the primary key). They order the keyset pagination, the checkpoints, the key ranges of parallel shards, upserts, and the validation's row matching. */
  key?: string[];
  /** An SQL condition on the source: only matching rows are copied and validated. */
  where?: string;
  /** Per-column mapping; columns not listed copy as they are. */
  columns?: ColumnMapping[];
  /** Copy one row per group of source rows that share the values of `by`. */
  dedupe?: DedupeSpec;
}

/** Copy one row per group of source rows that share the values of `by`. */
export interface DedupeSpec {
  /** Columns whose equal values make rows duplicates. */
  by: string[];
  /** Which row of a group is copied: first or latest by orderBy. Default: "first". */
  keep?: "first" | "latest";
  /** The column ordering a group (default: the key). Required with keep latest. */
  orderBy?: string;
}

/** How one column is copied. Columns not listed are copied to the target column of the same name. */
export interface ColumnMapping {
  /** The source column; or, with expression or default, a target column the source does not have. */
  name: string;
  /** The target column (default: the same name). */
  target?: string;
  /** Do not copy this column. */
  skip?: boolean;
  /** An SQL literal for a new column, or for NULLs of an existing one ('n/a', 0, CURRENT_TIMESTAMP). */
  default?: string;
  /** An SQL expression evaluated on the source, read only (ROUND(total * 100)). */
  expression?: string;
  /** Transforms applied on the source, in order: trim, ltrim, rtrim, lowercase, uppercase, nullIfEmpty, emptyIfNull, sha256 (hex digest, for pseudonymising). */
  transforms?: ("trim" | "ltrim" | "rtrim" | "lowercase" | "uppercase" | "nullIfEmpty" | "emptyIfNull" | "sha256")[];
}

/** Versioned schema migrations for the target, Flyway style: V<version>__<description>.sql (up) and U<version>__<description>.sql (down). */
export interface SchemaSpec {
  /** A ConfigMap whose keys are migration files (V1__create_orders.sql, U1__create_orders.sql, ...), mounted into the schema Job. */
  configMapRef?: ConfigMapRef;
  /** Migrations given inline, instead of a ConfigMap. Versions are unique as numbers: 1, 1.0, 01 and 1_0 are one version. */
  migrations?: InlineMigration[];
  /** Migrate up to this version only (default: the latest). */
  targetVersion?: string;
  /** The table on the target that records applied migrations (version, description, checksum, installed by and on, execution time, success). Default: "dataops_schema_history". */
  historyTable?: string;
  /** Create target tables that do not exist after the migrations ran, from the source's metadata through the documented type map; indexes and foreign keys are added after the copy. Default: false. */
  createMissingTables?: boolean;
}

/** One versioned migration given inline: an up script and, for rollback, its down script. */
export interface InlineMigration {
  /** The version, as in Flyway file names: numbers separated by dots or underscores (1, 1.1, 2_0_3). Applied in numeric order. */
  version: string;
  /** A short description, recorded in the history table. */
  description: string;
  /** SQL that migrates the target schema to this version. */
  up: string;
  /** SQL that undoes up (used by rollback with schemaAction DownMigrations). */
  down?: string;
}

/** A ConfigMap whose keys are migration files (V1__create_orders.sql, U1__create_orders.sql, ...), mounted into the schema Job. */
export interface ConfigMapRef {
  /** Name of a ConfigMap in the DataMigration's namespace. */
  name: string;
}

/** The database to write to: schema migrations, copied rows, and the copy's checkpoints go here. */
export interface DatabaseEndpoint {
  /** The database engine: postgres (PostgreSQL 12 or later) or mysql (MySQL 8 or MariaDB 10.6 or later). */
  engine: "postgres" | "mysql";
  /** The Secret key holding the connection URL, such as postgres://user:password@host:5432/db or mysql://user:password@host:3306/db. */
  secretRef: SecretKeyRef;
  /** TLS for the connection. Without it, the URL's own parameters decide. */
  tls?: TlsSpec;
}

/** The database to read from. It is only ever opened read only (a read-only session enforced by the server), so nothing in this manifest can write to it. */
export interface SourceEndpoint {
  /** The database engine: postgres (PostgreSQL 12 or later) or mysql (MySQL 8 or MariaDB 10.6 or later). */
  engine: "postgres" | "mysql";
  /** The Secret key holding the connection URL, such as postgres://user:password@host:5432/db or mysql://user:password@host:3306/db. */
  secretRef: SecretKeyRef;
  /** Accept a source role that could write: a superuser, or a role with INSERT, UPDATE, DELETE or TRUNCATE (MySQL: DROP) on a copied table. Refused by default (the plan exits 3 naming the role): with such a role, only the operator's own guards (read-only transactions, parsed SQL fragments) stand between the manifest and the source, and anyone else holding its credentials can write. The README ("A read-only source role") shows how to create a role that can only read, on both engines. Default: false. */
  acceptWritableRole?: boolean;
  /** TLS for the connection. Without it, the URL's own parameters decide. */
  tls?: TlsSpec;
}

/** TLS for the connection. Without it, the URL's own parameters decide. */
export interface TlsSpec {
  /** libpq's sslmode names: disable, require (encrypted, unverified), verify-ca (the chain is checked), verify-full (chain and host name). */
  mode: "disable" | "require" | "verify-ca" | "verify-full";
  /** The Secret key holding the PEM certificate of the CA that signs the server's certificate. */
  caSecretRef?: CaSecretKeyRef;
}

/** The Secret key holding the PEM certificate of the CA that signs the server's certificate. */
export interface CaSecretKeyRef {
  /** Name of a Secret in the DataMigration's namespace. */
  name: string;
  /** Key in the Secret's data. Default: "ca.crt". */
  key?: string;
}

/** The Secret key holding the connection URL, such as postgres://user:password@host:5432/db or mysql://user:password@host:3306/db. */
export interface SecretKeyRef {
  /** Name of a Secret in the DataMigration's namespace. */
  name: string;
  /** Key in the Secret's data. Default: "url". */
  key?: string;
}
