// PostgreSQL change capture on the real server: a writer inserts, updates (keys too, and rows with
// TOASTed values it leaves alone) and deletes at a few hundred operations a second while the slot
// is created, the initial copy reads the slot's exported snapshot and the stream applies; after the
// writer stops and the stream catches up to the source's WAL position, the target (PostgreSQL and
// MariaDB) equals the source row by row. The same with the applier killed and resumed several
// times. The slot's own life (drop, refusals, TRUNCATE, replays): cdc-postgres-slot.test.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import type { CaptureSource } from '../../src/engine/db/change-capture.ts';
import test, { type ExecutionContext } from 'ava';
import type pg from 'pg';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import {
  beginSnapshotRead, captureNames, currentLsn, dropCapture, prepareCapture,
} from '../../src/engine/db/postgres/change-capture.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import type { Relation } from '../../src/engine/db/postgres/pgoutput.ts';
import type { CaptureTable } from '../../src/engine/sync/cdc-apply.ts';
import { followCapture, type Follower } from '../../src/engine/sync/cdc-follow.ts';
import {
  applyAsInserts, catchUpAndCompare, createPlannedTables, killRepeatedly, samplePeriodically, SEED_ROWS, sleep, startPacedWriter, tricky,
  type LiveRows, type Setup, type Writer,
} from '../support/cdc-harness.ts';
import { freshDatabase, freshPostgresDatabase } from '../support/databases.ts';

const SCHEMA = 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, flag boolean, ts timestamptz, bin bytea, note text)';
const TARGET_SCHEMA: Record<Engine, string> = {
  postgres: SCHEMA,
  mysql: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, flag tinyint(1), ts datetime(6), bin longblob, note text) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
};
const ENGINES: Engine[] = ['postgres', 'mysql'];
/** Characters of a differing row shown in the comparison's examples. */
const EXAMPLE_WIDTH = 80;

const connect = (url: string): Promise<pg.Client> => connectPostgres(url, { readOnly: false });

/** Incompressible enough to be stored out of line (TOAST): updates that leave it alone do not send it. */
const bigNote = (): string => randomBytes(6000).toString('base64');

/** Source and target tables, the source seeded; the capture table as the copy planner plans the table. */
async function setup(t: ExecutionContext, targetEngine: Engine): Promise<Setup> {
  return createPlannedTables({
    sourceUrl: await freshPostgresDatabase(t, 'cdc_src'),
    targetUrl: await freshDatabase(t, targetEngine, 'cdc_tgt'),
    sourceDdl: SCHEMA,
    targetDdl: TARGET_SCHEMA[targetEngine],
    seedSql: `INSERT INTO items SELECT g, 'seed ' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE g END, g % 2 = 0,
      timestamptz '2024-01-01 00:00:00.123456+00' + g * interval '1 second', CASE WHEN g % 3 = 0 THEN decode(md5(g::text), 'hex') END,
      CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 300) END FROM generate_series(1, ${SEED_ROWS}) g`,
    sourceSchema: 'public',
    method: 'logical-decoding',
  });
}

/** One operation of the writer, each in its own transaction: inserts, updates (keys too, and leaving TOASTed values alone), deletes. */
async function operate(client: pg.Client, rows: LiveRows): Promise<void> {
  const roll = Math.random();
  if (roll < 0.3) {
    const id = rows.newId();
    await client.query('INSERT INTO items VALUES ($1, $2, $3, $4, clock_timestamp(), $5, $6)',
      [id, tricky(id), id % 7 === 0 ? null : id, id % 2 === 0, id % 3 === 0 ? randomBytes(20) : null, id % 10 === 0 ? bigNote() : null]);
    rows.inserted(id);
  } else if (roll < 0.6) {
    // Leaves note alone: a TOASTed note is not sent with the change.
    await client.query('UPDATE items SET val = $2, n = n + 1, flag = NOT flag, ts = clock_timestamp() WHERE id = $1', [rows.pick(), tricky(rows.operations)]);
  } else if (roll < 0.7) {
    await client.query('UPDATE items SET note = $2, bin = $3 WHERE id = $1', [rows.pick(), Math.random() < 0.5 ? bigNote() : 'short', randomBytes(8)]);
  } else if (roll < 0.85) {
    const from = rows.pick();
    const to = rows.newId();
    const result = await client.query('UPDATE items SET id = $2, val = val || \'+k\' WHERE id = $1', [from, to]);
    if (result.rowCount) rows.moved(from, to);
  } else {
    const id = rows.pick();
    await client.query('DELETE FROM items WHERE id = $1', [id]);
    rows.deleted(id);
  }
}

/** Two connections writing at about `perSecond` operations a second in total, each in its own transaction. */
const startWriter = (url: string, perSecond: number): Promise<Writer> => startPacedWriter({ connect: () => connect(url), close: (c) => c.end(), perSecond, operate });

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
    return await applyAsInserts(target, table, relation, rows.rows);
  } finally {
    await reader.end();
  }
}

/** Samples lag every 250 ms until stopped: the worst figures seen. */
function sampleLag(follower: () => Follower | undefined, sourceUrl: string): { stop(): Promise<{ maxBytes: bigint; maxApplyDelay: number; samples: number }> } {
  const worst = { maxBytes: 0n, maxApplyDelay: 0, samples: 0 };
  const sampler = samplePeriodically(() => connect(sourceUrl), (client) => client.end(), async (client) => {
    const current = follower();
    const lag = current ? await current.lag(client).catch(() => undefined) : undefined;
    if (lag) {
      worst.samples++;
      if (lag.bytes > worst.maxBytes) worst.maxBytes = lag.bytes;
      worst.maxApplyDelay = Math.max(worst.maxApplyDelay, lag.lastApplyDelaySeconds ?? 0);
    }
  });
  return {
    async stop() {
      await sampler.stop();
      return worst;
    },
  };
}

/** Waits for the follower to reach the source's WAL position once the writer stopped; then the target must equal the source. */
async function catchUpToSource(t: ExecutionContext, setup: Setup, follower: Follower, writer: Writer): Promise<void> {
  await catchUpAndCompare(t, setup, writer, async () => {
    const client = await connect(setup.source.url);
    const stoppedAt = await currentLsn(client);
    const began = Date.now();
    await follower.waitForLsn(stoppedAt, 60_000);
    const catchUpMs = Date.now() - began;
    const lag = await follower.lag(client);
    await client.end();
    const progress = follower.progress();
    return `applier (last run): ${progress.transactions} transactions (${progress.skippedTransactions} skipped as applied), ${progress.changes} changes `
      + `(${progress.keyMoves} key moves, ${progress.partialUpdates} without their unchanged TOASTed value); catch-up after the writer stopped: ${catchUpMs} ms; `
      + `lag then: ${lag.bytes} bytes, last apply delay ${lag.lastApplyDelaySeconds?.toFixed(3) ?? '-'} s`;
  }, EXAMPLE_WIDTH);
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
    await catchUpToSource(t, prepared, follower, writer);
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
    let replayedAndSkipped = 0;
    const kills = await killRepeatedly(t, {
      targetUrl,
      follow: async (target) => {
        current = await followCapture({ source, target, uid, tables: [table] });
        return current;
      },
      // The walsender ends under it.
      killSourceConnection: async () => {
        await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1', [captureNames(uid).slot]);
      },
      // Committed on the target but not yet confirmed to the source when it was killed: sent again, skipped.
      afterRound: (follower) => { replayedAndSkipped += follower.progress().skippedTransactions; },
    });
    const target = await openSession(targetUrl, { readOnly: false });
    t.teardown(() => target.close());
    current = await followCapture({ source, target, uid, tables: [table] });
    await sleep(1000);
    const worst = await sampler.stop();
    t.log(`kills: ${JSON.stringify({ ...kills, replayedAndSkipped })}; worst lag ${worst.maxBytes} bytes, worst apply delay ${worst.maxApplyDelay.toFixed(3)} s`);
    await catchUpToSource(t, prepared, current, writer);
    await current.stop();
  });
}
