// Shared by the benchmarks: servers (throwaway ones from the test platform, or PG_URL /
// MYSQL_URL), timing of commands and of child processes with their peak memory.
import { spawn } from 'node:child_process';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { ResultSetHeader } from 'mysql2';
import mysql2 from 'mysql2/promise';
import pg from 'pg';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ENGINE_NODE_FLAGS } from '../src/cli/node-flags.ts';
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

/** The q-quantile (0..1) of `values` by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

export interface StepExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The JSON lines it printed, each with the time it arrived (performance.now()). */
  events: { at: number; event: Record<string, unknown> }[];
  /** The end of what it wrote to stderr. */
  stderr: string;
  /** When the process was spawned and when it exited (performance.now()). */
  spawnedAt: number;
  exitedAt: number;
}

export interface StepProcess {
  child: ChildProcess;
  exited: Promise<StepExit>;
}

/**
 * `dmctl step <name> -f manifest --json` as a Job runs it: a child process with the engine's node
 * flags, `env` added (the source and target URLs).
 */
export function startDmctlStep(name: string, manifestFile: string, env: Record<string, string>): StepProcess {
  const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...ENGINE_NODE_FLAGS, cli, 'step', name, '-f', manifestFile, '--json'], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: StepExit['events'] = [];
  let pending = '';
  let stderr = '';
  const take = (line: string): void => {
    if (line.startsWith('{')) events.push({ at: performance.now(), event: JSON.parse(line) as Record<string, unknown> });
    else if (line.trim() !== '') stderr = `${stderr}${line}\n`.slice(-4000);
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) take(line);
  });
  child.stdout.on('end', () => { take(pending); });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000); });
  const exited = new Promise<StepExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => { resolve({ code, signal, events, stderr, spawnedAt, exitedAt: performance.now() }); });
  });
  return { child, exited };
}

/** The message of a step's error event, else its last lines of output and of stderr. */
export function stepError(exit: StepExit): string {
  const error = exit.events.find((e) => e.event.event === 'error')?.event.message;
  return typeof error === 'string' ? error : `${JSON.stringify(exit.events.slice(-3).map((e) => e.event))} ${exit.stderr}`;
}

// ---- a paced writer for change-capture benchmarks (bench/trickle.ts) ---------------------------

export type WriteKind = 'insert' | 'update' | 'move' | 'delete';
/** An acknowledged operation: `seq` is the rev it wrote; `to` the new key of a move; `affected` false when its row was gone. */
export interface AckedWrite { seq: number; kind: WriteKind; id: number; to?: number; affected: boolean }

interface WriteConnection { run(sql: string, params: unknown[]): Promise<number>; close(): Promise<void> }

async function connectWriter(engine: 'postgres' | 'mysql', url: string): Promise<WriteConnection> {
  if (engine === 'postgres') {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    // The statements are written with ? placeholders: PostgreSQL numbers them.
    const numbered = (sql: string): string => { let i = 0; return sql.replace(/\?/g, () => `$${String(++i)}`); };
    return { run: async (sql, params) => (await client.query(numbered(sql), params)).rowCount ?? 0, close: () => client.end() };
  }
  const connection = await mysql2.createConnection({ uri: url });
  return { run: async (sql, params) => (await connection.query<ResultSetHeader>(sql, params))[0].affectedRows, close: () => connection.end() };
}

/** Live keys, picked at random in O(1). */
class LiveKeys {
  private readonly keys: number[] = [];
  private readonly at = new Map<number, number>();
  add(id: number): void { this.at.set(id, this.keys.length); this.keys.push(id); }
  remove(id: number): void {
    const index = this.at.get(id);
    const last = this.keys.pop();
    if (index === undefined || last === undefined) return;
    this.at.delete(id);
    if (last !== id) { this.keys[index] = last; this.at.set(last, index); }
  }
  pick(): number { return this.keys[Math.floor(Math.random() * this.keys.length)] ?? 1; }
}

export interface WriterStats { operations: number; failed: number; seconds: number; latenciesMs: number[] }

/**
 * Writes at `rate` operations a second on its own schedule (open loop: a slow operation does not
 * lower the rate while the connections keep up), 40% inserts, 35% updates, 10% key updates, 15%
 * deletes; every row written gets rev = the operation's number, taken as it is sent.
 */
export class PacedWriter {
  readonly log: AckedWrite[] = [];
  private readonly latenciesMs: number[] = [];
  private readonly live = new LiveKeys();
  private seq = 0;
  private nextKey = 10_000_000;
  private failed = 0;
  private running = true;
  private loops: Promise<void>[] = [];
  private began = 0;

  private readonly connections: WriteConnection[];

  private constructor(connections: WriteConnection[], liveKeys: number) {
    this.connections = connections;
    for (let id = 1; id <= liveKeys; id++) this.live.add(id);
  }

  /** Writes table `items` (id, rev, val, n, amount, ts) whose keys 1..liveKeys exist, on `connections` connections. */
  static async start(engine: 'postgres' | 'mysql', url: string, options: { rate: number; liveKeys: number; connections: number }): Promise<PacedWriter> {
    const { rate } = options;
    const connections = await Promise.all(Array.from({ length: options.connections }, () => connectWriter(engine, url)));
    const writer = new PacedWriter(connections, options.liveKeys);
    writer.began = performance.now();
    let slot = 0;
    writer.loops = connections.map(async (connection) => {
      while (writer.isRunning()) {
        const wait = writer.began + (slot++ * 1000) / rate - performance.now();
        if (wait > 0) await sleepMs(wait);
        if (writer.isRunning()) await writer.operate(connection);
      }
    });
    return writer;
  }

  private isRunning(): boolean { return this.running; }

  /** Every operation sent from now on writes at least this rev. */
  nextSeq(): number { return this.seq + 1; }

  private async operate(connection: WriteConnection): Promise<void> {
    const roll = Math.random();
    const seq = ++this.seq;
    const value = `v${String(seq)} 'q' \\ ü€ ${Math.random().toString(36).slice(2)}`;
    const amount = (Math.random() * 1e6).toFixed(2);
    let write: { kind: WriteKind; id: number; to?: number; sql: string; params: unknown[] };
    if (roll < 0.4) {
      const id = this.nextKey++;
      write = { kind: 'insert', id, sql: 'INSERT INTO items (id, rev, val, n, amount, ts) VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP(6))', params: [id, seq, value, seq % 7 === 0 ? null : seq, amount] };
    } else if (roll < 0.75) {
      const id = this.live.pick();
      write = { kind: 'update', id, sql: 'UPDATE items SET rev = GREATEST(rev, ?), val = ?, n = n + 1, amount = ?, ts = CURRENT_TIMESTAMP(6) WHERE id = ?', params: [seq, value, amount, id] };
    } else if (roll < 0.85) {
      const id = this.live.pick();
      const to = this.nextKey++;
      this.live.remove(id);
      write = { kind: 'move', id, to, sql: 'UPDATE items SET id = ?, rev = GREATEST(rev, ?) WHERE id = ?', params: [to, seq, id] };
    } else {
      const id = this.live.pick();
      this.live.remove(id);
      write = { kind: 'delete', id, sql: 'DELETE FROM items WHERE id = ?', params: [id] };
    }
    const sent = performance.now();
    try {
      const affected = (await connection.run(write.sql, write.params)) > 0;
      this.latenciesMs.push(performance.now() - sent);
      this.log.push({ seq, kind: write.kind, id: write.id, ...(write.to !== undefined ? { to: write.to } : {}), affected });
      if (affected && write.kind === 'insert') this.live.add(write.id);
      if (affected && write.to !== undefined) this.live.add(write.to);
    } catch {
      this.failed++;
    }
  }

  /** Stops sending; resolves once the operations in flight are acknowledged. */
  async stop(): Promise<WriterStats> {
    this.running = false;
    await Promise.all(this.loops);
    const seconds = (performance.now() - this.began) / 1000;
    await Promise.all(this.connections.map((c) => c.close()));
    return { operations: this.log.length, failed: this.failed, seconds, latenciesMs: this.latenciesMs };
  }
}

/** Acknowledged operations whose effect is not in `rows` (key → rev): a deleted key must be gone, a written one hold at least its rev. */
export function lostWrites(log: readonly AckedWrite[], rows: ReadonlyMap<string, number>): number {
  const gone = new Set<number>();
  for (const write of log) if (write.affected && (write.kind === 'delete' || write.kind === 'move')) gone.add(write.id);
  let lost = 0;
  for (const write of log) {
    if (!write.affected) continue;
    const written = write.kind === 'move' ? write.to : write.kind === 'delete' ? undefined : write.id;
    if (write.kind === 'delete' || write.kind === 'move') lost += rows.has(String(write.id)) ? 1 : 0;
    if (written === undefined) continue;
    const rev = rows.get(String(written));
    lost += gone.has(written) ? (rev === undefined ? 0 : 1) : (rev !== undefined && rev >= write.seq ? 0 : 1);
  }
  return lost;
}
