// PostgreSQL connections through pg: UTC, UTF-8, every value as text, read-only on request, with
// connect, statement and idle timeouts and TCP keepalive (see ../connection-options.ts).
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { connectError, statementError } from '../connect-error.ts';
import { connectionOptions, sessionTimeouts } from '../connection-options.ts';
import { readOnlyTransactions, type ConnectOptions, type SqlRow, type SqlSession } from '../session.ts';
import { postgresAdapter } from './adapter.ts';

// Text in, text out: pg's default parsers turn bigint, numeric and timestamps into lossy JS values.
const textTypes = { getTypeParser: () => (value: string) => value };

/**
 * A connected client. Bulk sessions (the copy's COPY) get no statement timeout: a big table's
 * COPY legitimately runs long; keepalive ends it if the server goes away.
 */
export async function connectPostgres(url: string, options: ConnectOptions): Promise<pg.Client> {
  const timeouts = { ...sessionTimeouts(process.env), ...(options.statementTimeoutMs !== undefined ? { statementMs: options.statementTimeoutMs } : {}) };
  const built = connectionOptions(url, {
    ...(options.side ? { side: options.side } : {}), ...(options.tls ? { tls: options.tls } : {}),
    timeouts, applicationName: options.applicationName ?? 'datamigration',
  });
  if (built.engine !== 'postgres') throw new Error('not a PostgreSQL URL');
  const setup = postgresAdapter.sessionSetup({ readOnly: options.readOnly });
  const client = new pg.Client({ ...built.config, options: setup.startupOptions.join(' '), types: textTypes });
  // A connection lost while idle: pg emits 'error' on the client; the next query fails instead of crashing the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    for (const statement of setup.statements) await client.query(statement);
  } catch (error) {
    await client.end().catch(() => undefined);
    throw connectError(error, url, options.side, postgresAdapter.engine, timeouts.connectMs);
  }
  return client;
}

/**
 * A session over a client. Read-only sessions send every statement over the extended protocol
 * (Parse/Bind/Execute takes exactly one statement, so SQL holding a manifest's text can never
 * stack a second one), each in a READ ONLY transaction.
 */
export function postgresSession(client: pg.Client, options: Pick<ConnectOptions, 'readOnly' | 'side' | 'statementTimeoutMs'> = { readOnly: false }): SqlSession {
  const session: SqlSession = {
    engine: 'postgres',
    dialect: postgresAdapter,
    async query(sql, params = []) {
      try {
        const result = await client.query<SqlRow>({ text: sql, values: [...params], ...(options.readOnly ? { queryMode: 'extended' as const } : {}) });
        return result.rows;
      } catch (error) {
        throw statementError(error, options.side, options.statementTimeoutMs);
      }
    },
    async close() {
      await client.end();
    },
  };
  return options.readOnly ? readOnlyTransactions(session) : session;
}

/** Reads a CA file named by an environment variable (the Job mounts the Secret as a file). */
export function readCaFile(path: string | undefined): string | undefined {
  return path ? readFileSync(path, 'utf8') : undefined;
}
