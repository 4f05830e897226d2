// Generated from src/api/step-result-schema.ts by `npm run generate`. Do not edit.
/** The result of each step, as its Job's termination message carries it. */
export interface StepResults {
  /** The schema step: the target schema's version before and after, what it created. */
  schema: SchemaStepResult;
  /** The copy step (one pod's share; the operator merges an Indexed Job's pods). */
  copy: CopyStepResult;
  /** The sync step (Trickle): changed rows copied since the copy. */
  sync: SyncStepResult;
  /** The validate step's verdict and report (failed checks first). */
  validate: ValidateStepResult;
  /** The fence step (ChangeCapture, fence type SourceReadOnly): the source database made read-only for the application, writes in flight ended. */
  fence: FenceStepResult;
  /** The catch-up step (ChangeCapture, behind the write fence): the change stream applied up to the source's position at the fence, then validation. */
  catchup: CatchupStepResult;
  /** The unfence step: the source database as it was before the fence. */
  unfence: UnfenceStepResult;
  /** The release step (ChangeCapture): the source's capture resources dropped. */
  release: ReleaseStepResult;
  /** The rollback step: the schema version it returned to, what it undid. */
  rollback: RollbackStepResult;
}

/** The rollback step: the schema version it returned to, what it undid. */
export interface RollbackStepResult {
  /** The version after the rollback. */
  version?: string;
  /** The migrations reverted. */
  reverted?: string[];
  /** Tables dropped (DropCreatedTables). */
  droppedTables?: string[];
}

/** The release step (ChangeCapture): the source's capture resources dropped. */
export interface ReleaseStepResult {
  /** Nothing of the capture is left on the source. */
  released: boolean;
  /** PostgreSQL: the replication slot was dropped by this step. */
  slotDropped?: boolean;
  /** PostgreSQL: the publication was dropped by this step. */
  publicationDropped?: boolean;
  /** What could not be dropped. */
  problems?: string[];
}

/** The unfence step: the source database as it was before the fence. */
export interface UnfenceStepResult {
  /** The setting the fence changed is restored (or nothing was recorded). */
  unfenced: boolean;
  /** What was restored. */
  restored?: string;
}

/** The catch-up step (ChangeCapture, behind the write fence): the change stream applied up to the source's position at the fence, then validation. */
export interface CatchupStepResult {
  /** The source's change-log position read once writes were fenced. */
  fencePosition: string;
  /** The position applied when the step ended. */
  appliedPosition?: string;
  /** Milliseconds from the step's start to everything up to the fence position being on the target. */
  catchUpMs?: number;
  /** Source transactions applied by this step. */
  transactions?: number;
  /** The validate step's verdict and report (failed checks first). */
  validation: ValidateStepResult;
}

/** The fence step (ChangeCapture, fence type SourceReadOnly): the source database made read-only for the application, writes in flight ended. */
export interface FenceStepResult {
  /** The source is read-only for new transactions and no session that could still write is left. */
  fenced: boolean;
  /** The setting before the fence (restored by unfence): on, off or unset. */
  previous?: string;
  /** Sessions of the application ended so that none goes on writing. */
  sessionsEnded?: number;
  /** What the fence does not stop. */
  notes?: string[];
}

/** The validate step's verdict and report (failed checks first). */
export interface ValidateStepResult {
  /** Whether every check passed. */
  passed: boolean;
  /** When validation finished. */
  checkedAt?: string;
  /** One line: checks passed and failed. */
  summary?: string;
  /** Check outcomes; the operator keeps the first ones, failures first. */
  checks?: CheckResult[];
  /** More checks ran than are listed. */
  truncated?: boolean;
  /** Per table: rowsSource, rowsTarget, checksum, message. */
  tables?: TableStatus[];
  /** This project's own tables in the target (dataops_*), as the validate step found them: the migrations' records (identity, checkpoints, created tables, claims) and the schema history. They stay after the migration ends; once no migration needs them (`dmctl retire`), `dmctl cleanup` drops all but the schema history. */
  bookkeeping?: string[];
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

/** The sync step (Trickle): changed rows copied since the copy. */
export interface SyncStepResult {
  /** Rounds run. */
  rounds?: number;
  /** Changed rows written. */
  rowsSynced?: number;
  /** Whether the sync caught up with the source (Timestamp, Sequence). */
  caughtUp?: boolean;
  /** Timestamp, Sequence: target rows deleted because their key is gone from the source (looked for only once caught up). */
  rowsDeleted?: number;
  /** Timestamp, Sequence: what the sync did not check. */
  notes?: string[];
  /** ChangeCapture when the step followed the source's change log (it runs until stopped: the cutover stops it). */
  mode?: string;
  /** ChangeCapture: source transactions applied by this pod. */
  transactions?: number;
  /** ChangeCapture: row changes applied by this pod. */
  changes?: number;
  /** ChangeCapture: the source position up to which every change is on the target. */
  appliedPosition?: string;
}

/** The copy step (one pod's share; the operator merges an Indexed Job's pods). */
export interface CopyStepResult {
  /** The tables copied: name, target, state, rowsCopied. */
  tables?: TableStatus[];
  /** MySQL zero dates stored as NULL, per source "table.column". */
  zeroDates?: Record<string, number>;
  /** What a person should know about the copied data (lossy conversions and the like). */
  warnings?: string[];
  /** Rows this run wrote. */
  rowsThisRun?: number;
  /** Whether this pod ran the post-copy statements (indexes, keys), left them to the last pod, or another pod ran them. */
  postCopy?: "ran" | "pending" | "elsewhere";
  /** Post-copy statements run. */
  postCopyStatements?: number;
  /** Which share of the copy a pod took. */
  pod?: CopyPodShare;
  /** Per pod, in a merged result. */
  pods?: CopyPodResult[];
  /** The result was shortened to fit the termination message. */
  truncated?: boolean;
}

/** One pod's part (merged results). */
export interface CopyPodResult {
  /** Which share of the copy a pod took. */
  pod?: CopyPodShare;
  /** Rows the pod wrote. */
  rowsThisRun?: number;
  /** ran, pending or elsewhere. */
  postCopy?: "ran" | "pending" | "elsewhere";
}

/** Which share of the copy a pod took. */
export interface CopyPodShare {
  /** The pod's index. */
  index: number;
  /** How many pods share the copy. */
  count: number;
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

/** The schema step: the target schema's version before and after, what it created. */
export interface SchemaStepResult {
  /** The version the target was at before this migration's first schema step, as the target records it; null: none. */
  versionBefore: string | null;
  /** The version after the step. */
  version?: string;
  /** Tables the step created (createMissingTables), for rollback. */
  createdTables?: string[];
  /** The migrations applied, in order. */
  applied?: string[];
}
