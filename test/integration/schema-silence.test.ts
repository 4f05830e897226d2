// Nothing lost in silence (issue 15): every object of the source schema that the migration does
// not carry over is named in the plan, once, in one warning per reason (views, materialized views,
// triggers, routines, events, CHECK constraints, collations, ON UPDATE options, domains,
// generated columns, expression indexes), or it is reproduced on the target and compared there
// through the catalogs (ON UPDATE CURRENT_TIMESTAMP as a trigger, domains as their base type and
// CHECK, same-engine CHECKs, MySQL spatial columns as their stored bytes). Each accepted plan runs:
// schema, copy and validation all succeed.
import test, { type ExecutionContext } from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { copyStep, planStep } from '../../src/engine/pipeline/steps.ts';
import { rollbackStep } from '../../src/engine/pipeline/validate-steps.ts';
import { randomBytes } from 'node:crypto';
import { adminQuery } from '../support/databases.ts';
import { execSql, scalar } from '../support/sql.ts';
import { corpusManifest, corpusSetup, runAccepted, type Tables } from '../support/schema-corpus.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { dmctl } from '../support/dmctl.ts';

const manifest = (from: Engine, to: Engine, tables?: Tables): DataMigration => corpusManifest('silence', from, to, tables);
const setup = (t: ExecutionContext, from: Engine, to: Engine, seed: string[], tables?: Tables): ReturnType<typeof corpusSetup> => corpusSetup(t, 'silence', from, to, seed, tables);

/** The one warning whose text matches `reason` (the test fails unless there is exactly one). */
function warningFor(t: ExecutionContext, warnings: readonly string[], reason: RegExp): string {
  const matching = warnings.filter((w) => reason.test(w));
  t.is(matching.length, 1, `one warning for ${String(reason)} in:\n${warnings.join('\n')}`);
  return matching[0] ?? '';
}

/** The subjects a grouped warning names (after its reason's colon). */
function subjectsOf(warning: string): string[] {
  return warning.slice(warning.lastIndexOf(': ') + 2).split(', ').sort();
}

async function rows(url: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const session = await openSession(url, { readOnly: true });
  try {
    return (await session.query(sql, params)).map((r) => ({ ...r }));
  } finally {
    await session.close();
  }
}

test('mysql → postgres: views, routines, events and triggers of the source are each named once; CHECKs, case-insensitive collations and generated columns too', async (t) => {
  const { context } = await setup(t, 'mysql', 'postgres', [
    `CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL, name varchar(20) COLLATE utf8mb4_general_ci, code varchar(10) COLLATE utf8mb4_bin,
       total int AS (qty * 2) STORED, CONSTRAINT qty_positive CHECK (qty > 0)) ENGINE=InnoDB`,
    'CREATE TABLE audit (id int PRIMARY KEY, note text) ENGINE=InnoDB',
    'CREATE TABLE other (id int PRIMARY KEY) ENGINE=InnoDB',
    'INSERT INTO orders (id, qty, name, code) VALUES (1, 2, \'a\', \'x\'), (2, 3, \'B\', \'y\')',
    'CREATE VIEW big_orders AS SELECT id FROM orders WHERE qty > 2',
    'CREATE VIEW all_orders AS SELECT * FROM orders',
    'CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2',
    'CREATE PROCEDURE touch_orders() MODIFIES SQL DATA UPDATE orders SET qty = qty',
    'CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit',
    "CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit VALUES (NEW.id, 'new')",
    'CREATE TRIGGER other_trigger BEFORE INSERT ON other FOR EACH ROW SET NEW.id = NEW.id',
  ], [{ name: 'orders' }, { name: 'audit' }]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  const database = await scalar(context.source.url, 'SELECT DATABASE()');
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, new RegExp(`^views of the source database ${database} `))), ['all_orders', 'big_orders']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^routines .* not migrated/)), ['touch_orders (procedure)', 'twice (function)']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^scheduled events /)), ['purge_audit']);
  // Triggers of migrated tables only: other's is not this migration's business.
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^triggers on the migrated tables /)), ['orders.orders_audit']);
  t.regex(warningFor(t, plan.warnings, /^CHECK constraints are not created on PostgreSQL/), /orders\.qty_positive/);
  // The database's default collation is case-insensitive too (audit.note); utf8mb4_bin is exact.
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^case-insensitive/)), ['audit.note (utf8mb4_unicode_ci)', 'orders.name (utf8mb4_general_ci)']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^generated columns are not created/)), ['orders.total']);
  t.false(plan.warnings.some((w) => /cannot list/.test(w)), 'the admin sees every object');
  await runAccepted(t, context);
});

test('mysql → postgres: a read-only source role that cannot see triggers, events, routines or views is told so, once, naming what it lacks', async (t) => {
  const { context, source } = await setup(t, 'mysql', 'postgres', [
    'CREATE TABLE orders (id int PRIMARY KEY) ENGINE=InnoDB',
    'CREATE TRIGGER orders_check BEFORE INSERT ON orders FOR EACH ROW SET NEW.id = NEW.id',
  ], [{ name: 'orders' }]);
  const user = `dmo_silent_${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const database = new URL(source).pathname.slice(1);
  await adminQuery('mysql', `CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
  t.teardown(() => adminQuery('mysql', `DROP USER IF EXISTS '${user}'@'%'`));
  await adminQuery('mysql', `GRANT SELECT ON \`${database}\`.orders TO '${user}'@'%'`);
  const reader = new URL(source);
  reader.username = user;
  reader.password = password;
  const { plan } = await planStep({ ...context, source: { url: reader.toString() } });
  t.deepEqual(plan.errors, []);
  t.false(plan.warnings.some((w) => /^triggers on the migrated tables/.test(w)), 'the reader cannot see the trigger');
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, new RegExp(`^objects the source login cannot list in the source database ${database} `))),
    ['events (needs EVENT)', 'routines (needs EXECUTE)', 'triggers of orders (needs TRIGGER)', 'views (needs SHOW VIEW)']);
});

test('mysql → postgres: ON UPDATE CURRENT_TIMESTAMP becomes a recorded trigger that sets the column for the application, not for the migration, and rollback drops it', async (t) => {
  const { context, target } = await setup(t, 'mysql', 'postgres', [
    `CREATE TABLE items (id int PRIMARY KEY, v int, changed timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
       touched datetime NULL DEFAULT NULL ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB`,
    "INSERT INTO items (id, v, changed, touched) VALUES (1, 1, '2001-01-01 00:00:00', '2001-01-01 00:00:00'), (2, 2, '2002-02-02 00:00:00', NULL)",
  ]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  t.false(plan.warnings.some((w) => /ON UPDATE/.test(w)), plan.warnings.join('\n'));
  await runAccepted(t, context);
  // Through the catalogs: one BEFORE UPDATE row trigger on items, calling items_on_update().
  const triggers = await rows(target, `SELECT tgname, tgfoid::regproc::text AS fn, tgtype FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal`);
  t.deepEqual(triggers.map((r) => [r.tgname, r.fn]), [['items_on_update', 'items_on_update']]);
  t.is(Number(triggers[0]?.tgtype) & 0b11, 0b11, 'BEFORE, FOR EACH ROW'); // TRIGGER_TYPE_ROW | TRIGGER_TYPE_BEFORE
  t.is(Number(triggers[0]?.tgtype) & 0b10000, 0b10000, 'on UPDATE');
  t.is(await scalar(target, 'SELECT count(*) FROM dataops_created_function'), '1', 'the function is recorded as this migration\'s');
  // A rerun of the copy step makes it again, in place: still one trigger, one record.
  await copyStep(context);
  t.is(await scalar(target, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal"), '1');
  t.is(await scalar(target, 'SELECT count(*) FROM dataops_created_function'), '1');
  // The migration's own sessions keep the values they write; the application's updates get the time.
  await execSql(target, ['UPDATE items SET v = 10 WHERE id = 1']);
  t.is(await scalar(target, "SELECT changed = '2001-01-01 00:00:00+00' FROM items WHERE id = 1"), 't');
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: target, application_name: 'shop' });
  await client.connect();
  try {
    await client.query('UPDATE items SET v = 20 WHERE id = 1');
    await client.query("UPDATE items SET v = 30, changed = '1999-09-09 00:00:00+00' WHERE id = 2");
  } finally {
    await client.end();
  }
  t.is(await scalar(target, 'SELECT changed > now() - interval \'1 minute\' AND touched > now() - interval \'1 minute\' FROM items WHERE id = 1'), 't');
  t.is(await scalar(target, "SELECT changed = '1999-09-09 00:00:00+00' FROM items WHERE id = 2"), 't', 'a value the UPDATE sets is kept');
  await rollbackStep(context, { action: 'DropCreatedTables', versionBefore: null });
  t.is(await scalar(target, "SELECT count(*) FROM pg_proc WHERE proname = 'items_on_update'"), '0');
  t.is(await scalar(target, 'SELECT count(*) FROM dataops_created_function'), '0', 'and its record forgotten');
});

test('mysql → postgres: a function of the trigger\'s name that the migration did not create refuses the plan', async (t) => {
  const { context, target } = await setup(t, 'mysql', 'postgres', [
    'CREATE TABLE items (id int PRIMARY KEY, changed timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB',
  ]);
  await execSql(target, ['CREATE FUNCTION items_on_update() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$']);
  const { plan } = await planStep(context);
  t.regex(plan.errors.join('\n'), /ON UPDATE CURRENT_TIMESTAMP columns of table items \(changed\).*"items_on_update"\(\).*exists already/);
});

test('mysql → postgres: spatial columns are copied as their stored bytes, named once, and validate exactly', async (t) => {
  const { context, source, target } = await setup(t, 'mysql', 'postgres', [
    'CREATE TABLE places (id int PRIMARY KEY, spot POINT, area POLYGON, shape GEOMETRY NOT NULL, SPATIAL INDEX by_shape (shape)) ENGINE=InnoDB',
    "INSERT INTO places VALUES (1, ST_GeomFromText('POINT(1.5 -2)'), ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), ST_GeomFromText('LINESTRING(0 0,3 4)', 4326))",
    "INSERT INTO places VALUES (2, NULL, NULL, ST_GeomFromText('POINT(0 0)'))",
    // 6 kB: over what a btree index row may hold, so no plain index may be made on the bytes.
    `INSERT INTO places VALUES (3, NULL, NULL, ST_GeomFromText('LINESTRING(${Array.from({ length: 400 }, (_, i) => `${String(i)} ${String(i * 0.5)}`).join(',')})'))`,
  ]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^spatial columns become bytea/)), ['places.area', 'places.shape', 'places.spot']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^SPATIAL indexes are not created/)), ['places.by_shape']);
  t.deepEqual(plan.tables[0]?.typeMapping.filter((m) => m.column !== 'id').map((m) => m.target), ['bytea', 'bytea', 'bytea']);
  await runAccepted(t, context);
  for (const id of [1, 2, 3]) {
    const expected = await scalar(source, `SELECT LOWER(CONCAT_WS('|', IFNULL(HEX(spot), 'null'), IFNULL(HEX(area), 'null'), HEX(shape))) FROM places WHERE id = ${String(id)}`);
    t.is(await scalar(target, `SELECT concat_ws('|', COALESCE(encode(spot, 'hex'), 'null'), COALESCE(encode(area, 'hex'), 'null'), encode(shape, 'hex')) FROM places WHERE id = ${String(id)}`), expected);
  }
  // The documented form: SRID (4 bytes, little-endian), then WKB (byte order 01, type 2 = linestring).
  t.is(await scalar(target, "SELECT substring(encode(shape, 'hex') from 1 for 18) FROM places WHERE id = 1"), 'e61000000102000000');
});

test('mysql → mysql: ON UPDATE options and CHECK constraints are reproduced, compared through the catalogs', async (t) => {
  const { context, source, target } = await setup(t, 'mysql', 'mysql', [
    `CREATE TABLE items (id int PRIMARY KEY, qty int, changed timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
       CONSTRAINT qty_positive CHECK (qty > 0)) ENGINE=InnoDB`,
    "INSERT INTO items VALUES (1, 1, '2001-01-01 00:00:00')",
  ]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  t.false(plan.warnings.some((w) => /CHECK|ON UPDATE/.test(w)), plan.warnings.join('\n'));
  await runAccepted(t, context);
  const extra = "SELECT EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'items' AND COLUMN_NAME = 'changed'";
  t.is(await scalar(target, extra), await scalar(source, extra));
  const checks = "SELECT GROUP_CONCAT(CONSTRAINT_NAME, ':', CHECK_CLAUSE) FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'items'";
  t.is(await scalar(target, checks), await scalar(source, checks));
});

test('postgres → mysql: views, materialized views, routines (none of an extension), triggers, policies, CHECKs, domains, collations and expression indexes are each named once', async (t) => {
  const { context } = await setup(t, 'postgres', 'mysql', [
    "CREATE DOMAIN positive AS integer CHECK (VALUE > 0) NOT NULL",
    'CREATE COLLATION nocase (provider = icu, locale = \'und-u-ks-level2\', deterministic = false)',
    `CREATE TABLE orders (id int PRIMARY KEY, qty positive, price numeric(8,2) CONSTRAINT price_positive CHECK (price >= 0), name text COLLATE nocase,
       code varchar(10) COLLATE "C", label text COLLATE "und-x-icu", email text)`,
    'CREATE INDEX orders_lower_email ON orders (lower(email))',
    'CREATE INDEX orders_big ON orders (qty) WHERE qty > 100',
    'CREATE TABLE other (id int PRIMARY KEY)',
    "INSERT INTO orders VALUES (1, 2, 1.5, 'a', 'x', 'l', 'A@x'), (2, 3, 0, 'B', 'y', 'm', 'b@y')",
    'CREATE VIEW big_orders AS SELECT id FROM orders WHERE qty > 2',
    'CREATE MATERIALIZED VIEW order_totals AS SELECT sum(qty) AS total FROM orders',
    'CREATE FUNCTION twice(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT x * 2 $$',
    'CREATE FUNCTION twice(x numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT x * 2 $$',
    'CREATE PROCEDURE reset_orders() LANGUAGE sql AS $$ UPDATE orders SET qty = 1 $$',
    'CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$',
    'CREATE TRIGGER orders_stamp BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION stamp()',
    'CREATE TRIGGER other_stamp BEFORE UPDATE ON other FOR EACH ROW EXECUTE FUNCTION stamp()',
    'CREATE POLICY own_orders ON orders USING (qty > 0)',
    // An extension's functions and types are the extension's: not listed as routines.
    'CREATE EXTENSION IF NOT EXISTS citext',
  ], [{ name: 'orders' }]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^views of the source schema public /)), ['big_orders']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^materialized views of the source schema public /)), ['order_totals']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^routines .*schema public/)), ['reset_orders()', 'stamp()', 'twice(x integer)', 'twice(x numeric)']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^triggers on the migrated tables /)), ['orders.orders_stamp']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^row-level security policies /)), ['orders.own_orders']);
  t.regex(warningFor(t, plan.warnings, /^CHECK constraints are not created on MySQL/), /orders\.price_positive/);
  t.regex(warningFor(t, plan.warnings, /^domain rules/), /orders\.qty \(domain positive: CHECK \(\(VALUE > 0\)\), NOT NULL\)/);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^nondeterministic/)), ['orders.name (nocase)']);
  // "C" compares by code point like the created table's utf8mb4_bin: reproduced, not named.
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^column collations other than the default/)), ['orders.label (und-x-icu)']);
  t.deepEqual(subjectsOf(warningFor(t, plan.warnings, /^expression, partial and functional indexes/)), ['orders.orders_big', 'orders.orders_lower_email']);
  await runAccepted(t, context);
});

test('postgres → postgres: a domain column becomes its base type with the domain\'s CHECK and NOT NULL; CHECK constraints are reproduced', async (t) => {
  const { context, target } = await setup(t, 'postgres', 'postgres', [
    "CREATE DOMAIN code AS varchar(8) NOT NULL CHECK (VALUE ~ '^[A-Z]+$') CHECK (length(VALUE) > 1)",
    "CREATE TABLE parts (id int PRIMARY KEY, code code, qty int CONSTRAINT qty_positive CHECK (qty > 0), \"value\" int CHECK (\"value\" <> 7))",
    "INSERT INTO parts VALUES (1, 'AB', 1, 1), (2, 'XYZ', 2, 2)",
  ]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  t.false(plan.warnings.some((w) => /domain|CHECK/.test(w)), plan.warnings.join('\n'));
  await runAccepted(t, context);
  t.is(await scalar(target, "SELECT format_type(atttypid, atttypmod) || ' ' || attnotnull FROM pg_attribute WHERE attrelid = 'parts'::regclass AND attname = 'code'"), 'character varying(8) true');
  const checks = await rows(target, "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'parts'::regclass AND contype = 'c' ORDER BY conname");
  t.true(checks.some((c) => c.conname === 'qty_positive' && c.def === 'CHECK ((qty > 0))'), JSON.stringify(checks));
  t.true(checks.some((c) => String(c.def).includes("(code)::text ~ '^[A-Z]+$'") && String(c.def).includes('length((code)::text) > 1')), JSON.stringify(checks));
  t.true(checks.some((c) => c.def === 'CHECK ((value <> 7))'), JSON.stringify(checks));
  await t.throwsAsync(execSql(target, ["INSERT INTO parts VALUES (3, 'abc', 1, 1)"]), { message: /check constraint/ });
});

test('mysql → mysql: a spatial column (which the copy cannot load yet) is refused by the plan, naming it, before anything is written', async (t) => {
  const { context, target } = await setup(t, 'mysql', 'mysql', [
    'CREATE TABLE places (id int PRIMARY KEY, spot POINT) ENGINE=InnoDB',
    "INSERT INTO places VALUES (1, ST_GeomFromText('POINT(1.5 -2)'))",
  ]);
  const { plan } = await planStep(context);
  t.regex(plan.errors.join('\n'), /table places: column spot: MySQL spatial type point cannot be copied MySQL → MySQL/);
  t.is(await scalar(target, "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'places'"), '0');
});

test('dmctl plan names what is left behind, grouped, and dmctl run of that plan succeeds (mysql → postgres)', async (t) => {
  const { source, target } = await setup(t, 'mysql', 'postgres', [
    'CREATE TABLE a (id int PRIMARY KEY, changed timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB',
    'CREATE TABLE b (id int PRIMARY KEY) ENGINE=InnoDB',
    "INSERT INTO a (id, changed) VALUES (1, '2001-01-01 00:00:00')", 'INSERT INTO b VALUES (1)',
    'CREATE VIEW va AS SELECT id FROM a', 'CREATE VIEW vb AS SELECT id FROM b',
    'CREATE TRIGGER a_ins BEFORE INSERT ON a FOR EACH ROW SET NEW.id = NEW.id', 'CREATE TRIGGER b_ins BEFORE INSERT ON b FOR EACH ROW SET NEW.id = NEW.id',
  ]);
  const file = join(await mkdtemp(join(tmpdir(), 'dmo-silence-')), 'dm.yaml');
  await writeFile(file, stringify(manifest('mysql', 'postgres')));
  const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };
  const plan = await dmctl(['plan', '-f', file], env);
  t.is(plan.code, 0, JSON.stringify(plan.events));
  const warnings = plan.events.filter((e) => e.event === 'warning').map((e) => String(e.message));
  t.deepEqual(subjectsOf(warningFor(t, warnings, /^views of the source database /)), ['va', 'vb']);
  t.deepEqual(subjectsOf(warningFor(t, warnings, /^triggers on the migrated tables /)), ['a.a_ins', 'b.b_ins']);
  const run = await dmctl(['run', '-f', file], env);
  t.is(run.code, 0, JSON.stringify(run.events.filter((e) => e.event === 'error')));
  t.is(await scalar(target, "SELECT count(*) FROM pg_trigger WHERE tgname = 'a_on_update'"), '1');
});
