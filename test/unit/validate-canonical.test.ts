// Validation's canonical forms: the kind each column pair compares as, the SQL each engine
// builds for it, the row text (NULL vs empty string, no value running into the next), and the
// client's side of the hashes.
import test from 'ava';
import {
  canonicalJson, canonicalSql, clientCanonical, columnKind, hash60, hashBucket, isClientSide, kindOfColumn, rowText, rowTextSql,
} from '../../src/engine/validate/canonical.ts';
import type { ColumnInfo } from '../../src/engine/schema/model.ts';
import { fixedFraction, tableCheckPlan } from '../../src/engine/validate/table-plan.ts';
import { checkWhere } from '../../src/engine/sql/fragments.ts';

const col = (dataType: string, extra: Partial<ColumnInfo> = {}): ColumnInfo => ({ name: 'c', nativeType: dataType, dataType, nullable: true, autoIncrement: false, ...extra });

test('column kinds: the target type decides, refined by the source type', (t) => {
  t.is(kindOfColumn(col('character varying'), 'postgres'), 'text');
  t.is(kindOfColumn(col('timestamp with time zone'), 'postgres'), 'timestamp');
  t.is(kindOfColumn(col('longblob'), 'mysql'), 'bytes');
  t.is(kindOfColumn(col('year'), 'mysql'), 'int');
  t.is(columnKind(col('tinyint', { nativeType: 'tinyint(1)' }), col('boolean'), 'mysql', 'postgres'), 'bool');
  t.is(columnKind(col('boolean'), col('tinyint', { nativeType: 'tinyint(1)' }), 'postgres', 'mysql'), 'bool');
  t.is(columnKind(col('tinyint'), col('tinyint'), 'mysql', 'mysql'), 'int');
  t.is(columnKind(col('set'), col('ARRAY'), 'mysql', 'postgres'), 'set');
  t.is(columnKind(col('character'), col('varchar'), 'postgres', 'mysql'), 'char', 'CHAR on either side: trailing spaces do not count');
  t.is(columnKind(col('varchar'), col('varchar'), 'mysql', 'mysql'), 'text', 'trailing spaces count in varchar');
  t.is(columnKind(col('bigint', { unsigned: true }), col('numeric', { precision: 20, scale: 0 }), 'mysql', 'postgres'), 'decimal');
  t.is(columnKind(col('float'), col('real'), 'mysql', 'postgres'), 'float');
  t.is(columnKind(col('json'), col('longtext'), 'mysql', 'mysql'), 'json', 'MariaDB json created as longtext is still json');
  t.is(columnKind(undefined, col('text'), 'postgres', 'mysql'), 'text', 'computed: the target type decides');
  t.is(columnKind(col('bit'), col('bit'), 'postgres', 'postgres'), 'text');
  t.true(isClientSide('json', true));
  t.false(isClientSide('json', false));
});

test('canonical SQL per engine: typed columns stay cheap, computed expressions are cast', (t) => {
  t.is(canonicalSql('postgres', 'int', '"qty"', { column: col('integer') }), '("qty")::text');
  t.is(canonicalSql('postgres', 'decimal', '"p"', { column: col('numeric') }), 'trim_scale(("p")::numeric)::text');
  t.is(canonicalSql('mysql', 'decimal', '`p`', { column: col('decimal', { scale: 2 }) }), "TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST((`p`) AS CHAR)))");
  t.is(canonicalSql('mysql', 'decimal', '`p`', { column: col('decimal', { scale: 0 }) }), 'CAST((`p`) AS CHAR)', 'no trimming of 100 to 1');
  t.is(canonicalSql('postgres', 'bool', '"f"', { column: col('boolean') }), `CASE ("f")::boolean WHEN true THEN '1' WHEN false THEN '0' END`);
  t.is(canonicalSql('mysql', 'bool', '`f`', { column: col('tinyint') }), '(`f`)', 'integers are their own text in MySQL');
  t.is(canonicalSql('postgres', 'timestamp', '"at"', { column: col('timestamp with time zone') }), `(("at")::timestamptz AT TIME ZONE 'UTC')::text`);
  t.is(canonicalSql('postgres', 'timestamp', '"at"', { column: col('timestamp without time zone') }), '("at")::text');
  t.is(canonicalSql('mysql', 'timestamp', '`at`', { column: col('datetime', { datetimePrecision: 6 }) }), "TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST((`at`) AS CHAR)))");
  t.is(canonicalSql('mysql', 'timestamp', '`at`', { column: col('datetime', { datetimePrecision: 0 }), zeroDatesAsNull: true }),
    'IF(TO_DAYS((`at`)) IS NULL, NULL, CAST((`at`) AS CHAR))');
  t.is(canonicalSql('postgres', 'bytes', '"b"', { column: col('bytea') }), `CASE WHEN octet_length(("b")) <= 64 THEN encode(("b"), 'hex') ELSE 's' || encode(sha256(("b")), 'hex') END`);
  t.is(canonicalSql('mysql', 'bytes', '`b`', { column: col('blob') }), "IF(LENGTH((`b`)) <= 64, LOWER(HEX((`b`))), CONCAT('s', SHA2((`b`), 256)))");
  t.is(canonicalSql('postgres', 'char', '"c"', { column: col('character') }), `rtrim(("c")::text, ' ')`);
  t.is(canonicalSql('mysql', 'text', '`t`', { column: col('varchar', { charset: 'utf8mb4' }) }), '(`t`)');
  t.is(canonicalSql('mysql', 'text', '`t`', { column: col('varchar', { charset: 'latin1' }) }), 'CONVERT((`t`) USING utf8mb4)');
  t.is(canonicalSql('postgres', 'json', '"d"', { column: col('jsonb') }), '("d")::jsonb::text');
  t.is(canonicalSql('mysql', 'json', '`d`', { column: col('json'), flavor: 'mariadb' }), "COALESCE(JSON_NORMALIZE((`d`)), CONCAT('~', (`d`)))");
  t.is(canonicalSql('postgres', 'json', '"d"', { column: col('jsonb'), crossEngine: true }), '("d")::text', 'across engines the client canonicalises');
  t.is(canonicalSql('postgres', 'set', '"s"', { column: col('ARRAY') }), `array_to_string(("s"), ',')`);
  t.is(canonicalSql('mysql', 'bits', '`m`', { column: col('bit') }), 'CAST((`m`) AS SIGNED)');
  t.is(canonicalSql('postgres', 'bits', '"m"', { column: col('bit', { length: 12 }) }), '("m")::bigint::text');
  // Computed expressions (no column): cast to the kind's type first.
  t.is(canonicalSql('postgres', 'int', 'qty * 2'), 'trim_scale((qty * 2)::numeric)::text');
  t.is(canonicalSql('postgres', 'timestamp', "'2020-01-01'"), `(('2020-01-01')::timestamptz AT TIME ZONE 'UTC')::text`);
  t.is(canonicalSql('mysql', 'date', 'NOW()'), 'CAST(CAST((NOW()) AS DATE) AS CHAR)');
});

test('canonical SQL of floats: exact, in a form picked by the magnitude alone', (t) => {
  const pg = canonicalSql('postgres', 'float', 'v', { column: col('double precision') });
  t.true(pg.startsWith(`CASE WHEN (v)::float8 = 0 THEN '0' WHEN abs((v)::float8) >= 1 AND abs((v)::float8) < 9007199254740992::float8 THEN floor((v)::float8)::bigint::text || ':' || `));
  t.regex(pg, /WHEN abs\(\(v\)::float8\) < 1e-4 THEN /);
  t.true(pg.endsWith(`ELSE replace((v)::float8::text, 'e+', 'e') END`), 'PostgreSQL writes 1e+22 where MariaDB writes 1e22');
  t.regex(pg, /::bigint::text \|\| 'p'/);
  const my = canonicalSql('mysql', 'float', 'v', { column: col('float') });
  t.true(my.startsWith(`CASE WHEN ((v) + 0e0) = 0 THEN '0' WHEN ABS(((v) + 0e0)) >= 1 AND ABS(((v) + 0e0)) < 9007199254740992 THEN CONCAT(CAST(FLOOR(((v) + 0e0)) AS SIGNED), ':', `), 'a MySQL FLOAT is read as a double (it prints 6 digits)');
  t.true(my.endsWith(`ELSE CAST(((v) + 0e0) AS CHAR) END`));
  t.regex(my, /AS SIGNED\), 'p'/);
  t.true(canonicalSql('mysql', 'float', 'v', { column: col('double') }).endsWith('ELSE CAST((v) AS CHAR) END'), 'a double is read as is');
});

test('row text: NULL differs from the empty string, free text carries its length, fields are separated', (t) => {
  const pg = rowTextSql('postgres', [{ sql: 'a', kind: 'int' }, { sql: 'b', kind: 'text' }, { sql: 'c', kind: 'int', notNull: true }]);
  t.is(pg, `COALESCE(COALESCE(a, 'N') || '|' || COALESCE(octet_length(b)::text, 'N') || ':' || COALESCE(b, '') || '|' || c, '?')`);
  const my = rowTextSql('mysql', [{ sql: 'a', kind: 'int' }, { sql: 'b', kind: 'text' }, { sql: 'c', kind: 'text', notNull: true }]);
  t.is(my, `COALESCE(CONCAT(COALESCE(a, 'N'), '|', COALESCE(LENGTH(b), 'N'), ':', COALESCE(b, ''), '|', LENGTH(c), ':', c), '?')`, 'one flat CONCAT');
  t.is(rowText([{ kind: 'int', value: '1' }, { kind: 'text', value: '' }]), '1|0:');
  t.is(rowText([{ kind: 'int', value: '1' }, { kind: 'text', value: null }]), '1|N:');
  t.is(rowText([{ kind: 'int', value: null }, { kind: 'text', value: 'N' }]), 'N|1:N');
  t.not(rowText([{ kind: 'text', value: 'a|b' }, { kind: 'text', value: 'c' }]), rowText([{ kind: 'text', value: 'a' }, { kind: 'text', value: 'b|c' }]));
  t.is(rowText([{ kind: 'text', value: 'é' }]), '2:é', 'length in UTF-8 bytes, as octet_length and LENGTH count');
});

test('client hashes: 60 bits of sha256, buckets from 32-bit slices', (t) => {
  // sha256('abc') = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
  t.is(hash60('abc'), BigInt('0xba7816bf8f01cfe'));
  t.is(hashBucket('abc', 0, 1000), Number(BigInt('0xba7816bf') % 1000n));
  t.is(hashBucket('abc', 1, 16), Number(BigInt('0x8f01cfea') % 16n));
  t.true(hash60('x') < 2n ** 60n);
});

test('json canonical form: keys sorted at every level, whitespace dropped, arrays in order', (t) => {
  t.is(canonicalJson('{"b": [1, 2, {"z": null, "c": 1.50}], "a": "x"}'), '{"a":"x","b":[1,2,{"c":1.5,"z":null}]}');
  t.is(canonicalJson('{"a":"x","b":[1,2,{"c":1.5,"z":null}]}'), canonicalJson('{"b":[1,2,{"z":null,"c":1.5}],"a":"x"}'));
  t.not(canonicalJson('[1, 2]'), canonicalJson('[2, 1]'));
  t.is(canonicalJson('not json'), 'not json');
  t.is(clientCanonical('json', Buffer.from('{"b":1,"a":2}')), '{"a":2,"b":1}');
  t.is(clientCanonical('json', null), null);
});

test('table plan: source expressions against target columns, key ranges for integer keys, hash buckets otherwise', (t) => {
  const sourceColumns = [col('int', { name: 'id', nullable: false }), col('varchar', { name: 'name', charset: 'utf8mb4' }), col('decimal', { name: 'price', precision: 10, scale: 2 }), col('datetime', { name: 'at', datetimePrecision: 3 })];
  const targetColumns = [col('integer', { name: 'id', nullable: false }), col('text', { name: 'title' }), col('numeric', { name: 'price', precision: 10, scale: 2 }), col('timestamp without time zone', { name: 'at', datetimePrecision: 3 }), col('text', { name: 'extra' })];
  const table = (columns: ColumnInfo[], engine: 'mysql' | 'postgres', name: string) => ({
    engine, schema: '', name, columns, primaryKey: ['id'], uniqueKeys: [], indexes: [], foreignKeys: [], estimatedRows: 1000,
  });
  const planned = {
    spec: { name: 'items', target: 'goods', where: 'id > 10' },
    source: table(sourceColumns, 'mysql', 'items'),
    typeMapping: [],
    copy: {
      sourceEngine: 'mysql' as const, targetEngine: 'postgres' as const, sourceTable: 'items', targetTable: 'goods', key: ['id'],
      selectColumns: ['`id`', 'UPPER(`name`)', '`price`', '`at`'],
      targetColumns: [{ name: 'id', binary: false }, { name: 'title', binary: false }, { name: 'price', binary: false }, { name: 'at', binary: false }],
      converters: [undefined, undefined, undefined, undefined], where: checkWhere('mysql', 'id > 10', 'where'), conflictPolicy: 'fail' as const,
    },
  };
  const plan = tableCheckPlan({ planned, target: { name: 'goods', columns: targetColumns }, flavors: { source: 'mariadb' } });
  t.is(plan.partitioning, 'key-range');
  t.deepEqual(plan.key, ['id']);
  t.deepEqual(plan.columns.map((c) => [c.name, c.kind, c.computed]), [['id', 'int', false], ['title', 'text', true], ['price', 'decimal', false], ['at', 'timestamp', false]]);
  t.deepEqual(plan.uncompared, ['extra']);
  t.deepEqual(plan.source.conditions, ['(id > 10)']);
  t.is(plan.source.from, '`items`');
  t.is(plan.targetSide.from, '"goods"');
  t.is(plan.source.fields[1], 'CONVERT((UPPER(`name`)) USING utf8mb4)', 'the source expression, canonical');
  t.is(plan.source.fields[2], 'CAST((`price`) AS CHAR)', 'same scale on both sides: no trimming');
  t.is(plan.targetSide.fields[2], '("price")::text');
  t.regex(plan.source.fields[3] ?? '', /^IF\(TO_DAYS\(\(`at`\)\) IS NULL, NULL, TRIM\(TRAILING '\.' FROM TRIM\(TRAILING '0'/, 'zero dates as NULL, fraction trimmed like PostgreSQL prints it');
  t.true(plan.notes.some((n) => n.includes('computed columns compared against their source expression: title')));
  const texty = tableCheckPlan({
    planned: { ...planned, source: table([col('varchar', { name: 'id', nullable: false }), ...sourceColumns.slice(1)], 'mysql', 'items') },
    target: { name: 'goods', columns: [col('text', { name: 'id', nullable: false }), ...targetColumns.slice(1)] }, flavors: {},
  });
  t.is(texty.partitioning, 'key-hash', 'text keys sort differently on the two engines');
});

test('fixed fractions: same decimal scale or fractional-second precision on both sides', (t) => {
  t.is(fixedFraction('decimal', col('decimal', { precision: 12, scale: 2 }), col('numeric', { precision: 12, scale: 2 })), 2);
  t.is(fixedFraction('decimal', col('decimal', { precision: 12, scale: 2 }), col('numeric', { precision: 12, scale: 4 })), undefined);
  t.is(fixedFraction('decimal', col('numeric'), col('decimal', { precision: 65, scale: 30 })), undefined, 'unconstrained numeric');
  t.is(fixedFraction('timestamp', col('datetime', { datetimePrecision: 6 }), col('timestamp without time zone', { datetimePrecision: 6 })), 6);
  t.is(fixedFraction('timestamp', col('datetime', { datetimePrecision: 0 }), col('timestamp with time zone', { datetimePrecision: 6 })), undefined);
  t.is(fixedFraction('decimal', undefined, col('numeric', { precision: 12, scale: 2 })), undefined, 'computed');
});
