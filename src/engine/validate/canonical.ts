// Canonical text of a value, built in SQL, that is the same on PostgreSQL and MySQL/MariaDB for
// the same data: both engines hash a row's canonical text (sha256: MariaDB's md5 is several times
// slower), and a key range's checksum is the exact sum of a 60-bit slice of those hashes, so ranges compare without shipping rows.
//
// Per kind (decided from the target column's type and the source column's, see columnKind):
//   int       decimal text                       decimal  trailing fractional zeros trimmed
//   float     exact: integer part and 52-bit fraction, or the shortest round-trip text, or
//             mantissa and power of two, by magnitude (see pgFloat)
//   bool      1 / 0                              char     trailing spaces dropped (CHAR semantics)
//   text      as is (trailing spaces count)      bytes    hex (up to 64 bytes), else s + sha256 of the bytes
//   date      YYYY-MM-DD                         timestamp  YYYY-MM-DD HH:MM:SS[.f], UTC, zeros trimmed
//   time      HH:MM:SS[.f], zeros trimmed        bits     the bits as a signed 64-bit integer
//   set       labels joined by commas (MySQL SET = PostgreSQL text[])
//   json      same engine: the engine's normal form (jsonb text, MariaDB JSON_NORMALIZE); across
//             engines the client canonicalises (sorted keys) since neither engine can produce the
//             other's normal form in SQL.
// NULL is its own marker, distinct from every value (the empty string included).
import { createHash } from 'node:crypto';
import type { Engine } from '../db/dialect.ts';
import type { ColumnInfo } from '../schema/model.ts';

export type CanonicalKind = 'int' | 'decimal' | 'float' | 'bool' | 'char' | 'text' | 'bytes' | 'date' | 'timestamp' | 'time' | 'json' | 'bits' | 'set';

/** MySQL server flavour: JSON normal form differs. */
export type MysqlFlavor = 'mariadb' | 'mysql';

export interface CanonicalOptions {
  /** The value is a plain column of this type; absent for computed expressions (type unknown). */
  column?: ColumnInfo;
  /** MySQL zero dates read as NULL (the copy stores them as NULL on PostgreSQL). */
  zeroDatesAsNull?: boolean;
  flavor?: MysqlFlavor;
  /** The other side is another engine (json is then canonicalised by the client). */
  crossEngine?: boolean;
  /**
   * Both sides have this many fractional digits (decimal scale, or fractional seconds): values
   * are written as the engines print them (no trimming of trailing zeros, which costs on MySQL).
   */
  fixedFraction?: number;
}

const TWO_52 = '4503599627370496';
const TWO_53 = '9007199254740992';

/** Binary values up to this many bytes are written as hex, longer ones as their sha256. */
const SHORT_BYTES = 64;

const PG_INTEGER = new Set(['smallint', 'integer', 'bigint', 'int2', 'int4', 'int8']);
const MYSQL_INTEGER = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'year']);
const MYSQL_BINARY = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);
const MYSQL_TEXT = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set']);

/** The canonical kind of a column as the engine sees its type. */
export function kindOfColumn(column: ColumnInfo, engine: Engine): CanonicalKind {
  const type = column.dataType.toLowerCase();
  if (engine === 'postgres') {
    if (PG_INTEGER.has(type)) return 'int';
    switch (type) {
      case 'numeric': case 'decimal': case 'money': return type === 'money' ? 'text' : 'decimal';
      case 'real': case 'double precision': return 'float';
      case 'boolean': return 'bool';
      case 'character': return 'char';
      case 'bytea': return 'bytes';
      case 'date': return 'date';
      case 'timestamp without time zone': case 'timestamp with time zone': return 'timestamp';
      case 'time without time zone': return 'time';
      case 'json': case 'jsonb': return 'json';
      case 'bit': return 'bits';
      default: return 'text';
    }
  }
  if (MYSQL_INTEGER.has(type)) return 'int';
  if (MYSQL_BINARY.has(type)) return 'bytes';
  switch (type) {
    case 'decimal': case 'numeric': return 'decimal';
    case 'float': case 'double': case 'real': return 'float';
    case 'bool': case 'boolean': return 'bool';
    case 'char': return 'char';
    case 'date': return 'date';
    case 'datetime': case 'timestamp': return 'timestamp';
    case 'time': return 'time';
    case 'json': return 'json';
    case 'bit': return 'bits';
    case 'set': return 'set';
    default: return 'text';
  }
}

/**
 * The kind both sides of one copied column are compared as: the target column's, refined by
 * the source column's (a MySQL SET in a text[] column, CHAR on either side, booleans as 0/1).
 */
export function columnKind(source: ColumnInfo | undefined, target: ColumnInfo, from: Engine, to: Engine): CanonicalKind {
  const targetKind = kindOfColumn(target, to);
  if (!source) return targetKind;
  const sourceKind = kindOfColumn(source, from);
  // MariaDB JSON is longtext with a check; a table created from it may lack the check.
  if ((sourceKind === 'json' || targetKind === 'json') && (sourceKind === 'text' || targetKind === 'text' || sourceKind === targetKind)) return 'json';
  if (sourceKind === 'char' || targetKind === 'char') return (sourceKind === 'char' || sourceKind === 'text') && (targetKind === 'char' || targetKind === 'text') ? 'char' : targetKind;
  if (sourceKind === 'set' && (targetKind === 'text' || targetKind === 'set')) return from === to ? 'text' : 'set';
  if (sourceKind === 'bool' || targetKind === 'bool') return 'bool';
  if (sourceKind === 'float' || targetKind === 'float') return 'float';
  if ((sourceKind === 'int' && targetKind === 'decimal') || (sourceKind === 'decimal' && targetKind === 'int')) return 'decimal';
  if (from === to && targetKind === 'bits' && sourceKind === 'bits') return from === 'postgres' ? 'text' : 'bits';
  return targetKind;
}

/** Kinds whose canonical SQL of a NOT NULL column is never NULL. */
export function keepsNotNull(kind: CanonicalKind): boolean {
  return kind !== 'json' && kind !== 'date' && kind !== 'timestamp';
}

/** Kinds whose canonical text may hold any character: written with a length prefix in a row. */
export function isFreeText(kind: CanonicalKind): boolean {
  return kind === 'text' || kind === 'char' || kind === 'set' || kind === 'json';
}

/** Whether the client, not SQL, canonicalises this column (json across engines). */
export function isClientSide(kind: CanonicalKind, crossEngine: boolean): boolean {
  return kind === 'json' && crossEngine;
}

// ---- PostgreSQL ----

/**
 * The exact binary value as "<53-bit mantissa>p<exponent>": both engines' float arithmetic is
 * exact for this (powers of two scale without rounding).
 */
function pgExactFloat(v: string): string {
  const a = `abs(${v})`;
  const l = `least(1023, greatest(-1074, floor(ln(${a}) / ln(2::float8))))`;
  const r = `(${a} / power(2::float8, ${l}))`;
  const e = `(${l} - (${r} < 1)::int + (${r} >= 2)::int)`;
  const h1 = `floor((52 - ${e}) / 2)`;
  const m = `(${a} * power(2::float8, ${h1}) * power(2::float8, 52 - ${e} - ${h1}))::bigint`;
  return `CASE WHEN ${v} < 0 THEN '-' ELSE '' END || ${m}::text || 'p' || ${e}::bigint::text`;
}

/**
 * Floats, exactly, in the cheapest form each magnitude allows (the same on both engines, since
 * the value alone picks the form and the arithmetic is exact):
 *   1 ≤ |v| < 2^53   "<floor>:<fraction × 2^52>", two integers (the fraction has at most 52 bits)
 *   other ≥ 1e-4    the shortest text that reads back as the same double: both engines print it
 *                   alike from 1e-4 up (PostgreSQL writes "1e+22" where MariaDB writes "1e22")
 *   below 1e-4      "<53-bit mantissa>p<exponent>" (the engines lay small numbers out differently)
 */
function pgFloat(v: string): string {
  return `CASE WHEN ${v} = 0 THEN '0' `
    + `WHEN abs(${v}) >= 1 AND abs(${v}) < ${TWO_53}::float8 THEN floor(${v})::bigint::text || ':' || ((${v} - floor(${v})) * ${TWO_52}::float8)::bigint::text `
    + `WHEN abs(${v}) < 1e-4 THEN ${pgExactFloat(v)} ELSE replace(${v}::text, 'e+', 'e') END`;
}

function pgCanonical(kind: CanonicalKind, sql: string, options: CanonicalOptions): string {
  const column = options.column;
  const type = column?.dataType.toLowerCase();
  const e = `(${sql})`;
  switch (kind) {
    case 'int': return column && PG_INTEGER.has(type ?? '') ? `${e}::text` : `trim_scale(${e}::numeric)::text`;
    case 'decimal': return options.fixedFraction !== undefined && column ? `${e}::text` : `trim_scale(${e}::numeric)::text`;
    case 'float': return pgFloat(`${e}::float8`);
    case 'bool': return `CASE ${e}::boolean WHEN true THEN '1' WHEN false THEN '0' END`;
    case 'char': return `rtrim(${e}::text, ' ')`;
    case 'text': return `${e}::text`;
    case 'bytes': {
      const b = column ? e : `${e}::bytea`;
      return `CASE WHEN octet_length(${b}) <= ${SHORT_BYTES} THEN encode(${b}, 'hex') ELSE 's' || encode(sha256(${b}), 'hex') END`;
    }
    case 'date': return column ? `${e}::text` : `${e}::date::text`;
    case 'timestamp': return type === 'timestamp without time zone' ? `${e}::text` : `(${e}::timestamptz AT TIME ZONE 'UTC')::text`;
    case 'time': return column ? `${e}::text` : `${e}::time::text`;
    case 'json': return options.crossEngine ? `${e}::text` : `${e}::jsonb::text`;
    case 'bits': return type === 'bit' && column?.length !== undefined && column.length > 64 ? `${e}::text` : `${e}::bigint::text`;
    case 'set': return type === 'array' ? `array_to_string(${e}, ',')` : `${e}::text`;
  }
}

// ---- MySQL / MariaDB ----

function mysqlExactFloat(v: string): string {
  const a = `ABS(${v})`;
  const l = `LEAST(1023, GREATEST(-1074, FLOOR(LOG2(${a}))))`;
  const r = `(${a} / POW(2, ${l}))`;
  const e = `(${l} - (${r} < 1) + (${r} >= 2))`;
  const h1 = `FLOOR((52 - ${e}) / 2)`;
  const m = `CAST(${a} * POW(2, ${h1}) * POW(2, 52 - ${e} - ${h1}) AS SIGNED)`;
  return `CONCAT(IF(${v} < 0, '-', ''), ${m}, 'p', ${e})`;
}

/** See pgFloat. MySQL FLOAT prints 6 digits only, so every float is read as a double first. */
function mysqlFloat(v: string): string {
  return `CASE WHEN ${v} = 0 THEN '0' `
    + `WHEN ABS(${v}) >= 1 AND ABS(${v}) < ${TWO_53} THEN CONCAT(CAST(FLOOR(${v}) AS SIGNED), ':', CAST((${v} - FLOOR(${v})) * ${TWO_52} AS UNSIGNED)) `
    + `WHEN ABS(${v}) < 1e-4 THEN ${mysqlExactFloat(v)} ELSE CAST(${v} AS CHAR) END`;
}

/** Drops trailing fractional zeros (and a bare point) of a decimal text. */
function mysqlTrimFraction(text: string, guarded: boolean): string {
  const trimmed = `TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM ${text}))`;
  return guarded ? `IF(LOCATE('.', ${text}) > 0, ${trimmed}, ${text})` : trimmed;
}

function isUtf8(column: ColumnInfo | undefined): boolean {
  const charset = column?.charset?.toLowerCase();
  return charset === undefined || charset === 'utf8mb4' || charset === 'utf8mb3' || charset === 'utf8';
}

function mysqlCanonical(kind: CanonicalKind, sql: string, options: CanonicalOptions): string {
  const column = options.column;
  const type = column?.dataType.toLowerCase();
  const e = `(${sql})`;
  const fsp = column?.datetimePrecision ?? 0;
  // TO_DAYS is NULL for NULL and for every date with a zero part (0000-00-00, 2020-00-15, 2020-01-00).
  const zeroDate = (value: string): string => (options.zeroDatesAsNull && column ? `IF(TO_DAYS(${e}) IS NULL, NULL, ${value})` : value);
  switch (kind) {
    // Integers are their own decimal text (CONCAT and the text protocol spell them so).
    case 'int': return column && MYSQL_INTEGER.has(type ?? '') ? e : mysqlTrimFraction(`CAST(${e} AS CHAR)`, true);
    case 'decimal':
      if (column && (type === 'decimal' || type === 'numeric')) {
        return (column.scale ?? 0) > 0 && options.fixedFraction === undefined ? mysqlTrimFraction(`CAST(${e} AS CHAR)`, false) : `CAST(${e} AS CHAR)`;
      }
      return mysqlTrimFraction(`CAST(${e} AS CHAR)`, true);
    case 'float': return mysqlFloat(type === 'double' || type === 'real' ? e : `(${e} + 0e0)`);
    case 'bool': return column ? e : `CASE WHEN ${e} THEN '1' WHEN NOT ${e} THEN '0' END`;
    case 'char': return `TRIM(TRAILING ' ' FROM ${column && isUtf8(column) && MYSQL_TEXT.has(type ?? '') ? e : `CONVERT(${e} USING utf8mb4)`})`;
    case 'text': case 'set': return column && isUtf8(column) && MYSQL_TEXT.has(type ?? '') ? e : `CONVERT(${e} USING utf8mb4)`;
    case 'bytes': return `IF(LENGTH(${e}) <= ${SHORT_BYTES}, LOWER(HEX(${e})), CONCAT('s', SHA2(${e}, 256)))`;
    case 'date': return zeroDate(column ? `CAST(${e} AS CHAR)` : `CAST(CAST(${e} AS DATE) AS CHAR)`);
    case 'timestamp':
      if (!column) return mysqlTrimFraction(`CAST(CAST(${e} AS DATETIME(6)) AS CHAR)`, false);
      // PostgreSQL drops trailing fractional zeros (to_char could pad, but costs more there than trimming here).
      return zeroDate(fsp > 0 && (options.crossEngine || options.fixedFraction === undefined) ? mysqlTrimFraction(`CAST(${e} AS CHAR)`, false) : `CAST(${e} AS CHAR)`);
    case 'time':
      if (!column) return mysqlTrimFraction(`CAST(CAST(${e} AS TIME(6)) AS CHAR)`, false);
      return fsp > 0 ? mysqlTrimFraction(`CAST(${e} AS CHAR)`, false) : `CAST(${e} AS CHAR)`;
    case 'json':
      if (options.crossEngine) return `CONVERT(${e} USING utf8mb4)`;
      // Text that is not JSON (a longtext column) compares as itself, marked so it never equals a document.
      return options.flavor === 'mysql' ? `CAST(CAST(${e} AS JSON) AS CHAR)` : `COALESCE(JSON_NORMALIZE(${e}), CONCAT('~', ${e}))`;
    case 'bits': return `CAST(${e} AS SIGNED)`;
  }
}

/** The canonical text of one value as an SQL expression of `engine` (NULL stays NULL). */
export function canonicalSql(engine: Engine, kind: CanonicalKind, sql: string, options: CanonicalOptions = {}): string {
  return engine === 'postgres' ? pgCanonical(kind, sql, options) : mysqlCanonical(kind, sql, options);
}

export interface RowField {
  /** The canonical expression (canonicalSql). */
  sql: string;
  kind: CanonicalKind;
  /** The expression is never NULL (a NOT NULL column of a kind that keeps every value): no NULL marker needed. */
  notNull?: boolean;
}

/**
 * One row's canonical text: fields joined by "|", NULL as "N", free text as "<bytes>:<text>"
 * (NULL free text as "N:"), so no value can run into the next one and NULL differs from every
 * value. One flat concatenation (nested ones cost on MySQL).
 */
export function rowTextSql(engine: Engine, fields: readonly RowField[]): string {
  if (fields.length === 0) return "''";
  const pg = engine === 'postgres';
  const parts: string[] = [];
  fields.forEach((field, i) => {
    if (i > 0) parts.push("'|'");
    if (!isFreeText(field.kind)) {
      parts.push(field.notNull ? field.sql : `COALESCE(${field.sql}, 'N')`);
      return;
    }
    const length = pg ? `octet_length(${field.sql})::text` : `LENGTH(${field.sql})`;
    parts.push(field.notNull ? length : `COALESCE(${length}, 'N')`, "':'", field.notNull ? field.sql : `COALESCE(${field.sql}, '')`);
  });
  // A NULL anywhere would make the whole text NULL and drop the row from the sum: mark it instead.
  return pg ? `COALESCE(${parts.join(' || ')}, '?')` : `COALESCE(CONCAT(${parts.join(', ')}), '?')`;
}

/** The first 60 bits of sha256(text) as a non-negative integer: summed exactly by both engines. */
export function hash60Sql(engine: Engine, textSql: string): string {
  return engine === 'postgres'
    ? `('x' || substr(encode(sha256(convert_to(${textSql}, 'UTF8')), 'hex'), 1, 15))::bit(60)::bigint`
    : `CAST(CONV(SUBSTRING(SHA2(${textSql}, 256), 1, 15), 16, 10) AS UNSIGNED)`;
}

/** 32 bits of sha256(text) starting at hex digit `slice` × 8, reduced modulo `modulus`. */
export function hashBucketSql(engine: Engine, textSql: string, slice: number, modulus: number): string {
  const start = slice * 8 + 1;
  return engine === 'postgres'
    ? `(('x' || substr(encode(sha256(convert_to(${textSql}, 'UTF8')), 'hex'), ${start}, 8))::bit(32)::bigint % ${modulus})`
    : `(CAST(CONV(SUBSTRING(SHA2(${textSql}, 256), ${start}, 8), 16, 10) AS UNSIGNED) % ${modulus})`;
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The client's side of hash60Sql. */
export function hash60(text: string): bigint {
  return BigInt(`0x${sha256(text).slice(0, 15)}`);
}

/** The client's side of hashBucketSql. */
export function hashBucket(text: string, slice: number, modulus: number): number {
  return Number(BigInt(`0x${sha256(text).slice(slice * 8, slice * 8 + 8)}`) % BigInt(modulus));
}

function sortedJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedJson);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(entries.map(([k, v]) => [k, sortedJson(v)]));
  }
  return value;
}

/** JSON text with object keys sorted and whitespace dropped (numbers as JavaScript reads them). */
export function canonicalJson(text: string): string {
  try {
    return JSON.stringify(sortedJson(JSON.parse(text)));
  } catch {
    return text;
  }
}

/** The client's canonical text of a fetched value of a client-side kind; other kinds come canonical from SQL. */
export function clientCanonical(kind: CanonicalKind, value: string | Buffer | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === 'string' ? value : value.toString('utf8');
  return kind === 'json' ? canonicalJson(text) : text;
}

/** The client's side of rowTextSql for the same field kinds (values already canonical, null = NULL). */
export function rowText(values: readonly { kind: CanonicalKind; value: string | null }[]): string {
  return values.map(({ kind, value }) => {
    if (!isFreeText(kind)) return value ?? 'N';
    return value === null ? 'N:' : `${Buffer.byteLength(value, 'utf8')}:${value}`;
  }).join('|');
}
