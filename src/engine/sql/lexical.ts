// The checks of a fragment's text that come before any grammar: its size, its characters, and
// its tokens. Tokens tell where strings, quoted names and comments are, so that a fragment can
// be refused for what would let it reach outside the place the engine splices it into: a ';'
// (another statement), a ')' closing the engine's own parenthesis, a comment swallowing the SQL
// that follows it, an executable MySQL comment, a call to a denied function.
// PostgreSQL's tokens come from its real scanner (postgres-grammar.ts); MySQL's from the small
// lexer below, deliberately stricter than the server (see mysqlTokens).
import type { Engine } from '../db/dialect.ts';
import { comparableName, isDeniedFunction } from './deny-list.ts';
import { excerpt, foundAt, FragmentRefused } from './refusal.ts';

export type TokenKind = 'word' | 'quoted-name' | 'string' | 'punct' | 'line-comment' | 'block-comment' | 'version-comment' | 'other';

export interface Token {
  kind: TokenKind;
  /** The token as written. */
  text: string;
  /** Index of its first character in the fragment. */
  start: number;
  /** words and quoted names: the name as the server reads it. */
  name?: string;
}

/** Parentheses a fragment may nest: far above any real condition, far below a parser's stack. */
export const MAX_NESTING = 64;

/** What a field may hold, for messages. */
export type FragmentKind = 'where' | 'expression' | 'default' | 'rule';

export const EXPECTED: Record<FragmentKind, string> = {
  where: 'one SQL condition (what follows WHERE)',
  expression: 'one SQL scalar expression (one value per row)',
  default: 'one SQL literal (a string, a number, TRUE/FALSE/NULL, or CURRENT_TIMESTAMP and alike)',
  rule: 'one read-only SELECT (or WITH … SELECT) statement returning one value',
};

/** Characters refused anywhere: invisible or direction-changing ones make text read differently from how it runs. */
// eslint-disable-next-line no-control-regex
const REFUSED_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

/**
 * A quote after an odd number of backslashes: inside a string it is an escaped quote or the
 * string's end depending on server settings (standard_conforming_strings, NO_BACKSLASH_ESCAPES,
 * ANSI_QUOTES), so the same text would split differently for the checker and the server.
 */
const BACKSLASH_QUOTE = /(?<!\\)(?:\\\\)*\\['"]/;

/** Checks of the raw text, before tokens: presence, size, characters, backslash-quotes. */
export function checkText(engine: Engine, kind: FragmentKind, text: unknown, field: string, maxChars: number): string {
  const expected = EXPECTED[kind];
  if (typeof text !== 'string') throw new FragmentRefused(field, expected, `a value of type ${typeof text}`);
  // Size first: nothing below may spend time on an oversized input.
  if (text.length > maxChars) throw new FragmentRefused(field, `${expected}, at most ${maxChars} characters`, `${text.length} characters`);
  if (text.trim() === '') throw new FragmentRefused(field, expected, 'nothing (an empty text)');
  if (!text.isWellFormed()) throw new FragmentRefused(field, expected, 'text that is not valid Unicode (a lone surrogate)');
  const bad = REFUSED_CHARACTERS.exec(text);
  if (bad) {
    const code = bad[0].codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0') ?? '';
    throw new FragmentRefused(field, expected, foundAt(`the control or invisible character U+${code}`, text, bad.index));
  }
  const escaped = BACKSLASH_QUOTE.exec(text);
  if (escaped) {
    const at = escaped.index + escaped[0].length - 1;
    throw new FragmentRefused(field, `${expected}, with quotes inside strings doubled ('') rather than backslash-escaped`, foundAt('a backslash-escaped quote', text, at));
  }
  if (engine === 'mysql') {
    const version = /\/\*[M]?!/i.exec(text);
    if (version) throw new FragmentRefused(field, expected, foundAt('a MySQL executable comment (/*! … */), which the server runs', text, version.index));
  }
  return text;
}

const MYSQL_NAME_CHAR = /[0-9A-Za-z_$\u0080-\uffff]/u;

/**
 * MySQL tokens, as far as the checks need them. Stricter than the server where they differ: `--`
 * always starts a comment (the server needs a space after it), and backslashes escape inside
 * both kinds of quoted strings (the boundaries agree with the server's either way, because
 * checkText refused a quote after an odd number of backslashes).
 */
export function mysqlTokens(text: string, field: string, expected: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const unterminated = (what: string, start: number): FragmentRefused => new FragmentRefused(field, expected, foundAt(`an unterminated ${what}`, text, start));
  while (i < text.length) {
    const c = text[i] ?? '';
    const start = i;
    if (/\s/u.test(c)) {
      i++;
    } else if (c === "'" || c === '"' || c === '`') {
      i++;
      for (;;) {
        if (i >= text.length) throw unterminated(c === '`' ? 'quoted name' : 'string', start);
        const d = text[i];
        if (d === '\\' && c !== '`') i += 2;
        else if (d === c && text[i + 1] === c) i += 2;
        else if (d === c) break;
        else i++;
      }
      i++;
      const body = text.slice(start + 1, i - 1);
      tokens.push(c === '`'
        ? { kind: 'quoted-name', text: text.slice(start, i), start, name: body.replaceAll('``', '`') }
        : { kind: 'string', text: text.slice(start, i), start });
    } else if (c === '#' || (c === '-' && text[i + 1] === '-')) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
      tokens.push({ kind: 'line-comment', text: text.slice(start, i), start });
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      const body = text.slice(start, i);
      tokens.push({ kind: /^\/\*M?!/i.test(body) ? 'version-comment' : 'block-comment', text: body, start });
    } else if (c === '(' || c === ')' || c === ';' || c === '?') {
      i++;
      tokens.push({ kind: 'punct', text: c, start });
    } else if (c === ':' && text[i + 1] === '=') {
      i += 2;
      tokens.push({ kind: 'other', text: ':=', start });
    } else if (MYSQL_NAME_CHAR.test(c)) {
      while (i < text.length && MYSQL_NAME_CHAR.test(text[i] ?? '')) i++;
      const word = text.slice(start, i);
      // The server reads a number and then a word where digits run into letters after a '.'
      // (1.1FOR is 1.1 then FOR): the leading number is its own token, so the word is checked.
      const number = /^[0-9]+(?:[eE][0-9]+)?/.exec(word)?.[0] ?? '';
      if (number !== '' && number.length < word.length) {
        tokens.push({ kind: 'other', text: number, start });
        const rest = word.slice(number.length);
        tokens.push({ kind: 'word', text: rest, start: start + number.length, name: rest });
      } else {
        tokens.push({ kind: 'word', text: word, start, name: word });
      }
    } else {
      i += c.length;
      tokens.push({ kind: 'other', text: c, start });
    }
  }
  return tokens;
}

/** MySQL words and word pairs a fragment may not hold anywhere, with what they would do. */
const MYSQL_REFUSED_WORDS = new Map(Object.entries({
  into: 'INTO (writes a file or variables)',
  outfile: 'OUTFILE (writes a file on the server)',
  dumpfile: 'DUMPFILE (writes a file on the server)',
  procedure: 'PROCEDURE (runs a procedure on the result)',
}));
const MYSQL_REFUSED_PAIRS = new Map(Object.entries({
  'for update': 'FOR UPDATE (locks rows)',
  'for share': 'FOR SHARE (locks rows)',
  'lock in': 'LOCK IN SHARE MODE (locks rows)',
  'next value': 'NEXT VALUE FOR (advances a sequence)',
  'previous value': 'PREVIOUS VALUE FOR (reads a sequence)',
}));

/**
 * The checks on tokens: no statement separator, parentheses balanced inside the fragment (so it
 * cannot close the engine's), nesting bounded, no comment that could hide or swallow SQL, no
 * denied function called, and for MySQL no word that writes files, locks or assigns.
 */
export function checkTokens(engine: Engine, kind: FragmentKind, text: string, tokens: readonly Token[], field: string): void {
  const expected = EXPECTED[kind];
  const refuse = (what: string, token: Token): never => {
    throw new FragmentRefused(field, expected, foundAt(what, text, token.start));
  };
  const code = tokens.filter((t) => t.kind !== 'block-comment');
  let depth = 0;
  for (const [index, token] of code.entries()) {
    if (token.kind === 'line-comment') {
      const advice = engine === 'mysql' ? 'MySQL fragments take no comments' : 'use /* … */ instead';
      refuse(`a line comment (${token.text.startsWith('#') ? '#' : '--'}), which would swallow the SQL placed after the fragment; ${advice}`, token);
    }
    if (token.kind === 'version-comment') refuse('a MySQL executable comment (/*! … */), which the server runs', token);
    if (token.kind === 'punct') {
      if (token.text === ';') refuse('a \';\', which ends the statement (a fragment is never a statement of its own)', token);
      if (token.text === '?') refuse('a bind parameter (?)', token);
      if (token.text === '(') depth++;
      if (token.text === ')') depth--;
      if (depth < 0) refuse('a \')\' closing a parenthesis the fragment did not open', token);
      if (depth > MAX_NESTING) refuse(`parentheses nested deeper than ${MAX_NESTING}`, token);
    }
    const next = code[index + 1];
    if ((token.kind === 'word' || token.kind === 'quoted-name') && token.name !== undefined && next?.text === '(' && isDeniedFunction(engine, token.name)) {
      refuse(`a call of ${token.name}(), which a fragment may not call (side effects outside the query, SQL run from text, or stalls)`, token);
    }
    if (engine === 'mysql') {
      if (token.kind === 'other' && token.text === ':=') refuse('a variable assignment (:=)', token);
      if (token.kind === 'word') {
        const word = comparableName(token.text);
        const refused = MYSQL_REFUSED_WORDS.get(word) ?? (next?.kind === 'word' ? MYSQL_REFUSED_PAIRS.get(`${word} ${comparableName(next.text)}`) : undefined);
        if (refused) refuse(refused, token);
      }
    }
  }
  if (engine === 'mysql') {
    const comment = tokens.find((t) => t.kind === 'block-comment');
    if (comment) refuse('a comment (MySQL fragments take none: some comment forms are executed or read as hints)', comment);
  }
  if (depth !== 0) throw new FragmentRefused(field, expected, `${depth} parenthesis(es) left open at the end: "${excerpt(text, text.length)}"`);
}
