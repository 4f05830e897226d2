// What the CLI tells people and scripts. On a terminal: a progress line per table, redrawn in
// place, on stderr. Otherwise (or with --json): one JSON object per line on stdout, the same
// events a script or the operator can parse, in the operator's log schema (src/api/log-schema.ts:
// ts, level, msg, the migration's namespace and name, then the event's fields; LOG_FORMAT=text
// writes the same as `ts LEVEL msg key=value`). A small renderer by hand: one line per table with
// its current rows/s and ETA is all it takes, and it must share the stream with the JSON mode.
// The view ends as the per-table summary, left on screen.
import { formatLine, type LogFormat } from '../api/log-schema.ts';

export interface TableProgress {
  table: string;
  rowsCopied: number;
  /** The planner's estimate; 0 when the source had none (the display says unknown, not 0%). */
  rowsEstimated: number;
  /** Over the last RATE_WINDOW_MS while copying; once done, the table's average over this run. */
  rowsPerSecond: number;
  etaSeconds?: number;
  /** Once done: how long this run took over it. */
  seconds?: number;
  done: boolean;
}

export type Event =
  | { event: 'plan'; plan: unknown }
  | { event: 'step'; step: string; state: 'started' | 'succeeded' | 'failed'; message?: string }
  | { event: 'progress'; tables: TableProgress[]; rowsCopied: number; rowsEstimated: number; percent: number; rowsPerSecond: number; seconds?: number; done?: boolean }
  | { event: 'warning'; message: string }
  /** What a long-running step is doing (the sync's validation at a cut). */
  | { event: 'note'; message: string }
  | { event: 'result'; result: unknown }
  | { event: 'error'; message: string; exitCode: number };

export interface Reporter {
  emit(event: Event): void;
  /** Human text (terminal mode only; JSON mode carries the same facts as events). */
  say(text: string): void;
  close(): void;
}

/** The rate shown is of the last this many milliseconds: what the copy does now. */
export const RATE_WINDOW_MS = 10_000;
/** Progress events at most this often (and when a table finishes). */
const PROGRESS_INTERVAL_MS = 1000;

/** Rows per second over a sliding window of (time, rows) samples. */
export interface RateWindow {
  add(at: number, rows: number): void;
  rate(): number;
}

export function rateWindow(windowMs = RATE_WINDOW_MS): RateWindow {
  const samples: { at: number; rows: number }[] = [];
  return {
    add(at, rows) {
      samples.push({ at, rows });
      // Keep one sample at or before the window's start, so the rate spans the whole window.
      while (samples.length > 2 && (samples[1]?.at ?? at) <= at - windowMs) samples.shift();
    },
    rate() {
      const first = samples[0];
      const last = samples.at(-1);
      if (!first || !last || last.at <= first.at) return 0;
      return Math.max(0, (last.rows - first.rows) / ((last.at - first.at) / 1000));
    },
  };
}

/** What the copy reports about a table (engine/copy/copy-tables.ts's TableProgressState). */
export interface TableCopyState {
  table: string;
  rowsCopied: number;
  rowsEstimated: number;
  done: boolean;
}

interface TableClock {
  window: RateWindow;
  /** The last time it was seen not yet moving: its copy started after. */
  firstAt: number;
  firstRows: number;
  doneAt?: number;
}

/**
 * Turns the copy's table states into progress events: each table's rate over the last
 * `windowMs`, its ETA from that rate, and once done its average over this run. Emits at most
 * once per `intervalMs`, and whenever a table finishes.
 */
export function progressTracker(reporter: Reporter, options: { now?: () => number; windowMs?: number; intervalMs?: number } = {}): (tables: readonly TableCopyState[]) => void {
  const now = options.now ?? (() => performance.now());
  const windowMs = options.windowMs ?? RATE_WINDOW_MS;
  const intervalMs = options.intervalMs ?? PROGRESS_INTERVAL_MS;
  const started = now();
  const clocks = new Map<string, TableClock>();
  const total = rateWindow(windowMs);
  let lastEmit = Number.NEGATIVE_INFINITY;
  let doneCount = 0;
  return (tables) => {
    const at = now();
    let finished = 0;
    const rows: TableProgress[] = tables.map((t) => {
      let clock = clocks.get(t.table);
      if (!clock) {
        clock = { window: rateWindow(windowMs), firstAt: at, firstRows: t.rowsCopied };
        clocks.set(t.table, clock);
      }
      clock.window.add(at, t.rowsCopied);
      // A table waiting for its turn (parallelism) has not started: its clock starts when its rows move.
      if (t.rowsCopied === clock.firstRows && !t.done) clock.firstAt = at;
      if (!t.done) {
        const rate = clock.window.rate();
        const left = t.rowsEstimated - t.rowsCopied;
        return { table: t.table, rowsCopied: t.rowsCopied, rowsEstimated: t.rowsEstimated, rowsPerSecond: Math.round(rate), done: false, ...(rate > 0 && left > 0 ? { etaSeconds: Math.round(left / rate) } : {}) };
      }
      finished++;
      clock.doneAt ??= at;
      const seconds = (clock.doneAt - clock.firstAt) / 1000;
      const average = seconds > 0 ? (t.rowsCopied - clock.firstRows) / seconds : 0;
      return { table: t.table, rowsCopied: t.rowsCopied, rowsEstimated: t.rowsEstimated, rowsPerSecond: Math.round(average), seconds: Math.round(seconds * 10) / 10, done: true };
    });
    const rowsCopied = rows.reduce((s, r) => s + r.rowsCopied, 0);
    total.add(at, rowsCopied);
    const allDone = rows.every((r) => r.done);
    const newlyDone = finished > doneCount;
    doneCount = finished;
    if (at - lastEmit < intervalMs && !allDone && !newlyDone) return;
    lastEmit = at;
    const rowsEstimated = rows.reduce((s, r) => s + Math.max(r.rowsEstimated, r.rowsCopied), 0);
    const seconds = (at - started) / 1000;
    const firstRows = [...clocks.values()].reduce((s, c) => s + c.firstRows, 0);
    const percent = allDone ? 100 : rowsEstimated > 0 ? Math.min(99.9, Math.floor((rowsCopied / rowsEstimated) * 1000) / 10) : 0;
    reporter.emit({
      event: 'progress', tables: rows, rowsCopied, rowsEstimated, percent,
      rowsPerSecond: Math.round(allDone ? (seconds > 0 ? (rowsCopied - firstRows) / seconds : 0) : total.rate()),
      seconds: Math.round(seconds * 10) / 10, done: allDone,
    });
  };
}

export function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

/**
 * One table's line. 100% and "done" only once its copy is done: an estimate that falls short
 * shows 99% while rows still come, and a table without an estimate shows "?%".
 */
export function progressLine(p: TableProgress, width = 24): string {
  const known = p.rowsEstimated > 0;
  const fraction = p.done ? 1 : known ? Math.min(0.99, p.rowsCopied / p.rowsEstimated) : 0;
  const filled = Math.round(fraction * width);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
  const percent = p.done ? '100' : known ? String(Math.floor(fraction * 100)).padStart(3) : '  ?';
  const tail = p.done ? `done${p.seconds !== undefined ? ` in ${formatDuration(p.seconds)}` : ''}` : formatDuration(p.etaSeconds);
  return `${p.table.padEnd(24).slice(0, 24)} ${bar} ${percent}% ${formatCount(p.rowsCopied).padStart(7)} rows ${formatCount(p.rowsPerSecond).padStart(7)}/s ${tail}`.trimEnd();
}

/** The line under the final per-table view. */
export function summaryLine(event: Extract<Event, { event: 'progress' }>): string {
  const tables = event.tables.length;
  return `copied ${formatCount(event.rowsCopied)} rows of ${String(tables)} table${tables === 1 ? '' : 's'}`
    + `${event.seconds !== undefined ? ` in ${formatDuration(event.seconds)}` : ''}, ${formatCount(event.rowsPerSecond)} rows/s on average`;
}

/** What a line says in a word: its level and a sentence for people (the fields carry the rest). */
function summary(event: Event): { level: 'info' | 'warn' | 'error'; msg: string } {
  switch (event.event) {
    case 'step': return { level: event.state === 'failed' ? 'error' : 'info', msg: `${event.step} ${event.state}${event.message ? `: ${event.message}` : ''}` };
    case 'progress': return { level: 'info', msg: `copied ${String(event.rowsCopied)} of about ${String(event.rowsEstimated)} rows (${String(event.percent)}%)` };
    case 'warning': return { level: 'warn', msg: event.message };
    case 'note': return { level: 'info', msg: event.message };
    case 'error': return { level: 'error', msg: event.message };
    case 'plan': return { level: 'info', msg: 'plan' };
    case 'result': return { level: 'info', msg: 'result' };
  }
}

/** Lines for scripts and log pipelines; `context`: the migration's namespace and name, once known. */
export function jsonReporter(write: (line: string) => void = (line) => process.stdout.write(line), context: Record<string, string> = {}, format: LogFormat = 'json'): Reporter {
  return {
    emit: (event) => { write(`${formatLine({ ts: new Date().toISOString(), ...summary(event), component: 'dmctl', ...context, ...event }, format)}\n`); },
    say: () => undefined,
    close: () => undefined,
  };
}

/** Where the terminal reporter writes: stderr, or a test's in-memory stream. */
export interface TextStream { write(text: string): unknown }

export function terminalReporter(stream: TextStream = process.stderr): Reporter {
  let drawn = 0; // lines of the live progress view on screen, redrawn in place
  // Anything else printed goes below the view, which stays: the last state a copy reached
  // (done or failed) is never erased.
  const keep = (): void => { drawn = 0; };
  return {
    emit(event) {
      switch (event.event) {
        case 'progress': {
          if (drawn > 0) stream.write(`\x1b[${String(drawn)}A\x1b[0J`);
          const lines = event.tables.map((t) => progressLine(t));
          if (event.done) lines.push(summaryLine(event));
          stream.write(`${lines.join('\n')}\n`);
          drawn = event.done ? 0 : lines.length;
          break;
        }
        case 'step':
          keep();
          stream.write(`${event.state === 'failed' ? '✘' : event.state === 'succeeded' ? '✔' : '…'} ${event.step} ${event.state}${event.message ? `: ${event.message}` : ''}\n`);
          break;
        case 'warning':
          keep();
          stream.write(`warning: ${event.message}\n`);
          break;
        case 'note':
          keep();
          stream.write(`${event.message}\n`);
          break;
        case 'error':
          keep();
          stream.write(`error: ${event.message}\n`);
          break;
        case 'plan':
        case 'result':
          break; // printed by the command in its own words
      }
    },
    say(text) {
      keep();
      stream.write(`${text}\n`);
    },
    close() {
      keep();
    },
  };
}
