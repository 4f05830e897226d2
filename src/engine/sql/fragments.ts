// Confines the SQL a manifest may carry (a table's `where`, a column's `expression` and
// `default`, validation rules) to the one thing each field may be, before any session opens.
//
// Why a parser, a deny list, a read-only transaction and a one-statement protocol, together:
// none of them is enough alone, and each covers what the others miss.
//  1. This module (the first layer) reads each fragment with the engine's grammar, embedded in a
//     fixed statement, and accepts it only when the tree is exactly that statement with the
//     fragment in its one place: a where is one condition inside WHERE ( … ), an expression one
//     value, a rule one SELECT. Its tokens may not end the statement (;), close the engine's
//     parenthesis, comment out what follows, or hide executable MySQL comments. Then it walks
//     the tree and refuses data-modifying statements (a DELETE inside a CTE), INTO, locking
//     reads, assignments, bind parameters, and calls of denied functions (deny-list.ts).
//     A deny list can never be complete (extensions and user functions can do anything), which
//     is why it is not the only layer.
//  2. The server (the second layer): every source session is READ ONLY at the transaction level,
//     opened by the engine before any fragment runs. With layer 1 a fragment cannot end that
//     transaction (no ';', no COMMIT inside an expression), so writes through tables,
//     sequences and most side-effecting functions fail in the server whatever a fragment calls.
//     It does not stop what a read-only transaction allows: locks, signals to other backends,
//     reads of server files, connections of their own (dblink), sleeps; layer 1 does.
//  3. The protocol (the third layer): statements built from fragments are sent one at a time
//     (PostgreSQL's extended protocol; mysql2 without multipleStatements), so even a fragment that
//     slipped past layer 1 cannot stack a second statement, such as COMMIT; BEGIN READ WRITE.
// The checks are pure and fast: sizes are bounded before anything is parsed, so a hostile
// manifest cannot make the plan hang.
import type { Engine } from '../db/dialect.ts';
import { splitQualifiedName } from '../db/dialect.ts';
import { checkText, checkTokens, mysqlTokens, EXPECTED, type FragmentKind } from './lexical.ts';
import { checkMysqlDefault, checkMysqlExpression, checkMysqlRule, checkMysqlWhere } from './mysql-grammar.ts';
import { checkPostgresDefault, checkPostgresExpression, checkPostgresRule, checkPostgresWhere, postgresTokens } from './postgres-grammar.ts';
import { excerpt, foundAt, FragmentRefused } from './refusal.ts';

export { FragmentRefused } from './refusal.ts';
export type { FragmentKind } from './lexical.ts';

/** The CRD's bounds (api/datamigration-schema.ts), enforced here too for manifests read from files. */
export const MAX_CHARS: Record<FragmentKind, number> = { where: 4096, expression: 4096, default: 1024, rule: 4096 };

/** Only this module makes a CheckedSql: the brand has no value, so code elsewhere cannot build one without a cast. */
declare const checkedBrand: unique symbol;

/**
 * A fragment that passed its check: the text as given, and the form to splice into SQL. The
 * engine's statement builders take this type, never a string, so splicing unchecked manifest
 * text is a type error.
 */
export interface CheckedSql {
  readonly [checkedBrand]: true;
  readonly engine: Engine;
  readonly kind: FragmentKind;
  /** The manifest's text, unchanged. */
  readonly text: string;
  /**
   * What the engine splices into its statement: a where, expression or default inside
   * parentheses, exactly as it was checked; a rule as it is (sent as its own statement).
   */
  readonly sql: string;
}

type GrammarCheck = (fragment: string, field: string) => void;
const GRAMMAR: Record<Engine, Record<FragmentKind, GrammarCheck>> = {
  postgres: { where: checkPostgresWhere, expression: checkPostgresExpression, default: checkPostgresDefault, rule: checkPostgresRule },
  mysql: { where: checkMysqlWhere, expression: checkMysqlExpression, default: checkMysqlDefault, rule: checkMysqlRule },
};

function check(engine: Engine, kind: FragmentKind, text: string, field: string): CheckedSql {
  const fragment = checkText(engine, kind, text, field, MAX_CHARS[kind]);
  const tokens = engine === 'postgres' ? postgresTokens(fragment, field, kind) : mysqlTokens(fragment, field, EXPECTED[kind]);
  checkTokens(engine, kind, fragment, tokens, field);
  GRAMMAR[engine][kind](fragment, field);
  const checked = { engine, kind, text: fragment, sql: kind === 'rule' ? fragment : `(${fragment})` };
  return checked as CheckedSql; // the one place a CheckedSql is made (see checkedBrand)
}

/** A table's `where`: one condition, spliced as `WHERE (<where>)`. Throws FragmentRefused. */
export function checkWhere(engine: Engine, text: string, field: string): CheckedSql {
  return check(engine, 'where', text, field);
}

/** A column's `expression`: one scalar value per row. Throws FragmentRefused. */
export function checkExpression(engine: Engine, text: string, field: string): CheckedSql {
  return check(engine, 'expression', text, field);
}

/** A column's `default`: a literal, or the current time or a new UUID. Throws FragmentRefused. */
export function checkDefault(engine: Engine, text: string, field: string): CheckedSql {
  return check(engine, 'default', text, field);
}

/** A validation rule's query: one read-only SELECT (or WITH … SELECT). Throws FragmentRefused. */
export function checkRuleQuery(engine: Engine, text: string, field: string): CheckedSql {
  return check(engine, 'rule', text, field);
}

/** Characters a name may not hold: controls, bidirectional controls, zero-width and invisible spaces. */
// eslint-disable-next-line no-control-regex
const HIDDEN_IN_NAMES = /[\u0001-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

/** Longest identifier: PostgreSQL's NAMEDATALEN - 1 bytes (it silently cuts longer ones), MySQL's 64 characters. */
export const MAX_IDENTIFIER: Record<Engine, { limit: number; unit: 'bytes' | 'characters' }> = {
  postgres: { limit: 63, unit: 'bytes' },
  mysql: { limit: 64, unit: 'characters' },
};

/**
 * One identifier (a column, or one part of a table name). The dialects quote identifiers, so
 * their content cannot reach SQL; this refuses what quoting cannot carry: NUL, names longer than
 * the engine keeps (PostgreSQL would cut two long names to the same one), MySQL's trailing space
 * and characters outside the Basic Multilingual Plane.
 */
export function checkIdentifier(engine: Engine, name: unknown, field: string): string {
  const expected = `a ${engine === 'postgres' ? 'PostgreSQL' : 'MySQL'} name of 1 to ${MAX_IDENTIFIER[engine].limit} ${MAX_IDENTIFIER[engine].unit}`;
  if (typeof name !== 'string') throw new FragmentRefused(field, expected, `a value of type ${typeof name}`);
  if (name.length === 0) throw new FragmentRefused(field, expected, 'an empty name');
  if (!name.isWellFormed()) throw new FragmentRefused(field, expected, 'a name that is not valid Unicode (a lone surrogate)');
  const nul = name.indexOf('\u0000');
  if (nul >= 0) throw new FragmentRefused(field, expected, foundAt('a NUL character', name, nul));
  // A name with control, direction-changing or invisible characters reads in the manifest as
  // another name (target: orders<U+200B> looks like orders): refused as in fragments (issue 13,
  // found by attack). ZWJ and ZWNJ (U+200C, U+200D) stay: some scripts need them.
  const hidden = HIDDEN_IN_NAMES.exec(name);
  if (hidden) throw new FragmentRefused(field, expected, foundAt(`the control or invisible character U+${(hidden[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`, name, hidden.index));
  const size = engine === 'postgres' ? Buffer.byteLength(name, 'utf8') : codePoints(name).length;
  if (size > MAX_IDENTIFIER[engine].limit) throw new FragmentRefused(field, expected, `a name of ${size} ${MAX_IDENTIFIER[engine].unit}: "${excerpt(name)}"`);
  if (engine === 'mysql') {
    if (name.endsWith(' ')) throw new FragmentRefused(field, expected, 'a name ending in a space (MySQL does not allow one)');
    const wide = codePoints(name).findIndex((c) => c > 0xffff);
    if (wide >= 0) throw new FragmentRefused(field, expected, 'a character outside the Basic Multilingual Plane (MySQL names cannot hold one)');
  }
  return name;
}

/** The code points of a string (MySQL counts a name's length in characters, not UTF-16 units). */
function codePoints(text: string): number[] {
  const points: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const point = text.codePointAt(i) ?? 0;
    points.push(point);
    if (point > 0xffff) i++;
  }
  return points;
}

/** A table name as the manifest gives it: `name` or `schema.name`, each part an identifier. */
export function checkQualifiedName(engine: Engine, name: unknown, field: string): string {
  if (typeof name !== 'string') return checkIdentifier(engine, name, field);
  const parts = splitQualifiedName(name);
  if (parts.length > 2) throw new FragmentRefused(field, 'a table name or schema.name', `${parts.length} dot-separated parts`);
  for (const part of parts) checkIdentifier(engine, part, field);
  return name;
}
