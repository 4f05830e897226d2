// The copy's memory is bounded by its buffers, not by the batch or the table, and a batch commits
// at its byte budget as well as at batchSize rows. Memory: 300 rows of 1 MiB copied by `dmctl
// run` in a child process (as the Job runs it, with the engine's node flags), its peak RSS
// measured by /usr/bin/time. Before the byte bounds, a MariaDB source buffered the whole table
// whenever it had fewer than 2,000 rows (blocks of 500 rows, four queued).
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENGINE_NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { ensureCheckpointTable } from '../../src/engine/copy/checkpoint.ts';
import { copyShard } from '../../src/engine/copy/copy-shard.ts';
import type { TableCopyPlan } from '../../src/engine/copy/plan-types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { postgresIntrospector } from '../../src/engine/db/postgres/introspect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { freshDatabase } from '../support/databases.ts';
import { repoRoot } from '../support/platform.ts';
import { execSql, scalar } from '../support/sql.ts';

const ROWS = 300;
const ROW_BYTES = 1 << 20;
/**
 * Peak RSS the copying process stays under. Measured: about 200 MB both ways (130 MB copying 5
 * rows; 204 and 221 MB at 600 rows); before the byte bounds, 466 MB MySQL → PostgreSQL.
 */
const PEAK_RSS_BOUND_MB = 300;

interface MeasuredRun { code: number | null; peakRssMb: number; seconds: number; stdout: string }

/** `dmctl run` in a child process under /usr/bin/time; its own peak RSS. */
function measuredRun(args: string[], env: Record<string, string>): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'DMO_MAXRSS_KB=%M', process.execPath, ...ENGINE_NODE_FLAGS, join(repoRoot, 'src/cli/main.ts'), ...args, '--json'], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (code) => {
      const kb = /DMO_MAXRSS_KB=(\d+)/.exec(stderr)?.[1];
      resolve({ code, peakRssMb: kb ? Number(kb) / 1024 : Number.NaN, seconds: (performance.now() - started) / 1000, stdout });
    });
  });
}

/** 1 MiB of text per row, different in every row (md5 of the id, repeated). */
async function seedBigRows(engine: Engine, url: string): Promise<void> {
  const repeats = ROW_BYTES / 32;
  await execSql(url, engine === 'postgres'
    ? ['CREATE TABLE big (id bigint PRIMARY KEY, body text NOT NULL)',
      `INSERT INTO big SELECT g, repeat(md5(g::text), ${String(repeats)}) FROM generate_series(1, ${String(ROWS)}) g`, 'ANALYZE big']
    : ['CREATE TABLE big (id bigint PRIMARY KEY, body longtext NOT NULL) ENGINE=InnoDB',
      `INSERT INTO big SELECT seq, REPEAT(MD5(seq), ${String(repeats)}) FROM seq_1_to_${String(ROWS)}`, 'ANALYZE TABLE big']);
}

const fingerprint = (engine: Engine, url: string): Promise<string> => scalar(url, engine === 'postgres'
  ? 'SELECT count(*) || \':\' || sum(id) || \':\' || sum(length(body)) || \':\' || sum(id * (\'x\' || left(md5(body), 8))::bit(32)::bigint) FROM big'
  : 'SELECT CONCAT(count(*), \':\', sum(id), \':\', sum(length(body)), \':\', sum(id * CONV(LEFT(MD5(body), 8), 16, 10))) FROM big');

for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test.serial(`${from} → ${to}: ${String(ROWS)} rows of 1 MiB with batchSize 100 copy in under ${String(PEAK_RSS_BOUND_MB)} MB of RSS`, async (t) => {
    const source = await freshDatabase(t, from);
    const target = await freshDatabase(t, to);
    await seedBigRows(from, source);
    const dir = await mkdtemp(join(tmpdir(), 'copy-memory-'));
    const file = join(dir, 'migration.yaml');
    await writeFile(file, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: memory, namespace: test}
spec:
  source: {engine: ${from}, secretRef: {name: source}, acceptWritableRole: true}
  target: {engine: ${to}, secretRef: {name: target}}
  schema: {createMissingTables: true}
  tables: [{name: big}]
  strategy: {batchSize: 100, parallelism: 1}
`);
    const run = await measuredRun(['run', '-f', file, '--skip-validation'], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
    t.log(`${from} → ${to}: ${String(ROWS)} rows of 1 MiB in ${run.seconds.toFixed(1)} s, peak RSS ${run.peakRssMb.toFixed(0)} MB`);
    t.is(run.code, 0, run.stdout.split('\n').filter((line) => line.includes('"error"')).join('\n'));
    t.is(await fingerprint(to, target), await fingerprint(from, source), 'every row arrived, byte for byte');
    t.true(run.peakRssMb < PEAK_RSS_BOUND_MB, `peak RSS ${run.peakRssMb.toFixed(0)} MB is over ${String(PEAK_RSS_BOUND_MB)} MB`);
  });
}

const WIDE_ROWS = 30;
const WIDE_BYTES = 256 << 10;

function widePlan(from: Engine, to: Engine): TableCopyPlan {
  const q = (name: string): string => (from === 'postgres' ? `"${name}"` : `\`${name}\``);
  return {
    sourceEngine: from, targetEngine: to, sourceTable: 'wide', targetTable: 'wide', key: ['id'],
    selectColumns: [q('id'), q('body')], targetColumns: ['id', 'body'].map((name) => ({ name, binary: false })),
    converters: [undefined, undefined], conflictPolicy: 'fail',
  };
}

// PostgreSQL → PostgreSQL passes COPY bytes through untouched: its own path for the budget.
for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'mysql'], ['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: a batch commits at its byte budget before batchSize rows`, async (t) => {
    const source = await freshDatabase(t, from);
    const target = await freshDatabase(t, to);
    const repeats = WIDE_BYTES / 32;
    await execSql(source, from === 'postgres'
      ? ['CREATE TABLE wide (id bigint PRIMARY KEY, body text NOT NULL)', `INSERT INTO wide SELECT g, repeat(md5(g::text), ${String(repeats)}) FROM generate_series(1, ${String(WIDE_ROWS)}) g`]
      : ['CREATE TABLE wide (id bigint PRIMARY KEY, body longtext NOT NULL)', `INSERT INTO wide SELECT seq, REPEAT(MD5(seq), ${String(repeats)}) FROM seq_1_to_${String(WIDE_ROWS)}`]);
    const session = await openSession(target, { readOnly: false });
    try {
      await session.query(`CREATE TABLE wide (id bigint PRIMARY KEY, body ${to === 'postgres' ? 'text' : 'longtext'} NOT NULL)`);
      await ensureCheckpointTable(session);
    } finally {
      await session.close();
    }
    const batches: number[] = [];
    let committed = 0;
    const result = await copyShard({
      source: { url: source }, target: { url: target }, plan: widePlan(from, to), migration: 'm', shard: 0, boundaries: [],
      batchSize: 1000, batchBytes: 1 << 20,
      onProgress: (p) => { if (!p.done) batches.push(p.rowsCopied - committed); committed = p.rowsCopied; },
    });
    t.is(result.rowsCopied, WIDE_ROWS);
    // Four rows of a little over 256 KiB reach 1 MiB: every batch but the last holds four.
    t.deepEqual(batches, [...Array.from({ length: Math.floor(WIDE_ROWS / 4) }, () => 4), WIDE_ROWS % 4]);
    const sum = (engine: Engine): string => (engine === 'postgres'
      ? 'SELECT count(*) || \':\' || sum(length(body)) || \':\' || sum(id * (\'x\' || left(md5(body), 8))::bit(32)::bigint) FROM wide'
      : 'SELECT CONCAT(count(*), \':\', sum(length(body)), \':\', sum(id * CONV(LEFT(MD5(body), 8), 16, 10))) FROM wide');
    t.is(await scalar(target, sum(to)), await scalar(source, sum(from)));
  });
}

// The progress display's estimate: reltuples is -1 until the first ANALYZE (0 before the fix).
test('PostgreSQL: a table never analyzed is estimated from its size, then scaled from its statistics as it grows', async (t) => {
  const url = await freshDatabase(t, 'postgres');
  await execSql(url, ['CREATE TABLE fresh (id bigint PRIMARY KEY, label text)', "INSERT INTO fresh SELECT g, 'label ' || g FROM generate_series(1, 10000) g"]);
  const estimate = async (): Promise<number> => {
    const session = await openSession(url, { readOnly: true });
    try {
      return (await postgresIntrospector.table(session, 'fresh'))?.estimatedRows ?? -1;
    } finally {
      await session.close();
    }
  };
  const unanalyzed = await estimate();
  t.log(`10000 rows never analyzed: estimated ${String(unanalyzed)}`);
  t.true(unanalyzed >= 2500 && unanalyzed <= 40_000, `estimate ${String(unanalyzed)} for 10000 rows`);
  await execSql(url, ['ANALYZE fresh', "INSERT INTO fresh SELECT g, 'label ' || g FROM generate_series(10001, 20000) g"]);
  const grown = await estimate();
  t.log(`analyzed at 10000 rows, now 20000: estimated ${String(grown)}`);
  t.true(grown >= 18_000 && grown <= 22_000, `estimate ${String(grown)} for 20000 rows`);
});

/** What stays on a terminal after `text`: replays "up N lines, erase below" and drops carriage returns. */
function visibleLines(text: string): string[] {
  const esc = String.fromCharCode(27);
  const lines: string[] = [];
  for (const part of text.replaceAll('\r', '').split(new RegExp(`(${esc}\\[\\d+A${esc}\\[0J)`))) {
    const up = new RegExp(`^${esc}\\[(\\d+)A${esc}\\[0J$`).exec(part);
    if (up) lines.splice(lines.length - Number(up[1]));
    else lines.push(...part.split('\n').filter((line) => line !== ''));
  }
  return lines;
}

test('dmctl run on a terminal ends with the per-table summary on screen', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshDatabase(t, 'mysql');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note text)', "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 50000) g",
    'CREATE TABLE fresh (id bigint PRIMARY KEY)', 'INSERT INTO fresh SELECT generate_series(1, 3000)', 'ANALYZE orders']);
  const dir = await mkdtemp(join(tmpdir(), 'copy-terminal-'));
  const file = join(dir, 'migration.yaml');
  await writeFile(file, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: terminal, namespace: test}
spec:
  source: {engine: postgres, secretRef: {name: source}, acceptWritableRole: true}
  target: {engine: mysql, secretRef: {name: target}}
  schema: {createMissingTables: true}
  tables: [{name: orders}, {name: fresh}]
  strategy: {batchSize: 1000, parallelism: 1}
`);
  // script(1) gives the CLI a terminal: it draws the progress view instead of printing JSON.
  const command = [process.execPath, ...ENGINE_NODE_FLAGS, join(repoRoot, 'src/cli/main.ts'), 'run', '-f', file, '--skip-validation']
    .map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(' ');
  const output = await new Promise<string>((resolve, reject) => {
    execFile('script', ['-qec', command, '/dev/null'], { env: { ...process.env, DMO_SOURCE_URL: source, DMO_TARGET_URL: target }, maxBuffer: 1 << 24 }, (error, stdout) => {
      if (error) reject(new Error(`${error.message}\n${stdout}`));
      else resolve(stdout);
    });
  });
  const lines = visibleLines(output);
  t.log(lines.join('\n'));
  const copied = lines.findIndex((line) => line.startsWith('✔ copy succeeded'));
  t.true(copied >= 3, lines.join('\n'));
  t.regex(lines[copied - 3] ?? '', /^orders .* 100% .* 50\.0k rows .* done in \d+s$/);
  t.regex(lines[copied - 2] ?? '', /^fresh .* 100% .* 3000 rows .* done in \d+s$/);
  t.regex(lines[copied - 1] ?? '', /^copied 53\.0k rows of 2 tables in \d+s, [\d.]+k? rows\/s on average$/);
});
