// The copy step of a ChangeCapture migration (sync/capture-copy.ts) on real servers, with a writer
// inserting, updating (keys too) and deleting on the source throughout: the copy reads the
// capture's snapshot (PostgreSQL: the slot's exported snapshot in every session; MariaDB: the one
// consistent-snapshot connection, its binlog position recorded on the target), and the follower
// started from the recorded start brings the target to the source: 0 missing, stale or undeleted.
// A copy killed mid-way (and a capture left by a killed pod) starts over cleanly; missing
// prerequisites refuse it before anything is created; the source's tables are never written.
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { writeCheckpoint } from '../../src/engine/copy/checkpoint.ts';
import type { SourceSnapshot } from '../../src/engine/copy/copy-shard.ts';
import { copyTables } from '../../src/engine/copy/copy-tables.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { currentBinlogPosition, openBinlogSnapshot } from '../../src/engine/db/mysql/binlog-capture.ts';
import { formatBinlogPosition } from '../../src/engine/db/mysql/binlog-position.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import { captureNames, currentLsn, dropCapture, prepareCapture } from '../../src/engine/db/postgres/change-capture.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import { planMigration } from '../../src/engine/pipeline/plan.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, planStep, PlanRefusedError, type CopyStepResult, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { mysqlSourceSnapshot, recordedBinlogStart } from '../../src/engine/db/mysql/capture-driver.ts';
import { captureScope } from '../../src/engine/sync/capture-copy.ts';
import type { CaptureTable } from '../../src/engine/sync/cdc-apply.ts';
import { binlogCheckpointId, followBinlog } from '../../src/engine/sync/cdc-follow-mysql.ts';
import { followCapture } from '../../src/engine/sync/cdc-follow.ts';
import {
  catchUpAndCompare, createPlannedTables, SEED_ROWS, sleep, startItemWriter, tricky, type ItemStatements, type Setup, type Writer,
} from '../support/cdc-harness.ts';
import { databaseOf, freshDatabase, freshTargetDatabase, testAccount } from '../support/databases.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';
import { execSql, scalar } from '../support/sql.ts';

const PG_SCHEMA = 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, ts timestamptz, bin bytea)';
const MYSQL_SCHEMA = 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, ts datetime(6), bin longblob) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4';
const SCHEMA: Record<Engine, string> = { postgres: PG_SCHEMA, mysql: MYSQL_SCHEMA };
/** The target table for a source engine: MySQL's datetime is PostgreSQL's timestamp without time zone. */
const targetSchema = (from: Engine, to: Engine): string => (from === 'mysql' && to === 'postgres' ? PG_SCHEMA.replace('timestamptz', 'timestamp(6)') : SCHEMA[to]);
/** Rows seeded: the writer changes the first SEED_ROWS; the rest make the copy take long enough to overlap it. */
const SEED_TOTAL = 10 * SEED_ROWS;
const SEED: Record<Engine, string> = {
  postgres: `INSERT INTO items SELECT g, 'seed ' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE g END,
    timestamptz '2024-01-01 00:00:00.123456+00' + g * interval '1 second', CASE WHEN g % 3 = 0 THEN decode(md5(g::text), 'hex') END
    FROM generate_series(1, ${String(SEED_TOTAL)}) g`,
  // seq_1_to_N: MariaDB's sequence engine.
  mysql: `INSERT INTO items SELECT seq, CONCAT('seed ', seq), IF(seq % 5 = 0, NULL, seq), TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL seq SECOND,
    IF(seq % 3 = 0, UNHEX(MD5(seq)), NULL) FROM seq_1_to_${String(SEED_TOTAL)}`,
};
const EXAMPLE_WIDTH = 100;
/** Small batches: the copy commits many times while the writer writes. */
const BATCH_SIZE = 200;

function manifest(from: Engine, to: Engine, uid: string, tables: { name: string; key?: string[] }[] = [{ name: 'items' }]): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'capture', namespace: 'test', uid },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      tables, strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' }, batchSize: BATCH_SIZE, parallelism: 2 },
    },
  };
}

/** The source and target URLs: a target on the source's server is reached with an account of its own. */
async function databases(t: ExecutionContext, from: Engine, to: Engine): Promise<{ source: string; target: string }> {
  const source = await freshDatabase(t, from, 'cc_src');
  return { source, target: from === to ? await freshTargetDatabase(t, to, 'cc_tgt') : await freshDatabase(t, to, 'cc_tgt') };
}

async function setup(t: ExecutionContext, from: Engine, to: Engine): Promise<{ prepared: Setup; context: StepContext; uid: string }> {
  const urls = await databases(t, from, to);
  const prepared = await createPlannedTables({
    sourceUrl: urls.source, targetUrl: urls.target, sourceDdl: SCHEMA[from], targetDdl: targetSchema(from, to), seedSql: SEED[from],
    sourceSchema: from === 'postgres' ? 'public' : databaseOf(urls.source), method: from === 'postgres' ? 'logical-decoding' : 'binlog',
  });
  const uid = randomUUID();
  // Registered after the databases: teardowns run last-first, so the slot goes before its database (which it would keep from being dropped).
  if (from === 'postgres') t.teardown(async () => { await dropCapture({ url: urls.source }, uid); });
  return { prepared, uid, context: { source: { url: urls.source }, target: { url: urls.target }, settings: engineSettings(manifest(from, to, uid)) } };
}

/** The writer's inserts and updates (NOW(6) is deterministic within a statement, as the binlog needs). */
const ITEM_STATEMENTS: Record<Engine, ItemStatements> = {
  postgres: {
    insert: (exec, id) => exec('INSERT INTO items VALUES ($1, $2, $3, clock_timestamp(), $4)', [id, tricky(id), id % 7 === 0 ? null : id, id % 3 === 0 ? Buffer.from(tricky(id)) : null]),
    update: (exec, id, operation) => exec('UPDATE items SET val = $2, n = n + 1, ts = clock_timestamp() WHERE id = $1', [id, tricky(operation)]),
  },
  mysql: {
    insert: (exec, id) => exec('INSERT INTO items VALUES (?, ?, ?, NOW(6), ?)', [id, tricky(id), id % 7 === 0 ? null : id, id % 3 === 0 ? Buffer.from(tricky(id)) : null]),
    update: (exec, id, operation) => exec('UPDATE items SET val = ?, n = n + 1, ts = NOW(6) WHERE id = ?', [tricky(operation), id]),
  },
};

/** The writer, stopped when the test ends if the test did not stop it (stopping twice would end its connections twice). */
async function startWriter(t: ExecutionContext, engine: Engine, url: string): Promise<Writer> {
  const writer = await startItemWriter(engine, url, 300, ITEM_STATEMENTS[engine]);
  let stopped: ReturnType<Writer['stop']> | undefined;
  const once: Writer = { stop: () => (stopped ??= writer.stop()) };
  t.teardown(async () => { await once.stop().catch(() => undefined); });
  return once;
}

async function openTarget(t: ExecutionContext, url: string): Promise<SqlSession> {
  const session = await openSession(url, { readOnly: false });
  t.teardown(() => session.close());
  return session;
}

/** The tables the follower applies, as the copy step planned them. */
async function capturedTables(context: StepContext): Promise<CaptureTable[]> {
  const source = await openSession(context.source.url, { readOnly: true });
  const target = await openSession(context.target.url, { readOnly: true });
  try {
    const plan = await planMigration(source, target, context.settings);
    return captureScope(plan, context.settings.sourceEngine).tables;
  } finally {
    await source.close();
    await target.close();
  }
}

/**
 * Follows the capture from where the copy left it for a while with the writer still running, then
 * stops the writer, waits for the source's current position and compares source and target.
 */
async function followAndCompare(t: ExecutionContext, prepared: Setup, context: StepContext, uid: string, writer: Writer): Promise<void> {
  const tables = await capturedTables(context);
  const target = await openSession(prepared.targetUrl, { readOnly: false });
  t.teardown(() => target.close());
  const source = { url: prepared.source.url };
  if (context.settings.sourceEngine === 'postgres') {
    const follower = await followCapture({ source, target, uid, tables });
    t.teardown(() => follower.stop());
    await sleep(2000);
    await catchUpAndCompare(t, prepared, writer, async () => {
      const client = await connectPostgres(source.url, { readOnly: true });
      const stoppedAt = await currentLsn(client);
      await client.end();
      await follower.waitForLsn(stoppedAt, 60_000);
      const progress = follower.progress();
      return `follower from the slot: ${progress.transactions} transactions, ${progress.changes} changes (${progress.keyMoves} key moves)`;
    }, EXAMPLE_WIDTH);
  } else {
    const start = await recordedBinlogStart(target, uid);
    if (!start) throw new Error('the copy recorded no binlog position');
    const follower = await followBinlog({ source, target, uid, tables, start });
    t.teardown(() => follower.stop());
    await sleep(2000);
    await catchUpAndCompare(t, prepared, writer, async () => {
      const client = await connectMysql(source.url, { readOnly: true });
      const stoppedAt = await currentBinlogPosition(client);
      await client.end();
      await follower.waitForPosition(stoppedAt, 60_000);
      const progress = follower.progress();
      return `follower from ${formatBinlogPosition(progress.resumedFrom)}: ${progress.transactions} transactions, ${progress.changes} changes (${progress.keyMoves} key moves)`;
    }, EXAMPLE_WIDTH);
  }
}

/** The capture objects on the PostgreSQL source server for this migration's database: [slots, publications]. */
async function captureObjects(sourceUrl: string): Promise<{ slots: string[]; publications: string[]; published: string[] }> {
  const database = databaseOf(sourceUrl);
  const slots = await scalar(sourceUrl, `SELECT coalesce(string_agg(slot_name, ',' ORDER BY slot_name), '') FROM pg_replication_slots WHERE database = '${database}'`);
  const publications = await scalar(sourceUrl, "SELECT coalesce(string_agg(pubname, ',' ORDER BY pubname), '') FROM pg_publication");
  const published = await scalar(sourceUrl, "SELECT coalesce(string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename), '') FROM pg_publication_tables");
  const list = (text: string): string[] => (text === '' ? [] : text.split(','));
  return { slots: list(slots), publications: list(publications), published: list(published) };
}

/** This migration's copy checkpoints on the target (0 when the table does not exist). */
async function checkpointRows(targetUrl: string, uid: string): Promise<number> {
  const count = await scalar(targetUrl, `SELECT count(*) FROM dataops_copy_checkpoint WHERE migration_uid LIKE '${uid}%'`).catch(() => '0');
  return Number(count);
}

const PAIRS: [Engine, Engine][] = [['postgres', 'mysql'], ['mysql', 'postgres']];

for (const [from, to] of PAIRS) {
  test.serial(`${from} → ${to}: the copy reads the capture's snapshot while a writer writes; the follower from the recorded start catches up: 0 lost`, async (t) => {
    const { prepared, context, uid } = await setup(t, from, to);
    const writer = await startWriter(t, from, prepared.source.url);
    await sleep(300);
    const copy = await copyStep(context);
    t.log(`copied ${copy.rowsThisRun} rows in batches of ${BATCH_SIZE}; warnings: ${copy.warnings.join(' | ') || '-'}`);
    t.true(copy.rowsThisRun > SEED_TOTAL - SEED_ROWS);
    t.is(copy.postCopy, 'ran');
    if (from === 'postgres') {
      const objects = await captureObjects(prepared.source.url);
      t.deepEqual(objects.slots, [captureNames(uid).slot], 'the slot is the follower\'s start');
      t.true(objects.publications.includes(captureNames(uid).publication));
    } else {
      t.truthy(await recordedBinlogStart(await openTarget(t, prepared.targetUrl), uid), 'the snapshot\'s binlog position is recorded on the target');
      t.true(copy.warnings.some((w) => w.includes('one connection')), 'the plan says the MySQL copy runs one table at a time');
    }
    // Run again: the copy is complete and its capture in place; nothing is copied twice, nothing dropped.
    const again = await copyStep(context);
    t.is(again.rowsThisRun, 0);
    await followAndCompare(t, prepared, context, uid, writer);
  });
}

for (const engine of ['postgres', 'mysql'] as const) {
  test.serial(`${engine} → ${engine}: a copy killed mid-way, and a capture left by a killed pod, start over cleanly: 0 lost`, async (t) => {
    const { prepared, context, uid } = await setup(t, engine, engine);
    const writer = await startWriter(t, engine, prepared.source.url);
    await sleep(300);
    const controller = new AbortController();
    let seen = 0;
    const killed = copyStep({ ...context, signal: controller.signal }, (tables) => {
      seen = tables.reduce((sum, table) => sum + table.rowsCopied, 0);
      if (seen >= 1000) controller.abort();
    });
    await t.throwsAsync(killed);
    t.true(seen >= 1000 && seen < SEED_TOTAL, `killed after ${String(seen)} rows`);
    t.true(Number(await scalar(prepared.targetUrl, 'SELECT count(*) FROM items')) > 0, 'a partial copy is left on the target');
    // What a pod killed outright leaves besides: its capture (PostgreSQL: a slot and publication), or a position recorded by an earlier attempt.
    if (engine === 'postgres') {
      t.deepEqual((await captureObjects(prepared.source.url)).slots, [], 'the failed copy dropped the slot it had created (it would retain WAL)');
      const left = await prepareCapture({ url: prepared.source.url }, uid, [{ schema: 'public', name: 'items', key: ['id'] }]);
      await left.releaseSnapshot();
      t.deepEqual((await captureObjects(prepared.source.url)).slots, [captureNames(uid).slot]);
    } else {
      await writeCheckpoint(await openTarget(t, prepared.targetUrl), binlogCheckpointId(uid), { lastKey: ['mysql-bin.000001:4'], rowsCopied: 0, done: false, boundaries: [] });
    }
    const copy: CopyStepResult = await copyStep(context);
    t.log(`the second attempt copied ${copy.rowsThisRun} rows; warnings: ${copy.warnings.join(' | ')}`);
    t.true(copy.warnings.some((w) => w.includes('discarded')), 'it says it started over');
    t.is(copy.tables[0]?.rowsCopied, copy.rowsThisRun, 'every row of the table was copied by this attempt');
    if (engine === 'mysql') t.not(formatBinlogPosition((await recordedBinlogStart(await openTarget(t, prepared.targetUrl), uid)) ?? { file: '', offset: 0 }), 'mysql-bin.000001:4');
    await followAndCompare(t, prepared, context, uid, writer);
  });
}

test.serial('postgres: missing capture prerequisites refuse the copy and the plan names them; no slot, publication or copied row', async (t) => {
  const urls = await databases(t, 'postgres', 'mysql');
  const account = await testAccount(t, 'postgres', { prefix: 'cc_norepl' });
  const ddl = [PG_SCHEMA, 'CREATE TABLE notes (id int PRIMARY KEY, body text)', 'ALTER TABLE notes REPLICA IDENTITY NOTHING', 'INSERT INTO items VALUES (1, \'a\', 1, now(), NULL)'];
  const targetDdl = [MYSQL_SCHEMA, 'CREATE TABLE notes (id int PRIMARY KEY, body text)'];
  const source = await openSession(urls.source, { readOnly: false });
  for (const statement of ddl) await source.query(statement);
  await source.close();
  const target = await openSession(urls.target, { readOnly: false });
  for (const statement of targetDdl) await target.query(statement);
  await target.close();
  // Owns the tables, but lacks REPLICATION and CREATE on the database.
  await account.grantOn(urls.source, [`ALTER TABLE items OWNER TO ${account.name}`, `ALTER TABLE notes OWNER TO ${account.name}`]);
  const uid = randomUUID();
  const context: StepContext = {
    source: { url: account.urlFor(urls.source) }, target: { url: urls.target },
    settings: engineSettings(manifest('postgres', 'mysql', uid, [{ name: 'items' }, { name: 'notes' }])),
  };
  const error = await t.throwsAsync(copyStep(context), { instanceOf: PlanRefusedError });
  t.log(error.message);
  t.regex(error.message, /lacks the REPLICATION attribute/);
  t.regex(error.message, /may not CREATE in the source database/);
  t.regex(error.message, /notes has no replica identity/);
  const planned = await planStep(context);
  t.true(planned.plan.errors.some((e) => e.includes('REPLICATION')), 'dmctl plan reports it too');
  t.deepEqual(await captureObjects(urls.source), { slots: [], publications: [], published: [] }, 'nothing was created on the source');
  t.is(await scalar(urls.target, 'SELECT count(*) FROM items'), '0');
  t.is(await checkpointRows(urls.target, uid), 0, 'nothing was recorded on the target');
});

test.serial('mysql: missing capture prerequisites refuse the copy and the plan names them; nothing copied', async (t) => {
  const urls = await databases(t, 'mysql', 'postgres');
  const account = await testAccount(t, 'mysql', { prefix: 'cc_norepl' });
  const source = await openSession(urls.source, { readOnly: false });
  // A key the copy can use, but no primary key: the binlog follower needs one.
  for (const statement of [MYSQL_SCHEMA, 'CREATE TABLE notes (id int NOT NULL, body text, UNIQUE KEY (id)) ENGINE=InnoDB', "INSERT INTO items VALUES (1, 'a', 1, NOW(6), NULL)"]) await source.query(statement);
  await source.close();
  const target = await openSession(urls.target, { readOnly: false });
  for (const statement of [targetSchema('mysql', 'postgres'), 'CREATE TABLE notes (id int PRIMARY KEY, body text)']) await target.query(statement);
  await target.close();
  // `_` is a wildcard in a database-level grant: escaped, it names this database only.
  await account.grantOn(urls.source, [`GRANT SELECT ON \`${databaseOf(urls.source).replace(/[_%\\]/g, '\\$&')}\`.* TO ${account.grantee}`]);
  const uid = randomUUID();
  const context: StepContext = {
    source: { url: account.urlFor(urls.source) }, target: { url: urls.target },
    settings: engineSettings(manifest('mysql', 'postgres', uid, [{ name: 'items' }, { name: 'notes', key: ['id'] }])),
  };
  const before = await sourceFingerprint(urls.source);
  const error = await t.throwsAsync(copyStep(context), { instanceOf: PlanRefusedError });
  t.log(error.message);
  t.regex(error.message, /lacks REPLICATION SLAVE/);
  t.regex(error.message, /lacks REPLICATION CLIENT/);
  t.regex(error.message, /notes has no primary key/);
  const planned = await planStep(context);
  t.true(planned.plan.errors.some((e) => e.includes('REPLICATION SLAVE')), 'dmctl plan reports it too');
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(urls.source)), []);
  t.is(await scalar(urls.target, 'SELECT count(*) FROM items'), '0');
  t.is(await checkpointRows(urls.target, uid), 0, 'nothing was recorded on the target');
});

for (const [from, to] of PAIRS) {
  test.serial(`${from} → ${to}: the capture copy never writes the source: its tables and objects are unchanged${from === 'postgres' ? '; the slot and publication are all it adds' : ''}`, async (t) => {
    const { prepared, context, uid } = await setup(t, from, to);
    const before = await sourceFingerprint(prepared.source.url);
    const objectsBefore = from === 'postgres' ? await captureObjects(prepared.source.url) : undefined;
    const copy = await copyStep(context);
    t.is(copy.rowsThisRun, SEED_TOTAL);
    t.deepEqual(fingerprintChanges(before, await sourceFingerprint(prepared.source.url)), [], 'tables, rows and objects as before');
    if (objectsBefore) {
      t.deepEqual(objectsBefore, { slots: [], publications: [], published: [] });
      const names = captureNames(uid);
      t.deepEqual(await captureObjects(prepared.source.url), { slots: [names.slot], publications: [names.publication], published: ['public.items'] });
    }
  });
}

for (const [from, to] of [['postgres', 'postgres'], ...PAIRS] as [Engine, Engine][]) {
  test.serial(`${from} → ${to}: every shard reads the capture's snapshot, not the rows as they are when it reads them`, async (t) => {
    const { prepared, context, uid } = await setup(t, from, to);
    const sourceSession = await openSession(prepared.source.url, { readOnly: true });
    t.teardown(() => sourceSession.close());
    const targetSession = await openTarget(t, prepared.targetUrl);
    const planned = (await planMigration(sourceSession, targetSession, context.settings)).tables[0]?.copy;
    if (!planned) throw new Error('no copy plan');
    const spec = [{ schema: from === 'postgres' ? 'public' : databaseOf(prepared.source.url), name: 'items', key: ['id'] }];
    const changes = from === 'postgres'
      ? ['DELETE FROM items WHERE id <= 10', "UPDATE items SET val = 'after' WHERE id = 11", "INSERT INTO items VALUES (99999999, 'after', 1, now(), NULL)"]
      : ['DELETE FROM items WHERE id <= 10', "UPDATE items SET val = 'after' WHERE id = 11", "INSERT INTO items VALUES (99999999, 'after', 1, NOW(6), NULL)"];
    const copyIn = async (snapshot: SourceSnapshot): Promise<number> => (await copyTables({
      source: { url: prepared.source.url }, target: { url: prepared.targetUrl }, sourceSession, targetSession, migration: uid,
      // Sharded (four ranges, two at a time on PostgreSQL): each shard's session must import the snapshot.
      tables: [{ plan: planned, estimatedRows: SEED_TOTAL, keyType: 'bigint' }], batchSize: BATCH_SIZE, parallelism: 2, shardsPerTable: 4, minRowsToShard: 1, snapshot,
    })).rowsThisRun;
    let copied: number;
    if (from === 'postgres') {
      const capture = await prepareCapture({ url: prepared.source.url }, uid, spec);
      await execSql(prepared.source.url, changes);
      copied = await copyIn({ kind: 'exported', name: capture.snapshotName });
      await capture.releaseSnapshot();
    } else {
      const snapshot = await openBinlogSnapshot({ url: prepared.source.url }, spec);
      try {
        await execSql(prepared.source.url, changes);
        copied = await copyIn(mysqlSourceSnapshot(snapshot.connection));
      } finally {
        await snapshot.release();
      }
    }
    t.is(copied, SEED_TOTAL);
    t.is(await scalar(prepared.targetUrl, 'SELECT count(*) FROM items WHERE id <= 10'), '10', 'rows deleted after the snapshot are copied');
    t.is(await scalar(prepared.targetUrl, 'SELECT val FROM items WHERE id = 11'), 'seed 11', 'as they were at the snapshot');
    t.is(await scalar(prepared.targetUrl, 'SELECT count(*) FROM items WHERE id = 99999999'), '0', 'rows inserted after it are not');
  });
}
