// The DataMigration API, written once. Everything a user can set or read is described here:
// the CRD (crds/), the TypeScript types (types.generated.ts) and the API reference
// (docs/api-reference.md) are generated from this file by `npm run generate`.
import {
  APPROVAL_MODES, CHECK_KINDS, CHECK_OUTCOMES, CHECKSUM_MODES, CONDITION_TYPES, CONFLICT_POLICIES, DEDUPE_KEEP,
  ENGINES, FENCE_TYPES, INCREMENTAL_MODES, JOB_STATES, LABELS, LEDGER_STEPS, PHASES, ROLLBACK_SCHEMA_ACTIONS, STEP_OUTCOMES,
  STEPS, STRATEGY_TYPES, TABLE_STATES, TLS_MODES, TRANSFORMS,
} from './constants.ts';
import { jobTemplate } from './job-template-schema.ts';
import { DNS1035_LABEL, K8S_NAME, labelMap, uniqueVersionsRule } from './k8s-schema.ts';
import {
  array, boolean, enumOf, integer, object, optional, required, string, stringMap, type SchemaNode,
} from './schema-builder.ts';

// Bounds keep every CEL rule's worst-case cost inside the API server's budget, and a manifest
// inside etcd's object size limit.
const MAX_TABLES = 100;
const MAX_COLUMNS = 200;
const MAX_PHASES = 10;
const MAX_RULES = 50;
const MAX_SQL = 4096;
const MAX_IDENT = 128; // a qualified "schema.table" name, each part up to 63 (PostgreSQL) or 64 (MySQL)
/** A DataMigration's longest name: a label value's limit. */
export const MAX_NAME = 63;
// A key a Secret can hold (Kubernetes' IsConfigMapKey): never ".", ".." or starting with "..",
// which no Secret holds, so a spec naming one would wait for ever.
const SECRET_KEY = { minLength: 1, maxLength: 253, pattern: '^[.]?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$' };
export const IDENT = { minLength: 1, maxLength: MAX_IDENT };

/**
 * Bounds of what status holds. The operator bounds what it writes (and what it reads from a step's
 * result) by these same figures, so they are named once, here.
 */
export { DEFAULT_COPY_DEADLINE_SECONDS, DEFAULT_STEP_DEADLINE_SECONDS } from './job-template-schema.ts';

export const STATUS_LIMITS = {
  /** status.message, a validation summary. */
  message: 1024,
  /** A step's failure, a table's or a check's message. */
  detail: 2048,
  /** A figure (a check's source, target or expected value; a name; the progress summary). */
  figure: 256,
  /** A schema version. */
  version: 32,
  /** Checks listed in status.validation. */
  checks: 64,
  /** status.active. */
  active: 512,
  /** A Job name, a run id (label values). */
  name: 63,
  /** Tables listed in status.tables and status.schema.createdTables. */
  tables: MAX_TABLES,
} as const;

const columnNames = (description: string, extra: Partial<SchemaNode> = {}): SchemaNode =>
  array(string('A column name.', IDENT), description, { maxItems: 32, 'x-kubernetes-list-type': 'atomic', ...extra });

const secretKeyRef = (typeName: string, what: string, defaultKey: string): SchemaNode => object(typeName, `The Secret key holding ${what}.`, {
  name: required(string('Name of a Secret in the DataMigration\'s namespace.', K8S_NAME)),
  key: optional(string(`Key in the Secret's data.`, { ...SECRET_KEY, default: defaultKey })),
});

const endpoint = (side: 'source' | 'target'): SchemaNode => object(
  // The source has a field the target has not: two shapes, two names.
  side === 'source' ? 'SourceEndpoint' : 'DatabaseEndpoint',
  side === 'source'
    ? 'The database to read from. It is only ever opened read only (a read-only session enforced by the server), so nothing in this manifest can write to it.'
    : 'The database to write to: schema migrations, copied rows, and the copy\'s checkpoints go here.',
  {
    engine: required(enumOf(ENGINES, 'The database engine: postgres (PostgreSQL 12 or later) or mysql (MySQL 8 or MariaDB 10.6 or later).')),
    secretRef: required(secretKeyRef('SecretKeyRef', 'the connection URL, such as postgres://user:password@host:5432/db or mysql://user:password@host:3306/db', 'url')),
    ...(side === 'source' ? {
      acceptWritableRole: optional(boolean('Accept a source role that could write: a superuser, or a role with INSERT, UPDATE, DELETE or TRUNCATE (MySQL: DROP) on a copied table. Refused by default (the plan exits 3 naming the role): with such a role, only the operator\'s own guards (read-only transactions, parsed SQL fragments) stand between the manifest and the source, and anyone else holding its credentials can write. The README ("A read-only source role") shows how to create a role that can only read, on both engines.', { default: false })),
    } : {}),
    tls: optional(object('TlsSpec', 'TLS for the connection. Without it, the URL\'s own parameters decide.', {
      mode: required(enumOf(TLS_MODES, 'libpq\'s sslmode names: disable, require (encrypted, unverified), verify-ca (the chain is checked), verify-full (chain and host name).')),
      caSecretRef: optional(secretKeyRef('CaSecretKeyRef', 'the PEM certificate of the CA that signs the server\'s certificate', 'ca.crt')),
    }, {
      'x-kubernetes-validations': [{
        rule: "self.mode != 'disable' || !has(self.caSecretRef)",
        message: `spec.${side}.tls.caSecretRef has no effect with mode disable`,
        fieldPath: '.caSecretRef',
      }],
    })),
  },
  {
    'x-kubernetes-validations': [{
      rule: 'self == oldSelf',
      message: `spec.${side} is immutable: a run's checkpoints and schema history belong to one ${side}; create a new DataMigration to use another database`,
    }],
  },
);

const inlineMigration = object('InlineMigration', 'One versioned migration given inline: an up script and, for rollback, its down script.', {
  version: required(string('The version, as in Flyway file names: numbers separated by dots or underscores (1, 1.1, 2_0_3). Applied in numeric order.', { maxLength: 32, pattern: '^[0-9]+([._][0-9]+)*$' })),
  description: required(string('A short description, recorded in the history table.', { minLength: 1, maxLength: 200 })),
  up: required(string('SQL that migrates the target schema to this version.', { minLength: 1, maxLength: 65536 })),
  down: optional(string('SQL that undoes up (used by rollback with schemaAction DownMigrations).', { maxLength: 65536 })),
});

const schemaSpec = object('SchemaSpec', 'Versioned schema migrations for the target, Flyway style: V<version>__<description>.sql (up) and U<version>__<description>.sql (down).', {
  configMapRef: optional(object('ConfigMapRef', 'A ConfigMap whose keys are migration files (V1__create_orders.sql, U1__create_orders.sql, ...), mounted into the schema Job.', {
    name: required(string('Name of a ConfigMap in the DataMigration\'s namespace.', K8S_NAME)),
  })),
  migrations: optional(array(inlineMigration, 'Migrations given inline, instead of a ConfigMap. Versions are unique as numbers: 1, 1.0, 01 and 1_0 are one version.', {
    maxItems: 100, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['version'],
    'x-kubernetes-validations': [uniqueVersionsRule],
  })),
  targetVersion: optional(string('Migrate up to this version only (default: the latest).', { maxLength: 32, pattern: '^[0-9]+([._][0-9]+)*$' })),
  historyTable: optional(string('The table on the target that records applied migrations (version, description, checksum, installed by and on, execution time, success).', {
    default: 'dataops_schema_history', minLength: 1, maxLength: 63, pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
  })),
  createMissingTables: optional(boolean('Create target tables that do not exist after the migrations ran, from the source\'s metadata through the documented type map; indexes and foreign keys are added after the copy.', { default: false })),
}, {
  'x-kubernetes-validations': [{
    rule: '!(has(self.configMapRef) && has(self.migrations))',
    message: 'spec.schema takes migrations from configMapRef or from migrations, not both',
  }],
});

const columnMapping = object('ColumnMapping', 'How one column is copied. Columns not listed are copied to the target column of the same name.', {
  name: required(string('The source column; or, with expression or default, a target column the source does not have.', IDENT)),
  target: optional(string('The target column (default: the same name).', IDENT)),
  skip: optional(boolean('Do not copy this column.')),
  default: optional(string('An SQL literal for a new column, or for NULLs of an existing one (\'n/a\', 0, CURRENT_TIMESTAMP).', { maxLength: 1024 })),
  expression: optional(string('An SQL expression evaluated on the source, read only (ROUND(total * 100)).', { maxLength: MAX_SQL })),
  transforms: optional(array(enumOf(TRANSFORMS, 'A transform.'), 'Transforms applied on the source, in order: trim, ltrim, rtrim, lowercase, uppercase, nullIfEmpty, emptyIfNull, sha256 (hex digest, for pseudonymising).', { maxItems: 8, 'x-kubernetes-list-type': 'atomic' })),
}, {
  'x-kubernetes-validations': [{
    rule: '!has(self.skip) || !self.skip || !(has(self.target) || has(self.expression) || has(self.default) || has(self.transforms))',
    message: 'a skipped column (spec.tables[].columns[].skip) takes no target, expression, default or transforms',
  }],
});

const dedupe = object('DedupeSpec', 'Copy one row per group of source rows that share the values of `by`.', {
  // Not `on`: YAML 1.1 readers such as kubectl turn a bare `on` key into `true`.
  by: required(columnNames('Columns whose equal values make rows duplicates.', { minItems: 1 })),
  keep: optional(enumOf(DEDUPE_KEEP, 'Which row of a group is copied: first or latest by orderBy.', { default: 'first' })),
  orderBy: optional(string('The column ordering a group (default: the key). Required with keep latest.', IDENT)),
}, {
  'x-kubernetes-validations': [{
    rule: "self.keep != 'latest' || has(self.orderBy)",
    message: 'spec.tables[].dedupe.orderBy is required when keep is latest',
    fieldPath: '.orderBy',
  }],
});

const tableSpec = object('TableSpec', 'One source table to copy.', {
  name: required(string('The source table: a name or schema.name.', IDENT)),
  target: optional(string('The target table (default: the same name).', IDENT)),
  key: optional(columnNames('Columns identifying a row (default: the primary key). They order the keyset pagination, the checkpoints, the key ranges of parallel shards, upserts, and the validation\'s row matching.', { minItems: 1 })),
  where: optional(string('An SQL condition on the source: only matching rows are copied and validated.', { maxLength: MAX_SQL })),
  columns: optional(array(columnMapping, 'Per-column mapping; columns not listed copy as they are.', {
    maxItems: MAX_COLUMNS, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
  })),
  dedupe: optional(dedupe),
});

const strategy = object('StrategySpec', 'How the copy is run.', {
  type: optional(enumOf(STRATEGY_TYPES, 'BigBang copies every table at once; Phased copies the groups in phases one after another; Trickle copies, then keeps syncing changed rows (by strategy.incremental) until cutover.', { default: 'BigBang' })),
  phases: optional(array(object('PhaseSpec', 'A group of tables copied together.', {
    name: required(string('A name for the phase, shown in status and Events.', { minLength: 1, maxLength: 63 })),
    tables: required(array(string('A table name from spec.tables.', IDENT), 'The tables of this phase.', { minItems: 1, maxItems: 50, 'x-kubernetes-list-type': 'set' })),
  }), 'Phased: the groups, in order.', { minItems: 1, maxItems: MAX_PHASES, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })),
  incremental: optional(object('IncrementalSpec', 'Trickle: how changes are found after the first copy.', {
    mode: optional(enumOf(INCREMENTAL_MODES, 'ChangeCapture reads the source\'s own change log (PostgreSQL logical decoding, MySQL/MariaDB row binlog) from the initial copy\'s snapshot until the cutover\'s write fence: inserts, updates and deletes. Timestamp (column is a time) and Sequence (a number that grows on every insert and update) re-copy changed rows in rounds until a round finds nothing new; once caught up they compare the keys of each table and delete on the target the rows whose key the source no longer has (tables whose key reads differently on the two engines are skipped, and the step result says so).', { default: 'Timestamp' })),
    column: optional(string('Timestamp and Sequence: a column that grows on every insert and update (updated_at, a version or sequence number).', IDENT)),
    intervalSeconds: optional(integer('Not used, kept so that manifests that set it stay valid: Timestamp and Sequence rounds run back to back until one finds nothing new (at most 50), and ChangeCapture streams continuously.', { default: 30, minimum: 1, maximum: 3600 })),
    overlapSeconds: optional(integer('How far back each round re-reads, for commits that landed late: Timestamp mode by the column\'s time (rows stamped in the last overlapSeconds), Sequence mode by the clock (from the maximum read overlapSeconds ago). A commit later than that is missed.', { default: 60, minimum: 0, maximum: 86400 })),
  })),
  batchSize: optional(integer('Rows per batch: a batch commits together with its checkpoint at this many rows or 32 MiB of row data, whichever comes first. The copy streams rows, so memory does not grow with it.', { default: 10000, minimum: 100, maximum: 1000000 })),
  parallelism: optional(integer('Tables, or key-range shards of one large table, copied at once by each copy pod.', { default: 4, minimum: 1, maximum: 64 })),
  copyPods: optional(integer('Pods of the copy step\'s Indexed Job: each takes its share of the (table, key range) units, and a large table is split into parallelism × copyPods key ranges; parallelism stays the concurrency inside each pod. Phased runs a phase only after every pod finished the one before.', { default: 1, minimum: 1, maximum: 64 })),
  conflictPolicy: optional(enumOf(CONFLICT_POLICIES, 'What a row whose key already exists in the target does: Fail stops the copy (the target was expected empty), Upsert overwrites it. Trickle syncs always upsert.', { default: 'Fail' })),
}, {
  'x-kubernetes-validations': [
    { rule: "self.type != 'Trickle' || has(self.incremental)", message: 'spec.strategy.incremental is required when spec.strategy.type is Trickle', fieldPath: '.incremental', reason: 'FieldValueRequired' },
    { rule: "self.type == 'Trickle' || !has(self.incremental)", message: 'spec.strategy.incremental is only used when spec.strategy.type is Trickle', fieldPath: '.incremental' },
    { rule: "!has(self.incremental) || self.incremental.mode == 'ChangeCapture' || has(self.incremental.column)", message: 'spec.strategy.incremental.column is required unless mode is ChangeCapture', fieldPath: '.incremental.column', reason: 'FieldValueRequired' },
    { rule: "!has(self.incremental) || self.incremental.mode != 'ChangeCapture' || !has(self.copyPods) || self.copyPods == 1", message: 'ChangeCapture copies in one pod (the pod that holds the change log\'s snapshot): spec.strategy.copyPods must be 1', fieldPath: '.copyPods' },
    { rule: "self.type != 'Phased' || has(self.phases)", message: 'spec.strategy.phases is required when spec.strategy.type is Phased', fieldPath: '.phases', reason: 'FieldValueRequired' },
    { rule: "self.type == 'Phased' || !has(self.phases)", message: 'spec.strategy.phases is only used when spec.strategy.type is Phased', fieldPath: '.phases' },
  ],
});

const rule = object('ValidationRule', 'A check written in SQL: a query on the source compared with one on the target, or one query compared with an expected value. Queries return one value and run read only.', {
  name: required(string('A name for the rule, shown in status.', { minLength: 1, maxLength: 63, pattern: '^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$' })),
  source: optional(string('A query on the source returning one value.', { maxLength: MAX_SQL })),
  target: optional(string('A query on the target returning one value.', { maxLength: MAX_SQL })),
  expect: optional(string('The value the one query must return (compared as a number when both are numbers, else as text).', { maxLength: 1024 })),
  tolerance: optional(string('For numbers: the largest allowed difference, absolute (0.01) or relative to the expected or source value (0.1%).', { maxLength: 32, pattern: '^[0-9]+(\\.[0-9]+)?%?$' })),
}, {
  'x-kubernetes-validations': [
    { rule: 'has(self.source) || has(self.target)', message: 'spec.validation.rules[] needs a source or a target query', reason: 'FieldValueRequired' },
    { rule: 'has(self.expect) != (has(self.source) && has(self.target))', message: 'spec.validation.rules[] compares either both queries with each other, or one query with expect' },
  ],
});

const validation = object('ValidationSpec', 'What must be true before cutover. A failure stops the migration before any traffic moves (and rolls back when rollback.onValidationFailure).', {
  rowCount: optional(boolean('Compare exact row counts per table (with the table\'s where filter).', { default: true })),
  checksum: optional(object('ChecksumSpec', 'Compare rows by checksums computed inside both databases per key range; ranges that differ are bisected to the rows.', {
    mode: optional(enumOf(CHECKSUM_MODES, 'Full checks every row; Sample checks samplePercent of the key ranges; None skips checksums.', { default: 'Full' })),
    samplePercent: optional(integer('Sample mode: the percentage of key ranges checked.', { minimum: 1, maximum: 100 })),
  }, {
    // The API server checks a default against the rules before nested defaults fill it in.
    default: { mode: 'Full' },
    'x-kubernetes-validations': [{ rule: "self.mode != 'Sample' || has(self.samplePercent)", message: 'spec.validation.checksum.samplePercent is required when mode is Sample', fieldPath: '.samplePercent', reason: 'FieldValueRequired' }],
  })),
  sampleRows: optional(integer('Rows per table picked at random by key and compared value by value (0: none).', { default: 0, minimum: 0, maximum: 100000 })),
  maxReportedDifferences: optional(integer('Differing keys reported per table.', { default: 20, minimum: 1, maximum: 1000 })),
  rules: optional(array(rule, 'SQL rules.', { maxItems: MAX_RULES, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })),
});

const cutover = object('CutoverSpec', 'The blue-green switch: after validation passes, the Service\'s selector changes from fromSelector to toSelector.', {
  service: required(string('The Service in the DataMigration\'s namespace whose selector is switched: a Service name (a DNS-1035 label: lower-case letters, digits and "-", starting with a letter, at most 63 characters).', DNS1035_LABEL)),
  fromSelector: required(labelMap('Selector labels of the old (blue) side, replaced in the Service\'s selector. Keys are label keys (an optional DNS subdomain prefix and "/", then a name of at most 63 characters), values label values (at most 63 characters).', 'spec.cutover.fromSelector', { minProperties: 1, maxProperties: 16 })),
  toSelector: required(labelMap('Selector labels of the new (green) side; keys and values as in fromSelector.', 'spec.cutover.toSelector', { minProperties: 1, maxProperties: 16 })),
  approval: optional(enumOf(APPROVAL_MODES, 'Automatic switches as soon as validation passes; Manual waits in AwaitingApproval until the annotation dataops.dev/approve is set to "true".', { default: 'Automatic' })),
  maxLagSeconds: optional(integer('ChangeCapture: the write fence is put up only once the change stream is at most this many seconds behind the source (status.sync.lagMs).', { default: 5, minimum: 1, maximum: 3600 })),
  fence: optional(object('FenceSpec', 'ChangeCapture: how writes to the source stop before the final catch-up. ScaleDown scales the blue Deployment to zero and waits for its pods to end, and scales it back if the cutover fails after it; SourceReadOnly (opt in: it changes a setting of the source) makes the source database read-only for new transactions and ends the application\'s sessions (PostgreSQL: default_transaction_read_only on the database, which a session could still turn off for itself; MySQL: read_only, which accounts with SUPER bypass), restores the setting if the cutover fails, and leaves the source read-only after the switch (as ScaleDown leaves blue at zero); External waits until a person or tool that stopped the writers sets the annotation dataops.dev/fenced on the DataMigration to "true".', {
    type: required(enumOf(FENCE_TYPES, 'ScaleDown or External.')),
    deployment: optional(string('ScaleDown: the blue Deployment in the DataMigration\'s namespace; it must carry the annotation dataops.dev/cutover-by naming this DataMigration, as the Service does.', K8S_NAME)),
    timeoutSeconds: optional(integer('How long the fence and the catch-up after it may take before the cutover gives up, lifts the fence and stays on blue.', { default: 300, minimum: 10, maximum: 86400 })),
  }, { 'x-kubernetes-validations': [{ rule: "self.type != 'ScaleDown' || has(self.deployment)", message: 'spec.cutover.fence.deployment is required when type is ScaleDown', fieldPath: '.deployment', reason: 'FieldValueRequired' }] })),
  readinessGate: optional(object('ReadinessGate', 'Switch only when this Deployment (the green side) is available.', {
    deployment: required(string('Name of a Deployment in the DataMigration\'s namespace.', K8S_NAME)),
    minReadyReplicas: optional(integer('Ready replicas needed (default: all desired replicas).', { minimum: 1 })),
  })),
}, {
  'x-kubernetes-validations': [
    { rule: 'self.fromSelector != self.toSelector', message: 'spec.cutover.toSelector must differ from spec.cutover.fromSelector', fieldPath: '.toSelector' },
    // The switch removes fromSelector's keys and adds toSelector's: a key only in fromSelector would
    // leave the Service selecting more pods than before (blue and green at once, or any pod).
    { rule: 'self.fromSelector.all(k, k in self.toSelector)', message: 'spec.cutover.toSelector must name every key of fromSelector (with its green value): a key it leaves out would widen the Service\'s selector', fieldPath: '.toSelector' },
  ],
});

const rollback = object('RollbackSpec', 'What happens when validation fails. The source is never touched.', {
  onValidationFailure: optional(boolean('Roll back automatically when validation fails (else stop in Failed, leaving the target for inspection).', { default: true })),
  schemaAction: optional(enumOf(ROLLBACK_SCHEMA_ACTIONS, 'DownMigrations runs the down scripts back to the version recorded before this migration; DropCreatedTables drops the tables (and PostgreSQL enum types) this migration created; TruncateTables empties the copied tables; None leaves the target as it is.', { default: 'DownMigrations' })),
  restoreService: optional(boolean('Point the Service back at fromSelector if this migration switched it (as the Service\'s dataops.dev/switched-by-uid annotation records) and nobody has changed its selector since; a Service switched by hand or by another run is never touched.', { default: true })),
});

const spec = object('DataMigrationSpec', 'What to migrate, how, and what must hold before traffic moves.', {
  source: required(endpoint('source')),
  target: required(endpoint('target')),
  schema: optional(schemaSpec),
  tables: optional(array(tableSpec, 'The tables to copy, in order (default: every table of the source\'s database or schema).', {
    maxItems: MAX_TABLES, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
  })),
  strategy: optional({ ...strategy, default: { type: 'BigBang' } }),
  validation: optional({ ...validation, default: {} }),
  cutover: optional(cutover),
  rollback: optional({ ...rollback, default: {} }),
  jobTemplate: optional(jobTemplate),
  suspend: optional(boolean('Pause: no new step starts while true (a running step finishes). Resuming continues where the run stopped.', { default: false })),
}, {
  'x-kubernetes-validations': [
    {
      rule: '!(self.source.engine == self.target.engine && self.source.secretRef.name == self.target.secretRef.name && self.source.secretRef.key == self.target.secretRef.key)',
      message: 'spec.target names the same Secret key as spec.source: source and target must be different databases',
      fieldPath: '.target.secretRef',
    },
    {
      // The change stream runs until writes are fenced: without a fence it would never end.
      rule: "!has(self.strategy.incremental) || self.strategy.incremental.mode != 'ChangeCapture' || (has(self.cutover) && has(self.cutover.fence))",
      message: 'spec.cutover.fence is required when spec.strategy.incremental.mode is ChangeCapture (the change stream runs until writes to the source are fenced)',
      fieldPath: '.cutover', reason: 'FieldValueRequired',
    },
    {
      rule: "!has(self.cutover) || !has(self.cutover.fence) || (has(self.strategy.incremental) && self.strategy.incremental.mode == 'ChangeCapture')",
      message: 'spec.cutover.fence is only used when spec.strategy.incremental.mode is ChangeCapture',
      fieldPath: '.cutover.fence',
    },
    {
      rule: "self.strategy.type != 'Phased' || has(self.tables)",
      message: 'spec.tables is required when spec.strategy.type is Phased (phases name tables from it)',
      fieldPath: '.tables', reason: 'FieldValueRequired',
    },
    {
      rule: '!has(self.strategy.phases) || !has(self.tables) || self.strategy.phases.all(p, p.tables.all(t, self.tables.exists(x, x.name == t)))',
      message: 'spec.strategy.phases[].tables may only name tables declared in spec.tables',
      fieldPath: '.strategy.phases',
    },
    {
      // With every table in some phase and only declared tables in phases, equal counts mean each table is in exactly one.
      rule: '!has(self.strategy.phases) || !has(self.tables) || self.strategy.phases.map(p, size(p.tables)).sum() == size(self.tables)',
      message: 'spec.strategy.phases: a table may appear in only one phase',
      fieldPath: '.strategy.phases',
    },
    {
      rule: '!has(self.strategy.phases) || !has(self.tables) || self.tables.all(x, self.strategy.phases.exists(p, x.name in p.tables))',
      message: 'spec.strategy.phases must include every table of spec.tables',
      fieldPath: '.strategy.phases',
    },
    {
      rule: '!has(self.tables) || self.tables.all(a, self.tables.filter(b, (has(b.target) ? b.target : b.name) == (has(a.target) ? a.target : a.name)).size() == 1)',
      message: 'spec.tables: two entries write the same target table',
      fieldPath: '.tables',
    },
  ],
});

const condition = object('Condition', 'A condition in the Kubernetes shape; conditions are the truth, phase is for display.', {
  type: required(enumOf(CONDITION_TYPES, 'Ready summarises (True once Succeeded); Reconciling is True while the operator works on it; Stalled is True when it cannot go on without a person (Failed, RolledBack, a refused Job or spec). SchemaReady, DataCopied, Validated, CutOver and RolledBack record the milestones.')),
  status: required(enumOf(['True', 'False', 'Unknown'], 'True, False or Unknown.')),
  reason: required(string('A CamelCase reason, for programs.', { minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' })),
  message: required(string('A message for people.', { maxLength: 32768 })),
  observedGeneration: optional(integer('The generation the condition was set for.', { minimum: 0, format: 'int64' })),
  lastTransitionTime: required(string('When the status last changed.', { format: 'date-time' })),
});

/** One table's outcome: status.tables, and what the copy and validate steps report (src/api/step-result-schema.ts). */
/** The most bookkeeping tables status lists (the engine has 7; the rest would be someone's own dataops_ tables). */
export const MAX_BOOKKEEPING_TABLES = 16;

/** This project's bookkeeping tables in the target: status.bookkeeping, and what the validate step reports. */
export const bookkeepingTables = array(string('A table name.', IDENT),
  'This project\'s own tables in the target (dataops_*), as the validate step found them: the migrations\' records (identity, checkpoints, created tables, claims) and the schema history. They stay after the migration ends; once no migration needs them (`dmctl retire`), `dmctl cleanup` drops all but the schema history.',
  { maxItems: MAX_BOOKKEEPING_TABLES, 'x-kubernetes-list-type': 'atomic' });

export const tableStatus = object('TableStatus', 'The outcome for one table.', {
  name: required(string('The source table.', IDENT)),
  target: optional(string('The target table.', IDENT)),
  state: optional(enumOf(TABLE_STATES, 'Pending, Copying, Copied or Failed.')),
  rowsCopied: optional(integer('Rows written by the copy.', { format: 'int64', minimum: 0 })),
  rowsSource: optional(integer('Rows on the source (validation, where filter applied).', { format: 'int64', minimum: 0 })),
  rowsTarget: optional(integer('Rows on the target (validation).', { format: 'int64', minimum: 0 })),
  checksum: optional(enumOf(CHECK_OUTCOMES, 'Match, Mismatch or Skipped.')),
  message: optional(string('Differences or the error, bounded.', { maxLength: STATUS_LIMITS.detail })),
});

/** One check's outcome: status.validation.checks, and what the validate step reports. */
export const checkResult = object('CheckResult', 'One check\'s outcome.', {
  name: required(string('The rule name, or the table for built-in checks.', { maxLength: STATUS_LIMITS.figure })),
  kind: required(enumOf(CHECK_KINDS, 'RowCount, Checksum, Sample or Rule.')),
  passed: required(boolean('Whether it passed.')),
  source: optional(string('The source side\'s figure.', { maxLength: STATUS_LIMITS.figure })),
  target: optional(string('The target side\'s figure.', { maxLength: STATUS_LIMITS.figure })),
  expected: optional(string('The expected value (rules with expect).', { maxLength: STATUS_LIMITS.figure })),
  message: optional(string('What differs (keys, columns), bounded.', { maxLength: STATUS_LIMITS.detail })),
});

/** A schema version, as status and the schema and rollback steps carry it. */
export const schemaVersion = (description: string): SchemaNode => string(description, { maxLength: STATUS_LIMITS.version });

/** The step ledger's entry: the phase machine's memory (src/controller/ledger.ts). */
const stepRecord = object('StepRecord', 'One step of the run as the operator asked for it and saw it end. The operator decides from these entries; phase and conditions are derived for people.', {
  step: required(enumOf(LEDGER_STEPS, 'start (the run started), schema, copy, sync, validate, rollback (a step Job), switch (the cutover\'s Service patch), restore (the rollback\'s), or finish (the run ended: Succeeded; Failed with reason RolledBack, or why it failed).')),
  runId: required(string('The run the step belongs to.', { maxLength: STATUS_LIMITS.name })),
  requestedAt: optional(string('When the operator last asked for it: created the Job or patched the Service.', { format: 'date-time' })),
  job: optional(string('The step\'s Job.', { maxLength: STATUS_LIMITS.name })),
  outcome: optional(enumOf(STEP_OUTCOMES, 'How it ended: Succeeded, Failed, Aborted, or Rejected (the API server refused the Job; it is asked for again). Absent while it runs.')),
  reason: optional(string('Why it ended, as a condition reason; a failed Job\'s reason comes from the engine\'s exit code (2 InvalidSpec, 3 PlanRefused, 4 ValidationFailed, otherwise JobFailed).', { maxLength: STATUS_LIMITS.figure })),
  exitCode: optional(integer('The engine\'s exit code, when its Job failed.', { minimum: 0, maximum: 255 })),
  finishedAt: optional(string('When the operator saw it end.', { format: 'date-time' })),
  message: optional(string('Why it failed, was aborted or refused, bounded.', { maxLength: STATUS_LIMITS.detail })),
});

const status = object('DataMigrationStatus', 'What the operator observed and did; written only by the operator.', {
  phase: optional(enumOf(PHASES, 'Where the migration is: Pending, SchemaMigrating, Copying, Syncing (Trickle), Validating, AwaitingApproval (Manual), CuttingOver, Succeeded; RollingBack, RolledBack; Failed.')),
  observedGeneration: optional(integer('The generation of the spec this status reflects.', { format: 'int64' })),
  message: optional(string('A one-line summary of the current state, for people.', { maxLength: STATUS_LIMITS.message })),
  runId: optional(string('Identifies this run; step Jobs are named from it, so a restarted operator finds instead of duplicating them.', { maxLength: STATUS_LIMITS.name })),
  startedAt: optional(string('When the first step started. Once set it cannot be removed or changed, not even through the status subresource: it freezes spec.tables, spec.strategy and spec.schema.', { format: 'date-time' })),
  completedAt: optional(string('When the migration reached Succeeded, RolledBack or Failed.', { format: 'date-time' })),
  conditions: optional(array(condition, 'Conditions, one per type.', { maxItems: 16, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })),
  waitingSince: optional(string('When the operator began waiting for objects the spec refers to (a Secret, a key, a ConfigMap, the Service, the readiness Deployment); its recheck backoff grows with this wait. Absent when nothing is missing.', { format: 'date-time' })),
  announced: optional(string('The Ready status and reason ("False/SecretNotFound") last announced by an Event, so each change is announced once. The operator\'s memory; read Ready instead.', { maxLength: STATUS_LIMITS.figure })),
  steps: optional(array(stepRecord, 'The step ledger: per step of the current run, when it was asked for, its Job and how it ended.', {
    maxItems: LEDGER_STEPS.length, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['step'],
  })),
  progress: optional(object('Progress', 'Copy progress, updated while the copy runs.', {
    tablesTotal: optional(integer('Tables to copy.')),
    tablesDone: optional(integer('Tables copied.')),
    rowsCopied: optional(integer('Rows copied so far.', { format: 'int64' })),
    rowsEstimated: optional(integer('The source\'s row estimate (catalog statistics).', { format: 'int64' })),
    percent: optional(integer('rowsCopied against rowsEstimated, 0 to 100.', { minimum: 0, maximum: 100 })),
    rowsPerSecond: optional(integer('Recent copy rate.', { format: 'int64' })),
    etaSeconds: optional(integer('Estimated seconds left.', { format: 'int64' })),
    summary: optional(string('The progress for people ("45% · 5/12 tables · 4.1M rows").', { maxLength: STATUS_LIMITS.figure })),
    updatedAt: optional(string('When progress was last written.', { format: 'date-time' })),
  })),
  sync: optional(object('SyncStatus', 'ChangeCapture: the change stream from the source to the target, read from the target\'s bookkeeping while the sync Job runs, and the cutover\'s fence.', {
    lagMs: optional(integer('Milliseconds the target is behind the source: 0 when everything the source committed is applied, else the time since the target was last caught up.', { format: 'int64', minimum: 0 })),
    lag: optional(string('lagMs for people ("0.4s"), for kubectl get.', { maxLength: STATUS_LIMITS.figure })),
    pendingBytes: optional(integer('Change-log bytes the source wrote that are not applied yet (WAL or binlog).', { format: 'int64' })),
    appliedPosition: optional(string('The source position (LSN, or binlog file:position) up to which every change is on the target.', { maxLength: STATUS_LIMITS.figure })),
    transactions: optional(integer('Source transactions applied by the sync Job\'s current pod.', { format: 'int64' })),
    changes: optional(integer('Row changes applied by the sync Job\'s current pod.', { format: 'int64' })),
    sampledAt: optional(string('When the sync Job wrote these figures.', { format: 'date-time' })),
    validatedPosition: optional(string('The source position at which the sync Job compared the whole target with a snapshot of the source and found them equal (behind the fence only the rows changed since are compared again).', { maxLength: STATUS_LIMITS.figure })),
    validatedAt: optional(string('When that comparison began.', { format: 'date-time' })),
    fencedAt: optional(string('When writes to the source were fenced.', { format: 'date-time' })),
    fenceReplicas: optional(integer('ScaleDown: the blue Deployment\'s replicas before the fence (restored when the fence is lifted).', { minimum: 0 })),
    writeBlockedMs: optional(integer('From the fence to the Service switch (or to the fence being lifted).', { format: 'int64' })),
    released: optional(boolean('The source\'s capture resources (PostgreSQL: the replication slot and publication) are dropped.')),
  })),
  tables: optional(array(tableStatus, 'Per-table results.', { maxItems: STATUS_LIMITS.tables, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })),
  tablesTruncated: optional(boolean('More tables had results than status.tables lists (failed tables are listed first; every table is in the step Jobs\' logs).')),
  validation: optional(object('ValidationStatus', 'The validation report, bounded to fit in status (the full report is in the validate Job\'s log).', {
    passed: optional(boolean('Whether every check passed.')),
    checkedAt: optional(string('When validation finished.', { format: 'date-time' })),
    summary: optional(string('One line: checks passed and failed.', { maxLength: STATUS_LIMITS.message })),
    checks: optional(array(checkResult, 'Check outcomes (failures first when truncated).', { maxItems: STATUS_LIMITS.checks, 'x-kubernetes-list-type': 'atomic' })),
    truncated: optional(boolean('More checks ran than are listed here.')),
  })),
  schema: optional(object('SchemaStatus', 'The target schema\'s versions.', {
    versionBefore: optional(schemaVersion('The version before this migration ran (rollback returns here).')),
    version: optional(schemaVersion('The version now.')),
    createdTables: optional(array(string('A table name.', IDENT), 'Tables this migration created (createMissingTables), for people: rollback reads the target\'s own record.', { maxItems: STATUS_LIMITS.tables, 'x-kubernetes-list-type': 'atomic' })),
    truncated: optional(boolean('More tables were created than createdTables lists (the target\'s own record is complete).')),
  })),
  bookkeeping: optional(bookkeepingTables),
  activeSelector: optional(stringMap('The selector the cutover Service points at now.')),
  active: optional(string('activeSelector as text (track=green), for kubectl get.', { maxLength: STATUS_LIMITS.active })),
  jobs: optional(array(object('StepJob', 'A step Job of this run.', {
    step: required(enumOf(STEPS, 'The step.')),
    name: required(string('The Job\'s name.', { maxLength: STATUS_LIMITS.name })),
    state: optional(enumOf(JOB_STATES, 'Running, Succeeded or Failed.')),
    message: optional(string('The step\'s failure, bounded.', { maxLength: STATUS_LIMITS.detail })),
  }), 'The step Jobs.', { maxItems: 16, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['step'] })),
});

/** The whole object's schema (openAPIV3Schema). */
export const dataMigrationSchema: SchemaNode = object('DataMigration', 'DataMigration moves data from a source database to a target database: target schema migrations, a resumable copy, validation, blue-green cutover of a Service, and rollback when validation fails.', {
  apiVersion: optional(string('dataops.dev/v1alpha1')),
  kind: optional(string('DataMigration')),
  // The API server allows no description here: metadata's schema is its own.
  metadata: optional({ type: 'object', description: '', tsType: 'V1ObjectMeta' }),
  spec: required(spec),
  status: optional(status),
}, {
  'x-kubernetes-validations': [
    {
      // The name is the value of the dataops.dev/migration label on the step Jobs and pods (Job
      // names are shortened with a hash; a label value cannot be). generateName makes names of at
      // most 63 characters, and the API server has filled in the name before this rule runs.
      // Checked on create, where the API server drops status before validating: an object stored
      // before this rule (it has a status by now) can still be updated, so its finalizer can go.
      rule: `has(self.status) || !has(self.metadata.name) || size(self.metadata.name) <= ${String(MAX_NAME)}`,
      message: `metadata.name: a DataMigration's name may have at most ${String(MAX_NAME)} characters: it is the value of the ${LABELS.migration} label on its Jobs and pods`,
    },
    {
      rule: '!has(oldSelf.status) || !has(oldSelf.status.startedAt) || ('
        + 'has(self.spec.tables) == has(oldSelf.spec.tables) && (!has(self.spec.tables) || self.spec.tables == oldSelf.spec.tables)'
        + ' && has(self.spec.schema) == has(oldSelf.spec.schema) && (!has(self.spec.schema) || self.spec.schema == oldSelf.spec.schema)'
        + ' && self.spec.strategy == oldSelf.spec.strategy)',
      fieldPath: '.spec',
      message: 'spec.tables, spec.strategy and spec.schema cannot change once the migration has started (status.startedAt): its checkpoints and history belong to them; create a new DataMigration instead',
    },
    {
      // Abort and rollback find the Service to restore, and check its record, through spec.cutover:
      // changed after the switch was asked for, they would look at another Service and leave the
      // one this migration switched as it is, its record on it, with nothing saying so.
      rule: "!has(oldSelf.status) || !has(oldSelf.status.steps) || !oldSelf.status.steps.exists(s, s.step == 'switch') || !has(oldSelf.spec.cutover) || ("
        + 'has(self.spec.cutover) && self.spec.cutover.service == oldSelf.spec.cutover.service'
        + ' && self.spec.cutover.fromSelector == oldSelf.spec.cutover.fromSelector && self.spec.cutover.toSelector == oldSelf.spec.cutover.toSelector)',
      fieldPath: '.spec.cutover',
      message: 'spec.cutover.service, fromSelector and toSelector cannot change, nor spec.cutover go, once the switch was asked for (status.steps has a switch entry): abort and rollback restore the Service by them; create a new DataMigration to switch another Service',
    },
    {
      // Lifting a ScaleDown fence (a failed cutover, an abort, a deletion) finds the Deployment to
      // scale back through spec.cutover.fence: renamed or turned External once the fence was asked
      // for, blue would stay at zero replicas with nothing saying so.
      rule: "!has(oldSelf.status) || !has(oldSelf.status.steps) || !oldSelf.status.steps.exists(s, s.step == 'fence') || !has(oldSelf.spec.cutover) || !has(oldSelf.spec.cutover.fence) || ("
        + 'has(self.spec.cutover) && has(self.spec.cutover.fence) && self.spec.cutover.fence.type == oldSelf.spec.cutover.fence.type'
        + ' && has(self.spec.cutover.fence.deployment) == has(oldSelf.spec.cutover.fence.deployment)'
        + ' && (!has(self.spec.cutover.fence.deployment) || self.spec.cutover.fence.deployment == oldSelf.spec.cutover.fence.deployment))',
      fieldPath: '.spec.cutover.fence',
      message: 'spec.cutover.fence.type and deployment cannot change, nor the fence go, once the fence was asked for (status.steps has a fence entry): lifting it scales back the Deployment it names; create a new DataMigration to fence another',
    },
    {
      // The rule above keys on status.startedAt; this one keeps a status write (PUT or patch of
      // the status subresource, even by someone allowed to write it) from removing or moving it.
      // It sits on the root, not on status, so that removing status as a whole is refused too.
      rule: '!has(oldSelf.status) || !has(oldSelf.status.startedAt) || (has(self.status) && has(self.status.startedAt) && self.status.startedAt == oldSelf.status.startedAt)',
      fieldPath: '.status.startedAt',
      message: 'status.startedAt cannot be removed or changed once set: the run has started, and what it froze stays frozen',
    },
  ],
});
