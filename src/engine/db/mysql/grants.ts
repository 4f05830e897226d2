// What a MySQL/MariaDB account may write, read from the server's own SHOW GRANTS lines (pure: the
// I/O is in reach.ts). information_schema's *_PRIVILEGES tables show only the account's own
// grants, not those of its roles or of PUBLIC; SHOW GRANTS shows them all, as GRANT statements
// with every name backquoted, so they are read here with a quote-aware tokenizer, not a regex.

interface Token {
  kind: 'word' | 'name' | 'punct';
  /** Unquoted value: a word as written, a `name` or 'string' without its quotes. */
  value: string;
  /** Where the token starts and ends in the line (for quoting the grant back in messages). */
  start: number;
  end: number;
}

/** Splits a line into words, quoted names and strings (`a``b`, 'x''y', "z"), and single punctuation. */
export function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    const char = line[i] ?? '';
    if (/\s/.test(char)) {
      i += 1;
    } else if (char === '`' || char === "'" || char === '"') {
      let value = '';
      let j = i + 1;
      for (; j < line.length; j += 1) {
        const c = line[j] ?? '';
        if (c === '\\' && char !== '`') {
          value += line[j + 1] ?? '';
          j += 1;
        } else if (c === char) {
          if (line[j + 1] !== char) break;
          value += char;
          j += 1;
        } else {
          value += c;
        }
      }
      tokens.push({ kind: 'name', value, start: i, end: Math.min(j + 1, line.length) });
      i = j + 1;
    } else if (/[\w$]/.test(char)) {
      let j = i;
      while (j < line.length && /[\w$]/.test(line[j] ?? '')) j += 1;
      tokens.push({ kind: 'word', value: line.slice(i, j), start: i, end: j });
      i = j;
    } else {
      tokens.push({ kind: 'punct', value: char, start: i, end: i + 1 });
      i += 1;
    }
  }
  return tokens;
}

export type GrantLine =
  | {
    kind: 'privileges';
    /** Upper case, columns dropped: SELECT, ALL PRIVILEGES, CREATE TEMPORARY TABLES. */
    privileges: string[];
    /** *.* (global), db.* (database: a LIKE pattern), db.name (a table, or a routine with `routine`). */
    level: 'global' | 'database' | 'object';
    database?: string;
    /** The grant as the server wrote it, up to its grantee (no password is in that part). */
    text: string;
    toPublic: boolean;
    /** The grantee when it is a role (no @host), as roles granted to PUBLIC show theirs. */
    toRole?: string;
  }
  | { kind: 'roles'; roles: { name: string; host?: string }[] }
  | { kind: 'other' };

const isWord = (token: Token | undefined, ...words: string[]): boolean => token?.kind === 'word' && words.includes(token.value.toUpperCase());

/** Splits tokens at commas outside parentheses. */
function commaSeparated(tokens: readonly Token[]): Token[][] {
  const items: Token[][] = [[]];
  let depth = 0;
  for (const token of tokens) {
    if (token.value === '(' && token.kind === 'punct') depth += 1;
    if (token.value === ')' && token.kind === 'punct') depth -= 1;
    if (depth === 0 && token.kind === 'punct' && token.value === ',') items.push([]);
    else items.at(-1)?.push(token);
  }
  return items.filter((item) => item.length > 0);
}

/** One line of SHOW GRANTS: privileges on an object, roles granted, or something else (SET DEFAULT ROLE, REVOKE). */
export function parseGrantLine(line: string): GrantLine {
  const tokens = tokenize(line);
  if (!isWord(tokens[0], 'GRANT')) return { kind: 'other' };
  let depth = 0;
  let on = -1;
  let to = -1;
  for (let i = 1; i < tokens.length; i += 1) {
    const token = tokens[i];
    if (token?.kind === 'punct' && token.value === '(') depth += 1;
    if (token?.kind === 'punct' && token.value === ')') depth -= 1;
    if (depth !== 0) continue;
    if (on < 0 && isWord(token, 'ON')) on = i;
    if (isWord(token, 'TO')) {
      to = i;
      break;
    }
  }
  if (to < 0) return { kind: 'other' };
  if (on < 0) {
    // GRANT `r1`, `r2` TO … (MySQL: `r1`@`%`).
    const roles = commaSeparated(tokens.slice(1, to)).map((item) => ({
      name: item[0]?.value ?? '',
      ...(item[1]?.value === '@' && item[2] ? { host: item[2].value } : {}),
    }));
    return { kind: 'roles', roles };
  }
  // UPDATE (`a`, `b`): a column-level grant is the privilege all the same.
  const privileges = commaSeparated(tokens.slice(1, on)).map((item) => {
    const columns = item.findIndex((t) => t.kind === 'punct' && t.value === '(');
    return (columns < 0 ? item : item.slice(0, columns)).filter((t) => t.kind === 'word').map((t) => t.value.toUpperCase()).join(' ');
  });
  let object = tokens.slice(on + 1, to);
  if (isWord(object[0], 'TABLE', 'FUNCTION', 'PROCEDURE', 'PACKAGE')) object = object.slice(isWord(object[1], 'BODY') ? 2 : 1);
  const [first, dot, second] = object;
  const star = (token: Token | undefined): boolean => token?.kind === 'punct' && token.value === '*';
  const text = line.slice(tokens[0]?.start ?? 0, tokens[to - 1]?.end ?? line.length);
  // Account names are backquoted; the bare word is MariaDB's PUBLIC (every account).
  const grantee = tokens[to + 1];
  const toPublic = isWord(grantee, 'PUBLIC') && tokens[to + 2]?.value !== '@';
  const role = grantee !== undefined && !toPublic && tokens[to + 2]?.value !== '@' ? { toRole: grantee.value } : {};
  if (object.length !== 3 || dot?.value !== '.' || first === undefined || second === undefined) {
    // GRANT PROXY ON 'u'@'h', or a name without its database: nothing about the source.
    return { kind: 'other' };
  }
  if (star(first) && star(second)) return { kind: 'privileges', privileges, level: 'global', text, toPublic, ...role };
  if (star(first)) return { kind: 'other' };
  return { kind: 'privileges', privileges, level: star(second) ? 'database' : 'object', database: first.value, text, toPublic, ...role };
}

/**
 * Whether a database-level grant's name (a LIKE pattern: `_` one character, `%` any, `\` quotes
 * the next) covers `name`. Compared without case: a grant that might cover the source counts
 * (lower_case_table_names decides on the server; the doubt resolves to "covers").
 */
export function grantPatternMatches(pattern: string, name: string): boolean {
  let regex = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const char = pattern[i] ?? '';
    if (char === '\\' && i + 1 < pattern.length) {
      i += 1;
      regex += (pattern[i] ?? '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (char === '%') {
      regex += '[\\s\\S]*';
    } else if (char === '_') {
      regex += '[\\s\\S]';
    } else {
      regex += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${regex}$`, 'iu').test(name);
}

/**
 * Privileges that change what a schema holds or does: its rows, its tables and views, its
 * triggers, routines and events (a routine runs with its definer's rights, so EXECUTE counts).
 * SUPER counts only globally (the brief of issue 13: it overrides read_only and more).
 */
const WRITES = new Set(['ALL', 'ALL PRIVILEGES', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER', 'INDEX', 'CREATE VIEW',
  'TRIGGER', 'CREATE ROUTINE', 'ALTER ROUTINE', 'EVENT', 'DELETE HISTORY', 'EXECUTE']);

/** SHOW GRANTS output, and how the account has it: directly, or through a role (`via`). */
export interface GrantSet {
  lines: readonly string[];
  via?: string;
}

/**
 * Each grant that lets the account write one of `schemas`, quoted as the server wrote it and
 * saying how the account has it ("through role r1", "to PUBLIC"). Pure; empty when none does.
 */
export function writeGrants(sets: readonly GrantSet[], schemas: readonly string[]): string[] {
  const found = new Map<string, string>();
  for (const set of sets) {
    for (const line of set.lines) {
      const grant = parseGrantLine(line);
      if (grant.kind !== 'privileges' || found.has(grant.text)) continue;
      const writes = grant.privileges.filter((p) => WRITES.has(p) || (p === 'SUPER' && grant.level === 'global'));
      if (writes.length === 0) continue;
      const database = grant.database ?? '';
      const covers = grant.level === 'global'
        || (grant.level === 'database' ? schemas.some((s) => grantPatternMatches(database, s)) : schemas.some((s) => s.toLowerCase() === database.toLowerCase()));
      if (!covers) continue;
      const via = set.via ?? grant.toRole;
      const how = grant.toPublic ? ' (to PUBLIC: every account has it)' : via !== undefined ? ` (through role ${via})` : '';
      found.set(grant.text, `${grant.text}${how}`);
    }
  }
  return [...found.values()];
}

/** The roles granted in these lines (GRANT `r` TO …), as SET ROLE and USING name them. */
export function grantedRoles(lines: readonly string[]): { name: string; host?: string }[] {
  return lines.flatMap((line) => {
    const grant = parseGrantLine(line);
    return grant.kind === 'roles' ? grant.roles : [];
  });
}
