// The copy of one table, decided before any data moves (see planner.ts): what to select on the
// source, in which order, and how each value becomes the target's.
import { adapterFor } from '../db/adapter.ts';
import type { Engine } from '../db/dialect.ts';
import type { CheckedSql } from '../sql/fragments.ts';
import type { Dedupe } from './source-query.ts';
import type { ConflictPolicy, TargetColumn } from './sinks.ts';

/** Turns one non-NULL source value into the target's text (or bytes); null stores NULL. */
export type Converter = (value: string | Buffer) => string | Buffer | null;

export interface TableCopyPlan {
  sourceEngine: Engine;
  targetEngine: Engine;
  /** Source table as named in the manifest. */
  sourceTable: string;
  targetTable: string;
  /** Source key columns, in key order; they are also the first selected columns. */
  key: string[];
  /** SQL expressions on the source, one per copied column, key columns first. */
  selectColumns: string[];
  /**
   * What the copy reads, in the same order: selectColumns, except where a plain column must be
   * read another way to be exact (MySQL FLOAT as a double). Validation matches selectColumns.
   */
  readColumns?: string[];
  /** The target columns, in the same order. */
  targetColumns: TargetColumn[];
  /** Per column: how a source value becomes the target's (undefined: unchanged). */
  converters: (Converter | undefined)[];
  /** The manifest's filter, checked in the source's grammar. */
  where?: CheckedSql;
  /**
   * A condition the engine built from quoted names and literals (never manifest text): the sync's
   * "changed since the watermark". Applied to the rows the copy reads, after dedupe.
   */
  changedSince?: string;
  dedupe?: Dedupe;
  conflictPolicy: ConflictPolicy;
}

/** COPY text on both sides (PostgreSQL to PostgreSQL) with no value conversion: the COPY bytes go through untouched. */
export function isPassthrough(plan: TableCopyPlan): boolean {
  return [plan.sourceEngine, plan.targetEngine].every((engine) => adapterFor(engine).bulkFormat === 'copy-text') && plan.converters.every((c) => c === undefined);
}
