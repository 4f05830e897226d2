// Nothing lost in silence (issue 15), the pure parts: what of the source a created table leaves
// out, grouped one warning per reason; a domain's CHECK rewritten over the column only where that
// is certain; the ON UPDATE trigger's name and body; MySQL spatial types mapped to bytea.
import test from 'ava';
import type { TableSpec } from '../../src/engine/copy/planner.ts';
import { CARRY_OVER_REASONS, carryOverNotices, isCaseInsensitiveCollation, objectReason, schemaObjectNotices } from '../../src/engine/schema/carry-over.ts';
import { createTableDdl } from '../../src/engine/schema/ddl.ts';
import { domainCheck, splitOnValue } from '../../src/engine/schema/domains.ts';
import type { ColumnInfo, TableInfo } from '../../src/engine/schema/model.ts';
import { groupNotices } from '../../src/engine/schema/notices.ts';
import { onUpdateName, onUpdateTrigger } from '../../src/engine/schema/on-update.ts';
import { mapColumnType, TYPE_MAP } from '../../src/engine/schema/typemap.ts';
import { citextBound } from '../../src/engine/schema/citext.ts';

const column = (name: string, extra: Partial<ColumnInfo> = {}): ColumnInfo => ({ name, nativeType: 'int', dataType: 'int', nullable: true, autoIncrement: false, ...extra });

function table(engine: TableInfo['engine'], name: string, columns: ColumnInfo[], extra: Partial<TableInfo> = {}): TableInfo {
  return { engine, schema: 'app', name, columns, primaryKey: [], uniqueKeys: [], indexes: [], foreignKeys: [], estimatedRows: 0, ...extra };
}

test('schema objects: one warning per kind naming every object, triggers by table, the schema said in the reason', (t) => {
  const warnings = groupNotices(schemaObjectNotices([
    { kind: 'view', schema: 'shop', name: 'v1' }, { kind: 'routine', schema: 'shop', name: 'f (function)' },
    { kind: 'view', schema: 'shop', name: 'v2' }, { kind: 'trigger', schema: 'shop', name: 'trg', table: 'orders' },
    { kind: 'event', schema: 'shop', name: 'nightly' }, { kind: 'trigger', schema: 'shop', name: 'trg', table: 'lines' },
  ], 'mysql'));
  t.is(warnings.length, 4);
  t.is(warnings[0], `${objectReason({ kind: 'view', schema: 'shop' }, 'mysql')}: v1, v2`);
  t.regex(warnings[0] ?? '', /^views of the source database shop /);
  t.regex(warnings[2] ?? '', /^triggers on the migrated tables .*: orders\.trg, lines\.trg$/);
  t.regex(objectReason({ kind: 'materialized view', schema: 'public' }, 'postgres'), /schema public/);
});

test('carry-over: CHECKs across engines named (not the MariaDB JSON check); same engine created unless NOT VALID or columns renamed', (t) => {
  const source = table('mysql', 'orders', [column('qty'), column('doc', { dataType: 'json' })], {
    checks: [{ name: 'qty_positive', clause: '`qty` > 0' }, { name: 'doc', clause: 'json_valid(`doc`)', jsonValid: true }],
  });
  const input = { name: 'orders', source, columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set<string>() };
  t.deepEqual(carryOverNotices({ ...input, to: 'postgres' }), [{ reason: CARRY_OVER_REASONS.checks('mysql', 'postgres'), subject: 'orders.qty_positive `qty` > 0' }]);
  t.deepEqual(carryOverNotices({ ...input, to: 'mysql' }), []);
  t.deepEqual(carryOverNotices({ ...input, to: 'mysql', columnsChanged: true }).map((n) => n.reason), [CARRY_OVER_REASONS.checksRenamed, CARRY_OVER_REASONS.checksRenamed]);
  const pg = table('postgres', 'orders', [column('qty')], { checks: [{ name: 'c', clause: '(qty > 0)', notValidated: true }] });
  t.deepEqual(carryOverNotices({ ...input, source: pg, to: 'postgres' }).map((n) => n.reason), [CARRY_OVER_REASONS.checksNotValid]);
});

test('carry-over: case-insensitive MySQL collations into PostgreSQL, ON UPDATE when not reproduced, domains, expression indexes', (t) => {
  const source = table('mysql', 't', [
    column('a', { collation: 'utf8mb4_general_ci' }), column('b', { collation: 'utf8mb4_bin' }), column('c', { collation: 'utf8mb4_uca1400_ai_ci' }),
    column('changed', { onUpdate: 'CURRENT_TIMESTAMP' }),
  ], { skippedIndexes: ['by_expr'] });
  const notices = carryOverNotices({ name: 't', source, to: 'postgres', columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set() });
  t.deepEqual(groupNotices(notices), [
    `${CARRY_OVER_REASONS.caseInsensitive}: t.a (utf8mb4_general_ci), t.c (utf8mb4_uca1400_ai_ci)`,
    `${CARRY_OVER_REASONS.onUpdate}: t.changed`,
    `${CARRY_OVER_REASONS.expressionIndexes}: t.by_expr`,
  ]);
  t.false(carryOverNotices({ name: 't', source, to: 'postgres', columnsChanged: false, onUpdateReproduced: true, domainsReproduced: new Set() }).some((n) => n.reason === CARRY_OVER_REASONS.onUpdate));
  t.deepEqual(carryOverNotices({ name: 't', source, to: 'mysql', columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set() }).map((n) => n.reason), [CARRY_OVER_REASONS.expressionIndexes]);
  const pg = table('postgres', 'p', [
    column('q', { domain: { name: 'positive', baseType: 'integer', checks: ['CHECK ((VALUE > 0))'], notNull: false } }),
    column('s', { collation: 'nocase', collationNondeterministic: true }),
  ]);
  t.deepEqual(groupNotices(carryOverNotices({ name: 'p', source: pg, to: 'mysql', columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set() })), [
    `${CARRY_OVER_REASONS.domains}: p.q (domain positive: CHECK ((VALUE > 0)))`,
    `${CARRY_OVER_REASONS.nondeterministic}: p.s (nocase)`,
  ]);
  // C compares by code point like the utf8mb4_bin of a created MySQL table; on PostgreSQL it is not carried over.
  const c = table('postgres', 'c', [column('s', { collation: 'C' })]);
  t.deepEqual(carryOverNotices({ name: 'c', source: c, to: 'mysql', columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set() }), []);
  t.deepEqual(carryOverNotices({ name: 'c', source: c, to: 'postgres', columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set() }).map((n) => n.reason), [CARRY_OVER_REASONS.collations]);
  t.true(isCaseInsensitiveCollation('latin1_swedish_ci'));
  t.false(isCaseInsensitiveCollation('utf8mb4_0900_as_cs'));
});

test('citext: case-insensitive MySQL text becomes citext when the target can have it (bound kept as a CHECK), else named with why', (t) => {
  const text = (name: string, dataType: string, collation: string, length?: number): ColumnInfo => column(name, { dataType, nativeType: length === undefined ? dataType : `${dataType}(${String(length)})`, collation, ...(length === undefined ? {} : { length }) });
  const create = 'CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA "public"';
  const name = mapColumnType(text('name', 'varchar', 'utf8mb4_general_ci', 8), 'mysql', 'postgres', { citext: { use: true, create } });
  t.true('type' in name && name.type === 'citext' && name.check?.('"name"') === 'char_length("name") <= 8' && name.before?.[0] === create);
  const bio = mapColumnType(text('bio', 'text', 'utf8mb4_general_ci'), 'mysql', 'postgres', { citext: { use: true } });
  t.true('type' in bio && bio.type === 'citext' && bio.check === undefined && bio.before === undefined);
  const exact = mapColumnType(text('code', 'varchar', 'utf8mb4_bin', 8), 'mysql', 'postgres', { citext: { use: true } });
  t.true('type' in exact && exact.type === 'varchar(8)');
  const unavailable = mapColumnType(text('name', 'varchar', 'utf8mb4_general_ci', 8), 'mysql', 'postgres', { citext: { use: false, why: 'no' } });
  t.true('type' in unavailable && unavailable.type === 'varchar(8)');
  const source = table('mysql', 't', [text('a', 'varchar', 'utf8mb4_general_ci', 8), text('b', 'text', 'utf8mb4_uca1400_ai_ci'), column('e', { dataType: 'enum', collation: 'utf8mb4_general_ci' })]);
  const input = { name: 't', source, to: 'postgres' as const, columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set<string>() };
  t.deepEqual(groupNotices(carryOverNotices({ ...input, citext: { use: true } })), [
    `${CARRY_OVER_REASONS.citext}: t.a (utf8mb4_general_ci)`, `${CARRY_OVER_REASONS.accentInsensitive}: t.b (utf8mb4_uca1400_ai_ci)`, `${CARRY_OVER_REASONS.caseInsensitive}: t.e (utf8mb4_general_ci)`,
  ]);
  t.deepEqual(groupNotices(carryOverNotices({ ...input, citext: { use: false, why: 'the role may not create it' } })), [
    `${CARRY_OVER_REASONS.caseInsensitiveWhy('the role may not create it')}: t.a (utf8mb4_general_ci), t.b (utf8mb4_uca1400_ai_ci)`, `${CARRY_OVER_REASONS.caseInsensitive}: t.e (utf8mb4_general_ci)`,
  ]);
  const back = mapColumnType(column('c', { dataType: 'citext', nativeType: 'citext' }), 'postgres', 'mysql', { indexed: true });
  t.true('type' in back && back.type === 'varchar(768)' && back.warnings.some((w) => /citext becomes case-sensitive/.test(w)));
  // Back into MySQL, a created citext column's CHECK gives its varchar(n) again (and is not named as lost).
  t.deepEqual(citextBound('((char_length(("Title")::text) <= 160))'), { column: 'Title', length: 160 });
  t.deepEqual(citextBound('(char_length((name)::text) <= 8)'), { column: 'name', length: 8 });
  t.is(citextBound('(char_length((name)::text) < 8)'), undefined);
  const pg = table('postgres', 'p', [column('Title', { dataType: 'citext', nativeType: 'citext' })], { checks: [{ name: 'p_Title_check', clause: '((char_length(("Title")::text) <= 160))' }] });
  t.is(createTableDdl(pg, { name: 'p' }, 'mysql').create.at(-1)?.includes('`Title` varchar(160)'), true);
  t.deepEqual(carryOverNotices({ name: 'p', source: pg, to: 'mysql', columnsChanged: false, onUpdateReproduced: false, domainsReproduced: new Set() }), []);
  t.true(TYPE_MAP.some((row) => row.from === 'mysql' && row.target === 'citext'));
});

test('domains: VALUE replaced outside strings and quoted names; dollar quotes and E strings refused', (t) => {
  t.deepEqual(splitOnValue("(VALUE > 0 AND value <> 'VALUE' AND \"VALUE\" IS NULL AND values_x = 1)"), ['(', " > 0 AND ", " <> 'VALUE' AND \"VALUE\" IS NULL AND values_x = 1)"]);
  t.is(splitOnValue("VALUE <> E'\\''"), undefined);
  t.is(splitOnValue('VALUE <> $$x$$'), undefined);
  t.is(splitOnValue("VALUE <> 'unterminated"), undefined);
  t.is(domainCheck({ checks: ["CHECK ((VALUE)::text ~ '^[A-Z]+$'::text)", 'CHECK ((length((VALUE)::text) > 1))'] })?.check?.('"code"'),
    `(("code")::text ~ '^[A-Z]+$'::text) AND ((length(("code")::text) > 1))`);
  t.deepEqual(domainCheck({ checks: [] }), { check: undefined });
  t.is(domainCheck({ checks: ['CHECK ((VALUE > 0))', '(the rules of its base domain other)'] }), undefined);
});

test('domains: into PostgreSQL a domain column gets its base type, CHECK and NOT NULL; into MySQL its base type, and the plan names it', (t) => {
  const source = table('postgres', 'parts', [
    column('code', { nativeType: 'code', dataType: 'character varying', length: 8, nullable: true, domain: { name: 'code', baseType: 'character varying(8)', checks: ['CHECK ((VALUE <> \'X\'))'], notNull: true } }),
  ]);
  const spec: TableSpec = { name: 'parts' };
  const same = createTableDdl(source, spec, 'postgres');
  t.regex(same.create.at(-1) ?? '', /"code" character varying\(8\) NOT NULL,\n {2}CHECK \(\(\("code" <> 'X'\)\)\)/);
  t.deepEqual(same.notices, []);
  const other = createTableDdl(source, spec, 'mysql');
  t.regex(other.create.at(-1) ?? '', /`code` varchar\(8\),?\n/);
  t.deepEqual(other.notices.map((n) => n.reason), [CARRY_OVER_REASONS.domains]);
});

test('ON UPDATE: one trigger per table, named from it (hashed past 63 bytes), setting each target column unless the UPDATE set it', (t) => {
  const source = table('mysql', 'items', [column('id'), column('changed', { onUpdate: 'CURRENT_TIMESTAMP' }), column('gone', { onUpdate: 'CURRENT_TIMESTAMP' })]);
  const trigger = onUpdateTrigger(source, { table: 'shop.items', columnNames: new Map([['id', 'id'], ['changed', 'changed_at']]) });
  t.is(trigger?.name, 'items_on_update');
  t.is(trigger?.functionSignature, '"shop"."items_on_update"()');
  t.deepEqual(trigger?.columns, ['changed_at']);
  t.regex(trigger?.statements[0] ?? '', /IF NEW\."changed_at" IS NOT DISTINCT FROM OLD\."changed_at" THEN NEW\."changed_at" := CURRENT_TIMESTAMP/);
  t.regex(trigger?.statements[0] ?? '', /application_name'\) LIKE 'datamigration%' THEN RETURN NEW/);
  t.is(trigger?.statements[2], 'CREATE TRIGGER "items_on_update" BEFORE UPDATE ON "shop"."items" FOR EACH ROW EXECUTE FUNCTION "shop"."items_on_update"()');
  t.is(onUpdateTrigger(table('mysql', 'x', [column('id')]), { table: 'x', columnNames: new Map([['id', 'id']]) }), undefined);
  const long = onUpdateName('t'.repeat(60));
  t.true(Buffer.byteLength(long) <= 63);
  t.is(long, onUpdateName('t'.repeat(60)), 'deterministic');
});

test('MySQL spatial types map to bytea with a warning; the documented type map says so', (t) => {
  for (const dataType of ['geometry', 'point', 'polygon', 'multipolygon', 'geometrycollection']) {
    const mapped = mapColumnType(column('g', { dataType, nativeType: dataType }), 'mysql', 'postgres');
    t.true('type' in mapped && mapped.type === 'bytea' && mapped.warnings.length === 1, dataType);
  }
  t.true(TYPE_MAP.some((row) => row.from === 'mysql' && row.source === 'geometry' && row.target === 'bytea'));
});
