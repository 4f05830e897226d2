// The decisions behind "the target's account cannot write the source" (pipeline/source-reach.ts):
// MySQL's SHOW GRANTS lines read and matched against the source's schemas (wildcards, roles,
// PUBLIC, hostile names), PostgreSQL's role facts, one server or two, and the refusal's words.
import test from 'ava';
import type { DatabaseAdapter, WriteAccess } from '../../src/engine/db/adapter.ts';
import { sameDatabase, sameServer, type SideIdentity } from '../../src/engine/db/identity.ts';
import { grantedRoles, grantPatternMatches, parseGrantLine, writeGrants } from '../../src/engine/db/mysql/grants.ts';
import { mysqlAdapter } from '../../src/engine/db/mysql/adapter.ts';
import { postgresWriteRoutes, type PostgresReachFacts } from '../../src/engine/db/postgres/reach.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import { sourceReach, sourceReachRefusal, sourceSchemas } from '../../src/engine/pipeline/source-reach.ts';

test('SHOW GRANTS lines: privileges (columns dropped), level, database, the text up to the grantee', (t) => {
  const line = "GRANT SELECT (`a`, `b,c`), UPDATE (`note`) ON `app`.`orders` TO `u`@`%` IDENTIFIED BY PASSWORD '*ABC'";
  t.deepEqual(parseGrantLine(line), {
    kind: 'privileges', privileges: ['SELECT', 'UPDATE'], level: 'object', database: 'app',
    text: 'GRANT SELECT (`a`, `b,c`), UPDATE (`note`) ON `app`.`orders`', toPublic: false,
  });
  const global = parseGrantLine('GRANT ALL PRIVILEGES ON *.* TO `dmo`@`%` WITH GRANT OPTION');
  t.like(global, { kind: 'privileges', privileges: ['ALL PRIVILEGES'], level: 'global', text: 'GRANT ALL PRIVILEGES ON *.*' });
  t.like(parseGrantLine('GRANT CREATE TEMPORARY TABLES, DELETE HISTORY ON `app\\_%`.* TO `r2`'),
    { privileges: ['CREATE TEMPORARY TABLES', 'DELETE HISTORY'], level: 'database', database: 'app\\_%' });
  t.like(parseGrantLine('GRANT EXECUTE, ALTER ROUTINE ON PROCEDURE `app`.`p` TO `u`@`%`'), { level: 'object', database: 'app', privileges: ['EXECUTE', 'ALTER ROUTINE'] });
  t.like(parseGrantLine('GRANT EXECUTE ON PACKAGE BODY `app`.`pk` TO `u`@`%`'), { level: 'object', database: 'app' });
  t.like(parseGrantLine('GRANT DELETE ON `app`.* TO PUBLIC'), { toPublic: true });
  t.like(parseGrantLine('GRANT DELETE ON `app`.* TO `PUBLIC`@`%`'), { toPublic: false }, 'an account named PUBLIC is not PUBLIC');
  // MariaDB shows the privileges of a role granted to PUBLIC under the role's name.
  t.like(parseGrantLine('GRANT DELETE ON `app`.* TO `pubrole`'), { toPublic: false, toRole: 'pubrole' });
  t.deepEqual(writeGrants([{ lines: ['GRANT `pubrole` TO PUBLIC', 'GRANT DELETE ON `app`.* TO `pubrole`'] }], ['app']), ['GRANT DELETE ON `app`.* (through role pubrole)']);
});

test('SHOW GRANTS lines: role grants (MariaDB and MySQL spellings), and lines that grant nothing on a schema', (t) => {
  t.deepEqual(parseGrantLine('GRANT `r1` TO `tu`@`%`'), { kind: 'roles', roles: [{ name: 'r1' }] });
  t.deepEqual(parseGrantLine('GRANT `r1`@`%`,`r``2`@`localhost` TO `u`@`%` WITH ADMIN OPTION'), { kind: 'roles', roles: [{ name: 'r1', host: '%' }, { name: 'r`2', host: 'localhost' }] });
  t.deepEqual(grantedRoles(['GRANT `a` TO `u`@`%`', 'GRANT USAGE ON *.* TO `u`@`%`', 'GRANT `b` TO `u`@`%`']), [{ name: 'a' }, { name: 'b' }]);
  for (const line of ["GRANT PROXY ON ''@'%' TO 'u'@'%'", 'SET DEFAULT ROLE `r3` FOR `tu`@`%`', 'REVOKE INSERT ON `app`.* FROM `u`@`%`', 'Grants for u@%', '']) {
    t.deepEqual(parseGrantLine(line), { kind: 'other' }, line);
  }
});

test('SHOW GRANTS lines: hostile names cannot move ON or TO, nor hide a grant', (t) => {
  // Names holding the keywords, quotes, dots, commas and parentheses, quoted as the server quotes them.
  const quote = (name: string): string => `\`${name.replaceAll('`', '``')}\``;
  const line = `GRANT INSERT ON ${quote('x` ON `y` TO z')}.${quote('t), TO (')} TO ${quote('a TO b')}@${quote('%')}`;
  t.like(parseGrantLine(line), { kind: 'privileges', privileges: ['INSERT'], level: 'object', database: 'x` ON `y` TO z', text: line.slice(0, line.indexOf(' TO `a')) });
  t.deepEqual(writeGrants([{ lines: [line] }], ['x` ON `y` TO z']), [line.slice(0, line.indexOf(' TO `a'))]);
  t.like(parseGrantLine('GRANT UPDATE ON `a.b`.* TO `u`@`%`'), { level: 'database', database: 'a.b' });
  t.deepEqual(writeGrants([{ lines: ['GRANT UPDATE ON `a.b`.* TO `u`@`%`'] }], ['a.b']), ['GRANT UPDATE ON `a.b`.*']);
  t.deepEqual(writeGrants([{ lines: ['GRANT UPDATE ON `a.b`.* TO `u`@`%`'] }], ['a']), []);
});

test('database-level grant patterns: _ and % are wildcards, \\ quotes them, case does not matter', (t) => {
  t.true(grantPatternMatches('app\\_%', 'app_orders'));
  t.false(grantPatternMatches('app\\_%', 'app'));
  t.false(grantPatternMatches('app\\_%', 'appXorders'));
  t.true(grantPatternMatches('app_%', 'appXorders'), 'an unquoted _ is any one character');
  t.true(grantPatternMatches('%', 'anything'));
  t.true(grantPatternMatches('a_c', 'abc'));
  t.false(grantPatternMatches('a_c', 'ac'));
  t.true(grantPatternMatches('APP', 'app'));
  t.false(grantPatternMatches('a.c', 'abc'), 'regular expression characters are plain');
  t.true(grantPatternMatches('a+(b)[c]$', 'A+(B)[C]$'));
  t.false(grantPatternMatches('app', 'app2'));
  t.true(grantPatternMatches('a\\%b', 'a%b'));
  t.false(grantPatternMatches('a\\%b', 'axb'));
});

test('writeGrants: what writes the source schemas, and how the account has it', (t) => {
  const own = [
    'GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD \'*D8\'',
    'GRANT ALL PRIVILEGES ON `tgt`.* TO `u`@`%`',
    'GRANT SELECT, SHOW VIEW, LOCK TABLES, CREATE TEMPORARY TABLES ON `app`.* TO `u`@`%`',
    'GRANT SELECT ON *.* TO `u`@`%`',
    'GRANT SUPER ON `app`.* TO `u`@`%`',
  ];
  t.deepEqual(writeGrants([{ lines: own }], ['app']), [], 'reading, locking, temporary tables, and grants on other schemas do not write it');
  const sets = [
    { lines: [...own, 'GRANT INSERT ON `app`.`orders` TO `u`@`%`', 'GRANT SUPER ON *.* TO `u`@`%`'] },
    { lines: ['GRANT INSERT ON `app`.`orders` TO `u`@`%`', 'GRANT TRIGGER ON `ap_`.* TO `r1`'], via: 'r1' },
    { lines: ['GRANT DELETE ON `sales`.* TO PUBLIC'], via: 'r2' },
  ];
  t.deepEqual(writeGrants(sets, ['app', 'sales']), [
    'GRANT INSERT ON `app`.`orders`',
    'GRANT SUPER ON *.*',
    'GRANT TRIGGER ON `ap_`.* (through role r1)',
    'GRANT DELETE ON `sales`.* (to PUBLIC: every account has it)',
  ]);
  t.deepEqual(writeGrants([{ lines: ['GRANT INSERT ON `App`.`orders` TO `u`@`%`'] }], ['app']), ['GRANT INSERT ON `App`.`orders`'], 'case: the doubt counts as a grant');
  t.deepEqual(writeGrants([{ lines: ['GRANT INSERT ON `app_`.`orders` TO `u`@`%`'] }], ['appx']), [], 'a table grant names its database literally');
  for (const privilege of ['CREATE', 'DROP', 'ALTER', 'INDEX', 'CREATE VIEW', 'CREATE ROUTINE', 'ALTER ROUTINE', 'EVENT', 'EXECUTE', 'DELETE HISTORY', 'ALL']) {
    t.is(writeGrants([{ lines: [`GRANT ${privilege} ON \`app\`.* TO \`u\`@\`%\``] }], ['app']).length, 1, privilege);
  }
});

const facts = (over: Partial<PostgresReachFacts>): PostgresReachFacts => ({
  role: 'tgt', found: true, version: 150000, roles: [{ name: 'tgt', superuser: false, createRole: false }],
  connect: true, createSchemas: false, schemas: [], relations: [], relationCount: 0, ...over,
});

test('PostgreSQL: superusers, server roles and CREATEROLE write whatever CONNECT says; tables, schemas only with CONNECT', (t) => {
  t.deepEqual(postgresWriteRoutes(facts({})), [], 'a role with no rights');
  t.deepEqual(postgresWriteRoutes(facts({ found: false })), ['role tgt is not in the source\'s catalog, so what it may do there cannot be told']);
  t.regex(postgresWriteRoutes(facts({ connect: false, roles: [{ name: 'tgt', superuser: true, createRole: false }] })).join(), /^is a superuser, so it may write/);
  const through = postgresWriteRoutes(facts({ roles: [{ name: 'tgt', superuser: false, createRole: false }, { name: 'admins', superuser: true, createRole: false }] }));
  t.regex(through.join(), /is a superuser \(through role admins\)/);
  t.deepEqual(postgresWriteRoutes(facts({ connect: false, roles: [{ name: 'tgt', superuser: false, createRole: false }, { name: 'pg_execute_server_program', superuser: false, createRole: false }] })),
    ['may run programs on the database server (member of pg_execute_server_program)']);
  const createRole = facts({ roles: [{ name: 'tgt', superuser: false, createRole: true }] });
  t.regex(postgresWriteRoutes(createRole).join(), /has CREATEROLE, which before PostgreSQL 16/);
  t.deepEqual(postgresWriteRoutes({ ...createRole, version: 160002 }), [], 'PostgreSQL 16: CREATEROLE grants only what it administers');
  const tables = { relations: ['public.a', 'public.b'], relationCount: 7, schemas: ['public'], createSchemas: true };
  t.deepEqual(postgresWriteRoutes(facts({ ...tables, connect: false })), [], 'without CONNECT, privileges in the database are no way in');
  t.deepEqual(postgresWriteRoutes(facts(tables)), [
    'may CONNECT to the source database and CREATE schemas in it',
    'may CONNECT to the source database and CREATE objects in its schema public',
    'may CONNECT to the source database and write public.a, public.b and 5 more (INSERT, UPDATE, DELETE or TRUNCATE; sequences: nextval or setval)',
  ]);
});

const identity = (over: Partial<SideIdentity>): SideIdentity => ({
  engine: 'postgres', displayName: 'PostgreSQL', server: '7300', fallbackServer: 'started at 1', database: '16384', databaseName: 'app',
  inRecovery: false, started: '1', ...over,
});

test('one server or two: databases of one server (or a replica of it) are on one server; other engines, identifiers or restarts are not', (t) => {
  const source = identity({});
  const otherDatabase = identity({ database: '16385', databaseName: 'copy' });
  t.true(sameServer(source, otherDatabase));
  t.false(sameDatabase(source, otherDatabase));
  t.true(sameDatabase(source, identity({})));
  t.true(sameServer(source, identity({ database: '1', started: '2', inRecovery: true })), 'a replica of the cluster');
  t.false(sameServer(source, identity({ started: '2' })), 'two primaries restored from one backup');
  t.false(sameServer(source, identity({ server: '7301' })));
  t.false(sameServer(source, identity({ engine: 'mysql' })));
  t.true(sameServer(identity({ server: undefined }), identity({ database: '9' })), 'no system identifier: the start time decides');
  t.false(sameServer(identity({ server: undefined }), identity({ fallbackServer: 'started at 2' })));
});

test('sourceSchemas: the source database and every schema a table name qualifies, once each', (t) => {
  t.deepEqual(sourceSchemas('app', []), ['app']);
  t.deepEqual(sourceSchemas('app', [{ name: 'orders' }, { name: 'sales.orders' }, { name: '`x.y`.t' }, { name: 'app.items' }, { name: 'sales.items' }]), ['app', 'sales', 'x.y']);
});

test('the refusal names the account and each route (four at most), never more than the adapter said', (t) => {
  t.is(sourceReachRefusal({ account: 'u@%', routes: [] }, { displayName: 'MySQL', databaseName: 'app' }), undefined);
  const access: WriteAccess = { account: 'u@%', routes: ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'] };
  const message = sourceReachRefusal(access, { displayName: 'MySQL', databaseName: 'app' }) ?? '';
  t.regex(message, /^the target account u@% can write the source database "app" on the same MySQL server: r1; r2; r3; r4; and 2 more\. /);
  t.regex(message, /give the target an account with no rights on the source's database \(see "Source and target on one server" in the README\)$/);
});

test('sourceReach asks the adapter only when both sides are on one server', async (t) => {
  const asked: string[][] = [];
  const dialect: DatabaseAdapter = { ...mysqlAdapter, sourceWriteAccess: (_s, _t, schemas) => { asked.push([...schemas]); return Promise.resolve({ account: 'u@%', routes: ['GRANT ALL PRIVILEGES ON *.*'] }); } };
  const session: SqlSession = { engine: 'mysql', dialect, query: () => Promise.reject(new Error('no query expected')), close: () => Promise.resolve() };
  const mysql = (server: string, db: string): SideIdentity => identity({ engine: 'mysql', displayName: 'MySQL', server, database: db, databaseName: db, started: undefined });
  t.deepEqual(await sourceReach(session, session, { source: mysql('a', 'app'), target: mysql('b', 'app2') }, []), { account: '', routes: [] });
  t.deepEqual(asked, []);
  const access = await sourceReach(session, session, { source: mysql('a', 'app'), target: mysql('a', 'app2') }, [{ name: 'sales.orders' }]);
  t.deepEqual(access.routes, ['GRANT ALL PRIVILEGES ON *.*']);
  t.deepEqual(asked, [['app', 'sales']]);
});
