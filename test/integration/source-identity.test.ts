// The source and the target are different databases, proven from what the servers say (issue 13,
// defect 2): one database reached through two URLs (the same URL twice, 127.0.0.1 and localhost,
// two users) is refused by plan, run and every step, on both engines, before anything is written;
// two databases on one server are two databases.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { adminQuery, freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';

async function manifestFile(engine: Engine): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dmctl-identity-'));
  const path = join(dir, 'migration.yaml');
  // A different target table name: were the refusal missing, the run would create and fill it next to the source's.
  await writeFile(path, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: same, namespace: test}
spec:
  source: {engine: ${engine}, secretRef: {name: source}, acceptWritableRole: true}
  target: {engine: ${engine}, secretRef: {name: target}}
  schema: {createMissingTables: true}
  tables: [{name: orders, target: orders_copy}]
  rollback: {schemaAction: TruncateTables}
`);
  return path;
}

/** A second login on the server, allowed to read the database (what a second Secret might hold). */
async function secondUser(t: import('ava').ExecutionContext, engine: Engine, url: string): Promise<string> {
  const user = `reader_${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const database = new URL(url).pathname.slice(1);
  if (engine === 'postgres') {
    await adminQuery(engine, `CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
    t.teardown(() => adminQuery(engine, `DROP ROLE IF EXISTS ${user}`).catch(() => undefined));
    await execSql(url, [`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${user}`, `GRANT CREATE ON SCHEMA public TO ${user}`]);
  } else {
    await adminQuery(engine, `CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
    t.teardown(() => adminQuery(engine, `DROP USER IF EXISTS '${user}'@'%'`));
    await adminQuery(engine, `GRANT ALL ON \`${database}\`.* TO '${user}'@'%'`);
  }
  const other = new URL(url);
  other.username = user;
  other.password = password;
  return other.toString();
}

function withHost(url: string, host: string): string {
  const other = new URL(url);
  other.hostname = host;
  return other.toString();
}

const tablesOf = (engine: Engine, url: string): Promise<string> => scalar(url, engine === 'postgres'
  ? "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'"
  : 'SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()');

const COMMANDS = [['plan'], ['run'], ['step', 'schema'], ['step', 'copy'], ['step', 'validate'], ['step', 'rollback']];

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: one database through two URLs is refused by plan, run and every step, and nothing is written`, async (t) => {
    const source = await freshDatabase(t, engine, 'same');
    await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(20))', "INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, 'c')"]);
    const other = await secondUser(t, engine, source);
    const file = await manifestFile(engine);
    const variants: [string, string][] = [
      ['the same URL twice', source],
      ['127.0.0.1 and localhost', withHost(source, 'localhost')],
      ['two users', other],
    ];
    for (const [variant, target] of variants) {
      for (const command of COMMANDS) {
        const run = await dmctl([...command, '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
        const label = `${variant}: dmctl ${command.join(' ')}`;
        t.is(run.code, 3, label);
        const error = run.events.find((e) => e.event === 'error');
        t.regex(String(error?.message), /the source and the target are the same database/, label);
        const output = JSON.stringify(run.events);
        for (const secret of [new URL(source).password, new URL(target).password, source, target]) t.false(output.includes(secret), `${label}: no URL or password in the output`);
      }
    }
    t.is(await tablesOf(engine, source), 'orders', 'no table created, no bookkeeping written');
    t.is(await scalar(source, 'SELECT count(*) FROM orders'), '3', 'the source rows are all there');
  });

  test(`${engine}: two databases on one server are two databases: the plan accepts them and a run copies`, async (t) => {
    const source = await freshDatabase(t, engine, 'src');
    const target = await freshTargetDatabase(t, engine, 'dst');
    await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(20))', "INSERT INTO orders VALUES (1, 'a'), (2, 'b')"]);
    const file = await manifestFile(engine);
    const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: withHost(target, 'localhost') };
    const plan = await dmctl(['plan', '-f', file], env);
    t.is(plan.code, 0, JSON.stringify(plan.events.filter((e) => e.event === 'error')));
    // The admin role the tests use can write the source: the plan says so.
    t.true(plan.events.some((e) => e.event === 'warning' && /the source role .* (is a superuser|may write to orders)/.test(String(e.message))));
    const run = await dmctl(['run', '-f', file], env);
    t.is(run.code, 0, JSON.stringify(run.events.filter((e) => e.event === 'error')));
    t.is(await scalar(target, 'SELECT count(*) FROM orders_copy'), '2');
  });
}
