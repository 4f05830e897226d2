// Validation reports: value-by-value row comparison, the bounded summary for the status, and the
// options read from the manifest.
import test from 'ava';
import { compareRows } from '../../src/engine/validate/checksum.ts';
import { describeDifferences, summarizeForStatus, tableStatuses, summaryLine, type TableReport, type ValidationReport } from '../../src/engine/validate/report.ts';
import { validateOptionsOf } from '../../src/engine/validate/validate.ts';

test('row comparison: missing, extra and different rows by key, with the differing columns', (t) => {
  const columns = ['id', 'name', 'note'];
  const source = [
    { key: ['1'], values: ['1', 'a', ''] },
    { key: ['2'], values: ['2', 'b', 'x'] },
    { key: ['3'], values: ['3', 'c', 'y'] },
  ];
  const target = [
    { key: ['3'], values: ['3', 'c', 'y'] },
    { key: ['1'], values: ['1', 'a', null] },
    { key: ['4'], values: ['4', 'd', 'z'] },
  ];
  t.deepEqual(compareRows(source, target, columns), [
    { kind: 'different', key: ['1'], columns: ['note'] },
    { kind: 'missing', key: ['2'] },
    { kind: 'extra', key: ['4'] },
  ]);
  t.deepEqual(compareRows(source, source, columns), []);
});

const CHECKSUM: NonNullable<TableReport['checksum']> = {
  passed: true, mode: 'Full', partitioning: 'key-range', ranges: 4, rangesChecked: 4, rangesDiffering: 0, bisectQueries: 0, rowsCompared: 0,
  columns: ['id'], computedColumns: [], clientColumns: [], uncomparedColumns: [],
};

function table(overrides: Partial<TableReport> = {}): TableReport {
  return {
    table: 'orders', target: 'orders', key: ['id'], passed: true, differences: [], differenceCount: 0, differencesTruncated: false, notes: [], seconds: 1,
    rowCount: { passed: true, source: 10, target: 10 }, checksum: CHECKSUM,
    ...overrides,
  };
}

function report(tables: TableReport[], rules: ValidationReport['rules'] = []): ValidationReport {
  return {
    migration: 'ns/m', passed: tables.every((x) => x.passed) && rules.every((r) => r.passed), startedAt: '2024-01-01T00:00:00.000Z',
    finishedAt: '2024-01-01T00:00:01.000Z', seconds: 1, tables, rules, summary: summaryLine(tables, rules),
  };
}

test('status summary: checks per table and rule, figures as text', (t) => {
  const failing = table({
    passed: false, rowCount: { passed: false, source: 10, target: 9 },
    checksum: { ...CHECKSUM, passed: false, rangesDiffering: 2 },
    differences: [{ kind: 'missing', key: ['5'] }, { kind: 'different', key: ['3'], columns: ['qty', 'price'] }], differenceCount: 2,
  });
  const status = summarizeForStatus(report([failing], [{ name: 'total', passed: true, source: '10.5', target: '10.5', comparedAs: 'number' }]));
  t.false(status.passed);
  t.is(status.checkedAt, '2024-01-01T00:00:01.000Z');
  t.is(status.summary, '3 checks: 1 passed, 2 failed (orders)');
  t.deepEqual(status.checks?.map((c) => [c.kind, c.name, c.passed]), [['RowCount', 'orders', false], ['Checksum', 'orders', false], ['Rule', 'total', true]]);
  t.deepEqual(status.checks?.[0], { name: 'orders', kind: 'RowCount', passed: false, source: '10', target: '9', message: 'row counts differ by -1' });
  t.is(status.checks?.[1]?.message, '2 of 4 ranges differ; 2 rows differ (1 missing, 1 different): missing id=5; different id=3 (qty, price)');
  t.is(status.truncated, undefined);
});

test('status summary is bounded: at most 20 checks, failures first, long texts cut', (t) => {
  const many = Array.from({ length: 30 }, (_, i) => table({ table: `t${i}`, target: `t${i}` }));
  const long = 'x'.repeat(5000);
  const bad = table({
    table: 'bad', target: 'bad', passed: false, checksum: { ...CHECKSUM, passed: false, rangesDiffering: 1 },
    differences: Array.from({ length: 20 }, (_, i) => ({ kind: 'different' as const, key: [long + String(i)], columns: ['c'] })), differenceCount: 500, differencesTruncated: true,
  });
  const rules = [{ name: 'r', passed: false, source: long, target: long, message: long }];
  const status = summarizeForStatus(report([...many, bad], rules));
  t.true(status.truncated);
  t.is(status.checks?.length, 20);
  t.deepEqual(status.checks?.slice(0, 2).map((c) => c.name), ['bad', 'r']);
  for (const check of status.checks ?? []) {
    t.true((check.message ?? '').length <= 512);
    t.true((check.source ?? '').length <= 128);
  }
  t.true(JSON.stringify(status).length < 6000, `status is ${JSON.stringify(status).length} bytes`);
  t.regex(describeDifferences(bad), /^at least 500 rows differ/);
});

test('table statuses: rows per side, Match, Mismatch or Skipped, bounded message', (t) => {
  const statuses = tableStatuses(report([
    table(),
    table({ table: 'b', target: 'b2', passed: false, differences: [{ kind: 'extra', key: ['9'] }], differenceCount: 1 }),
    table({ table: 'c', target: 'c', checksum: undefined }),
    table({ table: 'd', target: 'd', passed: false, error: 'x'.repeat(3000) }),
  ]));
  t.deepEqual(statuses[0], { name: 'orders', target: 'orders', rowsSource: 10, rowsTarget: 10, checksum: 'Match' });
  t.is(statuses[1]?.checksum, 'Mismatch');
  t.is(statuses[1]?.message, '1 rows differ (1 extra): extra id=9');
  t.is(statuses[2]?.checksum, 'Skipped');
  t.is(statuses[3]?.checksum, 'Mismatch');
  t.true((statuses[3]?.message ?? '').length <= 2048);
});

test('validation options from the manifest: the API defaults, overridable', (t) => {
  const defaults = validateOptionsOf(undefined);
  t.true(defaults.rowCount);
  t.deepEqual(defaults.checksum, { mode: 'Full' });
  t.is(defaults.sampleRows, 0);
  t.is(defaults.maxReportedDifferences, 20);
  t.deepEqual(defaults.rules, []);
  const sampled = validateOptionsOf({ rowCount: false, checksum: { mode: 'Sample', samplePercent: 5 }, sampleRows: 100, maxReportedDifferences: 3, rules: [{ name: 'r', target: 'SELECT 1', expect: '1' }] }, { parallelism: 4 });
  t.false(sampled.rowCount);
  t.deepEqual(sampled.checksum, { mode: 'Sample', samplePercent: 5 });
  t.is(sampled.sampleRows, 100);
  t.is(sampled.maxReportedDifferences, 3);
  t.is(sampled.rules.length, 1);
  t.is(sampled.parallelism, 4);
});
