// Process, port and polling helpers shared by the throwaway servers of the test platform.
import { spawn, type SpawnOptions } from 'node:child_process';
import { mkdtemp, readdir, rm, chown } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command to completion and collects its output; never throws on a non-zero exit. */
export function run(command: string, args: readonly string[], options: SpawnOptions & { input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) });
    });
    // A command that exits without reading its input must not fail the caller.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/** Like run, but throws with the command's stderr when it fails. */
export async function runChecked(command: string, args: readonly string[], options: SpawnOptions & { input?: string } = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}

/** A free TCP port on the loopback interface (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Servers are started in directories named `dmo-<kind>-<pid>-*` under the temp dir, so a run can
 * find and remove the leftovers of an earlier run that was killed before it could clean up.
 */
export async function makeRunDir(kind: string, owner?: { uid: number; gid: number }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `dmo-${kind}-${process.pid}-`));
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

/** Directories of earlier runs of `kind` whose owning process no longer exists. */
export async function staleRunDirs(kind: string): Promise<string[]> {
  const prefix = `dmo-${kind}-`;
  const entries = await readdir(tmpdir());
  return entries
    .filter((name) => name.startsWith(prefix))
    .filter((name) => {
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      return Number.isInteger(pid) && pid !== process.pid && !processAlive(pid);
    })
    .map((name) => join(tmpdir(), name));
}

/** uid and gid of a system account (for example the `postgres` user of Debian's package). */
export async function systemUserIds(name: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await runChecked('id', ['-u', name])).trim());
  const gid = Number((await runChecked('id', ['-g', name])).trim());
  return { uid, gid };
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Cleanups that must run however the process ends (normal exit, failure, Ctrl-C, SIGTERM). */
const exitCleanups: (() => Promise<void>)[] = [];
let exitHooksInstalled = false;

export function onExit(cleanup: () => Promise<void>): () => void {
  exitCleanups.push(cleanup);
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        void runExitCleanups().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1)));
      });
    }
    process.once('beforeExit', () => void runExitCleanups());
  }
  return () => {
    const index = exitCleanups.indexOf(cleanup);
    if (index >= 0) exitCleanups.splice(index, 1);
  };
}

export async function runExitCleanups(): Promise<void> {
  // Last started, first stopped: the API server goes before etcd, pods before the API server.
  while (exitCleanups.length > 0) {
    const cleanup = exitCleanups.pop();
    try {
      await cleanup?.();
    } catch (error) {
      process.stderr.write(`cleanup failed: ${(error as Error).message}\n`);
    }
  }
}
