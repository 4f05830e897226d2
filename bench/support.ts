// Shared by the benchmarks: servers (throwaway ones from the test platform, or PG_URL /
// MYSQL_URL), timing of commands and of child processes with their peak memory.
import { spawn } from 'node:child_process';
import { redactSecrets, secretsOfUrls } from '../src/engine/db/redact.ts';
import { startMariadb } from '../test/support/mariadb-server.ts';
import { startPostgres } from '../test/support/postgres-server.ts';
import { onExit, runExitCleanups } from '../test/support/process.ts';

export interface Servers {
  pgUrl: string;
  mysqlUrl: string;
}

export async function benchServers(): Promise<Servers> {
  const start = async (make: () => Promise<{ url: string; stop(): Promise<void> }>): Promise<string> => {
    const server = await make();
    onExit(() => server.stop());
    return server.url;
  };
  return {
    pgUrl: process.env.PG_URL ?? (await start(startPostgres)),
    mysqlUrl: process.env.MYSQL_URL ?? (await start(startMariadb)),
  };
}

export { runExitCleanups };
export { withDatabase } from '../test/support/databases.ts';

/** mariadb/mariadb-dump arguments for a mysql:// URL (password through the environment, not argv). */
export function mysqlCliArgs(url: string): { args: string[]; env: Record<string, string> } {
  const parsed = new URL(url);
  const database = parsed.pathname.replace(/^\//, '');
  return {
    args: ['--no-defaults', `-h${parsed.hostname}`, `-P${parsed.port || '3306'}`, `-u${decodeURIComponent(parsed.username)}`, ...(database ? [database] : [])],
    env: { MYSQL_PWD: decodeURIComponent(parsed.password) },
  };
}

export interface Timed {
  seconds: number;
  peakRssMb?: number;
  stdout: string;
}

/**
 * Runs a shell pipeline or a command and times it. Peak RSS comes from GNU time's report for
 * the whole process tree's largest member (`/usr/bin/time -f %M`), when asked for.
 */
export function timeCommand(command: string, options: { env?: Record<string, string>; measureRss?: boolean } = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const argv = options.measureRss ? ['/usr/bin/time', '-f', 'DMO_MAXRSS_KB=%M', 'bash', '-c', command] : ['bash', '-c', command];
    const child = spawn(argv[0] ?? 'bash', argv.slice(1), { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) {
        const secrets = secretsOfUrls(command.match(/[a-z]+:\/\/[^\s']+/g) ?? []);
        reject(new Error(`command failed (${code}): ${redactSecrets(command, secrets).slice(0, 200)}\n${redactSecrets(stdout.slice(-2000), secrets)}${stderr.slice(-2000)}`));
        return;
      }
      const rss = /DMO_MAXRSS_KB=(\d+)/.exec(stderr)?.[1];
      resolve({ seconds, stdout, ...(rss ? { peakRssMb: Number(rss) / 1024 } : {}) });
    });
  });
}

export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** `text` as one shell word. */
export function quote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** Runs SQL through the mariadb client. */
export function mysql(url: string, sql: string): Promise<unknown> {
  const { args, env } = mysqlCliArgs(url);
  return timeCommand(`mariadb ${args.map(quote).join(' ')} -e ${quote(sql)}`, { env });
}

/** Runs SQL through psql, stopping at the first error. */
export function psql(url: string, sql: string): Promise<unknown> {
  return timeCommand(`psql -v ON_ERROR_STOP=1 -q ${quote(url)} -c ${quote(sql)}`);
}
