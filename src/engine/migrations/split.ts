// Splits a migration script into statements. MySQL runs one statement per query (multiple
// statements stay off), and on both engines a failure is reported with the statement it came
// from, so the script is cut at each delimiter outside quotes, comments and dollar quotes.
import { adapterFor } from '../db/adapter.ts';
import type { Engine } from '../db/dialect.ts';

export interface ScriptStatement {
  /** The statement without its delimiter, leading comments or surrounding whitespace. */
  text: string;
  /** 1-based line of the script where the statement starts. */
  line: number;
}

const IDENT_CHAR = /[\p{L}\p{N}_$]/u;
const DOLLAR_TAG = /\$(?:[\p{L}_][\p{L}\p{N}_]*)?\$/uy;
const DELIMITER_COMMAND = /[ \t]*delimiter[ \t]+(\S+)[^\n]*/iy;

/**
 * The statements of a script, with the line each starts on. Delimiters: `;` outside
 * '...', "..." and (MySQL) `...` quotes, comments (`--`, MySQL `#`, `/* *\/`, nested on
 * PostgreSQL) and PostgreSQL dollar quotes ($$...$$, $tag$...$tag$). On MySQL a `DELIMITER xx`
 * line, as the mysql client reads it, changes the delimiter and is not itself a statement.
 * Statements with nothing but comments and whitespace are dropped. Throws on an unterminated
 * quote or comment, naming its line.
 */
export function splitScript(sql: string, engine: Engine): ScriptStatement[] {
  const syntax = adapterFor(engine).scriptSyntax;
  const n = sql.length;
  const statements: ScriptStatement[] = [];
  let delimiter = ';';
  let start = -1;
  let end = -1;
  // Line numbers, counted forward lazily.
  let lineAt = 0;
  let line = 1;
  const lineOf = (position: number): number => {
    for (; lineAt < position; lineAt++) if (sql[lineAt] === '\n') line++;
    return line;
  };
  const content = (from: number, to: number): void => {
    if (start < 0) start = from;
    end = to;
  };
  const finish = (): void => {
    if (start >= 0) statements.push({ text: sql.slice(start, end), line: lineOf(start) });
    start = -1;
    end = -1;
  };
  const unterminated = (what: string, from: number): never => {
    throw new Error(`unterminated ${what} starting on line ${lineOf(from)}`);
  };
  /** Index just past the quote closing the one at `from`; doubled quotes, and backslashes when `backslash`, escape. */
  const closeQuote = (from: number, quote: string, backslash: boolean): number => {
    for (let j = from + 1; j < n; j++) {
      const c = sql[j];
      if (backslash && c === '\\') j++;
      else if (c === quote) {
        if (sql[j + 1] === quote) j++;
        else return j + 1;
      }
    }
    return unterminated(quote === '`' ? 'quoted identifier' : quote === '"' && !syntax.doubleQuotedStrings ? 'quoted identifier' : 'string', from);
  };

  let i = 0;
  while (i < n) {
    const c = sql.charAt(i);
    if (syntax.delimiterCommand && start < 0 && (i === 0 || sql[i - 1] === '\n')) {
      DELIMITER_COMMAND.lastIndex = i;
      const command = DELIMITER_COMMAND.exec(sql);
      if (command?.[1] !== undefined) {
        delimiter = command[1];
        i += command[0].length;
        continue;
      }
    }
    if (sql.startsWith(delimiter, i)) {
      finish();
      i += delimiter.length;
      continue;
    }
    const next = sql.charAt(i + 1);
    if (c === "'") {
      // PostgreSQL: backslash escapes only in E'...' strings; MySQL: always (default sql_mode).
      const prefix = sql.charAt(i - 1);
      const escaped = syntax.backslashEscapes || ((prefix === 'E' || prefix === 'e') && !IDENT_CHAR.test(sql.charAt(i - 2)));
      const after = closeQuote(i, "'", escaped);
      content(i, after);
      i = after;
    } else if (c === '"') {
      const after = closeQuote(i, '"', syntax.backslashEscapes);
      content(i, after);
      i = after;
    } else if (c === '`' && syntax.backtickIdentifiers) {
      const after = closeQuote(i, '`', false);
      content(i, after);
      i = after;
    } else if ((c === '-' && next === '-' && (!syntax.dashCommentNeedsSpace || i + 2 >= n || /[\s\p{Cc}]/u.test(sql.charAt(i + 2)))) || (c === '#' && syntax.hashComments)) {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else if (syntax.nestedBlockComments && sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else {
          j++;
        }
      }
      if (depth > 0) unterminated('comment', i);
      // MySQL executable comments (/*! ... */) and optimizer hints (/*+ ... */) are part of the statement.
      if (syntax.executableComments && (sql[i + 2] === '!' || sql[i + 2] === '+')) content(i, j);
      i = j;
    } else if (c === '$' && syntax.dollarQuotes && !IDENT_CHAR.test(sql.charAt(i - 1))) {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(sql)?.[0];
      if (tag === undefined) {
        content(i, i + 1);
        i++;
      } else {
        const close = sql.indexOf(tag, i + tag.length);
        if (close < 0) unterminated(`dollar quote ${tag}`, i);
        content(i, close + tag.length);
        i = close + tag.length;
      }
    } else if (/\s/.test(c)) {
      i++;
    } else {
      content(i, i + 1);
      i++;
    }
  }
  finish();
  return statements;
}

/** The statements of a script as text (see splitScript). */
export function splitStatements(sql: string, engine: Engine): string[] {
  return splitScript(sql, engine).map((statement) => statement.text);
}
