// MySQL/MariaDB connections through mysql2: UTC, utf8mb4, every value as text (bytes for binary
// columns), read-only on request.
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import mysqlCore from 'mysql2';
import mysql from 'mysql2/promise';
import type { TypeCast } from 'mysql2';
import type { ConnectOptions, SqlRow, SqlSession, TlsOptions } from '../session.ts';
import { mysqlAdapter } from './adapter.ts';

// mysql2 would turn these into JS numbers and Dates (lossy); their wire text is exact.
const TEXT_TYPES = new Set(['DECIMAL', 'NEWDECIMAL', 'TINY', 'SHORT', 'LONG', 'INT24', 'LONGLONG', 'FLOAT', 'DOUBLE',
  'YEAR', 'DATE', 'NEWDATE', 'TIME', 'TIME2', 'DATETIME', 'DATETIME2', 'TIMESTAMP', 'TIMESTAMP2', 'JSON']);

/** The server's own text for every value; bytes (mysql2's default) for binary strings, blobs and bit fields. */
export const textTypeCast: TypeCast = (field, next) => (TEXT_TYPES.has(field.type) ? field.string('utf8') : next());

function sslOptions(tls: TlsOptions | undefined): mysql.SslOptions | undefined {
  if (!tls || tls.mode === 'disable') return undefined;
  if (tls.mode === 'require') return { rejectUnauthorized: false };
  return tls.mode === 'verify-ca'
    // verify-ca: the chain is checked, the host name is not (mysql2 passes this through to tls.connect).
    ? Object.assign({ ca: tls.ca, rejectUnauthorized: true }, { checkServerIdentity: () => undefined } satisfies TlsConnectionOptions)
    : { ca: tls.ca, rejectUnauthorized: true };
}

export function mysqlConnectionOptions(url: string, options: ConnectOptions): mysql.ConnectionOptions {
  return {
    uri: url,
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    typeCast: textTypeCast,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    jsonStrings: true, // JSON as the server's text, not parsed into objects
    multipleStatements: false,
    connectAttributes: { program_name: options.applicationName ?? 'datamigration' },
    ssl: sslOptions(options.tls),
  };
}

/** Session settings every connection gets; read-only sessions refuse writes in every transaction. */
export async function prepareMysqlSession(connection: mysql.Connection, options: ConnectOptions): Promise<void> {
  for (const statement of mysqlAdapter.sessionSetup({ readOnly: options.readOnly }).statements) await connection.query(statement);
}

export async function connectMysql(url: string, options: ConnectOptions): Promise<mysql.Connection> {
  const connection = await mysql.createConnection(mysqlConnectionOptions(url, options));
  await prepareMysqlSession(connection, options);
  return connection;
}

/**
 * A callback-style connection (for streaming reads: mysql2 streams rows only on those), with the
 * same settings as connectMysql, the text type cast included: without it mysql2 parses DOUBLE with
 * the column's display precision (91.42345678900001 arrives as 91.423456789). With the cast the
 * copy measured as fast as without it (bench:copy).
 */
export async function connectMysqlCore(url: string, options: ConnectOptions): Promise<mysqlCore.Connection> {
  const connection = mysqlCore.createConnection(mysqlConnectionOptions(url, options));
  await prepareMysqlSession(connection.promise(), options);
  return connection;
}

export function mysqlSession(connection: mysql.Connection): SqlSession {
  return {
    engine: 'mysql',
    dialect: mysqlAdapter,
    async query(sql, params = []) {
      const [rows] = await connection.query(sql, [...params]);
      return Array.isArray(rows) ? (rows as SqlRow[]) : [];
    },
    async close() {
      await connection.end();
    },
  };
}
