// The source role (issue 13): a role that could write the source (a superuser, or one with write
// privileges on a copied table) is refused by the plan (exit 3, naming the role and what it may
// do) unless spec.source.acceptWritableRole accepts it; then the plan warns. A role that can only
// read needs no opt-in. Both engines.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { adminQuery, freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { dmctl, type CliRun } from '../support/dmctl.ts';
import { execSql } from '../support/sql.ts';

async function manifestFile(engine: Engine, accept: boolean | undefined): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dmctl-role-'));
  const path = join(dir, 'migration.yaml');
  const opt = accept === undefined ? '' : `, acceptWritableRole: ${String(accept)}`;
  await writeFile(path, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: role, namespace: test}
spec:
  source: {engine: ${engine}, secretRef: {name: source}${opt}}
  target: {engine: ${engine}, secretRef: {name: target}}
  schema: {createMissingTables: true}
  tables: [{name: orders}]
`);
  return path;
}

/** A login on the source that may read orders, and with `write` also insert into it. */
async function login(t: ExecutionContext, engine: Engine, url: string, write: boolean): Promise<{ user: string; url: string }> {
  const user = `dmo_${write ? 'writer' : 'reader'}_${randomBytes(4).toString('hex')}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const database = new URL(url).pathname.slice(1);
  const privileges = write ? 'SELECT, INSERT' : 'SELECT';
  if (engine === 'postgres') {
    await adminQuery(engine, `CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
    t.teardown(async () => {
      await execSql(url, [`REVOKE ALL ON orders FROM ${user}`]).catch(() => undefined);
      await adminQuery(engine, `DROP ROLE IF EXISTS ${user}`).catch(() => undefined);
    });
    await execSql(url, [`GRANT USAGE ON SCHEMA public TO ${user}`, `GRANT ${privileges} ON orders TO ${user}`]);
  } else {
    await adminQuery(engine, `CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
    t.teardown(() => adminQuery(engine, `DROP USER IF EXISTS '${user}'@'%'`));
    await adminQuery(engine, `GRANT ${privileges} ON \`${database}\`.orders TO '${user}'@'%'`);
  }
  const other = new URL(url);
  other.username = user;
  other.password = password;
  return { user, url: other.toString() };
}

const errorOf = (run: CliRun): string => {
  const message = run.events.find((e) => e.event === 'error')?.message;
  return typeof message === 'string' ? message : '';
};
const roleWarnings = (run: CliRun): string[] => run.events.filter((e) => e.event === 'warning' && /the source role/.test(String(e.message))).map((e) => String(e.message));

for (const engine of ['postgres', 'mysql'] as const) {
  test(`${engine}: a source role that could write is refused by the plan unless spec.source.acceptWritableRole accepts it`, async (t) => {
    const source = await freshDatabase(t, engine, 'rsrc');
    const target = await freshTargetDatabase(t, engine, 'rdst');
    await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(20))', "INSERT INTO orders VALUES (1, 'a')"]);
    const admin = decodeURIComponent(new URL(source).username);

    // The tests' admin user: a superuser.
    for (const accept of [undefined, false]) {
      const refused = await dmctl(['plan', '-f', await manifestFile(engine, accept)], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
      t.is(refused.code, 3, `acceptWritableRole ${String(accept)}`);
      t.regex(errorOf(refused), new RegExp(`the source role ${admin}\\S* is a superuser: refused.*acceptWritableRole`));
    }
    const accepted = await dmctl(['plan', '-f', await manifestFile(engine, true)], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
    t.is(accepted.code, 0, errorOf(accepted));
    t.is(roleWarnings(accepted).length, 1);
    t.regex(roleWarnings(accepted)[0] ?? '', new RegExp(`the source role ${admin}\\S* is a superuser: use a read-only role`));

    // A role that may insert into a copied table.
    const writer = await login(t, engine, source, true);
    const strict = await dmctl(['plan', '-f', await manifestFile(engine, undefined)], { DMO_SOURCE_URL: writer.url, DMO_TARGET_URL: target });
    t.is(strict.code, 3);
    t.regex(errorOf(strict), new RegExp(`the source role ${writer.user}\\S* may write to \\S*orders: refused`));
    t.false(errorOf(strict).includes(new URL(writer.url).password), 'no password in the refusal');

    // A role that can only read: accepted without the opt-in, and no warning.
    const reader = await login(t, engine, source, false);
    const plain = await dmctl(['plan', '-f', await manifestFile(engine, undefined)], { DMO_SOURCE_URL: reader.url, DMO_TARGET_URL: target });
    t.is(plain.code, 0, errorOf(plain));
    t.deepEqual(roleWarnings(plain), []);
  });
}
