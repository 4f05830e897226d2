// Per-test databases on the platform's servers. The servers come from PG_URL / MYSQL_URL (set by
// the test runner, or by a person who already runs databases); without them, this process
// starts its own throwaway servers. Each call creates a new database, so test files and tests
// running in parallel never share tables.
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { startMariadb } from './mariadb-server.ts';
import { startPostgres } from './postgres-server.ts';
import { onExit } from './process.ts';

export type Engine = 'postgres' | 'mysql';

const adminUrls = new Map<Engine, Promise<string>>();

function adminUrl(engine: Engine): Promise<string> {
  let url = adminUrls.get(engine);
  if (!url) {
    const fromEnv = engine === 'postgres' ? process.env.PG_URL : process.env.MYSQL_URL;
    url = fromEnv ? Promise.resolve(fromEnv) : startOwnServer(engine);
    adminUrls.set(engine, url);
  }
  return url;
}

async function startOwnServer(engine: Engine): Promise<string> {
  const server = engine === 'postgres' ? await startPostgres() : await startMariadb();
  onExit(() => server.stop());
  return server.url;
}

/** A URL whose path names `database` on the server behind `serverUrl`. */
export function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** Runs SQL as the server's admin user on its default database. */
export async function adminQuery(engine: Engine, sql: string): Promise<void> {
  const url = await adminUrl(engine);
  if (engine === 'postgres') {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  } else {
    const connection = await mysql.createConnection({ uri: url });
    try {
      await connection.query(sql);
    } finally {
      await connection.end();
    }
  }
}

/** Creates an empty database for this test and drops it when the test ends; returns its URL. */
export async function freshDatabase(t: ExecutionContext, engine: Engine, prefix = 't'): Promise<string> {
  const name = uniqueName(prefix);
  const quoted = engine === 'postgres' ? `"${name}"` : `\`${name}\``;
  await adminQuery(engine, `CREATE DATABASE ${quoted}`);
  t.teardown(() => adminQuery(engine, engine === 'postgres' ? `DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)` : `DROP DATABASE IF EXISTS ${quoted}`));
  return withDatabase(await adminUrl(engine), name);
}

export const freshPostgresDatabase = (t: ExecutionContext, prefix?: string): Promise<string> => freshDatabase(t, 'postgres', prefix);
export const freshMysqlDatabase = (t: ExecutionContext, prefix?: string): Promise<string> => freshDatabase(t, 'mysql', prefix);

/** Runs SQL as the server's admin user on `database` (PostgreSQL: grants are per database; MySQL: the same server-wide). */
export async function adminQueryOn(engine: Engine, database: string, sql: string): Promise<void> {
  if (engine === 'mysql') {
    await adminQuery(engine, sql);
    return;
  }
  const client = new pg.Client({ connectionString: withDatabase(await adminUrl(engine), database) });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The database a URL names. */
export const databaseOf = (url: string): string => decodeURIComponent(new URL(url).pathname.slice(1));

/**
 * An account of its own on a test server, for tests about what an account may do (the admin user
 * the other helpers use may do everything). It has no rights until a test grants some; it and
 * everything granted to it are gone when the test ends.
 */
export interface TestAccount {
  engine: Engine;
  /** The PostgreSQL role or MySQL user (host %) or role name. */
  name: string;
  /** As GRANT and REVOKE name it: app_x (PostgreSQL), 'app_x'@'%' (MySQL user), `app_x` (MySQL role). */
  grantee: string;
  /** A login's password ('' for a role without login). */
  password: string;
  /** `databaseUrl` (any database of the server) logged in as this account. */
  urlFor(databaseUrl: string): string;
  /**
   * Runs statements as the admin on the database of `databaseUrl` (grants to this account there);
   * on PostgreSQL what it was granted there is dropped again when the test ends, before the account.
   */
  grantOn(databaseUrl: string, statements: readonly string[]): Promise<void>;
}

/** A new login (or, with `login: false`, a role without login) with no rights; dropped when the test ends. */
export async function testAccount(t: ExecutionContext, engine: Engine, options: { prefix?: string; login?: boolean } = {}): Promise<TestAccount> {
  const login = options.login ?? true;
  const name = uniqueName(options.prefix ?? (login ? 'acct' : 'role')).toLowerCase();
  const password = login ? `pw-${randomBytes(8).toString('hex')}` : '';
  const grantee = engine === 'postgres' ? name : login ? `'${name}'@'%'` : `\`${name}\``;
  if (engine === 'postgres') {
    await adminQuery(engine, `CREATE ROLE ${name} ${login ? `LOGIN PASSWORD '${password}'` : 'NOLOGIN'}`);
  } else {
    await adminQuery(engine, login ? `CREATE USER ${grantee} IDENTIFIED BY '${password}'` : `CREATE ROLE ${grantee}`);
  }
  t.teardown(() => adminQuery(engine, engine === 'postgres' ? `DROP ROLE IF EXISTS ${name}` : login ? `DROP USER IF EXISTS ${grantee}` : `DROP ROLE IF EXISTS ${grantee}`));
  return {
    engine, name, grantee, password,
    urlFor(databaseUrl) {
      const url = new URL(databaseUrl);
      url.username = name;
      url.password = password;
      return url.toString();
    },
    async grantOn(databaseUrl, statements) {
      const database = databaseOf(databaseUrl);
      // Privileges in a database keep a PostgreSQL role from being dropped: revoked first (teardowns run last-in, first-out).
      if (engine === 'postgres') t.teardown(() => adminQueryOn(engine, database, `DROP OWNED BY ${name}`).catch(() => undefined));
      for (const statement of statements) await adminQueryOn(engine, database, statement);
    },
  };
}

/**
 * A new database owned by an account of its own, which has no rights on any other database: what
 * a target on the source's server must be reached with (the admin user could write the source).
 * Returns the database's URL logged in as that account.
 */
export async function ownedDatabase(t: ExecutionContext, engine: Engine, prefix = 't'): Promise<{ url: string; account: TestAccount }> {
  const account = await testAccount(t, engine, { prefix: `${prefix}_owner` });
  const name = uniqueName(prefix);
  const quoted = engine === 'postgres' ? `"${name}"` : `\`${name}\``;
  if (engine === 'postgres') {
    await adminQuery(engine, `CREATE DATABASE ${quoted} OWNER ${account.name}`);
  } else {
    await adminQuery(engine, `CREATE DATABASE ${quoted}`);
    // `_` and `%` are wildcards in a database-level grant: escaped, the grant names this database only.
    await adminQuery(engine, `GRANT ALL PRIVILEGES ON \`${name.replace(/[_%\\]/g, '\\$&')}\`.* TO ${account.grantee}`);
  }
  t.teardown(() => adminQuery(engine, engine === 'postgres' ? `DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)` : `DROP DATABASE IF EXISTS ${quoted}`));
  return { url: account.urlFor(withDatabase(await adminUrl(engine), name)), account };
}

/**
 * A database for a migration's target, reached with its owner account rather than the admin user:
 * the engine refuses a target account that could write the source on their one server
 * (src/engine/pipeline/source-reach.ts), and the admin user could. Returns its URL.
 */
export async function freshTargetDatabase(t: ExecutionContext, engine: Engine, prefix = 't'): Promise<string> {
  return (await ownedDatabase(t, engine, prefix)).url;
}
