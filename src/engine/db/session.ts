// One small interface over both drivers for ordinary SQL (introspection, migrations, validation,
// checkpoints). Bulk data moves through the drivers' own streaming APIs (see engine/copy).
import type { DatabaseAdapter } from './adapter.ts';
import type { Engine } from './dialect.ts';

/** Every value comes back as the database's own text (or bytes for binary columns): exact, never a lossy JS number or Date. */
export type SqlValue = string | Buffer | null;
export type SqlRow = Record<string, SqlValue>;

export interface SqlSession {
  readonly engine: Engine;
  /** The database's adapter: quoting, and what differs between the engines (see adapter.ts). */
  readonly dialect: DatabaseAdapter;
  /** Runs one statement with bind parameters and returns its rows (none for statements without a result). */
  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]>;
  close(): Promise<void>;
}

export type TlsMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export interface TlsOptions {
  mode: TlsMode;
  /** PEM of the CA that signs the server certificate (verify-ca, verify-full). */
  ca?: string;
}

export interface ConnectOptions {
  /**
   * The source side: every transaction on this connection is read only, enforced by the server
   * (PostgreSQL default_transaction_read_only, MySQL SESSION TRANSACTION READ ONLY), so SQL from
   * a manifest (where, expression, rules) cannot write through it.
   */
  readOnly: boolean;
  /** Shown to database administrators (pg_stat_activity, processlist). */
  applicationName?: string;
  tls?: TlsOptions;
}
