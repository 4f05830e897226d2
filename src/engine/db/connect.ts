// Opens a session on either engine from a connection URL.
import type { Engine } from './dialect.ts';
import { connectMysql, mysqlSession } from './mysql/connection.ts';
import { connectPostgres, postgresSession } from './postgres/connection.ts';
import { redactSecrets, secretsOfUrls } from './redact.ts';
import type { ConnectOptions, SqlSession } from './session.ts';

/** The engine a URL names: postgres:// or postgresql://, mysql:// or mariadb://. */
export function engineOfUrl(url: string): Engine {
  const scheme = /^([a-z0-9+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  throw new Error('connection URL must start with postgres://, postgresql://, mysql:// or mariadb://');
}

export async function openSession(url: string, options: ConnectOptions): Promise<SqlSession> {
  const engine = engineOfUrl(url);
  try {
    return engine === 'postgres'
      ? postgresSession(await connectPostgres(url, options))
      : mysqlSession(await connectMysql(url.replace(/^mariadb:/i, 'mysql:'), options));
  } catch (error) {
    // Driver errors can echo the connection string; never let a password through.
    const message = redactSecrets(error instanceof Error ? error.message : String(error), secretsOfUrls([url]));
    // No `cause`: the driver's error may hold the URL, and whoever logs this error logs its cause.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`cannot connect to ${engine}: ${message}`);
  }
}
