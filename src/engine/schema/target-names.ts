// Names the target must hold as they are, checked by the plan before any catalog of the target is
// read for them: a table or column name the target engine would cut (PostgreSQL keeps 63 bytes, so
// two 64-character MySQL names agreeing in their first 63 would become one table) or cannot hold
// at all (MariaDB names: no character outside the Basic Multilingual Plane; asking its catalog
// about one fails with "Illegal mix of collations"), and two source tables sent to one target table.
import type { Engine } from '../db/dialect.ts';
import { splitQualifiedName } from '../db/dialect.ts';
import { checkIdentifier } from '../sql/fragments.ts';
import { FragmentRefused } from '../sql/refusal.ts';

/** Why `name` cannot be a name on the target, or undefined when it can. */
function identifierReason(engine: Engine, name: string, what: string): string | undefined {
  try {
    checkIdentifier(engine, name, what);
    return undefined;
  } catch (error) {
    if (error instanceof FragmentRefused) return error.message;
    throw error;
  }
}

/** Why a table's target name cannot be created or found on the target as it is spelled; [] when it can. */
export function targetTableNameErrors(spec: { name: string; target?: string | undefined }, engine: Engine): string[] {
  const target = spec.target ?? spec.name;
  const hint = spec.target === undefined ? ` (map it to another name with spec.tables[].target, or leave table ${spec.name} out)` : '';
  return splitQualifiedName(target).flatMap((part) => {
    const reason = identifierReason(engine, part, `the target name of table ${spec.name}`);
    return reason === undefined ? [] : [`${reason}${hint}`];
  });
}

/** Why columns of a table the plan creates cannot be named on the target as they are; [] when they can. */
export function targetColumnNameErrors(table: string, columns: Iterable<string>, engine: Engine): string[] {
  const errors: string[] = [];
  for (const column of columns) {
    const reason = identifierReason(engine, column, `table ${table}: the target name of column ${column}`);
    if (reason !== undefined) errors.push(`${reason} (rename it with spec.tables[].columns[].target, or create the table with a schema migration)`);
  }
  return errors;
}

/** Two or more source tables mapped to one target table: their rows would be mixed (and the second create fails). */
export function sharedTargetErrors(specs: readonly { name: string; target?: string | undefined }[]): string[] {
  const byTarget = new Map<string, string[]>();
  for (const spec of specs) {
    // PostgreSQL and MySQL (on Linux) compare table names exactly; quoting is not part of the name.
    const key = splitQualifiedName(spec.target ?? spec.name).join('.');
    byTarget.set(key, [...(byTarget.get(key) ?? []), spec.name]);
  }
  return [...byTarget].filter(([, sources]) => sources.length > 1).map(([target, sources]) =>
    `tables ${sources.join(' and ')} are all copied into target table ${target}: give each its own spec.tables[].target`);
}
