// The one place where a connection URL and the manifest's `spec.*.tls` become driver options, for
// the engine's sessions and the operator's alike. Pure: nothing here opens a socket or reads a file.
//
// Both drivers let the URL override options given next to it (pg: everything in the connection
// string wins; mysql2: every URL parameter fills an option that is not set, multipleStatements
// included). So the URL is parsed here, and a URL parameter that would override what the engine
// or the spec decides is refused instead of silently winning.
import type { ClientConfig } from 'pg';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { ConnectionOptions as MysqlConnectionOptions, SslOptions } from 'mysql2';
import type { Engine } from './dialect.ts';
import type { TlsMode, TlsOptions } from './session.ts';

export type Side = 'source' | 'target';

/** Bad connection settings (a URL parameter that contradicts the spec): nothing was opened. */
export class ConnectionSettingsError extends Error {}

export interface SessionTimeouts {
  /** TCP connect plus the server's greeting and authentication. */
  connectMs: number;
  /** Idle time before the first TCP keepalive probe (a half-open connection then fails instead of hanging). */
  keepAliveInitialDelayMs: number;
  /** Per statement; undefined for sessions that run long statements (the bulk COPY/SELECT, migrations, validation). */
  statementMs?: number;
  /** A transaction left idle this long is ended by the server (PostgreSQL; MariaDB's idle_transaction_timeout). */
  idleInTransactionMs: number;
}

export const DEFAULT_TIMEOUTS: SessionTimeouts = { connectMs: 30_000, keepAliveInitialDelayMs: 30_000, idleInTransactionMs: 15 * 60_000 };

/**
 * The timeouts every session gets: the defaults, with DMO_CONNECT_TIMEOUT_SECONDS and
 * DMO_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS from the environment when they are positive numbers.
 */
/** A positive number of seconds from the environment, in milliseconds; undefined when unset or not one. */
export function envSecondsMs(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const value = Number(env[name] ?? '');
  return Number.isFinite(value) && value > 0 ? Math.round(value * 1000) : undefined;
}

export function sessionTimeouts(env: Readonly<Record<string, string | undefined>>): SessionTimeouts {
  const seconds = (name: string): number | undefined => envSecondsMs(env, name);
  return {
    ...DEFAULT_TIMEOUTS,
    connectMs: seconds('DMO_CONNECT_TIMEOUT_SECONDS') ?? DEFAULT_TIMEOUTS.connectMs,
    idleInTransactionMs: seconds('DMO_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS') ?? DEFAULT_TIMEOUTS.idleInTransactionMs,
  };
}

export interface ConnectionSettings {
  side?: Side;
  tls?: TlsOptions;
  timeouts: SessionTimeouts;
  applicationName: string;
}

export type ConnectionOptions =
  | { engine: 'postgres'; config: ClientConfig }
  | { engine: 'mysql'; config: MysqlConnectionOptions };

function sideName(settings: ConnectionSettings): string {
  return settings.side ?? 'database';
}

// pg: what the connection string would set over the engine's own settings (the read-only
// startup options, the timeouts, the encoding): refused, whatever TLS says.
const PG_ENGINE_PARAMS = new Set(['options', 'client_encoding', 'replication', 'binary', 'statement_timeout', 'query_timeout',
  'lock_timeout', 'idle_in_transaction_session_timeout', 'connect_timeout', 'keepalives', 'keepalives_idle', 'types']);
const isPgSslParam = (name: string): boolean => name === 'ssl' || name.startsWith('ssl');
// pg copies every parameter of the connection string over the config it is given
// (connectionTimeoutMillis=0 would undo the connect timeout): only these may stay in a URL.
const PG_URL_PARAMS = new Set(['host', 'uselibpqcompat']);

/** sslmode values that mean what a spec tls.mode means (libpq's names; pg's `ssl=true` and no-verify spelled out). */
function pgUrlTlsMode(params: URLSearchParams): TlsMode | 'other' | undefined {
  const mode = params.get('sslmode');
  const ssl = params.get('ssl');
  if (mode === null && ssl === null) return undefined;
  if (ssl !== null && mode === null) return ssl === 'true' || ssl === '1' ? 'require' : ssl === '0' || ssl === 'false' ? 'disable' : 'other';
  if (mode === 'disable' || mode === 'require' || mode === 'verify-ca' || mode === 'verify-full') return mode;
  return 'other'; // prefer, allow, no-verify: weaker than any spec mode but disable, and not what the spec says
}

/** PostgreSQL: TLS from the spec when it has tls (the URL may only repeat it), else from the URL as libpq reads it. */
function postgresOptions(url: URL, settings: ConnectionSettings): ClientConfig {
  const side = sideName(settings);
  for (const name of url.searchParams.keys()) {
    if (PG_ENGINE_PARAMS.has(name)) {
      throw new ConnectionSettingsError(`the ${side} connection URL sets "${name}", which the engine sets itself: remove it from the URL`);
    }
    if (!PG_URL_PARAMS.has(name) && !isPgSslParam(name)) {
      throw new ConnectionSettingsError(`the ${side} connection URL has the parameter "${name}": a PostgreSQL URL may carry only host and the ssl parameters (the engine sets the rest itself)`);
    }
  }
  const { tls } = settings;
  let connectionUrl = url;
  let ssl: ClientConfig['ssl'];
  if (tls) {
    const urlMode = pgUrlTlsMode(url.searchParams);
    const others = [...url.searchParams.keys()].filter((name) => isPgSslParam(name) && name !== 'sslmode' && name !== 'ssl');
    if ((urlMode !== undefined && urlMode !== tls.mode) || others.length > 0) {
      const said = urlMode === undefined ? others.join(', ') : `sslmode=${url.searchParams.get('sslmode') ?? ''}${url.searchParams.has('ssl') ? ` ssl=${url.searchParams.get('ssl') ?? ''}` : ''}`;
      throw new ConnectionSettingsError(`the ${side} connection URL says ${said}, but spec.${side}.tls.mode is ${tls.mode}: `
        + 'TLS is decided by the spec; remove the ssl parameters from the URL (or make them say the same)');
    }
    connectionUrl = new URL(url);
    for (const name of [...connectionUrl.searchParams.keys()]) if (isPgSslParam(name)) connectionUrl.searchParams.delete(name);
    ssl = postgresSsl(tls);
  }
  return {
    connectionString: connectionUrl.toString(),
    application_name: settings.applicationName,
    // An explicit false: without it pg falls back to PGSSLMODE from the environment, which the spec would not see.
    ...(tls ? { ssl: ssl ?? false } : {}),
    connectionTimeoutMillis: settings.timeouts.connectMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: settings.timeouts.keepAliveInitialDelayMs,
    idle_in_transaction_session_timeout: settings.timeouts.idleInTransactionMs,
    ...(settings.timeouts.statementMs !== undefined
      ? {
        statement_timeout: settings.timeouts.statementMs,
        // The client's own bound, a little later than the server's, for a server that stopped answering.
        query_timeout: settings.timeouts.statementMs + 5_000,
      }
      : {}),
  };
}

function postgresSsl(tls: TlsOptions): ClientConfig['ssl'] {
  if (tls.mode === 'disable') return undefined;
  if (tls.mode === 'require') return { rejectUnauthorized: false };
  const verified: TlsConnectionOptions = { ...(tls.ca ? { ca: tls.ca } : {}), rejectUnauthorized: true };
  // verify-ca: the chain is checked, the host name is not.
  return tls.mode === 'verify-ca' ? { ...verified, checkServerIdentity: () => undefined } : verified;
}

function mysqlSsl(tls: TlsOptions): SslOptions | undefined {
  if (tls.mode === 'disable') return undefined;
  if (tls.mode === 'require') return { rejectUnauthorized: false };
  const verified: SslOptions = { ...(tls.ca ? { ca: tls.ca } : {}), rejectUnauthorized: true };
  // verify-ca: the chain is checked, the host name is not (mysql2 passes this through to tls.connect).
  return tls.mode === 'verify-ca' ? Object.assign(verified, { checkServerIdentity: () => undefined } satisfies TlsConnectionOptions) : verified;
}

/**
 * MySQL/MariaDB: the URL gives host, port, user, password and database only; mysql2 would take
 * any other parameter as an option (multipleStatements=true included), so only `ssl` is read,
 * and only when the spec has no tls.
 */
function mysqlOptions(url: URL, settings: ConnectionSettings): MysqlConnectionOptions {
  const side = sideName(settings);
  let ssl: MysqlConnectionOptions['ssl'];
  for (const [name, value] of url.searchParams) {
    if (name !== 'ssl') {
      throw new ConnectionSettingsError(`the ${side} connection URL has the parameter "${name}": a MySQL URL may carry only ssl (TLS belongs in spec.${side}.tls)`);
    }
    if (settings.tls) {
      throw new ConnectionSettingsError(`the ${side} connection URL says ssl=…, but spec.${side}.tls.mode is ${settings.tls.mode}: `
        + 'TLS is decided by the spec; remove ssl from the URL');
    }
    ssl = parseMysqlSsl(value);
  }
  if (settings.tls) ssl = mysqlSsl(settings.tls);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    host: decodeURIComponent(host) || 'localhost',
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)) || undefined,
    ...(ssl !== undefined ? { ssl } : {}),
    multipleStatements: false,
    connectTimeout: settings.timeouts.connectMs,
    enableKeepAlive: true,
    keepAliveInitialDelay: settings.timeouts.keepAliveInitialDelayMs,
  };
}

/** mysql2's URL reading of ssl: JSON (an options object, true) or a profile name. */
function parseMysqlSsl(value: string): MysqlConnectionOptions['ssl'] {
  try {
    return JSON.parse(value) as MysqlConnectionOptions['ssl'];
  } catch {
    return value;
  }
}

/** The engine a URL names: postgres:// or postgresql://, mysql:// or mariadb://. */
export function engineOfUrl(url: string): Engine {
  const scheme = /^([a-z0-9+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  throw new ConnectionSettingsError('connection URL must start with postgres://, postgresql://, mysql:// or mariadb://');
}

/**
 * Driver options for a connection URL with the spec's TLS and the session's timeouts. Throws
 * ConnectionSettingsError (naming the side, never the URL) when the URL contradicts the spec or
 * sets what the engine must decide.
 */
export function connectionOptions(url: string, settings: ConnectionSettings): ConnectionOptions {
  const engine = engineOfUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectionSettingsError(`the ${sideName(settings)} connection URL cannot be parsed`);
  }
  return engine === 'postgres'
    ? { engine, config: postgresOptions(parsed, settings) }
    : { engine, config: mysqlOptions(parsed, settings) };
}
