// What of the source schema a migration does not carry over, as notices the plan groups by reason
// (notices.ts): the objects around the migrated tables (views, routines, events, triggers; read
// by each engine's introspector) and, for each table the plan creates, what its DDL leaves out
// (CHECK constraints, collations, ON UPDATE options, domain rules, expression indexes). Pure: the
// reasons say where the objects are and what to do; the subjects name them.
import type { Engine } from '../db/dialect.ts';
import type { SqlSession } from '../db/session.ts';
import type { ColumnInfo, SchemaObject, TableInfo } from './model.ts';
import type { Notice } from './notices.ts';
import { becomesCitext, citextBound, citextBounds, foldsAccents, type CitextChoice } from './citext.ts';

const container = (engine: Engine, schema: string): string => (engine === 'postgres' ? `schema ${schema}` : `database ${schema}`);

/** The reason for one object the migration leaves on the source, naming where it is. */
export function objectReason(object: Pick<SchemaObject, 'kind' | 'schema'>, from: Engine): string {
  const where = container(from, object.schema);
  switch (object.kind) {
    case 'view': return `views of the source ${where} are not migrated (create them on the target after the migration)`;
    case 'materialized view': return `materialized views of the source ${where} are not migrated (create and refresh them on the target after the migration)`;
    case 'routine': return `routines (functions, procedures) of the source ${where} are not migrated (their code is ${from} SQL; rewrite them for the target)`;
    case 'event': return `scheduled events of the source ${where} are not migrated (schedule them on the target after the cutover)`;
    case 'trigger': return 'triggers on the migrated tables are not migrated (the target tables have none; recreate them after the copy, or the application loses what they did)';
    case 'policy': return 'row-level security policies on the migrated tables are not migrated (the target tables have none and do not enable row-level security: every row is visible to whoever may read the table)';
    case 'unseen': return `objects the source login cannot list in the source ${where} are not named here, and are not migrated either (its catalogs show only what its privileges cover; TRIGGER and EVENT would also let it change those objects, so rather list them as an administrator)`;
  }
}

/** One notice per object: `table.trigger` for triggers, the name for the rest. */
export function schemaObjectNotices(objects: readonly SchemaObject[], from: Engine): Notice[] {
  return objects.map((o) => ({ reason: objectReason(o, from), subject: o.table === undefined ? o.name : `${o.table}.${o.name}` }));
}

/** The source's views, routines, events and triggers around these tables (catalog reads on the read-only session). */
export async function readSchemaObjects(source: SqlSession, tables: readonly Pick<TableInfo, 'schema' | 'name'>[]): Promise<SchemaObject[]> {
  const scope = new Map(tables.map((t) => [`${t.schema}\0${t.name}`, { schema: t.schema, name: t.name }]));
  return source.dialect.introspector.objects(source, [...scope.values()]);
}

export const CARRY_OVER_REASONS = {
  checks: (from: Engine, to: Engine) => `CHECK constraints are not created on ${to === 'postgres' ? 'PostgreSQL' : 'MySQL'} (their expressions are ${from === 'postgres' ? 'PostgreSQL' : 'MySQL'} SQL; add them after the copy)`,
  checksRenamed: 'CHECK constraints of tables whose columns the manifest renames or skips are not created (add them after the copy)',
  checksNotValid: 'NOT VALID CHECK constraints are not created (existing rows may break them; add them after the copy)',
  caseInsensitive: 'case-insensitive (or accent-insensitive) collations are not reproduced: PostgreSQL compares these columns exactly, so a lookup or unique key that matched regardless of case on the source does not on the target (use citext or a nondeterministic ICU collation in a schema migration)',
  caseInsensitiveWhy: (why: string) => `case-insensitive collations are not reproduced: PostgreSQL compares these columns exactly, so a lookup or unique key that matched regardless of case on the source does not on the target (citext was not used: ${why}; or use citext or a nondeterministic ICU collation in a schema migration)`,
  citext: 'case-insensitive collations become citext: =, unique keys and LIKE ignore case as on the source; MySQL\'s accent equivalences (e = é in most _ci collations) and trailing-space padding are not reproduced',
  accentInsensitive: 'accent-insensitive collations (_ai) are reproduced in case only: these columns become citext, which folds case, not accents (a lookup of "e" that found "é" on the source does not on the target)',
  nondeterministic: 'nondeterministic (case- or accent-insensitive) collations are not reproduced: the target compares these columns exactly',
  collations: 'column collations other than the default are not reproduced (the target column sorts and compares by the target\'s default)',
  onUpdate: 'ON UPDATE CURRENT_TIMESTAMP is not reproduced: the target does not change these columns when a row is updated',
  domains: 'domain rules (CHECK, NOT NULL) are not reproduced: the column gets the domain\'s base type',
  spatialIndexes: 'SPATIAL indexes are not created (the spatial columns are bytes on the target; with PostGIS, convert them and create GiST indexes after the copy)',
  fulltextIndexes: 'FULLTEXT indexes are not created (PostgreSQL searches text with to_tsvector and a GIN index, queried differently; create one after the copy)',
  accessMethods: 'PostgreSQL gist, gin, brin and spgist indexes are not created on MySQL (it has no such index; create one fit for the column after the copy)',
  expressionIndexes: 'expression, partial and functional indexes, and those with an operator class of their own, are not created (they are not carried over column by column; create them after the copy)',
} as const;

export interface CarryOverInput {
  /** The table as the manifest names it (subjects are `name.object`). */
  name: string;
  source: TableInfo;
  to: Engine;
  /** The manifest renames or skips some of its columns. */
  columnsChanged: boolean;
  /** ON UPDATE options the target reproduces (a PostgreSQL trigger); the rest are named. */
  onUpdateReproduced: boolean;
  /** Domain columns whose rules the type map reproduced. */
  domainsReproduced: ReadonlySet<string>;
  /** MySQL → PostgreSQL: whether the created table's case-insensitive text columns are citext (citext.ts). */
  citext?: CitextChoice;
}

/** What the CREATE TABLE and post-copy DDL of one created table leave out, per object. */
export function carryOverNotices(input: CarryOverInput): Notice[] {
  const { source, to, name } = input;
  const from = source.engine;
  const notices: Notice[] = [];
  const add = (reason: string, subject: string): void => { notices.push({ reason, subject: `${name}.${subject}` }); };
  const bounds = from === 'postgres' && to === 'mysql' ? citextBounds(source) : new Map<string, number>();
  for (const check of source.checks ?? []) {
    // MariaDB's json_valid check is the JSON type itself, which both engines have; a citext
    // column's length bound becomes varchar(n) on MySQL (ddl.ts).
    if (check.jsonValid === true && from !== to) continue;
    const bound = citextBound(check.clause);
    if (bound !== undefined && bounds.get(bound.column) === bound.length) continue;
    const created = checkCreated(check, from, to, input.columnsChanged);
    if (created !== true) add(created, `${check.name} ${check.clause}`);
  }
  for (const column of source.columns) {
    const collation = collationReason(column, from, to, input.citext);
    if (collation !== undefined) add(collation, `${column.name} (${column.collation ?? ''})`);
    if (column.onUpdate !== undefined && !input.onUpdateReproduced && !(from === to)) add(CARRY_OVER_REASONS.onUpdate, column.name);
    const domain = column.domain;
    if (domain && (domain.checks.length > 0 || domain.notNull) && !input.domainsReproduced.has(column.name)) {
      add(CARRY_OVER_REASONS.domains, `${column.name} (domain ${domain.name}: ${[...domain.checks, ...(domain.notNull ? ['NOT NULL'] : [])].join(', ')})`);
    }
  }
  for (const index of source.skippedIndexes ?? []) add(CARRY_OVER_REASONS.expressionIndexes, index);
  for (const index of source.spatialIndexes ?? []) add(CARRY_OVER_REASONS.spatialIndexes, index);
  if (to !== 'mysql') for (const index of source.indexes) if (index.fulltext === true) add(CARRY_OVER_REASONS.fulltextIndexes, index.name);
  if (to === 'mysql' && from === 'postgres') {
    for (const index of [...source.uniqueKeys, ...source.indexes]) if (index.method !== undefined && index.method !== 'hash') add(CARRY_OVER_REASONS.accessMethods, `${index.name} (${index.method})`);
  }
  return notices;
}

/** True when the created table has the check (same engine, validated, columns as on the source); else why not. */
export function checkCreated(check: { notValidated?: boolean }, from: Engine, to: Engine, columnsChanged: boolean): true | string {
  if (from !== to) return CARRY_OVER_REASONS.checks(from, to);
  if (check.notValidated === true) return CARRY_OVER_REASONS.checksNotValid;
  if (columnsChanged) return CARRY_OVER_REASONS.checksRenamed;
  return true;
}

const BYTE_ORDER_COLLATIONS = new Set(['C', 'POSIX', 'ucs_basic']);

/** MySQL collation names that ignore case or accents: utf8mb4_general_ci, utf8mb4_uca1400_ai_ci, latin1_swedish_ci. */
export function isCaseInsensitiveCollation(collation: string): boolean {
  return /_(ci|ai)(_|$)/i.test(collation);
}

/** Why a column's collation is not reproduced on the target; undefined when it is (or does not matter). */
function collationReason(column: ColumnInfo, from: Engine, to: Engine, citext?: CitextChoice): string | undefined {
  const collation = column.collation;
  if (collation === undefined) return undefined;
  if (from === 'mysql') {
    // MySQL → MySQL keeps each column's charset and collation; into PostgreSQL text becomes citext
    // when the target can have it (typemap.ts), else PostgreSQL compares exactly.
    if (to !== 'postgres' || !isCaseInsensitiveCollation(collation)) return undefined;
    if (citext?.use === true && becomesCitext(column)) return foldsAccents(collation) ? CARRY_OVER_REASONS.accentInsensitive : CARRY_OVER_REASONS.citext;
    return citext?.use === false && becomesCitext(column) ? CARRY_OVER_REASONS.caseInsensitiveWhy(citext.why) : CARRY_OVER_REASONS.caseInsensitive;
  }
  // PostgreSQL lists a collation only when it is not the type's default; created tables use the
  // default, which on MySQL is utf8mb4_bin: code point order, as C and POSIX.
  if (column.collationNondeterministic === true) return CARRY_OVER_REASONS.nondeterministic;
  return to === 'mysql' && BYTE_ORDER_COLLATIONS.has(collation) ? undefined : CARRY_OVER_REASONS.collations;
}
