// Rollback on real servers: down migrations back to the version recorded before the migration,
// the tables it created dropped (or its tables emptied), its checkpoints forgotten so a later run
// starts clean; twice is harmless, after a copy stopped half way too; the source never changes.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { CHECKPOINT_TABLE } from '../../src/engine/copy/checkpoint.ts';
import { schemaVersion } from '../../src/engine/migrations/migrate.ts';
import { engineSettings } from '../../src/engine/pipeline/settings.ts';
import { copyStep, schemaStep, type StepContext } from '../../src/engine/pipeline/steps.ts';
import { rollbackStep, validateStep } from '../../src/engine/pipeline/validate-steps.ts';
import { createdTables } from '../../src/engine/schema/created-tables.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';

const ROWS = 1000;

function manifest(from: Engine, to: Engine, migrations: NonNullable<NonNullable<DataMigration['spec']['schema']>['migrations']>, tables: boolean): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: `rollback-${from}-${to}`, namespace: 'test' },
    spec: {
      source: { engine: from, secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine: to, secretRef: { name: 'target' } },
      schema: { createMissingTables: tables, migrations },
      ...(tables ? { tables: [{ name: 'items' }, { name: 'notes' }] } : { tables: [{ name: 'items' }] }),
      strategy: { batchSize: 100, parallelism: 2 },
    },
  };
}

const V1 = { version: '1', description: 'audit table', up: 'CREATE TABLE audit (id integer PRIMARY KEY, what varchar(40));', down: 'DROP TABLE audit;' };
const V2 = { version: '2', description: 'settings table', up: "CREATE TABLE app_settings (name varchar(40) PRIMARY KEY, value varchar(40));\nINSERT INTO app_settings VALUES ('mode', 'new');", down: 'DROP TABLE app_settings;' };

async function withSession<T>(url: string, fn: (session: Awaited<ReturnType<typeof openSession>>) => Promise<T>): Promise<T> {
  const session = await openSession(url, { readOnly: false });
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

async function seedSource(engine: Engine, url: string): Promise<void> {
  await withSession(url, async (s) => {
    const suffix = engine === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4' : '';
    await s.query(`CREATE TABLE items (id integer PRIMARY KEY, name varchar(40) NOT NULL, price ${engine === 'postgres' ? 'numeric(10,2)' : 'decimal(10,2)'})${suffix}`);
    await s.query(`CREATE TABLE notes (id integer PRIMARY KEY, item_id integer NOT NULL REFERENCES items (id), body text)${suffix}`);
    await s.query(engine === 'postgres'
      ? `INSERT INTO items SELECT g, 'item ' || g, g / 10.0 FROM generate_series(1, ${ROWS}) g`
      : `INSERT INTO items SELECT seq, CONCAT('item ', seq), seq / 10 FROM seq_1_to_${ROWS}`);
    await s.query(engine === 'postgres'
      ? 'INSERT INTO notes SELECT g, g, repeat(\'n\', g % 20) FROM generate_series(1, 50) g'
      : "INSERT INTO notes SELECT seq, seq, REPEAT('n', seq % 20) FROM seq_1_to_50");
  });
}

/** A checksum of the whole source, computed by the database. */
async function sourceChecksum(engine: Engine, url: string): Promise<string> {
  return withSession(url, async (s) => {
    const sql = engine === 'postgres'
      ? "SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM items t) || (SELECT md5(string_agg(n::text, ',' ORDER BY id)) FROM notes n) AS c"
      : "SELECT CONCAT((SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', id, name, price) ORDER BY id SEPARATOR ',')) FROM items), (SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', id, item_id, body) ORDER BY id SEPARATOR ',')) FROM notes)) AS c";
    if (engine === 'mysql') await s.query('SET SESSION group_concat_max_len = 104857600');
    const [row] = await s.query(sql);
    return row?.c?.toString() ?? '';
  });
}

async function tableNames(url: string): Promise<string[]> {
  return withSession(url, async (s) => {
    const rows = s.engine === 'postgres'
      ? await s.query("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1")
      : await s.query('SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1');
    return rows.map((r) => r.name?.toString() ?? '');
  });
}

async function count(url: string, sql: string): Promise<number> {
  return withSession(url, async (s) => {
    const [row] = await s.query(sql);
    return Number(row ? Object.values(row)[0]?.toString() : 'NaN');
  });
}

const checkpoints = (url: string): Promise<number> => count(url, `SELECT count(*) FROM ${CHECKPOINT_TABLE}`);

for (const [from, to] of [['postgres', 'postgres'], ['mysql', 'mysql'], ['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: rollback by policy restores the previous schema version, is idempotent, works after a partial copy, never touches the source`, async (t) => {
    const source = await freshDatabase(t, from);
    const target = await freshTargetDatabase(t, to);
    await seedSource(from, source);
    const before = await sourceChecksum(from, source);

    // Version 1 is there before this migration starts, applied by another (earlier) migration.
    const earlier: StepContext = { source: { url: source }, target: { url: target }, settings: engineSettings({ ...manifest(from, to, [V1], false), metadata: { name: 'earlier', namespace: 'test' } }) };
    t.is((await schemaStep(earlier)).version, '1');
    const context: StepContext = { source: { url: source }, target: { url: target }, settings: engineSettings(manifest(from, to, [V1, V2], true)) };
    const schema = await schemaStep(context);
    t.is(schema.versionBefore, '1');
    t.is(schema.version, '2');
    t.deepEqual([...schema.createdTables].sort(), ['items', 'notes']);
    await copyStep(context);
    t.true((await validateStep(context)).passed);

    // DownMigrations: back to version 1, created tables dropped, checkpoints forgotten.
    const down = await rollbackStep(context, { versionBefore: '1', action: 'DownMigrations' });
    t.deepEqual(down.reverted, ['2']);
    t.deepEqual([...down.droppedTables].sort(), ['items', 'notes']);
    t.is(down.versionBefore, '2');
    t.is(down.version, '1');
    t.true(down.checkpointsCleared > 0);
    await withSession(target, async (s) => { t.is(await schemaVersion(s, context.settings.historyTable), '1'); });
    let tables = await tableNames(target);
    t.true(tables.includes('audit'));
    t.false(tables.includes('app_settings'));
    t.false(tables.includes('items'));
    t.is(await checkpoints(target), 0);
    const again = await rollbackStep(context, { versionBefore: '1', action: 'DownMigrations' });
    t.deepEqual(again.reverted, [], 'twice is harmless');
    t.deepEqual(again.droppedTables, []);
    t.is(again.version, '1');
    t.deepEqual(JSON.parse(JSON.stringify(again)), again, 'the result is plain JSON');

    // A later run starts clean, and stops half way through the copy.
    await schemaStep(context);
    const controller = new AbortController();
    const partial: StepContext = { ...context, signal: controller.signal };
    await t.throwsAsync(copyStep(partial, (states) => {
      if (states.reduce((sum, s) => sum + s.rowsCopied, 0) >= 200) controller.abort();
    }));
    const copiedSoFar = await count(target, 'SELECT count(*) FROM items');
    t.true(copiedSoFar > 0 && copiedSoFar < ROWS, `partial copy left ${copiedSoFar} rows`);

    // DropCreatedTables after the partial copy: the created tables go, the schema version stays.
    const dropped = await rollbackStep(context, { versionBefore: '1', action: 'DropCreatedTables' });
    t.deepEqual([...dropped.droppedTables].sort(), ['items', 'notes']);
    t.is(dropped.version, '2');
    t.false((await tableNames(target)).includes('items'));
    await withSession(target, async (s) => { t.deepEqual(await createdTables(s, context.settings.uid), []); });
    const droppedAgain = await rollbackStep(context, { versionBefore: '1', action: 'DropCreatedTables' });
    t.deepEqual(droppedAgain.droppedTables, []);

    // TruncateTables: the tables stay, empty; a new copy fills them from the start.
    await schemaStep(context);
    await copyStep(context);
    const truncated = await rollbackStep(context, { versionBefore: '1', action: 'TruncateTables' });
    t.deepEqual([...truncated.truncatedTables].sort(), ['items', 'notes']);
    t.is(await count(target, 'SELECT count(*) FROM items'), 0);
    t.is(await checkpoints(target), 0);
    await rollbackStep(context, { versionBefore: '1', action: 'TruncateTables' });
    // Validation of the emptied target stops at the reported maximum instead of reading every range.
    const emptied = await validateStep(context, { maxReportedDifferences: 5 });
    const items = emptied.tables.find((x) => x.table === 'items');
    t.false(emptied.passed);
    t.deepEqual(items?.rowCount, { passed: false, source: ROWS, target: 0 });
    t.is(items?.differences.length, 5);
    t.true(items?.differences.every((d) => d.kind === 'missing'));
    t.true(items?.differencesTruncated);
    // The emptied tables keep their foreign keys (notes → items): copy them one after the other.
    const recopy = await copyStep({ ...context, settings: { ...context.settings, parallelism: 1 } });
    t.is(recopy.rowsThisRun, ROWS + 50);
    t.true((await validateStep(context)).passed);

    // None leaves everything as it is.
    const none = await rollbackStep(context, { versionBefore: '1', action: 'None' });
    t.is(none.checkpointsCleared, 0);
    t.is(await count(target, 'SELECT count(*) FROM items'), ROWS);

    tables = await tableNames(target);
    t.true(tables.includes('items'));
    t.is(await sourceChecksum(from, source), before, 'the source is unchanged');
  });
}

test('postgres → postgres: DropCreatedTables also drops the enum types the migration created, never one the target had', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await withSession(source, async (s) => {
    await s.query("CREATE TYPE mood AS ENUM ('ok', 'sad')");
    await s.query("CREATE TYPE size AS ENUM ('s', 'm', 'l')");
    await s.query('CREATE TABLE feelings (id integer PRIMARY KEY, m mood, z size)');
    await s.query("INSERT INTO feelings VALUES (1, 'ok', 's'), (2, 'sad', NULL)");
  });
  // The target has its own `size` already: the migration uses it and must leave it.
  await withSession(target, async (s) => { await s.query("CREATE TYPE size AS ENUM ('s', 'm', 'l')"); });
  const base = manifest('postgres', 'postgres', [], true);
  const context: StepContext = {
    source: { url: source }, target: { url: target },
    settings: engineSettings({ ...base, spec: { ...base.spec, tables: [{ name: 'feelings' }] } }),
  };
  t.deepEqual((await schemaStep(context)).createdTables, ['feelings']);
  await copyStep(context);
  const types = async (): Promise<string[]> => withSession(target, async (s) =>
    (await s.query("SELECT typname FROM pg_type WHERE typtype = 'e' ORDER BY 1")).map((r) => r.typname?.toString() ?? ''));
  t.deepEqual(await types(), ['mood', 'size']);
  const dropped = await rollbackStep(context, { versionBefore: null, action: 'DropCreatedTables' });
  t.deepEqual(dropped.droppedTables, ['feelings']);
  t.deepEqual(dropped.droppedTypes, ['mood']);
  t.deepEqual(await types(), ['size'], 'the target\'s own type stays');
  const again = await rollbackStep(context, { versionBefore: null, action: 'DropCreatedTables' });
  t.deepEqual(again.droppedTypes, [], 'twice is harmless');
});
