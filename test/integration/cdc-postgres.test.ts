// PostgreSQL change capture on the real server: a writer inserts, updates (keys too, and rows with
// TOASTed values it leaves alone) and deletes at a few hundred operations a second while the slot
// is created, the initial copy reads the slot's exported snapshot and the stream applies; after the
// writer stops and the stream catches up to the source's WAL position, the target (PostgreSQL and
// MariaDB) equals the source row by row. The same with the applier killed and resumed several
// times. The slot's own life (drop, refusals, TRUNCATE, replays): cdc-postgres-slot.test.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type pg from 'pg';
import { planTableCopy } from '../../src/engine/copy/planner.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import {
  beginSnapshotRead, captureNames, currentLsn, dropCapture, prepareCapture, type CaptureSource,
} from '../../src/engine/db/postgres/change-capture.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import type { Relation } from '../../src/engine/db/postgres/pgoutput.ts';
import { introspectTable } from '../../src/engine/schema/introspect.ts';
import { valueMapper } from '../../src/engine/schema/typemap.ts';
import { captureTableFromPlan, ChangeApplier, type CaptureTable } from '../../src/engine/sync/cdc-apply.ts';
import { followCapture, type CaptureLag, type Follower } from '../../src/engine/sync/cdc-follow.ts';
import { freshDatabase, freshPostgresDatabase } from '../support/databases.ts';

const SCHEMA = 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, flag boolean, ts timestamptz, bin bytea, note text)';
const TARGET_SCHEMA: Record<Engine, string> = {
  postgres: SCHEMA,
  mysql: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, flag tinyint(1), ts datetime(6), bin longblob, note text) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
};
const SEED_ROWS = 2000;
const ENGINES: Engine[] = ['postgres', 'mysql'];

const connect = (url: string): Promise<pg.Client> => connectPostgres(url, { readOnly: false });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Text with what a careless encoder would break: quotes, backslashes, tabs, newlines, non-ASCII. */
const tricky = (i: number): string => `v${i} 'q' \\b\t"d"\nü€${randomBytes(3).toString('hex')}`;
/** Incompressible enough to be stored out of line (TOAST): updates that leave it alone do not send it. */
const bigNote = (): string => randomBytes(6000).toString('base64');

interface Setup { source: CaptureSource; targetUrl: string; table: CaptureTable }

/** Source and target tables, the source seeded; the capture table as the copy planner plans the table. */
async function setup(t: ExecutionContext, targetEngine: Engine): Promise<Setup> {
  const sourceUrl = await freshPostgresDatabase(t, 'cdc_src');
  const targetUrl = await freshDatabase(t, targetEngine, 'cdc_tgt');
  const source = await openSession(sourceUrl, { readOnly: false });
  const target = await openSession(targetUrl, { readOnly: false });
  try {
    await source.query(SCHEMA);
    await target.query(TARGET_SCHEMA[targetEngine]);
    await source.query(`INSERT INTO items SELECT g, 'seed ' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE g END, g % 2 = 0,
      timestamptz '2024-01-01 00:00:00.123456+00' + g * interval '1 second', CASE WHEN g % 3 = 0 THEN decode(md5(g::text), 'hex') END,
      CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 300) END FROM generate_series(1, ${SEED_ROWS}) g`);
    const [sourceInfo, targetInfo] = [await introspectTable(source, 'items'), await introspectTable(target, 'items')];
    if (!sourceInfo || !targetInfo) throw new Error('tables not created');
    const outcome = planTableCopy({ spec: { name: 'items' }, source: sourceInfo, target: targetInfo, conflictPolicy: 'upsert', mapValue: valueMapper() });
    if (!outcome.plan) throw new Error(outcome.errors.join('; '));
    const table = captureTableFromPlan(outcome.plan, 'public');
    if ('error' in table) throw new Error(table.error);
    return { source: { url: sourceUrl }, targetUrl, table };
  } finally {
    await source.close();
    await target.close();
  }
}

interface Writer {
  stop(): Promise<{ operations: number; seconds: number }>;
}

/** Two connections writing at about `perSecond` operations a second in total, each in its own transaction. */
async function startWriter(url: string, perSecond: number): Promise<Writer> {
  const clients = await Promise.all([connect(url), connect(url)]);
  const live: number[] = Array.from({ length: SEED_ROWS }, (_, i) => i + 1);
  let nextId = 1_000_000;
  let operations = 0;
  let running = true;
  const began = Date.now();
  const pick = (): number => live[Math.floor(Math.random() * live.length)] ?? 1;
  const loop = async (client: pg.Client): Promise<void> => {
    while (running) {
      const roll = Math.random();
      if (roll < 0.3) {
        const id = nextId++;
        await client.query('INSERT INTO items VALUES ($1, $2, $3, $4, clock_timestamp(), $5, $6)',
          [id, tricky(id), id % 7 === 0 ? null : id, id % 2 === 0, id % 3 === 0 ? randomBytes(20) : null, id % 10 === 0 ? bigNote() : null]);
        live.push(id);
      } else if (roll < 0.6) {
        // Leaves note alone: a TOASTed note is not sent with the change.
        await client.query('UPDATE items SET val = $2, n = n + 1, flag = NOT flag, ts = clock_timestamp() WHERE id = $1', [pick(), tricky(operations)]);
      } else if (roll < 0.7) {
        await client.query('UPDATE items SET note = $2, bin = $3 WHERE id = $1', [pick(), Math.random() < 0.5 ? bigNote() : 'short', randomBytes(8)]);
      } else if (roll < 0.85) {
        const from = pick();
        const to = nextId++;
        const result = await client.query('UPDATE items SET id = $2, val = val || \'+k\' WHERE id = $1', [from, to]);
        if (result.rowCount) {
          live.splice(live.indexOf(from), 1);
          live.push(to);
        }
      } else {
        const id = pick();
        await client.query('DELETE FROM items WHERE id = $1', [id]);
        const at = live.indexOf(id);
        if (at >= 0) live.splice(at, 1);
      }
      operations++;
      // Paced: at most perSecond on average since the start.
      const ahead = operations / perSecond * 1000 - (Date.now() - began);
      if (ahead > 0) await sleep(ahead);
    }
  };
  const loops = clients.map((client) => loop(client));
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => c.end()));
      return { operations, seconds: (Date.now() - began) / 1000 };
    },
  };
}

/**
 * The initial copy: every row as of the slot's exported snapshot, read in a transaction that
 * imported it, written through the capture's own applier (as inserts of a relation laid out as read).
 */
async function copyFromSnapshot(source: CaptureSource, snapshotName: string, release: () => Promise<void>, target: SqlSession, table: CaptureTable): Promise<number> {
  const reader = await connectPostgres(source.url, { readOnly: true });
  try {
    await beginSnapshotRead(reader, snapshotName);
    // Imported: the replication connection may move on (the stream has a connection of its own).
    await release();
    const columns = table.columns.map((c) => c.source);
    const rows = await reader.query<(string | null)[]>({ text: `SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM items`, rowMode: 'array' });
    await reader.query('COMMIT');
    const relation: Relation = { oid: 0, schema: table.sourceSchema, name: table.sourceTable, replicaIdentity: 'd', columns: columns.map((name) => ({ name, key: false, typeOid: 0 })) };
    const applier = new ChangeApplier(target, [table]);
    await target.query(target.dialect.beginStatement);
    for (const row of rows.rows) await applier.apply({ kind: 'insert', relation, row });
    await target.query('COMMIT');
    return rows.rows.length;
  } finally {
    await reader.end();
  }
}

interface Comparison { rows: number; missing: number; stale: number; undeleted: number; examples: string[] }

/** Equal values read equal: bytes as hex, fractional seconds without trailing zeros (MySQL pads them). */
function normalized(value: string | Buffer | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return `bytes ${value.toString('hex')}`;
  return /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(value) ? value.replace(/(\.\d*?)0+(?=$|[+-]\d\d$)/, '$1').replace(/\.(?=$|[+-]\d\d$)/, '') : value;
}

/** Source rows (converted as the copy converts them) against the target's, by key. */
async function compare(setup: Setup): Promise<Comparison> {
  const { table } = setup;
  const read = async (url: string, convert: boolean): Promise<Map<string, string>> => {
    const session = await openSession(url, { readOnly: true });
    const d = session.dialect;
    const names = convert ? table.columns.map((c) => c.source) : table.columns.map((c) => c.target);
    const rows = await session.query(`SELECT ${names.map((c) => d.quoteIdent(c)).join(', ')} FROM items`);
    await session.close();
    return new Map(rows.map((row) => {
      const values = names.map((name, i) => {
        const raw = row[name] ?? null;
        const converter = convert ? table.columns[i]?.convert : undefined;
        return normalized(converter && raw !== null ? converter(raw) : raw);
      });
      return [values[0] ?? '', JSON.stringify(values)];
    }));
  };
  const [source, target] = await Promise.all([read(setup.source.url, true), read(setup.targetUrl, false)]);
  const outcome: Comparison = { rows: source.size, missing: 0, stale: 0, undeleted: 0, examples: [] };
  for (const [id, row] of source) {
    const other = target.get(id);
    if (other === undefined) outcome.missing++;
    else if (other !== row) outcome.stale++;
    if (other !== row && outcome.examples.length < 5) outcome.examples.push(`id ${id}: source ${row.slice(0, 80)} target ${other?.slice(0, 80) ?? 'missing'}`);
  }
  for (const id of target.keys()) {
    if (!source.has(id)) {
      outcome.undeleted++;
      if (outcome.examples.length < 5) outcome.examples.push(`id ${id}: deleted on the source, still on the target`);
    }
  }
  return outcome;
}

/** Samples lag every 250 ms until stopped: the worst figures seen. */
function sampleLag(follower: () => Follower | undefined, sourceUrl: string): { stop(): Promise<{ maxBytes: bigint; maxApplyDelay: number; samples: number }> } {
  const state = { running: true };
  const worst = { maxBytes: 0n, maxApplyDelay: 0, samples: 0 };
  const done = (async () => {
    const client = await connect(sourceUrl);
    while (state.running) {
      const current = follower();
      const lag: CaptureLag | undefined = current ? await current.lag(client).catch(() => undefined) : undefined;
      if (lag) {
        worst.samples++;
        if (lag.bytes > worst.maxBytes) worst.maxBytes = lag.bytes;
        worst.maxApplyDelay = Math.max(worst.maxApplyDelay, lag.lastApplyDelaySeconds ?? 0);
      }
      await sleep(250);
    }
    await client.end();
  })();
  return {
    async stop() {
      state.running = false;
      await done;
      return worst;
    },
  };
}

async function catchUpAndCompare(t: ExecutionContext, setup: Setup, follower: Follower, writer: Writer): Promise<void> {
  const written = await writer.stop();
  const client = await connect(setup.source.url);
  const stoppedAt = await currentLsn(client);
  const began = Date.now();
  await follower.waitForLsn(stoppedAt, 60_000);
  const catchUpMs = Date.now() - began;
  const lag = await follower.lag(client);
  await client.end();
  const progress = follower.progress();
  const comparison = await compare(setup);
  t.log(`writer: ${written.operations} operations in ${written.seconds.toFixed(1)} s (${Math.round(written.operations / written.seconds)}/s); `
    + `applier (last run): ${progress.transactions} transactions (${progress.skippedTransactions} skipped as applied), ${progress.changes} changes `
    + `(${progress.keyMoves} key moves, ${progress.partialUpdates} without their unchanged TOASTed value); catch-up after the writer stopped: ${catchUpMs} ms; `
    + `lag then: ${lag.bytes} bytes, last apply delay ${lag.lastApplyDelaySeconds?.toFixed(3) ?? '-'} s`);
  t.log(`compared ${comparison.rows} rows: ${comparison.missing} missing, ${comparison.stale} stale, ${comparison.undeleted} undeleted`);
  t.true(written.operations > 500, 'the writer wrote throughout');
  t.deepEqual({ missing: comparison.missing, stale: comparison.stale, undeleted: comparison.undeleted, examples: comparison.examples },
    { missing: 0, stale: 0, undeleted: 0, examples: [] });
}

/** Starts the capture with the writer running, copies from the exported snapshot; the slot and publication go when the test ends. */
async function startCapture(t: ExecutionContext, uid: string, targetEngine: Engine): Promise<{ setup: Setup; target: SqlSession; writer: Writer }> {
  const prepared = await setup(t, targetEngine);
  const { source } = prepared;
  // Registered after the databases: teardowns run last-first, so the slot goes before its database.
  t.teardown(async () => { await dropCapture(source, uid); });
  const writer = await startWriter(source.url, 400);
  await sleep(300);
  const capture = await prepareCapture(source, uid, [{ schema: 'public', name: 'items', key: ['id'] }]);
  const target = await openSession(prepared.targetUrl, { readOnly: false });
  t.teardown(() => target.close());
  const copied = await copyFromSnapshot(source, capture.snapshotName, () => capture.releaseSnapshot(), target, prepared.table);
  t.log(`slot ${capture.slot} consistent at ${capture.consistentPoint.toString(16)}; copied ${copied} rows from snapshot ${capture.snapshotName}`);
  return { setup: prepared, target, writer };
}

for (const engine of ENGINES) {
  test(`changes made during and after the snapshot copy reach the ${engine} target: 0 missing, stale or undeleted`, async (t) => {
    const uid = randomUUID();
    const { setup: prepared, target, writer } = await startCapture(t, uid, engine);
    const { source, table } = prepared;
    const follower = await followCapture({ source, target, uid, tables: [table] });
    const sampler = sampleLag(() => follower, source.url);
    await sleep(4000);
    const worst = await sampler.stop();
    t.log(`while streaming (${worst.samples} samples): worst lag ${worst.maxBytes} bytes, worst apply delay ${worst.maxApplyDelay.toFixed(3)} s`);
    await catchUpAndCompare(t, prepared, follower, writer);
    const progress = follower.progress();
    t.true(progress.keyMoves > 0 && progress.partialUpdates > 0, 'key updates and updates leaving a TOASTed value out were applied');
    await follower.stop();
    await follower.ended;
  });

  test(`an applier killed mid-stream several times resumes from the slot (${engine} target): 0 lost`, async (t) => {
    const uid = randomUUID();
    const { setup: prepared, writer } = await startCapture(t, uid, engine);
    const { source, table, targetUrl } = prepared;
    let current: Follower | undefined;
    const sampler = sampleLag(() => current, source.url);
    const admin = await connect(source.url);
    t.teardown(() => admin.end());
    const kills = { stopped: 0, connectionKilled: 0, targetLost: 0, replayedAndSkipped: 0 };
    for (let round = 0; round < 6; round++) {
      // A new process each time: its own target session.
      const target = await openSession(targetUrl, { readOnly: false });
      current = await followCapture({ source, target, uid, tables: [table] });
      await sleep(300 + Math.random() * 600);
      if (round % 3 === 0) {
        await current.stop();
        kills.stopped++;
      } else if (round % 3 === 1) {
        // The walsender ends under it, as when the source restarts or the network drops.
        await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1', [captureNames(uid).slot]);
        await t.throwsAsync(current.ended);
        kills.connectionKilled++;
      } else {
        // The target connection goes, mid-transaction or between: what it had not committed is lost with it.
        await target.close();
        await t.throwsAsync(current.ended);
        kills.targetLost++;
      }
      await current.stop();
      await target.close().catch(() => undefined);
      // Committed on the target but not yet confirmed to the source when it was killed: sent again, skipped.
      kills.replayedAndSkipped += current.progress().skippedTransactions;
    }
    const target = await openSession(targetUrl, { readOnly: false });
    t.teardown(() => target.close());
    current = await followCapture({ source, target, uid, tables: [table] });
    await sleep(1000);
    const worst = await sampler.stop();
    t.log(`kills: ${JSON.stringify(kills)}; worst lag ${worst.maxBytes} bytes, worst apply delay ${worst.maxApplyDelay.toFixed(3)} s`);
    await catchUpAndCompare(t, prepared, current, writer);
    await current.stop();
  });
}
