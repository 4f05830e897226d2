// Adversarial cases against ChangeCapture's engine side (issue 16) on real servers, each failing
// if a guarantee breaks: a copy that starts over never empties rows the migration did not write;
// the source is never written (odd names, a where filter refused); nothing is lost through
// awkward transactions (key swaps, update-then-delete, TOAST left alone, a transaction larger than
// the batch, FK parent and child together); a forged capture position on the target is caught by
// the catch-up's default validation; the source password appears in no error.
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { writeCheckpoint } from '../../src/engine/copy/checkpoint.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { currentBinlogPosition } from '../../src/engine/db/mysql/binlog-capture.ts';
import { formatBinlogPosition } from '../../src/engine/db/mysql/binlog-position.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import { captureNames, dropCapture } from '../../src/engine/db/postgres/change-capture.ts';
import { catchupStep, captureSyncStep, releaseStep } from '../../src/engine/pipeline/capture-steps.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, planStep, PlanRefusedError, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { binlogCheckpointId } from '../../src/engine/sync/cdc-follow-mysql.ts';
import { captureCheckpointId } from '../../src/engine/sync/cdc-follow.ts';
import { sleep } from '../support/cdc-harness.ts';
import { databaseOf, freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';
import { limitConcurrency } from '../support/slots.ts';
import { execSql, scalar } from '../support/sql.ts';

const slot = limitConcurrency(2);
const ROWS = 20_000;

type Table = NonNullable<DataMigration['spec']['tables']>[number];

function manifest(engine: Engine, uid: string, tables: Table[], extra: Partial<DataMigration['spec']['strategy']> = {}): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'attack16', namespace: 'test', uid },
    spec: {
      source: { engine, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine, secretRef: { name: 't' } },
      tables, strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' }, batchSize: 200, parallelism: 2, ...extra },
    },
  };
}

async function databases(t: ExecutionContext, engine: Engine, sourceDdl: string[], targetDdl: string[]): Promise<{ source: string; target: string }> {
  const source = await freshDatabase(t, engine, 'a16_src');
  const target = await freshTargetDatabase(t, engine, 'a16_tgt');
  await execSql(source, sourceDdl);
  if (targetDdl.length > 0) await execSql(target, targetDdl);
  return { source, target };
}

function contextOf(t: ExecutionContext, engine: Engine, urls: { source: string; target: string }, tables: Table[], extra: Partial<DataMigration['spec']['strategy']> = {}): { context: StepContext; uid: string } {
  const uid = randomUUID();
  if (engine === 'postgres') t.teardown(async () => { await dropCapture({ url: urls.source }, uid).catch(() => undefined); });
  return { uid, context: { source: { url: urls.source }, target: { url: urls.target }, settings: engineSettings(manifest(engine, uid, tables, extra)) } };
}

/** Runs the sync step until `during` is done, then stops it as the cutover does (abort). */
async function syncWhile(context: StepContext, during: () => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const sync = captureSyncStep({ ...context, signal: controller.signal });
  const failed = sync.then(() => undefined, (error: unknown) => error);
  await sleep(1500);
  await during();
  await sleep(1500);
  controller.abort();
  const error = await failed;
  if (error !== undefined) throw error instanceof Error ? error : new Error('the sync step failed', { cause: error });
}

// (1) "A migration touches only what it made": a table that held the user's rows before the copy.
for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: a killed ChangeCapture copy into a pre-existing table with the user's rows never empties them on restart`, slot(async (t) => {
    const ddl = engine === 'postgres' ? 'CREATE TABLE items (id bigint PRIMARY KEY, val text)' : 'CREATE TABLE items (id bigint PRIMARY KEY, val text) ENGINE=InnoDB';
    const seed = engine === 'postgres'
      ? `INSERT INTO items SELECT g, 'seed ' || g FROM generate_series(1, ${String(ROWS)}) g`
      : `INSERT INTO items SELECT seq, CONCAT('seed ', seq) FROM seq_1_to_${String(ROWS)}`;
    const urls = await databases(t, engine, [ddl, seed], [ddl, "INSERT INTO items VALUES (900000001, 'the user''s own row')"]);
    const { context } = contextOf(t, engine, urls, [{ name: 'items' }], { conflictPolicy: 'Upsert' });
    const controller = new AbortController();
    await t.throwsAsync(copyStep({ ...context, signal: controller.signal }, (tables) => {
      if (tables.reduce((sum, table) => sum + table.rowsCopied, 0) >= 1000) controller.abort();
    }));
    const again = await copyStep(context).then(() => undefined, (error: unknown) => error);
    if (again !== undefined) {
      t.true(again instanceof PlanRefusedError, `refused, not failed: ${again instanceof Error ? again.message : 'not an Error'}`);
      t.regex((again as Error).message, /items/);
      t.log((again as Error).message);
    }
    t.is(await scalar(urls.target, 'SELECT val FROM items WHERE id = 900000001'), "the user's own row", 'the row the migration did not write is still there');
    if (engine === 'postgres') t.is(await scalar(urls.source, 'SELECT count(*) FROM pg_replication_slots WHERE database = current_database()'), '0', 'no slot left retaining WAL');
  }));
}

// (2) The source is never written; a filter the stream cannot apply is refused before anything is created.
test('postgres: a where filter on a ChangeCapture table is refused by plan and copy; nothing created on the source', slot(async (t) => {
  const urls = await databases(t, 'postgres', ['CREATE TABLE items (id bigint PRIMARY KEY, val text)', "INSERT INTO items VALUES (1, 'a'), (2, 'b')"], ['CREATE TABLE items (id bigint PRIMARY KEY, val text)']);
  const { context } = contextOf(t, 'postgres', urls, [{ name: 'items', where: 'id > 1' }]);
  const before = await sourceFingerprint(urls.source);
  const error = await t.throwsAsync(copyStep(context), { instanceOf: PlanRefusedError });
  t.regex(error.message, /where filter/);
  t.true((await planStep(context)).plan.errors.some((e) => e.includes('where filter')), 'dmctl plan says so too');
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(urls.source)), []);
  t.is(await scalar(urls.source, 'SELECT count(*) FROM pg_replication_slots WHERE database = current_database()'), '0');
  t.is(await scalar(urls.target, 'SELECT count(*) FROM items'), '0');
}));

const ODD = 'Wéird tåble ü'; // a double quote in a manifest's table name is not found by the planner (reported)
const LONG = `t${'x'.repeat(62)}`; // 63 bytes: PostgreSQL's longest name

// (2)+(3) Odd names through copy, sync, catch-up and release, with transactions that are hard to replay.
test('postgres: odd and 63-byte names, key swaps, update-then-delete, TOAST untouched, a transaction over the batch, FK pairs: 0 lost, source unchanged by every step', slot(async (t) => {
  const q = (name: string): string => `"${name.replaceAll('"', '""')}"`;
  const tables = [
    `CREATE TABLE ${q(ODD)} (id int PRIMARY KEY, big text, n int)`,
    `CREATE TABLE ${q(LONG)} (id int PRIMARY KEY, parent int, note text)`,
  ];
  const urls = await databases(t, 'postgres', [
    ...tables,
    // Incompressible big values: stored out of line (TOAST), left out of an update that does not change them.
    `INSERT INTO ${q(ODD)} SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i), g FROM generate_series(1, 50) g`,
    `INSERT INTO ${q(LONG)} SELECT g, g, 'n' || g FROM generate_series(1, 50) g`,
  ], tables);
  const { context, uid } = contextOf(t, 'postgres', urls, [{ name: ODD }, { name: LONG }]);
  const before = await sourceFingerprint(urls.source);
  await copyStep(context);
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(urls.source)), [], 'the copy wrote nothing on the source');
  await syncWhile(context, () => execSql(urls.source, [
    // Keys swapped in one transaction: 1 ↔ 2 through a temporary key.
    `BEGIN; UPDATE ${q(ODD)} SET id = -1 WHERE id = 1; UPDATE ${q(ODD)} SET id = 1 WHERE id = 2; UPDATE ${q(ODD)} SET id = 2 WHERE id = -1; COMMIT`,
    // Every key moved in one statement.
    `UPDATE ${q(LONG)} SET id = id + 1000`,
    // Updated, then deleted, in one transaction; inserted then deleted too.
    `BEGIN; UPDATE ${q(ODD)} SET n = -5 WHERE id = 5; DELETE FROM ${q(ODD)} WHERE id = 5; INSERT INTO ${q(ODD)} VALUES (1000, 'gone', 1); DELETE FROM ${q(ODD)} WHERE id = 1000; COMMIT`,
    // TOASTed column untouched (REPLICA IDENTITY DEFAULT: the stream says "unchanged"), NULL ↔ value.
    `UPDATE ${q(ODD)} SET n = NULL WHERE id BETWEEN 10 AND 20`,
    `UPDATE ${q(ODD)} SET n = 7 WHERE id = 10`,
    // One transaction far over the batch size, on both tables (parent and child together).
    `BEGIN; INSERT INTO ${q(ODD)} SELECT g, 'bulk', g FROM generate_series(2000, 7000) g; INSERT INTO ${q(LONG)} SELECT g, g, 'child' FROM generate_series(2000, 7000) g; COMMIT`,
  ]));
  // Behind the fence: one more transaction the catch-up must bring over.
  await execSql(urls.source, [`UPDATE ${q(ODD)} SET big = NULL WHERE id = 30`, `DELETE FROM ${q(LONG)} WHERE id = 1040`]);
  const fenced = await sourceFingerprint(urls.source);
  const caught = await catchupStep(context);
  t.log(`caught up: ${caught.transactions} transactions in ${caught.catchUpMs} ms`);
  t.true(caught.validation.passed, JSON.stringify(caught.validation).slice(0, 2000));
  t.is(await scalar(urls.target, `SELECT md5(string_agg(id || ':' || coalesce(md5(big), '-') || ':' || coalesce(n::text, '-'), ',' ORDER BY id)) FROM ${q(ODD)}`),
    await scalar(urls.source, `SELECT md5(string_agg(id || ':' || coalesce(md5(big), '-') || ':' || coalesce(n::text, '-'), ',' ORDER BY id)) FROM ${q(ODD)}`));
  const released = await releaseStep(context);
  t.true(released.released);
  t.deepEqual(fingerprintChanges(fenced, await sourceFingerprint(urls.source)), [], 'catch-up and release wrote nothing on the source');
  t.is(await scalar(urls.source, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${captureNames(uid).slot}'`), '0');
}));

test('mysql: key swaps, update-then-delete, NULL ↔ value, a transaction over the batch, both tables in one transaction: 0 lost', slot(async (t) => {
  const tables = [
    'CREATE TABLE items (id int PRIMARY KEY, val varchar(100), n int, d decimal(12,3), b varbinary(20), dt datetime(6), j json) ENGINE=InnoDB',
    'CREATE TABLE notes (id int PRIMARY KEY, item int, note text) ENGINE=InnoDB',
  ];
  const urls = await databases(t, 'mysql', [
    ...tables,
    "INSERT INTO items SELECT seq, CONCAT('v', seq), seq, seq / 7, UNHEX(MD5(seq)), TIMESTAMP'2024-01-01 00:00:00.5' + INTERVAL seq SECOND, JSON_OBJECT('k', seq) FROM seq_1_to_50",
    "INSERT INTO notes SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_50",
  ], tables);
  const { context } = contextOf(t, 'mysql', urls, [{ name: 'items' }, { name: 'notes' }]);
  await copyStep(context);
  const sessionStatements = [
    'START TRANSACTION', 'UPDATE items SET id = -1 WHERE id = 1', 'UPDATE items SET id = 1 WHERE id = 2', 'UPDATE items SET id = 2 WHERE id = -1', 'COMMIT',
    'UPDATE notes SET id = id + 100 ORDER BY id DESC',
    'START TRANSACTION', 'UPDATE items SET n = -5 WHERE id = 5', 'DELETE FROM items WHERE id = 5', "INSERT INTO items (id, val) VALUES (1000, 'gone')", 'DELETE FROM items WHERE id = 1000', 'COMMIT',
    'UPDATE items SET n = NULL, b = NULL, j = NULL WHERE id BETWEEN 10 AND 20', 'UPDATE items SET n = 7, j = JSON_ARRAY(1, 2) WHERE id = 10',
    'START TRANSACTION',
    "INSERT INTO items SELECT seq, 'bulk', seq, seq / 3, NULL, NOW(6), NULL FROM seq_2000_to_7000",
    "INSERT INTO notes SELECT seq, seq, 'child' FROM seq_2000_to_7000",
    'COMMIT',
  ];
  await syncWhile(context, () => execSql(urls.source, sessionStatements));
  await execSql(urls.source, ['DELETE FROM notes WHERE id = 140', "UPDATE items SET val = 'fenced' WHERE id = 30"]);
  const caught = await catchupStep(context);
  t.true(caught.validation.passed, JSON.stringify(caught.validation).slice(0, 2000));
  t.is(await scalar(urls.target, "SELECT val FROM items WHERE id = 30"), 'fenced');
  t.is(await scalar(urls.target, 'SELECT count(*) FROM notes'), await scalar(urls.source, 'SELECT count(*) FROM notes'));
}));

// (4) Forged bookkeeping: the recorded binlog position moved forward past changes the follower never applied.
test('mysql: a forged binlog position on the target (changes skipped) fails the catch-up\'s default validation', slot(async (t) => {
  const ddl = 'CREATE TABLE items (id int PRIMARY KEY, val varchar(100)) ENGINE=InnoDB';
  const urls = await databases(t, 'mysql', [ddl, "INSERT INTO items SELECT seq, CONCAT('v', seq) FROM seq_1_to_100"], [ddl]);
  const { context, uid } = contextOf(t, 'mysql', urls, [{ name: 'items' }]);
  await copyStep(context);
  await execSql(urls.source, ["UPDATE items SET val = 'changed' WHERE id = 5", 'DELETE FROM items WHERE id = 6']);
  const client = await connectMysql(urls.source, { readOnly: true });
  const now = formatBinlogPosition(await currentBinlogPosition(client));
  await client.end();
  // What any user of the target could write into the bookkeeping table.
  const target = await openSession(urls.target, { readOnly: false });
  await writeCheckpoint(target, binlogCheckpointId(uid), { lastKey: [now], rowsCopied: 0, done: false, boundaries: [] });
  await target.close();
  const caught = await catchupStep(context);
  t.false(caught.validation.passed, 'the skipped update and delete are found');
}));

// (5) Secrets: the source password in no message of sync, catch-up or release.
test('postgres: a wrong source password, and a walsender killed mid-stream, never put the password in an error', slot(async (t) => {
  const ddl = 'CREATE TABLE items (id int PRIMARY KEY, val text)';
  const urls = await databases(t, 'postgres', [ddl, "INSERT INTO items VALUES (1, 'a')"], [ddl]);
  const { context, uid } = contextOf(t, 'postgres', urls, [{ name: 'items' }]);
  await copyStep(context);
  const password = decodeURIComponent(new URL(urls.source).password);
  t.true(password.length > 0);
  const messages = (error: unknown): string => {
    const parts: string[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? '');
    return parts.join('\n');
  };
  const wrong = new URL(urls.source);
  wrong.password = 'Wr0ng-S3cret-a16';
  const withWrong: StepContext = { ...context, source: { url: wrong.toString() } };
  for (const [name, run] of [['sync', () => captureSyncStep(withWrong)], ['catchup', () => catchupStep(withWrong)], ['release', () => releaseStep(withWrong)]] as const) {
    const outcome = await (run as () => Promise<unknown>)().then((value) => JSON.stringify(value), (error: unknown) => messages(error));
    t.false(outcome.includes('Wr0ng-S3cret-a16'), `${name}: ${outcome.slice(0, 300)}`);
  }
  const controller = new AbortController();
  const sync = captureSyncStep({ ...context, signal: controller.signal }).then(() => 'ended', (error: unknown) => messages(error));
  await sleep(2000);
  await execSql(urls.source, [`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '${captureNames(uid).slot}' AND active_pid IS NOT NULL`]);
  const outcome = await Promise.race([sync, sleep(20_000).then(() => { controller.abort(); return sync; })]);
  t.log(outcome.slice(0, 300));
  t.false(outcome.includes(password), 'no password in the failure');
  t.is(databaseOf(urls.source).length > 0, true);
}));

// (4) PostgreSQL: the follower's position is also kept on the target (exactly once); forged forward, changes are skipped.
for (const forged of ['now', 'future'] as const) {
  test(`postgres: a forged capture position on the target (${forged}) never yields a catch-up that passes validation`, slot(async (t) => {
    const ddl = 'CREATE TABLE items (id int PRIMARY KEY, val text)';
    const urls = await databases(t, 'postgres', [ddl, "INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 100) g"], [ddl]);
    const { context, uid } = contextOf(t, 'postgres', urls, [{ name: 'items' }]);
    await copyStep(context);
    await execSql(urls.source, ["UPDATE items SET val = 'changed' WHERE id = 5", 'DELETE FROM items WHERE id = 6']);
    const position = forged === 'now' ? await scalar(urls.source, 'SELECT pg_current_wal_insert_lsn()::text') : 'FFFF/0';
    const target = await openSession(urls.target, { readOnly: false });
    await writeCheckpoint(target, captureCheckpointId(uid), { lastKey: [position], rowsCopied: 0, done: false, boundaries: [] });
    await target.close();
    const outcome = await catchupStep(context).then((caught) => (caught.validation.passed ? 'passed' : 'validation failed'), (error: unknown) => `failed: ${String(error)}`);
    t.log(outcome);
    t.not(outcome, 'passed');
    // A position past everything the source wrote cannot be a follower's: refused with the reason before anything is followed.
    if (forged === 'future') t.regex(outcome, /ahead of the source's current position/);
  }));
}

test('mysql: a forged binlog position past the end of the source\'s binlog is refused with the reason, not followed', slot(async (t) => {
  const ddl = 'CREATE TABLE items (id int PRIMARY KEY, val varchar(100)) ENGINE=InnoDB';
  const urls = await databases(t, 'mysql', [ddl, "INSERT INTO items SELECT seq, CONCAT('v', seq) FROM seq_1_to_100"], [ddl]);
  const { context, uid } = contextOf(t, 'mysql', urls, [{ name: 'items' }]);
  await copyStep(context);
  await execSql(urls.source, ["UPDATE items SET val = 'changed' WHERE id = 5"]);
  const client = await connectMysql(urls.source, { readOnly: true });
  const now = await currentBinlogPosition(client);
  await client.end();
  const target = await openSession(urls.target, { readOnly: false });
  // A binlog file 1000 files ahead: the server is shared with other tests, whose writes soon pass any offset in the current file.
  const ahead = now.file.replace(/\d+$/, (digits) => String(Number(digits) + 1000).padStart(digits.length, '0'));
  await writeCheckpoint(target, binlogCheckpointId(uid), { lastKey: [formatBinlogPosition({ file: ahead, offset: 4 })], rowsCopied: 0, done: false, boundaries: [] });
  await target.close();
  const outcome = await catchupStep(context).then((caught) => (caught.validation.passed ? 'passed' : 'validation failed'), (error: unknown) => `failed: ${String(error)}`);
  t.log(outcome);
  t.regex(outcome, /ahead of the source's current position/);
}));

// (3) The catch-up stopped mid-way (its pod killed), then run again: nothing lost, nothing applied twice.
for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: a catch-up stopped mid-way and run again applies everything once: validation passes`, slot(async (t) => {
    const ddl = engine === 'postgres' ? 'CREATE TABLE items (id int PRIMARY KEY, n int)' : 'CREATE TABLE items (id int PRIMARY KEY, n int) ENGINE=InnoDB';
    const urls = await databases(t, engine, [ddl, engine === 'postgres' ? 'INSERT INTO items SELECT g, g FROM generate_series(1, 100) g' : 'INSERT INTO items SELECT seq, seq FROM seq_1_to_100'], [ddl]);
    const { context } = contextOf(t, engine, urls, [{ name: 'items' }]);
    await copyStep(context);
    // Many small transactions behind the fence, relative updates among them (applied twice, they would show).
    const statements: string[] = [];
    for (let i = 0; i < 300; i++) {
      statements.push(engine === 'postgres' ? `INSERT INTO items SELECT g, g FROM generate_series(${String(1000 + i * 20)}, ${String(1019 + i * 20)}) g` : `INSERT INTO items SELECT seq, seq FROM seq_${String(1000 + i * 20)}_to_${String(1019 + i * 20)}`);
      statements.push(`UPDATE items SET n = n + 1 WHERE id = ${String(1 + (i % 100))}`);
      if (i % 10 === 0) statements.push(`DELETE FROM items WHERE id = ${String(1000 + i * 20)}`);
    }
    await execSql(urls.source, statements);
    const controller = new AbortController();
    const first = catchupStep({ ...context, signal: controller.signal }).then(() => 'finished', (error: unknown) => `stopped: ${String(error)}`);
    setTimeout(() => { controller.abort(); }, 400);
    t.log(`first catch-up: ${(await first).slice(0, 200)}`);
    const caught = await catchupStep(context);
    t.true(caught.validation.passed, JSON.stringify(caught.validation).slice(0, 1500));
  }));
}

test('mysql: a wrong source password never appears in the error of sync, catch-up or release', slot(async (t) => {
  const ddl = 'CREATE TABLE items (id int PRIMARY KEY, val varchar(100)) ENGINE=InnoDB';
  const urls = await databases(t, 'mysql', [ddl, "INSERT INTO items VALUES (1, 'a')"], [ddl]);
  const { context } = contextOf(t, 'mysql', urls, [{ name: 'items' }]);
  await copyStep(context);
  const wrong = new URL(urls.source);
  wrong.password = 'Wr0ng-S3cret-a16m';
  const withWrong: StepContext = { ...context, source: { url: wrong.toString() } };
  const text = (error: unknown): string => {
    const parts: string[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) parts.push(e.message, e.stack ?? '');
    return parts.join('\n');
  };
  for (const [name, run] of [['sync', () => captureSyncStep(withWrong)], ['catchup', () => catchupStep(withWrong)], ['release', () => releaseStep(withWrong)]] as const) {
    const outcome = await (run as () => Promise<unknown>)().then((value) => JSON.stringify(value), text);
    t.false(outcome.includes('Wr0ng-S3cret-a16m'), `${name}: ${outcome.slice(0, 300)}`);
  }
}));
