// The source is never written through the target (issue 13): when source and target are two
// databases of one server, a target account that could write the source's database is refused by
// the plan and every step, naming the account (never its password) and the grant, before anything
// is written; the source stays as it was. Each hostile account is then shown to really write the
// source when it logs in there itself, so every refusal stands for a real hole. A target account
// with no rights on the source passes, and its run copies. Both engines, with the tests' admin user
// as the source (accepted), and a dedicated account per target (test/support/databases.ts).
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { adminQuery, databaseOf, freshDatabase, ownedDatabase, testAccount, withDatabase, type TestAccount } from '../support/databases.ts';
import { dmctl, type CliRun } from '../support/dmctl.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';
import { execSql, scalar } from '../support/sql.ts';

/** The statement a schema migration would use to write the source's orders (MySQL reaches other schemas by name). */
const attackSql = (engine: Engine, sourceDb: string): string => (engine === 'mysql'
  ? `UPDATE \`${sourceDb}\`.orders SET note = 'written by the target'`
  : "SELECT 'a PostgreSQL session cannot name another database: dblink or COPY TO PROGRAM would'");

async function manifestFile(engine: Engine, sourceDb: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'dmctl-reach-')), 'migration.yaml');
  const attack = attackSql(engine, sourceDb);
  await writeFile(file, JSON.stringify({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'reach', namespace: 'test' },
    spec: {
      source: { engine, secretRef: { name: 'source' }, acceptWritableRole: true },
      target: { engine, secretRef: { name: 'target' } },
      schema: { createMissingTables: true, migrations: [{ version: '1', description: 'attack', up: attack, down: attack }] },
      tables: [{ name: 'orders' }],
      rollback: { schemaAction: 'DownMigrations' },
    },
  }));
  return file;
}

interface Setup {
  /** The source database's URL (the tests' admin user). */
  source: string;
  sourceDb: string;
  /** The target's database, its owner account, and its URL with that account. */
  target: string;
  account: TestAccount;
  file: string;
}

async function setup(t: ExecutionContext, engine: Engine): Promise<Setup> {
  const source = await freshDatabase(t, engine, 'reach_src');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(40))', "INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, 'c')"]);
  const { url: target, account } = await ownedDatabase(t, engine, 'reach_dst');
  const sourceDb = databaseOf(source);
  return { source, sourceDb, target, account, file: await manifestFile(engine, sourceDb) };
}

const errorOf = (run: CliRun): string => {
  const message = run.events.find((e) => e.event === 'error')?.message;
  return typeof message === 'string' ? message : '';
};

const targetTables = (engine: Engine, url: string): Promise<string> => scalar(url, engine === 'postgres'
  ? "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
  : 'SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()');

/** What a case arranged: another target URL (the admin user), who logs in for the proof, statements the proof needs first (SET ROLE). */
interface Arranged {
  target?: string;
  login?: string;
  /** The URL the proof logs in with (default: the account's, on the target's database for MySQL, the source's for PostgreSQL). */
  proofUrl?: string;
  before?: string[];
}

interface Case {
  name: string;
  /** Grants to the target's account (or to roles it holds), run as the admin. */
  arrange(s: Setup, t: ExecutionContext): Promise<Arranged | undefined>;
  /** What the refusal says after "the target account <name> can write the source database "<db>" …". */
  says: RegExp;
  /** Statements that write the source when the account runs them itself: proof the hole is real. */
  proof?: (s: Setup) => string[];
}

const escaped = (name: string): string => name.replace(/[_%\\]/g, '\\$&');
const granted = (statement: (s: Setup) => string) => async (s: Setup): Promise<undefined> => {
  await s.account.grantOn(s.source, [statement(s)]);
  return undefined;
};

/** The tests' admin user on the target's database. */
function adminTarget(s: Setup): Promise<Arranged> {
  const admin = withDatabase(s.source, databaseOf(s.target));
  return Promise.resolve({ target: admin, login: decodeURIComponent(new URL(admin).username), proofUrl: s.source });
}

const mysqlUpdate = (s: Setup): string[] => [attackSql('mysql', s.sourceDb)];

const MYSQL_CASES: Case[] = [
  { name: 'the admin user (ALL PRIVILEGES ON *.*)', arrange: adminTarget, says: /GRANT ALL PRIVILEGES ON \*\.\*/, proof: mysqlUpdate },
  {
    name: 'a wildcard database grant',
    arrange: granted((s) => `GRANT UPDATE ON \`${escaped(s.sourceDb.slice(0, 10))}%\`.* TO ${s.account.grantee}`),
    says: /GRANT UPDATE ON `reach\\_src\\_%`\.\*/,
    proof: mysqlUpdate,
  },
  {
    name: 'a grant on every database (%)',
    arrange: granted((s) => `GRANT DELETE ON \`%\`.* TO ${s.account.grantee}`),
    says: /GRANT DELETE ON `%`\.\*/,
    proof: (s) => [`DELETE FROM \`${s.sourceDb}\`.orders`],
  },
  {
    name: 'a grant on one table',
    arrange: granted((s) => `GRANT INSERT ON \`${s.sourceDb}\`.orders TO ${s.account.grantee}`),
    says: /GRANT INSERT ON `reach_src_\w+`\.`orders`/,
    proof: (s) => [`INSERT INTO \`${s.sourceDb}\`.orders VALUES (9, 'inserted by the target')`],
  },
  {
    name: 'a grant on one column',
    arrange: granted((s) => `GRANT UPDATE (note) ON \`${s.sourceDb}\`.orders TO ${s.account.grantee}`),
    says: /GRANT UPDATE \(`note`\) ON `reach_src_\w+`\.`orders`/,
    proof: mysqlUpdate,
  },
  {
    name: 'a role granted to a role the account holds but has not taken',
    arrange: async (s, t) => {
      const outer = await testAccount(t, 'mysql', { prefix: 'outer', login: false });
      const inner = await testAccount(t, 'mysql', { prefix: 'inner', login: false });
      await adminQuery('mysql', `GRANT DELETE ON \`${escaped(s.sourceDb)}\`.* TO ${inner.grantee}`);
      await adminQuery('mysql', `GRANT ${inner.grantee} TO ${outer.grantee}`);
      await adminQuery('mysql', `GRANT ${outer.grantee} TO ${s.account.grantee}`);
      return { before: [`SET ROLE ${outer.grantee}`] };
    },
    says: /GRANT DELETE ON `reach\\_src\\_[\w\\]+`\.\* \(through role outer_\w+\)/,
    proof: (s) => [`DELETE FROM \`${s.sourceDb}\`.orders`],
  },
  {
    name: 'a default role',
    arrange: async (s, t) => {
      const role = await testAccount(t, 'mysql', { prefix: 'dflt', login: false });
      await adminQuery('mysql', `GRANT INSERT ON \`${s.sourceDb}\`.orders TO ${role.grantee}`);
      await adminQuery('mysql', `GRANT ${role.grantee} TO ${s.account.grantee}`);
      await adminQuery('mysql', `SET DEFAULT ROLE ${role.grantee} FOR ${s.account.grantee}`);
      return undefined;
    },
    says: /GRANT INSERT ON `reach_src_\w+`\.`orders` \(through role dflt_\w+\)/,
    proof: (s) => [`INSERT INTO \`${s.sourceDb}\`.orders VALUES (8, 'inserted through a role')`],
  },
  {
    name: 'a grant to PUBLIC',
    arrange: async (s, t) => {
      const grant = `UPDATE ON \`${escaped(s.sourceDb)}\`.*`;
      // A dropped database keeps its grants on MySQL: revoked when the test ends.
      t.teardown(() => adminQuery('mysql', `REVOKE ${grant} FROM PUBLIC`).catch(() => undefined));
      await adminQuery('mysql', `GRANT ${grant} TO PUBLIC`);
      return undefined;
    },
    says: /GRANT UPDATE ON `reach\\_src\\_[\w\\]+`\.\* \(to PUBLIC/,
    proof: mysqlUpdate,
  },
  { name: 'SUPER', arrange: granted((s) => `GRANT SUPER ON *.* TO ${s.account.grantee}`), says: /GRANT SUPER ON \*\.\*/ },
];

const pgUpdate = (): string[] => ["UPDATE orders SET note = 'written by the target'"];

const POSTGRES_CASES: Case[] = [
  { name: 'a superuser (the admin user)', arrange: adminTarget, says: /is a superuser, so it may write any database/, proof: pgUpdate },
  {
    name: 'a member of a superuser role',
    arrange: async (s, t) => {
      const role = await testAccount(t, 'postgres', { prefix: 'su', login: false });
      await adminQuery('postgres', `ALTER ROLE ${role.name} SUPERUSER`);
      await adminQuery('postgres', `GRANT ${role.name} TO ${s.account.name}`);
      return { before: [`SET ROLE ${role.name}`] };
    },
    says: /is a superuser \(through role su_\w+\)/,
    proof: pgUpdate,
  },
  {
    name: 'a grant on one table',
    arrange: granted((s) => `GRANT INSERT ON orders TO ${s.account.name}`),
    says: /may CONNECT to the source database and write public\.orders/,
    proof: () => ["INSERT INTO orders VALUES (9, 'inserted by the target')"],
  },
  {
    name: 'a grant on one column',
    arrange: granted((s) => `GRANT UPDATE (note) ON orders TO ${s.account.name}`),
    says: /may CONNECT to the source database and write public\.orders/,
    proof: pgUpdate,
  },
  {
    name: 'a role it is a member of without INHERIT',
    arrange: async (s, t) => {
      const role = await testAccount(t, 'postgres', { prefix: 'grp', login: false });
      await role.grantOn(s.source, [`GRANT DELETE ON orders TO ${role.name}`]);
      await adminQuery('postgres', `GRANT ${role.name} TO ${s.account.name}`);
      await adminQuery('postgres', `ALTER ROLE ${s.account.name} NOINHERIT`);
      return { before: [`SET ROLE ${role.name}`] };
    },
    says: /may CONNECT to the source database and write public\.orders/,
    proof: () => ['DELETE FROM orders'],
  },
  {
    name: 'a grant to PUBLIC',
    arrange: granted(() => 'GRANT UPDATE ON orders TO PUBLIC'),
    says: /may CONNECT to the source database and write public\.orders/,
    proof: pgUpdate,
  },
  {
    name: 'CREATE on the source\'s schema',
    arrange: granted((s) => `GRANT CREATE ON SCHEMA public TO ${s.account.name}`),
    says: /may CONNECT to the source database and CREATE objects in its schema public/,
    proof: () => ['CREATE TABLE public.planted (x int)'],
  },
  {
    name: 'a member of pg_write_server_files',
    arrange: async (s) => {
      await adminQuery('postgres', `GRANT pg_write_server_files TO ${s.account.name}`);
      return undefined;
    },
    says: /may write files on the database server \(member of pg_write_server_files\)/,
  },
];

/** Runs plan and run with this target: both refused (exit 3), naming the account and the grant, never a password. */
async function assertRefused(t: ExecutionContext, engine: Engine, s: Setup, arranged: Arranged, says: RegExp, commands: string[][]): Promise<void> {
  const target = arranged.target ?? s.target;
  const login = arranged.login ?? s.account.name;
  for (const command of commands) {
    const run = await dmctl([...command, '-f', s.file], { DMO_SOURCE_URL: s.source, DMO_TARGET_URL: target });
    const label = `dmctl ${command.join(' ')}`;
    t.is(run.code, 3, `${label}: ${errorOf(run)}`);
    const message = errorOf(run);
    t.regex(message, new RegExp(`the target account ${login}\\S* can write the source database "${s.sourceDb}" on the same \\w+ server: `), label);
    t.regex(message, says, label);
    t.regex(message, /give the target an account with no rights on the source's database/, label);
    t.false(JSON.stringify(run.events).includes(new URL(target).password), `${label}: no password in the output`);
  }
  t.is(await targetTables(engine, target), '0', 'nothing was written on the target either');
}

for (const [engine, cases] of [['mysql', MYSQL_CASES], ['postgres', POSTGRES_CASES]] as const) {
  for (const c of cases) {
    test(`${engine}: a target account that can write the source through ${c.name} is refused, and the source is unchanged`, async (t) => {
      const s = await setup(t, engine);
      const arranged = (await c.arrange(s, t)) ?? {};
      const before = await sourceFingerprint(s.source);
      await assertRefused(t, engine, s, arranged, c.says, [['plan'], ['run']]);
      t.deepEqual(fingerprintChanges(before, await sourceFingerprint(s.source)), [], 'the source is unchanged');
      if (!c.proof) return;
      // The hole is real: the same account, on its own, writes the source.
      const proofUrl = arranged.proofUrl ?? (engine === 'mysql' ? s.target : s.account.urlFor(s.source));
      await execSql(proofUrl, [...(arranged.before ?? []), ...c.proof(s)]);
      t.not(fingerprintChanges(before, await sourceFingerprint(s.source)).length, 0, 'the account could write the source');
    });
  }

  test(`${engine}: plan, run and every step refuse a target account that can write the source`, async (t) => {
    const s = await setup(t, engine);
    await s.account.grantOn(s.source, [engine === 'mysql' ? `GRANT INSERT ON \`${s.sourceDb}\`.orders TO ${s.account.grantee}` : `GRANT INSERT ON orders TO ${s.account.name}`]);
    const before = await sourceFingerprint(s.source);
    const commands = [['plan'], ['run'], ['step', 'schema'], ['step', 'copy'], ['step', 'validate'], ['step', 'rollback']];
    await assertRefused(t, engine, s, {}, engine === 'mysql' ? /GRANT INSERT ON `reach_src_\w+`\.`orders`/ : /write public\.orders/, commands);
    t.deepEqual(fingerprintChanges(before, await sourceFingerprint(s.source)), [], 'the source is unchanged');
  });
}

/** The plan and a run pass with this target; the run copies the source's rows and leaves the source as it was. */
async function assertAccepted(t: ExecutionContext, s: Setup, file: string): Promise<void> {
  const before = await sourceFingerprint(s.source);
  const env = { DMO_SOURCE_URL: s.source, DMO_TARGET_URL: s.target };
  const plan = await dmctl(['plan', '-f', file], env);
  t.is(plan.code, 0, errorOf(plan));
  const run = await dmctl(['run', '-f', file], env);
  t.is(run.code, 0, errorOf(run));
  t.is(await scalar(s.target, 'SELECT count(*) FROM orders'), '3', 'the run copied');
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(s.source)), [], 'the source is unchanged');
}

/** A manifest without the attacking migration (an accepted run applies its migrations). */
async function plainManifest(engine: Engine): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'dmctl-reach-')), 'migration.yaml');
  await writeFile(file, JSON.stringify({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'reach', namespace: 'test' },
    spec: {
      source: { engine, secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine, secretRef: { name: 'target' } },
      schema: { createMissingTables: true }, tables: [{ name: 'orders' }],
    },
  }));
  return file;
}

test('mysql: a target account with no rights on the source passes, grants on look-alike databases included', async (t) => {
  const s = await setup(t, 'mysql');
  // `reach_src_…\_%` covers longer names only, and another database is another database.
  const other = await freshDatabase(t, 'mysql', 'reach_other');
  await s.account.grantOn(s.source, [
    `GRANT ALL ON \`${escaped(s.sourceDb)}\\_%\`.* TO ${s.account.grantee}`,
    `GRANT ALL ON \`${escaped(databaseOf(other))}\`.* TO ${s.account.grantee}`,
    `GRANT SELECT ON \`${s.sourceDb}\`.orders TO ${s.account.grantee}`,
  ]);
  await assertAccepted(t, s, await plainManifest('mysql'));
});

test('mysql: the check gives the target session back its own role: rights that come only from its default role still work', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'reach_src');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(40))', "INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, 'c')"]);
  const targetDb = await freshDatabase(t, 'mysql', 'reach_dst');
  const account = await testAccount(t, 'mysql', { prefix: 'byrole' });
  const role = await testAccount(t, 'mysql', { prefix: 'writer', login: false });
  await adminQuery('mysql', `GRANT ALL ON \`${escaped(databaseOf(targetDb))}\`.* TO ${role.grantee}`);
  await adminQuery('mysql', `GRANT ${role.grantee} TO ${account.grantee}`);
  await adminQuery('mysql', `SET DEFAULT ROLE ${role.grantee} FOR ${account.grantee}`);
  const s: Setup = { source, sourceDb: databaseOf(source), target: account.urlFor(targetDb), account, file: '' };
  await assertAccepted(t, s, await plainManifest('mysql'));
});

test('postgres: a target role with no rights on the source passes', async (t) => {
  const s = await setup(t, 'postgres');
  await s.account.grantOn(s.source, [`GRANT SELECT ON orders TO ${s.account.name}`]);
  await assertAccepted(t, s, await plainManifest('postgres'));
});

test('postgres: write privileges without CONNECT on the source database are no way in: accepted', async (t) => {
  const s = await setup(t, 'postgres');
  await s.account.grantOn(s.source, [`REVOKE CONNECT ON DATABASE "${s.sourceDb}" FROM PUBLIC`, `GRANT INSERT ON orders TO ${s.account.name}`]);
  await assertAccepted(t, s, await plainManifest('postgres'));
  // Indeed it cannot log in there.
  await t.throwsAsync(execSql(s.account.urlFor(s.source), ['SELECT 1']), { message: /permission denied for database|not have CONNECT privilege/ });
});

test('postgres: CREATEROLE before PostgreSQL 16 may grant itself any role but a superuser: refused', async (t) => {
  const s = await setup(t, 'postgres');
  await adminQuery('postgres', `ALTER ROLE ${s.account.name} CREATEROLE`);
  const version = Number(await scalar(s.source, "SELECT current_setting('server_version_num')"));
  if (version >= 160000) {
    await assertAccepted(t, s, await plainManifest('postgres'));
    return;
  }
  const before = await sourceFingerprint(s.source);
  await assertRefused(t, 'postgres', s, {}, /has CREATEROLE, which before PostgreSQL 16 may grant itself any role but a superuser/, [['plan'], ['run']]);
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(s.source)), [], 'the source is unchanged');
  await execSql(s.account.urlFor(s.source), [`GRANT pg_write_all_data TO ${s.account.name}`, 'SET ROLE pg_write_all_data', ...pgUpdate()]);
  t.not(fingerprintChanges(before, await sourceFingerprint(s.source)).length, 0, 'the account could write the source');
});
