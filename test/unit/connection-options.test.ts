// The one builder of driver options from a URL and spec.*.tls (src/engine/db/connection-options.ts),
// the identity comparison (db/identity.ts), the source-role warning and the read-only transaction
// wrapper (db/session.ts, over an in-memory session): no server.
import test from 'ava';
import { connectionOptions, ConnectionSettingsError, DEFAULT_TIMEOUTS, sessionTimeouts, type ConnectionSettings } from '../../src/engine/db/connection-options.ts';
import { sameDatabase, type SideIdentity } from '../../src/engine/db/identity.ts';
import { sourceRoleWarning } from '../../src/engine/pipeline/source-role.ts';
import { adapterFor } from '../../src/engine/db/adapter.ts';
import { readOnlyTransactions, type SqlSession } from '../../src/engine/db/session.ts';

const PG = 'postgres://app:s3cret-pw@db.example:5432/shop';
const MY = 'mysql://app:s3cret-pw@db.example:3306/shop';

function settings(extra: Partial<ConnectionSettings> = {}): ConnectionSettings {
  return { side: 'source', timeouts: DEFAULT_TIMEOUTS, applicationName: 'test', ...extra };
}

function refused(url: string, extra: Partial<ConnectionSettings>, pattern: RegExp): void {
  let error: unknown;
  try {
    connectionOptions(url, settings(extra));
  } catch (caught) {
    error = caught;
  }
  if (!(error instanceof ConnectionSettingsError)) throw new Error(`not refused: ${url}`);
  if (!pattern.test(error.message)) throw new Error(`unexpected message: ${error.message}`);
  if (error.message.includes('s3cret-pw') || error.message.includes('db.example')) throw new Error(`the message names the URL: ${error.message}`);
}

test('verify-full in the spec with sslmode=disable in the URL is refused, naming the side and neither URL nor password', (t) => {
  t.notThrows(() => { refused(`${PG}?sslmode=disable`, { tls: { mode: 'verify-full' } }, /source connection URL says sslmode=disable, but spec\.source\.tls\.mode is verify-full/); });
});

test('every weaker or different sslmode, ssl=… and other ssl* parameters conflict with a spec tls', (t) => {
  for (const [query, mode] of [['sslmode=no-verify', 'verify-full'], ['sslmode=require', 'verify-full'], ['sslmode=prefer', 'require'],
    ['sslmode=verify-ca', 'verify-full'], ['ssl=true', 'verify-ca'], ['ssl=0', 'require'], ['sslrootcert=/etc/ca.pem', 'verify-full'],
    ['sslmode=verify-full', 'disable']] as const) {
    t.notThrows(() => { refused(`${PG}?${query}`, { tls: { mode } }, /TLS is decided by the spec/); }, query);
  }
});

test('an sslmode that says what the spec says is accepted, and the spec\'s TLS (with its CA) is what pg gets', (t) => {
  const built = connectionOptions(`${PG}?sslmode=verify-full`, settings({ tls: { mode: 'verify-full', ca: 'PEM' } }));
  if (built.engine !== 'postgres') throw new Error('engine');
  t.false(built.config.connectionString?.includes('sslmode'), 'the URL no longer carries it (pg would let it win)');
  t.deepEqual(built.config.ssl, { ca: 'PEM', rejectUnauthorized: true });
});

test('without a spec tls the URL decides, as libpq reads it', (t) => {
  const built = connectionOptions(`${PG}?sslmode=require`, settings());
  if (built.engine !== 'postgres') throw new Error('engine');
  t.true(built.config.connectionString?.includes('sslmode=require'));
  t.is(built.config.ssl, undefined);
});

test('spec tls disable turns TLS off explicitly (PGSSLMODE from the environment does not decide)', (t) => {
  const built = connectionOptions(PG, settings({ tls: { mode: 'disable' } }));
  if (built.engine !== 'postgres') throw new Error('engine');
  t.is(built.config.ssl, false);
});

test('verify-ca checks the chain but not the host name; require encrypts without verifying', (t) => {
  const ca = connectionOptions(PG, settings({ tls: { mode: 'verify-ca', ca: 'PEM' } }));
  if (ca.engine !== 'postgres' || typeof ca.config.ssl !== 'object') throw new Error('ssl');
  t.true(ca.config.ssl.rejectUnauthorized);
  t.is(ca.config.ssl.checkServerIdentity?.('db.example', {} as never), undefined);
  const required = connectionOptions(MY, settings({ tls: { mode: 'require' } }));
  if (required.engine !== 'mysql') throw new Error('engine');
  t.deepEqual(required.config.ssl, { rejectUnauthorized: false });
});

test('pg URL parameters that would override the engine\'s settings are refused', (t) => {
  for (const name of ['options', 'statement_timeout', 'client_encoding', 'replication']) {
    t.notThrows(() => { refused(`${PG}?${name}=x`, {}, new RegExp(`sets "${name}", which the engine sets itself`)); }, name);
  }
});

test('pg URL parameters outside host and ssl are refused: pg would copy them over the engine\'s config', (t) => {
  for (const name of ['connectionTimeoutMillis', 'keepAlive', 'application_name', 'password', 'user']) {
    t.notThrows(() => { refused(`${PG}?${name}=0`, {}, new RegExp(`has the parameter "${name}": a PostgreSQL URL may carry only host and the ssl parameters`)); }, name);
  }
  t.notThrows(() => connectionOptions(`${PG}?host=${encodeURIComponent('/var/run/postgresql')}&sslmode=disable`, settings()));
});

test('MySQL: ssl in the URL with a spec tls is refused; any other parameter (multipleStatements!) always', (t) => {
  t.notThrows(() => { refused(`${MY}?ssl=${encodeURIComponent('{"rejectUnauthorized":false}')}`, { tls: { mode: 'verify-full' } }, /spec\.source\.tls\.mode is verify-full/); });
  t.notThrows(() => { refused(`${MY}?multipleStatements=true`, {}, /"multipleStatements"/); });
  t.notThrows(() => { refused(`${MY}?flags=MULTI_STATEMENTS`, {}, /"flags"/); });
});

test('MySQL options come from the URL\'s parts only, one statement per query, with timeouts and keepalive', (t) => {
  const built = connectionOptions('mariadb://app:p%40ss@[::1]:3307/sh%C3%B6p', settings({ timeouts: { ...DEFAULT_TIMEOUTS, connectMs: 1234 } }));
  if (built.engine !== 'mysql') throw new Error('engine');
  t.like(built.config, { host: '::1', port: 3307, user: 'app', password: 'p@ss', database: 'shöp', multipleStatements: false, connectTimeout: 1234, enableKeepAlive: true });
  t.false('uri' in built.config, 'no URI: mysql2 would let its parameters fill any option');
});

test('pg options carry the connect, idle and (when asked) statement timeouts and keepalive', (t) => {
  const built = connectionOptions(PG, settings({ timeouts: { ...DEFAULT_TIMEOUTS, statementMs: 9000 } }));
  if (built.engine !== 'postgres') throw new Error('engine');
  t.like(built.config, { connectionTimeoutMillis: DEFAULT_TIMEOUTS.connectMs, keepAlive: true, statement_timeout: 9000, idle_in_transaction_session_timeout: DEFAULT_TIMEOUTS.idleInTransactionMs });
  const bulk = connectionOptions(PG, settings());
  if (bulk.engine !== 'postgres') throw new Error('engine');
  t.is(bulk.config.statement_timeout, undefined, 'no statement timeout unless asked: a big COPY runs long');
});

test('timeouts from the environment; nonsense falls back to the defaults', (t) => {
  t.is(sessionTimeouts({ DMO_CONNECT_TIMEOUT_SECONDS: '2.5' }).connectMs, 2500);
  t.is(sessionTimeouts({ DMO_CONNECT_TIMEOUT_SECONDS: 'soon' }).connectMs, DEFAULT_TIMEOUTS.connectMs);
  t.is(sessionTimeouts({ DMO_CONNECT_TIMEOUT_SECONDS: '-1' }).connectMs, DEFAULT_TIMEOUTS.connectMs);
});

test('an unknown scheme is refused', (t) => {
  t.throws(() => connectionOptions('sqlserver://x/y', settings()), { instanceOf: ConnectionSettingsError });
});

const pgIdentity = (extra: Partial<SideIdentity> = {}): SideIdentity => ({
  engine: 'postgres', displayName: 'PostgreSQL', server: '7714', fallbackServer: 'started at 1.5', database: '16385', databaseName: 'shop',
  inRecovery: false, started: '1.5', ...extra,
});

test('identity: one server and database oid is the same database; another database or server is not', (t) => {
  t.true(sameDatabase(pgIdentity(), pgIdentity()));
  t.false(sameDatabase(pgIdentity(), pgIdentity({ database: '16400', databaseName: 'other' })));
  t.false(sameDatabase(pgIdentity(), pgIdentity({ server: '9999', started: '2.5', fallbackServer: 'started at 2.5' })));
  t.false(sameDatabase(pgIdentity(), { ...pgIdentity(), engine: 'mysql' }));
});

test('identity: a replica of the target is the same data; two primaries restored from one backup are not', (t) => {
  t.true(sameDatabase(pgIdentity({ inRecovery: true, started: '3.5' }), pgIdentity()));
  t.false(sameDatabase(pgIdentity({ started: '3.5' }), pgIdentity()));
});

test('identity: without a readable system identifier, the server start time stands in', (t) => {
  t.true(sameDatabase(pgIdentity({ server: undefined }), pgIdentity()));
  t.false(sameDatabase(pgIdentity({ server: undefined }), pgIdentity({ fallbackServer: 'started at 2.5', started: '2.5' })));
});

test('source role: a superuser or a role with write privileges is named; a read-only role is not', (t) => {
  t.regex(sourceRoleWarning({ user: 'postgres', superuser: true, writableTables: [], canWrite: true }) ?? '', /source role postgres is a superuser/);
  t.regex(sourceRoleWarning({ user: 'app', superuser: false, writableTables: ['a', 'b', 'c', 'd'], canWrite: true }) ?? '', /may write to a, b, c and 1 more/);
  t.is(sourceRoleWarning({ user: 'reader', superuser: false, writableTables: [], canWrite: false }), undefined);
});

test('a read-only session runs each statement in a READ ONLY transaction of its own, rolled back; the engine\'s own transactions must say READ ONLY', async (t) => {
  const sent: string[] = [];
  const recording: SqlSession = {
    engine: 'postgres', dialect: adapterFor('postgres'),
    query: (sql) => { sent.push(sql); return Promise.resolve([]); },
    close: () => Promise.resolve(),
  };
  const session = readOnlyTransactions(recording);
  await session.query('SELECT 1');
  t.deepEqual(sent, ['START TRANSACTION READ ONLY', 'SELECT 1', 'ROLLBACK']);
  sent.length = 0;
  await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await session.query('SELECT 2');
  await session.query('COMMIT');
  await session.query('SELECT 3');
  t.deepEqual(sent, ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', 'SELECT 2', 'COMMIT', 'START TRANSACTION READ ONLY', 'SELECT 3', 'ROLLBACK']);
  await t.throwsAsync(session.query('BEGIN'), { message: /must be READ ONLY/ });
  await t.throwsAsync(session.query('start transaction read write'), { message: /must be READ ONLY/ });
});

test('a failing statement still ends its read-only transaction', async (t) => {
  const sent: string[] = [];
  const session = readOnlyTransactions({
    engine: 'mysql', dialect: adapterFor('mysql'),
    query: (sql) => { sent.push(sql); return sql === 'SELECT boom' ? Promise.reject(new Error('boom')) : Promise.resolve([]); },
    close: () => Promise.resolve(),
  });
  await t.throwsAsync(session.query('SELECT boom'), { message: 'boom' });
  t.deepEqual(sent, ['START TRANSACTION READ ONLY', 'SELECT boom', 'ROLLBACK']);
});
