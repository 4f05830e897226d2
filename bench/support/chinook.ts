// The vendored Chinook scripts (test/fixtures/chinook/) loaded into a database of the caller's:
// the scripts' own DROP/CREATE DATABASE, USE and \c lines are left out, the rest runs as written
// through the engine's own client (psql, mariadb), as their author meant them to be run.
import { readFile } from 'node:fs/promises';
import { runChecked } from '../../test/support/process.ts';

const FIXTURES = new URL('../../test/fixtures/chinook/', import.meta.url);
const OWN_DATABASE = /^(DROP DATABASE|CREATE DATABASE|USE |\\c )/;

/** The script for `engine` without the lines that name its own database. */
export async function chinookScript(engine: 'postgres' | 'mysql'): Promise<string> {
  const text = await readFile(new URL(engine === 'postgres' ? 'Chinook_PostgreSql.sql' : 'Chinook_MySql.sql', FIXTURES), 'utf8');
  return text.split('\n').filter((line) => !OWN_DATABASE.test(line)).join('\n');
}

/** Loads Chinook into the (empty) database of `url`; the password goes through the environment, not argv. */
export async function loadChinook(engine: 'postgres' | 'mysql', url: string): Promise<void> {
  await loadSqlScript(engine, url, await chinookScript(engine));
}

/** Runs a SQL script through psql or mariadb on the database of `url`, stopping at its first error. */
export async function loadSqlScript(engine: 'postgres' | 'mysql', url: string, input: string): Promise<void> {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  if (engine === 'postgres') {
    await runChecked('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-o', '/dev/null', parsed.toString()], { input, env: { ...process.env, PGPASSWORD: password } });
    return;
  }
  const args = ['--no-defaults', `-h${parsed.hostname}`, `-P${parsed.port || '3306'}`, `-u${decodeURIComponent(parsed.username)}`, decodeURIComponent(parsed.pathname.slice(1))];
  await runChecked('mariadb', args, { input, env: { ...process.env, MYSQL_PWD: password } });
}
