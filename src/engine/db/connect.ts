// Opens a session on either engine from a connection URL (driver options: connection-options.ts).
import { engineOfUrl } from './connection-options.ts';
import { connectMysql, mysqlSession } from './mysql/connection.ts';
import { connectPostgres, postgresSession } from './postgres/connection.ts';
import type { ConnectOptions, SqlSession } from './session.ts';

export { engineOfUrl };

/** Errors name the side (options.side) and what failed or timed out, never the URL or its password. */
export async function openSession(url: string, options: ConnectOptions): Promise<SqlSession> {
  return engineOfUrl(url) === 'postgres'
    ? postgresSession(await connectPostgres(url, options), options)
    : mysqlSession(await connectMysql(url, options), options);
}
