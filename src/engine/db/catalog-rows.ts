// Helpers both introspectors share: catalog values as text and numbers, and a table's shape
// assembled from its columns and indexes.
import type { ColumnInfo, ForeignKeyInfo, IndexInfo, TableInfo } from '../schema/model.ts';
import type { SqlValue } from './session.ts';

export const text = (value: SqlValue | undefined): string | undefined => (value === null || value === undefined ? undefined : value.toString());
export const int = (value: SqlValue | undefined): number | undefined => {
  const s = text(value);
  return s === undefined ? undefined : Number(s);
};
export const truthy = (value: SqlValue | undefined): boolean => ['t', 'true', '1', 'YES'].includes(text(value) ?? '');

export function assembleTable(input: {
  engine: TableInfo['engine']; schema: string; name: string; columns: ColumnInfo[]; estimatedRows: number;
  indexes: (IndexInfo & { primary: boolean })[]; foreignKeys: ForeignKeyInfo[]; storageEngine?: string;
}): TableInfo {
  const primary = input.indexes.find((i) => i.primary);
  const strip = ({ name, columns, unique, method }: IndexInfo): IndexInfo => ({ name, columns, unique, ...(method === undefined ? {} : { method }) });
  return {
    engine: input.engine,
    schema: input.schema,
    name: input.name,
    columns: input.columns,
    primaryKey: primary?.columns ?? [],
    uniqueKeys: input.indexes.filter((i) => !i.primary && i.unique).map(strip),
    indexes: input.indexes.filter((i) => !i.unique).map(strip),
    foreignKeys: input.foreignKeys,
    estimatedRows: input.estimatedRows,
    ...(input.storageEngine ? { storageEngine: input.storageEngine } : {}),
  };
}
