// What differs between PostgreSQL and MySQL/MariaDB, declared once per database in db/postgres/
// and db/mysql/ (after kysely's dialect adapters). Engine code asks a session's adapter
// (session.dialect) or adapterFor(engine), never the engine's name. Modules that convert between
// the two at once (schema/typemap.ts, schema/ddl.ts, validate/canonical.ts) take both engines.
import type { SchemaObject, TableInfo } from '../schema/model.ts';
import type { Dialect, Engine } from './dialect.ts';
import { mysqlAdapter } from './mysql/adapter.ts';
import { postgresAdapter } from './postgres/adapter.ts';
import type { SqlSession } from './session.ts';

/** A statement and its bind parameters. */
export interface ParameterizedSql {
  sql: string;
  params: unknown[];
}

/** Column types and table options of the engine's own bookkeeping tables (history, checkpoints, records). */
export interface BookkeepingTypes {
  /** Text that can be (part of) a primary key, at most `length` characters. */
  keyText: (length: number) => string;
  /** Text without a practical length bound. */
  longText: string;
  /** A point in time (UTC) with microseconds. */
  timestamp: string;
  /** A column DEFAULT that is the time of the insert. */
  timestampDefault: string;
  /** The current time (UTC) as a value in a statement. */
  utcNow: string;
  boolean: string;
  /** After CREATE TABLE (…): the storage engine and binary collation the tables need ('' for none). */
  tableOptions: string;
}

/** Connection set-up every session gets. */
export interface SessionSetup {
  /** Startup parameters sent with the connection (PostgreSQL's `options`). */
  startupOptions: string[];
  /** Statements run once the connection is open. */
  statements: string[];
}

/** How a migration script is cut into statements (migrations/split.ts). */
export interface ScriptSyntax {
  /** `DELIMITER xx` lines, as the mysql client reads them. */
  delimiterCommand: boolean;
  /** Backslash escapes in every '…' (and "…") string, not only in E'…'. */
  backslashEscapes: boolean;
  /** "…" is a string, not a quoted identifier. */
  doubleQuotedStrings: boolean;
  backtickIdentifiers: boolean;
  /** `#` starts a comment. */
  hashComments: boolean;
  /** `--` starts a comment only when followed by whitespace or a control character. */
  dashCommentNeedsSpace: boolean;
  nestedBlockComments: boolean;
  /** /*! … *\/ and /*+ … *\/ belong to the statement. */
  executableComments: boolean;
  /** $$…$$ and $tag$…$tag$ quotes. */
  dollarQuotes: boolean;
}

export type LockAttempt = { outcome: 'acquired' } | { outcome: 'timeout' } | { outcome: 'refused'; detail: string };

/** MySQL or MariaDB: they spell some canonical forms differently (validate/canonical.ts). */
export type ServerFlavor = 'mysql' | 'mariadb';

/**
 * Who a session is talking to, as the server itself says (not as the URL spells it): which server
 * (or cluster of servers that share their data, like a replica and its primary) and which database
 * on it. Compared by db/identity.ts; see there for why these values.
 */
export interface ServerIdentity {
  /** PostgreSQL's system_identifier; MySQL's server_uuid; MariaDB's server_uid with host, port and data directory. */
  server: string | undefined;
  /** When `server` cannot be read: the best the role can see that is the same for every session on one server. */
  fallbackServer: string;
  /** The database (PostgreSQL: its oid) or MySQL schema, as compared. */
  database: string;
  /** For messages: the database's name. */
  databaseName: string;
  /** PostgreSQL: a replica (pg_is_in_recovery()). */
  inRecovery: boolean;
  /** PostgreSQL: when the server started, same for every session of one running server. */
  started: string | undefined;
}

/** What the session's role may do beyond reading (checked on the source in the plan). */
export interface RolePrivileges {
  user: string;
  /** Superuser (PostgreSQL rolsuper; MySQL SUPER or ALL on *.*): can write anything, whatever the session says. */
  superuser: boolean;
  /** Of the tables asked about, those the role may INSERT, UPDATE, DELETE or TRUNCATE. */
  writableTables: string[];
}

/**
 * What one account may do to another database on its own server: the target's account, asked
 * about the source's database when both are on one server or cluster (pipeline/source-reach.ts).
 */
export interface WriteAccess {
  /** The account as the server names it ('app'@'%', a role name): never its password. */
  account: string;
  /** Each grant or attribute that lets it write there, for messages; empty when it cannot. */
  routes: string[];
}

export interface Introspector {
  /** The table's shape, or undefined when it does not exist. */
  table(session: SqlSession, name: string): Promise<TableInfo | undefined>;
  /** The base tables of the session's current schema (PostgreSQL) or database (MySQL), sorted. */
  tables(session: SqlSession): Promise<string[]>;
  /** Views, routines and events of these schemas, triggers and policies of these tables: what a migration does not carry over. */
  objects(session: SqlSession, tables: readonly { schema: string; name: string }[]): Promise<SchemaObject[]>;
}

export interface DatabaseAdapter extends Dialect {
  /** For messages: PostgreSQL, MySQL. */
  readonly displayName: string;
  /** DDL takes part in transactions (a failed migration leaves nothing of itself). */
  readonly transactionalDdl: boolean;
  readonly beginStatement: 'BEGIN' | 'START TRANSACTION';
  readonly bookkeeping: BookkeepingTypes;
  /** Enum columns use named types of their own (CREATE TYPE), created and dropped with the tables. */
  readonly namedEnumTypes: boolean;
  /** The storage engine tables are created with, and the copy needs (undefined: the engine has one). */
  readonly storageEngine: string | undefined;
  /** Dates and datetimes may hold zero dates ('0000-00-00'). */
  readonly zeroDates: boolean;
  /** The bulk path's text format: PostgreSQL COPY text (both ways), or MySQL LOAD DATA (binary columns through UNHEX). */
  readonly bulkFormat: 'copy-text' | 'load-data';
  /** Statements turning this session's foreign key checks off and on (undefined: related tables go in one statement). */
  readonly foreignKeyChecks: { off: string; on: string } | undefined;
  /** SELECT … AS who: the user the session is logged in as. */
  readonly currentUserSql: string;
  /** Whether a named lock is per database (PostgreSQL advisory locks) or per server (GET_LOCK). */
  readonly lockScope: 'database' | 'server';
  /** SELECT … AS db: the session's current database. */
  readonly currentDatabaseSql: string;
  /** The schema a table name ($1, quoted and maybe qualified) resolves to, as column `s`; undefined where a
   * session has one schema (MySQL: the current database). */
  readonly tableSchemaSql?: string;
  /** A UTC instant as a literal comparable with the bookkeeping tables' timestamp columns. */
  utcTimestampLiteral(instant: Date): string;
  /** SQL of a random number in [0, 1). */
  readonly randomSql: string;
  readonly scriptSyntax: ScriptSyntax;
  readonly introspector: Introspector;

  sessionSetup(options: { readOnly: boolean }): SessionSetup;
  /** SELECT 1 AS found when the table exists, in the current schema / database unless `schema` is given. */
  tableExistsQuery(table: string, schema: string | undefined): ParameterizedSql;
  /** The statements emptying these (quoted) tables; with foreignKeyChecks off where the engine has them. */
  truncateStatements(quotedTables: readonly string[]): string[];
  /** A boolean as a bind parameter. */
  booleanParam(value: boolean): boolean | number;
  booleanLiteral(value: boolean): string;
  /**
   * The clause after INSERT … VALUES (…) when a row with the same `key` exists: `update` columns
   * take the new values; with none, the existing row stays (never INSERT IGNORE, which would hide
   * other errors too).
   */
  onConflictSql(key: readonly string[], update: readonly string[]): string;
  bytesLiteral(bytes: Buffer): string;
  /** Lower-case hex SHA-256 of the expression's UTF-8 bytes. */
  sha256HexSql(expression: string): string;
  /** A timestamp literal minus a number of seconds. */
  timestampMinusSecondsSql(timestampLiteral: string, seconds: number): string;
  /** Never-NULL expressions as text, joined by a separator (an SQL string literal). */
  joinAsTextSql(expressions: readonly string[], separatorLiteral: string): string;
  /** dividend DIV divisor, truncating; `integral`: the dividend is of an integer type. */
  truncatingDivisionSql(dividend: string, divisor: bigint, integral: boolean): string;
  /** (column - offset) DIV divisor, truncating, in decimal arithmetic (no overflow). */
  offsetDivisionSql(column: string, offset: bigint, divisor: bigint): string;

  /** Waits up to timeoutSeconds for the named lock, held by this session until released. */
  acquireLock(session: SqlSession, name: string, timeoutSeconds: number): Promise<LockAttempt>;
  /** Takes the named lock if no one holds it now. */
  tryLock(session: SqlSession, name: string): Promise<boolean>;
  releaseLock(session: SqlSession, name: string): Promise<void>;
  /** MySQL or MariaDB (undefined on PostgreSQL). */
  serverFlavor(session: SqlSession): Promise<ServerFlavor | undefined>;
  /** The server and database this session is on, as the server says (readable by a plain role). */
  identity(session: SqlSession): Promise<ServerIdentity>;
  /** Whether the session's role is a superuser, and which of these tables (as the manifest names them) it may write. */
  rolePrivileges(session: SqlSession, tables: readonly string[]): Promise<RolePrivileges>;
  /**
   * Source and target on one server: what the target session's account may write of the source's
   * database (MySQL: the source schemas `schemas`; PostgreSQL: the whole database, asked of the
   * source session's catalog about the target's role). Roles the account may take count as its own.
   */
  sourceWriteAccess(source: SqlSession, target: SqlSession, schemas: readonly string[]): Promise<WriteAccess>;
}

const ADAPTERS: Record<Engine, DatabaseAdapter> = { postgres: postgresAdapter, mysql: mysqlAdapter };

export function adapterFor(engine: Engine): DatabaseAdapter {
  return ADAPTERS[engine];
}
