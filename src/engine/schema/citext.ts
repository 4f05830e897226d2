// MySQL's case-insensitive collations into PostgreSQL: the column becomes `citext` when the target
// has that extension or the target role may create it (a trusted extension: CREATE on the
// database). citext, not a nondeterministic ICU collation, because PostgreSQL refuses LIKE on
// nondeterministic collations (before 18), which would break the application's queries; citext
// keeps LIKE, and its unique keys ignore case as MySQL's do. The plan asks once (catalog reads
// only) and the same answer shapes the DDL the run executes. The extension is created, if
// missing, by the first CREATE TABLE that needs it, and never recorded: a rollback does not drop
// it, since other objects may have come to use it.
import type { SqlSession } from '../db/session.ts';

/** citext is used (`create`: the statement that installs it first, when missing), or why not. */
export type CitextChoice = { use: true; create?: string } | { use: false; why: string };

/** Case-insensitive MySQL collations: utf8mb4_general_ci, utf8mb4_uca1400_ai_ci, latin1_swedish_ci. */
export const foldsCase = (collation: string | undefined): boolean => collation !== undefined && /_ci(_|$)/i.test(collation);
/** A MySQL column that becomes citext when the target can have it: char, varchar, text with a _ci collation. */
export const becomesCitext = (column: { dataType: string; collation?: string | undefined }): boolean => CITEXT_SOURCES.has(column.dataType) && foldsCase(column.collation);
const CITEXT_SOURCES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);

/**
 * The length bound a citext column's CHECK keeps (as the plan creates it, and PostgreSQL prints it:
 * `((char_length((name)::text) <= 8))`): back into MySQL the column is varchar(n) again, which
 * reproduces that CHECK. Undefined for any other clause.
 */
export function citextBound(clause: string): { column: string; length: number } | undefined {
  const match = /^\(*char_length\(\(?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\)?(?:::text)?\)\s*<=\s*(\d+)\)*$/i.exec(clause.trim());
  if (!match?.[1] || !match[2]) return undefined;
  const quoted = match[1];
  return { column: quoted.startsWith('"') ? quoted.slice(1, -1).replaceAll('""', '"') : quoted.toLowerCase(), length: Number(match[2]) };
}

/** Source columns of PostgreSQL type citext whose length a CHECK bounds (citextBound), by name. */
export function citextBounds(table: { columns: readonly { name: string; dataType: string }[]; checks?: readonly { clause: string }[] | undefined }): Map<string, number> {
  const citext = new Set(table.columns.filter((c) => c.dataType === 'citext').map((c) => c.name));
  const bounds = new Map<string, number>();
  for (const check of table.checks ?? []) {
    const bound = citextBound(check.clause);
    if (bound && citext.has(bound.column) && bound.length <= 16383) bounds.set(bound.column, Math.min(bounds.get(bound.column) ?? Infinity, bound.length));
  }
  return bounds;
}

/** Accent-insensitive ones, which citext does not reproduce (it folds case only). */
export const foldsAccents = (collation: string | undefined): boolean => collation !== undefined && /_ai(_|$)/i.test(collation);

/**
 * Whether the target can have citext. Its type must resolve unqualified (the DDL writes `citext`),
 * so an installed citext counts only when its schema is on the role's search_path, and a missing
 * one is created in current_schema() (the first schema of that path, where unqualified tables go).
 */
export async function citextChoice(target: SqlSession): Promise<CitextChoice> {
  const [row] = await target.query(
    `SELECT (to_regtype('citext') IS NOT NULL)::int AS resolves,
            (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'citext') AS installed_in,
            (EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'citext'))::int AS available,
            (EXISTS (SELECT 1 FROM pg_catalog.pg_available_extension_versions WHERE name = 'citext' AND trusted))::int AS trusted,
            COALESCE((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false)::int AS superuser,
            has_database_privilege(current_database(), 'CREATE')::int AS create_on_database,
            current_schema() AS schema,
            (current_schema() IS NOT NULL AND has_schema_privilege(current_schema(), 'CREATE'))::int AS create_on_schema`,
  );
  if (!row) return { use: false, why: 'the target did not answer the citext check' };
  const installedIn = row.installed_in === null || row.installed_in === undefined ? undefined : String(row.installed_in);
  if (installedIn !== undefined) {
    return yes(row.resolves) ? { use: true } : { use: false, why: `citext is installed in schema ${installedIn}, which is not on the target role's search_path` };
  }
  if (!yes(row.available)) return { use: false, why: 'the extension citext is not available on the target server (its contrib package is not installed)' };
  const schema = row.schema === null || row.schema === undefined ? undefined : String(row.schema);
  if (schema === undefined) return { use: false, why: 'the target role\'s search_path names no schema to create the extension citext in' };
  const mayCreate = yes(row.superuser) || (yes(row.trusted) && yes(row.create_on_database));
  if (!mayCreate || !yes(row.create_on_schema)) {
    return { use: false, why: `the extension citext is not installed on the target and the target role may not create it (it needs CREATE on the database and on schema ${schema}; or an administrator runs CREATE EXTENSION citext)` };
  }
  return { use: true, create: `CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA ${target.dialect.quoteIdent(schema)}` };
}

const yes = (value: unknown): boolean => String(value) === '1';
