// The copy key must be proven unique on the source (keyset resume skips or repeats rows otherwise).
import test from 'ava';
import { keyUniqueness } from '../../src/engine/copy/key-uniqueness.ts';
import type { ColumnInfo, TableInfo } from '../../src/engine/schema/model.ts';

const column = (name: string, nullable: boolean): ColumnInfo => ({ name, dataType: 'int', nativeType: 'int', nullable, autoIncrement: false });
const events: TableInfo = {
  engine: 'postgres', schema: 'public', name: 'events',
  columns: [column('id', false), column('grp', false), column('seq', false), column('code', true), column('email', false), column('at', false)],
  primaryKey: ['id'],
  uniqueKeys: [{ name: 'events_grp_seq', columns: ['grp', 'seq'], unique: true }, { name: 'events_code', columns: ['code'], unique: true }],
  indexes: [], foreignKeys: [], estimatedRows: 0,
};

test('the primary key, a unique NOT NULL index, or a superset of either is proven unique', (t) => {
  t.deepEqual(keyUniqueness(events, ['id'], undefined), {});
  t.deepEqual(keyUniqueness(events, ['grp', 'seq'], undefined), {});
  t.deepEqual(keyUniqueness(events, ['seq', 'grp', 'at'], undefined), {});
});

test('a column with duplicates, or a unique index that allows NULLs, is refused with the reason', (t) => {
  t.regex(keyUniqueness(events, ['grp'], undefined).error ?? '', /^key \(grp\) is not proven unique on the source \(no primary key or unique index of NOT NULL columns is made of key columns\)/);
  t.regex(keyUniqueness(events, ['code'], undefined).error ?? '', /unique index \(code\) allows NULL in code/);
  t.regex(keyUniqueness({ ...events, primaryKey: [] }, ['id'], undefined).error ?? '', /not proven unique/);
  t.regex(keyUniqueness(events, ['id', 'code'], undefined).error ?? '', /key column\(s\) code allow NULL/, 'the primary key plus a nullable column: NULL never compares greater');
});

test('with dedupe, a NOT NULL key holding every dedupe.by column is unique among the rows kept', (t) => {
  t.deepEqual(keyUniqueness(events, ['email', 'at'], { by: ['email'], keep: 'latest', orderBy: 'id' }), {}, 'orderBy + key identify a row: the choice is defined');
  t.regex(keyUniqueness(events, ['email'], { by: ['email'], keep: 'first' }).warning ?? '', /kept in no defined order/);
  t.regex(keyUniqueness(events, ['at'], { by: ['email'], keep: 'first' }).error ?? '', /or include every dedupe\.by column \(email\) in a NOT NULL key/);
  t.regex(keyUniqueness(events, ['code'], { by: ['code'], keep: 'first' }).error ?? '', /allows NULL in code/, 'a nullable key never compares past NULL');
});
