// The CLI's progress display, its pure parts: the rate over a recent window (not the whole run),
// a table at 100%/done only once its copy is done, and the final per-table summary left on
// screen. Driven by a fake clock and an in-memory stream.
import test from 'ava';
import {
  progressLine, progressTracker, rateWindow, terminalReporter, type Event, type Reporter, type TableCopyState,
} from '../../src/cli/reporter.ts';

type ProgressEvent = Extract<Event, { event: 'progress' }>;

/** A reporter that keeps the events, and a clock the test moves. */
function recorder(): { reporter: Reporter; events: ProgressEvent[] } {
  const events: ProgressEvent[] = [];
  return { reporter: { emit: (e) => { if (e.event === 'progress') events.push(e); }, say: () => undefined, close: () => undefined }, events };
}

const ESC = String.fromCharCode(27);
const ERASE_SPLIT = new RegExp(`(${ESC}\\[\\d+A${ESC}\\[0J)`);
const ERASE = new RegExp(`^${ESC}\\[(\\d+)A${ESC}\\[0J$`);

/** An in-memory terminal: what was written, and what stays on screen after the cursor moves. */
function screen(): { stream: { write(text: string): boolean }; written: () => string; visible: () => string[] } {
  let out = '';
  return {
    stream: { write: (text) => { out += text; return true; } },
    written: () => out,
    visible: () => {
      const lines: string[] = [];
      // Replays "\x1b[NA\x1b[0J" (up N lines, erase below) on the lines written so far.
      for (const part of out.split(ERASE_SPLIT)) {
        const up = ERASE.exec(part);
        if (up) lines.splice(lines.length - Number(up[1]));
        else lines.push(...part.split('\n').slice(0, -1));
      }
      return lines;
    },
  };
}

test('the rate is of the recent window: a copy that slows down shows its current speed, not its average', (t) => {
  const window = rateWindow(10_000);
  // 10,000 rows/s for 60 s, then 1,000 rows/s for 20 s.
  let rows = 0;
  for (let s = 0; s <= 60; s++) window.add(s * 1000, (rows = s * 10_000));
  t.is(window.rate(), 10_000);
  for (let s = 61; s <= 80; s++) window.add(s * 1000, (rows += 1000));
  t.is(window.rate(), 1000, 'the last 10 s only (the run-long average is 7,750 rows/s)');
  t.is(rateWindow().rate(), 0, 'no samples, no rate');
});

test('the tracker reports the windowed rate and an ETA from it, at most once a second', (t) => {
  const { reporter, events } = recorder();
  let now = 0;
  const track = progressTracker(reporter, { now: () => now, windowMs: 5000 });
  const state = (rowsCopied: number, done = false): TableCopyState[] => [{ table: 'orders', rowsCopied, rowsEstimated: 100_000, done }];
  for (let s = 0; s <= 10; s++) {
    now = s * 1000;
    track(state(s * 5000));
  }
  now = 10_500;
  track(state(52_000));
  t.is(events.length, 11, 'one event a second: the call half a second later emitted nothing');
  for (let s = 11; s <= 20; s++) {
    now = s * 1000;
    track(state(50_000 + (s - 10) * 1000)); // slowed to 1,000 rows/s
  }
  const last = events.at(-1);
  t.is(last?.tables[0]?.rowsPerSecond, 1000);
  t.is(last?.tables[0]?.etaSeconds, 40, '40,000 rows left at 1,000 rows/s');
  t.is(last?.percent, 60);
  t.false(last?.done);
});

test('a table is at 100% and done only when its copy is done, whatever the estimate said', (t) => {
  const { reporter, events } = recorder();
  let now = 0;
  const track = progressTracker(reporter, { now: () => now });
  track([{ table: 'small', rowsCopied: 0, rowsEstimated: 1000, done: false }]);
  now = 2000;
  track([{ table: 'small', rowsCopied: 1500, rowsEstimated: 1000, done: false }]); // the estimate fell short
  const copying = events.at(-1);
  t.false(copying?.tables[0]?.done);
  t.true((copying?.percent ?? 100) < 100);
  const line = progressLine(copying?.tables[0] ?? { table: '', rowsCopied: 0, rowsEstimated: 0, rowsPerSecond: 0, done: false });
  t.regex(line, / 99% /);
  t.notRegex(line, /100%|done/);
  now = 3000;
  track([{ table: 'small', rowsCopied: 1600, rowsEstimated: 1600, done: true }]);
  const done = events.at(-1);
  t.true(done?.done);
  t.is(done?.percent, 100);
  t.is(done?.tables[0]?.seconds, 3);
  t.is(done?.tables[0]?.rowsPerSecond, 533, 'once done: the table\'s average over the run');
  t.regex(progressLine(done?.tables[0] ?? { table: '', rowsCopied: 0, rowsEstimated: 0, rowsPerSecond: 0, done: false }), /100% .* done in 3s$/);
});

test('a table without an estimate shows an unknown percentage, not 0%', (t) => {
  const line = progressLine({ table: 'fresh', rowsCopied: 5000, rowsEstimated: 0, rowsPerSecond: 2500, done: false });
  t.regex(line, / {2}\?% /);
  t.notRegex(line, /░█|█/);
});

test('the terminal redraws the live view in place and leaves the final per-table summary on screen', (t) => {
  const { stream, written, visible } = screen();
  const terminal = terminalReporter(stream);
  let now = 0;
  const track = progressTracker(terminal, { now: () => now });
  terminal.emit({ event: 'step', step: 'copy', state: 'started' });
  const tables = (a: number, b: number, aDone: boolean, bDone: boolean): TableCopyState[] => [
    { table: 'customers', rowsCopied: a, rowsEstimated: 2000, done: aDone },
    { table: 'orders', rowsCopied: b, rowsEstimated: 10_000, done: bDone },
  ];
  track(tables(0, 0, false, false));
  now = 1000;
  track(tables(1000, 3000, false, false));
  now = 2000;
  track(tables(2000, 6000, true, false));
  now = 4000;
  track(tables(2000, 10_000, true, true));
  terminal.emit({ event: 'step', step: 'copy', state: 'succeeded', message: '12000 rows' });
  terminal.close();
  const lines = visible();
  t.is(lines[0], '… copy started');
  t.is(lines.length, 5, `${JSON.stringify(lines)}: the live view was redrawn in place, not appended`);
  t.regex(lines[1] ?? '', /^customers .* 100% .* 2000 rows .* done in 2s$/);
  t.regex(lines[2] ?? '', /^orders .* 100% .* 10.0k rows .* done in 4s$/);
  t.is(lines[3], 'copied 12.0k rows of 2 tables in 4s, 3000 rows/s on average');
  t.is(lines[4], '✔ copy succeeded: 12000 rows');
  t.true(written().includes('\x1b[2A\x1b[0J'), 'the live view was erased to be redrawn');
});

test('a copy that fails leaves its last progress on screen above the error', (t) => {
  const { stream, visible } = screen();
  const terminal = terminalReporter(stream);
  const track = progressTracker(terminal, { now: () => 0 });
  track([{ table: 'orders', rowsCopied: 300, rowsEstimated: 1000, done: false }]);
  terminal.emit({ event: 'error', message: 'connection lost', exitCode: 1 });
  const lines = visible();
  t.is(lines.length, 2);
  t.regex(lines[0] ?? '', /^orders .* 30% /);
  t.is(lines[1], 'error: connection lost');
});

test('a table waiting for its turn is timed from when its rows start to move', (t) => {
  const { reporter, events } = recorder();
  let now = 0;
  const track = progressTracker(reporter, { now: () => now });
  const tables = (a: number, b: number): TableCopyState[] => [
    { table: 'first', rowsCopied: a, rowsEstimated: 1000, done: a === 1000 },
    { table: 'second', rowsCopied: b, rowsEstimated: 1000, done: b === 1000 },
  ];
  track(tables(0, 0));
  now = 5000;
  track(tables(500, 0));
  now = 10_000;
  track(tables(1000, 0)); // second starts now
  now = 12_000;
  track(tables(1000, 1000));
  const last = events.at(-1);
  t.is(last?.tables[0]?.seconds, 10);
  t.is(last?.tables[1]?.seconds, 2);
  t.is(last?.tables[1]?.rowsPerSecond, 500);
  t.is(last?.seconds, 12);
  t.is(last?.rowsPerSecond, 167, '2,000 rows in 12 s');
});
