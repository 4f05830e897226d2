// Adversarial cases against issue 16's validation at a cut (pipeline/validate-at-cut.ts,
// sync/cdc-batcher.ts cutAt, sync/changed-keys.ts) on real servers, the steps run in this process
// as the Jobs run them (an abort is the Job's SIGTERM):
// - a cut must not stall the follower nor the sync's stop: an idle transaction on the source
//   (PostgreSQL's slot creation waits for it), a PostgreSQL target on the source's server;
// - behind the fence, the rows changed since the cut are compared value by value whatever their
//   keys (composite, text with quotes and non-ASCII, bytea/varbinary), key moves, deletes and
//   re-inserts, a transaction far over the batch, binlog rotation during the cut;
// - what the changed-rows validation cannot see (a row changed only before the cut, tampered on the
//   target; a forged 'passed' cut record) is pinned as the documented limit, and the counts still
//   catch rows deleted on the target behind the migration's back;
// - a sync stopped between the cut record and its pass leaves the full validation to the catch-up.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { currentBinlogPosition } from '../../src/engine/db/mysql/binlog-capture.ts';
import { formatBinlogPosition } from '../../src/engine/db/mysql/binlog-position.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import { captureNames, dropCapture } from '../../src/engine/db/postgres/change-capture.ts';
import { catchupStep, captureSyncStep, releaseStep, type CatchupStepResult } from '../../src/engine/pipeline/capture-steps.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { readCutRecord, recordChangedKeys, writeCutRecord, type CutRecord } from '../../src/engine/sync/changed-keys.ts';
import type { TableReport } from '../../src/engine/validate/report.ts';
import { writeCheckpoint } from '../../src/engine/copy/checkpoint.ts';
import { binlogCheckpointId } from '../../src/engine/sync/cdc-follow-mysql.ts';
import { sleep } from '../support/cdc-harness.ts';
import { adminQuery, freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { repoRoot } from '../support/platform.ts';
import { execSql, scalar } from '../support/sql.ts';

type Table = NonNullable<DataMigration['spec']['tables']>[number];

// The changed rows are compared one by one however many (the default compares a table in full when
// more than 5% of it changed): these tests are about that comparison.
process.env.DMO_FENCE_CHANGED_SHARE_MAX = 'Infinity';

function contextOf(t: ExecutionContext, engines: { source: Engine; target: Engine }, urls: { source: string; target: string }, tables: Table[]): { context: StepContext; uid: string } {
  const uid = randomUUID();
  if (engines.source === 'postgres') t.teardown(async () => { await dropCapture({ url: urls.source }, uid).catch(() => undefined); });
  const manifest: DataMigration = {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'attack16cut', namespace: 'test', uid },
    spec: {
      source: { engine: engines.source, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: engines.target, secretRef: { name: 't' } },
      tables, strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' }, batchSize: 200, parallelism: 2 },
    },
  };
  return { uid, context: { source: { url: urls.source }, target: { url: urls.target }, settings: engineSettings(manifest) } };
}

interface RunningSync {
  /** Settles with the step's error (undefined: it ended cleanly). */
  readonly done: Promise<unknown>;
  /** Aborts it as SIGTERM does; how long it took to end (undefined: not within `withinMs`). */
  stop(withinMs: number): Promise<{ ms: number | undefined; error: unknown }>;
}

function startSync(context: StepContext): RunningSync {
  const controller = new AbortController();
  const done = captureSyncStep({ ...context, signal: controller.signal }).then(() => undefined, (error: unknown) => error);
  return {
    done,
    async stop(withinMs) {
      const at = Date.now();
      controller.abort();
      const ended = await Promise.race([done.then((error) => ({ error, ended: true })), sleep(withinMs).then(() => ({ error: undefined, ended: false }))]);
      return { ms: ended.ended ? Date.now() - at : undefined, error: ended.error };
    },
  };
}

/** The cut record once it is in `state` (any state: undefined), polled every `everyMs`, within `ms`. */
async function cutRecordIn(targetUrl: string, uid: string, state: CutRecord['state'] | undefined, ms: number, everyMs = 200): Promise<CutRecord | undefined> {
  const target = await openSession(targetUrl, { readOnly: true });
  try {
    for (const until = Date.now() + ms; Date.now() < until;) {
      const record = await readCutRecord(target, uid).catch(() => undefined);
      if (record && (state === undefined || record.state === state)) return record;
      await sleep(everyMs);
    }
    return undefined;
  } finally {
    await target.close();
  }
}

/** Polls `sql` on `url` until it returns `expected`, within `ms`; whether it did. */
async function eventually(url: string, sql: string, expected: string, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until;) {
    if (await scalar(url, sql).catch(() => '') === expected) return true;
    await sleep(200);
  }
  return false;
}

const tableOf = (caught: CatchupStepResult, name: string): TableReport | undefined => caught.validation.tables.find((table) => table.table === name);
const brief = (caught: CatchupStepResult): string => JSON.stringify(caught.validation.tables.map((table) => ({ ...table, differences: table.differences.slice(0, 3) }))).slice(0, 1500);

/** A writer inserting and updating rows of `items (id bigint key, val text)` on its own PostgreSQL connection until stopped. */
function pgWriter(url: string, firstId: number): { stop(): Promise<number> } {
  const state = { running: true };
  let operations = 0;
  const done = (async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    for (let id = firstId; state.running; id++) {
      await client.query('INSERT INTO items VALUES ($1, $2)', [id, `w${String(id)}`]);
      await client.query("UPDATE items SET val = val || '+' WHERE id = $1", [id - 1]);
      operations += 2;
      await sleep(5);
    }
    await client.end();
  })();
  return { async stop() { state.running = false; await done; return operations; } };
}

const PG_ITEMS = 'CREATE TABLE items (id bigint PRIMARY KEY, val text)';
const MY_ITEMS = 'CREATE TABLE items (id bigint PRIMARY KEY, val text) ENGINE=InnoDB';

// Found as a DEFECT, fixed by not creating the slot while a transaction has been open for a second, cancelling a given-up creation and naming each attempt's slot apart (issue 16, cdc-batcher.ts cutAt + postgres openCutSnapshot): the PostgreSQL cut's snapshot is a
// new slot, whose creation waits until every transaction running on the server (any database) has
// ended. As first attacked, the follower held every source transaction meanwhile with no bound (nothing
// applied, SIGTERM hung for as long as the transaction lasted). At 09:20 the hold is given up after
// SNAPSHOT_WAIT_MS (now 60 s) and a stop is prompt, but nothing is applied for those 60 s each attempt
// (the issue's goal: lag p99 < 2 s; this test allows 15 s). Still failing too: a walsender waiting in that creation does not notice its
// client is gone, so the slot `<slot>_v` stays (active, WAL reserved) until the transaction ends, and the
// next cut (30 s later) asks for the same name: "replication slot ... already exists", and the sync fails
// (shown by the SIGKILL test below). Fix: cancel the creation (pg_cancel_backend of the walsender's pid,
// read with pg_backend_pid() on the replication connection first; a cancel ends the lock wait), give
// each attempt a unique slot name, and skip the cut while pg_stat_activity/pg_prepared_xacts show an
// older transaction holding an xid.
test.serial('postgres source: a session idle in a transaction (another database) does not stall the follower during a cut, and the sync stops promptly', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a16c_src');
  const target = await freshDatabase(t, 'mysql', 'a16c_tgt');
  await execSql(source, [PG_ITEMS, "INSERT INTO items SELECT g, 'seed ' || g FROM generate_series(1, 2000) g"]);
  await execSql(target, [MY_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'postgres', target: 'mysql' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  // An application of another database on the source's server that began a transaction and holds
  // it (it has written: it has an xid). Nothing to do with the migration.
  const other = await freshDatabase(t, 'postgres', 'a16c_other');
  await execSql(other, ['CREATE TABLE app (id int)']);
  const blocker = new pg.Client({ connectionString: other });
  await blocker.connect();
  let blockerOpen = true;
  const endBlocker = async (): Promise<void> => {
    if (!blockerOpen) return;
    blockerOpen = false;
    await blocker.query('ROLLBACK').catch(() => undefined);
    await blocker.end().catch(() => undefined);
  };
  t.teardown(endBlocker);
  await blocker.query('BEGIN');
  await blocker.query('INSERT INTO app VALUES (1)');
  const sync = startSync(context);
  const writer = pgWriter(source, 100_000);
  // The sync catches up; while the transaction is open it does not create the cut's slot (the slot would wait for it); the writer's rows keep coming.
  const creating = await eventually(source, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}\\_v%'`, '1', 8_000);
  t.false(creating, 'no cut slot is created while a transaction has been open for over 5 s');
  await sleep(500);
  await execSql(source, ["INSERT INTO items VALUES (999999, 'marker')"]);
  const applied = await eventually(target, 'SELECT count(*) FROM items WHERE id = 999999', '1', 15_000);
  // The cut given up (or not): its slot must not stay behind, or the next cut's slot of the same name fails the sync.
  const cutSlot = `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}\\_v%'`;
  const slotGone = await eventually(source, cutSlot, '0', 5000);
  const operations = await writer.stop();
  const stopped = await sync.stop(10_000);
  t.log(`writer: ${String(operations)} operations; marker applied: ${String(applied)}; stop took ${stopped.ms === undefined ? 'more than 10000' : String(stopped.ms)} ms; error: ${String(stopped.error)}`);
  const slots = await scalar(source, `SELECT string_agg(slot_name || ':' || temporary, ',') FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}%'`);
  t.log(`slots while the blocker is open: ${slots}`);
  // Unstick whatever hangs, then the temporary slot must be gone.
  await endBlocker();
  await sync.done;
  t.true(applied, 'a row committed on the source during the cut reaches the target within 15 s');
  t.not(stopped.ms, undefined, 'the sync stops within 10 s of its SIGTERM');
  t.true(slotGone, 'the cut\'s temporary slot is gone once the cut is given up, while the idle transaction lasts');
  t.is(await scalar(source, cutSlot), '0', 'the cut\'s temporary slot is gone once the idle transaction ended');
});

// Found as a DEFECT (same cause: a deadlock with no user session in the way), fixed meanwhile by the
// flush before the hold in sourceCommitted; kept as a guard. A PostgreSQL target on the source's server
// (a supported same-engine migration): under steady writes the follower's target transaction was open
// (a batch committed after a 10 ms pause) when the cut was asked for; the slot creation waited for its
// xid, the follower held the next source transaction until the slot existed, its commit queued behind:
// neither moved until idle_in_transaction (15 min). The log names the xid holders when a cut hangs.
test.serial('postgres to postgres on one server: cuts under writes pass (no deadlock between the cut\'s slot and the follower\'s target transaction)', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a16c_src');
  const target = await freshTargetDatabase(t, 'postgres', 'a16c_tgt');
  await execSql(source, [PG_ITEMS, "INSERT INTO items SELECT g, 'seed ' || g FROM generate_series(1, 2000) g"]);
  await execSql(target, [PG_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'postgres', target: 'postgres' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  const writers = [pgWriter(source, 100_000), pgWriter(source, 200_000), pgWriter(source, 300_000)];
  const outcomes: string[] = [];
  // Three cuts in a row (the record set back to 'validating' makes the next sync cut again).
  for (let attempt = 0; attempt < 3 && !outcomes.some((o) => o !== 'passed'); attempt++) {
    if (attempt > 0) {
      const session = await openSession(target, { readOnly: false });
      await writeCutRecord(session, uid, { position: '0/0', state: 'validating', at: new Date().toISOString() });
      await session.close();
    }
    const sync = startSync(context);
    const passed = await cutRecordIn(target, uid, 'passed', 12_000);
    // Who holds a transaction id on the server now (the cut's slot creation waits for each).
    const holders = await scalar(source, "SELECT string_agg(datname || '/' || coalesce(application_name, '') || '/' || state, ', ') FROM pg_stat_activity WHERE backend_xid IS NOT NULL");
    let stopped = await sync.stop(10_000);
    if (stopped.ms === undefined) {
      // Unstick the hang: end the walsender creating the cut's slot (the admin can; the test must end).
      await adminQuery('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'datamigration validate' AND backend_type = 'walsender'");
      stopped = { ms: undefined, error: await sync.done };
    }
    outcomes.push(passed ? 'passed' : `no pass within 12 s; xid holders: ${holders}; stop ${stopped.ms === undefined ? 'hung' : `${String(stopped.ms)} ms`}`);
  }
  const operations = (await Promise.all(writers.map((w) => w.stop()))).reduce((a, b) => a + b, 0);
  t.log(`writers: ${String(operations)} operations; cuts: ${JSON.stringify(outcomes)}`);
  t.deepEqual(outcomes.filter((o) => o !== 'passed'), [], 'every cut passed and every stop was prompt');
});

/** PostgreSQL text keys with quotes, backslashes, tabs, newlines and non-ASCII; a bytea half. */
const pgKey = (g: string): string => `'k''' || ${g} || E'"\\\\ \\t\\nü€'`;

// Behind the fence after a cut passed: every kind of change to every kind of key is compared (a wrong
// key literal would find the row on neither side and call it equal: tampering proves the lookups).
test.serial('postgres to mysql, composite text+bytea keys: changed rows behind the fence are found by their keys; the documented gap and the counts', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a16c_src');
  const target = await freshDatabase(t, 'mysql', 'a16c_tgt');
  await execSql(source, [
    'CREATE TABLE items (k text, b bytea, val text, big text, PRIMARY KEY (k, b))',
    `INSERT INTO items SELECT ${pgKey('g')}, decode(md5(g::text), 'hex'), 'v' || g,
      CASE WHEN g % 10 = 1 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 400) i) END FROM generate_series(1, 300) g`,
  ]);
  await execSql(target, ['CREATE TABLE items (k varchar(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, b varbinary(64), val text, big longtext, PRIMARY KEY (k, b)) ENGINE=InnoDB']);
  const { context, uid } = contextOf(t, { source: 'postgres', target: 'mysql' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  const sync = startSync(context);
  const passed = await cutRecordIn(target, uid, 'passed', 30_000);
  t.truthy(passed, 'the validation at a cut passed');
  const row = (g: number): string => `k = ${pgKey(`'${String(g)}'`)} AND b = decode(md5('${String(g)}'), 'hex')`;
  await execSql(source, [
    `UPDATE items SET val = 'changed' WHERE ${row(1)}`,
    `UPDATE items SET k = k || '-moved' WHERE ${row(2)}`,
    `UPDATE items SET b = '\\x00ff'::bytea || b WHERE ${row(3)}`,
    `DELETE FROM items WHERE ${row(4)}`,
    `DELETE FROM items WHERE ${row(5)}`,
    `INSERT INTO items VALUES (${pgKey("'5'")}, decode(md5('5'), 'hex'), 're-inserted', NULL)`,
    "INSERT INTO items VALUES (E'new \\\\ '' \" \\t', '\\x00'::bytea, 'new', NULL)",
    // TOASTed value left out of the update (the stream says "unchanged").
    `UPDATE items SET val = 'toast kept' WHERE ${row(11)}`,
    // One transaction far over the batch size.
    "INSERT INTO items SELECT 'bulk' || g, decode(md5(g::text), 'hex'), 'bulk', NULL FROM generate_series(1, 3000) g",
  ]);
  t.true(await eventually(target, 'SELECT count(*) FROM items', '3300', 20_000), 'the sync applied the changes');
  const stopped = await sync.stop(20_000);
  t.is(stopped.error, undefined);

  const caught = await catchupStep(context);
  const fenced = tableOf(caught, 'items');
  t.log(`behind the fence: ${JSON.stringify(fenced?.changedRows)}, counts ${JSON.stringify(fenced?.rowCount)}`);
  t.true(caught.validation.passed, brief(caught));
  t.true((fenced?.changedRows?.rows ?? 0) >= 3006 && fenced?.checksum === undefined, 'only the changed rows were compared');

  // Tampered on the target: a changed text-keyed row, the bytea-moved row, the odd new key, the TOASTed row.
  const tampered = [
    "k = 'k''1\"\\\\ \\tü€' AND b = UNHEX(MD5('1'))".replace('\\\\ \\t', '\\\\ \t\n'),
    "b = CONCAT(UNHEX('00ff'), UNHEX(MD5('3')))",
    "k = 'new \\\\ '' \" \t'",
    "b = UNHEX(MD5('11')) AND k LIKE 'k''%'",
  ];
  const target1 = await openSession(target, { readOnly: false });
  t.teardown(() => target1.close());
  for (const where of tampered) t.is((await target1.query(`SELECT count(*) AS n FROM items WHERE ${where}`))[0]?.n?.toString(), '1', where);
  for (const where of tampered) await target1.query(`UPDATE items SET val = CONCAT(val, '!') WHERE ${where}`);
  const found = await catchupStep(context);
  const foundTable = tableOf(found, 'items');
  t.log(`tampered changed rows: ${JSON.stringify(foundTable?.changedRows)}, ${String(foundTable?.differenceCount)} differences`);
  t.false(found.validation.passed);
  t.is(foundTable?.differenceCount, tampered.length, brief(found));
  for (const where of tampered) await target1.query(`UPDATE items SET val = LEFT(val, CHAR_LENGTH(val) - 1) WHERE ${where}`);

  // A row changed only before the cut (here: never), tampered after it: the documented gap.
  await target1.query("UPDATE items SET val = 'tampered unseen' WHERE b = UNHEX(MD5('100')) AND k LIKE 'k''%'");
  const gap = await catchupStep(context);
  t.log(`a row not changed since the cut, tampered: passed=${String(gap.validation.passed)} (documented limit)`);
  t.true(gap.validation.passed, 'documented limit: not seen behind the fence');
  // More changed rows than DMO_FENCE_CHANGED_ROWS_MAX: the full validation, which sees it.
  process.env.DMO_FENCE_CHANGED_ROWS_MAX = '10';
  try {
    const full = await catchupStep(context);
    t.false(full.validation.passed, 'the full validation finds the tampered row');
    t.truthy(tableOf(full, 'items')?.checksum, 'a full checksum ran');
  } finally {
    delete process.env.DMO_FENCE_CHANGED_ROWS_MAX;
  }
  // Deleted on the target behind the migration's back: the exact counts see it.
  await target1.query("UPDATE items SET val = 'v100' WHERE b = UNHEX(MD5('100')) AND k LIKE 'k''%'");
  await target1.query("DELETE FROM items WHERE b = UNHEX(MD5('200')) AND k LIKE 'k''%'");
  const counted = await catchupStep(context);
  t.false(counted.validation.passed);
  t.like(tableOf(counted, 'items'), { rowCount: { passed: false } });
  // A row added on the target beside the one deleted: the counts agree again, and nothing sees either (the same gap).
  await target1.query("INSERT INTO items VALUES ('extra', UNHEX('01'), 'planted', NULL)");
  const paired = await catchupStep(context);
  t.log(`a row deleted and another planted on the target: passed=${String(paired.validation.passed)} (documented limit)`);
  t.true(paired.validation.passed, 'documented limit: a planted row beside a deleted one is not seen behind the fence');
  t.true((await releaseStep(context)).released);
  t.is(await scalar(source, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}%'`), '0');
});

/** A writer inserting rows into MariaDB's `items (id varbinary, k, val)` on its own connection until stopped. */
function mysqlWriter(url: string, rotateBinlog: boolean): { stop(): Promise<{ operations: number; rotations: number }> } {
  const state = { running: true };
  let operations = 0;
  let rotations = 0;
  const done = (async () => {
    const client = await connectMysql(url, { readOnly: false });
    let last = Date.now();
    for (let n = 0; state.running; n++) {
      await client.query("INSERT INTO items VALUES (UNHEX(MD5(CONCAT('w', ?))), 'w', 'written')", [n]);
      await client.query("UPDATE items SET val = CONCAT(val, '+') WHERE id = UNHEX(MD5(CONCAT('w', ?))) AND k = 'w'", [n - 1]);
      operations += 2;
      if (rotateBinlog && Date.now() - last > 250) {
        await adminQuery('mysql', 'FLUSH BINARY LOGS');
        rotations++;
        last = Date.now();
      }
      await sleep(5);
    }
    await client.end();
  })();
  return { async stop() { state.running = false; await done; return { operations, rotations }; } };
}

test('mysql to postgres, composite varbinary+text keys, binary logs rotated through the cut: the cut passes and changed rows are found by their keys', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'a16c_src');
  const target = await freshDatabase(t, 'postgres', 'a16c_tgt');
  await execSql(source, [
    'CREATE TABLE items (id varbinary(20), k varchar(60) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, val text, PRIMARY KEY (id, k)) ENGINE=InnoDB',
    "INSERT INTO items SELECT UNHEX(MD5(seq)), CONCAT('k''', seq, '\"\\\\ü€'), CONCAT('v', seq) FROM seq_1_to_300",
  ]);
  await execSql(target, ['CREATE TABLE items (id bytea, k varchar(60), val text, PRIMARY KEY (id, k))']);
  const { context, uid } = contextOf(t, { source: 'mysql', target: 'postgres' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  // A transaction open through the cut, committed after it: after the cut on both sides.
  const spanning = await connectMysql(source, { readOnly: false });
  t.teardown(() => spanning.end().catch(() => undefined));
  await spanning.query('START TRANSACTION');
  await spanning.query("UPDATE items SET val = 'spanning' WHERE id = UNHEX(MD5(9))");
  await spanning.query("INSERT INTO items VALUES (UNHEX('0909'), 'spanning', 'spanning')");
  const sync = startSync(context);
  const writer = mysqlWriter(source, true);
  const passed = await cutRecordIn(target, uid, 'passed', 30_000);
  await spanning.query('COMMIT');
  const written = await writer.stop();
  t.log(`writer: ${JSON.stringify(written)}; cut: ${JSON.stringify(passed ?? await cutRecordIn(target, uid, undefined, 100))}`);
  t.truthy(passed, 'the validation at a cut passed under writes and binlog rotations');
  t.true(written.rotations >= 2, 'the binary log was rotated during the cut');
  const row = (n: number): string => `id = UNHEX(MD5(${String(n)})) AND k = CONCAT('k''', ${String(n)}, '"\\\\ü€')`;
  await execSql(source, [
    `UPDATE items SET val = 'changed' WHERE ${row(1)}`,
    `UPDATE items SET id = CONCAT(UNHEX('00ff'), id) WHERE ${row(2)}`,
    'FLUSH BINARY LOGS',
    `UPDATE items SET k = CONCAT(k, '-moved') WHERE ${row(3)}`,
    `DELETE FROM items WHERE ${row(4)}`,
    `DELETE FROM items WHERE ${row(5)}`,
    "INSERT INTO items VALUES (UNHEX(MD5(5)), CONCAT('k''', 5, '\"\\\\ü€'), 're-inserted')",
    "INSERT INTO items SELECT UNHEX(MD5(CONCAT('b', seq))), 'bulk', 'bulk' FROM seq_1_to_5000",
  ]);
  const expected = await scalar(source, 'SELECT count(*) FROM items');
  t.true(await eventually(target, 'SELECT count(*) FROM items', expected, 20_000), 'the sync applied the changes');
  t.is((await sync.stop(20_000)).error, undefined);
  const caught = await catchupStep(context);
  const fenced = tableOf(caught, 'items');
  t.log(`behind the fence: ${JSON.stringify(fenced?.changedRows)}, counts ${JSON.stringify(fenced?.rowCount)}`);
  t.true(caught.validation.passed, brief(caught));
  t.true((fenced?.changedRows?.rows ?? 0) >= 5007 && fenced?.checksum === undefined, 'only the changed rows were compared');
  t.is(await scalar(target, "SELECT string_agg(val, ',' ORDER BY val) FROM items WHERE val = 'spanning'"), 'spanning,spanning', 'the spanning transaction arrived whole');
  const tampered = [
    "id = '\\x0909'::bytea",
    "id = decode(md5('1'), 'hex')",
    "id = '\\x00ff'::bytea || decode(md5('2'), 'hex')",
    "k LIKE '%-moved'",
    "id = decode(md5('5'), 'hex')",
  ];
  for (const where of tampered) t.is(await scalar(target, `SELECT count(*) FROM items WHERE ${where}`), '1', where);
  await execSql(target, tampered.map((where) => `UPDATE items SET val = val || '!' WHERE ${where}`));
  const found = await catchupStep(context);
  t.false(found.validation.passed);
  t.is(tableOf(found, 'items')?.differenceCount, tampered.length, brief(found));
});

// Killed between the cut record ('validating') and its pass: the catch-up must not trust the cut.
// Fails when the stop lands mid-validation: the exit-4 defect described at the big-table test below.
test('a sync stopped while validating at its cut leaves the full validation to the catch-up, and the next sync cuts again', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a16c_src');
  const target = await freshDatabase(t, 'mysql', 'a16c_tgt');
  await execSql(source, [PG_ITEMS, "INSERT INTO items SELECT g, repeat('seed ' || g, 20) FROM generate_series(1, 40000) g"]);
  await execSql(target, [MY_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'postgres', target: 'mysql' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  const sync = startSync(context);
  // Generous: on a busy shared server a cut may be deferred (a transaction of another test open for 5 s).
  const validating = await cutRecordIn(target, uid, 'validating', 90_000, 10);
  const stopped = await sync.stop(10_000);
  const left = await cutRecordIn(target, uid, undefined, 100);
  t.log(`stopped (${String(stopped.error)}) ${String(stopped.ms)} ms after the cut record ${JSON.stringify(validating)}; left: ${JSON.stringify(left)}`);
  t.truthy(validating);
  t.is(left?.state, 'validating', 'stopped before the validation passed');
  t.not(stopped.ms, undefined, 'a sync stops promptly mid-validation');
  t.is(stopped.error, undefined, 'stopped, not failed');
  t.is(await scalar(source, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}\\_v%'`), '0', 'the cut\'s temporary slot is gone');
  // Changed on the target behind the migration's back, never on the source: only a full validation sees it.
  await execSql(target, ["UPDATE items SET val = 'tampered' WHERE id = 777"]);
  const caught = await catchupStep(context);
  t.false(caught.validation.passed, 'the full validation found the tampered row');
  t.truthy(tableOf(caught, 'items')?.checksum);
  t.is(tableOf(caught, 'items')?.changedRows, undefined);
  // The next sync cuts again and finds it: exit 4's error.
  const again = startSync(context);
  const error = await Promise.race([again.done, sleep(40_000).then(() => 'still running')]);
  if (error === 'still running') await again.stop(10_000);
  t.regex(String(error), /validated while syncing, at source position \S+, the target differs from the source/);
});

// Forged bookkeeping (writable by target users: a known limit): a 'passed' cut record with no keys
// silences the value comparison behind the fence; a forged key row of the wrong shape can only fail it.
test('forged bookkeeping on the target: a forged passed cut hides a tampered row (known limit); a malformed key row fails the validation', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'a16c_src');
  const target = await freshDatabase(t, 'postgres', 'a16c_tgt');
  await execSql(source, [MY_ITEMS, "INSERT INTO items SELECT seq, CONCAT('v', seq) FROM seq_1_to_500"]);
  await execSql(target, [PG_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'mysql', target: 'postgres' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  await execSql(target, ["UPDATE items SET val = 'tampered' WHERE id = 7"]);
  const honest = await catchupStep(context);
  t.false(honest.validation.passed, 'without a cut, the full validation finds it');
  const session = await openSession(target, { readOnly: false });
  t.teardown(() => session.close());
  await writeCutRecord(session, uid, { position: 'forged', state: 'passed', at: new Date().toISOString() });
  const forged = await catchupStep(context);
  t.log(`with a forged 'passed' cut record: passed=${String(forged.validation.passed)}, ${JSON.stringify(tableOf(forged, 'items')?.changedRows)}`);
  t.true(forged.validation.passed, 'known limit: a forged cut record makes the catch-up compare no values');
  await recordChangedKeys(session, uid, [{ targetTable: 'items', source: ['7', 'extra'], target: ['7', 'extra'] }]);
  const malformed = await catchupStep(context);
  t.false(malformed.validation.passed, 'a key row of the wrong shape fails the validation');
  t.log(`malformed key row: ${String(tableOf(malformed, 'items')?.error)}`);
});

// DMO_CUT_TIMEOUT_SECONDS tiny under writes (checked every 100 ms: a cut may still be reached): the sync goes on
// following, never fails for it, leaves no temporary slot, and stops promptly.
test.serial('postgres source, DMO_CUT_TIMEOUT_SECONDS tiny under writes: the sync keeps following, no temporary slot is left, it stops promptly', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a16c_src');
  const target = await freshDatabase(t, 'mysql', 'a16c_tgt');
  await execSql(source, [PG_ITEMS, "INSERT INTO items SELECT g, 'seed ' || g FROM generate_series(1, 2000) g"]);
  await execSql(target, [MY_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'postgres', target: 'mysql' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  process.env.DMO_CUT_TIMEOUT_SECONDS = '0.001';
  let sync: RunningSync;
  try {
    sync = startSync(context);
  } finally {
    // Read when the cut is asked for: kept until then.
    setTimeout(() => { delete process.env.DMO_CUT_TIMEOUT_SECONDS; }, 6000);
  }
  const writer = pgWriter(source, 100_000);
  await sleep(6000);
  await execSql(source, ["INSERT INTO items VALUES (999999, 'marker')"]);
  const applied = await eventually(target, 'SELECT count(*) FROM items WHERE id = 999999', '1', 10_000);
  const operations = await writer.stop();
  const stopped = await sync.stop(10_000);
  const record = await cutRecordIn(target, uid, undefined, 100);
  t.log(`writer: ${String(operations)}; marker applied: ${String(applied)}; stop: ${String(stopped.ms)} ms, error ${String(stopped.error)}; cut record: ${JSON.stringify(record)}`);
  t.true(applied);
  t.not(stopped.ms, undefined);
  t.is(stopped.error, undefined);
  t.is(await scalar(source, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}\\_v%'`), '0');
});

// Found as a DEFECT, fixed (same cause as the first test, and the cut's slot is "temporary: also if killed" by its
// comment): a sync SIGKILLed while its cut's slot is being created leaves that slot on the source: the
// walsender waiting for the idle transaction does not notice its client is gone, so the slot (which
// reserved WAL from its start) stays until that transaction ends, however long that is; the Job's
// next pod then asks for a slot of the same name (openCutSnapshot: `${slot}_v`).
test.serial('postgres source: a sync killed while its cut waits for an idle transaction leaves no slot of the cut behind', async (t) => {
  const source = await freshDatabase(t, 'postgres', 'a16c_src');
  const target = await freshDatabase(t, 'mysql', 'a16c_tgt');
  await execSql(source, [PG_ITEMS, "INSERT INTO items SELECT g, 'seed ' || g FROM generate_series(1, 500) g"]);
  await execSql(target, [MY_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'postgres', target: 'mysql' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  const blocker = new pg.Client({ connectionString: source });
  await blocker.connect();
  t.teardown(async () => { await blocker.query('ROLLBACK').catch(() => undefined); await blocker.end().catch(() => undefined); });
  await blocker.query('BEGIN');
  await blocker.query('SELECT pg_catalog.txid_current()');
  const dir = await mkdtemp(join(tmpdir(), 'attack-16-cut-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'migration.yaml');
  await writeFile(file, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: attack16cut, namespace: test, uid: ${uid}}
spec:
  source: {engine: postgres, secretRef: {name: source}, acceptWritableRole: true}
  target: {engine: mysql, secretRef: {name: target}}
  tables: [{name: items}]
  strategy: {type: Trickle, incremental: {mode: ChangeCapture}}
`);
  const child = spawn(process.execPath, [join(repoRoot, 'src/cli/main.ts'), 'step', 'sync', '-f', file, '--json'], {
    env: { ...process.env, DMO_SOURCE_URL: source, DMO_TARGET_URL: target, DMO_TERMINATION_LOG: join(dir, 'termination') }, stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => { child.on('close', () => { resolve(); }); });
  t.teardown(() => { child.kill('SIGKILL'); });
  const cutSlot = `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}\\_v%'`;
  const created = await eventually(source, cutSlot, '1', 8_000);
  if (created) t.log(`slots: ${await scalar(source, "SELECT string_agg(slot_name || ' ' || active_pid::text, ', ') FROM pg_replication_slots")}; blocker ${await scalar(source, "SELECT string_agg(pid::text || ' ' || coalesce(backend_xid::text, '-') || ' ' || state, ', ') FROM pg_stat_activity WHERE datname = current_database()")}`);
  t.false(created, 'no cut slot is created while a transaction has been open for over 5 s');
  child.kill('SIGKILL');
  await exited;
  const gone = await eventually(source, cutSlot, '0', 5000);
  const left = await scalar(source, `SELECT string_agg(slot_name || ' active=' || active || ' restart_lsn=' || coalesce(restart_lsn::text, '-'), ', ') FROM pg_replication_slots WHERE slot_name LIKE '${captureNames(uid).slot}%'`);
  t.log(`5 s after SIGKILL: ${left}`);
  // The Job's next pod: its cut asks for a slot of the same name.
  const next = startSync(context);
  const outcome = await Promise.race([next.done, sleep(10_000).then(() => 'still running')]);
  if (outcome === 'still running') await next.stop(10_000);
  t.log(`the next sync, within 10 s: ${String(outcome)}`);
  t.true(gone, 'the cut\'s slot is gone within 5 s of the kill');
  t.is(outcome, 'still running', 'the next sync is not failed by the slot left behind');
});

// Stopped (SIGTERM) mid-validation with a MariaDB source: the validation's statements on a big table
// must not keep the sync from ending (a MySQL connection's end waits for the statement running).
// Found as a DEFECT, fixed (validate-at-cut.ts validateWhileSyncing): the abort closes the validation's sessions; the
// table whose statement was cut off is reported with an error (validate.ts catches it: passed false),
// validateAtCut returns that report, and validateWhileSyncing throws ValidationFailedError for it: a
// SIGTERM mid-validation ends the sync as "the target differs from the source" (the CLI's exit 4)
// instead of interrupted (130). Fix: after validateAtCut, `if (signal?.aborted) return undefined`;
// and a report whose failures are table errors (not differences) is an error to retry, not exit 4.
test('mysql source, a big table: a sync stopped mid-validation at its cut ends promptly', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'a16c_src');
  const target = await freshDatabase(t, 'postgres', 'a16c_tgt');
  await execSql(source, [MY_ITEMS, 'INSERT INTO items SELECT seq, REPEAT(MD5(seq), 6) FROM seq_1_to_100000']);
  await execSql(target, [PG_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'mysql', target: 'postgres' }, { source, target }, [{ name: 'items' }]);
  const copyStarted = Date.now();
  await copyStep(context);
  const sync = startSync(context);
  // Generous: on a busy shared server a cut may be deferred (a transaction of another test open for 5 s).
  const validating = await cutRecordIn(target, uid, 'validating', 90_000, 10);
  t.log(`copied in ${String(Date.now() - copyStarted)} ms; cut record ${JSON.stringify(validating)}`);
  await sleep(300);
  const stopped = await sync.stop(20_000);
  const left = await cutRecordIn(target, uid, undefined, 100);
  const tableErrors = (stopped.error as { report?: { tables?: { error?: string }[] } } | undefined)?.report?.tables?.map((table) => table.error);
  t.log(`stopped in ${String(stopped.ms)} ms, error ${String(stopped.error)} (table errors: ${JSON.stringify(tableErrors)}); cut record left ${JSON.stringify(left)}`);
  t.is(left?.state, 'validating', 'stopped mid-validation');
  t.true(stopped.ms !== undefined && stopped.ms < 3000, 'ended within 3 s of its SIGTERM');
  t.is(stopped.error, undefined);
});

// Known limit, newly wider: after a cut passed, the catch-up compares only the keys its own follower
// recorded. A forged capture position on the target (bookkeeping writable by target users) skips a
// source update: before issue 16's change the catch-up's full validation found it (attack-16-engine.test.ts
// (4)); now nothing does. The same holds for any follower defect that skips a change silently.
test('after a passed cut, a forged binlog position on the target skips a source update unseen by the catch-up (known limit)', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'a16c_src');
  const target = await freshDatabase(t, 'postgres', 'a16c_tgt');
  await execSql(source, [MY_ITEMS, "INSERT INTO items SELECT seq, CONCAT('v', seq) FROM seq_1_to_500"]);
  await execSql(target, [PG_ITEMS]);
  const { context, uid } = contextOf(t, { source: 'mysql', target: 'postgres' }, { source, target }, [{ name: 'items' }]);
  await copyStep(context);
  const sync = startSync(context);
  t.truthy(await cutRecordIn(target, uid, 'passed', 30_000));
  t.is((await sync.stop(10_000)).error, undefined);
  await execSql(source, ["UPDATE items SET val = 'changed' WHERE id = 5"]);
  const client = await connectMysql(source, { readOnly: true });
  const now = formatBinlogPosition(await currentBinlogPosition(client));
  await client.end();
  const session = await openSession(target, { readOnly: false });
  await writeCheckpoint(session, binlogCheckpointId(uid), { lastKey: [now], rowsCopied: 0, done: false, boundaries: [] });
  await session.close();
  const caught = await catchupStep(context);
  const stale = await scalar(target, 'SELECT val FROM items WHERE id = 5');
  t.log(`forged position after a passed cut: validation passed=${String(caught.validation.passed)}, target row 5 = ${stale} (source: changed)`);
  t.is(stale, 'v5', 'the update was skipped');
  t.true(caught.validation.passed, 'known limit: not seen behind the fence');
});
