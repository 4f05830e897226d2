// MariaDB binlog change capture on the real server: a writer inserts, updates (keys too, and
// several rows in one transaction) and deletes at a few hundred operations a second while the
// snapshot position is taken, the initial copy reads under that snapshot and the stream applies;
// after the writer stops and the stream catches up to the server's binlog position, the target
// (PostgreSQL and MariaDB) equals the source row by row. The same with the applier stopped, its
// binlog connection killed and its target connection lost several times. Prerequisites, DDL and
// exact values: cdc-mysql-binlog.test.ts.
import { randomBytes, randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type mysql from 'mysql2/promise';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { currentBinlogPosition, openBinlogSnapshot } from '../../src/engine/db/mysql/binlog-capture.ts';
import { formatBinlogPosition, type BinlogPosition } from '../../src/engine/db/mysql/binlog-position.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import type { CaptureTable, CapturedRelation, CapturedValue } from '../../src/engine/sync/cdc-apply.ts';
import { followBinlog, type BinlogFollower } from '../../src/engine/sync/cdc-follow-mysql.ts';
import {
  applyAsInserts, catchUpAndCompare, createPlannedTables, killRepeatedly, samplePeriodically, SEED_ROWS, sleep, startPacedWriter, tricky,
  type LiveRows, type Setup, type Writer,
} from '../support/cdc-harness.ts';
import { databaseOf, freshDatabase, freshMysqlDatabase } from '../support/databases.ts';

const SCHEMA = `CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, amount decimal(30,10), ts datetime(6), doc json, bin blob, big bigint unsigned)
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
const TARGET_SCHEMA: Record<Engine, string> = {
  mysql: SCHEMA,
  postgres: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, amount numeric(30,10), ts timestamp(6), doc json, bin bytea, big numeric(20,0))',
};
const ENGINES: Engine[] = ['postgres', 'mysql'];
/** Characters of a differing row shown in the comparison's examples (JSON documents are long). */
const EXAMPLE_WIDTH = 160;

const connect = (url: string): Promise<mysql.Connection> => connectMysql(url, { readOnly: false });

/** Beyond 2^53 (and 2^63): exact only as text. */
const bigUnsigned = (): string => (2n ** 63n + BigInt(`0x${randomBytes(7).toString('hex')}`)).toString();
const amount = (): string => `${Math.random() < 0.5 ? '-' : ''}${randomBytes(6).readUIntBE(0, 6)}.${String(randomBytes(4).readUInt32BE(0)).padStart(10, '0')}`;

async function setup(t: ExecutionContext, targetEngine: Engine): Promise<Setup> {
  const sourceUrl = await freshMysqlDatabase(t, 'cdc_src');
  return createPlannedTables({
    sourceUrl,
    targetUrl: await freshDatabase(t, targetEngine, 'cdc_tgt'),
    sourceDdl: SCHEMA,
    targetDdl: TARGET_SCHEMA[targetEngine],
    // seq_1_to_N: MariaDB's sequence engine.
    seedSql: `INSERT INTO items SELECT i, CONCAT('seed ', i), IF(i % 5 = 0, NULL, i), i * 1.0000000001, TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL i SECOND,
        JSON_OBJECT('i', i, 'big', 12345678901234567890), IF(i % 3 = 0, UNHEX(MD5(i)), NULL), 18446744073709551615 - i
      FROM (SELECT seq AS i FROM seq_1_to_${SEED_ROWS}) g`,
    sourceSchema: databaseOf(sourceUrl),
    method: 'binlog',
  });
}

/** One operation of the writer, autocommitted or a few in one transaction: inserts, updates (keys too), deletes. */
async function operate(client: mysql.Connection, rows: LiveRows): Promise<void> {
  const roll = Math.random();
  if (roll < 0.3) {
    const id = rows.newId();
    await client.query('INSERT INTO items VALUES (?, ?, ?, ?, NOW(6), ?, ?, ?)',
      [id, tricky(id), id % 7 === 0 ? null : id, amount(), JSON.stringify({ id, s: tricky(id), big: '18446744073709551615' }), id % 3 === 0 ? randomBytes(20) : null, bigUnsigned()]);
    rows.inserted(id);
  } else if (roll < 0.55) {
    await client.query('UPDATE items SET val = ?, n = n + 1, amount = ?, ts = NOW(6), big = ? WHERE id = ?', [tricky(rows.operations), amount(), bigUnsigned(), rows.pick()]);
  } else if (roll < 0.65) {
    // Several rows in one source transaction.
    await client.query('START TRANSACTION');
    await client.query('UPDATE items SET bin = ? WHERE id = ?', [randomBytes(8), rows.pick()]);
    await client.query('UPDATE items SET doc = JSON_SET(COALESCE(doc, JSON_OBJECT()), \'$.t\', ?) WHERE id = ?', [rows.operations, rows.pick()]);
    await client.query('COMMIT');
  } else if (roll < 0.82) {
    const from = rows.pick();
    const to = rows.newId();
    const [result] = await client.query('UPDATE items SET id = ?, val = CONCAT(val, \'+k\') WHERE id = ?', [to, from]);
    if ((result as { affectedRows?: number }).affectedRows) rows.moved(from, to);
  } else {
    const id = rows.pick();
    await client.query('DELETE FROM items WHERE id = ?', [id]);
    rows.deleted(id);
  }
}

/** Two connections writing at about `perSecond` operations a second in total, autocommitted or a few in one transaction. */
const startWriter = (url: string, perSecond: number): Promise<Writer> => startPacedWriter({ connect: () => connect(url), close: (c) => c.end(), perSecond, operate });

/** The initial copy: every row as of the snapshot, read in its transaction, written through the capture's own applier. */
async function copyUnderSnapshot(connection: mysql.Connection, target: SqlSession, table: CaptureTable): Promise<number> {
  const columns = table.columns.map((c) => c.source);
  const [rows] = await connection.query({ sql: `SELECT ${columns.map((c) => `\`${c}\``).join(', ')} FROM items`, rowsAsArray: true });
  const relation: CapturedRelation = { schema: table.sourceSchema, name: table.sourceTable, columns: columns.map((name) => ({ name })) };
  return applyAsInserts(target, table, relation, rows as CapturedValue[][]);
}

interface LagSummary { samples: number; bytes: { median: number; max: number }; applyDelay: { median: number; max: number }; maxEventsQueued: number }

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Samples lag every 250 ms until stopped: median and worst (the first samples include the backlog of the copy). */
function sampleLag(follower: () => BinlogFollower | undefined, sourceUrl: string): { stop(): Promise<LagSummary> } {
  const bytes: number[] = [];
  const delays: number[] = [];
  let maxEventsQueued = 0;
  const sampler = samplePeriodically(() => connect(sourceUrl), (client) => client.end(), async (client) => {
    const lag = await follower()?.lag(client).catch(() => undefined);
    if (lag) {
      bytes.push(lag.bytes);
      delays.push(lag.lastApplyDelaySeconds ?? 0);
      maxEventsQueued = Math.max(maxEventsQueued, lag.eventsQueued);
    }
  });
  return {
    async stop() {
      await sampler.stop();
      return { samples: bytes.length, bytes: { median: median(bytes), max: Math.max(0, ...bytes) }, applyDelay: { median: median(delays), max: Math.max(0, ...delays) }, maxEventsQueued };
    },
  };
}

const describeLag = (lag: LagSummary): string => `${lag.samples} lag samples: binlog bytes behind median ${lag.bytes.median}, max ${lag.bytes.max}; `
  + `apply delay (source commit, to the second, to target commit) median ${lag.applyDelay.median.toFixed(2)} s, max ${lag.applyDelay.max.toFixed(2)} s; at most ${lag.maxEventsQueued} events queued`;

/** Waits for the follower to reach the server's binlog position once the writer stopped; then the target must equal the source. */
async function catchUpToSource(t: ExecutionContext, setup: Setup, follower: BinlogFollower, writer: Writer): Promise<void> {
  await catchUpAndCompare(t, setup, writer, async () => {
    const client = await connect(setup.source.url);
    const stoppedAt = await currentBinlogPosition(client);
    const began = Date.now();
    await follower.waitForPosition(stoppedAt, 60_000);
    const catchUpMs = Date.now() - began;
    const lag = await follower.lag(client);
    await client.end();
    const progress = follower.progress();
    return `applier (last run, from ${formatBinlogPosition(progress.resumedFrom)}): ${progress.transactions} transactions, ${progress.changes} changes (${progress.keyMoves} key moves); `
      + `caught up to ${formatBinlogPosition(stoppedAt)} ${catchUpMs} ms after the writer stopped; lag then: ${lag.bytes} bytes, `
      + `${lag.secondsSinceLastAppliedCommit?.toFixed(1) ?? '-'} s since the last applied commit, last apply delay ${lag.lastApplyDelaySeconds?.toFixed(3) ?? '-'} s`;
  }, EXAMPLE_WIDTH);
}

/** The writer running, the snapshot and its position taken, the copy done under it. */
async function startCapture(t: ExecutionContext, targetEngine: Engine): Promise<{ setup: Setup; start: BinlogPosition; writer: Writer }> {
  const prepared = await setup(t, targetEngine);
  const writer = await startWriter(prepared.source.url, 400);
  await sleep(300);
  const snapshot = await openBinlogSnapshot(prepared.source, [{ schema: databaseOf(prepared.source.url), name: 'items', key: ['id'] }]);
  const target = await openSession(prepared.targetUrl, { readOnly: false });
  try {
    // Writes go on meanwhile: the copy must see none after the position.
    await sleep(300);
    const copied = await copyUnderSnapshot(snapshot.connection, target, prepared.table);
    t.log(`snapshot at ${formatBinlogPosition(snapshot.position)} (${snapshot.method}); copied ${copied} rows under it`);
  } finally {
    await snapshot.release();
    await target.close();
  }
  return { setup: prepared, start: snapshot.position, writer };
}

for (const engine of ENGINES) {
  test(`binlog changes made during and after the snapshot copy reach the ${engine} target: 0 missing, stale or undeleted`, async (t) => {
    const uid = randomUUID();
    const { setup: prepared, start, writer } = await startCapture(t, engine);
    const target = await openSession(prepared.targetUrl, { readOnly: false });
    t.teardown(() => target.close());
    const follower = await followBinlog({ source: prepared.source, target, uid, tables: [prepared.table], start });
    t.teardown(() => follower.stop());
    const sampler = sampleLag(() => follower, prepared.source.url);
    await sleep(4000);
    t.log(`while streaming: ${describeLag(await sampler.stop())}`);
    await catchUpToSource(t, prepared, follower, writer);
    t.true(follower.progress().keyMoves > 0, 'key updates were applied');
    await follower.stop();
    await follower.ended;
  });

  test(`a binlog applier killed several times resumes from the position its target recorded (${engine} target): 0 lost`, async (t) => {
    const uid = randomUUID();
    const { setup: prepared, start, writer } = await startCapture(t, engine);
    const { source, table, targetUrl } = prepared;
    let current: BinlogFollower | undefined;
    const sampler = sampleLag(() => current, source.url);
    const admin = await connect(source.url);
    t.teardown(() => admin.end());
    const kills = await killRepeatedly(t, {
      targetUrl,
      follow: async (target) => {
        current = await followBinlog({ source, target, uid, tables: [table], start });
        return current;
      },
      // The server ends the binlog connection under it.
      killSourceConnection: async (follower) => {
        await admin.query(`KILL ${String(follower.sourceConnectionId)}`);
      },
    });
    const target = await openSession(targetUrl, { readOnly: false });
    t.teardown(() => target.close());
    const last = await followBinlog({ source, target, uid, tables: [table], start });
    current = last;
    t.teardown(() => last.stop());
    await sleep(1000);
    t.log(`kills: ${JSON.stringify(kills)}; ${describeLag(await sampler.stop())}`);
    await catchUpToSource(t, prepared, current, writer);
    await current.stop();
  });
}
