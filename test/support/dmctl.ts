// dmctl as people and Jobs run it: a child process of the project's CLI, optionally SIGKILLed at a
// point a test chooses (a crash between or inside batches).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './platform.ts';

const CLI = join(repoRoot, 'src/cli/main.ts');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The JSON lines it printed (--json is always passed). */
  events: Record<string, unknown>[];
}

/** The error event's message of a dmctl run ('' when none). */
export function errorOf(run: CliRun): string {
  const message = run.events.find((e) => e.event === 'error')?.message;
  return typeof message === 'string' ? message : '';
}

/** Runs dmctl with `env` added; `killWhen` is polled every 20 ms and SIGKILLs the process when it returns true. */
export function dmctl(args: string[], env: Record<string, string>, killWhen?: () => Promise<boolean>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.resume(); // JSON mode writes everything to stdout
    let timer: NodeJS.Timeout | undefined;
    if (killWhen) {
      const poll = (): void => {
        killWhen().then((kill) => {
          if (kill) child.kill('SIGKILL');
          else timer = setTimeout(poll, 20);
        }, () => { timer = setTimeout(poll, 20); });
      };
      poll();
    }
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, signal, events });
    });
  });
}
