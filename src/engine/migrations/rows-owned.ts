// Which target tables hold only rows this migration wrote, or rows written since it first wrote
// there: the tables it created, and those that were empty when it claimed them (claims.ts). The
// rollback empties only those; the Trickle delete pass deletes only in those (a row the migration
// never copied is not its to delete).
import type { SqlSession } from '../db/session.ts';
import { createdTables } from '../schema/created-tables.ts';
import { claimedTables } from './claims.ts';
import { TableNames } from './table-names.ts';

/** created, or claimed while empty: every row is the migration's or came after; heldRows: it held rows before; unknown: no record. */
export type RowsOwnership = 'created' | 'claimedEmpty' | 'heldRows' | 'unknown';

export async function rowsOwnership(target: SqlSession, uid: string, tables: readonly string[]): Promise<Map<string, RowsOwnership>> {
  const names = new TableNames(target);
  const created = await names.canonicalAll(await createdTables(target, uid, ['created']));
  const claimed = await claimedTables(target, uid);
  const out = new Map<string, RowsOwnership>();
  for (const table of tables) {
    const name = await names.canonical(table);
    const wasEmpty = claimed.get(name);
    out.set(table, created.has(name) ? 'created' : wasEmpty === true ? 'claimedEmpty' : wasEmpty === false ? 'heldRows' : 'unknown');
  }
  return out;
}

/** Whether the migration may remove rows of a table it did not create row by row (it owns every row in it). */
export const ownsEveryRow = (ownership: RowsOwnership | undefined): boolean => ownership === 'created' || ownership === 'claimedEmpty';
