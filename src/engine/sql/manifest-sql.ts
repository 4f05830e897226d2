// Every place a DataMigration puts text into SQL, checked at once for the plan: each refusal
// names its field (spec.tables[orders].where), so one plan run reports them all.
import type { DataMigrationSpec } from '../../api/types.ts';
import { splitQualifiedName, type Engine } from '../db/dialect.ts';
import { isCredentialTable } from './deny-list.ts';
import { checkDefault, checkExpression, checkIdentifier, checkQualifiedName, checkRuleQuery, checkWhere, FragmentRefused } from './fragments.ts';
import { pathKey } from './refusal.ts';

/**
 * The spec fields that reach SQL (a DataMigration's spec, or the engine's settings made from it);
 * `engines` says which grammar each side speaks.
 */
export interface ManifestSql {
  tables?: readonly {
    name: string; target?: string; key?: readonly string[]; where?: string;
    columns?: readonly { name: string; target?: string; expression?: string; default?: string }[];
    dedupe?: { by: readonly string[]; orderBy?: string };
  }[];
  strategy?: { incremental?: { column?: string | undefined } };
  validation?: { rules?: readonly { name: string; source?: string; target?: string }[] };
}

/** Refuses a source table that is a catalog of credentials (see deny-list.ts). */
function checkNotCredentialTable(engine: Engine, name: string, field: string): void {
  const parts = splitQualifiedName(name);
  const table = parts.at(-1) ?? name;
  if (isCredentialTable(engine, parts.length > 1 ? parts[0] : undefined, table)) {
    throw new FragmentRefused(field, 'an application table', `the credentials catalog ${name} (its rows would copy secrets into the target)`);
  }
}

/**
 * Checks every SQL fragment and identifier of a spec; returns the refusals (empty: all
 * confined). Fragments on the source side (where, expression, default, dedupe, key, source
 * names, rules' source queries) are read in the source's grammar; target names and rules'
 * target queries in the target's.
 */
export function manifestSqlRefusals(spec: ManifestSql | Pick<DataMigrationSpec, 'tables' | 'validation' | 'strategy'>, engines: { source: Engine; target: Engine }): FragmentRefused[] {
  const refusals: FragmentRefused[] = [];
  /** Runs one check; false (and the refusal recorded) when it refused. */
  const attempt = (check: () => unknown): boolean => {
    try {
      check();
      return true;
    } catch (error) {
      if (error instanceof FragmentRefused) refusals.push(error);
      else throw error;
      return false;
    }
  };
  const { source, target } = engines;
  /** A name used on the source and, unless renamed, on the target too (one refusal per field). */
  const sourceAndTarget = (check: typeof checkIdentifier, name: string, renamed: boolean, field: string): boolean => {
    const valid = attempt(() => check(source, name, field));
    if (valid && !renamed && target !== source) attempt(() => check(target, name, field));
    return valid;
  };
  for (const table of spec.tables ?? []) {
    const at = `spec.tables[${pathKey(table.name)}]`;
    if (sourceAndTarget(checkQualifiedName, table.name, table.target !== undefined, `${at}.name`)) attempt(() => { checkNotCredentialTable(source, table.name, `${at}.name`); });
    if (table.target !== undefined) attempt(() => checkQualifiedName(target, table.target, `${at}.target`));
    const renamed = new Set((table.columns ?? []).filter((c) => c.target !== undefined).map((c) => c.name));
    for (const [i, column] of (table.key ?? []).entries()) sourceAndTarget(checkIdentifier, column, renamed.has(column), `${at}.key[${i}]`);
    if (table.where !== undefined) attempt(() => checkWhere(source, table.where ?? '', `${at}.where`));
    for (const column of table.columns ?? []) {
      const columnAt = `${at}.columns[${pathKey(column.name)}]`;
      sourceAndTarget(checkIdentifier, column.name, column.target !== undefined, `${columnAt}.name`);
      if (column.target !== undefined) attempt(() => checkIdentifier(target, column.target, `${columnAt}.target`));
      if (column.expression !== undefined) attempt(() => checkExpression(source, column.expression ?? '', `${columnAt}.expression`));
      if (column.default !== undefined) attempt(() => checkDefault(source, column.default ?? '', `${columnAt}.default`));
    }
    if (table.dedupe) {
      for (const [i, column] of table.dedupe.by.entries()) attempt(() => checkIdentifier(source, column, `${at}.dedupe.by[${i}]`));
      if (table.dedupe.orderBy !== undefined) attempt(() => checkIdentifier(source, table.dedupe?.orderBy, `${at}.dedupe.orderBy`));
    }
  }
  const incremental = spec.strategy?.incremental;
  if (incremental?.column !== undefined) sourceAndTarget(checkIdentifier, incremental.column, false, 'spec.strategy.incremental.column');
  for (const rule of spec.validation?.rules ?? []) {
    const at = `spec.validation.rules[${pathKey(rule.name)}]`;
    if (rule.source !== undefined) attempt(() => checkRuleQuery(source, rule.source ?? '', `${at}.source`));
    if (rule.target !== undefined) attempt(() => checkRuleQuery(target, rule.target ?? '', `${at}.target`));
  }
  return refusals;
}
