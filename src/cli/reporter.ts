// What the CLI tells people and scripts. On a terminal: a progress line per table, redrawn in
// place, on stderr. Otherwise (or with --json): one JSON object per line on stdout, the same
// events a script or the operator can parse, in the operator's log schema (src/api/log-schema.ts:
// ts, level, msg, the migration's namespace and name, then the event's fields; LOG_FORMAT=text
// writes the same as `ts LEVEL msg key=value`). A small renderer by hand: one line per table with
// rows/s and ETA is all it takes, and it must share the stream with the JSON mode.
import { formatLine, type LogFormat } from '../api/log-schema.ts';

export interface TableProgress {
  table: string;
  rowsCopied: number;
  rowsEstimated: number;
  rowsPerSecond: number;
  etaSeconds?: number;
  done: boolean;
}

export type Event =
  | { event: 'plan'; plan: unknown }
  | { event: 'step'; step: string; state: 'started' | 'succeeded' | 'failed'; message?: string }
  | { event: 'progress'; tables: TableProgress[]; rowsCopied: number; rowsEstimated: number; percent: number; rowsPerSecond: number }
  | { event: 'warning'; message: string }
  | { event: 'result'; result: unknown }
  | { event: 'error'; message: string; exitCode: number };

export interface Reporter {
  emit(event: Event): void;
  /** Human text (terminal mode only; JSON mode carries the same facts as events). */
  say(text: string): void;
  close(): void;
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

export function progressLine(p: TableProgress, width = 24): string {
  const fraction = p.done ? 1 : p.rowsEstimated > 0 ? Math.min(1, p.rowsCopied / p.rowsEstimated) : 0;
  const filled = Math.round(fraction * width);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
  const eta = p.done ? 'done' : formatEta(p.etaSeconds);
  return `${p.table.padEnd(24).slice(0, 24)} ${bar} ${String(Math.round(fraction * 100)).padStart(3)}% ${formatCount(p.rowsCopied).padStart(7)} rows ${formatCount(p.rowsPerSecond).padStart(7)}/s ${eta}`;
}

/** What a line says in a word: its level and a sentence for people (the fields carry the rest). */
function summary(event: Event): { level: 'info' | 'warn' | 'error'; msg: string } {
  switch (event.event) {
    case 'step': return { level: event.state === 'failed' ? 'error' : 'info', msg: `${event.step} ${event.state}${event.message ? `: ${event.message}` : ''}` };
    case 'progress': return { level: 'info', msg: `copied ${String(event.rowsCopied)} of about ${String(event.rowsEstimated)} rows (${String(event.percent)}%)` };
    case 'warning': return { level: 'warn', msg: event.message };
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

export function terminalReporter(stream: NodeJS.WriteStream = process.stderr): Reporter {
  let drawn = 0; // progress lines currently on screen
  const clear = (): void => {
    if (drawn > 0) stream.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  return {
    emit(event) {
      switch (event.event) {
        case 'progress': {
          clear();
          const lines = event.tables.map((t) => progressLine(t));
          stream.write(`${lines.join('\n')}\n`);
          drawn = lines.length;
          break;
        }
        case 'step':
          clear();
          stream.write(`${event.state === 'failed' ? '✘' : event.state === 'succeeded' ? '✔' : '…'} ${event.step} ${event.state}${event.message ? `: ${event.message}` : ''}\n`);
          break;
        case 'warning':
          clear();
          stream.write(`warning: ${event.message}\n`);
          break;
        case 'error':
          clear();
          stream.write(`error: ${event.message}\n`);
          break;
        case 'plan':
        case 'result':
          break; // printed by the command in its own words
      }
    },
    say(text) {
      clear();
      stream.write(`${text}\n`);
    },
    close() {
      drawn = 0;
    },
  };
}
