// PostgreSQL connections through pg: UTC, UTF-8, every value as text, read-only on request, with
// connect, statement and idle timeouts and TCP keepalive (see ../connection-options.ts).
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { connectError, statementError } from '../connect-error.ts';
import { connectionOptions, sessionTimeouts } from '../connection-options.ts';
import { readOnlyTransactions, type ConnectOptions, type SqlRow, type SqlSession } from '../session.ts';
import { postgresAdapter } from './adapter.ts';

/**
 * Takes pg_catalog out of the session's search_path where the role or database listed it, so that
 * PostgreSQL searches it first, implicitly, as it does by default (the other schemas keep their
 * order, and the first stays the one unqualified CREATEs go to: listing pg_catalog first instead
 * would send them into pg_catalog). The engine's own statements call built-ins unqualified
 * (sha256, encode, count, ||, …): a database or role whose search_path lists pg_catalog after a
 * schema holding same-signature look-alikes (ALTER DATABASE … SET search_path = public,
 * pg_catalog) would have them run the look-alikes with the migration's role (issue 13, found by
 * attack). Fully qualified itself, so it cannot be shadowed in turn; a SET, allowed in a
 * read-only transaction. Only where pg_catalog is listed (current_schemas(false) names it only
 * then), so that other sessions keep their search_path as it is, schemas not created yet included.
 */
const PG_CATALOG_FIRST = `SELECT CASE WHEN 'pg_catalog' OPERATOR(pg_catalog.=) ANY (pg_catalog.current_schemas(false)) THEN
  pg_catalog.set_config('search_path', pg_catalog.array_to_string(ARRAY(
    SELECT pg_catalog.quote_ident(s) FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS p (s, i)
     WHERE s OPERATOR(pg_catalog.<>) 'pg_catalog' ORDER BY i), ', '), false) END`;

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
    await client.query(PG_CATALOG_FIRST);
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
