// Validation of a migration: per table exact row counts, checksums per key range (bisected to
// the rows that differ), a random sample compared value by value, then the SQL rules. Every
// query is a read: the caller passes read-only sessions on both sides.
import type { ValidationRule, ValidationSpec } from '../../api/types.ts';
import type { SqlSession } from '../db/session.ts';
import type { MigrationPlan } from '../pipeline/plan.ts';
import { introspectTable } from '../schema/introspect.ts';
import { DEFAULT_TUNING, totalRows, type BisectTuning } from './bisect.ts';
import type { MysqlFlavor } from './canonical.ts';
import { SessionPool, TableChecksum, type KeyedRow, type SessionOpeners } from './checksum.ts';
import { summaryLine, type RowDifference, type TableReport, type ValidationReport, type RuleReport } from './report.ts';
import { checkRule, runRule } from './rules.ts';
import { FragmentRefused } from '../sql/fragments.ts';
import { tableCheckPlan } from './table-plan.ts';

export interface ValidateOptions {
  /** Compare exact row counts (default true). */
  rowCount: boolean;
  checksum: { mode: 'Full' | 'Sample' | 'None'; samplePercent?: number };
  /** Random source keys per table compared value by value (0: none). */
  sampleRows: number;
  /** Differing keys reported per table (default 20); the search stops there. */
  maxReportedDifferences: number;
  rules: ValidationRule[];
  /** Only these source tables (default: every table of the plan). */
  tables?: string[];
  /** Key ranges read at the same time per side in the first pass (with session openers; default 2). */
  parallelism: number;
  tuning: BisectTuning;
  random?: () => number;
}

export const DEFAULT_VALIDATE_OPTIONS: ValidateOptions = {
  rowCount: true, checksum: { mode: 'Full' }, sampleRows: 0, maxReportedDifferences: 20, rules: [], tuning: DEFAULT_TUNING, parallelism: 2,
};

/** The engine's options from the manifest's spec.validation (defaults as the API documents them). */
export function validateOptionsOf(spec: ValidationSpec | undefined, overrides: Partial<ValidateOptions> = {}): ValidateOptions {
  const checksum = spec?.checksum;
  return {
    rowCount: spec?.rowCount ?? true,
    checksum: {
      mode: checksum?.mode ?? 'Full',
      ...(checksum?.samplePercent !== undefined ? { samplePercent: checksum.samplePercent } : {}),
    },
    sampleRows: spec?.sampleRows ?? 0,
    maxReportedDifferences: spec?.maxReportedDifferences ?? 20,
    rules: spec?.rules ?? [],
    tuning: DEFAULT_TUNING,
    parallelism: DEFAULT_VALIDATE_OPTIONS.parallelism,
    ...overrides,
  };
}

async function flavorOf(session: SqlSession): Promise<MysqlFlavor | undefined> {
  return session.dialect.serverFlavor(session);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sortDifferences(differences: RowDifference[]): RowDifference[] {
  const order = { missing: 0, extra: 1, different: 2 } as const;
  return [...differences].sort((a, b) => order[a.kind] - order[b.kind]);
}

/**
 * Instead of checksums and samples: the rows named here (per target table) compared value by value,
 * the rest known equal at `since` (a change capture's validation at a cut, then its changed keys).
 */
export interface ChangedSince {
  rows: ReadonlyMap<string, readonly KeyedRow[]>;
  since: string;
  /** A table whose changed rows are more than this share of its (estimated) rows is validated in full instead. */
  maxShare: number;
}

/** Validates one planned table. */
async function validateTable(
  sessions: SessionPool, planned: MigrationPlan['tables'][number], options: ValidateOptions, flavors: { source?: MysqlFlavor; target?: MysqlFlavor }, changed?: ChangedSince,
): Promise<TableReport> {
  const started = performance.now();
  const targetName = planned.spec.target ?? planned.spec.name;
  const report: TableReport = { table: planned.spec.name, target: targetName, key: [], passed: false, differences: [], differenceCount: 0, differencesTruncated: false, notes: [], seconds: 0 };
  try {
    // The plan read the target table moments ago, on the same session.
    const current = planned.target ?? await introspectTable(sessions.main.target, targetName);
    if (!current) throw new Error(`target table ${targetName} does not exist`);
    const plan = tableCheckPlan({ planned, target: current, flavors });
    report.key = plan.key;
    report.notes.push(...plan.notes);
    const checker = new TableChecksum(plan, sessions, options.tuning, options.maxReportedDifferences);
    const differences: RowDifference[] = [];
    let truncated = false;
    let count = 0;
    let counted: [number, number] | undefined;
    const rows = changed?.rows.get(targetName) ?? [];
    // Many changed rows are compared faster by the checksums over the whole table (one scan a side).
    const byKeys = changed !== undefined && (changed.maxShare === Infinity || rows.length <= changed.maxShare * plan.estimatedRows);
    const comparesChanged = byKeys && options.checksum.mode !== 'None';
    if (changed && comparesChanged) {
      if (rows.some((row) => row.source.length !== plan.key.length || row.target.length !== plan.key.length)) {
        throw new Error(`the changed keys recorded for ${targetName} do not have the table's key columns (${plan.key.join(', ')})`);
      }
      const found = await checker.compareKeys(rows);
      report.changedRows = { passed: found.length === 0, rows: rows.length, since: changed.since };
      differences.push(...found);
      count += found.length;
    } else if (!byKeys && options.checksum.mode !== 'None') {
      const mode = options.checksum.mode;
      const run = await checker.run(mode, options.checksum.samplePercent ?? 10, options.random ?? Math.random);
      if (run.complete) counted = [Number(totalRows(run.source)), Number(totalRows(run.target))];
      differences.push(...run.differences);
      count += run.differenceCount;
      truncated ||= run.truncated;
      report.checksum = {
        passed: run.rangesDiffering === 0 && run.differenceCount === 0,
        mode, partitioning: plan.partitioning, ranges: run.ranges, rangesChecked: run.rangesChecked, rangesDiffering: run.rangesDiffering,
        bisectQueries: run.bisectQueries, rowsCompared: run.rowsCompared,
        columns: plan.columns.map((c) => c.name),
        computedColumns: plan.columns.filter((c) => c.computed).map((c) => c.name),
        clientColumns: plan.columns.filter((c) => c.client).map((c) => c.name),
        uncomparedColumns: plan.uncompared,
      };
      if (run.rangesDiffering > 0 && run.differenceCount === 0 && !run.truncated) {
        report.notes.push('checksums differ but the rows compared equal value by value: a hash collision across rows, or data changing while validating');
      }
    }
    if (options.rowCount) {
      const [source, target] = counted ?? await checker.counts();
      report.rowCount = { passed: source === target, source, target };
    }
    if (options.sampleRows > 0 && !comparesChanged) {
      const sampled = await checker.sample(options.sampleRows);
      const known = new Set(differences.map((d) => JSON.stringify([d.kind, d.key])));
      const fresh = sampled.differences.filter((d) => !known.has(JSON.stringify([d.kind, d.key])));
      report.sample = { passed: sampled.differences.length === 0, rows: sampled.picked };
      differences.push(...fresh);
      count += fresh.length;
    }
    report.differences = sortDifferences(differences).slice(0, options.maxReportedDifferences);
    report.differenceCount = count;
    report.differencesTruncated = truncated || count > report.differences.length;
    report.passed = (report.rowCount?.passed ?? true) && (report.checksum?.passed ?? true) && (report.sample?.passed ?? true) && (report.changedRows?.passed ?? true);
  } catch (error) {
    report.error = messageOf(error);
    report.passed = false;
  }
  report.seconds = Math.round(performance.now() - started) / 1000;
  return report;
}

/**
 * Validates the planned tables and runs the rules. `sessions` must be read only (the source
 * always is; the caller opens a read-only session on the target too).
 */
export async function validateMigration(
  sessions: { source: SqlSession; target: SqlSession }, plan: MigrationPlan, options: ValidateOptions, migration = '', openers?: SessionOpeners, changed?: ChangedSince,
): Promise<ValidationReport> {
  const startedAt = new Date();
  const flavors = {
    ...(await flavorOf(sessions.source).then((f) => (f ? { source: f } : {}))),
    ...(await flavorOf(sessions.target).then((f) => (f ? { target: f } : {}))),
  };
  const wanted = options.tables ? new Set(options.tables) : undefined;
  const tables: TableReport[] = [];
  const pool = new SessionPool(sessions, openers, options.parallelism);
  try {
    for (const planned of plan.tables) {
      if (wanted && !wanted.has(planned.spec.name)) continue;
      if (options.checksum.mode === 'None' && !options.rowCount && options.sampleRows <= 0) continue;
      tables.push(await validateTable(pool, planned, options, flavors, changed));
    }
  } finally {
    await pool.close();
  }
  const rules: RuleReport[] = [];
  const engines = { source: sessions.source.engine, target: sessions.target.engine };
  for (const rule of options.rules) {
    let checked;
    try {
      checked = checkRule(rule, engines);
    } catch (error) {
      // The plan refuses such a rule before any step runs; should one get here, it is not run.
      if (!(error instanceof FragmentRefused)) throw error;
      rules.push({ name: rule.name, passed: false, error: error.message });
      continue;
    }
    rules.push(await runRule(checked, sessions));
  }
  const finishedAt = new Date();
  return {
    migration,
    passed: tables.every((t) => t.passed) && rules.every((r) => r.passed),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    seconds: Math.round(finishedAt.getTime() - startedAt.getTime()) / 1000,
    tables,
    rules,
    summary: summaryLine(tables, rules),
  };
}
