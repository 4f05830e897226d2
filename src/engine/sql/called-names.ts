// The names of the functions (and PostgreSQL operators) a checked fragment calls, for the plan's
// look-up of functions defined in the source database (pipeline/defined-functions.ts).
//
// Why: the fragment check (fragments.ts) knows the engines' built-in functions, not what a database
// holds. A function someone created in the source runs with the migration's role whatever it does:
// the read-only transaction stops its writes, but not COPY … TO PROGRAM or a server file written by
// COPY … TO (allowed in a read-only transaction), locks, dblink of its own, or the other things the
// deny list refuses by name. And a fragment need not name it: PostgreSQL prefers a planted
// public.lower(varchar) to pg_catalog.lower(text) for a varchar argument (CVE-2018-1058), and a
// search_path that lists pg_catalog after public lets any planted name shadow a built-in.
import { loadModule, parseSync } from 'libpg-query';
import type { Engine } from '../db/dialect.ts';
import type { FragmentKind } from './lexical.ts';
import { mysqlTokens } from './lexical.ts';

await loadModule();

export interface CalledNames {
  /**
   * Function names as the server looks them up (PostgreSQL: case kept as parsed; MySQL: lower
   * case). PostgreSQL's include every part of a column reference: `o.f` calls f(o) when o has no
   * column f (functional notation).
   */
  functions: string[];
  /** PostgreSQL operator names (=, ~~, ||, a planted ===); none for MySQL, whose operators are fixed. */
  operators: string[];
  /** PostgreSQL type names cast to (`x::t`): a domain's CHECK runs on the cast. */
  types: string[];
  /**
   * PostgreSQL relations read, quoted as to_regclass reads them ("schema"."name"; CTE names come
   * along and resolve to nothing or a table): a view runs its definition, a table its row-level security policies.
   */
  relations: string[];
}

/** A_Expr kinds whose name is no operator: the operators PostgreSQL runs for them. */
const IMPLIED_OPERATORS: Record<string, readonly string[]> = {
  AEXPR_BETWEEN: ['>=', '<='], AEXPR_NOT_BETWEEN: ['>=', '<='], AEXPR_BETWEEN_SYM: ['>=', '<='], AEXPR_NOT_BETWEEN_SYM: ['>=', '<='],
};

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The last String of a name list ([pg_catalog, lower] → lower). */
function lastName(names: unknown): string | undefined {
  const parts = Array.isArray(names) ? (names as unknown[]) : [];
  const last: unknown = parts[parts.length - 1];
  return isObject(last) && isObject(last.String) && typeof last.String.sval === 'string' ? last.String.sval : undefined;
}

function postgresNames(kind: FragmentKind, text: string): CalledNames {
  const sql = kind === 'rule' ? text : kind === 'where' ? `SELECT 1 FROM dataops_fragment WHERE (${text})` : `SELECT (${text}) FROM dataops_fragment`;
  const functions = new Set<string>();
  const operators = new Set<string>();
  const types = new Set<string>();
  const relations = new Set<string>();
  const stack: unknown[] = [parseSync(sql)];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      stack.push(...(node as unknown[]));
      continue;
    }
    if (!isObject(node)) continue;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'FuncCall' && isObject(value)) {
        const name = lastName(value.funcname);
        if (name !== undefined) functions.add(name);
      }
      if (key === 'A_Expr' && isObject(value)) {
        const implied = typeof value.kind === 'string' ? IMPLIED_OPERATORS[value.kind] : undefined;
        const name = lastName(value.name);
        for (const operator of implied ?? (name === undefined ? [] : [name])) operators.add(operator);
      }
      // o.f and (o).f: field selection, a call of f(o) when o has no field f.
      const fields = key === 'ColumnRef' && isObject(value) ? value.fields : key === 'A_Indirection' && isObject(value) ? value.indirection : undefined;
      if (Array.isArray(fields)) {
        for (const part of fields as unknown[]) if (isObject(part) && isObject(part.String) && typeof part.String.sval === 'string') functions.add(part.String.sval);
      }
      if (key === 'RangeVar' && isObject(value) && typeof value.relname === 'string' && !(kind !== 'rule' && value.relname === 'dataops_fragment')) {
        const quoted = (name: string): string => `"${name.replaceAll('"', '""')}"`;
        relations.add(typeof value.schemaname === 'string' ? `${quoted(value.schemaname)}.${quoted(value.relname)}` : quoted(value.relname));
      }
      if (key === 'TypeCast' && isObject(value) && isObject(value.typeName)) {
        const name = lastName(value.typeName.names);
        if (name !== undefined) types.add(name);
      }
      if (typeof value === 'object' && value !== null) stack.push(value);
    }
  }
  return { functions: [...functions], operators: [...operators], types: [...types], relations: [...relations] };
}

/**
 * MySQL: every word or quoted name directly followed by '(' (db.f( included) is a function, every
 * other one a name that may be a relation (a view the look-up then reads), lower-cased as the
 * server compares routine names. Keywords and columns come along; they name no function or view
 * in a database, so the look-up finds nothing for them.
 */
export function mysqlNames(text: string): CalledNames {
  const tokens = mysqlTokens(text, 'fragment', 'one fragment').filter((t) => t.kind !== 'block-comment');
  const functions = new Set<string>();
  const relations = new Set<string>();
  for (const [index, token] of tokens.entries()) {
    if ((token.kind !== 'word' && token.kind !== 'quoted-name') || token.name === undefined) continue;
    const next = tokens[index + 1];
    if (next?.kind === 'punct' && next.text === '(') functions.add(token.name.toLowerCase());
    else if (token.kind === 'quoted-name' || !/^[\d.]+(e[+-]?\d+)?$/i.test(token.name)) relations.add(token.name.toLowerCase()); // a number names nothing
  }
  return { functions: [...functions], operators: [], types: [], relations: [...relations] };
}

/** What `text` (a fragment that passed its check for `kind`) calls on `engine`. */
export function calledNames(engine: Engine, kind: FragmentKind, text: string): CalledNames {
  return engine === 'postgres' ? postgresNames(kind, text) : mysqlNames(text);
}
