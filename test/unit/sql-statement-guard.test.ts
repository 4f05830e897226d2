// The last gate before a built statement reaches the source: one read-only SELECT (or one
// COPY of one) passes; stacked statements, file and program output, locking and writes do not.
import test from 'ava';
import { assertMysqlSelect, assertPostgresCopyOut, assertPostgresSelect, UnsafeStatement } from '../../src/engine/sql/statement-guard.ts';

const PG_SELECT = `SELECT "id", ("total" * 100) FROM (SELECT dataops_t.*, ROW_NUMBER() OVER (PARTITION BY "email" ORDER BY "id" ASC) AS dataops_rank FROM "shop"."orders" AS dataops_t WHERE (status <> 'test')) AS dataops_deduped WHERE dataops_rank = 1 AND "id" > '5' ORDER BY "id"`;
const MY_SELECT = "SELECT `id`, LOWER(`email`) FROM (SELECT dataops_t.*, ROW_NUMBER() OVER (PARTITION BY `email` ORDER BY `updated_at` DESC, `id` DESC) AS dataops_rank FROM `customers` AS dataops_t WHERE (active = 1)) AS dataops_deduped WHERE dataops_rank = 1 AND `id` > ? ORDER BY `id`";

test('a copy of one select, and one select, pass on PostgreSQL', (t) => {
  t.notThrows(() => { assertPostgresCopyOut(`COPY (${PG_SELECT}) TO STDOUT`); });
  t.notThrows(() => { assertPostgresSelect(PG_SELECT); });
  t.notThrows(() => { assertPostgresSelect('WITH x AS (SELECT 1 AS n) SELECT n FROM x UNION ALL SELECT 2'); });
});

test('PostgreSQL: stacked statements, files, programs, writes and locks are stopped before they are sent', (t) => {
  const copies = [
    "COPY (SELECT 1 FROM t WHERE (1=1)) TO STDOUT; COMMIT; BEGIN READ WRITE; DELETE FROM t; COPY (SELECT 1) TO STDOUT",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned'",
    "COPY (SELECT 1) TO '/tmp/pwned'",
    'COPY orders TO STDOUT',
    'COPY orders FROM STDIN',
    'COPY (SELECT id FROM orders FOR UPDATE) TO STDOUT',
    'COPY (WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d) TO STDOUT',
    'SELECT 1',
  ];
  for (const sql of copies) {
    const error = t.throws(() => { assertPostgresCopyOut(sql); }, { instanceOf: UnsafeStatement }, sql);
    t.true(error.message.startsWith('refusing to send the copy to the source: '), error.message);
  }
  for (const sql of ['SELECT 1; SELECT 2', 'SELECT 1 FROM t FOR UPDATE', 'SELECT * INTO copy_of_t FROM t', 'DELETE FROM t', 'SELECT (']) {
    t.throws(() => { assertPostgresSelect(sql, 'a validation query'); }, { instanceOf: UnsafeStatement, message: /^refusing to send a validation query to the source: / }, sql);
  }
});

test('MySQL: the built select passes; anything that would stack, write a file, lock or hide passes not', (t) => {
  t.notThrows(() => { assertMysqlSelect(MY_SELECT); });
  t.notThrows(() => { assertMysqlSelect("SELECT count(*) AS n FROM `orders` WHERE (status IN ('a;b', '--', '#')) AND `id` >= ?"); });
  const refused = [
    'SELECT 1; DELETE FROM orders',
    "SELECT 1 INTO OUTFILE '/tmp/pwned'",
    "SELECT * FROM orders INTO DUMPFILE '/tmp/pwned'",
    'SELECT id FROM orders FOR UPDATE',
    'SELECT id FROM orders LOCK IN SHARE MODE',
    'SELECT 1 -- trailing',
    '/*!50000 DELETE FROM orders */ SELECT 1',
    'DELETE FROM orders',
    'SELECT @x := 1',
    'SELECT SLEEP(5)',
    'SELECT (1',
  ];
  for (const sql of refused) t.throws(() => { assertMysqlSelect(sql, 'the copy'); }, { instanceOf: UnsafeStatement, message: /^refusing to send the copy to the source: / }, sql);
});
