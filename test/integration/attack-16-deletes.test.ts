// Attacks on Trickle's delete pass (sync-deletes.ts) and Sequence window (sync-window.ts), on real
// servers: keys that read differently across engines, a `where` rows move across, renames and
// dedupe, extra target rows (never deleted), a source killed or a run aborted mid-pass, 100k rows, a forged or
// stale window history. Throughout: no row the source has (within `where`) is deleted on the
// target, and the source is never written (its rows are compared before and after every sync).
import test, { type ExecutionContext } from 'ava';
import type { DataMigration, TableSpec } from '../../src/api/types.ts';
import { writeCheckpoint, readCheckpoint } from '../../src/engine/copy/checkpoint.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, schemaStep, syncStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { adminQuery, databaseOf, freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { execSql } from '../support/sql.ts';

async function rows(url: string, sql: string): Promise<string[][]> {
  const session = await openSession(url, { readOnly: true });
  try {
    return (await session.query(sql)).map((r) => Object.values(r).map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v?.toString() ?? 'NULL')));
  } finally {
    await session.close();
  }
}
const json = async (url: string, sql: string): Promise<string> => JSON.stringify(await rows(url, sql));

type Incremental = { column: string; mode: 'Timestamp' | 'Sequence'; overlapSeconds: number };
const STAMP: Incremental = { column: 'updated_at', mode: 'Timestamp', overlapSeconds: 5 };

async function setUp(t: ExecutionContext, from: Engine, to: Engine, sourceSql: string[], tables: TableSpec[], incremental: Incremental = STAMP, targetSql: string[] = []) {
  const source = await freshDatabase(t, from);
  const target = await freshTargetDatabase(t, to);
  await execSql(source, sourceSql);
  if (targetSql.length > 0) await execSql(target, targetSql);
  const manifest: DataMigration = {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'attack-16', namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      schema: { createMissingTables: true }, tables,
      strategy: { type: 'Trickle', batchSize: 500, parallelism: 1, incremental },
    },
  };
  const context: StepContext = { source: { url: source }, target: { url: target }, settings: engineSettings(manifest) };
  await schemaStep(context);
  await copyStep(context);
  return { source, target, context };
}

/** A sync that must not write the source: its rows are the same before and after. */
async function syncReadOnly(t: ExecutionContext, source: string, tables: string[], run: () => Promise<unknown>) {
  const dump = async () => Promise.all(tables.map((table) => json(source, `SELECT * FROM ${table} ORDER BY 1, 2`)));
  const before = await dump();
  const result = await run();
  t.deepEqual(await dump(), before, 'the source is not written');
  return result;
}

const stamp = (e: Engine) => (e === 'postgres' ? 'timestamptz(6)' : 'datetime(6)');
const then = (e: Engine) => (e === 'postgres' ? "now() - interval '1 hour'" : 'UTC_TIMESTAMP(6) - INTERVAL 1 HOUR');
const sqlText = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;

// Text keys that differ only in case, spaces, quoting, escapes, normalization, length.
const KEYS = ['Abc', 'abd', 'trail ', "it's", 'a\\b', 'ab', 'x%', '_', 'e\u0301', 'é', 'ü'.repeat(600), 'tab\tkey', 'nl\nkey', '日本'];
for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql'], ['postgres', 'postgres']] as const) {
  test(`${from} → ${to}: tricky text keys: only the keys gone from the source are deleted`, async (t) => {
    const pgStr = (s: string) => (from === 'postgres' ? `E${sqlText(s)}` : sqlText(s));
    // MariaDB: a binary collation, so that é and e+U+0301 are two keys on the source too.
    const collate = from === 'mysql' ? ' CHARACTER SET utf8mb4 COLLATE utf8mb4_bin' : '';
    const { source, target, context } = await setUp(t, from, to, [
      `CREATE TABLE items (k varchar(700)${collate} PRIMARY KEY, v int NOT NULL, updated_at ${stamp(from)} NOT NULL)`,
      `INSERT INTO items VALUES ${KEYS.map((k, i) => `(${pgStr(k)}, ${String(i)}, ${then(from)})`).join(', ')}`,
    ], [{ name: 'items' }]);
    const all = 'SELECT k, v FROM items ORDER BY v';
    t.is((await rows(target, all)).length, KEYS.length);
    await execSql(source, [`DELETE FROM items WHERE k IN (${['ab', "it's", 'ü'.repeat(600), 'e\u0301', 'trail '].map(pgStr).join(', ')})`]);
    const sync = await syncReadOnly(t, source, ['items'], () => syncStep(context)) as Awaited<ReturnType<typeof syncStep>>;
    t.true(sync.caughtUp);
    t.deepEqual(sync.notes, []);
    t.is(await json(target, all), await json(source, all));
  });
}

for (const [from, to] of [['postgres', 'mysql'], ['mysql', 'postgres']] as const) {
  test(`${from} → ${to}: negative and extreme bigint keys, composite key with a text part`, async (t) => {
    const ids = ['-9223372036854775808', '-1', '0', '1', '9223372036854775807'];
    const { source, target, context } = await setUp(t, from, to, [
      `CREATE TABLE big (id bigint PRIMARY KEY, updated_at ${stamp(from)} NOT NULL)`,
      `INSERT INTO big VALUES ${ids.map((id) => `(${id}, ${then(from)})`).join(', ')}`,
      `CREATE TABLE pair (n int NOT NULL, code varchar(20) NOT NULL, updated_at ${stamp(from)} NOT NULL, PRIMARY KEY (n, code))`,
      `INSERT INTO pair VALUES (1, 'a', ${then(from)}), (1, 'b', ${then(from)}), (2, 'A', ${then(from)}), (2, 'b ', ${then(from)}), (-3, 'x''y', ${then(from)})`,
    ], [{ name: 'big' }, { name: 'pair' }]);
    await execSql(source, ['DELETE FROM big WHERE id IN (-1, 9223372036854775807)', "DELETE FROM pair WHERE (n = 1 AND code = 'a') OR n = -3"]);
    const sync = await syncReadOnly(t, source, ['big', 'pair'], () => syncStep(context)) as Awaited<ReturnType<typeof syncStep>>;
    t.is(sync.rowsDeleted, 4);
    t.is(await json(target, 'SELECT id FROM big ORDER BY id'), await json(source, 'SELECT id FROM big ORDER BY id'));
    t.is(await json(target, 'SELECT n, code FROM pair ORDER BY n, code'), await json(source, 'SELECT n, code FROM pair ORDER BY n, code'));
  });
}

test('postgres → postgres: numeric, uuid and char(n) keys; mysql decimal → postgres is skipped and named', async (t) => {
  const { source, target, context } = await setUp(t, 'postgres', 'postgres', [
    'CREATE TABLE num (k numeric(30,5) PRIMARY KEY, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO num VALUES (1.5, now() - interval '1 hour'), (2.00001, now() - interval '1 hour'), (-3, now() - interval '1 hour'), (12345678901234567890.12345, now() - interval '1 hour')",
    'CREATE TABLE ids (k uuid PRIMARY KEY, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO ids SELECT md5(g::text)::uuid, now() - interval '1 hour' FROM generate_series(1, 50) g",
    'CREATE TABLE padded (k char(8) PRIMARY KEY, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO padded VALUES ('a', now() - interval '1 hour'), ('b  ', now() - interval '1 hour'), ('c', now() - interval '1 hour')",
  ], [{ name: 'num' }, { name: 'ids' }, { name: 'padded' }]);
  await execSql(source, ['DELETE FROM num WHERE k IN (1.5, 12345678901234567890.12345)', "DELETE FROM ids WHERE k = md5('7')::uuid", "DELETE FROM padded WHERE k = 'b'"]);
  const sync = await syncReadOnly(t, source, ['num', 'ids', 'padded'], () => syncStep(context)) as Awaited<ReturnType<typeof syncStep>>;
  t.is(sync.rowsDeleted, 4);
  for (const table of ['num', 'ids', 'padded']) t.is(await json(target, `SELECT k FROM ${table} ORDER BY k`), await json(source, `SELECT k FROM ${table} ORDER BY k`));

  const other = await setUp(t, 'mysql', 'postgres', [
    'CREATE TABLE dtab (k decimal(10,2) PRIMARY KEY, updated_at datetime(6) NOT NULL)', 'INSERT INTO dtab VALUES (1.5, UTC_TIMESTAMP(6)), (2, UTC_TIMESTAMP(6))',
  ], [{ name: 'dtab' }]);
  await execSql(other.source, ['DELETE FROM dtab WHERE k = 2']);
  const skipped = await syncStep(other.context);
  t.is(skipped.rowsDeleted, 0);
  t.is(skipped.notes?.length, 1);
  t.regex(skipped.notes?.[0] ?? '', /dtab: deletes on the source are not detected \(key column k/);
});

test('a `where` filter: a row moved out is deleted on the target, moved back in is copied again; rows outside are never looked at as present', async (t) => {
  const { source, target, context } = await setUp(t, 'postgres', 'postgres', [
    'CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO orders SELECT g, CASE WHEN g % 10 = 0 THEN 'hidden' ELSE 'new' END, now() - interval '1 hour' FROM generate_series(1, 1500) g",
  ], [{ name: 'orders', where: "status <> 'hidden'" }]);
  const visible = "SELECT id, status FROM orders WHERE status <> 'hidden' ORDER BY id";
  t.is(await json(target, 'SELECT id, status FROM orders ORDER BY id'), await json(source, visible));
  await execSql(source, ["UPDATE orders SET status = 'hidden', updated_at = now() WHERE id IN (5, 1001)", 'DELETE FROM orders WHERE id IN (7, 20)']);
  const out = await syncReadOnly(t, source, ['orders'], () => syncStep(context)) as Awaited<ReturnType<typeof syncStep>>;
  t.is(out.rowsDeleted, 3, '5 and 1001 left the filter, 7 was deleted (20 was never copied)');
  t.is(await json(target, 'SELECT id, status FROM orders ORDER BY id'), await json(source, visible));
  await execSql(source, ["UPDATE orders SET status = 'back', updated_at = now() WHERE id IN (5, 10)"]);
  const back = await syncReadOnly(t, source, ['orders'], () => syncStep(context)) as Awaited<ReturnType<typeof syncStep>>;
  t.is(back.rowsDeleted, 0);
  t.is(await json(target, 'SELECT id, status FROM orders ORDER BY id'), await json(source, visible));
});

test('rows on the target the migration did not copy are never deleted: a table that held rows before the migration wrote to it gets no delete pass, and says so', async (t) => {
  const { source, target, context } = await setUp(t, 'postgres', 'mysql', [
    'CREATE TABLE orders (id int PRIMARY KEY, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO orders SELECT g, now() - interval '1 hour' FROM generate_series(1, 10) g",
  ], [{ name: 'orders' }], STAMP, [
    'CREATE TABLE orders (id int PRIMARY KEY, updated_at datetime(6) NOT NULL)', 'INSERT INTO orders VALUES (900, UTC_TIMESTAMP(6))',
  ]);
  t.is(await json(target, 'SELECT count(*) FROM orders WHERE id = 900'), '[["1"]]', 'the extra row survives the copy');
  await execSql(source, ['DELETE FROM orders WHERE id = 3']);
  const sync = await syncReadOnly(t, source, ['orders'], () => syncStep(context)) as Awaited<ReturnType<typeof syncStep>>;
  t.is(sync.rowsDeleted, 0);
  t.is(await json(target, 'SELECT count(*) FROM orders WHERE id IN (3, 900)'), '[["2"]]', 'the row it did not copy stays (and so, unseen, does the one deleted on the source)');
  t.regex(sync.notes?.join('\n') ?? '', /orders: deletes on the source are not detected \(the target table held rows before this migration first wrote to it/);
});

test('renamed table and key column with dedupe: a row the source has is never deleted', async (t) => {
  const { source, target, context } = await setUp(t, 'mysql', 'postgres', [
    'CREATE TABLE src_items (id int PRIMARY KEY, sku varchar(20) NOT NULL, updated_at datetime(6) NOT NULL)',
    "INSERT INTO src_items SELECT seq, CONCAT('sku', seq % 300), UTC_TIMESTAMP(6) - INTERVAL 1 HOUR FROM seq_1_to_1200",
  ], [{ name: 'src_items', target: 'dst_items', columns: [{ name: 'id', target: 'item_id' }], dedupe: { by: ['sku'] } }]);
  t.is((await rows(target, 'SELECT item_id FROM dst_items')).length, 300);
  // Winners are ids 1..300 (first by key); delete some winners and some losers.
  await execSql(source, ['DELETE FROM src_items WHERE id IN (1, 2, 3, 301, 302, 1200)']);
  const sync = await syncReadOnly(t, source, ['src_items'], () => syncStep(context)) as Awaited<ReturnType<typeof syncStep>>;
  t.is(sync.rowsDeleted, 3);
  const sourceIds = new Set((await rows(source, 'SELECT id FROM src_items')).map((r) => r[0]));
  const targetIds = (await rows(target, 'SELECT item_id FROM dst_items')).map((r) => r[0]);
  t.is(targetIds.length, 297);
  t.true(targetIds.every((id) => sourceIds.has(id)));
});

async function killSource(source: string): Promise<void> {
  await adminQuery('postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${databaseOf(source)}' AND pid <> pg_backend_pid()`);
}

test('the source connection killed between lookup and re-check: nothing is deleted, the error is clear', async (t) => {
  const { source, target, context } = await setUp(t, 'postgres', 'postgres', [
    'CREATE TABLE orders (id int PRIMARY KEY, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO orders SELECT g, now() - interval '1 hour' FROM generate_series(1, 3000) g",
  ], [{ name: 'orders' }]);
  await execSql(source, ['DELETE FROM orders WHERE id % 100 = 0']);
  const error = await t.throwsAsync(syncStep(context, {}, { beforeRecheck: () => killSource(source) }));
  t.log(error.message);
  t.regex(error.message, /^looking for rows deleted on the source, table orders: .*connection/);
  t.is(await json(target, 'SELECT count(*) FROM orders'), '[["3000"]]', 'nothing deleted that was not confirmed');
  const again = await syncStep(context);
  t.is(again.rowsDeleted, 30);
});

test('an abort in the middle of the pass: only keys gone from the source were deleted, and a rerun finishes', async (t) => {
  const { source, target, context } = await setUp(t, 'postgres', 'postgres', [
    'CREATE TABLE orders (id int PRIMARY KEY, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO orders SELECT g, now() - interval '1 hour' FROM generate_series(1, 5000) g",
  ], [{ name: 'orders' }]);
  await execSql(source, ['DELETE FROM orders WHERE id % 7 = 0']);
  const controller = new AbortController();
  let pages = 0;
  await t.throwsAsync(syncStep({ ...context, signal: controller.signal }, {}, {
    beforeRecheck: () => {
      if (++pages === 2) controller.abort(new Error('stopped by the test'));
      return Promise.resolve();
    },
  }), { message: /stopped by the test/ });
  const left = (await rows(target, 'SELECT id FROM orders ORDER BY id')).map((r) => Number(r[0]));
  const sourceIds = new Set((await rows(source, 'SELECT id FROM orders')).map((r) => Number(r[0])));
  const gone = [...Array(5000).keys()].map((i) => i + 1).filter((id) => !left.includes(id));
  t.true(gone.every((id) => !sourceIds.has(id)), 'every deleted key is gone from the source');
  t.true(gone.length < 714, 'the pass stopped early');
  const rerun = await syncStep(context);
  t.is(rerun.rowsDeleted, 714 - gone.length);
  t.is(await json(target, 'SELECT id FROM orders ORDER BY id'), await json(source, 'SELECT id FROM orders ORDER BY id'));
});

for (const [from, to] of [['postgres', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: 100k rows, composite key: time and memory of a caught-up pass`, async (t) => {
    t.timeout(300_000);
    const { source, target, context } = await setUp(t, from, to, [
      'CREATE TABLE big (a int NOT NULL, b varchar(12) NOT NULL, updated_at timestamptz(6) NOT NULL, PRIMARY KEY (a, b))',
      "INSERT INTO big SELECT g / 2, 'k' || (g % 2), now() - interval '1 hour' FROM generate_series(0, 99999) g",
    ], [{ name: 'big' }]);
    await execSql(source, ["DELETE FROM big WHERE a % 50 = 0 AND b = 'k1'"]);
    const rss = process.memoryUsage().rss;
    const started = performance.now();
    const sync = await syncStep(context);
    const seconds = (performance.now() - started) / 1000;
    t.log(`${from} → ${to} 100k: ${seconds.toFixed(1)} s, rows deleted ${String(sync.rowsDeleted)}, rss +${String(Math.round((process.memoryUsage().rss - rss) / 2 ** 20))} MiB`);
    t.is(sync.rowsDeleted, 1000);
    t.is(await json(target, 'SELECT count(*) FROM big'), '[["99000"]]');
    const idle = performance.now();
    t.is((await syncStep(context)).rowsDeleted, 0);
    t.log(`${from} → ${to} 99k, nothing changed: ${((performance.now() - idle) / 1000).toFixed(1)} s`);
  });
}

test('postgres → postgres: 100k rows, integer key: time of a caught-up pass', async (t) => {
  t.timeout(300_000);
  const { source, context } = await setUp(t, 'postgres', 'postgres', [
    'CREATE TABLE flat (id int PRIMARY KEY, updated_at timestamptz(6) NOT NULL)',
    "INSERT INTO flat SELECT g, now() - interval '1 hour' FROM generate_series(1, 100000) g",
  ], [{ name: 'flat' }]);
  await execSql(source, ['DELETE FROM flat WHERE id % 100 = 0']);
  const started = performance.now();
  t.is((await syncStep(context)).rowsDeleted, 1000);
  const idle = performance.now();
  t.is((await syncStep(context)).rowsDeleted, 0);
  t.log(`integer key 100k: ${((idle - started) / 1000).toFixed(1)} s with 1000 deletes, ${((performance.now() - idle) / 1000).toFixed(1)} s with none`);
});

test('Sequence: a forged window history in the checkpoint does not make rows be skipped for ever', async (t) => {
  const { source, target, context } = await setUp(t, 'postgres', 'postgres', [
    'CREATE TABLE orders (id int PRIMARY KEY, seq bigint NOT NULL)', 'INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g',
  ], [{ name: 'orders' }], { column: 'seq', mode: 'Sequence', overlapSeconds: 60 });
  await syncStep(context);
  const session = await openSession(target, { readOnly: false });
  try {
    const id = { migration: context.settings.uid, table: 'sync:orders', shard: 0 };
    const stored = await readCheckpoint(session, id);
    t.is(stored?.lastKey?.[0]?.toString(), '100');
    // A target user rewrites the history: an old reading with a huge maximum.
    await writeCheckpoint(session, id, { lastKey: ['100', JSON.stringify([[1, '99999999']])], rowsCopied: 0, done: false, boundaries: [] });
  } finally {
    await session.close();
  }
  await execSql(source, ['INSERT INTO orders SELECT g, g FROM generate_series(101, 105) g']);
  await syncReadOnly(t, source, ['orders'], () => syncStep(context));
  t.is(await json(target, 'SELECT id FROM orders ORDER BY id'), await json(source, 'SELECT id FROM orders ORDER BY id'));
});

test('Sequence: the top row deleted, then a late commit below the old maximum: still copied', async (t) => {
  const { source, target, context } = await setUp(t, 'postgres', 'postgres', [
    'CREATE TABLE orders (id int PRIMARY KEY, seq bigint NOT NULL)', 'INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g',
  ], [{ name: 'orders' }], { column: 'seq', mode: 'Sequence', overlapSeconds: 5 });
  const late = await openSession(source, { readOnly: false });
  try {
    await late.query('START TRANSACTION');
    await late.query('INSERT INTO orders VALUES (150, 150)'); // took 150, commits late
    await execSql(source, ['INSERT INTO orders VALUES (160, 160)']);
    await syncStep(context); // reads maximum 160
    await execSql(source, ['DELETE FROM orders WHERE id = 160']);
    await new Promise((resolve) => setTimeout(resolve, 5500)); // the reading of 160 is now older than the window
    t.is((await syncStep(context)).rowsDeleted, 1); // the watermark falls back to 100
    await late.query('COMMIT');
  } finally {
    await late.close();
  }
  // Within the window of the last reading (100), beyond that of the reading of 160.
  const started = performance.now();
  await syncStep(context);
  t.log(`last sync took ${(performance.now() - started).toFixed(0)} ms`);
  t.is(await json(target, 'SELECT id FROM orders ORDER BY id'), await json(source, 'SELECT id FROM orders ORDER BY id'), 'the late row 150 is on the target');
});
