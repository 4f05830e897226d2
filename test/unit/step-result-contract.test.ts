// The step-result contract (src/api/step-result.ts) on both sides: what `dmctl step …` writes to
// its termination message (src/cli/main.ts stepResult, src/cli/termination.ts) is what the operator
// reads (src/controller/step-results.ts), field for field; bounds come from the CRD's schema.
import test from 'ava';
import { STATUS_LIMITS, tableStatus } from '../../src/api/datamigration-schema.ts';
import { parseStepResult } from '../../src/api/step-result.ts';
import { copyStepResult, stepResultSchema } from '../../src/api/step-result-schema.ts';
import { stepResult } from '../../src/cli/step-result.ts';
import { boundedResult } from '../../src/cli/termination.ts';
import type { ValidationReport } from '../../src/engine/validate/report.ts';
import { parseCopyResult, parseRollbackResult, parseSchemaResult, parseSyncResult, parseValidationResult } from '../../src/controller/step-results.ts';

/** As the operator sees it: the termination message's text, parsed. */
const written = (command: string, results: Record<string, unknown>): unknown => JSON.parse(boundedResult(stepResult(command, results)));

test('schema: versions and created tables arrive', (t) => {
  const result = written('step schema', { schema: { versionBefore: null, version: '3', applied: ['2', '3'], createdTables: ['orders'], warnings: [] } });
  t.deepEqual(parseSchemaResult(result), { ok: true, value: { version: '3', createdTables: ['orders'] } });
});

test('schema: "no version before" (null) arrives as such; a result that does not say, or none at all, is a failure', (t) => {
  const none = written('step schema', { schema: { versionBefore: null, version: '1', applied: ['1'], createdTables: [], warnings: [] } });
  t.deepEqual(none, { versionBefore: null, version: '1', createdTables: [], applied: ['1'] }, 'null is written, not dropped');
  t.deepEqual(parseStepResult('schema', none), { ok: true, value: { versionBefore: null, version: '1', createdTables: [], applied: ['1'] } });
  const before = written('step schema', { schema: { versionBefore: '2', version: '3', applied: ['3'], createdTables: [], warnings: [] } });
  t.deepEqual(parseSchemaResult(before), { ok: true, value: { versionBefore: '2', version: '3', createdTables: [] } });
  t.deepEqual(parseSchemaResult({ version: '3' }), { ok: false, error: 'the schema result is unreadable: result.versionBefore is missing' });
  t.deepEqual(parseSchemaResult(undefined), { ok: false, error: 'the schema Job left no result (termination message)' });
  t.false(parseSchemaResult('{"version":').ok, 'a message that is not JSON');
  for (const parse of [parseCopyResult, parseSyncResult, parseValidationResult, parseRollbackResult]) t.false(parse(undefined).ok);
});

test('copy: tables, rows, zero dates and warnings arrive', (t) => {
  const result = written('step copy', { copy: {
    pod: { index: 0, count: 1 }, tables: [{ name: 'orders', target: 'orders', rowsCopied: 7 }], rowsThisRun: 7, zeroDates: { 'orders.created': 2 },
    postCopy: 'ran', postCopyStatements: 1, warnings: ['lossy'],
  } });
  const parsed = parseCopyResult(result);
  t.true(parsed.ok);
  if (!parsed.ok) return;
  t.deepEqual(parsed.value.tables, [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 7 }]);
  t.deepEqual(parsed.value.zeroDates, { 'orders.created': 2 });
  t.deepEqual(parsed.value.warnings, ['lossy']);
  t.is(parsed.value.progress?.rowsCopied, 7);
  const contract = parseStepResult('copy', result);
  t.like(contract, { ok: true, value: { rowsThisRun: 7, postCopy: 'ran', postCopyStatements: 1, pod: { index: 0, count: 1 } } });
});

test('sync: the counts arrive (a renamed field on either side fails here or in the typecheck)', (t) => {
  const result = written('step sync', { sync: { rounds: 2, rowsSynced: 3, caughtUp: true, rowsDeleted: 4, notes: ['t: why'] } });
  t.deepEqual(parseSyncResult(result), { ok: true, value: { rounds: 2, rowsSynced: 3, caughtUp: true, rowsDeleted: 4, notes: ['t: why'] } });
  t.like(parseStepResult('sync', result), { ok: true, value: { caughtUp: true } });
  // Not caught up arrives as such: status never says caught up when the sync did not.
  t.like(parseSyncResult(written('step sync', { sync: { rounds: 50, rowsSynced: 9, caughtUp: false } })), { ok: true, value: { caughtUp: false } });
  // A field the contract does not name is not read: the operator would silently lose it.
  t.deepEqual(parseSyncResult({ rounds: 2, rowsSyncedTotal: 3 }), { ok: true, value: { rounds: 2 } });
});

test('validate: the verdict, failed checks first, and per-table figures arrive', (t) => {
  const report: ValidationReport = {
    migration: 'orders', passed: false, startedAt: '2025-01-01T00:00:00Z', finishedAt: '2025-01-01T00:00:01Z', seconds: 1, summary: '1 of 2 failed',
    tables: [{
      table: 'orders', target: 'orders', key: ['id'], passed: false, rowCount: { passed: false, source: 3, target: 2 },
      differences: [{ kind: 'missing', key: ['3'] }], differenceCount: 1, differencesTruncated: false, notes: [], seconds: 1,
    }],
    rules: [{ name: 'revenue', passed: true, source: '10', target: '10' }],
  };
  const result = written('step validate', { validation: report }) as Record<string, unknown>;
  t.is(result.passed, false);
  const parsed = parseValidationResult(result);
  t.true(parsed.ok, parsed.ok ? '' : parsed.error);
  if (!parsed.ok) return;
  t.false(parsed.value.validation.passed);
  t.like(parsed.value.tables[0], { name: 'orders', rowsSource: 3, rowsTarget: 2 });
  t.is(parsed.value.validation.checks?.[0]?.passed, false, 'failures first');
  t.true(parsed.value.validation.checks?.some((c) => c.name === 'revenue' && c.kind === 'Rule' && c.passed));
});

test('rollback: the version arrives', (t) => {
  const result = written('step rollback', { rollback: { action: 'DownMigrations', reverted: ['2'], versionBefore: '2', version: '1', droppedTables: [], droppedTypes: [], truncatedTables: [] } });
  t.deepEqual(parseRollbackResult(result), { ok: true, value: { version: '1' } });
});

test('bounds are the CRD\'s: text is cut to the schema\'s maxLength, counts must be non-negative integers', (t) => {
  t.is(tableStatus.properties?.message?.maxLength, STATUS_LIMITS.detail);
  t.is(copyStepResult.properties?.tables?.items, tableStatus, 'the very node status.tables uses');
  const long = 'x'.repeat(STATUS_LIMITS.detail + 100);
  const parsed = parseCopyResult({ tables: [{ name: 'a', message: long }] });
  t.true(parsed.ok);
  if (parsed.ok) t.is(parsed.value.tables[0]?.message?.length, STATUS_LIMITS.detail);
  t.regex(parseSyncResult({ rounds: -1 }).ok ? '' : (parseSyncResult({ rounds: -1 }) as { error: string }).error, /result\.rounds is not a non-negative integer/);
  t.regex((parseStepResult('schema', 'oops') as { error: string }).error, /^the schema result is unreadable: result is not an object/);
  t.deepEqual(Object.keys(stepResultSchema.properties ?? {}), ['schema', 'copy', 'sync', 'validate', 'fence', 'catchup', 'unfence', 'release', 'rollback']);
});

test('a result too large for the termination message keeps its verdict and says it was shortened', (t) => {
  const checks = Array.from({ length: 200 }, (_, i) => ({ name: `rule-${String(i)}`, kind: 'Rule' as const, passed: i !== 0, message: 'y'.repeat(100) }));
  const text = boundedResult({ passed: false, summary: 's', checks });
  t.true(Buffer.byteLength(text) <= 4096);
  const parsed = parseValidationResult(JSON.parse(text));
  t.true(parsed.ok);
  if (parsed.ok) {
    t.true(parsed.value.validation.truncated);
    t.is(parsed.value.validation.checks?.[0]?.name, 'rule-0', 'the failure is kept');
  }
});
