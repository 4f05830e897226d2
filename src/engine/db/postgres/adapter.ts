// PostgreSQL as the engine sees it: quoting, transactional DDL, advisory locks, bookkeeping
// types and the SQL fragments that differ from MySQL's.
import type { DatabaseAdapter } from '../adapter.ts';
import { splitQualifiedName } from '../dialect.ts';
import type { SqlSession } from '../session.ts';
import { postgresIntrospector } from './introspect.ts';
import { postgresSourceWriteAccess } from './reach.ts';

const MAX_BIGINT = (1n << 63n) - 1n;

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * A string literal as PostgreSQL's quote_literal spells it: E'…' with doubled backslashes when the
 * value holds one, so it means the same text whatever standard_conforming_strings says (a server
 * with it off would otherwise end the literal at \' and run what follows).
 */
export const quotePostgresLiteral = (value: string): string => (value.includes('\\')
  ? `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`
  : `'${value.replaceAll("'", "''")}'`);

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

export const postgresAdapter: DatabaseAdapter = {
  engine: 'postgres',
  displayName: 'PostgreSQL',
  quoteIdent,
  quoteQualified: (name) => splitQualifiedName(name).map(quoteIdent).join('.'),
  placeholder: (n) => `$${n}`,
  quoteLiteral: quotePostgresLiteral,

  transactionalDdl: true,
  beginStatement: 'BEGIN',
  bookkeeping: {
    keyText: () => 'text',
    longText: 'text',
    timestamp: 'timestamptz',
    timestampDefault: 'now()',
    utcNow: 'now()',
    boolean: 'boolean',
    tableOptions: '',
  },
  namedEnumTypes: true,
  storageEngine: undefined,
  zeroDates: false,
  bulkFormat: 'copy-text',
  // TRUNCATE and DROP take related tables in one statement; there is nothing to turn off.
  foreignKeyChecks: undefined,
  currentUserSql: 'SELECT current_user AS who',
  // Advisory locks belong to one database.
  lockScope: 'database',
  currentDatabaseSql: 'SELECT pg_catalog.current_database() AS db',
  // An unqualified name resolves through search_path to an existing table first.
  tableSchemaSql: 'SELECT COALESCE((SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)), pg_catalog.current_schema()) AS s',
  utcTimestampLiteral: (instant) => `CAST('${instant.toISOString().replace('T', ' ').replace('Z', '')}+00' AS timestamptz)`,
  randomSql: 'random()',
  scriptSyntax: {
    delimiterCommand: false,
    backslashEscapes: false,
    doubleQuotedStrings: false,
    backtickIdentifiers: false,
    hashComments: false,
    dashCommentNeedsSpace: false,
    nestedBlockComments: true,
    executableComments: false,
    dollarQuotes: true,
  },
  introspector: postgresIntrospector,

  sessionSetup: ({ readOnly }) => ({
    startupOptions: [
      '-c TimeZone=UTC', '-c client_encoding=UTF8', '-c standard_conforming_strings=on', '-c DateStyle=ISO', '-c IntervalStyle=iso_8601', '-c extra_float_digits=3',
      // The engine's statements are catalog reads (whose cost estimates are inflated enough to be
      // JIT-compiled: 1.3 s for a query that runs in 10 ms, measured by npm run bench:trickle),
      // COPY streams and per-range checksums: none gains from JIT, all pay its compile time.
      '-c jit=off',
      ...(readOnly ? ['-c default_transaction_read_only=on'] : []),
    ],
    statements: [],
  }),
  tableExistsQuery: (table, schema) => ({
    sql: `SELECT 1 AS found FROM information_schema.tables WHERE table_schema = ${schema ? '$2' : 'current_schema()'} AND table_name = $1`,
    params: schema ? [table, schema] : [table],
  }),
  truncateStatements: (tables) => (tables.length > 0 ? [`TRUNCATE TABLE ${tables.join(', ')}`] : []),
  booleanParam: (value) => value,
  booleanLiteral: (value) => (value ? 'true' : 'false'),
  onConflictSql: (key, update) => (update.length > 0
    ? ` ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${update.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`
    : ` ON CONFLICT (${key.join(', ')}) DO NOTHING`),
  // No backslash to be read two ways (see quotePostgresLiteral).
  bytesLiteral: (bytes) => `pg_catalog.decode('${bytes.toString('hex')}', 'hex')`,
  sha256HexSql: (e) => `encode(sha256(convert_to(${e}, 'UTF8')), 'hex')`,
  timestampMinusSecondsSql: (literal, seconds) => `CAST(${literal} AS timestamp) - interval '${String(seconds)} seconds'`,
  joinAsTextSql: (expressions, separator) => expressions.map((e) => `${e}::text`).join(` || ${separator} || `),
  truncatingDivisionSql: (dividend, divisor, integral) => (!integral || divisor > MAX_BIGINT
    ? `div(${dividend}::numeric, ${divisor.toString()}::numeric)`
    : `(${dividend} / ${divisor.toString()}::bigint)`),
  offsetDivisionSql: (column, offset, divisor) => `div(${column}::numeric - ${offset.toString()}::numeric, ${divisor.toString()}::numeric)`,

  async acquireLock(session: SqlSession, name: string, timeoutSeconds: number) {
    // Advisory locks wait forever; lock_timeout bounds the wait and is put back afterwards.
    const [previous] = await session.query("SELECT current_setting('lock_timeout') AS value");
    await session.query("SELECT set_config('lock_timeout', $1, false)", [`${Math.max(1, Math.round(timeoutSeconds * 1000))}ms`]);
    try {
      await session.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
      return { outcome: 'acquired' };
    } catch (error) {
      if (errorCode(error) === '55P03') return { outcome: 'timeout' };
      throw error;
    } finally {
      await session.query("SELECT set_config('lock_timeout', $1, false)", [previous?.value?.toString() ?? '0']);
    }
  },
  async tryLock(session: SqlSession, name: string) {
    const [row] = await session.query('SELECT pg_try_advisory_lock(hashtext($1)) AS taken', [name]);
    return ['t', 'true', '1'].includes(row?.taken?.toString() ?? '');
  },
  async releaseLock(session: SqlSession, name: string) {
    await session.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
  },
  serverFlavor: () => Promise.resolve(undefined),
  // Catalog queries name every function, relation, type and operator with pg_catalog: a role may
  // set its own search_path (ALTER ROLE … SET search_path = evil, pg_catalog) ahead of pg_catalog
  // and shadow any unqualified name with its own function returning what it likes.
  async identity(session: SqlSession) {
    const [row] = await session.query(`SELECT (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())::pg_catalog.text AS db_oid,
      pg_catalog.current_database() AS db_name, pg_catalog.pg_is_in_recovery()::pg_catalog.text AS in_recovery,
      extract(epoch FROM pg_catalog.pg_postmaster_start_time())::pg_catalog.text AS started`);
    // Revocable by an administrator (then the start time stands in: see db/identity.ts). Asked
    // first, not tried: a failed call would abort a transaction the caller may have open.
    const [allowed] = await session.query("SELECT pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')::pg_catalog.text AS ok");
    const system = allowed?.ok?.toString() === 'true' ? await session.query('SELECT s.system_identifier::pg_catalog.text AS id FROM pg_catalog.pg_control_system() s') : [];
    const started = row?.started?.toString();
    return {
      server: system[0]?.id?.toString(),
      fallbackServer: `started at ${started ?? '?'}`,
      database: row?.db_oid?.toString() ?? '',
      databaseName: row?.db_name?.toString() ?? '',
      inRecovery: row?.in_recovery?.toString() === 'true',
      started,
    };
  },
  async rolePrivileges(session: SqlSession, tables: readonly string[]) {
    const [role] = await session.query('SELECT CURRENT_USER AS who, r.rolsuper::pg_catalog.text AS super FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER');
    const writableTables: string[] = [];
    for (const table of tables) {
      const [row] = await session.query("SELECT pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), 'INSERT, UPDATE, DELETE, TRUNCATE')::pg_catalog.text AS writes",
        [splitQualifiedName(table).map(quoteIdent).join('.')]);
      if (row?.writes?.toString() === 'true') writableTables.push(table);
    }
    return { user: role?.who?.toString() ?? '', superuser: role?.super?.toString() === 'true', writableTables };
  },
  // The whole source database, whatever the tables: its catalog lists them all.
  sourceWriteAccess: (source, target) => postgresSourceWriteAccess(source, target),
};
