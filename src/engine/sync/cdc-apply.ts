// Applies captured row changes (PostgreSQL's pgoutput.ts, MySQL's binlog-stream.ts) to the target, one statement per change,
// inside the transaction the caller (cdc-follow.ts) opened: an insert or update is an upsert of
// the whole row by the key, a delete a delete by the key, an update that moved the key a delete of
// the old key and an upsert of the new. Replaying a change already applied leaves the same row.
// Values stay the source's text (bytes for MySQL binary columns), converted by the copy plan's
// converters, so the target reads them as the copy wrote them.
import type { SqlSession } from '../db/session.ts';
import type { Converter, TableCopyPlan } from '../copy/plan-types.ts';
import { splitQualifiedName } from '../db/dialect.ts';

export interface CaptureColumn {
  /** The source column's name. */
  source: string;
  target: string;
  convert?: Converter;
  /** The target's SQL around the value's placeholder, where it cannot take the value as is (MySQL bit columns from hex). */
  valueSql?: (placeholder: string) => string;
}

/** One migrated table as the change capture applies it. */
export interface CaptureTable {
  sourceSchema: string;
  sourceTable: string;
  /** The target table as the manifest names it (maybe schema-qualified). */
  targetTable: string;
  /** Source key columns (each also in `columns`): the target row a change is about. */
  key: string[];
  /** Captured columns, key columns first. */
  columns: CaptureColumn[];
}

/**
 * A source table as a change lays out its columns: pgoutput's Relation, or one the binlog stream
 * builds per table version. Layouts are cached per object, so a new layout needs a new object.
 */
export interface CapturedRelation {
  schema: string;
  name: string;
  columns: readonly { name: string }[];
}

/** A column's value: the source's text, bytes (MySQL binary columns), NULL, or 'unchanged' (a TOASTed value an update did not send). */
export type CapturedValue = string | Buffer | null | { unchanged: true };

export type CapturedChange =
  | { kind: 'insert'; relation: CapturedRelation; row: readonly CapturedValue[] }
  | { kind: 'update'; relation: CapturedRelation; old?: readonly CapturedValue[]; row: readonly CapturedValue[] }
  | { kind: 'delete'; relation: CapturedRelation; old: readonly CapturedValue[] };

/** A plain column as the planner selects it: PostgreSQL's "name", MySQL's `name`. */
const PLAIN_COLUMN = { postgres: /^"((?:[^"]|"")+)"$/, mysql: /^`((?:[^`]|``)+)`$/ } as const;
const QUOTE = { postgres: '"', mysql: '`' } as const;

/** How changes are captured: PostgreSQL's logical decoding, or a MySQL/MariaDB binlog. */
export type CaptureMethod = 'logical-decoding' | 'binlog';
const METHOD_SOURCE = { 'logical-decoding': ['postgres', 'logical decoding needs a PostgreSQL source'], binlog: ['mysql', 'binlog capture needs a MySQL or MariaDB source'] } as const;

/**
 * The capture's view of a copy plan; a reason instead when changes cannot be replayed as the copy
 * reads rows: computed columns and filters are SQL the stream cannot evaluate on a change.
 * `sourceSchema`: where an unqualified source table is (MySQL: the source URL's database).
 */
export function captureTableFromPlan(plan: TableCopyPlan, sourceSchema: string, method: CaptureMethod = 'logical-decoding'): CaptureTable | { error: string } {
  const [engine, reason] = METHOD_SOURCE[method];
  if (plan.sourceEngine !== engine) return { error: `table ${plan.sourceTable}: ${reason}` };
  if (plan.where) return { error: `table ${plan.sourceTable}: a where filter cannot be applied to captured changes (a row may move in or out of it)` };
  if (plan.dedupe) return { error: `table ${plan.sourceTable}: dedupe cannot be applied to captured changes` };
  const columns: CaptureColumn[] = [];
  for (const [i, select] of plan.selectColumns.entries()) {
    const match = PLAIN_COLUMN[plan.sourceEngine].exec(select);
    const target = plan.targetColumns[i];
    if (!match?.[1] || !target) return { error: `table ${plan.sourceTable}: column ${target?.name ?? i} is computed on the source (${select.slice(0, 60)}), which captured changes do not carry` };
    const convert = plan.converters[i];
    const valueSql = target.loadExpression;
    const quote = QUOTE[plan.sourceEngine];
    columns.push({ source: match[1].replaceAll(quote + quote, quote), target: target.name, ...(convert ? { convert } : {}), ...(valueSql ? { valueSql } : {}) });
  }
  const parts = splitQualifiedName(plan.sourceTable);
  return { sourceSchema: parts.length > 1 ? parts[0] ?? sourceSchema : sourceSchema, sourceTable: parts.at(-1) ?? plan.sourceTable, targetTable: plan.targetTable, key: plan.key, columns };
}

/** Statements for one table, as one version of its source relation lays out the columns. */
interface RelationLayout {
  table: CaptureTable;
  /** Per captured column: its position in the relation's tuples. */
  positions: number[];
  /** Per key column: its index among the captured columns (found once, not per change). */
  keyColumns: number[];
  upsertSql: string;
  deleteSql: string;
  target: string;
  targetKey: string[];
}

export class ChangeRefused extends Error {}

/** A row a change touched, by its key: the source's values (as the stream sent them) and the target's (converted). */
export interface TouchedKey {
  /** The target table as the manifest names it. */
  targetTable: string;
  source: (string | Buffer)[];
  target: (string | Buffer)[];
}

/** Turns captured changes into statements on one target session. */
export class ChangeApplier {
  private readonly tables = new Map<string, CaptureTable>();
  private readonly layouts = new WeakMap<CapturedRelation, RelationLayout>();
  private readonly session: SqlSession;
  changesApplied = 0;
  /** Updates that moved a row's key; updates that left a large (TOASTed) value out. */
  keyMoves = 0;
  partialUpdates = 0;

  constructor(session: SqlSession, tables: readonly CaptureTable[]) {
    this.session = session;
    for (const table of tables) this.tables.set(`${table.sourceSchema}.${table.sourceTable}`, table);
  }

  /** A relation the publication sends but the migration does not hold: a bug or a changed publication. */
  private layout(relation: CapturedRelation): RelationLayout {
    const cached = this.layouts.get(relation);
    if (cached) return cached;
    const name = `${relation.schema}.${relation.name}`;
    const table = this.tables.get(name);
    if (!table) throw new ChangeRefused(`a change of table ${name}, which this migration does not capture`);
    const positions = table.columns.map((column) => {
      const position = relation.columns.findIndex((c) => c.name === column.source);
      if (position < 0) throw new ChangeRefused(`table ${name} no longer has column ${column.source} on the source (altered during the migration)`);
      return position;
    });
    const keyColumns = table.key.map((column) => table.columns.findIndex((c) => c.source === column));
    if (keyColumns.some((i) => i < 0)) throw new ChangeRefused(`table ${name}: its key (${table.key.join(', ')}) is not among the captured columns`);
    const d = this.session.dialect;
    const target = d.quoteQualified(table.targetTable);
    const targetColumns = table.columns.map((c) => d.quoteIdent(c.target));
    const targetKey = table.key.map((k) => d.quoteIdent(table.columns.find((c) => c.source === k)?.target ?? k));
    const nonKey = targetColumns.filter((c) => !targetKey.includes(c));
    const layout: RelationLayout = {
      table, positions, keyColumns, target, targetKey,
      upsertSql: `INSERT INTO ${target} (${targetColumns.join(', ')}) VALUES (${table.columns.map((c, i) => valueSql(c, d.placeholder(i + 1))).join(', ')})${d.onConflictSql(targetKey, nonKey)}`,
      deleteSql: `DELETE FROM ${target} WHERE ${targetKey.map((k, i) => `${k} = ${d.placeholder(i + 1)}`).join(' AND ')}`,
    };
    this.layouts.set(relation, layout);
    return layout;
  }

  /** The target's value of captured column `i` from a tuple ('unchanged' stays so). */
  private value(layout: RelationLayout, tuple: readonly CapturedValue[], i: number): string | Buffer | null | { unchanged: true } {
    const raw = tuple[layout.positions[i] ?? -1];
    if (raw === undefined) throw new ChangeRefused(`table ${layout.table.sourceTable}: a change with fewer columns than its relation`);
    if (raw === null || (typeof raw !== 'string' && !Buffer.isBuffer(raw))) return raw;
    const convert = layout.table.columns[i]?.convert;
    return convert ? convert(raw) : raw;
  }

  private keyOf(layout: RelationLayout, tuple: readonly CapturedValue[], converted = true): (string | Buffer)[] {
    return layout.keyColumns.map((i, n) => {
      const value = converted ? this.value(layout, tuple, i) : tuple[layout.positions[i] ?? -1];
      if (value === undefined || value === null || (typeof value === 'object' && !Buffer.isBuffer(value))) {
        throw new ChangeRefused(`table ${layout.table.sourceTable}: a change without its key column ${layout.table.key[n] ?? ''} (replica identity lacks it)`);
      }
      return value;
    });
  }

  /** The row of `tuple`, by its key. */
  private touched(layout: RelationLayout, tuple: readonly CapturedValue[]): TouchedKey {
    return { targetTable: layout.table.targetTable, source: this.keyOf(layout, tuple, false), target: this.keyOf(layout, tuple) };
  }

  /** Applies one change; with `keys`, returns the rows it touched (two when an update moved the key), else none (the hot path spares the work). */
  async apply(change: CapturedChange, keys = false): Promise<TouchedKey[]> {
    const layout = this.layout(change.relation);
    let touched: TouchedKey[];
    if (change.kind === 'delete') {
      await this.session.query(layout.deleteSql, this.keyOf(layout, change.old));
      touched = keys ? [this.touched(layout, change.old)] : [];
    } else {
      const values = layout.table.columns.map((_, i) => this.value(layout, change.row, i));
      const newKey = this.keyOf(layout, change.row);
      const oldKey = change.kind === 'update' && change.old ? this.keyOf(layout, change.old) : newKey;
      const keyMoved = oldKey.some((v, i) => !sameValue(v, newKey[i]));
      if (keyMoved) this.keyMoves++;
      touched = !keys ? [] : keyMoved && change.kind === 'update' && change.old ? [this.touched(layout, change.old), this.touched(layout, change.row)] : [this.touched(layout, change.row)];
      if (values.some(isUnchanged)) {
        await this.partialUpdate(layout, values, oldKey);
        this.partialUpdates++;
      } else {
        if (keyMoved) await this.session.query(layout.deleteSql, oldKey);
        await this.session.query(layout.upsertSql, values);
      }
    }
    this.changesApplied++;
    return touched;
  }

  /**
   * An update that left a TOASTed value unchanged does not send it: only the sent columns are set,
   * on the row found by the old key. The target must hold that row (it does when every earlier
   * change was applied): if not, the capture has lost track, which is an error, not something to guess.
   */
  private async partialUpdate(layout: RelationLayout, values: readonly ReturnType<ChangeApplier['value']>[], oldKey: readonly (string | Buffer)[]): Promise<void> {
    const d = this.session.dialect;
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [i, column] of layout.table.columns.entries()) {
      const value = values[i];
      if (value === undefined || isUnchanged(value)) continue;
      params.push(value);
      sets.push(`${d.quoteIdent(column.target)} = ${valueSql(column, d.placeholder(params.length))}`);
    }
    const where = layout.targetKey.map((k, i) => `${k} = ${d.placeholder(params.length + i + 1)}`).join(' AND ');
    const exists = await this.session.query(`SELECT 1 AS found FROM ${layout.target} WHERE ${layout.targetKey.map((k, i) => `${k} = ${d.placeholder(i + 1)}`).join(' AND ')}`, oldKey);
    if (exists.length === 0) throw new ChangeRefused(`table ${layout.table.sourceTable}: an update of a row the target does not hold, with unchanged large values the change does not carry`);
    await this.session.query(`UPDATE ${layout.target} SET ${sets.join(', ')} WHERE ${where}`, [...params, ...oldKey]);
  }
}

const valueSql = (column: CaptureColumn, placeholder: string): string => (column.valueSql ? column.valueSql(placeholder) : placeholder);

const isUnchanged = (value: unknown): value is { unchanged: true } => typeof value === 'object' && value !== null && !Buffer.isBuffer(value);

function sameValue(a: string | Buffer | undefined, b: string | Buffer | undefined): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}
