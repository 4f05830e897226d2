// The explicit type map between MySQL/MariaDB and PostgreSQL: which target type a source column
// gets when the engine creates the table (mapColumnType), and how each value is converted on the
// way (valueMapper). TYPE_MAP is the documented table (README) and the unit tests check every row
// of it against mapColumnType, so the documentation cannot drift from the code.
import type { Engine } from '../db/dialect.ts';
import type { MapValue, ValueMapping } from '../copy/planner.ts';
import type { Converter } from '../copy/plan-types.ts';
import { becomesCitext, type CitextChoice } from './citext.ts';
import { domainCheck } from './domains.ts';
import type { ColumnInfo } from './model.ts';

export interface MappedType {
  /** The target column type, as DDL text. */
  type: string;
  /** A CHECK constraint body over the quoted column name (enum and set on PostgreSQL). */
  check?: (quotedColumn: string) => string;
  /** Statements to run before the CREATE TABLE (a PostgreSQL enum type). */
  before?: string[];
  /** The type `before` creates unless it exists (so a rollback can drop it if this migration made it). */
  createsType?: string;
  /** Why the mapping is not exact, without the column's name: the plan names columns grouped by reason. */
  warnings: string[];
  /** A PostgreSQL domain column whose rules the type (base type, `check`, NOT NULL) reproduces. */
  reproducesDomain?: boolean;
}

export type TypeMapping = MappedType | { error: string };

export interface MapOptions {
  /** The column is part of a key or index: MySQL cannot index unbounded text or blobs. */
  indexed?: boolean;
  /** MySQL → PostgreSQL: whether the target can have citext, for case-insensitive text (citext.ts). */
  citext?: CitextChoice;
}

const MYSQL_INDEXABLE_TEXT = 'varchar(768)'; // 768 × 4 bytes (utf8mb4) = InnoDB's 3072-byte key limit

const fsp = (c: ColumnInfo, max: number): string => (c.datetimePrecision !== undefined && c.datetimePrecision !== max ? `(${String(c.datetimePrecision)})` : '');
const fspMysql = (c: ColumnInfo): string => (c.datetimePrecision ? `(${String(Math.min(6, c.datetimePrecision))})` : '');
const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;
const mysqlLiteral = (value: string): string => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;

/** The target type of a source column when the engine creates the target table. */
export function mapColumnType(column: ColumnInfo, from: Engine, to: Engine, options: MapOptions = {}): TypeMapping {
  if (from === to) return sameEngine(column, to);
  if (from === 'mysql' && options.citext?.use === true && becomesCitext(column)) return citext(column, options.citext.create);
  return from === 'mysql' ? mysqlToPostgres(column) : postgresToMysql(column, options);
}

function sameEngine(column: ColumnInfo, engine: Engine): TypeMapping {
  if (engine === 'postgres' && column.dataType === 'enum' && column.enumValues) {
    // The enum type lives in the source database; the target gets the same labels under the same name.
    const labels = column.enumValues.map(literal).join(', ');
    const name = column.nativeType;
    return {
      type: name, warnings: [], createsType: name,
      before: [`DO $$ BEGIN CREATE TYPE ${name} AS ENUM (${labels}); EXCEPTION WHEN duplicate_object THEN NULL; END $$`],
    };
  }
  if (engine === 'postgres' && column.domain) {
    // The target has no such domain: its base type, and its checks as the column's (domains.ts).
    const rewritten = domainCheck(column.domain);
    return {
      type: column.domain.baseType, warnings: [],
      ...(rewritten?.check ? { check: rewritten.check } : {}),
      ...(rewritten ? { reproducesDomain: true } : {}),
    };
  }
  if (engine === 'mysql' && MYSQL_GEOMETRY_TYPES.has(column.dataType)) {
    // The copy loads text and UNHEX'd binary columns; a spatial column is neither, and LOAD DATA refuses its bytes.
    return { error: `column ${column.name}: MySQL spatial type ${column.nativeType} cannot be copied MySQL → MySQL yet; skip the column, or copy it as bytes into a column you create (expression ST_AsWKB(${column.name}))` };
  }
  return { type: column.nativeType, warnings: [] };
}

/**
 * A case-insensitive MySQL text column as citext: it compares (=, unique keys, LIKE) ignoring
 * case as on MySQL. citext has no length, so char(n)/varchar(n) keep their bound as a CHECK.
 */
function citext(c: ColumnInfo, create: string | undefined): MappedType {
  const bound = c.dataType === 'char' || c.dataType === 'varchar' ? c.length ?? (c.dataType === 'char' ? 1 : 255) : undefined;
  return {
    type: 'citext', warnings: [],
    ...(bound !== undefined ? { check: (q: string) => `char_length(${q}) <= ${String(bound)}` } : {}),
    ...(create !== undefined ? { before: [create] } : {}),
  };
}

/** MySQL's spatial types: copied as their stored bytes (GEOMETRY_FORM), exactly, whatever the target has. */
export const MYSQL_GEOMETRY_TYPES = new Set(['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'geomcollection']);

/** What a MySQL spatial column holds on PostgreSQL (README, type map). */
export const GEOMETRY_FORM = "MySQL's stored geometry bytes: a 4-byte little-endian SRID, then the WKB";

function mysqlToPostgres(c: ColumnInfo): TypeMapping {
  const ok = (type: string, ...warnings: string[]): MappedType => ({ type, warnings });
  switch (c.dataType) {
    case 'tinyint': return /^tinyint\(1\)$/i.test(c.nativeType) ? ok('boolean') : ok('smallint');
    case 'bool': case 'boolean': return ok('boolean');
    case 'smallint': return ok(c.unsigned ? 'integer' : 'smallint');
    case 'mediumint': return ok('integer');
    case 'int': case 'integer': return ok(c.unsigned ? 'bigint' : 'integer');
    case 'bigint': return ok(c.unsigned ? 'numeric(20,0)' : 'bigint');
    case 'decimal': case 'numeric': return ok(`numeric(${String(c.precision ?? 10)},${String(c.scale ?? 0)})`);
    case 'float': return ok('real');
    case 'double': case 'real': return ok('double precision');
    case 'bit': return ok(`bit(${String(c.length ?? 1)})`);
    case 'char': return ok(`char(${String(c.length ?? 1)})`);
    case 'varchar': return ok(`varchar(${String(c.length ?? 255)})`);
    case 'tinytext': case 'text': case 'mediumtext': case 'longtext': return ok('text');
    case 'binary': case 'varbinary': case 'tinyblob': case 'blob': case 'mediumblob': case 'longblob': return ok('bytea');
    // Zero dates become NULL: the DDL says so, grouped, as it decides the column's nullability.
    case 'date': return ok('date');
    case 'datetime': return ok(`timestamp${fsp(c, 6)}`);
    case 'timestamp': return ok(`timestamptz${fsp(c, 6)}`);
    case 'time': return ok(`time${fsp(c, 6)}`, `MySQL TIME values outside 00:00:00–24:00:00 (durations) fail the copy`);
    case 'year': return ok('smallint');
    case 'enum': {
      const labels = (c.enumValues ?? []).map(literal).join(', ');
      return { type: 'text', check: (q) => `${q} IN (${labels})`, warnings: [] };
    }
    case 'set': {
      const labels = (c.enumValues ?? []).map(literal).join(', ');
      return { type: 'text[]', check: (q) => `${q} <@ ARRAY[${labels}]::text[]`, warnings: [] };
    }
    case 'json': return ok('jsonb');
    case 'uuid': return ok('uuid');
    case 'inet4': case 'inet6': return ok('inet');
    default:
      // Copied and validated byte for byte; PostGIS reads it as ST_GeomFromWKB(substring(col from 5), srid).
      if (MYSQL_GEOMETRY_TYPES.has(c.dataType)) return ok('bytea', `spatial columns become bytea holding ${GEOMETRY_FORM} (no spatial type or index on the target; convert with PostGIS ST_GeomFromWKB(substring(col from 5)) after the copy)`);
      return { error: `column ${c.name}: MySQL type ${c.nativeType} has no mapping to PostgreSQL; skip the column, or create the target table with a schema migration and compute the value with an expression` };
  }
}

function postgresToMysql(c: ColumnInfo, options: MapOptions): TypeMapping {
  const ok = (type: string, ...warnings: string[]): MappedType => ({ type, warnings });
  const unbounded = (type: string, what: string): MappedType => (options.indexed
    ? ok(what === 'text' ? MYSQL_INDEXABLE_TEXT : 'varbinary(3072)', `indexed ${c.nativeType} becomes ${what === 'text' ? MYSQL_INDEXABLE_TEXT : 'varbinary(3072)'} (InnoDB key size limit); longer values fail the copy`)
    : ok(type));
  switch (c.dataType) {
    case 'boolean': return ok('tinyint(1)');
    case 'smallint': return ok('smallint');
    case 'integer': return ok('int');
    case 'bigint': return ok('bigint');
    case 'numeric': {
      if (c.precision === undefined) return ok('decimal(65,30)', `numeric without precision becomes decimal(65,30); values beyond it fail the copy (never rounded silently)`);
      if (c.precision > 65 || (c.scale ?? 0) > 30) return { error: `column ${c.name}: ${c.nativeType} exceeds MySQL's decimal(65,30)` };
      return ok(`decimal(${String(c.precision)},${String(c.scale ?? 0)})`);
    }
    case 'real': return ok('float');
    case 'double precision': return ok('double');
    case 'bit': {
      const length = c.length ?? 1;
      return length > 64 ? { error: `column ${c.name}: ${c.nativeType} is wider than MySQL's bit(64)` } : ok(`bit(${String(length)})`);
    }
    case 'character': return ok((c.length ?? 1) <= 255 ? `char(${String(c.length ?? 1)})` : `varchar(${String(c.length)})`);
    case 'character varying':
      return c.length !== undefined && c.length <= 16383 ? ok(`varchar(${String(c.length)})`) : unbounded('longtext', 'text');
    case 'text': return unbounded('longtext', 'text');
    // utf8mb4_bin, as all text from PostgreSQL: a case-insensitive MySQL collation would also fold
    // accents (and reject as duplicates keys citext keeps apart), so case-insensitivity is named instead.
    case 'citext': { const mapped = c.length !== undefined ? ok(`varchar(${String(c.length)})`) : unbounded('longtext', 'text'); return { ...mapped, warnings: [...mapped.warnings, 'citext becomes case-sensitive text on MySQL (utf8mb4_bin): lookups and unique keys no longer ignore case'] }; }
    case 'bytea': return unbounded('longblob', 'binary');
    case 'date': return ok('date', 'infinity and BC dates fail the copy');
    case 'timestamp without time zone': return ok(`datetime${fspMysql(c)}`, 'infinity and BC timestamps fail the copy');
    case 'timestamp with time zone': return ok(`datetime${fspMysql(c)}`, 'timestamptz is stored as UTC in datetime');
    case 'time without time zone': return ok(`time${fspMysql(c)}`);
    case 'json': case 'jsonb': return ok('json');
    case 'uuid': return ok('char(36)');
    case 'inet': case 'cidr': return ok('varchar(43)');
    case 'interval': return ok('varchar(64)', 'interval is stored as ISO 8601 text');
    case 'enum': return ok(`enum(${(c.enumValues ?? []).map(mysqlLiteral).join(',')})`);
    default:
      return { error: `column ${c.name}: PostgreSQL type ${c.nativeType} has no mapping to MySQL; skip the column, or create the target table with a schema migration and compute the value with an expression (for arrays: array_to_json)` };
  }
}

/** One row of the documented type map: a source type and what it becomes on the other engine. */
export interface TypeMapRow {
  from: Engine;
  /** The source type, as its catalog spells it. */
  source: string;
  target: string;
  notes: string;
}

export const TYPE_MAP: TypeMapRow[] = [
  { from: 'mysql', source: 'tinyint(1)', target: 'boolean', notes: '0/1 → false/true; any other value fails the copy' },
  { from: 'mysql', source: 'tinyint', target: 'smallint', notes: '' },
  { from: 'mysql', source: 'tinyint unsigned', target: 'smallint', notes: 'unsigned integers widen' },
  { from: 'mysql', source: 'smallint unsigned', target: 'integer', notes: '' },
  { from: 'mysql', source: 'mediumint', target: 'integer', notes: '' },
  { from: 'mysql', source: 'int', target: 'integer', notes: '' },
  { from: 'mysql', source: 'int unsigned', target: 'bigint', notes: '' },
  { from: 'mysql', source: 'bigint', target: 'bigint', notes: 'auto_increment → identity, restarted past the max after the copy' },
  { from: 'mysql', source: 'bigint unsigned', target: 'numeric(20,0)', notes: '' },
  { from: 'mysql', source: 'decimal(12,2)', target: 'numeric(12,2)', notes: 'precision and scale kept' },
  { from: 'mysql', source: 'float', target: 'real', notes: 'read exactly, as a double (MySQL prints FLOAT with 6 digits)' },
  { from: 'mysql', source: 'double', target: 'double precision', notes: '' },
  { from: 'mysql', source: 'bit(8)', target: 'bit(8)', notes: '' },
  { from: 'mysql', source: 'char(10)', target: 'char(10)', notes: 'lengths in characters; trailing spaces are not significant in CHAR on either engine (PostgreSQL pads, MySQL strips)' },
  { from: 'mysql', source: 'varchar(255)', target: 'varchar(255)', notes: '' },
  { from: 'mysql', source: 'text', target: 'text', notes: 'tinytext, mediumtext, longtext too' },
  { from: 'mysql', source: 'varchar(255) with a _ci collation', target: 'citext', notes: 'char, text too: when the target has the extension citext or its role may create it (else varchar, named by the plan); with CHECK (char_length(col) <= 255); accent-insensitivity is not reproduced' },
  { from: 'mysql', source: 'blob', target: 'bytea', notes: 'binary, varbinary and every blob' },
  { from: 'mysql', source: 'date', target: 'date', notes: 'zero dates → NULL, counted in the result; NOT NULL is created nullable (outside the primary key), and made NOT NULL after the copy when it wrote no NULL' },
  { from: 'mysql', source: 'datetime(3)', target: 'timestamp(3)', notes: 'zero dates → NULL, counted' },
  { from: 'mysql', source: 'timestamp', target: 'timestamptz(0)', notes: 'read in UTC; zero dates → NULL, counted' },
  { from: 'mysql', source: 'time', target: 'time(0)', notes: 'durations outside a day fail the copy' },
  { from: 'mysql', source: 'year', target: 'smallint', notes: '' },
  { from: 'mysql', source: "enum('a','b')", target: 'text', notes: "with CHECK (col IN ('a','b'))" },
  { from: 'mysql', source: "set('a','b')", target: 'text[]', notes: "'a,b' → {a,b}, with CHECK (col <@ ARRAY['a','b'])" },
  { from: 'mysql', source: 'json', target: 'jsonb', notes: 'MariaDB JSON (longtext with json_valid) too' },
  { from: 'mysql', source: 'uuid', target: 'uuid', notes: 'MariaDB 10.7+' },
  { from: 'mysql', source: 'geometry', target: 'bytea', notes: `point, polygon and every spatial type: ${GEOMETRY_FORM}; PostGIS: ST_GeomFromWKB(substring(col from 5), srid)` },
  { from: 'postgres', source: 'boolean', target: 'tinyint(1)', notes: 'true/false → 1/0' },
  { from: 'postgres', source: 'smallint', target: 'smallint', notes: '' },
  { from: 'postgres', source: 'integer', target: 'int', notes: 'serial/identity → auto_increment' },
  { from: 'postgres', source: 'bigint', target: 'bigint', notes: '' },
  { from: 'postgres', source: 'numeric(12,2)', target: 'decimal(12,2)', notes: 'precision > 65 or scale > 30 refused' },
  { from: 'postgres', source: 'numeric', target: 'decimal(65,30)', notes: 'a value that does not fit fails the copy; NaN fails' },
  { from: 'postgres', source: 'real', target: 'float', notes: 'NaN and ±Infinity fail the copy' },
  { from: 'postgres', source: 'double precision', target: 'double', notes: 'NaN and ±Infinity fail the copy' },
  { from: 'postgres', source: 'bit(8)', target: 'bit(8)', notes: 'up to bit(64)' },
  { from: 'postgres', source: 'character(10)', target: 'char(10)', notes: 'over 255: varchar' },
  { from: 'postgres', source: 'character varying(100)', target: 'varchar(100)', notes: 'over 16383 or no length: longtext' },
  { from: 'postgres', source: 'text', target: 'longtext', notes: `in a key or index: ${MYSQL_INDEXABLE_TEXT}` },
  { from: 'postgres', source: 'citext', target: 'longtext', notes: `case-sensitive (utf8mb4_bin), named by the plan; varchar(n) with a CHECK (char_length(col) <= n); in a key or index: ${MYSQL_INDEXABLE_TEXT}` },
  { from: 'postgres', source: 'bytea', target: 'longblob', notes: 'in a key or index: varbinary(3072)' },
  { from: 'postgres', source: 'date', target: 'date', notes: 'infinity and BC dates fail the copy' },
  { from: 'postgres', source: 'timestamp(3) without time zone', target: 'datetime(3)', notes: '' },
  { from: 'postgres', source: 'timestamp with time zone', target: 'datetime(6)', notes: 'as UTC' },
  { from: 'postgres', source: 'time without time zone', target: 'time(6)', notes: '' },
  { from: 'postgres', source: 'jsonb', target: 'json', notes: 'json too' },
  { from: 'postgres', source: 'uuid', target: 'char(36)', notes: 'works on MySQL and MariaDB' },
  { from: 'postgres', source: 'interval', target: 'varchar(64)', notes: 'ISO 8601 text' },
  { from: 'postgres', source: 'user enum type', target: "enum('a','b')", notes: 'labels in order' },
  { from: 'postgres', source: 'arrays, geometric, range, tsvector, …', target: '(plan refused)', notes: 'skip the column or map it with an expression into a table you create' },
];

// ---- values ----

const ZERO_DATE = /^0000-00-00|^\d{4}-00-|^\d{4}-\d{2}-00/;
const asText = (value: string | Buffer): string => (typeof value === 'string' ? value : value.toString('utf8'));

/**
 * A MapValue for the copy planner. `onZeroDate` is told each time a MySQL zero date becomes NULL
 * (the result reports the count per column).
 */
export function valueMapper(onZeroDate: (column: string) => void = () => undefined): MapValue {
  return (source, target, from, to) => (from === 'mysql' && to === 'postgres'
    ? mysqlToPostgresValue(source, target, onZeroDate)
    : from === 'postgres' && to === 'mysql' ? postgresToMysqlValue(source, target) : {});
}

function fail(column: ColumnInfo, value: string, why: string): never {
  throw new Error(`column ${column.name}: value ${JSON.stringify(value.slice(0, 64))} ${why}`);
}

function mysqlToPostgresValue(source: ColumnInfo, target: ColumnInfo, onZeroDate: (column: string) => void): ValueMapping | { error: string } {
  const convert = (converter: Converter): ValueMapping => ({ convert: converter });
  if (target.dataType === 'boolean') {
    return convert((value) => {
      const text = asText(value);
      if (text === '0' || text === '\x00') return 'f';
      if (text === '1' || text === '\x01') return 't';
      return fail(source, text, 'is not 0 or 1 and cannot become a boolean');
    });
  }
  if (['date', 'datetime', 'timestamp'].includes(source.dataType)) {
    return convert((value) => {
      const text = asText(value);
      if (!ZERO_DATE.test(text)) return text;
      onZeroDate(source.name);
      return null;
    });
  }
  if (source.dataType === 'time') {
    return convert((value) => {
      const text = asText(value);
      return /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?$|^24:00:00(\.0+)?$/.test(text) ? text : fail(source, text, 'is a duration outside one day; PostgreSQL time cannot hold it');
    });
  }
  if (source.dataType === 'bit' && (target.dataType === 'bit' || target.dataType === 'bit varying')) {
    const width = target.length ?? source.length ?? 1;
    return convert((value) => {
      const bits = typeof value === 'string' ? BigInt(value).toString(2) : BigInt(`0x${value.toString('hex') || '0'}`).toString(2);
      return bits.padStart(width, '0');
    });
  }
  if (source.dataType === 'set' && target.dataType === 'ARRAY') {
    return convert((value) => {
      const text = asText(value);
      return `{${text === '' ? '' : text.split(',').map((label) => `"${label.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
    });
  }
  return {};
}

function postgresToMysqlValue(source: ColumnInfo, target: ColumnInfo): ValueMapping | { error: string } {
  const convert = (converter: Converter): ValueMapping => ({ convert: converter });
  switch (source.dataType) {
    case 'boolean':
      return convert((value) => (asText(value) === 't' ? '1' : '0'));
    case 'bytea':
      // COPY text gives \x-hex; the MySQL sink loads binary columns from bytes.
      return convert((value) => Buffer.from(asText(value).slice(2), 'hex'));
    case 'timestamp with time zone':
      return convert((value) => {
        const text = asText(value);
        const match = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\+00$/.exec(text);
        return match?.[1] ?? fail(source, text, 'cannot be stored in a MySQL datetime (infinity, BC, or not UTC)');
      });
    case 'date':
    case 'timestamp without time zone':
      return convert((value) => {
        const text = asText(value);
        return /^\d{4}-\d\d-\d\d( |$)/.test(text) && !text.endsWith(' BC') ? text : fail(source, text, 'cannot be stored in MySQL (infinity or BC)');
      });
    case 'real':
    case 'double precision':
    case 'numeric':
      return convert((value) => {
        const text = asText(value);
        return /^(NaN|-?Infinity)$/.test(text) ? fail(source, text, 'has no MySQL equivalent') : text;
      });
    case 'bit':
    case 'bit varying':
      // The MySQL sink loads bit columns from hex (see the planner's bitLoadExpression).
      return target.dataType === 'bit' ? convert((value) => BigInt(`0b${asText(value) || '0'}`).toString(16)) : {};
    default:
      return {};
  }
}
