// Binlog positions (order across files, bytes behind across a rotation, the checkpoint's text),
// the decoded values' text, as the copy reads it, and a MySQL copy plan as the binlog capture's table.
import test from 'ava';
import type { TableCopyPlan } from '../../src/engine/copy/plan-types.ts';
import { captureTableFromPlan } from '../../src/engine/sync/cdc-apply.ts';
import {
  binlogBytesBetween, binlogValueText, compareBinlogPositions, formatBinlogPosition, parseBinlogPosition,
} from '../../src/engine/db/mysql/binlog-position.ts';

test('a position round-trips through its checkpoint text, file names with dots and colons included', (t) => {
  for (const position of [{ file: 'binlog.000001', offset: 4 }, { file: 'my:host-bin.001234', offset: 123_456_789_012 }]) {
    t.deepEqual(parseBinlogPosition(formatBinlogPosition(position)), position);
  }
  t.throws(() => parseBinlogPosition('binlog.000001'), { message: /not a binlog position/ });
  t.throws(() => parseBinlogPosition(':12'), { message: /not a binlog position/ });
});

test('positions order by the file sequence number (not its text), then the offset', (t) => {
  const at = (file: string, offset: number) => ({ file, offset });
  t.true(compareBinlogPositions(at('binlog.000009', 900), at('binlog.000010', 4)) < 0);
  // Past 999999 the sequence grows a digit: text order would put it first.
  t.true(compareBinlogPositions(at('binlog.1000000', 4), at('binlog.999999', 900)) > 0);
  t.true(compareBinlogPositions(at('binlog.000010', 5), at('binlog.000010', 4)) > 0);
  t.is(compareBinlogPositions(at('binlog.000010', 4), at('binlog.000010', 4)), 0);
  t.throws(() => compareBinlogPositions(at('binlog', 4), at('binlog.000001', 4)), { message: /sequence number/ });
});

test('bytes behind count the rest of the applied file, the files between, and the current offset', (t) => {
  const logs = [{ name: 'b.000001', size: 1000 }, { name: 'b.000002', size: 5000 }, { name: 'b.000003', size: 7000 }, { name: 'b.000004', size: 300 }];
  t.is(binlogBytesBetween({ file: 'b.000002', offset: 100 }, { file: 'b.000002', offset: 350 }, logs), 250);
  t.is(binlogBytesBetween({ file: 'b.000002', offset: 4000 }, { file: 'b.000004', offset: 300 }, logs), 1000 + 7000 + 300);
  t.is(binlogBytesBetween({ file: 'b.000004', offset: 300 }, { file: 'b.000002', offset: 10 }, logs), 0, 'ahead of the asked position');
  t.is(binlogBytesBetween({ file: 'b.000003', offset: 9000 }, { file: 'b.000004', offset: 20 }, logs), 20, 'an offset past the listed size counts nothing of that file');
});

test('decoded values become the text the copy reads: exact integers, floats as printed, bytes kept, nothing guessed', (t) => {
  t.is(binlogValueText(null), null);
  t.is(binlogValueText(undefined), null);
  t.is(binlogValueText(4294967295), '4294967295');
  t.is(binlogValueText('18446744073709551615'), '18446744073709551615', 'BIGINT UNSIGNED beyond 2^53 arrives as text');
  t.is(binlogValueText(18446744073709551615n), '18446744073709551615');
  t.is(binlogValueText(-8388608), '-8388608');
  t.is(binlogValueText('-12345678901234567890.0123456789'), '-12345678901234567890.0123456789', 'DECIMAL stays its text');
  t.is(binlogValueText('2024-02-03 04:05:06.123400'), '2024-02-03 04:05:06.123400');
  // FLOAT 0.1 arrives as its float32 value; the copy reads it as `(f + 0e0)`, the same double.
  t.is(binlogValueText(Math.fround(0.1)), '0.10000000149011612');
  t.is(binlogValueText(1e21), '1e21', "the server's exponent has no plus sign");
  t.is(binlogValueText(-1.5e-7), '-1.5e-7');
  const bytes = Buffer.from([0, 255, 16]);
  t.is(binlogValueText(bytes), bytes);
  t.throws(() => binlogValueText(Number.NaN), { message: /cannot hold/ });
  t.throws(() => binlogValueText(new Date(0)), { message: /Date: dateStrings is off/ });
  t.throws(() => binlogValueText({ a: 1 }), { message: /unexpected type \(object\)/ });
});

const plan = (overrides: Partial<TableCopyPlan> = {}): TableCopyPlan => ({
  sourceEngine: 'mysql', targetEngine: 'postgres', sourceTable: 'Items', targetTable: 'items', key: ['id'],
  selectColumns: ['`id`', '`Na``me`'], targetColumns: [{ name: 'id', binary: false }, { name: 'name', binary: false }],
  converters: [undefined, undefined], conflictPolicy: 'upsert', ...overrides,
});

test('a MySQL copy plan becomes the binlog capture\'s table (backquoted names), and only for the binlog', (t) => {
  t.deepEqual(captureTableFromPlan(plan(), 'shop', 'binlog'), {
    sourceSchema: 'shop', sourceTable: 'Items', targetTable: 'items', key: ['id'],
    columns: [{ source: 'id', target: 'id' }, { source: 'Na`me', target: 'name' }],
  });
  t.regex((captureTableFromPlan(plan({ selectColumns: ['`id`', 'LOWER(`name`)'] }), 'shop', 'binlog') as { error: string }).error, /computed on the source/);
  t.regex((captureTableFromPlan(plan(), 'shop') as { error: string }).error, /logical decoding needs a PostgreSQL source/);
  t.regex((captureTableFromPlan(plan({ sourceEngine: 'postgres', selectColumns: ['"id"', '"name"'] }), 'shop', 'binlog') as { error: string }).error, /MySQL or MariaDB source/);
});
