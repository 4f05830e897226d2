// MySQL/MariaDB: what the target's account may write of the source's schemas on the same server
// (see pipeline/source-reach.ts). Read on the target session with SHOW GRANTS, which a plain
// account may run for itself; the decision is grants.ts's.
import type { WriteAccess } from '../adapter.ts';
import { text } from '../catalog-rows.ts';
import type { SqlSession } from '../session.ts';
import { grantedRoles, writeGrants, type GrantSet } from './grants.ts';

type Role = { name: string; host?: string };

async function showGrants(session: SqlSession, sql: string): Promise<string[]> {
  const rows = await session.query(sql);
  return rows.map((row) => text(Object.values(row)[0]) ?? '');
}

/**
 * MariaDB shows a role's grants (and those of the roles granted to it) to a session that has taken
 * it, and PUBLIC's to every session: each role the account holds is taken in turn, the session's
 * own role put back afterwards. A migration script may take any of them (SET ROLE), so all count.
 */
async function mariadbGrantSets(session: SqlSession, own: string[], roles: readonly Role[]): Promise<GrantSet[]> {
  const quote = (name: string): string => session.dialect.quoteIdent(name);
  const [current] = await session.query('SELECT CURRENT_ROLE() AS r');
  const before = text(current?.r);
  const sets: GrantSet[] = [{ lines: own }];
  try {
    await session.query('SET ROLE NONE');
    const base = await showGrants(session, 'SHOW GRANTS');
    sets.push({ lines: base });
    for (const role of roles) {
      await session.query(`SET ROLE ${quote(role.name)}`);
      sets.push({ lines: (await showGrants(session, 'SHOW GRANTS')).filter((line) => !base.includes(line)), via: role.name });
    }
  } finally {
    await session.query(before === undefined ? 'SET ROLE NONE' : `SET ROLE ${quote(before)}`);
  }
  return sets;
}

/**
 * MySQL 8 shows roles' privileges with SHOW GRANTS … USING (roles granted to the account, and the
 * server's mandatory_roles). Not tried against a MySQL server here (the tests run MariaDB): if it
 * fails, the step fails with the server's error rather than passing unchecked.
 */
async function mysqlGrantSets(session: SqlSession, own: string[], roles: readonly Role[]): Promise<GrantSet[]> {
  const quote = (name: string): string => session.dialect.quoteIdent(name);
  const [mandatory] = await session.query("SELECT IFNULL(@@GLOBAL.mandatory_roles, '') AS m").catch(() => []);
  const listed = text(mandatory?.m) ?? '';
  const all = [...roles, ...(listed.trim() === '' ? [] : grantedRoles([`GRANT ${listed} TO x`]))];
  if (all.length === 0) return [{ lines: own }];
  const using = all.map((r) => `${quote(r.name)}@${quote(r.host ?? '%')}`).join(', ');
  const lines = await showGrants(session, `SHOW GRANTS FOR CURRENT_USER() USING ${using}`);
  return [{ lines: own }, { lines: lines.filter((line) => !own.includes(line)), via: all.map((r) => r.name).join(', ') }];
}

export async function mysqlSourceWriteAccess(target: SqlSession, schemas: readonly string[]): Promise<WriteAccess> {
  const [user] = await target.query('SELECT CURRENT_USER() AS who');
  const own = await showGrants(target, 'SHOW GRANTS FOR CURRENT_USER()');
  const roles = grantedRoles(own);
  const sets = (await target.dialect.serverFlavor(target)) === 'mariadb' ? await mariadbGrantSets(target, own, roles) : await mysqlGrantSets(target, own, roles);
  return { account: text(user?.who) ?? '', routes: writeGrants(sets, schemas) };
}
