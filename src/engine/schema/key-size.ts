// InnoDB refuses a key whose columns take more than 3072 bytes (utf8mb4: 4 bytes a character), so
// a PostgreSQL key of two text columns (each varchar(768) on MySQL) cannot be created. The plan
// measures every key of a table it creates on MySQL from the column types it chose, and refuses
// the one that does not fit, naming it and its columns, rather than fail after the copy.

/** InnoDB's key length limit (DYNAMIC/COMPRESSED row formats, MySQL 5.7+, MariaDB 10.2+). */
export const INNODB_MAX_KEY_BYTES = 3072;

const FIXED: Record<string, number> = {
  tinyint: 1, smallint: 2, mediumint: 3, int: 4, integer: 4, bigint: 8, float: 4, double: 8,
  date: 3, year: 1, time: 3, datetime: 5, timestamp: 4, enum: 2, set: 8,
};

/** The most bytes a value of a MySQL column type (as the DDL spells it) takes in an InnoDB key; characters are utf8mb4. */
export function keyBytes(type: string): number {
  const match = /^([a-z]+)(?:\((\d+)(?:,(\d+))?\))?/i.exec(type.trim());
  const base = (match?.[1] ?? '').toLowerCase();
  const n = Number(match?.[2] ?? '0');
  switch (base) {
    case 'char': case 'varchar': return 4 * (match?.[2] === undefined ? 1 : n);
    case 'binary': case 'varbinary': return match?.[2] === undefined ? 1 : n;
    case 'bit': return Math.ceil((match?.[2] === undefined ? 1 : n) / 8);
    case 'decimal': return Math.ceil((match?.[2] === undefined ? 10 : n) / 9) * 4 + 1;
    case 'time': case 'datetime': case 'timestamp': return (FIXED[base] ?? 0) + Math.ceil(n / 2);
    default: return FIXED[base] ?? 0;
  }
}

export interface KeyToCheck {
  /** "primary key", "unique key u_email", "index by_name". */
  label: string;
  columns: string[];
}

/** A refusal for each key over the limit, naming it, its columns and their sizes; empty when all fit. */
export function oversizedKeys(table: string, keys: readonly KeyToCheck[], typeOf: (column: string) => string | undefined): string[] {
  const reasons: string[] = [];
  for (const key of keys) {
    const sizes = key.columns.map((column) => ({ column, type: typeOf(column) ?? '', bytes: keyBytes(typeOf(column) ?? '') }));
    const total = sizes.reduce((sum, s) => sum + s.bytes, 0);
    if (total <= INNODB_MAX_KEY_BYTES) continue;
    reasons.push(`table ${table}: ${key.label} (${key.columns.join(', ')}) would take ${String(total)} bytes on MySQL `
      + `(${sizes.map((s) => `${s.column} ${s.type}: ${String(s.bytes)}`).join(', ')}; utf8mb4 counts 4 bytes a character), over InnoDB's ${String(INNODB_MAX_KEY_BYTES)}-byte key limit: `
      + 'create the table with a schema migration (shorter columns, or a key on fewer columns), or leave the table out');
  }
  return reasons;
}
