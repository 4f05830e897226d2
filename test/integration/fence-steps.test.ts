// The SourceReadOnly write fence's steps as Jobs run them (dmctl child processes, the result in the
// termination message), each engine as the source on a real server: `step fence` makes the source
// read-only for the application (PostgreSQL: a new session starts read-only, a session that began
// before is ended, mid-transaction; the walsender is left; MariaDB: read_only, a transaction open
// at the fence cannot commit), records the setting before on the target, and a second fence keeps
// that record; `step unfence` puts the setting back exactly (unset → RESET, off, on) and forgets
// it; a second unfence finds nothing. Missing privileges refuse (exit 3, each named, in the plan
// too), nothing changed, no password said. MariaDB's read_only is the whole server's: this file
// runs on a MariaDB server of its own (the files beside it must not find the shared one read-only),
// and its tests are serial, as the PostgreSQL source's target is on that server too.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { readFenceRecord } from '../../src/engine/pipeline/fence-steps.ts';
import { dmctl, errorOf, type CliRun } from '../support/dmctl.ts';
import { adminQuery, databaseOf, freshDatabase, freshTargetDatabase, testAccount } from '../support/databases.ts';
import { execSql, scalar } from '../support/sql.ts';

// Unset, test/support/databases.ts starts a server for this worker alone (and stops it at exit).
delete process.env.MYSQL_URL;

const OTHER: Record<Engine, Engine> = { postgres: 'mysql', mysql: 'postgres' };

function manifest(engine: Engine, uid: string, fence = 'SourceReadOnly'): string {
  return `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: fence-steps, namespace: test, uid: ${uid}}
spec:
  source: {engine: ${engine}, secretRef: {name: source}, acceptWritableRole: true}
  target: {engine: ${OTHER[engine]}, secretRef: {name: target}}
  tables: [{name: items}]
  schema: {createMissingTables: true}
  strategy: {type: Trickle, incremental: {mode: ChangeCapture}}
  cutover:
    service: app
    fromSelector: {version: blue}
    toSelector: {version: green}
    fence: {type: ${fence}${fence === 'ScaleDown' ? ', deployment: blue' : ''}}
`;
}

interface Migration {
  engine: Engine;
  uid: string;
  sourceUrl: string;
  targetUrl: string;
  file: string;
}

async function migration(t: ExecutionContext, engine: Engine, fence?: string): Promise<Migration> {
  const sourceUrl = await freshDatabase(t, engine, 'fence_src');
  const targetUrl = await freshTargetDatabase(t, OTHER[engine], 'fence_tgt');
  await execSql(sourceUrl, ['CREATE TABLE items (id integer PRIMARY KEY, val varchar(20))', "INSERT INTO items VALUES (1, 'one')"]);
  const dir = await mkdtemp(join(tmpdir(), 'fence-steps-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const uid = randomUUID();
  const file = join(dir, 'dm.yaml');
  await writeFile(file, manifest(engine, uid, fence));
  return { engine, uid, sourceUrl, targetUrl, file };
}

interface StepRun extends CliRun {
  /** The termination message, parsed when it is a result. */
  result: Record<string, unknown> | undefined;
  text: string;
}

async function step(m: Migration, name: string, sourceUrl = m.sourceUrl): Promise<StepRun> {
  const dir = await mkdtemp(join(tmpdir(), 'fence-term-'));
  try {
    const termination = join(dir, 'termination');
    const run = await dmctl(['step', name, '-f', m.file], {
      DMO_SOURCE_URL: sourceUrl, DMO_TARGET_URL: m.targetUrl, DMO_TERMINATION_LOG: termination, DMO_FENCE_WAIT_SECONDS: '15',
    });
    const text = await readFile(termination, 'utf8').catch(() => '');
    let result: Record<string, unknown> | undefined;
    try {
      result = JSON.parse(text) as Record<string, unknown>;
    } catch {
      result = undefined;
    }
    return { ...run, result, text };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fenceRecordOf(m: Migration): Promise<unknown> {
  const target = await openSession(m.targetUrl, { readOnly: true });
  try {
    return await readFenceRecord(target, m.uid).catch(() => undefined);
  } finally {
    await target.close();
  }
}

/** The database's own default_transaction_read_only in pg_db_role_setting ('' when unset). */
async function databaseSetting(url: string): Promise<string> {
  return scalar(url, `SELECT COALESCE((SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setrole = 0
    AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND c LIKE 'default_transaction_read_only=%'), '')`);
}

/** A plain client (not the engine's sessions, which start read-only or read-write on purpose). */
async function pgClient(url: string, options: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, ...options });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The driver error's code (SQLSTATE, or MySQL's errno), 'none' when the work succeeded. */
const errorCode = async (work: Promise<unknown>, field: 'code' | 'errno'): Promise<string> => work.then(() => 'none', (error: unknown) => {
  const value = (error as Record<string, unknown>)[field];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : (error as Error).message;
});
const pgErrorCode = (work: Promise<unknown>): Promise<string> => errorCode(work, 'code');

/** SHOW default_transaction_read_only on a plain client. */
async function shownReadOnly(client: pg.Client): Promise<string> {
  const result = await client.query<{ default_transaction_read_only: string }>('SHOW default_transaction_read_only');
  return result.rows[0]?.default_transaction_read_only ?? '';
}

test.serial('postgres source: fence ends the sessions before it, new ones start read-only, the walsender stays; unfence resets; twice is harmless', async (t) => {
  const m = await migration(t, 'postgres');
  const before = await pgClient(m.sourceUrl, { application_name: 'the-app' });
  await before.query('BEGIN');
  await before.query("INSERT INTO items VALUES (2, 'in flight')");
  const walsender = await pgClient(m.sourceUrl, { replication: 'database' } as pg.ClientConfig);
  t.teardown(() => walsender.end().catch(() => undefined));
  await walsender.query('IDENTIFY_SYSTEM');
  // The sync pod's own (read-only) session of the migration's role: ending it would fail the sync Job behind the fence.
  const syncSession = await pgClient(m.sourceUrl, { application_name: 'datamigration sync' });
  t.teardown(() => syncSession.end().catch(() => undefined));

  const fenced = await step(m, 'fence');
  t.is(fenced.code, 0, errorOf(fenced));
  t.like(fenced.result, { fenced: true, previous: 'unset' });
  t.true(Number(fenced.result?.sessionsEnded) >= 1, fenced.text);
  t.like(await fenceRecordOf(m), { engine: 'postgres', previous: 'unset' });
  // The session that began before is gone, its write rolled back; the walsender streams on.
  t.not(await pgErrorCode(before.query('COMMIT')), 'none');
  t.truthy((await walsender.query('IDENTIFY_SYSTEM')).rows[0]);
  t.is(await pgErrorCode(syncSession.query('SELECT 1')), 'none');
  t.is(await databaseSetting(m.sourceUrl), 'default_transaction_read_only=on');
  const after = await pgClient(m.sourceUrl);
  t.teardown(() => after.end().catch(() => undefined));
  t.is(await shownReadOnly(after), 'on');
  t.is(await pgErrorCode(after.query("INSERT INTO items VALUES (3, 'fenced')")), '25006');
  t.is(await scalar(m.sourceUrl, 'SELECT count(*) FROM items'), '1');

  // A retried fence Job: the source is read-only already, and the setting before stays the first one's.
  const again = await step(m, 'fence');
  t.is(again.code, 0, errorOf(again));
  t.like(again.result, { fenced: true, previous: 'unset' });
  // Opened while the fence stands: read-only by default, so the unfence ends it (its pool reconnects able to write).
  const during = await pgClient(m.sourceUrl);
  t.is(await shownReadOnly(during), 'on');

  const unfenced = await step(m, 'unfence');
  t.is(unfenced.code, 0, errorOf(unfenced));
  t.deepEqual(unfenced.result, { unfenced: true, restored: 'unset' });
  t.is(await databaseSetting(m.sourceUrl), '');
  t.is(await fenceRecordOf(m), undefined);
  t.not(await pgErrorCode(during.query('SELECT 1')), 'none');
  t.truthy((await walsender.query('IDENTIFY_SYSTEM')).rows[0]);
  const writer = await pgClient(m.sourceUrl);
  await writer.query("INSERT INTO items VALUES (4, 'open again')");
  t.is(await shownReadOnly(writer), 'off');
  await writer.end();
  const nothing = await step(m, 'unfence');
  t.is(nothing.code, 0, errorOf(nothing));
  t.deepEqual(nothing.result, { unfenced: true, restored: 'nothing recorded' });
});

test.serial('postgres source: a database set off stays off, one already read-only stays read-only', async (t) => {
  for (const [initial, restored] of [['off', 'off'], ['true', 'on']] as const) {
    const m = await migration(t, 'postgres');
    const database = `"${databaseOf(m.sourceUrl)}"`;
    await execSql(m.sourceUrl, [`ALTER DATABASE ${database} SET default_transaction_read_only = ${initial}`]);
    const fenced = await step(m, 'fence');
    t.is(fenced.code, 0, errorOf(fenced));
    t.like(fenced.result, { fenced: true, previous: restored });
    const unfenced = await step(m, 'unfence');
    t.is(unfenced.code, 0, errorOf(unfenced));
    t.like(unfenced.result, { unfenced: true, restored });
    t.is(await databaseSetting(m.sourceUrl), `default_transaction_read_only=${restored}`);
  }
});

/** Waits until no superuser session of this test is left on the source database (pg ends a closed client's backend a moment later). */
async function superuserSessionsGone(url: string): Promise<void> {
  const sql = "SELECT count(*) FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND r.rolsuper AND a.backend_type = 'client backend'";
  for (let i = 0; i < 50 && await scalar(url, sql) !== '0'; i++) await new Promise((resolve) => { setTimeout(resolve, 100); });
}

test.serial('postgres source: the database owner with pg_signal_backend and pg_read_all_stats fences; a superuser session refuses it first', async (t) => {
  const m = await migration(t, 'postgres');
  const database = `"${databaseOf(m.sourceUrl)}"`;
  const fencer = await testAccount(t, 'postgres', { prefix: 'fencer' });
  await fencer.grantOn(m.sourceUrl, [`GRANT SELECT ON items TO ${fencer.name}`]);
  const app = await testAccount(t, 'postgres', { prefix: 'app' });
  await app.grantOn(m.sourceUrl, [`GRANT SELECT, INSERT ON items TO ${app.name}`]);
  await adminQuery('postgres', `ALTER DATABASE ${database} OWNER TO ${fencer.name}`);
  await adminQuery('postgres', `GRANT pg_signal_backend, pg_read_all_stats TO ${fencer.name}`);
  // Teardowns run last first: the database is the admin's again before its owner role is dropped.
  t.teardown(() => adminQuery('postgres', `ALTER DATABASE ${database} OWNER TO CURRENT_USER`));
  const fencerUrl = fencer.urlFor(m.sourceUrl);
  const writing = await pgClient(app.urlFor(m.sourceUrl), { application_name: 'the-app' });
  t.teardown(() => writing.end().catch(() => undefined));
  await writing.query('BEGIN');
  await writing.query("INSERT INTO items VALUES (2, 'in flight')");

  const superuser = await pgClient(m.sourceUrl);
  const refused = await step(m, 'fence', fencerUrl);
  t.is(refused.code, 3);
  t.regex(errorOf(refused), /superuser role/);
  t.false(errorOf(refused).includes(fencer.password));
  t.is(await databaseSetting(m.sourceUrl), '');
  t.is(await fenceRecordOf(m), undefined);
  await superuser.end();
  await superuserSessionsGone(m.sourceUrl);

  const fenced = await step(m, 'fence', fencerUrl);
  t.is(fenced.code, 0, errorOf(fenced));
  t.like(fenced.result, { fenced: true, previous: 'unset', sessionsEnded: 1 });
  t.not(await pgErrorCode(writing.query('COMMIT')), 'none');
  const unfenced = await step(m, 'unfence', fencerUrl);
  t.is(unfenced.code, 0, errorOf(unfenced));
  t.like(unfenced.result, { unfenced: true, restored: 'unset' });
  t.is(await databaseSetting(m.sourceUrl), '');
  t.is(await scalar(m.sourceUrl, 'SELECT count(*) FROM items'), '1');
});

test.serial('postgres source: a role that may not fence is refused, each privilege named, nothing changed', async (t) => {
  const m = await migration(t, 'postgres');
  const account = await testAccount(t, 'postgres', { prefix: 'fencer' });
  await account.grantOn(m.sourceUrl, [`GRANT CONNECT ON DATABASE "${databaseOf(m.sourceUrl)}" TO ${account.name}`, `GRANT SELECT ON items TO ${account.name}`]);
  const url = account.urlFor(m.sourceUrl);
  const refused = await step(m, 'fence', url);
  t.is(refused.code, 3);
  const message = errorOf(refused);
  t.regex(message, /neither owns database/);
  t.regex(message, /pg_signal_backend/);
  t.regex(message, /pg_read_all_stats/);
  t.false(message.includes(account.password));
  t.is(await databaseSetting(m.sourceUrl), '');
  t.is(await fenceRecordOf(m), undefined);
  const planned = await dmctl(['plan', '-f', m.file], { DMO_SOURCE_URL: url, DMO_TARGET_URL: m.targetUrl });
  t.is(planned.code, 3);
  const plan = JSON.stringify(planned.events.find((e) => e.event === 'plan'));
  for (const privilege of ['neither owns database', 'pg_signal_backend', 'pg_read_all_stats']) t.true(plan.includes(`SourceReadOnly: the source role ${account.name}`) && plan.includes(privilege), privilege);
  t.false(JSON.stringify(planned.events).includes(account.password));
  // With what it needs but the database's ownership, only that is said.
  await adminQuery('postgres', `GRANT pg_signal_backend, pg_read_all_stats TO ${account.name}`);
  t.teardown(() => adminQuery('postgres', `REVOKE pg_signal_backend, pg_read_all_stats FROM ${account.name}`));
  const owner = await step(m, 'fence', url);
  t.is(owner.code, 3);
  t.regex(errorOf(owner), /neither owns database/);
  t.notRegex(errorOf(owner), /pg_signal_backend|pg_read_all_stats/);
  // Another fence type: refused, nothing done.
  const other = await migration(t, 'postgres', 'External');
  const wrongType = await step(other, 'fence');
  t.is(wrongType.code, 3);
  t.regex(errorOf(wrongType), /SourceReadOnly/);
});

/** A MariaDB account that may write the source database but is not SUPER: what read_only binds. */
async function mysqlApp(t: ExecutionContext, m: Migration): Promise<string> {
  const account = await testAccount(t, 'mysql', { prefix: 'app' });
  await adminQuery('mysql', `GRANT ALL PRIVILEGES ON \`${databaseOf(m.sourceUrl)}\`.* TO ${account.grantee}`);
  return account.urlFor(m.sourceUrl);
}

const mysqlError = (work: Promise<unknown>): Promise<string> => errorCode(work, 'errno');

test.serial('mysql source: fence sets read_only after the writes in flight, unfence puts it back; twice is harmless', async (t) => {
  const m = await migration(t, 'mysql');
  t.teardown(() => adminQuery('mysql', 'SET GLOBAL read_only = OFF'));
  const appUrl = await mysqlApp(t, m);
  const before = await mysql.createConnection({ uri: appUrl });
  t.teardown(() => before.end().catch(() => undefined));
  await before.query('BEGIN');
  await before.query("INSERT INTO items VALUES (2, 'in flight')");

  const fenced = await step(m, 'fence');
  t.is(fenced.code, 0, errorOf(fenced));
  t.like(fenced.result, { fenced: true, previous: 'off', sessionsEnded: 0 });
  t.true(JSON.stringify(fenced.result?.notes).includes('SUPER'), fenced.text);
  t.is(await scalar(m.sourceUrl, 'SELECT @@GLOBAL.read_only'), '1');
  // Open before the fence, its write cannot commit after it; a new write is refused.
  t.is(await mysqlError(before.query('COMMIT')), '1290');
  const after = await mysql.createConnection({ uri: appUrl });
  t.teardown(() => after.end().catch(() => undefined));
  t.is(await mysqlError(after.query("INSERT INTO items VALUES (3, 'fenced')")), '1290');

  const again = await step(m, 'fence');
  t.is(again.code, 0, errorOf(again));
  t.like(again.result, { fenced: true, previous: 'off' });

  const unfenced = await step(m, 'unfence');
  t.is(unfenced.code, 0, errorOf(unfenced));
  t.deepEqual(unfenced.result, { unfenced: true, restored: 'off' });
  t.is(await scalar(m.sourceUrl, 'SELECT @@GLOBAL.read_only'), '0');
  t.is(await fenceRecordOf(m), undefined);
  await after.query("INSERT INTO items VALUES (4, 'open again')");
  t.is(await scalar(m.sourceUrl, 'SELECT count(*) FROM items'), '2');
  const nothing = await step(m, 'unfence');
  t.deepEqual(nothing.result, { unfenced: true, restored: 'nothing recorded' });

  // A server read-only before the fence stays read-only after it is lifted.
  await adminQuery('mysql', 'SET GLOBAL read_only = ON');
  const onAlready = await step(m, 'fence');
  t.like(onAlready.result, { fenced: true, previous: 'on' });
  const restored = await step(m, 'unfence');
  t.like(restored.result, { unfenced: true, restored: 'on' });
  t.is(await scalar(m.sourceUrl, 'SELECT @@GLOBAL.read_only'), '1');
});

test.serial('mysql source: an account that may not fence is refused, each privilege named, nothing changed', async (t) => {
  const m = await migration(t, 'mysql');
  const account = await testAccount(t, 'mysql', { prefix: 'fencer' });
  await adminQuery('mysql', `GRANT SELECT ON \`${databaseOf(m.sourceUrl)}\`.* TO ${account.grantee}`);
  const url = account.urlFor(m.sourceUrl);
  const refused = await step(m, 'fence', url);
  t.is(refused.code, 3);
  const message = errorOf(refused);
  t.regex(message, /READ_ONLY ADMIN or SUPER/);
  t.regex(message, /RELOAD/);
  t.false(message.includes(account.password));
  t.is(await scalar(m.sourceUrl, 'SELECT @@GLOBAL.read_only'), '0');
  t.is(await fenceRecordOf(m), undefined);
  const planned = await dmctl(['plan', '-f', m.file], { DMO_SOURCE_URL: url, DMO_TARGET_URL: m.targetUrl });
  t.is(planned.code, 3);
  const plan = JSON.stringify(planned.events.find((e) => e.event === 'plan'));
  t.true(plan.includes('SourceReadOnly') && plan.includes('RELOAD') && plan.includes('READ_ONLY ADMIN'), plan.slice(0, 2000));
  t.false(JSON.stringify(planned.events).includes(account.password));
});
