// Database adapters: what each engine declares, and the SQL the engine builds from it (the same
// statements as before the adapters, byte for byte where the engine compared names).
import test from 'ava';
import { adapterFor, type DatabaseAdapter } from '../../src/engine/db/adapter.ts';
import { tableExists } from '../../src/engine/db/catalog.ts';
import { tableAndSchema } from '../../src/engine/db/dialect.ts';
import { mysqlAdapter } from '../../src/engine/db/mysql/adapter.ts';
import { postgresAdapter } from '../../src/engine/db/postgres/adapter.ts';
import type { SqlRow, SqlSession } from '../../src/engine/db/session.ts';
import { createCheckpointTableSql } from '../../src/engine/copy/checkpoint.ts';
import { createHistoryTableSql } from '../../src/engine/migrations/history.ts';
import { databaseLockName, tryWithLock, withMigrationLock } from '../../src/engine/migrations/lock.ts';
import { truncateTables } from '../../src/engine/rollback/rollback.ts';

/** An in-memory SqlSession: records every statement, answers from `answer`. */
function recordingSession(adapter: DatabaseAdapter, answer: (sql: string, params: readonly unknown[]) => SqlRow[] | Error = () => []) {
  const statements: { sql: string; params: readonly unknown[] }[] = [];
  const session: SqlSession = {
    engine: adapter.engine,
    dialect: adapter,
    query: (sql, params = []) => {
      statements.push({ sql, params });
      const result = answer(sql, params);
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    },
    close: () => Promise.resolve(),
  };
  return { session, statements, sql: () => statements.map((s) => s.sql) };
}

test('adapterFor: one adapter per engine, and it says which', (t) => {
  t.is(adapterFor('postgres'), postgresAdapter);
  t.is(adapterFor('mysql'), mysqlAdapter);
  t.is(postgresAdapter.engine, 'postgres');
  t.is(mysqlAdapter.engine, 'mysql');
});

test('capabilities: transactions, DDL, locks, enum types, storage engine, zero dates, bulk format', (t) => {
  t.true(postgresAdapter.transactionalDdl);
  t.false(mysqlAdapter.transactionalDdl);
  t.is(postgresAdapter.beginStatement, 'BEGIN');
  t.is(mysqlAdapter.beginStatement, 'START TRANSACTION');
  t.is(postgresAdapter.lockScope, 'database');
  t.is(mysqlAdapter.lockScope, 'server');
  t.true(postgresAdapter.namedEnumTypes);
  t.false(mysqlAdapter.namedEnumTypes);
  t.is(postgresAdapter.storageEngine, undefined);
  t.is(mysqlAdapter.storageEngine, 'InnoDB');
  t.false(postgresAdapter.zeroDates);
  t.true(mysqlAdapter.zeroDates);
  t.is(postgresAdapter.bulkFormat, 'copy-text');
  t.is(mysqlAdapter.bulkFormat, 'load-data');
  t.is(postgresAdapter.foreignKeyChecks, undefined);
  t.deepEqual(mysqlAdapter.foreignKeyChecks, { off: 'SET SESSION FOREIGN_KEY_CHECKS = 0', on: 'SET SESSION FOREIGN_KEY_CHECKS = 1' });
  t.is(postgresAdapter.currentUserSql, 'SELECT current_user AS who');
  t.is(mysqlAdapter.currentUserSql, 'SELECT CURRENT_USER() AS who');
});

test('quoting: identifiers, qualified names, literals, placeholders', (t) => {
  t.is(postgresAdapter.quoteIdent('a"b'), '"a""b"');
  t.is(mysqlAdapter.quoteIdent('a`b'), '`a``b`');
  t.is(postgresAdapter.quoteQualified('shop."Order.Items"'), '"shop"."Order.Items"');
  t.is(mysqlAdapter.quoteQualified('shop.`Order.Items`'), '`shop`.`Order.Items`');
  // quote_literal's spelling: the same text whatever standard_conforming_strings says.
  t.is(postgresAdapter.quoteLiteral("it's \\"), "E'it''s \\\\'");
  t.is(postgresAdapter.quoteLiteral("it's"), "'it''s'");
  t.is(mysqlAdapter.quoteLiteral("it's \\"), "'it''s \\\\'");
  t.is(postgresAdapter.placeholder(3), '$3');
  t.is(mysqlAdapter.placeholder(3), '?');
  t.deepEqual(tableAndSchema('shop.orders'), { table: 'orders', schema: 'shop' });
  t.deepEqual(tableAndSchema('orders'), { table: 'orders', schema: undefined });
});

test('read-only session set-up: a startup option on PostgreSQL, a statement on MySQL', (t) => {
  t.true(postgresAdapter.sessionSetup({ readOnly: true }).startupOptions.includes('-c default_transaction_read_only=on'));
  t.false(postgresAdapter.sessionSetup({ readOnly: false }).startupOptions.includes('-c default_transaction_read_only=on'));
  t.true(postgresAdapter.sessionSetup({ readOnly: true }).startupOptions.includes('-c TimeZone=UTC'));
  t.deepEqual(postgresAdapter.sessionSetup({ readOnly: true }).statements, []);
  t.deepEqual(mysqlAdapter.sessionSetup({ readOnly: true }), {
    startupOptions: [],
    statements: ["SET time_zone = '+00:00', NAMES utf8mb4 COLLATE utf8mb4_unicode_ci", 'SET SESSION TRANSACTION READ ONLY'],
  });
  t.deepEqual(mysqlAdapter.sessionSetup({ readOnly: false }).statements, ["SET time_zone = '+00:00', NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"]);
});

test('bookkeeping tables: the history and checkpoint tables as each engine creates them', (t) => {
  const pg = recordingSession(postgresAdapter).session;
  const my = recordingSession(mysqlAdapter).session;
  t.is(createHistoryTableSql(pg, 'hist'), 'CREATE TABLE IF NOT EXISTS "hist" (version text NOT NULL PRIMARY KEY, description text NOT NULL, '
    + 'checksum text NOT NULL, installed_by text NOT NULL, installed_on timestamptz NOT NULL DEFAULT now(), execution_ms bigint NOT NULL, success boolean NOT NULL)');
  t.is(createHistoryTableSql(my, 'hist'), 'CREATE TABLE IF NOT EXISTS `hist` (version varchar(100) NOT NULL PRIMARY KEY, description text NOT NULL, '
    + 'checksum varchar(64) NOT NULL, installed_by varchar(255) NOT NULL, installed_on datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), '
    + 'execution_ms bigint NOT NULL, success tinyint(1) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin');
  t.is(createCheckpointTableSql(postgresAdapter), 'CREATE TABLE IF NOT EXISTS "dataops_copy_checkpoint" (migration_uid text NOT NULL, table_name text NOT NULL, shard integer NOT NULL, '
    + 'last_key text, rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, boundaries text NOT NULL, updated_at timestamptz NOT NULL, PRIMARY KEY (migration_uid, table_name, shard))');
  t.is(createCheckpointTableSql(mysqlAdapter), 'CREATE TABLE IF NOT EXISTS `dataops_copy_checkpoint` (migration_uid varchar(255) NOT NULL, table_name varchar(255) NOT NULL, shard integer NOT NULL, '
    + 'last_key longtext, rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, boundaries longtext NOT NULL, updated_at datetime(6) NOT NULL, PRIMARY KEY (migration_uid, table_name, shard))'
    + ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin');
  t.is(postgresAdapter.booleanParam(true), true);
  t.is(mysqlAdapter.booleanParam(true), 1);
  t.is(mysqlAdapter.booleanParam(false), 0);
  t.is(postgresAdapter.booleanLiteral(false), 'false');
  t.is(mysqlAdapter.booleanLiteral(false), '0');
});

test('upsert: overwrite some columns, or keep the existing row (never INSERT IGNORE)', (t) => {
  const key = ['migration', 'table_name', 'shard'];
  t.is(postgresAdapter.onConflictSql(key, ['done', 'updated_at']), ' ON CONFLICT (migration, table_name, shard) DO UPDATE SET done = EXCLUDED.done, updated_at = EXCLUDED.updated_at');
  t.is(postgresAdapter.onConflictSql(key, []), ' ON CONFLICT (migration, table_name, shard) DO NOTHING');
  t.is(mysqlAdapter.onConflictSql(key, ['done', 'updated_at']), ' ON DUPLICATE KEY UPDATE done = VALUES(done), updated_at = VALUES(updated_at)');
  t.is(mysqlAdapter.onConflictSql(key, []), ' ON DUPLICATE KEY UPDATE shard = shard');
  t.notRegex(mysqlAdapter.onConflictSql(key, []), /IGNORE/i);
});

test('SQL fragments: bytes, sha256, intervals, random, text joins, truncating division', (t) => {
  t.is(postgresAdapter.bytesLiteral(Buffer.from([0xab, 1])), "pg_catalog.decode('ab01', 'hex')");
  t.is(mysqlAdapter.bytesLiteral(Buffer.from([0xab, 1])), "X'ab01'");
  t.is(postgresAdapter.sha256HexSql('"e"'), `encode(sha256(convert_to("e", 'UTF8')), 'hex')`);
  t.is(mysqlAdapter.sha256HexSql('`e`'), 'SHA2(`e`, 256)');
  t.is(postgresAdapter.timestampMinusSecondsSql("'2024-01-01'", 30), "CAST('2024-01-01' AS timestamp) - interval '30 seconds'");
  t.is(mysqlAdapter.timestampMinusSecondsSql("'2024-01-01'", 30), "CAST('2024-01-01' AS DATETIME(6)) - INTERVAL 30 SECOND");
  t.is(postgresAdapter.randomSql, 'random()');
  t.is(mysqlAdapter.randomSql, 'RAND()');
  t.is(postgresAdapter.joinAsTextSql(['a', 'b'], "'/'"), "a::text || '/' || b::text");
  t.is(mysqlAdapter.joinAsTextSql(['a', 'b'], "'/'"), "CONCAT_WS('/', a, b)");
  t.is(postgresAdapter.truncatingDivisionSql('k', 10n, true), '(k / 10::bigint)');
  t.is(postgresAdapter.truncatingDivisionSql('k', 10n, false), 'div(k::numeric, 10::numeric)');
  t.is(postgresAdapter.truncatingDivisionSql('k', 1n << 63n, true), `div(k::numeric, ${(1n << 63n).toString()}::numeric)`, 'a divisor past bigint goes through numeric');
  t.is(mysqlAdapter.truncatingDivisionSql('k', 10n, false), '(k DIV 10)');
  t.is(postgresAdapter.offsetDivisionSql('k', -5n, 10n), 'div(k::numeric - -5::numeric, 10::numeric)');
  t.is(mysqlAdapter.offsetDivisionSql('k', 5n, 10n), '((CAST(k AS DECIMAL(21,0)) - 5) DIV 10)');
});

test('script syntax: MySQL has DELIMITER, backticks and # comments; PostgreSQL dollar quotes and nested comments', (t) => {
  t.like(mysqlAdapter.scriptSyntax, { delimiterCommand: true, backtickIdentifiers: true, hashComments: true, dollarQuotes: false, nestedBlockComments: false });
  t.like(postgresAdapter.scriptSyntax, { delimiterCommand: false, backtickIdentifiers: false, hashComments: false, dollarQuotes: true, nestedBlockComments: true });
});

test('table exists: the current schema / database unless one is named', async (t) => {
  t.deepEqual(postgresAdapter.tableExistsQuery('orders', undefined).params, ['orders']);
  t.regex(postgresAdapter.tableExistsQuery('orders', undefined).sql, /table_schema = current_schema\(\)/);
  t.deepEqual(postgresAdapter.tableExistsQuery('orders', 'shop').params, ['orders', 'shop']);
  t.deepEqual(mysqlAdapter.tableExistsQuery('orders', 'shop').params, ['shop', 'orders']);
  t.regex(mysqlAdapter.tableExistsQuery('orders', undefined).sql, /TABLE_SCHEMA = DATABASE\(\)/);
  const found = recordingSession(mysqlAdapter, (sql) => (sql.includes('information_schema') ? [{ found: '1' }] : []));
  t.true(await tableExists(found.session, 'shop.orders'));
  t.deepEqual(found.statements[0]?.params, ['shop', 'orders']);
  t.false(await tableExists(recordingSession(postgresAdapter).session, 'orders'));
});

test('locks: the name says the database where locks are server wide', async (t) => {
  t.is(await databaseLockName(recordingSession(postgresAdapter).session, 'dataops_migrate', 'hist'), 'dataops_migrate:hist');
  const my = recordingSession(mysqlAdapter, (sql) => (sql === 'SELECT DATABASE() AS db' ? [{ db: 'shop' }] : []));
  t.is(await databaseLockName(my.session, 'dataops_migrate', 'hist'), 'dataops_migrate:shop.hist');
});

test('locks: GET_LOCK 1 runs the work and releases; 0 is a timeout; NULL an error', async (t) => {
  const getLock = (acquired: string | null) => recordingSession(mysqlAdapter, (sql) => (sql.startsWith('SELECT GET_LOCK') ? [{ acquired }] : []));
  const free = getLock('1');
  t.is(await withMigrationLock(free.session, 'l', () => Promise.resolve('done'), { timeoutSeconds: 5 }), 'done');
  t.deepEqual(free.sql(), ['SELECT GET_LOCK(?, ?) AS acquired', 'SELECT RELEASE_LOCK(?)']);
  t.deepEqual(free.statements[0]?.params, ['l', 5]);
  await t.throwsAsync(withMigrationLock(getLock('0').session, 'l', () => Promise.resolve('done'), { timeoutSeconds: 5 }),
    { message: /timed out after 5 s waiting for the migration lock "l"/ });
  await t.throwsAsync(withMigrationLock(getLock(null).session, 'l', () => Promise.resolve('done'), { timeoutSeconds: 5 }),
    { message: 'cannot take the migration lock "l": GET_LOCK returned nothing' });
});

test('locks: a PostgreSQL wait is bounded by lock_timeout, put back afterwards; a timeout names the lock', async (t) => {
  const timeout = Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });
  const pg = recordingSession(postgresAdapter, (sql) => {
    if (sql.startsWith("SELECT current_setting('lock_timeout')")) return [{ value: '7s' }];
    return sql.startsWith('SELECT pg_advisory_lock') ? timeout : [];
  });
  await t.throwsAsync(withMigrationLock(pg.session, 'l', () => Promise.resolve(1), { timeoutSeconds: 2 }), { message: /timed out after 2 s waiting for the migration lock "l"/ });
  t.deepEqual(pg.statements.map((s) => s.params), [[], ['2000ms'], ['l'], ['7s']]);
});

test('try-lock: the work runs only when the lock was free', async (t) => {
  const taken = recordingSession(postgresAdapter, (sql) => (sql.startsWith('SELECT pg_try_advisory_lock') ? [{ taken: 'f' }] : []));
  t.is(await tryWithLock(taken.session, 'l', () => Promise.resolve('ran')), undefined);
  t.deepEqual(taken.sql(), ['SELECT pg_try_advisory_lock(hashtext($1)) AS taken']);
  const free = recordingSession(mysqlAdapter, (sql) => (sql.startsWith('SELECT GET_LOCK') ? [{ taken: '1' }] : []));
  t.is(await tryWithLock(free.session, 'l', () => Promise.resolve('ran')), 'ran');
  t.deepEqual(free.sql(), ['SELECT GET_LOCK(?, 0) AS taken', 'SELECT RELEASE_LOCK(?)']);
});

test('truncate: one statement on PostgreSQL; one per table with foreign key checks off on MySQL', async (t) => {
  const exists = (sql: string): SqlRow[] => (sql.includes('information_schema') ? [{ found: '1' }] : []);
  const pg = recordingSession(postgresAdapter, exists);
  t.deepEqual(await truncateTables(pg.session, ['a', 'b']), ['a', 'b']);
  t.deepEqual(pg.sql().filter((s) => !s.includes('information_schema')), ['TRUNCATE TABLE "a", "b"']);
  const my = recordingSession(mysqlAdapter, exists);
  t.deepEqual(await truncateTables(my.session, ['a', 'b']), ['a', 'b']);
  t.deepEqual(my.sql().filter((s) => !s.includes('information_schema')), [
    'SET SESSION FOREIGN_KEY_CHECKS = 0', 'TRUNCATE TABLE `a`', 'TRUNCATE TABLE `b`', 'SET SESSION FOREIGN_KEY_CHECKS = 1',
  ]);
});

test('server flavor: MariaDB told from MySQL by its version; none on PostgreSQL', async (t) => {
  t.is(await postgresAdapter.serverFlavor(recordingSession(postgresAdapter).session), undefined);
  t.is(await mysqlAdapter.serverFlavor(recordingSession(mysqlAdapter, () => [{ v: '11.4.2-MariaDB' }]).session), 'mariadb');
  t.is(await mysqlAdapter.serverFlavor(recordingSession(mysqlAdapter, () => [{ v: '8.4.0' }]).session), 'mysql');
});
