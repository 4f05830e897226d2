// The checkpointed batch copy on real servers: every direction, exact row sets, resume after an
// interruption without losing or repeating a row.
import test from 'ava';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { ensureCheckpointTable, readCheckpoint } from '../../src/engine/copy/checkpoint.ts';
import { copyShard } from '../../src/engine/copy/copy-shard.ts';
import type { TableCopyPlan } from '../../src/engine/copy/plan-types.ts';
import { freshDatabase } from '../support/databases.ts';

const ROWS = 5000;

async function seed(engine: Engine, url: string): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    const text = engine === 'postgres' ? 'text' : 'varchar(200)';
    await session.query(`CREATE TABLE items (id bigint PRIMARY KEY, label ${text}, qty integer)`);
    const batch: string[] = [];
    for (let i = 1; i <= ROWS; i++) {
      const label = i % 7 === 0 ? 'NULL' : `'item ${i} tab\\there ''q'' 😀'`.replace('\\t', engine === 'postgres' ? '\t' : '\\t');
      batch.push(`(${i}, ${label}, ${i % 100})`);
    }
    await session.query(`INSERT INTO items VALUES ${batch.join(', ')}`);
  } finally {
    await session.close();
  }
}

async function createTarget(engine: Engine, url: string): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    const text = engine === 'postgres' ? 'text' : 'varchar(200)';
    await session.query(`CREATE TABLE items_copy (id bigint PRIMARY KEY, label ${text}, qty integer)`);
    await ensureCheckpointTable(session);
  } finally {
    await session.close();
  }
}

async function rowsOf(url: string, table: string): Promise<string> {
  const session = await openSession(url, { readOnly: true });
  try {
    const rows = await session.query(`SELECT id, label, qty FROM ${session.dialect.quoteIdent(table)} ORDER BY id`);
    return JSON.stringify(rows.map((r) => [r.id, r.label, r.qty]));
  } finally {
    await session.close();
  }
}

function plan(from: Engine, to: Engine): TableCopyPlan {
  const q = (name: string): string => (from === 'postgres' ? `"${name}"` : `\`${name}\``);
  return {
    sourceEngine: from, targetEngine: to, sourceTable: 'items', targetTable: 'items_copy', key: ['id'],
    selectColumns: [q('id'), q('label'), q('qty')],
    targetColumns: ['id', 'label', 'qty'].map((name) => ({ name, binary: false })),
    converters: [undefined, undefined, undefined], conflictPolicy: 'fail',
  };
}

for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'mysql'], ['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: an interrupted copy resumes after its last batch and ends equal`, async (t) => {
    const sourceUrl = await freshDatabase(t, from);
    const targetUrl = await freshDatabase(t, to);
    await seed(from, sourceUrl);
    await createTarget(to, targetUrl);
    const options = { source: { url: sourceUrl }, target: { url: targetUrl }, plan: plan(from, to), migration: 'm1', shard: 0, boundaries: [], batchSize: 700 };

    const controller = new AbortController();
    await t.throwsAsync(copyShard({
      ...options, signal: controller.signal,
      onProgress: (p) => { if (p.rowsCopied >= 2100) controller.abort(new Error('stop here')); },
    }), { message: 'stop here' });
    const target = await openSession(targetUrl, { readOnly: true });
    const partial = await readCheckpoint(target, { migration: 'm1', table: 'items_copy', shard: 0 });
    const [count] = await target.query('SELECT count(*) AS n FROM items_copy');
    await target.close();
    t.is(partial?.rowsCopied, 2100);
    t.is(Number(count?.n), 2100, 'the target holds exactly the committed batches');

    const result = await copyShard(options);
    t.deepEqual(result.resumedFrom, ['2100']);
    t.is(result.rowsThisRun, ROWS - 2100);
    t.is(result.rowsCopied, ROWS);
    t.true(result.done);
    t.is(await rowsOf(targetUrl, 'items_copy'), await rowsOf(sourceUrl, 'items'));

    const again = await copyShard(options);
    t.is(again.rowsThisRun, 0, 'a finished shard is not copied again');
  });
}
