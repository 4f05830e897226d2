// Functions defined in the source database, refused where a manifest fragment would call them.
//
// Why (issue 13, found by attack): the fragment check knows the engines' built-ins; a function or
// operator someone created in the source database runs with the migration's role, whatever it does.
// The read-only transaction stops its writes to tables, but not what a read-only transaction allows:
// COPY … TO PROGRAM and COPY … TO a server file (a superuser source, accepted with
// acceptWritableRole), locks, sleeps, dblink's own connections. A fragment need not even name it:
// PostgreSQL prefers a planted public.lower(varchar) to pg_catalog.lower(text) for a varchar column
// (CVE-2018-1058), and a role's search_path can list pg_catalog after a schema holding look-alikes.
// So the plan looks up, on the source, every function and operator name the source-side fragments
// call, and refuses a name that a database-defined object carries (any schema, any argument types:
// over-refusing a harmless helper is the safe side). Built-ins (PostgreSQL objects below
// FirstNormalObjectId, 16384, made by initdb) and extension members (installed by an administrator;
// the dangerous ones, such as dblink, are denied by name) pass; MySQL's native functions are no
// stored routines. One more PostgreSQL look-up needs no fragment: a comparison operator (=, <, >
// …) defined in the database on a built-in type is preferred by the server to its own for that
// type, so the engine's own keyset and range comparisons would run it; the migration is refused.
// Every step asks it when it opens its sessions (steps.ts withSessions, and the
// validate step), before anything is written or any fragment runs.
import type { SqlSession } from '../db/session.ts';
import { PlanRefusedError } from './refused.ts';
import { calledNames, type CalledNames } from '../sql/called-names.ts';
import { EXPECTED, type FragmentKind } from '../sql/lexical.ts';
import type { ManifestSql } from '../sql/manifest-sql.ts';
import { pathKey } from '../sql/refusal.ts';

interface SourceFragment {
  field: string;
  kind: FragmentKind;
  text: string;
}

/** The fragments that run on the source: where, expression, default, and rules' source queries. */
export function sourceFragments(spec: ManifestSql): SourceFragment[] {
  const fragments: SourceFragment[] = [];
  for (const table of spec.tables ?? []) {
    const at = `spec.tables[${pathKey(table.name)}]`;
    if (table.where !== undefined) fragments.push({ field: `${at}.where`, kind: 'where', text: table.where });
    for (const column of table.columns ?? []) {
      const columnAt = `${at}.columns[${pathKey(column.name)}]`;
      if (column.expression !== undefined) fragments.push({ field: `${columnAt}.expression`, kind: 'expression', text: column.expression });
      if (column.default !== undefined) fragments.push({ field: `${columnAt}.default`, kind: 'default', text: column.default });
    }
  }
  for (const rule of spec.validation?.rules ?? []) {
    if (rule.source !== undefined) fragments.push({ field: `spec.validation.rules[${pathKey(rule.name)}].source`, kind: 'rule', text: rule.source });
  }
  return fragments;
}

/** Database-defined objects carrying one of the names: name → "schema.name" of each. */
interface Defined {
  functions: Map<string, string[]>;
  operators: Map<string, string[]>;
  /** Domains whose CHECK calls a database-defined function. */
  types: Map<string, string[]>;
  /** Comparison operators on built-in types and functions the engine's own statements use ("schema.op (left, right)", "schema.f(types)"). */
  engine: string[];
}

/** The operators the engine's own statements compare keys and ranges with. */
const ENGINE_COMPARISONS = ['=', '<>', '<', '>', '<=', '>='];
/**
 * The functions the engine's own statements call on the source (copy, shards, checksums,
 * canonical values), unqualified: an overload defined in the database for a column's exact type
 * (public.max(varchar), public.array_to_string(integer[], text)) is preferred to the built-in.
 */
const ENGINE_FUNCTIONS = ['abs', 'array_to_string', 'convert_to', 'count', 'decode', 'div', 'encode', 'floor', 'hashtext', 'ln', 'max', 'min',
  'octet_length', 'power', 'random', 'replace', 'row_number', 'rtrim', 'sha256', 'substr', 'sum', 'timezone', 'trim_scale'];

// Every name qualified with pg_catalog, operators spelled OPERATOR(pg_catalog.…): the session's
// search_path may put a schema holding look-alikes first (see db/postgres/adapter.ts identity()).
// "Defined in the database": an oid at or above FirstNormalObjectId, and no extension's member.
const NOT_BUILT_IN = (alias: string, catalog: string): string => `${alias}.oid OPERATOR(pg_catalog.>=) '16384'::pg_catalog.oid
     AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) '${catalog}'::pg_catalog.regclass
                       AND e.objid OPERATOR(pg_catalog.=) ${alias}.oid AND e.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog.char)`;
const POSTGRES_DEFINED = `
  SELECT 'f' AS what, p.proname::pg_catalog.text AS name, n.nspname::pg_catalog.text AS schema
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
   WHERE p.proname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]) AND ${NOT_BUILT_IN('p', 'pg_catalog.pg_proc')}
  UNION ALL
  SELECT 'o', o.oprname::pg_catalog.text, n.nspname::pg_catalog.text
    FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
   WHERE o.oprname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) AND ${NOT_BUILT_IN('o', 'pg_catalog.pg_operator')}
  UNION ALL
  SELECT 't', t.typname::pg_catalog.text, n.nspname::pg_catalog.text
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
   WHERE t.typtype OPERATOR(pg_catalog.=) 'd'::pg_catalog.char AND t.typname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.text[])
     AND EXISTS (SELECT FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_depend d
                   ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) c.oid
                  WHERE c.contypid OPERATOR(pg_catalog.=) t.oid AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.refobjid OPERATOR(pg_catalog.>=) '16384'::pg_catalog.oid)
  UNION ALL
  SELECT 'c', o.oprname::pg_catalog.text,
         pg_catalog.concat(n.nspname, '.', o.oprname, ' (', pg_catalog.format_type(o.oprleft, NULL), ', ', pg_catalog.format_type(o.oprright, NULL), ')')
    FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
   WHERE o.oprname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($4::pg_catalog.text[]) AND ${NOT_BUILT_IN('o', 'pg_catalog.pg_operator')}
     AND (o.oprleft OPERATOR(pg_catalog.<) '16384'::pg_catalog.oid OR o.oprright OPERATOR(pg_catalog.<) '16384'::pg_catalog.oid)
  UNION ALL
  SELECT 'c', p.proname::pg_catalog.text, pg_catalog.concat(n.nspname, '.', p.proname, '(', pg_catalog.pg_get_function_identity_arguments(p.oid), ')')
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
   WHERE p.proname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($5::pg_catalog.text[]) AND ${NOT_BUILT_IN('p', 'pg_catalog.pg_proc')}`;

async function definedObjects(source: SqlSession, called: CalledNames): Promise<Defined> {
  const defined: Defined = { functions: new Map(), operators: new Map(), types: new Map(), engine: [] };
  const add = (map: Map<string, string[]>, name: string, schema: string): void => {
    map.set(name, [...(map.get(name) ?? []), `${schema}.${name}`]);
  };
  if (source.engine === 'postgres') {
    const rows = await source.query(POSTGRES_DEFINED, [called.functions, called.operators, called.types, ENGINE_COMPARISONS, ENGINE_FUNCTIONS]);
    for (const row of rows) {
      const [what, name, schema] = [row.what?.toString(), row.name?.toString() ?? '', row.schema?.toString() ?? ''];
      if (what === 'c') defined.engine.push(schema);
      else add(what === 'o' ? defined.operators : what === 't' ? defined.types : defined.functions, name, schema);
    }
    return defined;
  }
  if (called.functions.length === 0) return defined;
  // Stored functions of every schema the role may run (information_schema lists those), compared
  // as the server does: routine names are case-insensitive. MySQL's operators are fixed.
  const rows = await source.query(
    `SELECT LOWER(ROUTINE_NAME) AS name, ROUTINE_SCHEMA AS \`schema\` FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' AND LOWER(ROUTINE_NAME) IN (${called.functions.map(() => '?').join(', ')})`,
    called.functions);
  for (const row of rows) add(defined.functions, row.name?.toString() ?? '', row.schema?.toString() ?? '');
  return defined;
}

/**
 * The plan's refusals of source-side fragments calling a function (or operator) defined in the
 * source database, one per field; empty when none does.
 */
export async function definedFunctionReasons(source: SqlSession, spec: ManifestSql): Promise<string[]> {
  const fragments = sourceFragments(spec).map((fragment) => ({ ...fragment, called: calledNames(source.engine, fragment.kind, fragment.text) }));
  const all = (pick: (called: CalledNames) => string[]): string[] => [...new Set(fragments.flatMap((f) => pick(f.called)))];
  const defined = await definedObjects(source, { functions: all((c) => c.functions), operators: all((c) => c.operators), types: all((c) => c.types) });
  const reasons: string[] = [];
  if (defined.engine.length > 0) {
    const more = defined.engine.length > 3 ? ` and ${String(defined.engine.length - 3)} more` : '';
    reasons.push(`the source database defines ${defined.engine.slice(0, 3).join(', ')}${more}, named like the built-in comparisons and functions the engine's own statements use: `
      + 'PostgreSQL may prefer such a look-alike to its built-in for a column\'s type, and the copy, shards or checksums would run it with the migration\'s role; '
      + 'drop it, or copy from a database without it');
  }
  for (const fragment of fragments) {
    const found = [
      ...fragment.called.functions.flatMap((name) => (defined.functions.get(name) ?? []).map((q) => `the function ${q}()`)),
      ...fragment.called.operators.flatMap((name) => (defined.operators.get(name) ?? []).map((q) => `the operator ${q}`)),
      ...fragment.called.types.flatMap((name) => (defined.types.get(name) ?? []).map((q) => `the domain ${q} (its CHECK calls a function)`)),
    ];
    if (found.length === 0) continue;
    const named = found.length > 3 ? `${found.slice(0, 3).join(', ')} and ${String(found.length - 3)} more` : found.join(', ');
    reasons.push(`${fragment.field}: expected ${EXPECTED[fragment.kind]}; found a call that reaches ${named}, defined in the source database: `
      + 'it would run with the migration\'s role (a read-only transaction does not stop what it may do besides writing tables); '
      + 'a fragment may call only built-in and extension functions');
  }
  return reasons;
}

/** Throws PlanRefusedError when a source-side fragment of `spec` calls a function defined in the source. */
export async function refuseDefinedFunctions(source: SqlSession, spec: ManifestSql): Promise<void> {
  const reasons = await definedFunctionReasons(source, spec);
  if (reasons.length > 0) throw new PlanRefusedError(reasons);
}
