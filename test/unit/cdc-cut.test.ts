// The cut's ordering in TransactionBatcher (cdc-batcher.ts cutAt), on an in-memory target session
// that records every statement: the target's snapshot (onCut) is taken after exactly the source
// transactions ending at or before the cut's position are committed, none after; transactions that
// arrive while the snapshot is taken are held, then applied in order; a quiet stream is cut on its
// idle position; a stop while the snapshot is taken ends at once; keys are recorded only after the cut.
import test from 'ava';
import { postgresAdapter } from '../../src/engine/db/postgres/adapter.ts';
import type { SqlRow, SqlSession } from '../../src/engine/db/session.ts';
import type { CaptureTable, CapturedRelation } from '../../src/engine/sync/cdc-apply.ts';
import { CutNotReached, TransactionBatcher } from '../../src/engine/sync/cdc-batcher.ts';

/** Statements as the target received them (the upserts by their key value), and the markers the test adds. */
function recordingTarget(log: string[]): SqlSession {
  return {
    engine: 'postgres',
    dialect: postgresAdapter,
    query(sql: string, params: readonly unknown[] = []): Promise<SqlRow[]> {
      if (sql.startsWith('INSERT INTO "items"')) log.push(`upsert ${String(params[0])}`);
      else if (/^(BEGIN|COMMIT|ROLLBACK)$/.test(sql)) log.push(sql);
      else if (sql.includes('dataops_copy_checkpoint') && sql.startsWith('INSERT') && params.some((p) => typeof p === 'string' && p.startsWith('key:'))) log.push('keys');
      else if (sql.includes('dataops_copy_checkpoint') && params.includes('cut')) log.push('cut record');
      return Promise.resolve([]);
    },
    close: () => Promise.resolve(),
  };
}

const table: CaptureTable = { sourceSchema: 'public', sourceTable: 'items', targetTable: 'items', key: ['id'], columns: [{ source: 'id', target: 'id' }, { source: 'val', target: 'val' }] };
const relation: CapturedRelation = { schema: 'public', name: 'items', columns: [{ name: 'id' }, { name: 'val' }] };

function batcher(log: string[]): TransactionBatcher<number> {
  // Every source commit commits the target at once (no batching), so the log shows the order exactly.
  return new TransactionBatcher<number>({
    target: recordingTarget(log), tables: [table], checkpointId: { migration: 'u#cdc', table: 'slot', shard: 0 }, uid: 'u',
    formatPosition: String, isAfter: (a, b) => a > b, maxBatchChanges: 1,
  }, 0);
}

/** One source transaction of one insert, ending at `position`, through the batcher's queue as a stream delivers it. */
function transaction(b: TransactionBatcher<number>, id: number, position: number): Promise<void> {
  return b.serial(async () => {
    b.sourceBegins();
    await b.apply({ kind: 'insert', relation, row: [String(id), 'v'] });
    await b.sourceCommitted(position, new Date());
  });
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

test('the target is cut after the transactions up to the snapshot\'s position, before the next; those that arrived meanwhile were held, then applied in order', async (t) => {
  const log: string[] = [];
  const b = batcher(log);
  await transaction(b, 1, 10);
  const snapshot = deferred<number>();
  const cut = b.cutAt(() => snapshot.promise, () => { log.push('target snapshot'); return Promise.resolve(); }, 5_000);
  // Arrive while the snapshot is taken: held, nothing applied yet.
  const before = transaction(b, 2, 15);
  const after = transaction(b, 3, 25);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.false(log.includes('upsert 2'), 'held until the snapshot\'s position is known');
  snapshot.resolve(20);
  t.is(await cut, 20);
  await Promise.all([before, after]);
  const at = (entry: string): number => log.indexOf(entry);
  t.true(at('upsert 1') < at('upsert 2') && at('upsert 2') < at('cut record') && at('cut record') < at('target snapshot') && at('target snapshot') < at('upsert 3'), log.join(', '));
  t.is(log.filter((e) => e === 'keys').length, 1, 'keys recorded for the transaction after the cut only');
  t.true(log.lastIndexOf('keys') > at('upsert 3'));
});

test('a transaction ending exactly at the position is applied before the cut', async (t) => {
  const log: string[] = [];
  const b = batcher(log);
  const cut = b.cutAt(() => Promise.resolve(20), () => { log.push('target snapshot'); return Promise.resolve(); }, 5_000);
  await transaction(b, 1, 20);
  await cut;
  t.true(log.indexOf('upsert 1') < log.indexOf('target snapshot'), log.join(', '));
});

test('a quiet stream is cut once it says it sent everything up to the position', async (t) => {
  const log: string[] = [];
  const b = batcher(log);
  await transaction(b, 1, 10);
  const cut = b.cutAt(() => Promise.resolve(30), () => { log.push('target snapshot'); return Promise.resolve(); }, 5_000);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.false(log.includes('target snapshot'));
  b.idle(35);
  await cut;
  t.true(log.includes('target snapshot'));
});

test('a cut not reached in time, or a stop while the snapshot is taken, gives up at once and lets held transactions through', async (t) => {
  const log: string[] = [];
  const b = batcher(log);
  await t.throwsAsync(b.cutAt(() => Promise.resolve(50), () => Promise.resolve(), 200), { instanceOf: CutNotReached });
  await transaction(b, 1, 60);
  t.true(log.includes('upsert 1'));
  t.false(log.includes('cut record'), 'no cut was recorded');
  const never = deferred<number>();
  let aborted = false;
  const cut = b.cutAt((signal) => { signal.addEventListener('abort', () => { aborted = true; }); return never.promise; }, () => Promise.resolve(), 5_000);
  const held = transaction(b, 2, 70);
  const began = Date.now();
  await b.stop();
  await held;
  await t.throwsAsync(cut);
  t.true(Date.now() - began < 1000, 'the stop did not wait for the snapshot');
  t.true(aborted, 'the snapshot being taken was told to stop');
});
