// The ChangeCapture steps as Jobs run them (dmctl child processes), on real servers, each engine as
// the source: the target seeded from the capture's consistent snapshot (as the copy step does),
// then `step sync` follows while a writer inserts, updates (keys too) and deletes at a few hundred
// operations a second; it validates the target at a cut of the source once caught up (a row planted
// on the target: exit 4), is SIGKILLed at random points and started again, and reports its lag into
// the target every few seconds. The writer stops (the fence), the sync gets SIGTERM (exit 130 with its
// result), `step catchup` applies the rest and validates the rows changed since the cut (tampered
// target rows: exit 4), and `step release` drops the capture (twice: harmless).
import { randomBytes, randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { ensureCheckpointTable, writeCheckpoint } from '../../src/engine/copy/checkpoint.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { openBinlogSnapshot } from '../../src/engine/db/mysql/binlog-capture.ts';
import { formatBinlogPosition } from '../../src/engine/db/mysql/binlog-position.ts';
import { beginSnapshotRead, captureNames, dropCapture, prepareCapture } from '../../src/engine/db/postgres/change-capture.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import type { Relation } from '../../src/engine/db/postgres/pgoutput.ts';
import { readCaptureLag, type CaptureLagReport } from '../../src/engine/sync/capture-lag.ts';
import type { CapturedRelation, CapturedValue } from '../../src/engine/sync/cdc-apply.ts';
import { binlogCheckpointId } from '../../src/engine/sync/cdc-follow-mysql.ts';
import { readChangedKeys, readCutRecord, type CutRecord } from '../../src/engine/sync/changed-keys.ts';
import { applyAsInserts, compareRows, createPlannedTables, SEED_ROWS, sleep, startItemWriter, tricky, type ItemStatements, type Setup, type Writer } from '../support/cdc-harness.ts';
import { databaseOf, freshDatabase } from '../support/databases.ts';
import { repoRoot } from '../support/platform.ts';
import { scalar } from '../support/sql.ts';

const OPERATIONS_PER_SECOND = 400;
const EXAMPLE_WIDTH = 120;

/** Source DDL, the target's (the other engine: one server each, so the target's account cannot reach the source), the seed. */
const TABLES = {
  postgres: {
    source: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, flag boolean, ts timestamp(6), bin bytea)',
    target: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, flag tinyint(1), ts datetime(6), bin longblob) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
    seed: `INSERT INTO items SELECT g, 'seed ' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE g END, g % 2 = 0,
      timestamp '2024-01-01 00:00:00.123456' + g * interval '1 second', CASE WHEN g % 3 = 0 THEN decode(md5(g::text), 'hex') END FROM generate_series(1, ${SEED_ROWS}) g`,
  },
  mysql: {
    source: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, amount decimal(30,10), ts datetime(6), bin blob) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
    target: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, amount numeric(30,10), ts timestamp(6), bin bytea)',
    seed: `INSERT INTO items SELECT i, CONCAT('seed ', i), IF(i % 5 = 0, NULL, i), i * 1.0000000001, TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL i SECOND,
      IF(i % 3 = 0, UNHEX(MD5(i)), NULL) FROM (SELECT seq AS i FROM seq_1_to_${SEED_ROWS}) g`,
  },
} as const;

const OTHER: Record<Engine, Engine> = { postgres: 'mysql', mysql: 'postgres' };

/** The writer's inserts and updates (MariaDB: an exact decimal too; NOW(6) is deterministic within a statement). */
const ITEM_STATEMENTS: Record<Engine, ItemStatements> = {
  postgres: {
    insert: (exec, id) => exec('INSERT INTO items VALUES ($1, $2, $3, $4, localtimestamp, $5)', [id, tricky(id), id % 7 === 0 ? null : id, id % 2 === 0, id % 3 === 0 ? randomBytes(16) : null]),
    update: (exec, id, operation) => exec('UPDATE items SET val = $2, n = n + 1, flag = NOT flag, ts = localtimestamp WHERE id = $1', [id, tricky(operation)]),
  },
  mysql: {
    insert: (exec, id) => exec('INSERT INTO items VALUES (?, ?, ?, ?, NOW(6), ?)', [id, tricky(id), id % 7 === 0 ? null : id, amount(), id % 3 === 0 ? randomBytes(16) : null]),
    update: (exec, id, operation) => exec('UPDATE items SET val = ?, n = n + 1, amount = ?, ts = NOW(6) WHERE id = ?', [tricky(operation), amount(), id]),
  },
};

/** An exact decimal with all its digits. */
const amount = (): string => `${String(randomBytes(4).readUInt32BE(0))}.${String(randomBytes(4).readUInt32BE(0)).padStart(10, '0')}`;

function startWriter(engine: Engine, url: string): Promise<Writer> {
  return startItemWriter(engine, url, OPERATIONS_PER_SECOND, ITEM_STATEMENTS[engine]);
}

/**
 * What the copy step does before the sync: the capture started under a running writer, every row
 * of its consistent snapshot on the target, and (binlog) the snapshot's position recorded for the follower.
 */
async function seedFromSnapshot(t: ExecutionContext, engine: Engine, setup: Setup, uid: string): Promise<number> {
  const { table } = setup;
  const columns = table.columns.map((c) => c.source);
  const target = await openSession(setup.targetUrl, { readOnly: false });
  try {
    if (engine === 'postgres') {
      const capture = await prepareCapture(setup.source, uid, [{ schema: 'public', name: 'items', key: ['id'] }]);
      const reader = await connectPostgres(setup.source.url, { readOnly: true });
      try {
        await beginSnapshotRead(reader, capture.snapshotName);
        await capture.releaseSnapshot();
        const rows = await reader.query<(string | null)[]>({ text: `SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM items`, rowMode: 'array' });
        await reader.query('COMMIT');
        const relation: Relation = { oid: 0, schema: 'public', name: 'items', replicaIdentity: 'd', columns: columns.map((name) => ({ name, key: false, typeOid: 0 })) };
        return await applyAsInserts(target, table, relation, rows.rows);
      } finally {
        await reader.end();
      }
    }
    const snapshot = await openBinlogSnapshot(setup.source, [{ schema: databaseOf(setup.source.url), name: 'items', key: ['id'] }]);
    try {
      const [rows] = await snapshot.connection.query({ sql: `SELECT ${columns.map((c) => `\`${c}\``).join(', ')} FROM items`, rowsAsArray: true });
      const relation: CapturedRelation = { schema: table.sourceSchema, name: table.sourceTable, columns: columns.map((name) => ({ name })) };
      const copied = await applyAsInserts(target, table, relation, rows as CapturedValue[][]);
      await ensureCheckpointTable(target);
      await writeCheckpoint(target, binlogCheckpointId(uid), { lastKey: [formatBinlogPosition(snapshot.position)], rowsCopied: 0, done: false, boundaries: [] });
      t.log(`snapshot at ${formatBinlogPosition(snapshot.position)} (${snapshot.method})`);
      return copied;
    } finally {
      await snapshot.release();
    }
  } finally {
    await target.close();
  }
}

interface Step {
  child: ReturnType<typeof spawn>;
  /** Exit code (null: by signal), the signal, the JSON lines, the termination message (undefined: none written). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; events: Record<string, unknown>[]; termination: unknown }>;
}

/** `dmctl step <name>` as a Job runs it: a child process writing its result as the termination message. */
async function startStep(name: string, file: string, env: Record<string, string>): Promise<Step> {
  const dir = await mkdtemp(join(tmpdir(), 'dmctl-capture-'));
  const termination = join(dir, 'termination');
  const child = spawn(process.execPath, [join(repoRoot, 'src/cli/main.ts'), 'step', name, '-f', file, '--json'], {
    env: { ...process.env, ...env, DMO_TERMINATION_LOG: termination }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => { resolve({ code, signal }); });
  }).then(async ({ code, signal }) => {
    const text = await readFile(termination, 'utf8').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    let parsed: unknown = text;
    try {
      parsed = text === undefined ? undefined : JSON.parse(text);
    } catch {
      // an error message, not a result
    }
    return { code, signal, events, termination: parsed };
  });
  return { child, exited };
}

const runStep = async (name: string, file: string, env: Record<string, string>): Promise<Awaited<Step['exited']>> => (await startStep(name, file, env)).exited;

const errorOf = (events: Record<string, unknown>[]): string => {
  const message = events.find((e) => e.event === 'error')?.message;
  return typeof message === 'string' ? message : '';
};

const errorsOf = (events: Record<string, unknown>[]): string => JSON.stringify(events.filter((e) => e.event === 'error' || e.event === 'warning'));

/** The lag reports seen while polling, and how old the newest one was at worst. */
class LagWatch {
  readonly lags: number[] = [];
  worstAgeMs = 0;
  last: CaptureLagReport | undefined;
  async poll(targetUrl: string, uid: string, forMs: number, since = 0): Promise<void> {
    const target = await openSession(targetUrl, { readOnly: true });
    try {
      const until = Date.now() + forMs;
      while (Date.now() < until) {
        // Before the first sync creates the checkpoint table (PostgreSQL: the seeding did not): none yet.
        const report = await readCaptureLag(target, uid).catch(() => undefined);
        if (report && Date.parse(report.sampledAt) >= since) {
          if (report.sampledAt !== this.last?.sampledAt) this.lags.push(report.lagMs);
          this.last = report;
          this.worstAgeMs = Math.max(this.worstAgeMs, Date.now() - Date.parse(report.sampledAt));
        }
        await sleep(250);
      }
    } finally {
      await target.close();
    }
  }
}

/** Polls until a sync started at `since` has written a report (its follower runs), within 60 s. */
async function firstReport(targetUrl: string, uid: string, since: number): Promise<void> {
  const watch = new LagWatch();
  for (let i = 0; i < 240 && !watch.last; i++) await watch.poll(targetUrl, uid, 250, since);
  if (!watch.last) throw new Error('the sync wrote no lag report within 60 s');
}

function manifest(engine: Engine, uid: string): string {
  return `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: capture-steps, namespace: test, uid: ${uid}}
spec:
  source: {engine: ${engine}, secretRef: {name: source}, acceptWritableRole: true}
  target: {engine: ${OTHER[engine]}, secretRef: {name: target}}
  tables: [{name: items}]
  strategy: {type: Trickle, incremental: {mode: ChangeCapture}}
`;
}

interface ValidationResult { passed: boolean; summary?: string; checks?: { name: string; passed: boolean }[] }

/** The cut record once the sync's validation at a cut has one in `state`, within `ms`. */
async function cutRecordIn(targetUrl: string, uid: string, state: CutRecord['state'], ms: number): Promise<CutRecord | undefined> {
  const target = await openSession(targetUrl, { readOnly: true });
  try {
    for (const until = Date.now() + ms; Date.now() < until;) {
      const record = await readCutRecord(target, uid).catch(() => undefined);
      if (record?.state === state) return record;
      await sleep(250);
    }
    return undefined;
  } finally {
    await target.close();
  }
}

interface FencedTable { changedRows?: { rows: number; passed: boolean }; rowCount?: { passed: boolean }; checksum?: unknown }

/** The catch-up's validation per table, from its JSON result. */
const catchupTables = (events: Record<string, unknown>[]): FencedTable[] => {
  const result = events.find((e) => e.event === 'result')?.result as { catchup?: { validation?: { tables?: FencedTable[] } } } | undefined;
  return result?.catchup?.validation?.tables ?? [];
};

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine} source: sync killed and restarted under writes, stopped at the fence, caught up, validated, released`, async (t) => {
    const uid = randomUUID();
    const sourceUrl = await freshDatabase(t, engine, 'cap_src');
    const setup = await createPlannedTables({
      sourceUrl, targetUrl: await freshDatabase(t, OTHER[engine], 'cap_tgt'),
      sourceDdl: TABLES[engine].source, targetDdl: TABLES[engine].target, seedSql: TABLES[engine].seed,
      sourceSchema: engine === 'postgres' ? 'public' : databaseOf(sourceUrl), method: engine === 'postgres' ? 'logical-decoding' : 'binlog',
    });
    if (engine === 'postgres') t.teardown(async () => { await dropCapture(setup.source, uid); });
    const dir = await mkdtemp(join(tmpdir(), 'capture-steps-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'migration.yaml');
    await writeFile(file, manifest(engine, uid));
    // Behind the fence the changed rows are compared one by one however many of the table's they are (default: up to 5 %).
    const env = { DMO_SOURCE_URL: setup.source.url, DMO_TARGET_URL: setup.targetUrl, DMO_FENCE_CHANGED_SHARE_MAX: 'Infinity' };

    const writer = await startWriter(engine, setup.source.url);
    let writerStopped = false;
    t.teardown(async () => { if (!writerStopped) await writer.stop(); });
    await sleep(300);
    const copied = await seedFromSnapshot(t, engine, setup, uid);
    t.log(`copied ${copied} rows from the snapshot with the writer running`);

    // A row on the target the source never had (the writer's ids stay far below it): once caught up,
    // the sync validates the target at a cut of the source under the writes, finds it, and fails (exit 4).
    const target = await openSession(setup.targetUrl, { readOnly: false });
    t.teardown(() => target.close());
    await target.query("INSERT INTO items (id, val) VALUES (900000000, 'planted')");
    const planted = await runStep('sync', file, env);
    t.is(planted.code, 4, errorsOf(planted.events));
    t.regex(errorOf(planted.events), /validated while syncing, at source position \S+, the target differs from the source: .*items/);
    // Its result is the validation's, the operator's verdict (a rollback, as the validate step's).
    t.like(planted.termination, { passed: false });
    t.true((planted.termination as ValidationResult).checks?.some((c) => !c.passed && /items/.test(c.name)) ?? false, JSON.stringify(planted.termination));
    await target.query('DELETE FROM items WHERE id = 900000000');

    // SIGKILLed at random points once following, three times; each new process resumes.
    const watch = new LagWatch();
    for (let kill = 0; kill < 3; kill++) {
      const started = Date.now();
      const sync = await startStep('sync', file, env);
      t.teardown(() => { sync.child.kill('SIGKILL'); });
      await firstReport(setup.targetUrl, uid, started);
      await watch.poll(setup.targetUrl, uid, Math.random() * 3000, started);
      sync.child.kill('SIGKILL');
      const exit = await sync.exited;
      t.is(exit.signal, 'SIGKILL', `kill ${String(kill + 1)} landed while it was following`);
    }

    const started = Date.now();
    const sync = await startStep('sync', file, env);
    t.teardown(() => { sync.child.kill('SIGKILL'); });
    await firstReport(setup.targetUrl, uid, started);
    await watch.poll(setup.targetUrl, uid, 8000, started);
    // The validation at a cut passes under the writes (a kill above may have ended an earlier one).
    const cut = await cutRecordIn(setup.targetUrl, uid, 'passed', 120_000);
    t.log(`validation at a cut passed ${String(Date.now() - started)} ms after the sync started: ${JSON.stringify(cut)}`);
    t.truthy(cut, 'the validation at a cut passed under the writes');
    const written = await writer.stop();
    writerStopped = true;
    // The fence: nothing is written any more. The sync goes on a moment, then its Job is deleted.
    await watch.poll(setup.targetUrl, uid, 4000, started);
    t.log(`writer: ${String(written.operations)} operations in ${written.seconds.toFixed(1)} s (${String(Math.round(written.operations / written.seconds))}/s)`);
    t.log(`lag reports (lagMs, in order): ${watch.lags.join(' ')}; the newest report was at worst ${String(watch.worstAgeMs)} ms old; last: ${JSON.stringify(watch.last)}`);
    t.true(written.operations / written.seconds > 250, 'the writer wrote a few hundred operations a second');
    t.true(watch.lags.length >= 5, 'reports were written every few seconds');
    t.true(watch.worstAgeMs <= 5000, 'the lag report is never older than 5 s');
    t.is(typeof watch.last?.lagMs, 'number');

    if (engine === 'postgres') {
      // The sync pod still holds the slot: the catch-up gives up at its deadline, saying so.
      const early = await runStep('catchup', file, { ...env, DMO_CATCHUP_TIMEOUT_SECONDS: '2' });
      t.is(early.code, 1);
      t.regex(errorOf(early.events), /DMO_CATCHUP_TIMEOUT_SECONDS.*still streamed by another process/);
    }

    const termAt = Date.now();
    sync.child.kill('SIGTERM');
    const stopped = await sync.exited;
    t.log(`the sync exited ${String(Date.now() - termAt)} ms after SIGTERM; its notes: ${JSON.stringify(stopped.events.filter((e) => e.event === 'note').map((e) => e.message))}`);
    // Stopped cleanly with its result, yet as interrupted: a Job whose pod was stopped must not count as done.
    t.is(stopped.code, 130, errorsOf(stopped.events));
    const syncResult = stopped.termination as { mode?: string; transactions?: number; changes?: number; appliedPosition?: string };
    t.log(`sync result: ${JSON.stringify(syncResult)}`);
    t.is(syncResult.mode, 'ChangeCapture');
    t.true((syncResult.transactions ?? 0) > 0 && (syncResult.changes ?? 0) > 0 && typeof syncResult.appliedPosition === 'string');

    const catchup = await runStep('catchup', file, env);
    t.is(catchup.code, 0, errorsOf(catchup.events));
    const caught = catchup.termination as { fencePosition?: string; catchUpMs?: number; transactions?: number; validation?: ValidationResult };
    t.log(`catchup result: ${JSON.stringify({ ...caught, validation: caught.validation?.summary })}`);
    t.true(typeof caught.fencePosition === 'string' && caught.validation?.passed === true);
    // Behind the fence only the rows changed since the cut, with the counts.
    const [fenced] = catchupTables(catchup.events);
    t.log(`behind the fence: ${JSON.stringify(fenced?.changedRows)}, counts ${JSON.stringify(fenced?.rowCount)}`);
    t.true((fenced?.changedRows?.rows ?? 0) > 0 && fenced?.changedRows?.passed === true && fenced.checksum === undefined);
    const comparison = await compareRows(setup, EXAMPLE_WIDTH);
    t.log(`compared ${String(comparison.rows)} rows: ${String(comparison.missing)} missing, ${String(comparison.stale)} stale, ${String(comparison.undeleted)} undeleted`);
    t.deepEqual(comparison, { rows: comparison.rows, missing: 0, stale: 0, undeleted: 0, examples: [] });

    // Behind the migration's back, a changed row made stale and a row deleted on the target: the catch-up's validation finds both.
    const changed = await readChangedKeys(target, uid, 1_000_000);
    // One that still exists (a deleted row's key is recorded too).
    const keys = (changed?.get('items') ?? []).slice(0, 200).map((row) => String(row.target[0]));
    const [kept] = await target.query(`SELECT id FROM items WHERE id IN (${keys.join(', ')}) ORDER BY id LIMIT 1`);
    await target.query(`UPDATE items SET val = 'stale' WHERE id = ${String(kept?.id)}`);
    await target.query(`DELETE FROM items WHERE id = ${await scalar(setup.targetUrl, 'SELECT MAX(id) FROM items')}`);
    const failed = await runStep('catchup', file, env);
    t.is(failed.code, 4, errorsOf(failed.events));
    t.is((failed.termination as { validation?: ValidationResult }).validation?.passed, false);
    const [found] = catchupTables(failed.events);
    t.like(found, { changedRows: { passed: false }, rowCount: { passed: false } });

    // A TRUNCATE on the source cannot be followed: the sync fails, saying why.
    const doomed = await startStep('sync', file, env);
    t.teardown(() => { doomed.child.kill('SIGKILL'); });
    await sleep(4000);
    const source = await openSession(setup.source.url, { readOnly: false });
    await source.query('TRUNCATE TABLE items');
    await source.close();
    const truncated = await doomed.exited;
    t.is(truncated.code, 1);
    t.regex(errorOf(truncated.events), /following the source's changes failed: .*TRUNCATE/);

    const release = await runStep('release', file, env);
    t.is(release.code, 0, errorsOf(release.events));
    const again = await runStep('release', file, env);
    t.is(again.code, 0, errorsOf(again.events));
    t.log(`release: ${JSON.stringify(release.termination)}; again: ${JSON.stringify(again.termination)}`);
    if (engine === 'postgres') {
      t.like(release.termination, { released: true, slotDropped: true, publicationDropped: true });
      t.like(again.termination, { released: true, slotDropped: false, publicationDropped: false });
      const names = captureNames(uid);
      t.is(await scalar(setup.source.url, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${names.slot}'`), '0');
      t.is(await scalar(setup.source.url, `SELECT count(*) FROM pg_publication WHERE pubname = '${names.publication}'`), '0');
      const orphan = await runStep('sync', file, env);
      t.is(orphan.code, 1);
      t.regex(errorOf(orphan.events), /no replication slot/);
    } else {
      t.like(release.termination, { released: true });
      t.like(again.termination, { released: true });
    }
  });
}

