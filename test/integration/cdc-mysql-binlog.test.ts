// MariaDB binlog capture on the real server, beyond the live-writer runs of cdc-mysql.test.ts:
// prerequisites refused with their reasons, every value type arriving through the binlog exactly
// as the copy reads it, other tables ignored, and a TRUNCATE of a captured table stopping the
// applier with a reason (again after a restart: it is not skipped).
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type mysql from 'mysql2/promise';
import { BinlogCaptureRefused, currentBinlogPosition, openBinlogSnapshot } from '../../src/engine/db/mysql/binlog-capture.ts';
import { binlogServerId, openBinlogStream, type BinlogMessage } from '../../src/engine/db/mysql/binlog-stream.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import type { CaptureTable, CapturedChange, CapturedValue } from '../../src/engine/sync/cdc-apply.ts';
import { followBinlog } from '../../src/engine/sync/cdc-follow-mysql.ts';
import { databaseOf, freshMysqlDatabase, testAccount } from '../support/databases.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('prerequisites: a table without a primary key and an account without replication grants are refused, with every reason', async (t) => {
  const url = await freshMysqlDatabase(t, 'cdc_pre');
  const database = databaseOf(url);
  const admin = await connectMysql(url, { readOnly: false });
  t.teardown(() => admin.end());
  await admin.query('CREATE TABLE loose (a int, b text)');
  await admin.query('CREATE TABLE keyed (id int PRIMARY KEY, code int NOT NULL UNIQUE, b text)');
  const loose = await t.throwsAsync(openBinlogSnapshot({ url }, [{ schema: database, name: 'loose', key: ['a'] }]), { instanceOf: BinlogCaptureRefused });
  t.regex(loose.message, /table .*\.loose has no primary key/);
  // Another unique NOT NULL key than the primary key is a key rows can be found by.
  const snapshot = await openBinlogSnapshot({ url }, [{ schema: database, name: 'keyed', key: ['code'] }]);
  t.is(snapshot.method, 'mariadb-status');
  await snapshot.release();
  const wrongKey = await t.throwsAsync(openBinlogSnapshot({ url }, [{ schema: database, name: 'keyed', key: ['b'] }]), { instanceOf: BinlogCaptureRefused });
  t.regex(wrongKey.message, /\(b\) is not its primary key or a unique index/);

  const account = await testAccount(t, 'mysql', { prefix: 'cdc_ro' });
  await account.grantOn(url, [`GRANT SELECT ON \`${database}\`.* TO ${account.grantee}`]);
  const grants = await t.throwsAsync(openBinlogSnapshot({ url: account.urlFor(url) }, [{ schema: database, name: 'keyed', key: ['id'] }]), { instanceOf: BinlogCaptureRefused });
  t.regex(grants.message, /lacks REPLICATION SLAVE/);
  t.regex(grants.message, /lacks REPLICATION CLIENT/);
  t.notRegex(grants.message, /binlog_format|binlog_row_image|log_bin/, 'the test server logs rows in full');
  await account.grantOn(url, [`GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO ${account.grantee}`]);
  const granted = await openBinlogSnapshot({ url: account.urlFor(url) }, [{ schema: database, name: 'keyed', key: ['id'] }]);
  await granted.release();
});

const TYPES = `CREATE TABLE v (id bigint unsigned PRIMARY KEY, s bigint, d decimal(65,30), dt datetime(6), dt0 datetime, ts timestamp(6) NULL, dd date,
  tm time(6), y year, j json, b blob, bin binary(4), vb varbinary(10), bt bit(10), f float, db double, e enum('a','b'), st set('x','y'),
  tx text, ch char(3), ti tinyint(1), mi mediumint unsigned) DEFAULT CHARSET=utf8mb4`;
const ROWS = [
  `(18446744073709551615, -9223372036854775808, -12345678901234567890123456789012345.123456789012345678901234567890, '2024-02-29 23:59:59.000001',
    '1000-01-01 00:00:00', '2038-01-19 03:14:07.999999', '9999-12-31', '-838:59:58.999999', 2155,
    '{"big": 12345678901234567890, "u": "ü€😀", "n": [1.5e300, -0.0]}', x'00ff1000', x'00000001', x'', b'1010101010',
    3.4e38, 1e308, 'b', 'x,y', 'tab\\there ''q'' \\\\ 😀', 'ab', 1, 16777215)`,
  '(9007199254740993, 9007199254740993, 0.000000000000000000000000000001, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0.1, 5e-324, NULL, \'\', \'\', \'\', 0, 0)',
];

test('every value type arrives through the binlog as the copy reads it (DECIMAL, DATETIME(6), JSON, BLOB, BIGINT UNSIGNED beyond 2^53 …)', async (t) => {
  const url = await freshMysqlDatabase(t, 'cdc_val');
  const admin = await connectMysql(url, { readOnly: false });
  t.teardown(() => admin.end());
  await admin.query(TYPES);
  const start = await currentBinlogPosition(admin);
  const changes: CapturedChange[] = [];
  const stream = await openBinlogStream({
    source: { url }, start, tables: { [databaseOf(url)]: ['v'] }, serverId: binlogServerId(randomUUID()),
    onMessage: (message: BinlogMessage) => {
      if (message.tag === 'change') changes.push(message.change);
      return Promise.resolve();
    },
    onIdle: () => undefined,
  });
  t.teardown(() => stream.stop());
  await admin.query(`INSERT INTO v VALUES ${ROWS.join(', ')}`);
  // As the copy reads: the text type cast, FLOAT as a double (planner.ts's exactRead).
  const [fields] = await admin.query('SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = \'v\' ORDER BY ORDINAL_POSITION');
  const list = (fields as { name: string; type: string }[]).map((c) => (c.type === 'float' ? `(\`${c.name}\` + 0e0)` : `\`${c.name}\``));
  const [read] = await admin.query({ sql: `SELECT ${list.join(', ')} FROM v ORDER BY id DESC`, rowsAsArray: true });
  await admin.query('UPDATE v SET id = 1, tx = NULL WHERE id = 9007199254740993');
  await admin.query('DELETE FROM v');
  for (let i = 0; i < 50 && changes.length < 5; i++) await sleep(100);
  const shown = (row: readonly CapturedValue[] | undefined): unknown[] => (row ?? []).map((v) => (Buffer.isBuffer(v) ? `bytes ${v.toString('hex')}` : v));
  const inserts = changes.filter((c) => c.kind === 'insert');
  t.deepEqual(inserts.map((c) => shown(c.row)), (read as CapturedValue[][]).map(shown));
  t.deepEqual(changes.map((c) => c.kind), ['insert', 'insert', 'update', 'delete', 'delete']);
  const update = changes[2];
  t.true(update?.kind === 'update' && update.old?.[0] === '9007199254740993' && update.row[0] === '1', 'the key update carries both keys, exact');
});

const TABLE: CaptureTable = {
  sourceSchema: '', sourceTable: 'items', targetTable: 'items', key: ['id'],
  columns: [{ source: 'id', target: 'id' }, { source: 'val', target: 'val' }],
};

test('other tables (and their TRUNCATE) are not applied, a TRUNCATE of a captured table stops the applier with a reason, and again after a restart', async (t) => {
  const sourceUrl = await freshMysqlDatabase(t, 'cdc_src');
  const otherUrl = await freshMysqlDatabase(t, 'cdc_other');
  const targetUrl = await freshMysqlDatabase(t, 'cdc_tgt');
  const table = { ...TABLE, sourceSchema: databaseOf(sourceUrl) };
  const source = await connectMysql(sourceUrl, { readOnly: false });
  const other = await connectMysql(otherUrl, { readOnly: false });
  const target = await openSession(targetUrl, { readOnly: false });
  t.teardown(async () => {
    await source.end();
    await other.end();
    await target.close();
  });
  for (const connection of [source, other]) await connection.query('CREATE TABLE items (id int PRIMARY KEY, val text)');
  await source.query('CREATE TABLE items_log (id int PRIMARY KEY, val text)');
  await target.query('CREATE TABLE items (id int PRIMARY KEY, val text)');
  const start = await currentBinlogPosition(source);
  const uid = randomUUID();
  const follower = await followBinlog({ source: { url: sourceUrl }, target, uid, tables: [table], start });
  await source.query("INSERT INTO items VALUES (1, 'a'), (2, 'b')");
  await source.query("INSERT INTO items_log VALUES (1, 'not captured')");
  await other.query("INSERT INTO items VALUES (3, 'another database')");
  // The binlog is the server's: a table of the same name elsewhere is not the captured one.
  await other.query('TRUNCATE TABLE items');
  await follower.waitForPosition(await currentBinlogPosition(source), 10_000);
  t.deepEqual(await target.query('SELECT id, val FROM items ORDER BY id'), [{ id: '1', val: 'a' }, { id: '2', val: 'b' }]);
  await source.query('TRUNCATE TABLE items');
  const stopped = await t.throwsAsync(follower.ended);
  t.regex(stopped.message, /TRUNCATE TABLE items.*does not replay DDL or TRUNCATE/);
  await follower.stop();
  t.is((await target.query('SELECT COUNT(*) AS n FROM items'))[0]?.n, '2', 'the target keeps its rows');
  const again = await followBinlog({ source: { url: sourceUrl }, target, uid, tables: [table], start });
  await t.throwsAsync(again.ended, { message: /TRUNCATE TABLE items/ });
  await again.stop();
});

/** A source and a target database, each with an empty table `items` as TABLE captures it; both connections close when the test ends. */
async function emptyItemsOnSourceAndTarget(t: ExecutionContext): Promise<{ sourceUrl: string; table: CaptureTable; source: mysql.Connection; target: SqlSession }> {
  const sourceUrl = await freshMysqlDatabase(t, 'cdc_src');
  const targetUrl = await freshMysqlDatabase(t, 'cdc_tgt');
  const table = { ...TABLE, sourceSchema: databaseOf(sourceUrl) };
  const source = await connectMysql(sourceUrl, { readOnly: false });
  const target = await openSession(targetUrl, { readOnly: false });
  t.teardown(async () => {
    await source.end();
    await target.close();
  });
  await source.query('CREATE TABLE items (id int PRIMARY KEY, val text)');
  await target.query('CREATE TABLE items (id int PRIMARY KEY, val text)');
  return { sourceUrl, table, source, target };
}

test('the stream follows the binlog into its next file, and a heartbeat says where it is when the new file holds nothing yet', async (t) => {
  const { sourceUrl, table, source, target } = await emptyItemsOnSourceAndTarget(t);
  const start = await currentBinlogPosition(source);
  const follower = await followBinlog({ source: { url: sourceUrl }, target, uid: randomUUID(), tables: [table], start });
  t.teardown(() => follower.stop());
  await source.query("INSERT INTO items VALUES (1, 'before')");
  await source.query('FLUSH BINARY LOGS');
  await source.query("INSERT INTO items VALUES (2, 'after')");
  const afterRotation = await currentBinlogPosition(source);
  t.not(afterRotation.file, start.file);
  await follower.waitForPosition(afterRotation, 10_000);
  t.deepEqual(await target.query('SELECT id, val FROM items ORDER BY id'), [{ id: '1', val: 'before' }, { id: '2', val: 'after' }]);
  // Only the new file's header events after this: no commit reaches past them, a heartbeat does.
  await source.query('FLUSH BINARY LOGS');
  const empty = await currentBinlogPosition(source);
  await follower.waitForPosition(empty, 10_000);
  t.is(follower.progress().appliedPosition.file, empty.file);
});

test('an XA transaction on a captured table stops the applier with a reason (its rows are logged before its outcome)', async (t) => {
  const { sourceUrl, table, source, target } = await emptyItemsOnSourceAndTarget(t);
  // Teardowns run last-first: this before the connection closes.
  t.teardown(async () => { await source.query("XA ROLLBACK 'cdc'").catch(() => undefined); });
  const follower = await followBinlog({ source: { url: sourceUrl }, target, uid: randomUUID(), tables: [table], start: await currentBinlogPosition(source) });
  t.teardown(() => follower.stop());
  for (const statement of ["XA START 'cdc'", "INSERT INTO items VALUES (1, 'maybe')", "XA END 'cdc'", "XA PREPARE 'cdc'"]) await source.query(statement);
  await t.throwsAsync(follower.ended, { message: /XA transaction changed a captured table/ });
  t.deepEqual(await target.query('SELECT id FROM items'), []);
});
