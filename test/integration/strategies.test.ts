// Strategies on real servers: Trickle copies, then syncs the rows changed on the source since
// (updates and inserts, by the incremental column) until caught up, idempotently; Phased copies
// its phases in order.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, schemaStep, syncStep } from '../../src/engine/pipeline/steps.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { execSql } from '../support/sql.ts';


async function snapshot(url: string): Promise<string> {
  const session = await openSession(url, { readOnly: true });
  try {
    const rows = await session.query('SELECT id, status, qty FROM orders ORDER BY id');
    return JSON.stringify(rows.map((r) => [r.id, r.status, r.qty]));
  } finally {
    await session.close();
  }
}

function seed(engine: Engine): string[] {
  const pg = engine === 'postgres';
  const now = pg ? "now() - interval '1 hour'" : 'UTC_TIMESTAMP(6) - INTERVAL 1 HOUR';
  return [
    `CREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20) NOT NULL, qty int NOT NULL, updated_at ${pg ? 'timestamptz(6)' : 'datetime(6)'} NOT NULL)${pg ? '' : ' ENGINE=InnoDB'}`,
    pg
      ? `INSERT INTO orders SELECT g, 'new', g, ${now} FROM generate_series(1, 3000) g`
      : `INSERT INTO orders SELECT seq, 'new', seq, ${now} FROM seq_1_to_3000`,
  ];
}

function manifest(from: Engine, to: Engine, strategy: NonNullable<DataMigration['spec']['strategy']>, tables = [{ name: 'orders' }]): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'strategy', namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 't' } },
      schema: { createMissingTables: true }, tables, strategy: { batchSize: 500, parallelism: 2, ...strategy },
    },
  };
}

for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: Trickle syncs updates and inserts made after the copy, then is caught up`, async (t) => {
    const source = await freshDatabase(t, from);
    const target = await freshDatabase(t, to);
    await execSql(source, seed(from));
    const context = {
      source: { url: source }, target: { url: target },
      settings: engineSettings(manifest(from, to, { type: 'Trickle', incremental: { column: 'updated_at', mode: 'Timestamp', overlapSeconds: 5 } })),
    };
    await schemaStep(context);
    await copyStep(context);
    t.is(await snapshot(target), await snapshot(source));

    // The application keeps writing: updates and inserts, each stamping updated_at.
    const now = from === 'postgres' ? 'now()' : 'UTC_TIMESTAMP(6)';
    await execSql(source, [
      `UPDATE orders SET status = 'paid', qty = qty + 1, updated_at = ${now} WHERE id % 10 = 0`,
      from === 'postgres'
        ? `INSERT INTO orders SELECT g, 'new', g, ${now} FROM generate_series(3001, 3200) g`
        : `INSERT INTO orders SELECT seq, 'new', seq, ${now} FROM seq_3001_to_3200`,
    ]);
    t.not(await snapshot(target), await snapshot(source));
    const sync = await syncStep(context);
    t.true(sync.caughtUp);
    t.true(sync.rowsSynced >= 500, `${String(sync.rowsSynced)} rows synced (300 updated + 200 inserted, plus the overlap)`);
    t.is(await snapshot(target), await snapshot(source));

    const again = await syncStep(context);
    t.is(again.rowsSynced, 0, 'nothing new: nothing copied');
    t.true(again.caughtUp);
  });
}

test('Phased copies the phases one after another', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, [...seed('postgres'), 'CREATE TABLE customers (id int PRIMARY KEY, name text)', "INSERT INTO customers VALUES (1, 'a'), (2, 'b')"]);
  const context = {
    source: { url: source }, target: { url: target },
    settings: engineSettings(manifest('postgres', 'postgres', { type: 'Phased', phases: [{ name: 'first', tables: ['customers'] }, { name: 'second', tables: ['orders'] }] }, [{ name: 'orders' }, { name: 'customers' }])),
  };
  await schemaStep(context);
  const seen: string[] = [];
  const copy = await copyStep(context, (tables) => { for (const table of tables) if (table.done && !seen.includes(table.table)) seen.push(table.table); });
  t.deepEqual(seen, ['customers', 'orders'], 'customers finished before orders started');
  t.is(copy.rowsThisRun, 3002);
});
