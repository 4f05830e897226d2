// The validation report: per table and per rule outcome with figures (the full report, printed
// as JSON), and its bounded summary for the resource's status (summarizeForStatus).
import type { CheckResult, TableStatus, ValidationStatus } from '../../api/types.ts';

export type DifferenceKind = 'missing' | 'extra' | 'different';

export interface RowDifference {
  /** missing: on the source only; extra: on the target only; different: values differ. */
  kind: DifferenceKind;
  /** The key's values (canonical text), in key column order. */
  key: (string | null)[];
  /** Target column names whose values differ (kind different). */
  columns?: string[];
}

export interface RowCountOutcome {
  passed: boolean;
  source: number;
  target: number;
}

export interface ChecksumOutcome {
  passed: boolean;
  mode: 'Full' | 'Sample';
  /** key-range: ranges of the integer first key column; key-hash: buckets of the key's hash. */
  partitioning: 'key-range' | 'key-hash';
  /** First-level ranges in the table, and how many were checked (all of them in Full mode). */
  ranges: number;
  rangesChecked: number;
  /** First-level ranges whose counts or checksums differed. */
  rangesDiffering: number;
  /** Bisection queries run per side after the first pass. */
  bisectQueries: number;
  /** Rows fetched and compared value by value (both sides). */
  rowsCompared: number;
  /** Target columns compared (key columns included). */
  columns: string[];
  /** Columns computed on the source (expression, transforms, default): compared against that expression. */
  computedColumns: string[];
  /** Columns the client canonicalises (json across engines): their values are read, not hashed in SQL. */
  clientColumns: string[];
  /** Target columns the copy does not write: not compared. */
  uncomparedColumns: string[];
}

export interface SampleOutcome {
  passed: boolean;
  /** Keys picked on the source. */
  rows: number;
}

/** Behind a change capture's write fence, after a full validation at a cut passed (changed-rows.ts). */
export interface ChangedRowsOutcome {
  passed: boolean;
  /** Rows the capture changed since the cut, compared value by value. */
  rows: number;
  /** The source position of the cut. */
  since: string;
}

export interface TableReport {
  table: string;
  target: string;
  /** Target key column names (the values in differences follow this order). */
  key: string[];
  passed: boolean;
  rowCount?: RowCountOutcome;
  checksum?: ChecksumOutcome;
  sample?: SampleOutcome;
  changedRows?: ChangedRowsOutcome;
  /** Differences found by the checksum or the sample, at most maxReportedDifferences. */
  differences: RowDifference[];
  /** Differences found (a lower bound when differencesTruncated). */
  differenceCount: number;
  /** The search stopped at maxReportedDifferences: more rows may differ. */
  differencesTruncated: boolean;
  notes: string[];
  error?: string;
  seconds: number;
}

export interface RuleReport {
  name: string;
  passed: boolean;
  /** The source query's value (null: SQL NULL or no row). */
  source?: string | null;
  target?: string | null;
  expected?: string;
  tolerance?: string;
  /** How the values compared: as numbers (with tolerance) or as text. */
  comparedAs?: 'number' | 'text';
  message?: string;
  error?: string;
}

export interface ValidationReport {
  migration: string;
  passed: boolean;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  tables: TableReport[];
  rules: RuleReport[];
  summary: string;
  /** This project's bookkeeping tables in the target (validate step): they stay until `dmctl cleanup`. */
  bookkeeping?: string[];
}

export interface SummaryLimits {
  /** Most checks listed (default 20). */
  maxChecks: number;
  /** Longest message (default 512 characters). */
  maxMessage: number;
  /** Longest figure (source, target, expected; default 128). */
  maxFigure: number;
  /** Most differences spelled out in a message (default 5). */
  maxDifferences: number;
}

const DEFAULT_LIMITS: SummaryLimits = { maxChecks: 20, maxMessage: 512, maxFigure: 128, maxDifferences: 5 };

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

function keyText(key: readonly string[], values: readonly (string | null)[]): string {
  return values.map((value, i) => `${key[i] ?? `key${i}`}=${value ?? 'NULL'}`).join(',');
}

/** One difference for people: "missing id=5", "different id=3 (qty, price)". */
export function describeDifference(key: readonly string[], difference: RowDifference): string {
  const columns = difference.kind === 'different' && difference.columns?.length ? ` (${difference.columns.join(', ')})` : '';
  return `${difference.kind} ${keyText(key, difference.key)}${columns}`;
}

/** The differences of a table in one bounded line. */
export function describeDifferences(table: TableReport, max = DEFAULT_LIMITS.maxDifferences): string {
  if (table.differenceCount === 0) return '';
  const counts = (['missing', 'extra', 'different'] as const)
    .map((kind) => [kind, table.differences.filter((d) => d.kind === kind).length] as const)
    .filter(([, n]) => n > 0).map(([kind, n]) => `${n} ${kind}`).join(', ');
  const listed = table.differences.slice(0, max).map((d) => describeDifference(table.key, d)).join('; ');
  const more = table.differenceCount > Math.min(max, table.differences.length) ? `; …` : '';
  const bound = table.differencesTruncated ? `at least ${table.differenceCount}` : String(table.differenceCount);
  return `${bound} rows differ (${counts}): ${listed}${more}`;
}

function checksOfTable(table: TableReport): CheckResult[] {
  const checks: CheckResult[] = [];
  const name = table.table === table.target ? table.table : `${table.table}→${table.target}`;
  if (table.error !== undefined) {
    checks.push({ name, kind: 'Checksum', passed: false, message: `error: ${table.error}` });
    return checks;
  }
  if (table.rowCount) {
    checks.push({
      name, kind: 'RowCount', passed: table.rowCount.passed, source: String(table.rowCount.source), target: String(table.rowCount.target),
      ...(table.rowCount.passed ? {} : { message: `row counts differ by ${table.rowCount.target - table.rowCount.source}` }),
    });
  }
  if (table.checksum) {
    const c = table.checksum;
    const differences = describeDifferences(table);
    const scope = c.mode === 'Sample' ? `${c.rangesChecked} of ${c.ranges} ranges` : `${c.ranges} ranges`;
    checks.push({
      name, kind: 'Checksum', passed: c.passed,
      message: c.passed ? `${scope} match` : `${c.rangesDiffering} of ${scope} differ; ${differences}`,
    });
  }
  if (table.changedRows) {
    const c = table.changedRows;
    checks.push({
      name, kind: 'Checksum', passed: c.passed,
      message: `${String(c.rows)} row(s) changed since the full validation at ${c.since} ${c.passed ? 'match' : `compared: ${describeDifferences(table)}`}`,
    });
  }
  if (table.sample) {
    checks.push({
      name, kind: 'Sample', passed: table.sample.passed, source: `${table.sample.rows} rows`,
      ...(table.sample.passed ? {} : { message: describeDifferences(table) }),
    });
  }
  return checks;
}

function checkOfRule(rule: RuleReport): CheckResult {
  const figure = (value: string | null | undefined): string | undefined => (value === undefined ? undefined : value ?? 'NULL');
  const source = figure(rule.source);
  const target = figure(rule.target);
  const message = rule.error !== undefined ? `error: ${rule.error}` : rule.message;
  return {
    name: rule.name, kind: 'Rule', passed: rule.passed,
    ...(source !== undefined ? { source } : {}),
    ...(target !== undefined ? { target } : {}),
    ...(rule.expected !== undefined ? { expected: rule.expected } : {}),
    ...(message ? { message } : {}),
  };
}

/** Every check of a report, in report order (tables, then rules). */
export function checksOf(report: ValidationReport): CheckResult[] {
  return [...report.tables.flatMap(checksOfTable), ...report.rules.map(checkOfRule)];
}

function bound(check: CheckResult, limits: SummaryLimits): CheckResult {
  const cut = (value: string | undefined, max: number): string | undefined => (value === undefined ? undefined : truncate(value, max));
  const source = cut(check.source, limits.maxFigure);
  const target = cut(check.target, limits.maxFigure);
  const expected = cut(check.expected, limits.maxFigure);
  const message = cut(check.message, limits.maxMessage);
  return {
    name: truncate(check.name, 128), kind: check.kind, passed: check.passed,
    ...(source !== undefined ? { source } : {}),
    ...(target !== undefined ? { target } : {}),
    ...(expected !== undefined ? { expected } : {}),
    ...(message !== undefined ? { message } : {}),
  };
}

/**
 * The report bounded for the resource status: at most maxChecks checks (failures first when
 * some are left out, and then `truncated`), every text cut to its limit. A few KB at most.
 */
export function summarizeForStatus(report: ValidationReport, limits: Partial<SummaryLimits> = {}): ValidationStatus {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const all = checksOf(report);
  let checks = all;
  const truncated = all.length > l.maxChecks;
  if (truncated) checks = [...all.filter((c) => !c.passed), ...all.filter((c) => c.passed)].slice(0, l.maxChecks);
  return {
    passed: report.passed,
    checkedAt: report.finishedAt,
    summary: truncate(report.summary, 1024),
    checks: checks.map((c) => bound(c, l)),
    ...(truncated ? { truncated: true } : {}),
  };
}

/** Per-table figures for status.tables (rowsSource, rowsTarget, checksum, message), bounded. */
export function tableStatuses(report: ValidationReport): (Pick<TableStatus, 'name' | 'target' | 'rowsSource' | 'rowsTarget' | 'checksum' | 'message'>)[] {
  return report.tables.map((table) => {
    const message = table.error !== undefined ? `error: ${table.error}` : describeDifferences(table);
    return {
      name: table.table,
      target: table.target,
      ...(table.rowCount ? { rowsSource: table.rowCount.source, rowsTarget: table.rowCount.target } : {}),
      checksum: table.checksum || table.sample || table.changedRows ? (table.differenceCount === 0 && table.error === undefined ? 'Match' : 'Mismatch') : 'Skipped',
      ...(message ? { message: truncate(message, 2048) } : {}),
    };
  });
}

/** "12 checks: 11 passed, 1 failed (orders: 3 rows differ)". */
export function summaryLine(tables: readonly TableReport[], rules: readonly RuleReport[]): string {
  const checks = [...tables.flatMap(checksOfTable), ...rules.map(checkOfRule)];
  const failed = checks.filter((c) => !c.passed);
  const names = [...new Set(failed.map((c) => c.name))].slice(0, 5).join(', ');
  return `${checks.length} checks: ${checks.length - failed.length} passed, ${failed.length} failed${failed.length > 0 ? ` (${names})` : ''}`;
}
