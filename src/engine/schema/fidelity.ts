// The plan's schema-wide decisions, taken once over all its tables (a table's own DDL is ddl.ts):
// the target name of every index (unique in the target schema, recorded on the plan's IndexInfo,
// where the post-copy DDL reads it), foreign keys to tables the migration does not copy (not
// created, named), partitioned tables (created plain, named), and every such difference said once
// per reason (notices.ts), with what else of the source is not carried over (carry-over.ts). A
// name the plan chose (an index, an ON UPDATE trigger's function) that an object the migration
// did not create already holds on the target refuses the plan.
import type { Engine } from '../db/dialect.ts';
import { tableAndSchema } from '../db/dialect.ts';
import type { SqlSession } from '../db/session.ts';
import { ownerColumn } from '../migrations/ownership.ts';
import { CREATED_TABLES_TABLE, createdTables } from './created-tables.ts';
import { referencedTarget, type TableDdl } from './ddl.ts';
import { targetIndexNames, type NamingTable } from './index-names.ts';
import type { IndexInfo, TableInfo } from './model.ts';
import { groupNotices, type Notice } from './notices.ts';
import { foreignFunctions } from './created-functions.ts';
import { onUpdateTriggerFor } from './on-update.ts';

export interface FidelityTable {
  spec: { name: string; target?: string | undefined };
  source: TableInfo;
  /** Present when the plan creates the target table. */
  ddl?: Pick<TableDdl, 'notices'> & Partial<Pick<TableDdl, 'columnNames'>> | undefined;
}

export const FIDELITY_REASONS = {
  indexNames: 'index names made unique in the target schema (PostgreSQL names indexes per schema, MySQL per table)',
  foreignKeys: 'foreign keys to tables this migration does not copy are not created (add the referenced table to spec.tables, or create the key after the migration)',
  partitions: 'partitioned tables are created as plain tables on the target (rows read once, through the partitioned table; partitioning is not carried over)',
} as const;

const RELATION_KINDS: Record<string, string> = {
  r: 'table', p: 'partitioned table', i: 'index', I: 'partitioned index', S: 'sequence', v: 'view', m: 'materialized view', c: 'composite type', f: 'foreign table',
};

/**
 * Decides index names (setting IndexInfo.targetName where it differs from the source's) and
 * returns the grouped warnings and the refusals. Tables the migration creates now, or created on
 * an earlier run, get indexes and foreign keys after the copy; only they are checked.
 */
export async function schemaFidelity(
  target: SqlSession, tables: readonly FidelityTable[], settings: { targetEngine: Engine; uid: string },
  /** What else of the source is not carried over (carry-over.ts: views, routines, triggers, …). */
  sourceNotices: readonly Notice[] = [],
): Promise<{ warnings: string[]; errors: string[] }> {
  const notices: Notice[] = [...tables.flatMap((t) => t.ddl?.notices ?? []), ...sourceNotices];
  const errors: string[] = [];
  // Records written before uids existed (no migration_uid column) are another migration's: none are ours.
  const ours = tables.some((t) => !t.ddl) && await ownerColumn(target, CREATED_TABLES_TABLE) === 'migration_uid';
  const earlier = new Set(ours ? await createdTables(target, settings.uid) : []);
  const created = tables.filter((t) => t.ddl !== undefined || earlier.has(t.spec.target ?? t.spec.name));
  const tableNames = new Map(tables.map((t) => [t.source.name, t.spec.target ?? t.spec.name]));
  for (const table of created) {
    if (table.ddl && table.source.partitions !== undefined) {
      notices.push({ reason: FIDELITY_REASONS.partitions, subject: `${table.spec.name} (${String(table.source.partitions)} partitions)` });
    }
    for (const fk of table.source.foreignKeys) {
      if (referencedTarget(fk, tableNames) === undefined) notices.push({ reason: FIDELITY_REASONS.foreignKeys, subject: `${table.spec.name}.${fk.name} → ${fk.referencedTable}` });
    }
  }
  if (settings.targetEngine === 'postgres') {
    const naming = tables.map((t): NamingTable => {
      const { table, schema } = tableAndSchema(t.spec.target ?? t.spec.name);
      return {
        key: t.spec.target ?? t.spec.name, table, schema,
        indexes: createdIndexes(t.source).map((i) => i.name),
        // The created table's primary key index and identity sequences take these names.
        reserved: [`${table}_pkey`, ...t.source.columns.filter((c) => c.autoIncrement).map((c) => `${table}_${c.name}_seq`)],
      };
    });
    const names = targetIndexNames(naming);
    for (const t of tables) {
      for (const index of createdIndexes(t.source)) {
        const name = names.get(t.spec.target ?? t.spec.name)?.get(index.name);
        if (name === undefined || name === index.name) continue;
        index.targetName = name;
        if (created.includes(t)) notices.push({ reason: FIDELITY_REASONS.indexNames, subject: `${t.spec.name}.${index.name} → ${name}` });
      }
    }
    errors.push(...await nameClashes(target, created));
    // ON UPDATE triggers' functions: CREATE OR REPLACE must never replace someone else's.
    const triggers = tables.flatMap((t) => {
      const columnNames = t.ddl?.columnNames;
      const trigger = columnNames && onUpdateTriggerFor(t.source, { table: t.spec.target ?? t.spec.name, columnNames }, settings.targetEngine);
      return trigger ? [trigger] : [];
    });
    for (const trigger of await foreignFunctions(target, settings.uid, triggers)) {
      errors.push(`the ON UPDATE CURRENT_TIMESTAMP columns of table ${trigger.table} (${trigger.columns.join(', ')}) need a trigger function ${trigger.functionSignature}, but a function of that name exists already on the target (this migration did not create it): rename or drop it there, or create table ${trigger.table} with a schema migration`);
    }
  }
  return { warnings: groupNotices(notices), errors };
}

/** The indexes PostgreSQL gets for a source table (a FULLTEXT index is not created there; carry-over.ts names it). */
function createdIndexes(source: TableInfo): IndexInfo[] {
  return [...source.uniqueKeys, ...source.indexes].filter((i) => i.fulltext !== true);
}

/** Index names the plan chose that another object in the target schema holds (not an index of the same table). */
async function nameClashes(target: SqlSession, tables: readonly FidelityTable[]): Promise<string[]> {
  const wanted = tables.flatMap((t) => {
    const { table, schema } = tableAndSchema(t.spec.target ?? t.spec.name);
    return createdIndexes(t.source).map((index) => ({ t, table, schema: schema ?? '', index: index.name, name: index.targetName ?? index.name }));
  });
  if (wanted.length === 0) return [];
  const values = wanted.map((_, i) => `($${String(2 * i + 1)}, $${String(2 * i + 2)})`).join(', ');
  const rows = await target.query(
    `SELECT w.schema_name AS schema_name, w.name AS name, c.relkind AS kind, owner.relname AS on_table
       FROM (VALUES ${values}) AS w(schema_name, name)
       JOIN pg_catalog.pg_namespace n ON n.nspname = COALESCE(NULLIF(w.schema_name, ''), pg_catalog.current_schema())
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
       LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
       LEFT JOIN pg_catalog.pg_class owner ON owner.oid = i.indrelid`,
    wanted.flatMap((w) => [w.schema, w.name]),
  );
  const errors: string[] = [];
  for (const w of wanted) {
    const holder = rows.find((r) => String(r.schema_name) === w.schema && String(r.name) === w.name);
    if (!holder) continue;
    const kind = RELATION_KINDS[String(holder.kind)] ?? 'relation';
    // The same table's index of that name: made by an earlier run of this migration (or by hand); kept.
    if (holder.on_table !== null && String(holder.on_table) === w.table) continue;
    const what = holder.on_table === null ? `a ${kind}` : `an ${kind} of table ${String(holder.on_table)}`;
    errors.push(`index ${w.index} of table ${w.t.spec.name} is created on the target as ${w.name}, but ${w.name} exists already in the target schema (${what} this migration did not create): rename or drop it there, or create table ${w.t.spec.target ?? w.t.spec.name} with a schema migration`);
  }
  return errors;
}
