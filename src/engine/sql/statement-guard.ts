// The last gate before a statement the engine built around checked fragments goes to the source:
// it must still be exactly one read-only statement of the expected shape. The plan's checks
// (fragments.ts) make a failure here impossible in principle; this catches a builder that
// splices something unchecked, and is the structural check for the one statement PostgreSQL's
// extended protocol cannot carry: COPY … TO STDOUT, which pg-copy-streams sends as a simple
// query (where a second statement would run).
import { loadModule, parseSync } from 'libpg-query';
import { checkTokens, mysqlTokens, type Token } from './lexical.ts';
import { FragmentRefused } from './refusal.ts';

await loadModule();

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A built statement that is not the one statement it should be: a bug, never a manifest's fault alone. */
export class UnsafeStatement extends Error {
  constructor(what: string, problem: string) {
    super(`refusing to send ${what} to the source: ${problem}`);
    this.name = 'UnsafeStatement';
  }
}

/** Refuses a tree holding statements other than SELECT, INTO or locking clauses (iterative walk). */
function readOnlySelectTree(tree: unknown, what: string): void {
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      for (const item of node as unknown[]) stack.push(item);
      continue;
    }
    if (!isObject(node)) continue;
    for (const [key, value] of Object.entries(node)) {
      if (key.endsWith('Stmt') && key !== 'SelectStmt') throw new UnsafeStatement(what, `it holds a ${key}`);
      if (key === 'intoClause' || key === 'lockingClause') throw new UnsafeStatement(what, `it holds ${key}`);
      if (typeof value === 'object' && value !== null) stack.push(value);
    }
  }
}

/** The one statement of `sql` (PostgreSQL's parser). */
function onePostgresStatement(sql: string, what: string): Json {
  let statements: unknown[];
  try {
    statements = parseSync(sql).stmts ?? [];
  } catch (error) {
    throw new UnsafeStatement(what, `PostgreSQL cannot parse it (${error instanceof Error ? error.message : String(error)})`);
  }
  const [first] = statements;
  if (statements.length !== 1 || !isObject(first) || !isObject(first.stmt)) throw new UnsafeStatement(what, `it is ${statements.length} statements`);
  return first.stmt;
}

/** `sql` is exactly one SELECT (WITH, UNION … included) that reads only. */
export function assertPostgresSelect(sql: string, what = 'a query'): void {
  const statement = onePostgresStatement(sql, what);
  if (!isObject(statement.SelectStmt)) throw new UnsafeStatement(what, `it is a ${Object.keys(statement)[0] ?? 'statement'}, not a SELECT`);
  readOnlySelectTree(statement.SelectStmt, what);
}

/** `sql` is exactly `COPY (<one read-only SELECT>) TO STDOUT [WITH …]`: no file, no program, nothing stacked. */
export function assertPostgresCopyOut(sql: string, what = 'the copy'): void {
  const statement = onePostgresStatement(sql, what);
  const copy = statement.CopyStmt;
  if (!isObject(copy)) throw new UnsafeStatement(what, `it is a ${Object.keys(statement)[0] ?? 'statement'}, not a COPY`);
  if (copy.is_from === true || copy.is_program === true || copy.filename !== undefined || copy.relation !== undefined) {
    throw new UnsafeStatement(what, 'it is not COPY (SELECT …) TO STDOUT');
  }
  if (!isObject(copy.query) || !isObject(copy.query.SelectStmt)) throw new UnsafeStatement(what, 'its query is not a SELECT');
  readOnlySelectTree(copy.query.SelectStmt, what);
}

/**
 * `sql` reads as one MySQL SELECT at the token level (node-sql-parser does not read every
 * statement the engine builds): no ';', no comments, balanced parentheses, and none of INTO,
 * OUTFILE, DUMPFILE, FOR UPDATE/SHARE, LOCK IN SHARE MODE or := anywhere. Bind parameters (?)
 * are the engine's own here.
 */
export function assertMysqlSelect(sql: string, what = 'a query'): void {
  let tokens: Token[];
  try {
    tokens = mysqlTokens(sql, what, 'one SELECT');
    if (!/^\s*(\(\s*)*(SELECT|WITH)\b/i.test(sql)) throw new UnsafeStatement(what, 'it does not start with SELECT or WITH');
    checkTokens('mysql', 'rule', sql, tokens.filter((t) => !(t.kind === 'punct' && t.text === '?')), what);
  } catch (error) {
    if (error instanceof FragmentRefused) throw new UnsafeStatement(what, error.found);
    throw error;
  }
}
