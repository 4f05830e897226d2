// `npm run bench:trickle [-- --rows N --rate OPS --window S]`: a ChangeCapture migration under a
// fixed write load, at the engine level (dmctl steps as child processes, as the Jobs run them; no
// Kubernetes), for a PostgreSQL and a MariaDB source, each into PostgreSQL. A paced writer inserts,
// updates (keys too) and deletes at a fixed rate and logs every acknowledged operation; `step copy`
// runs under it, then `step sync` for a steady-state window in which the lag is sampled; then the
// fence: the writer stops, the sync gets SIGTERM, `step catchup` applies the rest and validates.
// Then the target is compared with the source row by row and with the writer's log, and
// `step release` drops the capture. Ends with one JSON line.
//
// The lag measured here is the bench's own, not the sync's reports: every 250 ms it notes the
// writer's next operation number (every operation committed before that moment has a lower one;
// every row a write touches carries the number of the write in `rev`), then polls the target every
// 20 ms until a row with a rev at least that high is there: the time from the moment to the poll
// that saw it is the time until the target had applied the source's position of that moment
// (an upper bound by one poll and one write's commit, a few ms). The sync's own reports
// (capture-lag.ts) are printed beside it but are a coarser measure by design: a report is 0 when
// the follower reaches the position within its 1.5 s probe, else the time since it last did, and
// one is written every ~3.5 s, so they say "under 1.5 s or not", a handful of times in a window.
//
// The reference: the write-blocked window the fence replaces, an offline copy of the same table
// behind a write stop with the tools people use for it (PostgreSQL: `pg_dump -t | psql`; MariaDB:
// `mariadb --batch | psql COPY`), run on the final source table after the migration.
// ratio = reference / fence (> 1: our write-blocked window is shorter). The fence includes the
// validation of the rows changed since the sync's validation at a cut (a full one if none passed in
// the window), the offline copy none; the offline copy grows with the table, the fence with the writes.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openSession } from '../src/engine/db/connect.ts';
import { readCaptureLag } from '../src/engine/sync/capture-lag.ts';
import { compareRows, createPlannedTables, type Setup } from '../test/support/cdc-harness.ts';
import { databaseOf } from '../test/support/databases.ts';
import {
  benchServers, lostWrites, mysql, mysqlCliArgs, PacedWriter, percentile, psql, quote, round, runExitCleanups, startDmctlStep, stepError, timeCommand, withDatabase,
  type Servers, type StepExit,
} from './support.ts';

// --only postgres|mysql: one source engine; --trace: a timeline of the fence (the catch-up's events,
// and for PostgreSQL who holds the slot, polled every 25 ms) and a CPU profile of the catch-up
// process in $TMPDIR/bench-trickle-profile-<engine>, to see where its time goes.
// --source-jit-off: a diagnosis, not a setting to quote: the PostgreSQL source database with
// jit = off, which takes the JIT compilation of the engine's catalog checks (defined-functions.ts,
// about 1.4 s each, run by each step twice) out of the fence.
const { values } = parseArgs({ options: {
  rows: { type: 'string', default: '50000' }, rate: { type: 'string', default: '500' }, window: { type: 'string', default: '30' },
  only: { type: 'string' }, trace: { type: 'boolean', default: false }, 'source-jit-off': { type: 'boolean', default: false },
} });
const ROWS = Number(values.rows);
const RATE = Number(values.rate);
const WINDOW_MS = Number(values.window) * 1000;
const WRITER_CONNECTIONS = 4;
const GOALS = { lag_p99_s: 2, fence_ms: 2000 };

type SourceEngine = 'postgres' | 'mysql';
const LABEL: Record<SourceEngine, string> = { postgres: 'PostgreSQL → PostgreSQL', mysql: 'MariaDB → PostgreSQL' };
const COLUMNS = 'id, rev, val, n, amount, ts';
const PG_TABLE = 'CREATE TABLE items (id bigint PRIMARY KEY, rev bigint NOT NULL, val text NOT NULL, n integer, amount numeric(12,2), ts timestamp(6) NOT NULL)';
const SOURCE_TABLE: Record<SourceEngine, { ddl: string; seed: string }> = {
  postgres: {
    ddl: PG_TABLE,
    seed: `INSERT INTO items SELECT g, 0, 'seed ' || g || repeat('x', g % 60), CASE WHEN g % 5 = 0 THEN NULL ELSE g END, (g % 100000) / 100.0,
      timestamp '2024-01-01 00:00:00.123456' + g * interval '1 second' FROM generate_series(1, ${ROWS}) g`,
  },
  mysql: {
    ddl: 'CREATE TABLE items (id bigint PRIMARY KEY, rev bigint NOT NULL, val text NOT NULL, n int, amount decimal(12,2), ts datetime(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
    seed: `INSERT INTO items SELECT seq, 0, CONCAT('seed ', seq, REPEAT('x', seq % 60)), IF(seq % 5 = 0, NULL, seq), (seq % 100000) / 100,
      TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL seq SECOND FROM seq_1_to_${ROWS}`,
  },
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the lag probe ----------------------------------------------------------------------------

interface LagFigures { samplesS: number[]; unresolved: number; reportsMs: number[] }

/** Samples the lag every 250 ms (see the header) and collects the sync's own reports, until stopped. */
function startLagProbe(targetUrl: string, uid: string, writer: PacedWriter): { stop(): Promise<LagFigures> } {
  const pending: { at: number; need: number }[] = [];
  const samplesS: number[] = [];
  const reports = new Map<string, number>();
  const state = { sampling: true, polling: true };
  const sampler = setInterval(() => { pending.push({ at: performance.now(), need: writer.nextSeq() }); }, 250);
  const polled = (async () => {
    const client = new pg.Client({ connectionString: targetUrl });
    await client.connect();
    const session = await openSession(targetUrl, { readOnly: true });
    let lastReportRead = 0;
    try {
      while (state.polling && (state.sampling || pending.length > 0)) {
        const result = await client.query<{ m: string }>('SELECT coalesce(max(rev), 0)::text AS m FROM items');
        const seen = performance.now();
        const applied = Number(result.rows[0]?.m ?? 0);
        while (pending.length > 0 && (pending[0]?.need ?? Infinity) <= applied) samplesS.push((seen - (pending.shift()?.at ?? seen)) / 1000);
        if (seen - lastReportRead > 500) {
          lastReportRead = seen;
          const report = await readCaptureLag(session, uid).catch(() => undefined);
          if (report) reports.set(report.sampledAt, report.lagMs);
        }
        await sleep(20);
      }
    } finally {
      await client.end();
      await session.close();
    }
  })();
  return {
    async stop() {
      state.sampling = false;
      clearInterval(sampler);
      // Samples still waiting get 15 s to resolve (the writer still runs); any left are counted.
      const deadline = setTimeout(() => { state.polling = false; }, 15_000);
      await polled;
      clearTimeout(deadline);
      return { samplesS, unresolved: pending.length, reportsMs: [...reports.values()] };
    },
  };
}

/** PostgreSQL: the slot's holder (walsender pid, or none) each time it changes, polled every 25 ms. */
function startSlotTrace(engine: SourceEngine, sourceUrl: string, since: number): { stop(): Promise<string[]> } {
  const lines: string[] = [];
  const state = { running: engine === 'postgres' };
  const done = (async () => {
    if (!state.running) return;
    const client = new pg.Client({ connectionString: sourceUrl });
    await client.connect();
    let last = '';
    const seen = new Set<string>();
    const running = (): boolean => state.running;
    while (running()) {
      const result = await client.query<{ holder: string }>(`SELECT coalesce(string_agg(s.active_pid || ' ' || coalesce(a.application_name, '?'), ', '), 'none') AS holder
        FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name LIKE 'dmo\\_%' AND s.active`);
      const holder = result.rows[0]?.holder ?? 'none';
      if (holder !== last) lines.push(`${String(Math.round(performance.now() - since))} slot held by: ${holder}`);
      last = holder;
      const activity = await client.query<{ line: string }>(`SELECT pid || ' ' || application_name || ' ' || coalesce(state, '') || ' ' || coalesce(wait_event, '') || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS line
        FROM pg_stat_activity WHERE application_name LIKE 'datamigration%' AND state <> 'idle'`);
      for (const row of activity.rows) if (!seen.has(row.line)) { seen.add(row.line); lines.push(`${String(Math.round(performance.now() - since))} ${row.line}`); }
      await sleep(25);
    }
    await client.end();
  })();
  return { async stop() { state.running = false; await done; return lines; } };
}

// ---- the checks -------------------------------------------------------------------------------

async function maxRev(url: string): Promise<number> {
  const session = await openSession(url, { readOnly: true });
  try {
    return Number((await session.query('SELECT coalesce(max(rev), 0) AS m FROM items'))[0]?.m ?? 0);
  } finally {
    await session.close();
  }
}

async function revisions(url: string): Promise<Map<string, number>> {
  const session = await openSession(url, { readOnly: true });
  try {
    const rows = await session.query('SELECT id, rev FROM items');
    return new Map(rows.map((row) => [String(row.id), Number(row.rev)]));
  } finally {
    await session.close();
  }
}

// ---- one source engine ------------------------------------------------------------------------

const TARGET_OWNER = 'bench_trickle_owner';

/** Fresh source and target databases; the target owned by an account that cannot write the source (the engine refuses one that could). */
async function freshDatabases(servers: Servers, engine: SourceEngine): Promise<{ sourceUrl: string; targetUrl: string }> {
  const source = `bench_trickle_${engine}_src`;
  const target = `bench_trickle_${engine}_dst`;
  if (engine === 'postgres') {
    await psql(servers.pgUrl, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '${source}'`);
    await psql(servers.pgUrl, `DROP DATABASE IF EXISTS ${source} WITH (FORCE)`);
    await psql(servers.pgUrl, `CREATE DATABASE ${source}`);
    if (values['source-jit-off']) await psql(servers.pgUrl, `ALTER DATABASE ${source} SET jit = off`);
  } else {
    await mysql(servers.mysqlUrl, `DROP DATABASE IF EXISTS ${source}; CREATE DATABASE ${source}`);
  }
  await psql(servers.pgUrl, `DROP DATABASE IF EXISTS ${target} WITH (FORCE)`);
  await psql(servers.pgUrl, `DO $$ BEGIN CREATE ROLE ${TARGET_OWNER} LOGIN PASSWORD '${TARGET_OWNER}'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  await psql(servers.pgUrl, `CREATE DATABASE ${target} OWNER ${TARGET_OWNER}`);
  const targetUrl = new URL(withDatabase(servers.pgUrl, target));
  targetUrl.username = TARGET_OWNER;
  targetUrl.password = TARGET_OWNER;
  return { sourceUrl: withDatabase(engine === 'postgres' ? servers.pgUrl : servers.mysqlUrl, source), targetUrl: targetUrl.toString() };
}

function manifest(engine: SourceEngine, uid: string): string {
  return `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: bench-trickle-${engine}, namespace: bench, uid: ${uid}}
spec:
  source: {engine: ${engine}, secretRef: {name: source, key: url}, acceptWritableRole: true}
  target: {engine: postgres, secretRef: {name: target, key: url}}
  tables: [{name: items}]
  strategy: {type: Trickle, incremental: {mode: ChangeCapture}}
  # Needed by the CRD's rules for ChangeCapture; at the engine level nothing reads it.
  cutover: {service: bench-app, fromSelector: {track: blue}, toSelector: {track: green}, fence: {type: External}}
`;
}

function finished(step: string, exit: StepExit, expected: number): StepExit {
  if (exit.code !== expected) throw new Error(`step ${step} exited ${String(exit.code ?? exit.signal)}: ${stepError(exit)}`);
  return exit;
}

/** The step's result (its `result` event), under `key`. */
function resultOf(exit: StepExit, key: string): Record<string, unknown> {
  const result = exit.events.find((e) => e.event.event === 'result')?.event.result as Record<string, unknown> | undefined;
  return (result?.[key] ?? {}) as Record<string, unknown>;
}

/** The offline copy the fence replaces: the same table into a fresh database, with the usual tools (see the header). */
async function offlineCopySeconds(servers: Servers, engine: SourceEngine, sourceUrl: string): Promise<number> {
  const name = `bench_trickle_${engine}_ref`;
  await psql(servers.pgUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await psql(servers.pgUrl, `CREATE DATABASE ${name}`);
  const into = withDatabase(servers.pgUrl, name);
  if (engine === 'postgres') return (await timeCommand(`pg_dump --no-owner --no-privileges -t items ${quote(sourceUrl)} | psql -q -v ON_ERROR_STOP=1 ${quote(into)}`)).seconds;
  await psql(into, PG_TABLE);
  const { args, env } = mysqlCliArgs(sourceUrl);
  return (await timeCommand(`mariadb ${args.map(quote).join(' ')} --batch --quick --skip-column-names -e ${quote(`SELECT ${COLUMNS} FROM items`)} | psql -q -v ON_ERROR_STOP=1 ${quote(into)} -c ${quote(`COPY items (${COLUMNS}) FROM STDIN WITH (NULL 'NULL')`)}`, { env })).seconds;
}

type Figures = Record<string, number | boolean | string>;

async function runEngine(servers: Servers, engine: SourceEngine): Promise<Figures> {
  console.log(`\n${LABEL[engine]}: ${String(ROWS)} rows, writer at ${String(RATE)} operations/s`);
  const { sourceUrl, targetUrl } = await freshDatabases(servers, engine);
  const setup: Setup = await createPlannedTables({
    sourceUrl, targetUrl, sourceDdl: SOURCE_TABLE[engine].ddl, targetDdl: PG_TABLE, seedSql: SOURCE_TABLE[engine].seed,
    sourceSchema: engine === 'postgres' ? 'public' : databaseOf(sourceUrl), method: engine === 'postgres' ? 'logical-decoding' : 'binlog',
  });
  // The lag probe's max(rev) on the target: an index of the bench's own, which the copy leaves alone.
  await psql(targetUrl, 'CREATE INDEX items_rev ON items (rev)');
  const uid = randomUUID();
  const dir = await mkdtemp(join(tmpdir(), 'bench-trickle-'));
  const file = join(dir, 'migration.yaml');
  await writeFile(file, manifest(engine, uid));
  const env: Record<string, string> = { DMO_SOURCE_URL: sourceUrl, DMO_TARGET_URL: targetUrl };
  const writer = await PacedWriter.start(engine, sourceUrl, { rate: RATE, liveKeys: ROWS, connections: WRITER_CONNECTIONS });
  let writerStopped = false;
  let sync: ReturnType<typeof startDmctlStep> | undefined;
  try {
    await sleep(1000);
    const copy = finished('copy', await startDmctlStep('copy', file, env).exited, 0);
    console.log(`copy under the writer: ${round((copy.exitedAt - copy.spawnedAt) / 1000)} s (process included)`);

    const backlogFrom = writer.nextSeq();
    sync = startDmctlStep('sync', file, env);
    const syncEnded = sync.exited.then((exit) => { if (exit.signal === null && exit.code !== 130) throw new Error(`step sync ended early (${String(exit.code)}): ${stepError(exit)}`); return exit; });
    syncEnded.catch(() => undefined);
    const syncStarted = performance.now();
    while ((await maxRev(targetUrl)) < backlogFrom) {
      if (performance.now() - syncStarted > 60_000) throw new Error('the sync did not apply what was written during the copy within 60 s');
      await Promise.race([sleep(100), syncEnded]);
    }
    console.log(`sync: what was written during the copy applied ${round((performance.now() - syncStarted) / 1000)} s after the sync process started`);
    await sleep(2000);
    const probe = startLagProbe(targetUrl, uid, writer);
    await Promise.race([sleep(WINDOW_MS), syncEnded]);
    const lag = await probe.stop();

    // The fence: from the moment writes stop until the catch-up's validation is done.
    const fenceStart = performance.now();
    const written = await writer.stop();
    writerStopped = true;
    const writerStoppedAt = performance.now();
    const trace = values.trace ? startSlotTrace(engine, sourceUrl, fenceStart) : undefined;
    sync.child.kill('SIGTERM');
    const syncExit = finished('sync', await syncEnded, 130);
    const profiled: Record<string, string> = values.trace ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${join(tmpdir(), `bench-trickle-profile-${engine}`)}` } : {};
    // What the sync said it did (its validation at a cut: tried, passed, given up), with when.
    for (const e of syncExit.events) if (e.event.event === 'note') console.log(`  sync note at ${round((e.at - syncExit.spawnedAt) / 1000)} s: ${String(e.event.message).slice(0, 200)}`);
    const catchup = finished('catchup', await startDmctlStep('catchup', file, { ...env, ...profiled }).exited, 0);
    const fenceMs = catchup.exitedAt - fenceStart;
    if (trace) {
      console.log(`fence timeline (ms from the writer's stop): sync exited ${String(Math.round(syncExit.exitedAt - fenceStart))}, catchup spawned ${String(Math.round(catchup.spawnedAt - fenceStart))}`);
      for (const line of await trace.stop()) console.log(`  ${line}`);
      for (const e of catchup.events) console.log(`  ${String(Math.round(e.at - fenceStart))} catchup: ${JSON.stringify(e.event).slice(0, 160)}`);
    }
    const caught = resultOf(catchup, 'catchup');
    const validation = (caught.validation ?? {}) as { seconds?: number; passed?: boolean; summary?: string };
    const stepStarted = catchup.events.find((e) => e.event.event === 'step' && e.event.state === 'started')?.at ?? catchup.spawnedAt;
    const stepDone = catchup.events.find((e) => e.event.event === 'step' && e.event.state === 'succeeded')?.at ?? catchup.exitedAt;
    const catchUpMs = Number(caught.catchUpMs ?? Number.NaN);
    const validationMs = (validation.seconds ?? Number.NaN) * 1000;
    // Behind the fence: the rows changed since the sync's validation at a cut, or every row when none passed.
    const full = catchup.events.find((e) => e.event.event === 'result')?.event.result as { catchup?: { validation?: { tables?: { changedRows?: { rows: number; since: string } }[] } } } | undefined;
    const fencedTables = full?.catchup?.validation?.tables ?? [];
    const changedRows = fencedTables.every((t) => t.changedRows) && fencedTables.length > 0 ? fencedTables.reduce((sum, t) => sum + (t.changedRows?.rows ?? 0), 0) : undefined;

    const comparison = await compareRows(setup, 120);
    const lost = lostWrites(writer.log, await revisions(targetUrl));
    const sourceModelErrors = lostWrites(writer.log, await revisions(sourceUrl));
    const release = finished('release', await startDmctlStep('release', file, env).exited, 0);
    const referenceS = await offlineCopySeconds(servers, engine, sourceUrl);

    const p50 = percentile(lag.samplesS, 0.5);
    const p99 = percentile(lag.samplesS, 0.99);
    const writesPerS = written.operations / written.seconds;
    const f = (ms: number): string => `${String(Math.round(ms))} ms`;
    console.log(`writer: ${String(written.operations)} acknowledged operations in ${round(written.seconds, 1)} s = ${round(writesPerS, 1)}/s (${String(written.failed)} failed); `
      + `commit latency p50 ${round(percentile(written.latenciesMs, 0.5), 1)} ms, p99 ${round(percentile(written.latenciesMs, 0.99), 1)} ms`);
    console.log(`steady-state lag over ${String(WINDOW_MS / 1000)} s (${String(lag.samplesS.length)} samples, ${String(lag.unresolved)} unresolved): `
      + `p50 ${round(p50, 3)} s, p99 ${round(p99, 3)} s, max ${round(Math.max(...lag.samplesS), 3)} s (goal p99 < ${String(GOALS.lag_p99_s)} s)`);
    console.log(`the sync's own lag reports in the window (0 = caught up within its 1.5 s probe): ${lag.reportsMs.join(' ') || 'none'} ms`);
    console.log(`fence (write-blocked window): ${f(fenceMs)} (goal < ${String(GOALS.fence_ms)} ms) = writer stop ${f(writerStoppedAt - fenceStart)}`
      + ` + sync stop after SIGTERM ${f(syncExit.exitedAt - writerStoppedAt)} + catchup process start ${f(stepStarted - catchup.spawnedAt)}`
      + ` + catch-up ${f(catchUpMs)} (${typeof caught.transactions === 'number' ? String(caught.transactions) : '?'} transactions; planning and connecting included)`
      + ` + validation ${f(validationMs)} (${validation.summary ?? ''}) + the rest of the step (the validation's planning and checks, closing sessions) and process exit ${f(catchup.exitedAt - stepStarted - catchUpMs - validationMs)}`);
    console.log(`  validation behind the fence: ${changedRows === undefined ? 'full (no validation at a cut passed while syncing)' : `${String(changedRows)} rows changed since the sync's validation at a cut (${fencedTables[0]?.changedRows?.since ?? ''}), and the counts`}`);
    console.log(`  (engine level: the operator adds the sync pod's termination and the catch-up Job's scheduling and pod start-up to this; step ${f(stepDone - stepStarted)} of it)`);
    console.log(`compared ${String(comparison.rows)} rows: ${String(comparison.missing)} missing, ${String(comparison.stale)} stale, ${String(comparison.undeleted)} undeleted${comparison.examples.length ? `: ${comparison.examples.join('; ')}` : ''}`);
    console.log(`acknowledged operations not on the target: ${String(lost)} (the same check against the source: ${String(sourceModelErrors)})`);
    console.log(`release: ${JSON.stringify(resultOf(release, 'release'))}`);
    console.log(`reference, offline copy of the table behind a write stop: ${round(referenceS)} s; fence ${round(fenceMs / 1000)} s; ratio ${round(referenceS / (fenceMs / 1000))}`);
    return {
      writes_per_s: round(writesPerS, 1), write_commit_p99_ms: round(percentile(written.latenciesMs, 0.99), 1), lag_p50_s: round(p50, 3), lag_p99_s: round(p99, 3),
      lag_max_s: round(Math.max(...lag.samplesS), 3), lag_samples: lag.samplesS.length, lag_unresolved: lag.unresolved,
      sync_reports_max_lag_ms: Math.max(0, ...lag.reportsMs), fence_ms: Math.round(fenceMs), catchup_ms: Math.round(catchUpMs), validation_ms: Math.round(validationMs),
      fence_validation: changedRows === undefined ? 'full' : 'changed-rows', fence_validated_rows: changedRows ?? comparison.rows,
      lost_writes: lost, mismatched_rows: comparison.missing + comparison.stale + comparison.undeleted, validation_passed: validation.passed === true,
      offline_copy_s: round(referenceS), ratio_vs_offline_copy: round(referenceS / (fenceMs / 1000)),
      goals_met: p99 < GOALS.lag_p99_s && fenceMs < GOALS.fence_ms && lost === 0 && lag.unresolved === 0,
    };
  } finally {
    if (!writerStopped) await writer.stop();
    if (sync && sync.child.exitCode === null && sync.child.signalCode === null) sync.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const began = performance.now();
  const servers = await benchServers();
  const report: Record<string, unknown> = { rows: ROWS, rate: RATE, window_s: WINDOW_MS / 1000, ...(values['source-jit-off'] ? { source_jit_off: true } : {}) };
  for (const engine of ['postgres', 'mysql'] as const) if (!values.only || values.only === engine) report[engine] = await runEngine(servers, engine);
  report.seconds = round((performance.now() - began) / 1000, 1);
  console.log(JSON.stringify(report));
}

main().then(runExitCleanups, async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await runExitCleanups();
  process.exitCode = 1;
});
