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
// Nor need a fragment exist: casts, types, domains, row-level security policies and views run code
// of the database's while the engine reads (implicitCodeReasons below), refused alike; MySQL's
// loadable functions (UDFs) are refused by name when mysql.func is readable. Every step asks it
// when it opens its sessions (steps.ts withSessions, and the validate step), before anything is
// written or any fragment runs.
import type { SqlSession } from '../db/session.ts';
import { PlanRefusedError } from './refused.ts';
import { calledNames, mysqlNames, type CalledNames } from '../sql/called-names.ts';
import { EXPECTED, type FragmentKind } from '../sql/lexical.ts';
import type { ManifestSql } from '../sql/manifest-sql.ts';
import { pathKey } from '../sql/refusal.ts';
import { listTables } from '../schema/introspect.ts';

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
  /** Types a cast to runs a database-defined input or cast function for. */
  inputs: Map<string, string[]>;
  /** MySQL loadable functions (UDFs, mysql.func). */
  udfs: Map<string, string[]>;
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
/** The function `oid` is defined in the database: not made by initdb, no extension's member (0, none, is built in). */
export const DEFINED_PROC = (oid: string): string => `(${oid} OPERATOR(pg_catalog.>=) '16384'::pg_catalog.oid
     AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend member WHERE member.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                       AND member.objid OPERATOR(pg_catalog.=) ${oid} AND member.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog."char"))`;
const POSTGRES_DEFINED = `
  SELECT 'f' AS what, p.proname::pg_catalog.text AS name, n.nspname::pg_catalog.text AS schema
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
   WHERE p.proname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]) AND ${NOT_BUILT_IN('p', 'pg_catalog.pg_proc')}
  UNION ALL
  SELECT 'o', o.oprname::pg_catalog.text, n.nspname::pg_catalog.text
    FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
   WHERE o.oprname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) AND ${NOT_BUILT_IN('o', 'pg_catalog.pg_operator')}
  UNION ALL
  SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_depend d
                   ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) c.oid
                  WHERE c.contypid OPERATOR(pg_catalog.=) t.oid AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.refobjid OPERATOR(pg_catalog.>=) '16384'::pg_catalog.oid) THEN 't' ELSE 'b' END,
         t.typname::pg_catalog.text, n.nspname::pg_catalog.text
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
   WHERE t.typname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.text[])
     AND (EXISTS (SELECT FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_depend d
                   ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) c.oid
                  WHERE c.contypid OPERATOR(pg_catalog.=) t.oid AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                    AND d.refobjid OPERATOR(pg_catalog.>=) '16384'::pg_catalog.oid)
          -- a cast to a base type runs its input function, or a cast function of the database's
          OR EXISTS (SELECT FROM pg_catalog.unnest(ARRAY[t.typinput::pg_catalog.oid, t.typreceive::pg_catalog.oid, t.typmodin::pg_catalog.oid]) AS f(oid) WHERE ${DEFINED_PROC('f.oid')})
          OR EXISTS (SELECT FROM pg_catalog.pg_cast k WHERE k.casttarget OPERATOR(pg_catalog.=) t.oid AND ${DEFINED_PROC('k.castfunc')}))
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

// Code defined in the database that runs with no fragment naming it, while the engine reads the
// copied tables (issue 13, found by attack): a cast with a function of the database's from a
// column's type or a built-in one (the checksums and canonical values cast ::text), a type's
// input/output/send/receive functions (COPY … TO STDOUT calls the output function of every column,
// of an array's elements and a composite's fields), a domain's CHECK, a range's canonical and
// comparison functions, row-level security policies that apply to the role (and, through the
// relations their subqueries read, those relations' policies and views' rules), a table access
// method, and what runs at every connection (a login event trigger, PostgreSQL 17) or on every
// conversion (a default encoding conversion). Fragments' relations are roots too: a view a where
// reads runs its definition. Triggers do not fire on reads, and the engine runs no DDL on the
// source, so other event triggers never fire for it (the integration test proves both).
const EQ = 'OPERATOR(pg_catalog.=)';
const CLASS = (name: string): string => `'pg_catalog.${name}'::pg_catalog.regclass::pg_catalog.oid`;
/** The functions an expression object (policy, rule, constraint) calls, directly or through an operator. */
const CALLS = (classid: string, objid: string): string => `(
      SELECT d.refobjid FROM pg_catalog.pg_depend d WHERE d.classid ${EQ} ${classid} AND d.objid ${EQ} ${objid} AND d.refclassid ${EQ} ${CLASS('pg_proc')}
      UNION ALL
      SELECT o.oprcode::pg_catalog.oid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_operator o ON o.oid ${EQ} d.refobjid
       WHERE d.classid ${EQ} ${classid} AND d.objid ${EQ} ${objid} AND d.refclassid ${EQ} ${CLASS('pg_operator')})`;
const FN = (oid: string): string => `${oid}::pg_catalog.regprocedure::pg_catalog.text`;
const TYPE = (oid: string): string => `pg_catalog.format_type(${oid}, NULL)`;
/** $1: the copied tables and $3 their names, $2: the relations fragments read (quoted as to_regclass reads them). Rows: where, column, what. */
const POSTGRES_IMPLICIT = `
  WITH RECURSIVE
  copied(copied, oid) AS (
    SELECT pg_catalog.concat('table ', m.label), l.relid FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($3::pg_catalog.text[])) AS m(name, label)
      -- the table itself (a plain table has no partition tree) and a partitioned one's partitions
      CROSS JOIN LATERAL (SELECT pg_catalog.to_regclass(m.name)::pg_catalog.oid
                          UNION SELECT p.relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass(m.name)) p) AS l(relid)
     -- only tables are copied (the plan says a view or another relation does not exist as one)
     WHERE EXISTS (SELECT FROM pg_catalog.pg_class k WHERE k.oid ${EQ} l.relid AND k.relkind ${EQ} ANY ('{r,p}'::pg_catalog."char"[]))),
  roots(root, oid) AS (
    SELECT * FROM copied
    UNION SELECT pg_catalog.concat('the relation ', m.name, ' a fragment reads'), pg_catalog.to_regclass(m.name)::pg_catalog.oid
      FROM pg_catalog.unnest($2::pg_catalog.text[]) AS m(name)
     WHERE pg_catalog.to_regclass(m.name) IS NOT NULL),
  column_types(copied, column_name, type) AS (
    SELECT c.copied, a.attname::pg_catalog.text, a.atttypid FROM copied c JOIN pg_catalog.pg_attribute a ON a.attrelid ${EQ} c.oid
     WHERE a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
    UNION
    SELECT ct.copied, ct.column_name, inner_type.oid FROM column_types ct JOIN pg_catalog.pg_type t ON t.oid ${EQ} ct.type
      CROSS JOIN LATERAL (
        SELECT t.typelem WHERE t.typelem OPERATOR(pg_catalog.<>) 0
        UNION ALL SELECT t.typbasetype WHERE t.typbasetype OPERATOR(pg_catalog.<>) 0
        UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
                   WHERE t.typrelid OPERATOR(pg_catalog.<>) 0 AND a.attrelid ${EQ} t.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
        UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid ${EQ} t.oid
        UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid ${EQ} t.oid) AS inner_type(oid)),
  reached(root, classid, objid) AS (
    SELECT r.root, next.classid, next.objid FROM roots r CROSS JOIN LATERAL (
      SELECT ${CLASS('pg_policy')}, p.oid FROM pg_catalog.pg_policy p
       WHERE p.polrelid ${EQ} r.oid AND p.polcmd ${EQ} ANY ('{*,r}'::pg_catalog."char"[]) AND pg_catalog.row_security_active(r.oid)
      UNION ALL
      SELECT ${CLASS('pg_rewrite')}, w.oid FROM pg_catalog.pg_rewrite w WHERE w.ev_class ${EQ} r.oid AND w.ev_type ${EQ} '1'::pg_catalog."char") AS next(classid, objid)
    UNION
    SELECT r.root, next.classid, next.objid FROM reached r
      JOIN pg_catalog.pg_depend d ON d.classid ${EQ} r.classid AND d.objid ${EQ} r.objid AND d.refclassid ${EQ} ${CLASS('pg_class')}
      CROSS JOIN LATERAL (
        SELECT ${CLASS('pg_policy')}, p.oid FROM pg_catalog.pg_policy p
         WHERE p.polrelid ${EQ} d.refobjid AND p.polcmd ${EQ} ANY ('{*,r}'::pg_catalog."char"[]) AND pg_catalog.row_security_active(d.refobjid)
        UNION ALL
        SELECT ${CLASS('pg_rewrite')}, w.oid FROM pg_catalog.pg_rewrite w WHERE w.ev_class ${EQ} d.refobjid AND w.ev_type ${EQ} '1'::pg_catalog."char") AS next(classid, objid))
  SELECT ct.copied AS copied, ct.column_name AS column_name,
         pg_catalog.concat('the type ', ${TYPE('t.oid')}, ' (its ', f.role, ' function ', ${FN('f.oid')}, ')') AS what
    FROM column_types ct JOIN pg_catalog.pg_type t ON t.oid ${EQ} ct.type
    CROSS JOIN LATERAL (VALUES ('input', t.typinput::pg_catalog.oid), ('output', t.typoutput::pg_catalog.oid), ('receive', t.typreceive::pg_catalog.oid),
      ('send', t.typsend::pg_catalog.oid), ('type modifier input', t.typmodin::pg_catalog.oid), ('type modifier output', t.typmodout::pg_catalog.oid),
      ('analyze', t.typanalyze::pg_catalog.oid), ('subscript', t.typsubscript::pg_catalog.oid)) AS f(role, oid)
   WHERE ${DEFINED_PROC('f.oid')}
  UNION ALL
  SELECT ct.copied, ct.column_name, pg_catalog.concat('the domain ', ${TYPE('c.contypid')}, ' (its CHECK ', c.conname, ' calls ', ${FN('calls.oid')}, ')')
    FROM column_types ct JOIN pg_catalog.pg_constraint c ON c.contypid ${EQ} ct.type
    CROSS JOIN LATERAL ${CALLS(CLASS('pg_constraint'), 'c.oid')} AS calls(oid) WHERE ${DEFINED_PROC('calls.oid')}
  UNION ALL
  SELECT ct.copied, ct.column_name, pg_catalog.concat('the range type ', ${TYPE('r.rngtypid')}, ' (it calls ', ${FN('f.oid')}, ')')
    FROM column_types ct JOIN pg_catalog.pg_range r ON r.rngtypid ${EQ} ct.type
    CROSS JOIN LATERAL (SELECT r.rngcanonical::pg_catalog.oid UNION ALL SELECT r.rngsubdiff::pg_catalog.oid
      UNION ALL SELECT ap.amproc::pg_catalog.oid FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily ${EQ} oc.opcfamily
       WHERE oc.oid ${EQ} r.rngsubopc) AS f(oid) WHERE ${DEFINED_PROC('f.oid')}
  UNION ALL
  SELECT NULL, NULL, pg_catalog.concat('the cast (', ${TYPE('k.castsource')}, ' AS ', ${TYPE('k.casttarget')}, ') WITH FUNCTION ', ${FN('k.castfunc')},
           CASE WHEN used.columns IS NOT NULL THEN pg_catalog.concat(' (', pg_catalog.array_to_string(used.columns[1:3], '; '), ')') END)
    FROM pg_catalog.pg_cast k
    CROSS JOIN LATERAL (SELECT pg_catalog.array_agg(DISTINCT pg_catalog.concat(ct.copied, ', column ', ct.column_name)) FROM column_types ct
                         WHERE ct.type ${EQ} k.castsource) AS used(columns)
   WHERE ${DEFINED_PROC('k.castfunc')} AND (used.columns IS NOT NULL OR k.castsource OPERATOR(pg_catalog.<) '16384'::pg_catalog.oid
     OR k.casttarget OPERATOR(pg_catalog.<) '16384'::pg_catalog.oid OR k.casttarget ${EQ} ANY (SELECT ct.type FROM column_types ct))
  UNION ALL
  SELECT r.root, NULL, pg_catalog.concat(pg_catalog.pg_describe_object(r.classid, r.objid, 0),
         CASE WHEN r.classid ${EQ} ${CLASS('pg_policy')} THEN ' (row-level security applies to the source role)' ELSE '' END, ' calls ', ${FN('calls.oid')})
    FROM reached r CROSS JOIN LATERAL ${CALLS('r.classid', 'r.objid')} AS calls(oid) WHERE ${DEFINED_PROC('calls.oid')}
  UNION ALL
  SELECT c.copied, NULL, pg_catalog.concat('the table access method ', am.amname, ' (its handler ', ${FN('am.amhandler')}, ')')
    FROM copied c JOIN pg_catalog.pg_class k ON k.oid ${EQ} c.oid JOIN pg_catalog.pg_am am ON am.oid ${EQ} k.relam WHERE ${DEFINED_PROC('am.amhandler')}
  UNION ALL
  SELECT NULL, NULL, pg_catalog.concat('the login event trigger ', e.evtname, ' (it calls ', ${FN('e.evtfoid')}, ' at every connection)')
    FROM pg_catalog.pg_event_trigger e
   WHERE e.evtevent ${EQ} 'login' AND e.evtenabled OPERATOR(pg_catalog.<>) 'D'::pg_catalog."char" AND ${DEFINED_PROC('e.evtfoid')}
  UNION ALL
  SELECT NULL, NULL, pg_catalog.concat('the default conversion ', v.conname, ' (', ${FN('v.conproc')}, ')')
    FROM pg_catalog.pg_conversion v WHERE v.condefault AND ${DEFINED_PROC('v.conproc')}`;

/**
 * Code defined in the source database that reading the copied tables (or the relations the
 * fragments read) would run without a fragment naming it, one reason per table or column.
 */
async function implicitCodeReasons(source: SqlSession, spec: ManifestSql, relations: readonly string[]): Promise<string[]> {
  if (source.engine !== 'postgres') return mysqlViewReasons(source, relations);
  const names = (spec.tables ?? []).length > 0 ? (spec.tables ?? []).map((t) => t.name) : await listTables(source);
  const quote = (name: string): string => source.dialect.quoteQualified(name);
  const rows = await source.query(POSTGRES_IMPLICIT, [names.map(quote), relations, names]);
  const found = new Map<string, string[]>();
  for (const row of rows) {
    const [table, column, what] = [row.copied?.toString(), row.column_name?.toString(), row.what?.toString() ?? ''];
    const at = table === undefined ? 'the source database' : column === undefined ? table : `${table}, column ${column}`;
    if (!(found.get(at) ?? []).includes(what)) found.set(at, [...(found.get(at) ?? []), what]);
  }
  return [...found].map(([at, whats]) => `${at}: ${whats.slice(0, 3).join(', ')}${whats.length > 3 ? ` and ${String(whats.length - 3)} more` : ''}, defined in the source database, `
    + 'would run with the migration\'s role while the engine reads the source, with no fragment naming it (a read-only transaction does not stop what it may do besides writing tables); '
    + `drop it, or move it into an extension (what an extension installs is accepted)${at.startsWith('table ') ? ', or leave the table out of spec.tables' : ''}`);
}

async function definedObjects(source: SqlSession, called: CalledNames): Promise<Defined> {
  const defined: Defined = { functions: new Map(), operators: new Map(), types: new Map(), inputs: new Map(), udfs: new Map(), engine: [] };
  const add = (map: Map<string, string[]>, name: string, schema: string): void => {
    map.set(name, [...(map.get(name) ?? []), `${schema}.${name}`]);
  };
  if (source.engine === 'postgres') {
    const rows = await source.query(POSTGRES_DEFINED, [called.functions, called.operators, called.types, ENGINE_COMPARISONS, ENGINE_FUNCTIONS]);
    for (const row of rows) {
      const [what, name, schema] = [row.what?.toString(), row.name?.toString() ?? '', row.schema?.toString() ?? ''];
      if (what === 'c') defined.engine.push(schema);
      else add(what === 'o' ? defined.operators : what === 't' ? defined.types : what === 'b' ? defined.inputs : defined.functions, name, schema);
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
  // Loadable functions (UDFs: C code a .so brought in, such as lib_mysqludf_sys's sys_exec) are no
  // routines; mysql.func lists them, when the role may read it. When it may not (a least-privilege
  // role, as the README recommends), only the deny list (sql/deny-list.ts) names the known ones.
  const udfs = await source.query(
    `SELECT LOWER(name) AS name FROM mysql.func WHERE LOWER(name) IN (${called.functions.map(() => '?').join(', ')})`, called.functions,
  ).catch(() => []);
  for (const row of udfs) defined.udfs.set(row.name?.toString() ?? '', [row.name?.toString() ?? '']);
  return defined;
}

/** How deep views reading views are followed before the fragment is refused as unreadable. */
const MAX_VIEW_DEPTH = 8;

/**
 * MySQL: the views a fragment reads (any name it mentions that is a view of a schema the role
 * sees), followed through the views they read, whose definitions call a stored function or a
 * loadable function (UDF). Such a view runs that code with the migration's role (or, SQL SECURITY
 * DEFINER, its definer's) when the fragment reads it; a read-only transaction does not stop a
 * function's INTO OUTFILE. Names are compared case-insensitively (over-refusing is the safe side).
 */
async function mysqlViewReasons(source: SqlSession, mentioned: readonly string[]): Promise<string[]> {
  if (mentioned.length === 0) return [];
  const routines = new Set((await source.query("SELECT LOWER(ROUTINE_NAME) AS name FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION'"))
    .map((row) => row.name?.toString() ?? ''));
  for (const row of await source.query('SELECT LOWER(name) AS name FROM mysql.func').catch(() => [])) routines.add(row.name?.toString() ?? '');
  const reasons: string[] = [];
  const seen = new Set<string>();
  let names = [...new Set(mentioned)];
  for (let depth = 0; names.length > 0; depth++) {
    const views = await source.query(
      `SELECT TABLE_SCHEMA AS \`schema\`, TABLE_NAME AS name, VIEW_DEFINITION AS definition FROM information_schema.VIEWS WHERE LOWER(TABLE_NAME) IN (${names.map(() => '?').join(', ')})`, names);
    const next: string[] = [];
    for (const view of views) {
      const qualified = `${view.schema?.toString() ?? ''}.${view.name?.toString() ?? ''}`;
      if (seen.has(qualified)) continue;
      seen.add(qualified);
      if (depth >= MAX_VIEW_DEPTH) {
        reasons.push(`the view ${qualified}: read through more than ${String(MAX_VIEW_DEPTH)} views, which the plan does not follow; read the tables instead`);
        continue;
      }
      let read: CalledNames;
      try {
        read = mysqlNames(view.definition?.toString() ?? '');
      } catch {
        reasons.push(`the view ${qualified}: its definition could not be read to see what it calls; read the tables instead`);
        continue;
      }
      const calls = read.functions.filter((name) => routines.has(name.split('.').at(-1) ?? name));
      if (calls.length > 0) {
        reasons.push(`the view ${qualified}, which a fragment reads, calls ${calls.slice(0, 3).map((name) => `${name}()`).join(', ')}, defined in the source database: `
          + 'it would run with the migration\'s role (or the view\'s definer\'s); drop it or read the tables instead');
      }
      next.push(...read.relations);
    }
    names = [...new Set(next)].filter((name) => ![...seen].some((q) => q.toLowerCase().endsWith(`.${name}`)));
  }
  return reasons;
}

/**
 * The plan's refusals of source-side fragments calling a function (or operator) defined in the
 * source database, one per field, and of such code that reading the tables would run; empty when none.
 */
export async function definedFunctionReasons(source: SqlSession, spec: ManifestSql): Promise<string[]> {
  const fragments = sourceFragments(spec).map((fragment) => ({ ...fragment, called: calledNames(source.engine, fragment.kind, fragment.text) }));
  const all = (pick: (called: CalledNames) => string[]): string[] => [...new Set(fragments.flatMap((f) => pick(f.called)))];
  const defined = await definedObjects(source, { functions: all((c) => c.functions), operators: all((c) => c.operators), types: all((c) => c.types), relations: [] });
  const reasons: string[] = await implicitCodeReasons(source, spec, all((c) => c.relations));
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
      ...fragment.called.types.flatMap((name) => (defined.inputs.get(name) ?? []).map((q) => `the type ${q} (its input or cast function)`)),
      ...fragment.called.functions.flatMap((name) => (defined.udfs.get(name) ?? []).map((q) => `the loadable function (UDF) ${q}()`)),
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
