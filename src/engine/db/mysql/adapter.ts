// MySQL and MariaDB as the engine sees them: quoting, DDL that commits on its own, GET_LOCK,
// InnoDB bookkeeping tables and the SQL fragments that differ from PostgreSQL's.
import { createHash } from 'node:crypto';
import type { DatabaseAdapter } from '../adapter.ts';
import { splitQualifiedName } from '../dialect.ts';
import type { SqlSession } from '../session.ts';
import { mysqlIntrospector } from './introspect.ts';
import { mysqlSourceWriteAccess } from './reach.ts';

const quoteIdent = (name: string): string => `\`${name.replaceAll('`', '``')}\``;

/** MySQL lock names are at most 64 characters; longer ones become a prefix plus a hash. */
export function mysqlLockName(name: string): string {
  if (name.length <= 64) return name;
  return `${name.slice(0, 31)}#${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
}

export const mysqlAdapter: DatabaseAdapter = {
  engine: 'mysql',
  displayName: 'MySQL',
  quoteIdent,
  quoteQualified: (name) => splitQualifiedName(name).map(quoteIdent).join('.'),
  placeholder: () => '?',
  // With NO_BACKSLASH_ESCAPES off (the default), a backslash must be doubled too.
  quoteLiteral: (value) => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`,

  transactionalDdl: false,
  beginStatement: 'START TRANSACTION',
  bookkeeping: {
    keyText: (length) => `varchar(${String(length)})`,
    longText: 'longtext',
    timestamp: 'datetime(6)',
    timestampDefault: 'CURRENT_TIMESTAMP(6)',
    utcNow: 'UTC_TIMESTAMP(6)',
    boolean: 'tinyint(1)',
    // InnoDB: a batch commits with its checkpoint. Binary collation: keys compare byte for byte.
    tableOptions: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
  },
  namedEnumTypes: false,
  storageEngine: 'InnoDB',
  zeroDates: true,
  bulkFormat: 'load-data',
  foreignKeyChecks: { off: 'SET SESSION FOREIGN_KEY_CHECKS = 0', on: 'SET SESSION FOREIGN_KEY_CHECKS = 1' },
  currentUserSql: 'SELECT CURRENT_USER() AS who',
  // GET_LOCK is server wide: callers put the database in the name.
  lockScope: 'server',
  currentDatabaseSql: 'SELECT DATABASE() AS db',
  // Bookkeeping times are UTC_TIMESTAMP() values in datetime columns.
  utcTimestampLiteral: (instant) => `CAST('${instant.toISOString().replace('T', ' ').replace('Z', '')}' AS DATETIME(6))`,
  randomSql: 'RAND()',
  scriptSyntax: {
    delimiterCommand: true,
    backslashEscapes: true,
    doubleQuotedStrings: true,
    backtickIdentifiers: true,
    hashComments: true,
    dashCommentNeedsSpace: true,
    nestedBlockComments: false,
    executableComments: true,
    dollarQuotes: false,
  },
  introspector: mysqlIntrospector,

  sessionSetup: ({ readOnly }) => ({
    startupOptions: [],
    statements: [
      "SET time_zone = '+00:00', NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
      ...(readOnly ? ['SET SESSION TRANSACTION READ ONLY'] : []),
    ],
  }),
  tableExistsQuery: (table, schema) => ({
    sql: `SELECT 1 AS found FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema ? '?' : 'DATABASE()'} AND TABLE_NAME = ?`,
    params: schema ? [schema, table] : [table],
  }),
  // One table per statement: MySQL's TRUNCATE takes one.
  truncateStatements: (tables) => tables.map((table) => `TRUNCATE TABLE ${table}`),
  booleanParam: (value) => (value ? 1 : 0),
  booleanLiteral: (value) => (value ? '1' : '0'),
  onConflictSql: (key, update) => (update.length > 0
    ? ` ON DUPLICATE KEY UPDATE ${update.map((c) => `${c} = VALUES(${c})`).join(', ')}`
    // A no-op update of the key's last column: the existing row stays.
    : ` ON DUPLICATE KEY UPDATE ${key.at(-1) ?? ''} = ${key.at(-1) ?? ''}`),
  bytesLiteral: (bytes) => `X'${bytes.toString('hex')}'`,
  sha256HexSql: (e) => `SHA2(${e}, 256)`,
  timestampMinusSecondsSql: (literal, seconds) => `CAST(${literal} AS DATETIME(6)) - INTERVAL ${String(seconds)} SECOND`,
  joinAsTextSql: (expressions, separator) => `CONCAT_WS(${separator}, ${expressions.join(', ')})`,
  // DIV truncates on integers and decimals alike.
  truncatingDivisionSql: (dividend, divisor) => `(${dividend} DIV ${divisor.toString()})`,
  offsetDivisionSql: (column, offset, divisor) => `((CAST(${column} AS DECIMAL(21,0)) - ${offset.toString()}) DIV ${divisor.toString()})`,

  async acquireLock(session: SqlSession, name: string, timeoutSeconds: number) {
    const [row] = await session.query('SELECT GET_LOCK(?, ?) AS acquired', [mysqlLockName(name), timeoutSeconds]);
    const acquired = row?.acquired?.toString();
    if (acquired === '1') return { outcome: 'acquired' };
    if (acquired === '0') return { outcome: 'timeout' };
    return { outcome: 'refused', detail: `GET_LOCK returned ${acquired ?? 'nothing'}` };
  },
  async tryLock(session: SqlSession, name: string) {
    const [row] = await session.query('SELECT GET_LOCK(?, 0) AS taken', [mysqlLockName(name)]);
    return ['t', 'true', '1'].includes(row?.taken?.toString() ?? '');
  },
  async releaseLock(session: SqlSession, name: string) {
    await session.query('SELECT RELEASE_LOCK(?)', [mysqlLockName(name)]);
  },
  async serverFlavor(session: SqlSession) {
    const [row] = await session.query('SELECT VERSION() AS v');
    return /mariadb/i.test(row?.v?.toString() ?? '') ? 'mariadb' : 'mysql';
  },
  async identity(session: SqlSession) {
    const [place] = await session.query('SELECT DATABASE() AS db, @@hostname AS host, @@port AS port, @@datadir AS datadir');
    const fallbackServer = `${place?.host?.toString() ?? '?'}:${place?.port?.toString() ?? '?'}:${place?.datadir?.toString() ?? '?'}`;
    // MySQL has server_uuid, MariaDB server_uid (10.3+); each fails on the other (db/identity.ts).
    const [uuid] = await session.query('SELECT @@server_uuid AS id').catch(() => []);
    const [uid] = uuid ? [] : await session.query('SELECT @@server_uid AS id').catch(() => []);
    const server = uuid?.id?.toString() ?? (uid?.id ? `${uid.id.toString()} ${fallbackServer}` : undefined);
    const database = place?.db?.toString() ?? '';
    return { server, fallbackServer, database, databaseName: database, inRecovery: false, started: undefined };
  },
  async rolePrivileges(session: SqlSession, tables: readonly string[]) {
    const [user] = await session.query('SELECT CURRENT_USER() AS who');
    const who = user?.who?.toString() ?? '';
    const at = who.lastIndexOf('@');
    // information_schema spells grantees 'user'@'host'.
    const grantee = `'${who.slice(0, at)}'@'${who.slice(at + 1)}'`;
    const globalRows = await session.query('SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?', [grantee]);
    const global = new Set(globalRows.map((r) => r.p?.toString() ?? ''));
    const writes = (privileges: Iterable<string>): boolean => [...privileges].some((p) => ['INSERT', 'UPDATE', 'DELETE', 'DROP'].includes(p));
    const writableTables: string[] = [];
    for (const table of tables) {
      const parts = splitQualifiedName(table);
      const name = parts.at(-1) ?? table;
      const schemaRows = await session.query(parts.length > 1
        ? 'SELECT PRIVILEGE_TYPE AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ?'
        : 'SELECT PRIVILEGE_TYPE AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = DATABASE()', parts.length > 1 ? [grantee, parts[0]] : [grantee]);
      const tableRows = await session.query(parts.length > 1
        ? 'SELECT PRIVILEGE_TYPE AS p FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? AND TABLE_NAME = ?'
        : 'SELECT PRIVILEGE_TYPE AS p FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
      parts.length > 1 ? [grantee, parts[0], name] : [grantee, name]);
      if (writes(global) || writes(schemaRows.map((r) => r.p?.toString() ?? '')) || writes(tableRows.map((r) => r.p?.toString() ?? ''))) writableTables.push(table);
    }
    return { user: who, superuser: global.has('SUPER'), writableTables };
  },
  sourceWriteAccess: (_source, target, schemas) => mysqlSourceWriteAccess(target, schemas),
};
