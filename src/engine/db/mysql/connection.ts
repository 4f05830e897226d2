// MySQL/MariaDB connections through mysql2: UTC, utf8mb4, every value as text (bytes for binary
// columns), read-only on request, with connect, statement and idle timeouts and TCP keepalive
// (see ../connection-options.ts).
import mysqlCore from 'mysql2';
import mysql from 'mysql2/promise';
import type { TypeCast } from 'mysql2';
import { connectError, statementError } from '../connect-error.ts';
import { connectionOptions, sessionTimeouts, type SessionTimeouts } from '../connection-options.ts';
import { readOnlyTransactions, type ConnectOptions, type SqlRow, type SqlSession } from '../session.ts';
import { mysqlAdapter } from './adapter.ts';

// mysql2 would turn these into JS numbers and Dates (lossy); their wire text is exact.
const TEXT_TYPES = new Set(['DECIMAL', 'NEWDECIMAL', 'TINY', 'SHORT', 'LONG', 'INT24', 'LONGLONG', 'FLOAT', 'DOUBLE',
  'YEAR', 'DATE', 'NEWDATE', 'TIME', 'TIME2', 'DATETIME', 'DATETIME2', 'TIMESTAMP', 'TIMESTAMP2', 'JSON']);

/** The server's own text for every value; bytes (mysql2's default) for binary strings, blobs and bit fields. */
export const textTypeCast: TypeCast = (field, next) => (TEXT_TYPES.has(field.type) ? field.string('utf8')
  // Spatial values as their stored bytes (SRID + WKB), not mysql2's parsed objects.
  : field.type === 'GEOMETRY' ? field.buffer() : next());

function timeoutsOf(options: ConnectOptions): SessionTimeouts {
  return { ...sessionTimeouts(process.env), ...(options.statementTimeoutMs !== undefined ? { statementMs: options.statementTimeoutMs } : {}) };
}

export function mysqlConnectionOptions(url: string, options: ConnectOptions): mysql.ConnectionOptions {
  const built = connectionOptions(url.replace(/^mariadb:/i, 'mysql:'), {
    ...(options.side ? { side: options.side } : {}), ...(options.tls ? { tls: options.tls } : {}),
    timeouts: timeoutsOf(options), applicationName: options.applicationName ?? 'datamigration',
  });
  if (built.engine !== 'mysql') throw new Error('not a MySQL URL');
  return {
    ...built.config,
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    typeCast: textTypeCast,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    jsonStrings: true, // JSON as the server's text, not parsed into objects
    // Said again here: one statement per query, whatever else changes (connection-options sets it too).
    multipleStatements: false,
    connectAttributes: { program_name: options.applicationName ?? 'datamigration' },
  };
}

/**
 * sql_mode flags that change how quoted text reads: mysql2 escapes values with backslashes and the
 * engine quotes names with backticks and strings with single quotes, which NO_BACKSLASH_ESCAPES
 * (a value ending in \\ would end its string) and ANSI_QUOTES break; the combined modes that
 * imply one of them go too (their other flags stay, spelled out by the server).
 */
const UNSAFE_MODES = ['NO_BACKSLASH_ESCAPES', 'ANSI_QUOTES', 'ANSI', 'DB2', 'MAXDB', 'MSSQL', 'ORACLE', 'POSTGRESQL'];
const SAFE_SQL_MODE = `SET SESSION sql_mode = TRIM(BOTH ',' FROM ${UNSAFE_MODES.reduce((expression, mode) => `REPLACE(${expression}, ',${mode},', ',')`, "CONCAT(',', @@SESSION.sql_mode, ',')")})`;

/** Takes the server's sql_mode minus UNSAFE_MODES, and makes sure it took (a refusal otherwise). */
async function safeSqlMode(connection: mysql.Connection): Promise<void> {
  await connection.query(SAFE_SQL_MODE);
  const [rows] = await connection.query('SELECT @@SESSION.sql_mode AS mode');
  const value = Array.isArray(rows) ? (rows[0] as { mode?: unknown } | undefined)?.mode : undefined;
  const mode = typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : '';
  const kept = mode.toUpperCase().split(',').filter((flag) => flag === 'NO_BACKSLASH_ESCAPES' || flag === 'ANSI_QUOTES');
  if (kept.length > 0) throw new Error(`the MySQL session kept sql_mode ${kept.join(', ')}, under which the engine's quoting is not safe; refusing to use it`);
}

/** Bound on a recursive CTE's iterations on source (read-only) sessions, MariaDB's max_recursive_iterations. */
export const SOURCE_MAX_RECURSIVE_ITERATIONS = 100_000;

/** ER_UNKNOWN_SYSTEM_VARIABLE: the timeout variables differ between MySQL and MariaDB. */
const UNKNOWN_VARIABLE = 1193;

/**
 * Session settings every connection gets; read-only sessions refuse writes in every transaction.
 * Timeouts: MariaDB's max_statement_time (seconds) and idle_transaction_timeout, MySQL's
 * max_execution_time (milliseconds, SELECT only); each is set where the server has it.
 */
export async function prepareMysqlSession(connection: mysql.Connection, options: ConnectOptions): Promise<void> {
  for (const statement of mysqlAdapter.sessionSetup({ readOnly: options.readOnly }).statements) await connection.query(statement);
  await safeSqlMode(connection);
  const timeouts = timeoutsOf(options);
  const optional = [`SET SESSION idle_transaction_timeout = ${String(Math.ceil(timeouts.idleInTransactionMs / 1000))}`];
  // MariaDB lets a recursive CTE run 2^32 iterations by default (MySQL stops at 1000, its
  // cte_max_recursion_depth): a fragment's WITH RECURSIVE could burn the source's CPU for hours.
  if (options.readOnly) optional.push(`SET SESSION max_recursive_iterations = ${String(SOURCE_MAX_RECURSIVE_ITERATIONS)}`);
  if (timeouts.statementMs !== undefined) {
    optional.push(`SET SESSION max_statement_time = ${String(timeouts.statementMs / 1000)}`, `SET SESSION max_execution_time = ${String(timeouts.statementMs)}`);
  }
  for (const statement of optional) {
    await connection.query(statement).catch((error: unknown) => {
      if ((error as { errno?: unknown }).errno !== UNKNOWN_VARIABLE) throw error;
    });
  }
}

async function connected<T>(url: string, options: ConnectOptions, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    throw connectError(error, url, options.side, mysqlAdapter.engine, timeoutsOf(options).connectMs);
  }
}

export function connectMysql(url: string, options: ConnectOptions): Promise<mysql.Connection> {
  return connected(url, options, async () => {
    const connection = await mysql.createConnection(mysqlConnectionOptions(url, options));
    try {
      await prepareMysqlSession(connection, options);
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return connection;
  });
}

/**
 * A callback-style connection (for streaming reads: mysql2 streams rows only on those), with the
 * same settings as connectMysql, the text type cast included: without it mysql2 parses DOUBLE with
 * the column's display precision (91.42345678900001 arrives as 91.423456789). With the cast the
 * copy measured as fast as without it (bench:copy).
 */
export function connectMysqlCore(url: string, options: ConnectOptions): Promise<mysqlCore.Connection> {
  return connected(url, options, async () => {
    const connection = mysqlCore.createConnection(mysqlConnectionOptions(url, options));
    try {
      await prepareMysqlSession(connection.promise(), options);
    } catch (error) {
      connection.destroy();
      throw error;
    }
    return connection;
  });
}

/** A session over a connection; read-only sessions run every statement in a READ ONLY transaction. */
export function mysqlSession(connection: mysql.Connection, options: Pick<ConnectOptions, 'readOnly' | 'side' | 'statementTimeoutMs'> = { readOnly: false }): SqlSession {
  const session: SqlSession = {
    engine: 'mysql',
    dialect: mysqlAdapter,
    async query(sql, params = []) {
      try {
        const [rows] = await connection.query(sql, [...params]);
        return Array.isArray(rows) ? (rows as SqlRow[]) : [];
      } catch (error) {
        throw statementError(error, options.side, options.statementTimeoutMs);
      }
    },
    async close() {
      await connection.end();
    },
  };
  return options.readOnly ? readOnlyTransactions(session) : session;
}
