// Trickle's Timestamp and Sequence modes on real servers: rows deleted on the source after the copy
// are deleted on the target once the sync is caught up (first and last key, a range, composite
// keys), a key the source has again by the time of the delete stays, and Sequence mode's overlap
// window copies a row whose value is below the watermark but which committed late.
import test, { type ExecutionContext } from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, schemaStep, syncStep } from '../../src/engine/pipeline/steps.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { execSql } from '../support/sql.ts';

async function rows(url: string, sql: string): Promise<string> {
  const session = await openSession(url, { readOnly: true });
  try {
    return JSON.stringify((await session.query(sql)).map((r) => Object.values(r).map((v) => v?.toString() ?? null)));
  } finally {
    await session.close();
  }
}

const ORDERS = 'SELECT id, status, qty FROM orders ORDER BY id';
const LINES = 'SELECT order_id, code, note FROM order_lines ORDER BY order_id, code';

function seed(engine: Engine, rowCount: number): string[] {
  const pg = engine === 'postgres';
  const stamp = pg ? 'timestamptz(6)' : 'datetime(6)';
  const then = pg ? "now() - interval '1 hour'" : 'UTC_TIMESTAMP(6) - INTERVAL 1 HOUR';
  const series = (n: number) => (pg ? `generate_series(1, ${String(n)}) g` : `seq_1_to_${String(n)} s`);
  const g = pg ? 'g' : 's.seq';
  const engineClause = pg ? '' : ' ENGINE=InnoDB';
  return [
    `CREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20) NOT NULL, qty int NOT NULL, seq bigint NOT NULL, updated_at ${stamp} NOT NULL)${engineClause}`,
    `INSERT INTO orders SELECT ${g}, 'new', ${g}, ${g}, ${then} FROM ${series(rowCount)}`,
    `CREATE TABLE order_lines (order_id int NOT NULL, code varchar(10) NOT NULL, note varchar(40), seq bigint NOT NULL, updated_at ${stamp} NOT NULL, PRIMARY KEY (order_id, code))${engineClause}`,
    `INSERT INTO order_lines SELECT ${g}, 'a', 'first', ${g}, ${then} FROM ${series(300)}`,
    `INSERT INTO order_lines SELECT ${g}, 'b', 'second', ${g}, ${then} FROM ${series(300)}`,
  ];
}

function manifest(from: Engine, to: Engine, incremental: { column: string; mode: 'Timestamp' | 'Sequence'; overlapSeconds: number }): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'sync-deletes', namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      schema: { createMissingTables: true }, tables: [{ name: 'orders' }, { name: 'order_lines' }],
      strategy: { type: 'Trickle', batchSize: 500, parallelism: 2, incremental },
    },
  };
}

async function copied(t: ExecutionContext, from: Engine, to: Engine, incremental: Parameters<typeof manifest>[2], rowCount = 2000) {
  const source = await freshDatabase(t, from);
  const target = await freshTargetDatabase(t, to);
  await execSql(source, seed(from, rowCount));
  const context = { source: { url: source }, target: { url: target }, settings: engineSettings(manifest(from, to, incremental)) };
  await schemaStep(context);
  await copyStep(context);
  t.is(await rows(target, ORDERS), await rows(source, ORDERS));
  return { source, target, context };
}

for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: Timestamp sync deletes on the target the rows deleted on the source, once caught up`, async (t) => {
    const { source, target, context } = await copied(t, from, to, { column: 'updated_at', mode: 'Timestamp', overlapSeconds: 5 });
    const now = from === 'postgres' ? 'now()' : 'UTC_TIMESTAMP(6)';
    await execSql(source, [
      // The first and the last key, a range across a page boundary of the key walk (1000), and scattered ones.
      'DELETE FROM orders WHERE id = 1 OR id = 2000 OR id BETWEEN 950 AND 1100 OR id % 97 = 0',
      "DELETE FROM order_lines WHERE (order_id = 1 AND code = 'a') OR (order_id = 300 AND code = 'b') OR order_id BETWEEN 10 AND 19",
      `UPDATE orders SET status = 'paid', qty = qty + 1, updated_at = ${now} WHERE id % 10 = 3`,
      `INSERT INTO orders VALUES (2001, 'new', 1, 2001, ${now}), (2002, 'new', 2, 2002, ${now})`,
      `UPDATE order_lines SET note = 'changed', updated_at = ${now} WHERE order_id = 5`,
    ]);
    const deletedOrders = 2 + 151 + [...Array(2000).keys()].map((i) => i + 1).filter((id) => id % 97 === 0 && !(id >= 950 && id <= 1100)).length;
    const deletedLines = 2 + 20;
    const sync = await syncStep(context);
    t.true(sync.caughtUp);
    t.is(sync.rowsDeleted, deletedOrders + deletedLines);
    t.deepEqual(sync.notes, []);
    t.is(await rows(target, ORDERS), await rows(source, ORDERS));
    t.is(await rows(target, LINES), await rows(source, LINES));

    const again = await syncStep(context);
    t.is(again.rowsDeleted, 0, 'nothing deleted since: nothing to delete');
    t.is(again.rowsSynced, 0);
  });
}

test('a key the source has again by the time of the delete stays on the target', async (t) => {
  const { source, target, context } = await copied(t, 'postgres', 'postgres', { column: 'updated_at', mode: 'Timestamp', overlapSeconds: 5 }, 300);
  await execSql(source, ['DELETE FROM orders WHERE id IN (10, 20, 30)']);
  let seen: string[] = [];
  const sync = await syncStep(context, {}, {
    // A writer between the lookup that found the keys missing and the delete: key 20 comes back
    // (with its old stamp, so no round would copy it again: only the re-check keeps it).
    beforeRecheck: async (table, keys) => {
      if (table !== 'orders') return;
      seen = keys.map((k) => k.join(','));
      await execSql(source, ["INSERT INTO orders VALUES (20, 'back', 20, 20, now() - interval '1 hour')"]);
    },
  });
  t.deepEqual(seen, ['10', '20', '30']);
  t.true(sync.caughtUp);
  t.is(sync.rowsDeleted, 2);
  t.is(await rows(target, 'SELECT id FROM orders WHERE id IN (10, 20, 30) ORDER BY id'), JSON.stringify([['20']]), 'the re-inserted key is not deleted');
});

test('a sync that is not caught up deletes nothing, and says so', async (t) => {
  const { source, target, context } = await copied(t, 'postgres', 'postgres', { column: 'updated_at', mode: 'Timestamp', overlapSeconds: 0 }, 300);
  await execSql(source, ['DELETE FROM orders WHERE id = 5']);
  // A writer that keeps stamping a row: every round finds something newer, up to the bound on rounds (3 here).
  const writer = await openSession(source, { readOnly: false });
  const control = { stop: false };
  const writing = (async () => {
    for (;;) {
      if (control.stop) return;
      await writer.query('UPDATE orders SET qty = qty + 1, updated_at = clock_timestamp() WHERE id = 7');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  })();
  let busy;
  try {
    busy = await syncStep(context, {}, { maxRounds: 3 });
  } finally {
    control.stop = true;
    await writing;
    await writer.close();
  }
  t.false(busy.caughtUp);
  t.is(busy.rounds, 3);
  t.is(busy.rowsDeleted, 0);
  t.is(await rows(target, 'SELECT count(*) FROM orders WHERE id = 5'), JSON.stringify([['1']]), 'not caught up: the deleted row is still there');
  const sync = await syncStep(context);
  t.true(sync.caughtUp);
  t.is(sync.rowsDeleted, 1);
  t.is(await rows(target, ORDERS), await rows(source, ORDERS));
});

for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'postgres']] as const) {
  test(`${from} → ${to}: Sequence mode copies a row below the watermark that committed late, within the window`, async (t) => {
    const { source, target, context } = await copied(t, from, to, { column: 'seq', mode: 'Sequence', overlapSeconds: 60 }, 100);
    const now = from === 'postgres' ? 'now()' : 'UTC_TIMESTAMP(6)';
    // A transaction takes sequence value 150 and stays open while 151 commits and is synced.
    const late = await openSession(source, { readOnly: false });
    try {
      await late.query('START TRANSACTION');
      await late.query(`INSERT INTO orders VALUES (150, 'late', 150, 150, ${now})`);
      await execSql(source, [`INSERT INTO orders VALUES (151, 'early', 151, 151, ${now})`]);
      const first = await syncStep(context);
      t.true(first.caughtUp);
      t.is(await rows(target, 'SELECT id FROM orders WHERE id > 100 ORDER BY id'), JSON.stringify([['151']]));
      await late.query('COMMIT');
    } finally {
      await late.close();
    }
    const second = await syncStep(context);
    t.true(second.caughtUp);
    t.is(await rows(target, ORDERS), await rows(source, ORDERS), 'the late row is on the target');
    // Deletes in Sequence mode too.
    await execSql(source, ['DELETE FROM orders WHERE id IN (1, 150)']);
    const third = await syncStep(context);
    t.is(third.rowsDeleted, 2);
    t.is(await rows(target, ORDERS), await rows(source, ORDERS));
  });
}
