// A PostgreSQL domain column on a PostgreSQL target: the target database has no such domain, so
// the column gets the domain's base type and the domain's CHECKs become a CHECK of the column
// (VALUE replaced by the column's name). Only where that rewrite is certain: the expression has no
// dollar quotes or backslash-escaped strings, where a token-level rewrite could be wrong; then the
// plan names the column instead (carry-over.ts).
import type { DomainInfo } from './model.ts';

/**
 * The domain's checks as one CHECK body over `quotedColumn` (check undefined: it has none);
 * undefined when they cannot be rewritten safely.
 */
export function domainCheck(domain: Pick<DomainInfo, 'checks'>): { check: ((quotedColumn: string) => string) | undefined } | undefined {
  const bodies: string[][] = [];
  for (const check of domain.checks) {
    const body = /^CHECK (.*)$/s.exec(check)?.[1];
    const parts = body === undefined ? undefined : splitOnValue(body);
    if (parts === undefined) return undefined;
    bodies.push(parts);
  }
  if (bodies.length === 0) return { check: undefined };
  return { check: (quotedColumn) => bodies.map((parts) => parts.join(quotedColumn)).join(' AND ') };
}

const IDENTIFIER_CHAR = /[\p{L}\p{N}_$]/u;

/**
 * The expression cut at each VALUE keyword outside strings and quoted identifiers; undefined when
 * it holds what this scanner does not read exactly (E'…' strings, dollar quotes).
 */
export function splitOnValue(expression: string): string[] | undefined {
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  while (i < expression.length) {
    const char = expression[i] ?? '';
    if (char === "'" || char === '"') {
      if (char === "'" && /[eE]/.test(expression[i - 1] ?? '') && !IDENTIFIER_CHAR.test(expression[i - 2] ?? '')) return undefined;
      const close = closingQuote(expression, i, char);
      if (close === undefined) return undefined;
      i = close + 1;
      continue;
    }
    if (char === '$') return undefined;
    if (IDENTIFIER_CHAR.test(char)) {
      let end = i;
      while (end < expression.length && IDENTIFIER_CHAR.test(expression[end] ?? '')) end++;
      if (expression.slice(i, end).toUpperCase() === 'VALUE') {
        parts.push(expression.slice(start, i));
        start = end;
      }
      i = end;
      continue;
    }
    i++;
  }
  parts.push(expression.slice(start));
  return parts;
}

/** The index of the quote closing the one at `open` (doubled quotes inside are escapes). */
function closingQuote(text: string, open: number, quote: string): number | undefined {
  let i = open + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i;
    }
    i++;
  }
  return undefined;
}
