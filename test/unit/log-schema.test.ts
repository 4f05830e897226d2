// One log schema for the operator (winston) and the engine (dmctl's JSON lines): ts, level, msg
// first, then the context and the fields; LOG_FORMAT=text writes the same as `ts LEVEL msg k=v`.
// Secrets are scrubbed in both formats.
import { Writable } from 'node:stream';
import test from 'ava';
import { formatLine, logFormatOf } from '../../src/api/log-schema.ts';
import { jsonReporter } from '../../src/cli/reporter.ts';
import { createLogger } from '../../src/controller/logger.ts';
import type { LogFormat } from '../../src/api/log-schema.ts';

function operatorLines(format: LogFormat, write: (log: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  const logger = createLogger('info', new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(chunk.toString().trimEnd()); done(); } }), format);
  write(logger);
  return lines;
}

test('operator lines: ts, level, msg first, then namespace, name, reconcileID and the fields; passwords scrubbed', (t) => {
  const [line] = operatorLines('json', (log) => log.child({ namespace: 'shop', name: 'orders', reconcileID: 'r-1' })
    .warn('phase changed', { to: 'Failed', detail: 'target postgres://app:hunter22@db/x refused' }));
  const record = JSON.parse(line ?? '{}') as Record<string, unknown>;
  t.deepEqual(Object.keys(record).slice(0, 6), ['ts', 'level', 'msg', 'namespace', 'name', 'reconcileID']);
  t.is(record.level, 'warn');
  t.is(record.msg, 'phase changed');
  t.false(Number.isNaN(Date.parse(String(record.ts))));
  t.is(record.detail, 'target postgres://app:***@db/x refused');
  t.false(line?.includes('hunter22'));
});

test('operator lines as text: `ts LEVEL msg key=value`, values with spaces quoted, still scrubbed', (t) => {
  const [line] = operatorLines('text', (log) => log.child({ namespace: 'shop', name: 'orders' })
    .error('step failed', { step: 'copy', detail: 'mysql://root:s3cret-pw@h/db said "no"' }));
  t.regex(line ?? '', /^\d{4}-\d\d-\d\dT\S+Z ERROR step failed namespace=shop name=orders component=datamigration-operator step=copy detail="mysql:\/\/root:\*\*\*@h\/db said \\"no\\""$/);
  t.false(line?.includes('s3cret-pw'));
});

test('engine lines share the schema: level from the event, a sentence in msg, the migration named', (t) => {
  const lines: string[] = [];
  const reporter = jsonReporter((line) => { lines.push(line); }, { namespace: 'shop', name: 'orders' });
  reporter.emit({ event: 'step', step: 'copy', state: 'succeeded', message: '3 rows' });
  reporter.emit({ event: 'warning', message: 'lossy conversion' });
  reporter.emit({ event: 'error', message: 'target refused', exitCode: 1 });
  const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  for (const record of records) t.deepEqual(Object.keys(record).slice(0, 6), ['ts', 'level', 'msg', 'component', 'namespace', 'name']);
  t.deepEqual(records.map((r) => [r.level, r.msg]), [['info', 'copy succeeded: 3 rows'], ['warn', 'lossy conversion'], ['error', 'target refused']]);
  t.is(records[0]?.event, 'step', 'the event and its fields follow, as scripts read them');
  const text: string[] = [];
  jsonReporter((line) => { text.push(line); }, { name: 'orders' }, 'text').emit({ event: 'warning', message: 'lossy conversion' });
  t.regex(text[0] ?? '', /^\S+ WARN {2}lossy conversion component=dmctl name=orders event=warning message="lossy conversion"\n$/);
});

test('LOG_FORMAT: json by default, text, anything else refused', (t) => {
  t.is(logFormatOf(undefined), 'json');
  t.is(logFormatOf(''), 'json');
  t.is(logFormatOf('text'), 'text');
  t.is(logFormatOf('JSON'), undefined);
  t.is(logFormatOf('logfmt'), undefined);
  t.is(formatLine({ ts: 't', level: 'info', msg: 'm', n: 1, o: { a: 'b c' }, gone: undefined }, 'text'), 't INFO  m n=1 o="{\\"a\\":\\"b c\\"}"');
});
