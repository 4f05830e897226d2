// Positions in a MySQL/MariaDB binary log (file name and byte offset), what the binlog change
// capture records with each target commit, and the values its rows carry (pure: the I/O is in
// binlog-capture.ts and binlog-stream.ts).

/** Where an event ends, so where reading resumes: a binlog file and a byte offset in it. */
export interface BinlogPosition {
  file: string;
  offset: number;
}

/** 'binlog.000042:1234', as the checkpoint stores it. */
export function formatBinlogPosition(position: BinlogPosition): string {
  return `${position.file}:${position.offset}`;
}

export function parseBinlogPosition(text: string): BinlogPosition {
  const match = /^(.+):(\d{1,15})$/.exec(text.trim());
  if (!match?.[1] || !match[2]) throw new Error(`not a binlog position: ${text.slice(0, 60)}`);
  return { file: match[1], offset: Number(match[2]) };
}

/** The sequence number a binlog file name ends with (binlog.000042: 42); files of one server sort by it. */
function fileSequence(file: string): number {
  const match = /\.(\d+)$/.exec(file);
  if (!match?.[1]) throw new Error(`a binlog file name without its sequence number: ${file.slice(0, 60)}`);
  return Number(match[1]);
}

/** Negative, 0 or positive as `a` is before, at or after `b`. */
export function compareBinlogPositions(a: BinlogPosition, b: BinlogPosition): number {
  const byFile = fileSequence(a.file) - fileSequence(b.file);
  return byFile !== 0 ? byFile : a.offset - b.offset;
}

export interface BinaryLogFile {
  name: string;
  size: number;
}

/**
 * Bytes of binlog from `applied` to `current`, across files (`logs`: SHOW BINARY LOGS, whose sizes
 * include each file's header, a few hundred bytes that make the figure an upper bound across a
 * rotation). 0 when `applied` is at or past `current`.
 */
export function binlogBytesBetween(applied: BinlogPosition, current: BinlogPosition, logs: readonly BinaryLogFile[]): number {
  if (compareBinlogPositions(applied, current) >= 0) return 0;
  if (applied.file === current.file) return current.offset - applied.offset;
  const from = fileSequence(applied.file);
  const to = fileSequence(current.file);
  let bytes = current.offset;
  for (const log of logs) {
    const sequence = fileSequence(log.name);
    if (sequence === from) bytes += Math.max(0, log.size - applied.offset);
    else if (sequence > from && sequence < to) bytes += log.size;
  }
  return bytes;
}

/** A row value as the binlog client decodes it (with mysql2's dateStrings, bigNumberStrings and jsonStrings). */
export type DecodedValue = unknown;

/**
 * A decoded binlog value as the server's own text, which the copy reads (connection.ts's
 * textTypeCast): integers, FLOAT and DOUBLE arrive as JS numbers (exact: integers beyond 2^53
 * arrive as strings, a FLOAT as its float32 value, which prints as the copy's `(f + 0e0)` prints
 * it), DECIMAL, dates and times, JSON, text, ENUM and SET as the server's text; binary strings,
 * blobs and BIT as bytes, as the copy reads them. Anything else is refused, not guessed.
 */
export function binlogValueText(value: DecodedValue): string | Buffer | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || Buffer.isBuffer(value)) return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`a binlog value the server cannot hold: ${String(value)}`);
    // The server prints 1e21 where JavaScript prints 1e+21.
    return String(value).replace('e+', 'e');
  }
  throw new Error(`a binlog value of an unexpected type (${value instanceof Date ? 'Date: dateStrings is off' : typeof value})`);
}
