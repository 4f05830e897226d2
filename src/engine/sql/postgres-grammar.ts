// PostgreSQL fragments, read by PostgreSQL's own parser and scanner (libpg-query, the server's
// grammar compiled to WebAssembly): the checker splits and nests the text exactly as the server
// would, so what it accepts as one condition is one condition to the server too.
import { loadModule, parseSync, scanSync, type ScanToken } from 'libpg-query';
import { isCredentialTable, isDeniedFunction } from './deny-list.ts';
import { EXPECTED, type FragmentKind, type Token } from './lexical.ts';
import { excerpt, foundAt, FragmentRefused, withArticle } from './refusal.ts';

// Once per process, before any check: afterwards every parse is synchronous.
await loadModule();

/** The table a fragment is checked against; any name would do, this one says what it is. */
const PLACEHOLDER_TABLE = 'dataops_fragment';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? (value as unknown[]) : []);
/** A tree value as text for a message. */
const shown = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/** libpg-query reports offsets in UTF-8 bytes; messages and tokens use string indexes. */
function indexOfByte(text: string, byteOffset: number): number {
  return Buffer.from(text, 'utf8').subarray(0, Math.max(0, byteOffset)).toString('utf8').length;
}

/** The fragment's tokens from PostgreSQL's scanner. */
export function postgresTokens(text: string, field: string, kind: FragmentKind): Token[] {
  let tokens: ScanToken[];
  try {
    tokens = scanSync(text).tokens;
  } catch {
    // The scanner fails only on text it cannot split: an unterminated string, name or comment.
    throw new FragmentRefused(field, EXPECTED[kind], `text PostgreSQL cannot split into tokens (an unterminated string, quoted name or comment?): "${excerpt(text)}"`);
  }
  return tokens.map((token) => {
    const start = indexOfByte(text, token.start);
    const raw = text.slice(start, indexOfByte(text, token.end));
    if (token.tokenName === 'SQL_COMMENT') return { kind: 'line-comment', text: raw, start };
    if (token.tokenName === 'C_COMMENT') return { kind: 'block-comment', text: raw, start };
    if (token.tokenName === 'ASCII_40' || token.tokenName === 'ASCII_41' || token.tokenName === 'ASCII_59') return { kind: 'punct', text: raw, start };
    if (/^(SCONST|USCONST|BCONST|XCONST)$/.test(token.tokenName)) return { kind: 'string', text: raw, start };
    if (token.tokenName === 'IDENT' && raw.startsWith('"')) return { kind: 'quoted-name', text: raw, start, name: raw.slice(1, -1).replaceAll('""', '"') };
    if (token.tokenName === 'IDENT' || token.keywordKind > 0) return { kind: 'word', text: raw, start, name: raw.toLowerCase() };
    return { kind: 'other', text: raw, start };
  });
}

/** The one statement of `sql`, or a refusal saying where PostgreSQL's grammar stopped. */
function parseOne(sql: string, fragment: string, offset: number, field: string, kind: FragmentKind): Json {
  let statements: unknown[];
  try {
    statements = parseSync(sql).stmts ?? [];
  } catch (error) {
    const details = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
    const message = error instanceof Error ? error.message : String(error);
    const at = details?.cursorPosition === undefined ? 0 : indexOfByte(sql, details.cursorPosition) - offset;
    throw new FragmentRefused(field, EXPECTED[kind], `${message.slice(0, 120)} ${at >= 0 && at <= fragment.length ? `at character ${at + 1}: "${excerpt(fragment, at)}"` : `in "${excerpt(fragment)}"`}`);
  }
  const [first] = statements;
  if (statements.length !== 1 || !isObject(first) || !isObject(first.stmt)) throw new FragmentRefused(field, EXPECTED[kind], `${statements.length} statements`);
  return first.stmt;
}

/** The SelectStmt of a statement; a refusal naming the statement otherwise. */
function selectOf(statement: Json, field: string, kind: FragmentKind, fragment: string): Json {
  const [type] = Object.keys(statement);
  const select = statement.SelectStmt;
  if (type !== 'SelectStmt' || !isObject(select)) throw new FragmentRefused(field, EXPECTED[kind], `${withArticle(statementName(type ?? 'unknown'))} statement: "${excerpt(fragment)}"`);
  return select;
}

/** "DeleteStmt" → "DELETE"; readable enough for a message. */
function statementName(type: string): string {
  return type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/** Offsets into the statement text (location, stmt_len, list_start, rexpr_list_end, name_location …). */
const OFFSET_KEY = /(^|_)(location|len|start|end)$/;

/** A tree without offsets: they differ between two embeddings of the same text. */
function withoutLocations(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (key, v: unknown) => (OFFSET_KEY.test(key) && typeof v === 'number' ? undefined : v)));
}

/** Refuses a SelectStmt with any clause but `allowed`: nothing of the fragment leaked outside its place. */
function onlyClauses(select: Json, allowed: readonly string[], field: string, kind: FragmentKind, fragment: string): void {
  const extra = Object.keys(select).filter((key) => !allowed.includes(key) && key !== 'limitOption' && key !== 'op');
  if (extra.length > 0 || select.op !== 'SETOP_NONE') {
    throw new FragmentRefused(field, EXPECTED[kind], `text that reaches outside its place in the statement (${[...extra, ...(select.op !== 'SETOP_NONE' ? ['a set operation'] : [])].join(', ')}): "${excerpt(fragment)}"`);
  }
}

/**
 * Walks a parse tree and refuses what a read-only fragment may not hold: statements other than
 * SELECT (data-modifying CTEs, utility statements), INTO, FOR UPDATE/SHARE, bind parameters,
 * WHERE CURRENT OF, denied function calls and credential catalogs. Iterative: the depth of a tree
 * is bounded by the size limit, not by the call stack.
 */
function walk(tree: unknown, fragment: string, offset: number, field: string, kind: FragmentKind): void {
  const refuse = (what: string, node: Json): never => {
    const location = typeof node.location === 'number' ? node.location - offset : -1;
    throw new FragmentRefused(field, EXPECTED[kind], location >= 0 && location <= fragment.length ? foundAt(what, fragment, location) : `${what}: "${excerpt(fragment)}"`);
  };
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) {
      stack.push(...asArray(node));
      continue;
    }
    if (!isObject(node)) continue;
    for (const [key, value] of Object.entries(node)) {
      const inner = isObject(value) ? value : {};
      if (key.endsWith('Stmt') && key !== 'SelectStmt') refuse(`${withArticle(statementName(key))} statement`, inner);
      if (key === 'intoClause') refuse('INTO (a SELECT that creates a table)', node);
      if (key === 'lockingClause') refuse('FOR UPDATE/SHARE (locks rows)', node);
      if (key === 'ParamRef') refuse('a bind parameter ($n)', inner);
      if (key === 'CurrentOfExpr') refuse('WHERE CURRENT OF (a cursor)', inner);
      if (key === 'FuncCall') {
        const name = nameOf(inner.funcname);
        if (isDeniedFunction('postgres', name)) refuse(`a call of ${name}(), which a fragment may not call (side effects outside the query, SQL run from text, or stalls)`, inner);
      }
      if (key === 'RangeVar' && typeof inner.relname === 'string' && isCredentialTable('postgres', undefined, inner.relname)) {
        refuse(`the credentials catalog ${inner.relname}`, inner);
      }
      if (typeof value === 'object' && value !== null) stack.push(value);
    }
  }
}

/** The last part of a qualified name list ([String pg_catalog, String set_config] → set_config). */
function nameOf(names: unknown): string {
  const parts = asArray(names);
  const last: unknown = parts[parts.length - 1];
  const string = isObject(last) && isObject(last.String) ? last.String.sval : undefined;
  return typeof string === 'string' ? string : '';
}

/** A condition: `SELECT 1 FROM t WHERE (<fragment>)`, and the same without the parentheses. */
export function checkPostgresWhere(fragment: string, field: string): void {
  const prefix = `SELECT 1 FROM ${PLACEHOLDER_TABLE} WHERE `;
  const wrapped = selectOf(parseOne(`${prefix}(${fragment})`, fragment, prefix.length + 1, field, 'where'), field, 'where', fragment);
  onlyClauses(wrapped, ['targetList', 'fromClause', 'whereClause'], field, 'where', fragment);
  const bare = selectOf(parseOne(`${prefix}${fragment}`, fragment, prefix.length, field, 'where'), field, 'where', fragment);
  onlyClauses(bare, ['targetList', 'fromClause', 'whereClause'], field, 'where', fragment);
  if (JSON.stringify(withoutLocations(bare.whereClause)) !== JSON.stringify(withoutLocations(wrapped.whereClause))) {
    throw new FragmentRefused(field, EXPECTED.where, `text that reads differently inside parentheses: "${excerpt(fragment)}"`);
  }
  walk(wrapped.whereClause, fragment, prefix.length + 1, field, 'where');
}

/** The one value of `SELECT <fragment> FROM t`, checked to read the same as `SELECT (<fragment>) FROM t`. */
function scalarOf(fragment: string, field: string, kind: FragmentKind): { value: Json; offset: number } {
  const bare = selectOf(parseOne(`SELECT ${fragment} FROM ${PLACEHOLDER_TABLE}`, fragment, 7, field, kind), field, kind, fragment);
  onlyClauses(bare, ['targetList', 'fromClause'], field, kind, fragment);
  const targets = asArray(bare.targetList);
  const [target] = targets;
  const result = isObject(target) && isObject(target.ResTarget) ? target.ResTarget : undefined;
  if (targets.length !== 1 || !result || !isObject(result.val)) throw new FragmentRefused(field, EXPECTED[kind], `${targets.length} values: "${excerpt(fragment)}"`);
  if (result.name !== undefined) throw new FragmentRefused(field, EXPECTED[kind], `a column alias (AS ${shown(result.name)}): "${excerpt(fragment)}"`);
  if (JSON.stringify(result.val).includes('"A_Star"')) throw new FragmentRefused(field, EXPECTED[kind], `a * (every column): "${excerpt(fragment)}"`);
  const wrapped = selectOf(parseOne(`SELECT (${fragment}) FROM ${PLACEHOLDER_TABLE}`, fragment, 8, field, kind), field, kind, fragment);
  onlyClauses(wrapped, ['targetList', 'fromClause'], field, kind, fragment);
  const [wrappedTarget] = asArray(wrapped.targetList);
  const wrappedValue = isObject(wrappedTarget) && isObject(wrappedTarget.ResTarget) ? wrappedTarget.ResTarget.val : undefined;
  if (JSON.stringify(withoutLocations(wrappedValue)) !== JSON.stringify(withoutLocations(result.val))) {
    throw new FragmentRefused(field, EXPECTED[kind], `text that reads differently inside parentheses: "${excerpt(fragment)}"`);
  }
  return { value: result.val, offset: 7 };
}

export function checkPostgresExpression(fragment: string, field: string): void {
  const { value, offset } = scalarOf(fragment, field, 'expression');
  walk(value, fragment, offset, field, 'expression');
}

/** Functions a default may be: the current time, a new UUID. */
const DEFAULT_FUNCTIONS = new Set(['now', 'transaction_timestamp', 'statement_timestamp', 'clock_timestamp', 'gen_random_uuid']);
const DEFAULT_VALUE_FUNCTIONS = /^SVFOP_(CURRENT_DATE|CURRENT_TIME|CURRENT_TIME_N|CURRENT_TIMESTAMP|CURRENT_TIMESTAMP_N|LOCALTIME|LOCALTIME_N|LOCALTIMESTAMP|LOCALTIMESTAMP_N)$/;

/** Whether a parsed value is a literal: a constant, a signed number, a cast constant, or an allowed function. */
function isLiteral(node: unknown): boolean {
  if (!isObject(node)) return false;
  if (isObject(node.A_Const)) return true;
  if (isObject(node.TypeCast)) return isLiteral(node.TypeCast.arg);
  if (isObject(node.SQLValueFunction)) return typeof node.SQLValueFunction.op === 'string' && DEFAULT_VALUE_FUNCTIONS.test(node.SQLValueFunction.op);
  if (isObject(node.A_Expr)) {
    const expr = node.A_Expr;
    return expr.kind === 'AEXPR_OP' && expr.lexpr === undefined && ['+', '-'].includes(nameOf(expr.name)) && isLiteral(expr.rexpr);
  }
  if (isObject(node.FuncCall)) {
    const call = node.FuncCall;
    const schema = asArray(call.funcname).length > 1 ? nameOf(asArray(call.funcname).slice(0, -1)) : 'pg_catalog';
    return schema === 'pg_catalog' && DEFAULT_FUNCTIONS.has(nameOf(call.funcname)) && asArray(call.args).length === 0 && Object.keys(call).every((k) => ['funcname', 'args', 'funcformat', 'location'].includes(k));
  }
  return false;
}

export function checkPostgresDefault(fragment: string, field: string): void {
  const { value } = scalarOf(fragment, field, 'default');
  if (!isLiteral(value)) throw new FragmentRefused(field, EXPECTED.default, `an expression that is not a literal: "${excerpt(fragment)}"`);
}

/** A rule: the text alone is one SELECT (WITH, UNION, VALUES and TABLE are SELECTs too), walked whole. */
export function checkPostgresRule(fragment: string, field: string): void {
  const select = selectOf(parseOne(fragment, fragment, 0, field, 'rule'), field, 'rule', fragment);
  walk(select, fragment, 0, field, 'rule');
}
