// SQL rules: a query on the source compared with one on the target, or one query compared with
// an expected value. Numbers compare exactly as decimals (no binary float rounding), within a
// tolerance that is absolute ("0.01") or relative to the expected or source value ("0.1%").
// A rule's queries are checked first (engine/sql: one read-only SELECT each, in its side's
// grammar) and each runs alone in a READ ONLY transaction that is rolled back, on read-only
// sessions (the caller opens them so): validation writes nothing, on either side.
import type { ValidationRule } from '../../api/types.ts';
import type { Engine } from '../db/dialect.ts';
import type { SqlSession, SqlValue } from '../db/session.ts';
import { checkRuleQuery, type CheckedSql } from '../sql/fragments.ts';
import { pathKey } from '../sql/refusal.ts';
import type { RuleReport } from './report.ts';
import { envSecondsMs } from '../db/connection-options.ts';

/** A rule whose queries passed their check; only these run. */
export interface CheckedRule extends Omit<ValidationRule, 'source' | 'target'> {
  source?: CheckedSql;
  target?: CheckedSql;
}

/** Checks a rule's queries in each side's grammar; throws FragmentRefused naming the field. */
export function checkRule(rule: ValidationRule, engines: { source: Engine; target: Engine }): CheckedRule {
  const at = `spec.validation.rules[${pathKey(rule.name)}]`;
  const { source, target, ...rest } = rule;
  return {
    ...rest,
    ...(source !== undefined ? { source: checkRuleQuery(engines.source, source, `${at}.source`) } : {}),
    ...(target !== undefined ? { target: checkRuleQuery(engines.target, target, `${at}.target`) } : {}),
  };
}

/** An exact decimal: value = digits × 10^-scale. */
export interface Decimal {
  digits: bigint;
  scale: number;
}

const NUMBER = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/** Parses decimal or scientific notation exactly; undefined when the text is not a number. */
export function parseDecimal(text: string): Decimal | undefined {
  const match = NUMBER.exec(text);
  if (!match) return undefined;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  if (whole === '' && fraction === '') return undefined;
  let digits = BigInt(`${whole}${fraction}` || '0');
  let scale = fraction.length - Number(exponent);
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { digits: sign === '-' ? -digits : digits, scale };
}

function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale);
  return [a.digits * 10n ** BigInt(scale - a.scale), b.digits * 10n ** BigInt(scale - b.scale), scale];
}

const abs = (n: bigint): bigint => (n < 0n ? -n : n);

export interface Tolerance {
  amount: Decimal;
  relative: boolean;
}

export function parseTolerance(text: string | undefined): Tolerance | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const relative = text.trim().endsWith('%');
  const amount = parseDecimal(relative ? text.trim().slice(0, -1) : text);
  if (!amount || amount.digits < 0n) throw new Error(`tolerance ${JSON.stringify(text)} is not a non-negative number or percentage`);
  return { amount, relative };
}

/**
 * Whether `actual` is within the tolerance of `reference`: |actual - reference| ≤ amount, or
 * ≤ amount% of |reference| when relative. Exact decimal arithmetic.
 */
export function withinTolerance(actual: Decimal, reference: Decimal, tolerance: Tolerance | undefined): boolean {
  const [a, r, scale] = align(actual, reference);
  const difference = abs(a - r);
  if (!tolerance) return difference === 0n;
  if (!tolerance.relative) {
    const [d, t] = align({ digits: difference, scale }, tolerance.amount);
    return d <= t;
  }
  // |a - r| ≤ |r| × p / 100  ⇔  100 × |a - r| × 10^ps ≤ |r| × p_digits (all at the same scale).
  const [d, ref] = [difference, abs(r)];
  const p = tolerance.amount;
  return 100n * d * 10n ** BigInt(p.scale) <= ref * p.digits;
}

export interface ValueComparison {
  equal: boolean;
  comparedAs: 'number' | 'text';
  /** The difference (numbers) for the message. */
  difference?: string;
}

function decimalText(value: Decimal): string {
  const negative = value.digits < 0n;
  const digits = abs(value.digits).toString().padStart(value.scale + 1, '0');
  const whole = digits.slice(0, digits.length - value.scale);
  const fraction = value.scale > 0 ? digits.slice(digits.length - value.scale).replace(/0+$/, '') : '';
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** Compares two query values: as numbers when both are numbers (with tolerance), else as text. NULL equals only NULL. */
export function compareValues(actual: string | null, reference: string | null, tolerance: Tolerance | undefined): ValueComparison {
  if (actual === null || reference === null) return { equal: actual === reference, comparedAs: 'text' };
  const a = parseDecimal(actual);
  const r = parseDecimal(reference);
  if (a && r) {
    const [x, y, scale] = align(a, r);
    return { equal: withinTolerance(a, r, tolerance), comparedAs: 'number', difference: decimalText({ digits: x - y, scale }) };
  }
  return { equal: actual === reference, comparedAs: 'text' };
}

function valueText(value: SqlValue | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : value.toString('utf8');
}

/**
 * How long one rule's query may run (issue 13, found by attack): a rule is a manifest query the
 * sessions run as written, and a legal but heavy one (generate_series(1, 1e12), MariaDB's
 * seq_1_to_N, a catastrophic regular expression) would hold a source backend for hours, while
 * a rule is meant to be an aggregate check. The copy's and checksums' statements are not bounded
 * (a legitimate copy can take hours); rules are. DMO_RULE_TIMEOUT_SECONDS overrides the default.
 */
export const DEFAULT_RULE_TIMEOUT_MS = 15 * 60_000;

export function ruleTimeoutMs(env: Readonly<Record<string, string | undefined>> = process.env): number {
  return envSecondsMs(env, 'DMO_RULE_TIMEOUT_SECONDS') ?? DEFAULT_RULE_TIMEOUT_MS;
}

/** The server's statement-timeout errors: PostgreSQL 57014, MariaDB 1969, MySQL 3024. */
function timedOut(error: unknown): boolean {
  const { code, errno } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; errno?: unknown };
  return code === '57014' || code === 1969 || code === 3024 || errno === 1969 || errno === 3024 || code === 'ER_STATEMENT_TIMEOUT';
}

/** ER_UNKNOWN_SYSTEM_VARIABLE: MariaDB has max_statement_time, MySQL max_execution_time. */
const UNKNOWN_VARIABLE = 1193;

/**
 * Bounds the next statements of the transaction just begun to `ms` (never loosening a tighter
 * bound the session has); returns what restores the session afterwards. PostgreSQL: SET LOCAL,
 * gone with the transaction. MySQL: the session variable, put back after.
 */
async function boundStatements(session: SqlSession, ms: number): Promise<() => Promise<void>> {
  if (session.engine === 'postgres') {
    const [row] = await session.query("SELECT setting FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'statement_timeout'");
    const current = Number(row?.setting?.toString() ?? '0');
    await session.query(`SET LOCAL statement_timeout = ${String(current > 0 ? Math.min(current, ms) : ms)}`);
    return () => Promise.resolve();
  }
  const restores: string[] = [];
  for (const [variable, unit] of [['max_statement_time', 1000], ['max_execution_time', 1]] as const) {
    try {
      const [row] = await session.query(`SELECT @@SESSION.${variable} AS v`);
      const current = Number(row?.v?.toString() ?? '0');
      const bound = ms / unit;
      await session.query(`SET SESSION ${variable} = ${String(current > 0 ? Math.min(current, bound) : bound)}`);
      restores.push(`SET SESSION ${variable} = ${String(current)}`);
    } catch (error) {
      if ((error as { errno?: unknown }).errno !== UNKNOWN_VARIABLE) throw error;
    }
  }
  return async () => {
    for (const statement of restores) await session.query(statement);
  };
}

/**
 * The first column of the first row (null when there is no row) of a checked query, run alone in
 * a READ ONLY transaction that is rolled back: the server refuses a write even on a session that
 * could write (the target's), and the query cannot end the transaction (it is one statement).
 * It runs within ruleTimeoutMs().
 */
export async function queryValue(session: SqlSession, query: CheckedSql, timeoutMs: number = ruleTimeoutMs()): Promise<string | null> {
  // Both engines spell these the same (PostgreSQL, MySQL 5.6.5+, MariaDB 10.0+).
  await session.query('START TRANSACTION READ ONLY');
  let rows;
  try {
    const restore = await boundStatements(session, timeoutMs);
    try {
      rows = await session.query(query.sql);
    } catch (error) {
      if (timedOut(error)) throw new Error(`the query ran longer than ${String(timeoutMs / 1000)} s, the bound on a rule's query (DMO_RULE_TIMEOUT_SECONDS): it stopped on the server`, { cause: error });
      throw error;
    } finally {
      await restore();
    }
  } finally {
    await session.query('ROLLBACK');
  }
  const first = rows[0];
  if (!first) return null;
  const [value] = Object.values(first);
  return valueText(value);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs one checked rule on read-only sessions and compares its values. */
export async function runRule(rule: CheckedRule, sessions: { source: SqlSession; target: SqlSession }): Promise<RuleReport> {
  const base: RuleReport = {
    name: rule.name, passed: false,
    ...(rule.expect !== undefined ? { expected: rule.expect } : {}),
    ...(rule.tolerance !== undefined ? { tolerance: rule.tolerance } : {}),
  };
  try {
    if (rule.source === undefined && rule.target === undefined) throw new Error('the rule has neither a source nor a target query');
    const tolerance = parseTolerance(rule.tolerance);
    const [source, target] = await Promise.all([
      rule.source !== undefined ? queryValue(sessions.source, rule.source) : Promise.resolve(undefined),
      rule.target !== undefined ? queryValue(sessions.target, rule.target) : Promise.resolve(undefined),
    ]);
    const report: RuleReport = { ...base, ...(source !== undefined ? { source } : {}), ...(target !== undefined ? { target } : {}) };
    const failures: string[] = [];
    let comparedAs: 'number' | 'text' = 'text';
    const check = (label: string, actual: string | null, reference: string | null, referenceLabel: string): void => {
      const outcome = compareValues(actual, reference, tolerance);
      comparedAs = outcome.comparedAs;
      if (!outcome.equal) {
        const by = outcome.comparedAs === 'number' && outcome.difference !== undefined ? ` (difference ${outcome.difference}${rule.tolerance ? `, tolerance ${rule.tolerance}` : ''})` : '';
        failures.push(`${label} ${actual ?? 'NULL'} ≠ ${referenceLabel} ${reference ?? 'NULL'}${by}`);
      }
    };
    if (rule.expect !== undefined) {
      if (source !== undefined) check('source', source, rule.expect, 'expected');
      if (target !== undefined) check('target', target, rule.expect, 'expected');
    } else if (source !== undefined && target !== undefined) {
      check('target', target, source, 'source');
    } else {
      throw new Error('a rule with one query needs expect');
    }
    return { ...report, passed: failures.length === 0, comparedAs, ...(failures.length > 0 ? { message: failures.join('; ') } : {}) };
  } catch (error) {
    return { ...base, passed: false, error: messageOf(error) };
  }
}
