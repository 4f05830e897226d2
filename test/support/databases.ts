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
