// `dmctl cleanup` on the real servers: the target's bookkeeping tables (dataops_*) go once no
// migration needs them, and never before. A migration that could still resume or roll back (not
// retired: a copy's checkpoints, tables a rollback would drop) blocks it, named with the way out;
// the application's tables, their rows and the schema history stay; a second cleanup is harmless.
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import type { DataMigration } from '../../src/api/types.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl, type CliRun } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';

const UID = '22222222-2222-4222-8222-222222222222';

function manifest(engine: Engine): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders', namespace: 'shop', uid: UID },
    spec: {
      source: { engine, secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine, secretRef: { name: 't' } },
      schema: {
        createMissingTables: true,
        migrations: [{ version: '1', description: 'audit', up: 'CREATE TABLE audit (id int PRIMARY KEY)', down: 'DROP TABLE audit' }],
      },
      tables: [{ name: 'orders' }],
    },
  };
}

const bookkeepingTables = async (engine: Engine, target: string): Promise<string[]> => {
  const sql = engine === 'postgres'
    ? "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'dataops\\_%'"
    : "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'dataops\\_%'";
  return (await scalar(target, sql)).split(',').filter(Boolean);
};

const message = (run: CliRun): string => run.events.map((e) => (typeof e.message === 'string' ? e.message : '')).join('\n');

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: cleanup is refused while a migration could resume or roll back, and drops only the bookkeeping once it is retired`, async (t) => {
    const source = await freshDatabase(t, engine);
    const target = await freshTargetDatabase(t, engine);
    await execSql(source, [
      `CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(40))${engine === 'mysql' ? ' ENGINE=InnoDB' : ''}`,
      "INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    ]);
    const file = join(await mkdtemp(join(tmpdir(), 'dmo-cleanup-')), 'dm.yaml');
    await writeFile(file, stringify(manifest(engine)));
    const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };

    // Schema and copy only: not validated, not retired; it would resume, and a rollback would drop `orders`.
    t.is((await dmctl(['run', '--skip-validation', '-f', file], env)).code, EXIT.ok);
    const before = await bookkeepingTables(engine, target);
    t.true(before.includes('dataops_created_table') && before.includes('dataops_migration'), before.join());
    const refused = await dmctl(['cleanup', '-f', file], env);
    t.is(refused.code, EXIT.planRefused);
    t.regex(message(refused), new RegExp(`still needed by 1 migration\\(s\\): shop/orders \\(uid ${UID}\\): not retired.*created table\\(s\\) a rollback would drop`));
    t.regex(message(refused), /dmctl retire/);
    t.regex(message(refused), /DELETE FROM .dataops_migration. WHERE migration_uid IN \('22222222/);
    t.deepEqual(await bookkeepingTables(engine, target), before, 'nothing dropped');

    // The validate step names them (the operator puts them in status.bookkeeping).
    const validated = await dmctl(['step', 'validate', '-f', file], env);
    const result = validated.events.find((e) => e.event === 'result')?.result as { validation?: { bookkeeping?: string[] } } | undefined;
    t.deepEqual(result?.validation?.bookkeeping, before);

    t.is((await dmctl(['retire', '-f', file], env)).code, EXIT.ok);
    const cleaned = await dmctl(['cleanup', '-f', file], env);
    t.is(cleaned.code, EXIT.ok, message(cleaned));
    t.deepEqual(await bookkeepingTables(engine, target), ['dataops_schema_history'], 'the schema history stays: it is the application\'s version');
    t.is(await scalar(target, 'SELECT count(*) FROM orders'), '3', 'the application\'s tables keep their rows');
    t.is(await scalar(target, 'SELECT count(*) FROM audit'), '0');
    t.is(await scalar(source, 'SELECT count(*) FROM orders'), '3');
    const again = await dmctl(['cleanup', '-f', file], env);
    t.is(again.code, EXIT.ok, 'a second cleanup finds nothing and is harmless');
    t.regex(message(again), /no bookkeeping tables to drop/);
  });
}
