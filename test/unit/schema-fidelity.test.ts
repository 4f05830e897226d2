// The plan's pure schema decisions (issue 15): index names unique per target schema and within
// PostgreSQL's 63 bytes, InnoDB key sizes, grouped warnings, the DDL's zero-date nullability and
// foreign keys to tables not copied, and FLOAT read exactly.
import test from 'ava';
import { exactRead, type TableSpec } from '../../src/engine/copy/planner.ts';
import { afterCopyDdl, createTableDdl, REASONS } from '../../src/engine/schema/ddl.ts';
import { hashedName, MAX_IDENTIFIER_BYTES, targetIndexNames, truncateBytes } from '../../src/engine/schema/index-names.ts';
import { INNODB_MAX_KEY_BYTES, keyBytes, oversizedKeys } from '../../src/engine/schema/key-size.ts';
import type { ColumnInfo, TableInfo } from '../../src/engine/schema/model.ts';
import { groupNotices } from '../../src/engine/schema/notices.ts';

const bytes = (s: string): number => Buffer.byteLength(s);

test('index names: kept where unique; same-named indexes of two tables get <table>_<index>', (t) => {
  const names = targetIndexNames([
    { key: 'a', table: 'a', indexes: ['idx_x', 'only_a'] },
    { key: 'b', table: 'b', indexes: ['idx_x'] },
  ]);
  t.deepEqual([...names.get('a') ?? []], [['idx_x', 'a_idx_x'], ['only_a', 'only_a']]);
  t.deepEqual([...names.get('b') ?? []], [['idx_x', 'b_idx_x']]);
});

test('index names: a name equal to a table, a primary key index or a sequence of the schema is renamed', (t) => {
  const names = targetIndexNames([
    { key: 'a', table: 'a', indexes: ['b', 'a_pkey'], reserved: ['a_pkey'] },
    { key: 'b', table: 'b', indexes: [] },
  ]);
  t.deepEqual([...names.get('a') ?? []], [['b', 'a_b'], ['a_pkey', 'a_a_pkey']]);
});

test('index names: prefixed names that meet each other (a_b.c and a.b_c) are told apart by a hash; deterministic', (t) => {
  const input = [
    { key: 'a_b', table: 'a_b', indexes: ['c'] }, { key: 'a', table: 'a', indexes: ['b_c'] },
    { key: 'x', table: 'x', indexes: ['c', 'b_c'] },
  ];
  const first = targetIndexNames(input);
  const one = first.get('a_b')?.get('c') ?? '';
  const two = first.get('a')?.get('b_c') ?? '';
  t.not(one, two);
  t.regex(one, /^a_b_c_[0-9a-f]{8}$/);
  t.deepEqual([...targetIndexNames(input)], [...first], 'same input, same names');
  const all = [...first.values()].flatMap((m) => [...m.values()]);
  t.is(new Set(all).size, all.length, 'every name unique in the schema');
});

test('index names: schemas are separate namespaces', (t) => {
  const names = targetIndexNames([
    { key: 's1.a', table: 'a', schema: 's1', indexes: ['idx'] }, { key: 's2.b', table: 'b', schema: 's2', indexes: ['idx'] },
  ]);
  t.is(names.get('s1.a')?.get('idx'), 'idx');
  t.is(names.get('s2.b')?.get('idx'), 'idx');
});

test('index names: 64-character MySQL names and multibyte ones fit 63 bytes, unique, cut on a character boundary', (t) => {
  const table = 't'.repeat(64);
  const long = 'i'.repeat(64);
  const names = targetIndexNames([
    { key: table, table, indexes: [long, `${'é'.repeat(31)}x`, 'dup'] }, { key: 'other', table: 'other', indexes: ['dup'] },
  ]);
  const got = [...names.get(table)?.values() ?? []];
  for (const name of got) t.true(bytes(name) <= MAX_IDENTIFIER_BYTES, name);
  t.is(new Set(got).size, got.length);
  t.is(truncateBytes('aé', 2), 'a', 'never half a character');
  t.not(hashedName('x', 'a', 'b'), hashedName('x', 'a', 'c'));
});

test('InnoDB key sizes: utf8mb4 characters count 4 bytes; two text keys (varchar(768)) are refused naming the key and columns', (t) => {
  t.is(keyBytes('varchar(768)'), INNODB_MAX_KEY_BYTES);
  t.is(keyBytes('varbinary(3072)'), 3072);
  t.is(keyBytes('bigint'), 8);
  t.is(keyBytes('datetime(6)'), 8);
  const types: Record<string, string> = { owner: 'varchar(768)', tag: 'varchar(768)', id: 'int' };
  const [reason, ...rest] = oversizedKeys('tags', [{ label: 'primary key', columns: ['owner', 'tag'] }, { label: 'index by_owner', columns: ['owner', 'id'] }], (c) => types[c]);
  t.is(rest.length, 1, 'varchar(768) + int is over too');
  t.regex(reason ?? '', /^table tags: primary key \(owner, tag\) would take 6144 bytes .*owner varchar\(768\): 3072, tag varchar\(768\): 3072/);
  t.deepEqual(oversizedKeys('ok', [{ label: 'primary key', columns: ['owner'] }], (c) => types[c]), []);
});

test('grouped warnings: one line per reason naming every object once, bounded', (t) => {
  const notices = [
    { reason: 'zero dates', subject: 'a.x' }, { reason: 'lossy', subject: 'a.y' }, { reason: 'zero dates', subject: 'b.x' }, { reason: 'zero dates', subject: 'a.x' },
  ];
  t.deepEqual(groupNotices(notices), ['zero dates: a.x, b.x', 'lossy: a.y']);
  const many = Array.from({ length: 45 }, (_, i) => ({ reason: 'r', subject: `t.c${String(i)}` }));
  const [line] = groupNotices(many, 40);
  t.regex(line ?? '', /t\.c39 … and 5 more$/);
  t.false(line?.includes('t.c40'));
});

const column = (name: string, dataType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo => ({ name, nativeType: dataType, dataType, nullable: true, autoIncrement: false, ...extra });
const table = (name: string, columns: ColumnInfo[], extra: Partial<TableInfo> = {}): TableInfo => ({
  engine: 'mysql', schema: 'db', name, columns, primaryKey: ['id'], uniqueKeys: [], indexes: [], foreignKeys: [], estimatedRows: 0, ...extra,
});

test('mysql → postgres DDL: a NOT NULL date column is created nullable with the reason; a key column stays NOT NULL; a zero-date default is dropped', (t) => {
  const source = table('events', [
    column('id', 'datetime', { nullable: false }), column('at', 'datetime', { nullable: false, defaultValue: "'0000-00-00 00:00:00'" }),
    column('day', 'date'), column('n', 'int', { nullable: false }),
  ]);
  const spec: TableSpec = { name: 'events' };
  const ddl = createTableDdl(source, spec, 'postgres');
  const create = ddl.create.at(-1) ?? '';
  t.regex(create, /"id" timestamp NOT NULL/);
  t.regex(create, /"at" timestamp,/, 'nullable, no zero default');
  t.regex(create, /"n" integer NOT NULL/);
  t.deepEqual(ddl.errors, []);
  const reasons = ddl.notices.map((n) => [n.reason, n.subject]);
  t.deepEqual(reasons.filter(([r]) => r !== undefined && r.startsWith('MySQL zero')), [
    [REASONS.zeroDatesInKey, 'events.id'], [REASONS.zeroDatesNullable, 'events.at'], [REASONS.zeroDates, 'events.day'],
  ]);
  t.true(reasons.some(([r, s]) => r?.startsWith('defaults with no') && s?.startsWith('events.at')));
});

test('postgres → mysql DDL: a composite text primary key is refused by the plan', (t) => {
  const source = table('tags', [column('owner', 'text', { nullable: false }), column('tag', 'text', { nullable: false })], { engine: 'postgres', primaryKey: ['owner', 'tag'] });
  const ddl = createTableDdl(source, { name: 'tags' }, 'mysql');
  t.regex(ddl.errors.join('\n'), /table tags: primary key \(owner, tag\) would take 6144 bytes/);
});

test('post-copy DDL: the plan\'s index name is used; a foreign key to a table not copied is not created, one to a copied (quoted) table is', (t) => {
  const source = table('child', [column('id', 'int', { nullable: false }), column('p', 'int')], {
    engine: 'postgres',
    indexes: [{ name: 'idx_x', columns: ['p'], unique: false, targetName: 'child_idx_x' }],
    foreignKeys: [
      { name: 'to_missing', columns: ['p'], referencedTable: 'missing', referencedColumns: ['id'], onDelete: 'NO ACTION', onUpdate: 'NO ACTION' },
      { name: 'to_parent', columns: ['p'], referencedTable: 'public."Parent"', referencedColumns: ['id'], onDelete: 'CASCADE', onUpdate: 'NO ACTION' },
    ],
  });
  const statements = afterCopyDdl({
    source, ddl: { table: 'child', columnNames: new Map([['id', 'id'], ['p', 'p']]) }, to: 'postgres', existing: new Set(),
    tableNames: new Map([['child', 'child'], ['Parent', 'parent_new']]),
  });
  t.true(statements.some((s) => s.includes('INDEX IF NOT EXISTS "child_idx_x"')), statements.join('\n'));
  t.false(statements.some((s) => s.includes('to_missing')));
  t.true(statements.some((s) => s.includes('"to_parent"') && s.includes('REFERENCES "parent_new"')));
});

test('FLOAT is read as a double on MySQL (its 6-digit text would round 123456.789 to 123457); other types as they are', (t) => {
  t.is(exactRead('`v`', column('v', 'float'), 'mysql'), '(`v` + 0e0)');
  t.is(exactRead('`d`', column('d', 'double'), 'mysql'), '`d`');
  t.is(exactRead('"v"', column('v', 'real'), 'postgres'), '"v"');
});
