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
import { planTableCopy } from '../../src/engine/copy/planner.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { currentBinlogPosition, openBinlogSnapshot, type CaptureSource } from '../../src/engine/db/mysql/binlog-capture.ts';
import { formatBinlogPosition, type BinlogPosition } from '../../src/engine/db/mysql/binlog-position.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import { introspectTable } from '../../src/engine/schema/introspect.ts';
import { valueMapper } from '../../src/engine/schema/typemap.ts';
import { captureTableFromPlan, ChangeApplier, type CaptureTable, type CapturedRelation, type CapturedValue } from '../../src/engine/sync/cdc-apply.ts';
import { followBinlog, type BinlogFollower } from '../../src/engine/sync/cdc-follow-mysql.ts';
import { databaseOf, freshDatabase, freshMysqlDatabase } from '../support/databases.ts';

const SCHEMA = `CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, amount decimal(30,10), ts datetime(6), doc json, bin blob, big bigint unsigned)
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
const TARGET_SCHEMA: Record<Engine, string> = {
  mysql: SCHEMA,
  postgres: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, amount numeric(30,10), ts timestamp(6), doc json, bin bytea, big numeric(20,0))',
};
const SEED_ROWS = 2000;
const ENGINES: Engine[] = ['postgres', 'mysql'];

const connect = (url: string): Promise<mysql.Connection> => connectMysql(url, { readOnly: false });
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Text with what a careless encoder would break: quotes, backslashes, tabs, newlines, non-ASCII. */
const tricky = (i: number): string => `v${i} 'q' \\b\t"d"\nü€${randomBytes(3).toString('hex')}`;
/** Beyond 2^53 (and 2^63): exact only as text. */
const bigUnsigned = (): string => (2n ** 63n + BigInt(`0x${randomBytes(7).toString('hex')}`)).toString();
const amount = (): string => `${Math.random() < 0.5 ? '-' : ''}${randomBytes(6).readUIntBE(0, 6)}.${String(randomBytes(4).readUInt32BE(0)).padStart(10, '0')}`;

interface Setup { source: CaptureSource; targetUrl: string; table: CaptureTable }

async function setup(t: ExecutionContext, targetEngine: Engine): Promise<Setup> {
  const sourceUrl = await freshMysqlDatabase(t, 'cdc_src');
  const targetUrl = await freshDatabase(t, targetEngine, 'cdc_tgt');
  const source = await openSession(sourceUrl, { readOnly: false });
  const target = await openSession(targetUrl, { readOnly: false });
  try {
    await source.query(SCHEMA);
    await target.query(TARGET_SCHEMA[targetEngine]);
    // seq_1_to_N: MariaDB's sequence engine.
    await source.query(`INSERT INTO items SELECT i, CONCAT('seed ', i), IF(i % 5 = 0, NULL, i), i * 1.0000000001, TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL i SECOND,
        JSON_OBJECT('i', i, 'big', 12345678901234567890), IF(i % 3 = 0, UNHEX(MD5(i)), NULL), 18446744073709551615 - i
      FROM (SELECT seq AS i FROM seq_1_to_${SEED_ROWS}) g`);
    const [sourceInfo, targetInfo] = [await introspectTable(source, 'items'), await introspectTable(target, 'items')];
    if (!sourceInfo || !targetInfo) throw new Error('tables not created');
    const outcome = planTableCopy({ spec: { name: 'items' }, source: sourceInfo, target: targetInfo, conflictPolicy: 'upsert', mapValue: valueMapper() });
    if (!outcome.plan) throw new Error(outcome.errors.join('; '));
    const table = captureTableFromPlan(outcome.plan, databaseOf(sourceUrl), 'binlog');
    if ('error' in table) throw new Error(table.error);
    return { source: { url: sourceUrl }, targetUrl, table };
  } finally {
    await source.close();
    await target.close();
  }
}

interface Writer { stop(): Promise<{ operations: number; seconds: number }> }

/** Two connections writing at about `perSecond` operations a second in total, autocommitted or a few in one transaction. */
async function startWriter(url: string, perSecond: number): Promise<Writer> {
  const clients = await Promise.all([connect(url), connect(url)]);
  const live: number[] = Array.from({ length: SEED_ROWS }, (_, i) => i + 1);
  let nextId = 1_000_000;
  let operations = 0;
  let running = true;
  const began = Date.now();
  const pick = (): number => live[Math.floor(Math.random() * live.length)] ?? 1;
  const loop = async (client: mysql.Connection): Promise<void> => {
    while (running) {
      const roll = Math.random();
      if (roll < 0.3) {
        const id = nextId++;
        await client.query('INSERT INTO items VALUES (?, ?, ?, ?, NOW(6), ?, ?, ?)',
          [id, tricky(id), id % 7 === 0 ? null : id, amount(), JSON.stringify({ id, s: tricky(id), big: '18446744073709551615' }), id % 3 === 0 ? randomBytes(20) : null, bigUnsigned()]);
        live.push(id);
      } else if (roll < 0.55) {
        await client.query('UPDATE items SET val = ?, n = n + 1, amount = ?, ts = NOW(6), big = ? WHERE id = ?', [tricky(operations), amount(), bigUnsigned(), pick()]);
      } else if (roll < 0.65) {
        // Several rows in one source transaction.
        await client.query('START TRANSACTION');
        await client.query('UPDATE items SET bin = ? WHERE id = ?', [randomBytes(8), pick()]);
        await client.query('UPDATE items SET doc = JSON_SET(COALESCE(doc, JSON_OBJECT()), \'$.t\', ?) WHERE id = ?', [operations, pick()]);
        await client.query('COMMIT');
      } else if (roll < 0.82) {
        const from = pick();
        const to = nextId++;
        const [result] = await client.query('UPDATE items SET id = ?, val = CONCAT(val, \'+k\') WHERE id = ?', [to, from]);
        if ((result as { affectedRows?: number }).affectedRows) {
          live.splice(live.indexOf(from), 1);
          live.push(to);
        }
      } else {
        const id = pick();
        await client.query('DELETE FROM items WHERE id = ?', [id]);
        const at = live.indexOf(id);
        if (at >= 0) live.splice(at, 1);
      }
      operations++;
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

/** The initial copy: every row as of the snapshot, read in its transaction, written through the capture's own applier. */
async function copyUnderSnapshot(connection: mysql.Connection, target: SqlSession, table: CaptureTable): Promise<number> {
  const columns = table.columns.map((c) => c.source);
  const [rows] = await connection.query({ sql: `SELECT ${columns.map((c) => `\`${c}\``).join(', ')} FROM items`, rowsAsArray: true });
  const relation: CapturedRelation = { schema: table.sourceSchema, name: table.sourceTable, columns: columns.map((name) => ({ name })) };
  const applier = new ChangeApplier(target, [table]);
  await target.query(target.dialect.beginStatement);
  const list = rows as CapturedValue[][];
  for (const row of list) await applier.apply({ kind: 'insert', relation, row });
  await target.query('COMMIT');
  return list.length;
}

interface Comparison { rows: number; missing: number; stale: number; undeleted: number; examples: string[] }

/** Equal values read equal: bytes as hex, fractional seconds without trailing zeros (MySQL pads them). */
function normalized(value: string | Buffer | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return `bytes ${value.toString('hex')}`;
  // PostgreSQL's bytea as the session reads it.
  if (/^\\x[0-9a-f]*$/.test(value)) return `bytes ${value.slice(2)}`;
  return /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(value) ? value.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '') : value;
}

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
    if (other !== row && outcome.examples.length < 5) outcome.examples.push(`id ${id}: source ${row.slice(0, 160)} target ${other?.slice(0, 160) ?? 'missing'}`);
  }
  for (const id of target.keys()) {
    if (!source.has(id)) {
      outcome.undeleted++;
      if (outcome.examples.length < 5) outcome.examples.push(`id ${id}: deleted on the source, still on the target`);
    }
  }
  return outcome;
}

interface LagSummary { samples: number; bytes: { median: number; max: number }; applyDelay: { median: number; max: number }; maxEventsQueued: number }

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Samples lag every 250 ms until stopped: median and worst (the first samples include the backlog of the copy). */
function sampleLag(follower: () => BinlogFollower | undefined, sourceUrl: string): { stop(): Promise<LagSummary> } {
  const state = { running: true };
  const bytes: number[] = [];
  const delays: number[] = [];
  let maxEventsQueued = 0;
  const done = (async () => {
    const client = await connect(sourceUrl);
    while (state.running) {
      const lag = await follower()?.lag(client).catch(() => undefined);
      if (lag) {
        bytes.push(lag.bytes);
        delays.push(lag.lastApplyDelaySeconds ?? 0);
        maxEventsQueued = Math.max(maxEventsQueued, lag.eventsQueued);
      }
      await sleep(250);
    }
    await client.end();
  })();
  return {
    async stop() {
      state.running = false;
      await done;
      return { samples: bytes.length, bytes: { median: median(bytes), max: Math.max(0, ...bytes) }, applyDelay: { median: median(delays), max: Math.max(0, ...delays) }, maxEventsQueued };
    },
  };
}

const describeLag = (lag: LagSummary): string => `${lag.samples} lag samples: binlog bytes behind median ${lag.bytes.median}, max ${lag.bytes.max}; `
  + `apply delay (source commit, to the second, to target commit) median ${lag.applyDelay.median.toFixed(2)} s, max ${lag.applyDelay.max.toFixed(2)} s; at most ${lag.maxEventsQueued} events queued`;

async function catchUpAndCompare(t: ExecutionContext, setup: Setup, follower: BinlogFollower, writer: Writer): Promise<void> {
  const written = await writer.stop();
  const client = await connect(setup.source.url);
  const stoppedAt = await currentBinlogPosition(client);
  const began = Date.now();
  await follower.waitForPosition(stoppedAt, 60_000);
  const catchUpMs = Date.now() - began;
  const lag = await follower.lag(client);
  await client.end();
  const progress = follower.progress();
  const comparison = await compare(setup);
  t.log(`writer: ${written.operations} operations in ${written.seconds.toFixed(1)} s (${Math.round(written.operations / written.seconds)}/s); `
    + `applier (last run, from ${formatBinlogPosition(progress.resumedFrom)}): ${progress.transactions} transactions, ${progress.changes} changes (${progress.keyMoves} key moves); `
    + `caught up to ${formatBinlogPosition(stoppedAt)} ${catchUpMs} ms after the writer stopped; lag then: ${lag.bytes} bytes, `
    + `${lag.secondsSinceLastAppliedCommit?.toFixed(1) ?? '-'} s since the last applied commit, last apply delay ${lag.lastApplyDelaySeconds?.toFixed(3) ?? '-'} s`);
  t.log(`compared ${comparison.rows} rows: ${comparison.missing} missing, ${comparison.stale} stale, ${comparison.undeleted} undeleted`);
  t.true(written.operations > 500, 'the writer wrote throughout');
  t.deepEqual({ missing: comparison.missing, stale: comparison.stale, undeleted: comparison.undeleted, examples: comparison.examples },
    { missing: 0, stale: 0, undeleted: 0, examples: [] });
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
    await catchUpAndCompare(t, prepared, follower, writer);
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
    const kills = { stopped: 0, binlogConnectionKilled: 0, targetLost: 0 };
    for (let round = 0; round < 6; round++) {
      const target = await openSession(targetUrl, { readOnly: false });
      current = await followBinlog({ source, target, uid, tables: [table], start });
      await sleep(300 + Math.random() * 600);
      if (round % 3 === 0) {
        await current.stop();
        kills.stopped++;
      } else if (round % 3 === 1) {
        // The server ends the binlog connection under it, as when the source restarts or the network drops.
        await admin.query(`KILL ${String(current.sourceConnectionId)}`);
        await t.throwsAsync(current.ended);
        kills.binlogConnectionKilled++;
      } else {
        // The target connection goes, mid-transaction or between: what it had not committed is lost with it.
        await target.close();
        await t.throwsAsync(current.ended);
        kills.targetLost++;
      }
      await current.stop();
      await target.close().catch(() => undefined);
    }
    const target = await openSession(targetUrl, { readOnly: false });
    t.teardown(() => target.close());
    const last = await followBinlog({ source, target, uid, tables: [table], start });
    current = last;
    t.teardown(() => last.stop());
    await sleep(1000);
    t.log(`kills: ${JSON.stringify(kills)}; ${describeLag(await sampler.stop())}`);
    await catchUpAndCompare(t, prepared, current, writer);
    await current.stop();
  });
}
