// MySQL's `ON UPDATE CURRENT_TIMESTAMP` on a PostgreSQL target: a trigger function and a BEFORE
// UPDATE trigger on the created table, made with the post-copy DDL and recorded
// (created-functions.ts) so that a rollback drops the function it made (the trigger goes with the
// table). Both are named from the table: `<table>_on_update`, cut with a hash past 63 bytes.
//
// What the trigger does, as MySQL does: when an UPDATE changes the row but leaves the column as it
// was, the column becomes the current time; a value the UPDATE sets is kept. Two differences, both
// on purpose: an UPDATE that sets the column to its old value while changing another gets the
// current time (PostgreSQL cannot tell an explicit assignment of the same value); and the
// migration's own sessions (application_name datamigration…) are left alone, so a sync writes the
// source's timestamps, not the target's clock.
import { adapterFor } from '../db/adapter.ts';
import { tableAndSchema } from '../db/dialect.ts';
import { hashedName, MAX_IDENTIFIER_BYTES } from './index-names.ts';
import type { TableInfo } from './model.ts';

export interface OnUpdateTrigger {
  /** The target table (as the manifest names it). */
  table: string;
  /** The function, quoted and qualified as created, with its empty argument list: what DROP FUNCTION takes. */
  functionSignature: string;
  /** The function's and trigger's unquoted name. */
  name: string;
  /** The columns it sets (target names). */
  columns: string[];
  /** Run in one transaction: the function, the trigger (dropped and made again on a rerun). */
  statements: string[];
}

/** The application_name prefix of every session this project opens (db/*\/connection.ts). */
export const OWN_SESSION_PREFIX = 'datamigration';

/** The trigger name for a table: `<table>_on_update`, or cut and hashed to fit. */
export function onUpdateName(table: string): string {
  const name = `${table}_on_update`;
  return Buffer.byteLength(name) <= MAX_IDENTIFIER_BYTES ? name : hashedName(name, table, 'on_update');
}

/**
 * The trigger that reproduces the table's ON UPDATE columns on PostgreSQL; undefined when it has
 * none the target table has (`columnNames`: source column → target column).
 */
export function onUpdateTrigger(source: Pick<TableInfo, 'columns'>, target: { table: string; columnNames: ReadonlyMap<string, string> }): OnUpdateTrigger | undefined {
  const columns = source.columns.flatMap((c) => {
    const name = target.columnNames.get(c.name);
    return c.onUpdate !== undefined && name !== undefined ? [name] : [];
  });
  if (columns.length === 0) return undefined;
  const q = adapterFor('postgres');
  const { table, schema } = tableAndSchema(target.table);
  const name = onUpdateName(table);
  const qualifiedFunction = `${schema === undefined ? '' : `${q.quoteIdent(schema)}.`}${q.quoteIdent(name)}`;
  const sets = columns.map((c) => `    IF NEW.${q.quoteIdent(c)} IS NOT DISTINCT FROM OLD.${q.quoteIdent(c)} THEN NEW.${q.quoteIdent(c)} := CURRENT_TIMESTAMP; END IF;`);
  const body = [
    'BEGIN',
    `  IF current_setting('application_name') LIKE ${q.quoteLiteral(`${OWN_SESSION_PREFIX}%`)} THEN RETURN NEW; END IF;`,
    '  IF NEW IS DISTINCT FROM OLD THEN',
    ...sets,
    '  END IF;',
    '  RETURN NEW;',
    'END',
  ].join('\n');
  const tag = dollarTag(body);
  return {
    table: target.table, name, columns, functionSignature: `${qualifiedFunction}()`,
    statements: [
      `CREATE OR REPLACE FUNCTION ${qualifiedFunction}() RETURNS trigger LANGUAGE plpgsql AS ${tag}\n${body}\n${tag}`,
      `DROP TRIGGER IF EXISTS ${q.quoteIdent(name)} ON ${q.quoteQualified(target.table)}`,
      `CREATE TRIGGER ${q.quoteIdent(name)} BEFORE UPDATE ON ${q.quoteQualified(target.table)} FOR EACH ROW EXECUTE FUNCTION ${qualifiedFunction}()`,
    ],
  };
}

/** A dollar quote the body does not contain (a quoted column name could hold `$on_update$`). */
function dollarTag(body: string): string {
  let tag = '$on_update$';
  for (let i = 1; body.includes(tag); i++) tag = `$on_update${String(i)}$`;
  return tag;
}

/** The table's ON UPDATE trigger where the migration makes one (MySQL → PostgreSQL); undefined otherwise. */
export function onUpdateTriggerFor(source: Pick<TableInfo, 'columns' | 'engine'>, target: { table: string; columnNames: ReadonlyMap<string, string> }, to: 'postgres' | 'mysql'): OnUpdateTrigger | undefined {
  return source.engine === 'mysql' && to === 'postgres' ? onUpdateTrigger(source, target) : undefined;
}
