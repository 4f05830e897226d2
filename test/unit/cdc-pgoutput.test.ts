// PostgreSQL change capture, the parts without a server: LSN text, slot and publication names,
// the pgoutput decoder on hand-built messages (and its refusal of what it cannot read, without
// throwing), the copy plan as the capture sees it, and the acknowledgement pg-logical-replication
// sends, which change-stream.ts compensates for (it adds 1 to the LSN it is given).
import test from 'ava';
import { LogicalReplicationService } from 'pg-logical-replication';
import type { TableCopyPlan } from '../../src/engine/copy/plan-types.ts';
import { captureNames } from '../../src/engine/db/postgres/change-capture.ts';
import { formatLsn, parseLsn, PgoutputDecoder, type PgoutputMessage } from '../../src/engine/db/postgres/pgoutput.ts';
import { captureTableFromPlan } from '../../src/engine/sync/cdc-apply.ts';
import { checkWhere } from '../../src/engine/sql/fragments.ts';

test('LSNs read and print as the server spells them, 64 bits exact', (t) => {
  for (const text of ['0/0', '0/16B3748', '1/0', 'FFFFFFFF/FFFFFFFF', '3/DEADBEEF']) t.is(formatLsn(parseLsn(text)), text);
  t.is(parseLsn('1/2'), (1n << 32n) + 2n);
  t.is(parseLsn('16/b374d848'), parseLsn('16/B374D848'));
  for (const bad of ['', '1', '1/', 'x/1', '123456789/0', '1/2/3']) t.throws(() => parseLsn(bad), { message: /not an LSN/ });
});

test('slot and publication names: valid identifiers of at most 63 bytes, derived from the whole uid', (t) => {
  const uid = '6f1e2c3a-1b2c-4d5e-8f90-0123456789ab';
  const names = captureNames(uid);
  t.deepEqual(captureNames(uid), names, 'the same uid, the same names (a restarted step finds its slot)');
  t.regex(names.slot, /^dmo_[a-z0-9_]+$/);
  t.true(names.slot.length <= 63 && names.publication.length <= 63);
  const long = 'A'.repeat(200);
  t.true(captureNames(long).slot.length <= 63);
  t.not(captureNames(`${long}1`).slot, captureNames(`${long}2`).slot, 'uids sharing a long prefix stay apart');
  t.regex(captureNames('Ünïcode "quoted"; DROP').slot, /^dmo_[a-z0-9_]+$/);
});

/** Builders of pgoutput messages as the server sends them. */
const int8 = (n: number): Buffer => Buffer.from([n]);
const int16 = (n: number): Buffer => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const int32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const int64 = (n: bigint): Buffer => { const b = Buffer.alloc(8); b.writeBigInt64BE(n); return b; };
const cstring = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'utf8'), int8(0)]);
const tag = (c: string): Buffer => Buffer.from(c, 'ascii');
const UNCHANGED = Symbol('unchanged TOAST value');
type Value = string | null | typeof UNCHANGED;
const tuple = (values: Value[]): Buffer => Buffer.concat([int16(values.length), ...values.map((v) => {
  if (v === null) return tag('n');
  if (v === UNCHANGED) return tag('u');
  const bytes = Buffer.from(v, 'utf8');
  return Buffer.concat([tag('t'), int32(bytes.length), bytes]);
})]);
const relation = (oid: number): Buffer => Buffer.concat([tag('R'), int32(oid), cstring('public'), cstring('items'), tag('d'), int16(3),
  int8(1), cstring('id'), int32(20), int32(-1), int8(0), cstring('val'), int32(25), int32(-1), int8(0), cstring('note'), int32(25), int32(-1)]);

test('the decoder reads a transaction: begin, relation, insert, updates (key moved, TOAST unchanged), delete, truncate, commit', (t) => {
  const decoder = new PgoutputDecoder();
  const commitMicros = 789_000_123n; // 2000-01-01 00:13:09.000123 UTC
  const begin = decoder.decode(Buffer.concat([tag('B'), int64(0x1_0000_0010n), int64(commitMicros), int32(901)]));
  t.like(begin, { tag: 'begin', finalLsn: 0x1_0000_0010n, xid: 901 });
  t.is(begin.tag === 'begin' ? begin.commitTime.toISOString() : '', '2000-01-01T00:13:09.000Z');
  const rel = decoder.decode(relation(16384));
  t.like(rel, { tag: 'relation', relation: { oid: 16384, schema: 'public', name: 'items', replicaIdentity: 'd' } });
  t.deepEqual(rel.tag === 'relation' ? rel.relation.columns.map((c) => [c.name, c.key]) : [], [['id', true], ['val', false], ['note', false]]);

  const insert = decoder.decode(Buffer.concat([tag('I'), int32(16384), tag('N'), tuple(['1', "it's\n\\ ü€", null])]));
  t.like(insert, { tag: 'insert', row: ['1', "it's\n\\ ü€", null] });
  t.is(insert.tag === 'insert' ? insert.relation.name : '', 'items');

  const keyMove = decoder.decode(Buffer.concat([tag('U'), int32(16384), tag('K'), tuple(['1', null, null]), tag('N'), tuple(['2', 'b', UNCHANGED])]));
  t.deepEqual(keyMove.tag === 'update' ? [keyMove.old, keyMove.oldKind, keyMove.row] : [], [['1', null, null], 'key', ['2', 'b', { unchanged: true }]]);
  const plain = decoder.decode(Buffer.concat([tag('U'), int32(16384), tag('N'), tuple(['2', 'c', 'x'])]));
  t.deepEqual(plain.tag === 'update' ? [plain.old, plain.row] : [], [undefined, ['2', 'c', 'x']]);
  const full = decoder.decode(Buffer.concat([tag('U'), int32(16384), tag('O'), tuple(['2', 'c', 'x']), tag('N'), tuple(['2', 'd', 'x'])]));
  t.like(full, { tag: 'update', oldKind: 'full', old: ['2', 'c', 'x'] });

  t.like(decoder.decode(Buffer.concat([tag('D'), int32(16384), tag('K'), tuple(['2', null, null])])), { tag: 'delete', oldKind: 'key', old: ['2', null, null] });
  const truncate = decoder.decode(Buffer.concat([tag('T'), int32(1), int8(3), int32(16384)]));
  t.like(truncate, { tag: 'truncate', cascade: true, restartIdentity: true });
  const commit = decoder.decode(Buffer.concat([tag('C'), int8(0), int64(0x1_0000_0010n), int64(0x1_0000_0040n), int64(commitMicros)]));
  t.like(commit, { tag: 'commit', commitLsn: 0x1_0000_0010n, endLsn: 0x1_0000_0040n });
  t.like(decoder.decode(Buffer.concat([tag('Y'), int32(99), cstring('public'), cstring('mood')])), { tag: 'ignored', kind: 'Y' });
});

test('what the decoder cannot read comes back as an error message, never an exception', (t) => {
  const decoder = new PgoutputDecoder();
  const errors: [string, Buffer, RegExp][] = [
    ['a change before its Relation', Buffer.concat([tag('I'), int32(77), tag('N'), tuple(['1'])]), /before its Relation/],
    ['a message cut short', Buffer.concat([tag('B'), int64(1n)]), /ends early/],
    ['a streamed transaction', Buffer.concat([tag('S'), int32(5), int8(1)]), /unexpected message type "S"/],
    ['an empty payload', Buffer.alloc(0), /ends early/],
  ];
  for (const [what, payload, pattern] of errors) {
    let message: PgoutputMessage | undefined;
    t.notThrows(() => { message = decoder.decode(payload); }, what);
    t.is(message?.tag, 'error', what);
    t.regex(message?.tag === 'error' ? message.message : '', pattern, what);
  }
  decoder.decode(relation(5));
  const binary = decoder.decode(Buffer.concat([tag('I'), int32(5), tag('N'), int16(1), tag('b'), int32(1), int8(7)]));
  t.regex(binary.tag === 'error' ? binary.message : '', /binary/);
  const badIdentity = Buffer.concat([tag('R'), int32(6), cstring('s'), cstring('t'), tag('z'), int16(0)]);
  const refused = decoder.decode(badIdentity);
  t.regex(refused.tag === 'error' ? refused.message : '', /unknown replica identity z/);
});

test('pg-logical-replication acknowledges LSN+1: change-stream.ts hands it lsn - 1 so the server gets the exact commit end', async (t) => {
  // If an upgrade stops adding 1, change-stream.ts must stop subtracting it (or it confirms one byte less: harmless, the last transaction is resent and skipped).
  const service = new LogicalReplicationService({}, { acknowledge: { auto: false, timeoutSeconds: 0 } });
  const sent: Buffer[] = [];
  Object.assign(service, { _stop: false, _connection: { sendCopyFromChunk: (chunk: Buffer) => { sent.push(chunk); } } });
  await service.acknowledge(formatLsn(0x2_0000_0100n - 1n));
  const update = sent[0];
  t.is(update?.subarray(0, 1).toString('ascii'), 'r');
  for (const offset of [1, 9, 17]) t.is(update?.readBigUInt64BE(offset), 0x2_0000_0100n, `position at byte ${offset}`);
});

const plan = (overrides: Partial<TableCopyPlan> = {}): TableCopyPlan => ({
  sourceEngine: 'postgres', targetEngine: 'postgres', sourceTable: 'shop.Items', targetTable: 'items', key: ['id'],
  selectColumns: ['"id"', '"Na""me"'], targetColumns: [{ name: 'id', binary: false }, { name: 'name', binary: false }],
  converters: [undefined, undefined], conflictPolicy: 'upsert', ...overrides,
});

test('a copy plan becomes a capture table when its columns are plain; computed columns and filters are refused', (t) => {
  t.deepEqual(captureTableFromPlan(plan(), 'public'), {
    sourceSchema: 'shop', sourceTable: 'Items', targetTable: 'items', key: ['id'],
    columns: [{ source: 'id', target: 'id' }, { source: 'Na"me', target: 'name' }],
  });
  t.like(captureTableFromPlan(plan({ sourceTable: 'items' }), 'public'), { sourceSchema: 'public', sourceTable: 'items' });
  t.regex((captureTableFromPlan(plan({ selectColumns: ['"id"', 'lower("name")'] }), 'public') as { error: string }).error, /computed on the source/);
  t.regex((captureTableFromPlan(plan({ where: checkWhere('postgres', 'id > 5', 'where') }), 'public') as { error: string }).error, /where filter/);
  t.regex((captureTableFromPlan(plan({ sourceEngine: 'mysql' }), 'public') as { error: string }).error, /PostgreSQL source/);
});
