// MySQL and MariaDB fragments, read by node-sql-parser's MySQL grammar (and its MariaDB one for
// what only MariaDB spells). Neither is the server's own grammar, so a fragment is accepted only
// when a grammar reads it as the one thing its field may be AND every grammar that reads it finds
// nothing refused in it; the lexical checks (lexical.ts) that run first are stricter than the
// server, so that the places where grammar and server might disagree (comments, quoting,
// statement ends) never reach the grammar at all.
import mariadbGrammar from 'node-sql-parser/build/mariadb.js';
import mysqlGrammar from 'node-sql-parser/build/mysql.js';
import { isCredentialTable, isDeniedFunction } from './deny-list.ts';
import { EXPECTED, type FragmentKind } from './lexical.ts';
import { excerpt, FragmentRefused, withArticle } from './refusal.ts';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? (value as unknown[]) : []);
/** A tree value as text for a message. */
const shown = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

interface Grammar {
  name: string;
  astify(sql: string): unknown;
}

/** The two grammars; each build file is a CommonJS module whose typings do not describe its default export. */
function grammarOf(module: unknown, database: string): Grammar {
  const Parser = (module as { Parser: new () => { astify(sql: string, options: { database: string }): unknown } }).Parser;
  const parser = new Parser();
  return { name: database, astify: (sql) => parser.astify(sql, { database }) };
}
const GRAMMARS: readonly Grammar[] = [grammarOf(mysqlGrammar, 'MySQL'), grammarOf(mariadbGrammar, 'MariaDB')];

const PLACEHOLDER_TABLE = 'dataops_fragment';

/** Statement types of node-sql-parser's trees that a fragment may never hold. */
const STATEMENT_TYPES = new Set([
  'insert', 'replace', 'update', 'delete', 'create', 'drop', 'alter', 'truncate', 'rename', 'set', 'lock', 'unlock',
  'call', 'use', 'grant', 'revoke', 'load_data', 'show', 'desc', 'explain', 'transaction', 'declare', 'exec', 'execute',
  'prepare', 'deallocate', 'kill', 'handler', 'do', 'flush', 'analyze', 'optimize', 'repair', 'check', 'checksum',
]);

/** Select clauses that must be empty where a fragment sits (its own place excepted). */
const SELECT_CLAUSES = ['with', 'options', 'distinct', 'groupby', 'having', 'orderby', 'limit', 'locking_read', 'window', 'collate', '_next', 'set_op'];

/** A tree's comparable form: without locations, and without the outermost parentheses mark. */
function comparable(node: unknown): string {
  const copy: unknown = JSON.parse(JSON.stringify(node, (key, value: unknown) => (key === 'loc' ? undefined : value)));
  if (isObject(copy)) delete copy.parentheses;
  return JSON.stringify(copy);
}

/** Function name as written, unqualified: {name: [{value: 'SLEEP'}]} or a plain string. */
function functionName(node: Json): string {
  const name = node.name;
  if (typeof name === 'string') return name;
  const parts = isObject(name) ? asArray(name.name) : [];
  const last: unknown = parts[parts.length - 1];
  return isObject(last) && typeof last.value === 'string' ? last.value : '';
}

/**
 * Walks a tree and refuses what a read-only fragment may not hold: statements other than SELECT,
 * INTO, locking reads, variable assignments, bind parameters, denied functions, credential tables.
 */
function walk(tree: unknown, fragment: string, field: string, kind: FragmentKind): void {
  const refuse = (what: string): never => {
    throw new FragmentRefused(field, EXPECTED[kind], `${what}: "${excerpt(fragment)}"`);
  };
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      stack.push(...asArray(node));
      continue;
    }
    if (!isObject(node)) continue;
    const type = typeof node.type === 'string' ? node.type.toLowerCase() : '';
    if (STATEMENT_TYPES.has(type)) refuse(`${withArticle(type.toUpperCase())} statement`);
    if (isObject(node.ast) && node.ast.type !== 'select') refuse(`${withArticle(shown(node.ast.type).toUpperCase())} statement`);
    if (isObject(node.into) && node.into.position !== null && node.into.position !== undefined) refuse('INTO (writes a file or variables)');
    if (node.locking_read !== null && node.locking_read !== undefined) refuse(`${shown(node.locking_read)} (locks rows)`);
    if (type === 'assign') refuse('a variable assignment');
    if (type === 'origin' && node.value === '?') refuse('a bind parameter (?)');
    if (type === 'function') {
      const name = functionName(node);
      if (isDeniedFunction('mysql', name)) refuse(`a call of ${name}(), which a fragment may not call (side effects outside the query, or stalls)`);
    }
    if (typeof node.table === 'string' && isCredentialTable('mysql', typeof node.db === 'string' ? node.db : undefined, node.table)) {
      refuse(`the credentials table ${shown(node.db)}.${node.table}`);
    }
    for (const value of Object.values(node)) if (typeof value === 'object' && value !== null) stack.push(value);
  }
}

/** The tree `sql` parses to under each grammar that reads it (by grammar name), exactly one statement; a refusal when none does. */
function parseOne(sql: string, fragment: string, field: string, kind: FragmentKind): Map<string, Json> {
  const trees = new Map<string, Json>();
  const failures: string[] = [];
  for (const grammar of GRAMMARS) {
    let result: unknown;
    try {
      result = grammar.astify(sql);
    } catch (error) {
      // A PEG parser's message lists every token it expected: keep its end, which says what it found.
      const message = error instanceof Error ? error.message : String(error);
      failures.push(`${grammar.name}: ${message.length > 100 ? `…${message.slice(-100)}` : message}`);
      continue;
    }
    const statements = Array.isArray(result) ? asArray(result) : [result];
    const [first] = statements;
    if (statements.length !== 1 || !isObject(first)) refuse(`${statements.length} statements`);
    else trees.set(grammar.name, first);
  }
  if (trees.size === 0) throw new FragmentRefused(field, EXPECTED[kind], `text the MySQL grammar cannot read (${failures[0] ?? ''}): "${excerpt(fragment)}"`);
  return trees;

  function refuse(what: string): never {
    throw new FragmentRefused(field, EXPECTED[kind], `${what}: "${excerpt(fragment)}"`);
  }
}

/** Refuses a tree that is not `SELECT <columns> FROM dataops_fragment [WHERE …]` with nothing else. */
function checkShape(tree: Json, withWhere: boolean, fragment: string, field: string, kind: FragmentKind): void {
  const refuse = (what: string): never => {
    throw new FragmentRefused(field, EXPECTED[kind], `${what}: "${excerpt(fragment)}"`);
  };
  if (tree.type !== 'select') refuse(`${withArticle(shown(tree.type).toUpperCase())} statement`);
  const extra = SELECT_CLAUSES.filter((clause) => tree[clause] !== null && tree[clause] !== undefined);
  if (isObject(tree.into) && tree.into.position !== null && tree.into.position !== undefined) extra.push('into');
  if (!withWhere && tree.where !== null && tree.where !== undefined) extra.push('where');
  const from = asArray(tree.from);
  const [table] = from;
  if (from.length !== 1 || !isObject(table) || table.table !== PLACEHOLDER_TABLE || table.as !== null) extra.push('from');
  if (extra.length > 0) refuse(`text that reaches outside its place in the statement (${extra.join(', ')})`);
}

/** Refuses when a grammar reads the two embeddings differently, or only one of them. */
function sameReadings(bare: Map<string, unknown>, wrapped: Map<string, unknown>, fragment: string, field: string, kind: FragmentKind): void {
  for (const grammar of new Set([...bare.keys(), ...wrapped.keys()])) {
    const a = bare.get(grammar);
    const b = wrapped.get(grammar);
    if (a === undefined || b === undefined || comparable(a) !== comparable(b)) {
      throw new FragmentRefused(field, EXPECTED[kind], `text that reads differently inside parentheses: "${excerpt(fragment)}"`);
    }
  }
}

export function checkMysqlWhere(fragment: string, field: string): void {
  const prefix = `SELECT 1 FROM ${PLACEHOLDER_TABLE} WHERE `;
  const conditions = (sql: string): Map<string, unknown> => {
    const result = new Map<string, unknown>();
    for (const [grammar, tree] of parseOne(sql, fragment, field, 'where')) {
      checkShape(tree, true, fragment, field, 'where');
      walk(tree.where, fragment, field, 'where');
      result.set(grammar, tree.where);
    }
    return result;
  };
  sameReadings(conditions(`${prefix}${fragment}`), conditions(`${prefix}(${fragment})`), fragment, field, 'where');
}

/** The one value of `SELECT <fragment> FROM t` under each grammar, read the same inside parentheses and walked. */
function scalarsOf(fragment: string, field: string, kind: FragmentKind): Json[] {
  const refuse = (what: string): never => {
    throw new FragmentRefused(field, EXPECTED[kind], `${what}: "${excerpt(fragment)}"`);
  };
  const values = (sql: string): Map<string, Json> => {
    const result = new Map<string, Json>();
    for (const [grammar, tree] of parseOne(sql, fragment, field, kind)) {
      checkShape(tree, false, fragment, field, kind);
      const columns = asArray(tree.columns);
      const [column] = columns;
      if (columns.length !== 1 || !isObject(column) || !isObject(column.expr)) return refuse(`${columns.length} values`);
      if (column.as !== null && column.as !== undefined) refuse(`a column alias (${shown(column.as)})`);
      if (column.expr.type === 'column_ref' && column.expr.column === '*') refuse('a * (every column)');
      walk(column.expr, fragment, field, kind);
      result.set(grammar, column.expr);
    }
    return result;
  };
  const bare = values(`SELECT ${fragment} FROM ${PLACEHOLDER_TABLE}`);
  sameReadings(bare, values(`SELECT (${fragment}) FROM ${PLACEHOLDER_TABLE}`), fragment, field, kind);
  return [...bare.values()];
}

export function checkMysqlExpression(fragment: string, field: string): void {
  scalarsOf(fragment, field, 'expression');
}

const LITERAL_TYPES = new Set(['number', 'bigint', 'single_quote_string', 'double_quote_string', 'natural_string', 'hex_string', 'full_hex_string', 'bit_string', 'bool', 'null', 'date', 'time', 'timestamp', 'datetime']);
/** Functions a default may be: the current time, a new UUID. */
const DEFAULT_FUNCTIONS = new Set(['now', 'current_timestamp', 'current_date', 'current_time', 'localtime', 'localtimestamp', 'utc_timestamp', 'utc_date', 'utc_time', 'curdate', 'curtime', 'uuid']);

function isLiteral(node: Json): boolean {
  const type = typeof node.type === 'string' ? node.type : '';
  if (LITERAL_TYPES.has(type)) return true;
  if (type === 'unary_expr' && (node.operator === '-' || node.operator === '+') && isObject(node.expr)) return isLiteral(node.expr);
  if (type === 'function') {
    const args = isObject(node.args) ? asArray(node.args.value) : [];
    const precision = args.length === 0 || (args.length === 1 && isObject(args[0]) && args[0].type === 'number');
    return DEFAULT_FUNCTIONS.has(functionName(node).toLowerCase()) && precision && (node.over === null || node.over === undefined);
  }
  return false;
}

export function checkMysqlDefault(fragment: string, field: string): void {
  for (const value of scalarsOf(fragment, field, 'default')) {
    if (!isLiteral(value)) throw new FragmentRefused(field, EXPECTED.default, `an expression that is not a literal: "${excerpt(fragment)}"`);
  }
}

/** A rule: the text alone is one SELECT (or WITH … SELECT), walked whole. */
export function checkMysqlRule(fragment: string, field: string): void {
  for (const tree of parseOne(fragment, fragment, field, 'rule').values()) {
    if (tree.type !== 'select') throw new FragmentRefused(field, EXPECTED.rule, `${withArticle(shown(tree.type).toUpperCase())} statement: "${excerpt(fragment)}"`);
    walk(tree, fragment, field, 'rule');
  }
}
