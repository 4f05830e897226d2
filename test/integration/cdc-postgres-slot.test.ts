// A PostgreSQL capture's slot and publication on the real server: gone after dropCapture (even
// while streamed), which is harmless twice; a table without a replica identity refused before
// anything is created; a TRUNCATE stops the applier and stays in the slot; transactions the
// target committed but the source never heard acknowledged are not applied twice.
import { randomUUID } from 'node:crypto';
import type { CaptureSource } from '../../src/engine/db/change-capture.ts';
import test, { type ExecutionContext } from 'ava';
import type pg from 'pg';
import { openSession } from '../../src/engine/db/connect.ts';
import {
  captureNames, CaptureRefused, currentLsn, dropCapture, prepareCapture,
} from '../../src/engine/db/postgres/change-capture.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import type { CaptureTable } from '../../src/engine/sync/cdc-apply.ts';
import { followCapture } from '../../src/engine/sync/cdc-follow.ts';
import { freshPostgresDatabase } from '../support/databases.ts';

const TABLE: CaptureTable = {
  sourceSchema: 'public', sourceTable: 'items', targetTable: 'items', key: ['id'],
  columns: [{ source: 'id', target: 'id' }, { source: 'val', target: 'val' }],
};
const SPEC = [{ schema: 'public', name: 'items', key: ['id'] }];

interface Prepared { source: CaptureSource; client: pg.Client; target: SqlSession; targetUrl: string; uid: string }

/** Empty source and target tables, a capture prepared (its snapshot released), dropped when the test ends. */
async function prepared(t: ExecutionContext): Promise<Prepared> {
  const uid = randomUUID();
  const sourceUrl = await freshPostgresDatabase(t, 'cdc_src');
  const targetUrl = await freshPostgresDatabase(t, 'cdc_tgt');
  const source: CaptureSource = { url: sourceUrl };
  const client = await connectPostgres(sourceUrl, { readOnly: false });
  const target = await openSession(targetUrl, { readOnly: false });
  // Teardowns run last-first: the slot goes before the databases.
  t.teardown(async () => {
    await client.end();
    await target.close();
    await dropCapture(source, uid);
  });
  await client.query('CREATE TABLE items (id bigint PRIMARY KEY, val text)');
  await target.query('CREATE TABLE items (id bigint PRIMARY KEY, val text)');
  const capture = await prepareCapture(source, uid, SPEC);
  await capture.releaseSnapshot();
  return { source, client, target, targetUrl, uid };
}

async function listed(client: pg.Client, uid: string): Promise<{ slots: number; publications: number }> {
  const names = captureNames(uid);
  const slots = await client.query('SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
  const publications = await client.query('SELECT pubname FROM pg_publication WHERE pubname = $1', [names.publication]);
  return { slots: slots.rows.length, publications: publications.rows.length };
}

test('dropCapture removes the slot and the publication, even while streamed, and is harmless twice', async (t) => {
  const { source, client, target, uid } = await prepared(t);
  const follower = await followCapture({ source, target, uid, tables: [TABLE] });
  t.deepEqual(await listed(client, uid), { slots: 1, publications: 1 });
  t.deepEqual(await dropCapture(source, uid), { slotDropped: true, publicationDropped: true, problems: [] });
  t.deepEqual(await listed(client, uid), { slots: 0, publications: 0 });
  t.deepEqual(await dropCapture(source, uid), { slotDropped: false, publicationDropped: false, problems: [] });
  // The drop ended the follower's stream.
  await t.throwsAsync(follower.ended);
  await follower.stop();
});

test('a table without a replica identity is refused before anything is created on the source', async (t) => {
  const uid = randomUUID();
  const sourceUrl = await freshPostgresDatabase(t, 'cdc_src');
  const client = await connectPostgres(sourceUrl, { readOnly: false });
  t.teardown(() => client.end());
  await client.query('CREATE TABLE loose (a integer, b text)');
  const error = await t.throwsAsync(prepareCapture({ url: sourceUrl }, uid, [{ schema: 'public', name: 'loose', key: ['a'] }]), { instanceOf: CaptureRefused });
  t.regex(error.message, /loose has no replica identity/);
  t.deepEqual(await listed(client, uid), { slots: 0, publications: 0 });
});

test('a TRUNCATE on the source stops the applier with a reason and stays in the slot', async (t) => {
  const { source, client, target, uid } = await prepared(t);
  const follower = await followCapture({ source, target, uid, tables: [TABLE] });
  await client.query("INSERT INTO items VALUES (1, 'a')");
  await client.query('TRUNCATE items');
  t.regex((await t.throwsAsync(follower.ended)).message, /TRUNCATE of public\.items on the source/);
  await follower.stop();
  // Not acknowledged: a new applier meets it again.
  const again = await followCapture({ source, target, uid, tables: [TABLE] });
  t.regex((await t.throwsAsync(again.ended)).message, /TRUNCATE of public\.items/);
  await again.stop();
});

test('transactions the target committed but the source never saw acknowledged are not applied twice', async (t) => {
  const { source, client, target, uid } = await prepared(t);
  const { slot } = captureNames(uid);
  // The slot as it is before anything is acknowledged, kept aside to put back later: as if every
  // acknowledgement below were lost (the applier killed between the target's commit and its ack).
  await client.query('SELECT pg_copy_logical_replication_slot($1, $2)', [slot, `${slot}_kept`]);
  t.teardown(() => client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [`${slot}_kept`]).then(() => undefined));
  const first = await followCapture({ source, target, uid, tables: [TABLE] });
  for (let i = 1; i <= 20; i++) await client.query('INSERT INTO items VALUES ($1, $2)', [i, `v${i}`]);
  await client.query("UPDATE items SET val = val || '+' WHERE id <= 10");
  // A key that comes back: applied twice, the second insert of 1 would be undone by the later delete.
  await client.query('DELETE FROM items WHERE id = 1');
  await client.query("INSERT INTO items VALUES (1, 'back')");
  await first.waitForLsn(await currentLsn(client), 30_000);
  await first.stop();
  const firstApplied = first.progress().transactions;

  // The walsender ends shortly after the applier's connection: the slot is free then.
  for (let tries = 0; (await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active', [slot])).rows.length > 0; tries++) {
    if (tries > 100) throw new Error('the slot stayed active');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
  await client.query('SELECT pg_copy_logical_replication_slot($1, $2)', [`${slot}_kept`, slot]);
  await client.query("INSERT INTO items VALUES (21, 'after')");
  await client.query('DELETE FROM items WHERE id = 2');
  const second = await followCapture({ source, target, uid, tables: [TABLE] });
  await second.waitForLsn(await currentLsn(client), 30_000);
  await second.stop();
  const progress = second.progress();
  // The stream resumes at the target's checkpoint, past the slot's confirmed position: the server
  // does not send them again (were it to, the applier would skip them: skippedTransactions).
  t.log(`first run applied ${firstApplied} transactions; after the lost acknowledgements: ${progress.skippedTransactions} sent again and skipped, ${progress.transactions} applied`);
  t.is(firstApplied, 23);
  t.is(progress.transactions, 2);
  const rowsOf = async (session: SqlSession): Promise<string> => JSON.stringify(await session.query('SELECT id, val FROM items ORDER BY id'));
  const sourceSession = await openSession(source.url, { readOnly: true });
  t.is(await rowsOf(target), await rowsOf(sourceSession));
  await sourceSession.close();
});
