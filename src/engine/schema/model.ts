// What the engine knows about a table, read from the database's catalog (introspect.ts) and used
// to plan the target (typemap.ts, ddl.ts) and the copy.
import type { Engine } from '../db/dialect.ts';

export interface ColumnInfo {
  name: string;
  /** The full type as the catalog spells it: "tinyint(1) unsigned", "character varying(20)", "numeric(10,2)". */
  nativeType: string;
  /** The base type, lower case, no modifiers: "tinyint", "character varying", "numeric", "enum". */
  dataType: string;
  /** Character length (char/varchar/binary/varbinary) or bit width (bit). */
  length?: number;
  precision?: number;
  scale?: number;
  /** Fractional-seconds precision of time types. */
  datetimePrecision?: number;
  unsigned?: boolean;
  nullable: boolean;
  /** The default as the catalog shows it (an SQL expression or literal text); absent when none. */
  defaultValue?: string;
  /** MySQL AUTO_INCREMENT, PostgreSQL identity or serial (nextval default). */
  autoIncrement: boolean;
  /** Generated (computed) column: not copied, recreated from its expression when possible. */
  generated?: { kind: 'stored' | 'virtual'; expression: string };
  /** Labels of a MySQL ENUM or SET, or of a PostgreSQL enum type. */
  enumValues?: string[];
  /** PostgreSQL array element type (for "ARRAY" data types). */
  elementType?: string;
  charset?: string;
  collation?: string;
  comment?: string;
}

export interface IndexInfo {
  name: string;
  columns: string[];
  unique: boolean;
  /**
   * The name the index gets on a table the migration creates, when the plan chose another than
   * the source's (PostgreSQL names indexes per schema, MySQL per table; see index-names.ts).
   */
  targetName?: string;
}

export interface ForeignKeyInfo {
  name: string;
  columns: string[];
  referencedTable: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

export interface TableInfo {
  engine: Engine;
  /** PostgreSQL schema or MySQL database. */
  schema: string;
  name: string;
  columns: ColumnInfo[];
  primaryKey: string[];
  /** Unique constraints and indexes other than the primary key. */
  uniqueKeys: IndexInfo[];
  /** Non-unique secondary indexes. */
  indexes: IndexInfo[];
  foreignKeys: ForeignKeyInfo[];
  /** The planner's row estimate (pg_class.reltuples, information_schema.TABLES.TABLE_ROWS): cheap, approximate. */
  estimatedRows: number;
  /** A partitioned table: how many partitions it has (every level); its rows are read through it, once. */
  partitions?: number;
  /** MySQL storage engine (InnoDB, MyISAM, ...): the copy needs a transactional target. */
  storageEngine?: string;
}
