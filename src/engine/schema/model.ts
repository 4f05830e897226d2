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
  /** MySQL: the column's collation; PostgreSQL: only one other than its type's default. */
  collation?: string;
  /** PostgreSQL: the collation compares by more than bytes (a nondeterministic ICU collation, e.g. case-insensitive). */
  collationNondeterministic?: boolean;
  comment?: string;
  /** MySQL `ON UPDATE CURRENT_TIMESTAMP[(n)]`: the column is set to the current time when the row changes. */
  onUpdate?: string;
  /** PostgreSQL: the column's declared type is this domain (nativeType names it; dataType is its base's). */
  domain?: DomainInfo;
}

/** A PostgreSQL domain: its base type, constraints and default, as its catalog states them. */
export interface DomainInfo {
  name: string;
  /** The base type as DDL text ("integer", "character varying(20)"). */
  baseType: string;
  /** Its CHECK constraints as pg_get_constraintdef prints them ("CHECK ((VALUE > 0))"). */
  checks: string[];
  notNull: boolean;
  defaultValue?: string;
}

/** A table's CHECK constraint as the source's catalog prints it. */
export interface CheckInfo {
  name: string;
  /** The expression inside CHECK (…), in the source engine's SQL. */
  clause: string;
  /** MariaDB's json_valid(col) check of a JSON column (the JSON type carries it across engines). */
  jsonValid?: boolean;
  /** PostgreSQL NOT VALID: existing rows may break it, so it is never created before the copy. */
  notValidated?: boolean;
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
  /** A MySQL FULLTEXT index: created as one on MySQL; PostgreSQL has none (the plan names it). */
  fulltext?: boolean;
  /**
   * A PostgreSQL index's access method when not btree (gist, gin, hash, brin, spgist): created
   * with it on PostgreSQL; into MySQL a hash index becomes a btree one, the others are not created
   * (the plan names them).
   */
  method?: string;
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
  /** CHECK constraints (absent: not read). */
  checks?: CheckInfo[];
  /** Indexes not carried over column by column (expression, partial, functional), by name. */
  skippedIndexes?: string[];
  /** MySQL SPATIAL indexes, by name: not carried over (the column is bytes on PostgreSQL). */
  spatialIndexes?: string[];
}

/**
 * An object of the source schema or database around the migrated tables that the migration does
 * not carry over: named by the plan, grouped by kind (schema/objects.ts).
 */
export interface SchemaObject {
  /** `unseen`: a kind of object the source role cannot list (name says which, and what would show it). */
  kind: 'view' | 'materialized view' | 'trigger' | 'policy' | 'routine' | 'event' | 'unseen';
  /** PostgreSQL schema or MySQL database it lives in. */
  schema: string;
  /** Its name, with what tells it apart ("total(integer)", "trg_audit"). */
  name: string;
  /** A trigger's or policy's table. */
  table?: string;
}
