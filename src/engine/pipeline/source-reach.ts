// The source is never written, not even through the target. When source and target are two
// databases of one server (or cluster), the target's account may have rights on the source's
// database too: a schema migration runs verbatim on the target session (`UPDATE app.orders …` on
// MySQL; dblink or COPY … TO PROGRAM for a PostgreSQL superuser), and the engine's read-only
// guards protect only the source session. So before anything is written (the plan and every step
// that opens both sides), an account that could write the source is refused, naming it (never its
// password) and each grant that lets it. No manifest field accepts it: the manifest author writes
// the migrations, and an opt-in of theirs would hand them the source. Databases on two servers
// need no such check; an account of one cannot reach the other.
import type { WriteAccess } from '../db/adapter.ts';
import { splitQualifiedName } from '../db/dialect.ts';
import { readIdentity, sameDatabaseRefusal, sameServer, type SideIdentity } from '../db/identity.ts';
import type { SqlSession } from '../db/session.ts';

/** How many routes a message lists. */
const NAMED_ROUTES = 4;

/** The refusal when the target's account may write the source's database; undefined when it may not. Pure. */
export function sourceReachRefusal(access: WriteAccess, source: Pick<SideIdentity, 'displayName' | 'databaseName'>): string | undefined {
  if (access.routes.length === 0) return undefined;
  const routes = access.routes.slice(0, NAMED_ROUTES);
  const more = access.routes.length > routes.length ? `; and ${String(access.routes.length - routes.length)} more` : '';
  return `the target account ${access.account} can write the source database "${source.databaseName}" on the same ${source.displayName} server: `
    + `${routes.join('; ')}${more}. Anything run with the target's credentials (a schema migration above all) could change the source: `
    + 'give the target an account with no rights on the source\'s database (see "Source and target on one server" in the README)';
}

/**
 * The source schemas a MySQL account must not write: the source's database, and any schema the
 * manifest's table names qualify (PostgreSQL checks its whole database and ignores them).
 */
export function sourceSchemas(databaseName: string, tables: readonly { name: string }[]): string[] {
  const qualifiers = tables.flatMap((t) => {
    const parts = splitQualifiedName(t.name);
    return parts.length > 1 ? [parts.slice(0, -1).join('.')] : [];
  });
  return [...new Set([databaseName, ...qualifiers])];
}

/** What the target's account may write of the source's database; no routes when the two are on different servers. */
export async function sourceReach(source: SqlSession, target: SqlSession, identities: { source: SideIdentity; target: SideIdentity }, tables: readonly { name: string }[]): Promise<WriteAccess> {
  if (!sameServer(identities.source, identities.target)) return { account: '', routes: [] };
  return source.dialect.sourceWriteAccess(source, target, sourceSchemas(identities.source.databaseName, tables));
}

/**
 * Why source and target must not be used together: one database on both sides, or (one server)
 * a target account that could write the source. Undefined when they are apart.
 */
export async function separationReason(source: SqlSession, target: SqlSession, tables: readonly { name: string }[]): Promise<string | undefined> {
  const identities = { source: await readIdentity(source), target: await readIdentity(target) };
  const same = sameDatabaseRefusal(identities.source, identities.target);
  if (same !== undefined) return same;
  return sourceReachRefusal(await sourceReach(source, target, identities, tables), identities.source);
}
