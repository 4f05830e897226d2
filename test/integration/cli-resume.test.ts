// The CLI as people and Jobs run it (a child process): killed with SIGKILL at random points of a
// copy, run again, and the target ends equal to the source with no row lost or repeated and no
// restart from zero. Also: exit codes for a refused plan and a bad manifest, and SQL from the
// manifest cannot write to the source.
import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl } from '../support/dmctl.ts';
import { scalar } from '../support/sql.ts';

const ROWS = 400_000;

async function manifestFile(body: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dmctl-'));
  const path = join(dir, 'migration.yaml');
  await writeFile(path, body);
  return path;
}

function manifest(from: Engine, to: Engine, extra = ''): string {
  return `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: resume, namespace: test}
spec:
  source: {engine: ${from}, secretRef: {name: source}, acceptWritableRole: true}
  target: {engine: ${to}, secretRef: {name: target}}
  schema: {createMissingTables: true}
  tables: [{name: orders${extra}}]
  strategy: {batchSize: 2000, parallelism: 2}
`;
}

async function seedOrders(engine: Engine, url: string, rows: number): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    if (engine === 'postgres') {
      await session.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer integer NOT NULL, note text, amount numeric(12,2))`);
      await session.query(`INSERT INTO orders SELECT g, g % 977, CASE WHEN g % 9 = 0 THEN NULL ELSE 'order ' || g END, (g % 100000) / 100.0 FROM generate_series(1, ${String(rows)}) g`);
      await session.query('ANALYZE orders');
    } else {
      await session.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, note text, amount decimal(12,2)) ENGINE=InnoDB`);
      await session.query(`INSERT INTO orders SELECT seq, seq % 977, IF(seq % 9 = 0, NULL, CONCAT('order ', seq)), (seq % 100000) / 100 FROM seq_1_to_${String(rows)}`);
      await session.query('ANALYZE TABLE orders');
    }
  } finally {
    await session.close();
  }
}

const fingerprint = (engine: Engine, url: string): Promise<string> => scalar(url, engine === 'postgres'
  ? `SELECT count(*) || ':' || count(DISTINCT id) || ':' || sum(id) || ':' || sum(customer) || ':' || sum(amount) || ':' || sum(length(note)) || ':' || count(note) FROM orders`
  : `SELECT CONCAT(count(*), ':', count(DISTINCT id), ':', sum(id), ':', sum(customer), ':', sum(amount), ':', sum(length(note)), ':', count(note)) FROM orders`);

for (const [from, to] of [['mysql', 'postgres'], ['postgres', 'mysql']] as const) {
  test(`${from} → ${to}: SIGKILLed three times at random points, the copy resumes and ends exact`, async (t) => {
    const source = await freshDatabase(t, from);
    const target = await freshDatabase(t, to);
    await seedOrders(from, source, ROWS);
    const file = await manifestFile(manifest(from, to));
    const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };
    const copied = async (): Promise<number> => Number(await scalar(target, 'SELECT COALESCE(SUM(rows_copied), 0) FROM dataops_copy_checkpoint').catch(() => '0'));

    let previous = 0;
    for (let kill = 0; kill < 3; kill++) {
      const threshold = previous + 20_000 + Math.floor(Math.random() * 60_000);
      const run = await dmctl(['run', '-f', file, '--skip-validation'], env, async () => (await copied()) >= threshold);
      t.is(run.signal, 'SIGKILL', `kill ${String(kill + 1)} landed before the copy finished`);
      const now = await copied();
      t.true(now >= previous, 'a rerun never goes back');
      t.is(Number(await scalar(target, 'SELECT count(*) FROM orders')), now, 'the target holds exactly the checkpointed rows');
      previous = now;
    }
    const final = await dmctl(['run', '-f', file, '--skip-validation'], env);
    t.is(final.code, 0, JSON.stringify(final.events.filter((e) => e.event === 'error')));
    const result = final.events.find((e) => e.event === 'result')?.result as { copy: { rowsThisRun: number } } | undefined;
    t.is(result?.copy.rowsThisRun, ROWS - previous, 'the last run copied only what was left');
    t.is(await fingerprint(to, target), await fingerprint(from, source));
  });
}

test('a plan that cannot be correct is refused with exit code 3 and writes nothing', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshDatabase(t, 'mysql');
  const session = await openSession(source, { readOnly: false });
  await session.query('CREATE TABLE orders (id bigint PRIMARY KEY, spots point)');
  await session.close();
  const file = await manifestFile(manifest('postgres', 'mysql'));
  const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
  t.is(run.code, 3);
  const error = run.events.find((e) => e.event === 'error');
  t.regex(String(error?.message), /column spots: PostgreSQL type point has no mapping to MySQL/);
  t.is(await scalar(target, 'SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()'), '0', 'nothing was created');
});

test('a bad manifest exits 2 naming the field; a password never appears in output', async (t) => {
  const file = await manifestFile(manifest('postgres', 'mysql').replace('batchSize: 2000', 'batchSize: 5'));
  const run = await dmctl(['plan', '-f', file], { DMO_SOURCE_URL: 'postgres://u:sup3r-secret@127.0.0.1:1/x', DMO_TARGET_URL: 'mysql://u:sup3r-secret@127.0.0.1:1/x' });
  t.is(run.code, 2);
  t.regex(String(run.events.find((e) => e.event === 'error')?.message), /spec\.strategy\.batchSize/);
  const unreachable = await dmctl(['plan', '-f', await manifestFile(manifest('postgres', 'mysql'))], { DMO_SOURCE_URL: 'postgres://u:sup3r-secret@127.0.0.1:1/x', DMO_TARGET_URL: 'mysql://u:sup3r-secret@127.0.0.1:1/x' });
  t.is(unreachable.code, 1);
  t.false(JSON.stringify(unreachable.events).includes('sup3r-secret'));
});

test('an expression that would write to the source is refused by the plan (exit 3, naming the field) before anything is written', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  const session = await openSession(source, { readOnly: false });
  await session.query('CREATE TABLE orders (id bigint PRIMARY KEY, note text); CREATE SEQUENCE s; INSERT INTO orders VALUES (1, \'a\')');
  await session.close();
  const file = await manifestFile(manifest('postgres', 'postgres', ', columns: [{name: note, expression: "nextval(\'s\')::text"}]').replace('schema: {createMissingTables: true}', 'schema: {migrations: [{version: "1", description: init, up: "CREATE TABLE orders (id bigint PRIMARY KEY, note text)"}]}'));
  const run = await dmctl(['run', '-f', file, '--skip-validation'], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
  t.is(run.code, 3);
  t.regex(String(run.events.find((e) => e.event === 'error')?.message), /spec\.tables\[orders\]\.columns\[note\]\.expression: .*nextval/);
  t.is(await scalar(source, "SELECT last_value || ':' || is_called FROM s"), '1:false', 'the sequence on the source did not move');
  t.is(await scalar(target, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"), '0', 'the schema step did not run: nothing on the target');
});
