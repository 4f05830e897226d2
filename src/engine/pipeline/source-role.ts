// The source role, checked in the plan: the engine's own guards keep the source unwritten (read-only
// transactions, one statement at a time, parsed fragments), but a role that cannot write at all is
// the guard that does not depend on them. A superuser, or a role that may write the copied tables,
// is named in a warning; the README shows how to create a read-only role on both engines.
import type { RolePrivileges } from '../db/adapter.ts';
import type { SqlSession } from '../db/session.ts';

export interface SourceRoleCheck extends RolePrivileges {
  /** The role could write to the source (superuser, or write privileges on a copied table). */
  canWrite: boolean;
}

export async function checkSourceRole(source: SqlSession, tables: readonly string[]): Promise<SourceRoleCheck> {
  const privileges = await source.dialect.rolePrivileges(source, tables);
  return { ...privileges, canWrite: privileges.superuser || privileges.writableTables.length > 0 };
}

/** What the role may do beyond reading, for messages ("is a superuser", "may write to a, b"). */
function whatItMayDo(check: SourceRoleCheck): string {
  if (check.superuser) return 'is a superuser';
  const tables = check.writableTables;
  return `may write to ${tables.length > 3 ? `${tables.slice(0, 3).join(', ')} and ${String(tables.length - 3)} more table(s)` : tables.join(', ')}`;
}

/** The plan warning for a role that could write, or undefined for a read-only one. Pure. */
export function sourceRoleWarning(check: SourceRoleCheck): string | undefined {
  if (!check.canWrite) return undefined;
  return `the source role ${check.user} ${whatItMayDo(check)}: use a read-only role for the source (see "A read-only source role" in the README)`;
}

/**
 * The plan's refusal of a role that could write, unless spec.source.acceptWritableRole accepts it
 * (then undefined, and the warning stands). Pure.
 */
export function sourceRoleRefusal(check: SourceRoleCheck, accepted: boolean, ownerNeeded = false): string | undefined {
  if (!check.canWrite || accepted) return undefined;
  // PostgreSQL publishes a table for logical decoding only to its owner: a role that can write, unavoidably.
  const capture = ownerNeeded ? '; ChangeCapture from a PostgreSQL source needs a role that owns the tables (only an owner may publish them), so it needs acceptWritableRole' : '';
  return `the source role ${check.user} ${whatItMayDo(check)}: refused, the source must be read by a role that cannot write `
    + `(see "A read-only source role" in the README), or set spec.source.acceptWritableRole: true to accept it${capture}`;
}
