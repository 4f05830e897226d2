// One small interface over both drivers for ordinary SQL (introspection, migrations, validation,
// checkpoints). Bulk data moves through the drivers' own streaming APIs (see engine/copy).
import type { DatabaseAdapter } from './adapter.ts';
import type { Side } from './connection-options.ts';
import type { Engine } from './dialect.ts';

/** Every value comes back as the database's own text (or bytes for binary columns): exact, never a lossy JS number or Date. */
export type SqlValue = string | Buffer | null;
export type SqlRow = Record<string, SqlValue>;

export interface SqlSession {
  readonly engine: Engine;
  /** The database's adapter: quoting, and what differs between the engines (see adapter.ts). */
  readonly dialect: DatabaseAdapter;
  /**
   * Runs one statement with bind parameters and returns its rows (none for statements without a
   * result). On a read-only session: over PostgreSQL's extended protocol (one statement, never
   * several), inside a READ ONLY transaction (see readOnlyTransactions).
   */
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
   * The source side (and validation): every statement runs in a READ ONLY transaction of its own
   * or in one the engine began READ ONLY, on top of the session's defaults (PostgreSQL
   * default_transaction_read_only, MySQL SESSION TRANSACTION READ ONLY), which SQL could change.
   * So SQL from a manifest (where, expression, rules) cannot write through it.
   */
  readOnly: boolean;
  /** Shown to database administrators (pg_stat_activity, processlist). */
  applicationName?: string;
  tls?: TlsOptions;
  /** Which side this session is on: named in connection errors and timeouts. */
  side?: Side;
  /** A bound on every statement, for sessions that run only short ones (the plan, the operator's progress). */
  statementTimeoutMs?: number;
}

const BEGIN = /^\s*(?:BEGIN|START\s+TRANSACTION)\b/i;
const END = /^\s*(?:COMMIT|ROLLBACK|END|ABORT)\s*;?\s*$/i;

/**
 * Read only at the transaction level: a statement outside a transaction runs in a READ ONLY one
 * of its own that is rolled back (session settings a statement changes, e.g. set_config(), go
 * with it); a transaction the engine begins on this session must say READ ONLY. A session's
 * default (default_transaction_read_only) can be changed by the SQL it runs; a transaction that
 * began READ ONLY cannot be made read-write.
 */
export function readOnlyTransactions(session: SqlSession, begun = false): SqlSession {
  // begun: the connection is inside a READ ONLY transaction already (a MySQL consistent snapshot).
  let inTransaction = begun;
  return {
    ...session,
    async query(sql, params = []) {
      if (BEGIN.test(sql)) {
        if (!/\bREAD\s+ONLY\b/i.test(sql)) throw new Error(`a transaction on a read-only session must be READ ONLY: ${sql.slice(0, 60)}`);
        const rows = await session.query(sql, params);
        inTransaction = true;
        return rows;
      }
      if (END.test(sql)) {
        inTransaction = false;
        return session.query(sql, params);
      }
      if (inTransaction) return session.query(sql, params);
      // Both engines spell it this way (PostgreSQL, MySQL 5.6.5+, MariaDB 10.0+).
      await session.query('START TRANSACTION READ ONLY');
      try {
        return await session.query(sql, params);
      } finally {
        await session.query('ROLLBACK');
      }
    },
  };
}
