// PostgreSQL connections through pg: UTC, UTF-8, every value as text, read-only on request.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { ConnectOptions, SqlRow, SqlSession, TlsOptions } from '../session.ts';
import { postgresAdapter } from './adapter.ts';

// Text in, text out: pg's default parsers turn bigint, numeric and timestamps into lossy JS values.
const textTypes = { getTypeParser: () => (value: string) => value };

function sslOptions(tls: TlsOptions | undefined): boolean | TlsConnectionOptions | undefined {
  if (!tls || tls.mode === 'disable') return undefined;
  if (tls.mode === 'require') return { rejectUnauthorized: false };
  const ca = tls.ca;
  return tls.mode === 'verify-ca'
    ? { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined }
    : { ca, rejectUnauthorized: true };
}

export async function connectPostgres(url: string, options: ConnectOptions): Promise<pg.Client> {
  const setup = postgresAdapter.sessionSetup({ readOnly: options.readOnly });
  const client = new pg.Client({
    connectionString: url,
    application_name: options.applicationName ?? 'datamigration',
    options: setup.startupOptions.join(' '),
    types: textTypes,
    ssl: sslOptions(options.tls),
  });
  await client.connect();
  for (const statement of setup.statements) await client.query(statement);
  return client;
}

export function postgresSession(client: pg.Client): SqlSession {
  return {
    engine: 'postgres',
    dialect: postgresAdapter,
    async query(sql, params = []) {
      const result = await client.query<SqlRow>({ text: sql, values: [...params] });
      return result.rows;
    },
    async close() {
      await client.end();
    },
  };
}

/** Reads a CA file named by an environment variable (the Job mounts the Secret as a file). */
export function readCaFile(path: string | undefined): string | undefined {
  return path ? readFileSync(path, 'utf8') : undefined;
}
