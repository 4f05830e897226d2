// MySQL/MariaDB change capture, its source side: the prerequisites, and the consistent start of the
// initial copy: a snapshot transaction and the binlog position it corresponds to, so that the copy
// reads every transaction committed before that position and the stream (binlog-stream.ts) applies
// every one from it: nothing falls between the copy and the stream.
//
// Nothing is created on the source: a binlog reader needs no slot (unlike PostgreSQL). The other
// side of that coin: the server does not keep the binlog for us. It purges files after
// binlog_expire_logs_seconds / expire_logs_days (or PURGE BINARY LOGS), so the binlog must be
// retained longer than the copy plus the longest time the applier may be stopped; a position whose
// file was purged cannot be resumed (the stream fails: the migration must start over).
import type mysql from 'mysql2/promise';
import type { CaptureSource, CapturedTableSpec } from '../change-capture.ts';
import { connectMysql } from './connection.ts';
import type { BinaryLogFile, BinlogPosition } from './binlog-position.ts';

export type { CaptureSource, CapturedTableSpec };

type Row = Record<string, unknown>;

async function rows(connection: mysql.Connection, sql: string, params: unknown[] = []): Promise<Row[]> {
  const [result] = await connection.query(sql, params);
  return Array.isArray(result) ? (result as Row[]) : [];
}

function text(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' ? String(value) : '';
}

export class BinlogCaptureRefused extends Error {}

/** Global privileges from SHOW GRANTS lines (ON *.*): granted through roles are not followed. */
function globalPrivileges(lines: readonly string[]): Set<string> {
  const granted = new Set<string>();
  for (const line of lines) {
    const match = /^GRANT (.+?) ON \*\.\* TO /i.exec(line);
    if (!match?.[1]) continue;
    for (const privilege of match[1].split(',')) granted.add(privilege.trim().toUpperCase().replace(/\s+/g, ' '));
  }
  return granted;
}

/** Why change capture cannot read this source's binlog for these tables (empty: it can). Reads only. */
export async function binlogCaptureProblems(connection: mysql.Connection, tables: readonly CapturedTableSpec[]): Promise<string[]> {
  const problems: string[] = [];
  const settings = (await rows(connection, 'SELECT @@GLOBAL.log_bin AS log_bin, @@GLOBAL.binlog_format AS format, @@GLOBAL.binlog_row_image AS image, @@GLOBAL.server_id AS server_id'))[0] ?? {};
  if (!['1', 'ON'].includes(text(settings.log_bin).toUpperCase())) problems.push('the source server runs without the binary log (log_bin is OFF); change capture needs --log-bin (a server restart)');
  const format = text(settings.format).toUpperCase();
  // A session with SUPER may still set its own binlog_format: such writes would not reach the stream as rows.
  if (format !== 'ROW') problems.push(`the source server logs binlog_format=${format || '?'}; change capture needs binlog_format=ROW (SET GLOBAL binlog_format=ROW, for sessions started after it)`);
  const image = text(settings.image).toUpperCase();
  if (image !== 'FULL') problems.push(`the source server logs binlog_row_image=${image || '?'}; change capture needs FULL (whole rows: updates are applied as whole-row upserts)`);
  const privileges = globalPrivileges((await rows(connection, 'SHOW GRANTS')).map((row) => text(Object.values(row)[0])));
  const all = privileges.has('ALL PRIVILEGES') || privileges.has('ALL');
  if (!all && !privileges.has('REPLICATION SLAVE') && !privileges.has('REPLICATION REPLICA')) {
    problems.push('the source account lacks REPLICATION SLAVE (GRANT REPLICATION SLAVE ON *.* TO …), which reading the binlog needs');
  }
  // MariaDB 10.5+ names REPLICATION CLIENT "BINLOG MONITOR"; it lets us read the current position and the binlog sizes.
  if (!all && !privileges.has('REPLICATION CLIENT') && !privileges.has('BINLOG MONITOR') && !privileges.has('SUPER')) {
    problems.push('the source account lacks REPLICATION CLIENT (BINLOG MONITOR on MariaDB 10.5+), which reading the binlog position needs');
  }
  for (const table of tables) {
    const label = `table ${table.schema}.${table.name}`;
    const info = (await rows(connection, 'SELECT ENGINE AS engine, TABLE_TYPE AS type FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [table.schema, table.name]))[0];
    if (!info) {
      problems.push(`${label} does not exist on the source`);
      continue;
    }
    if (text(info.type) !== 'BASE TABLE') problems.push(`${label} is not a base table (${text(info.type)}): its changes are not in the binlog under its name`);
    // A key the target can find rows by: the primary key, or a unique index of NOT NULL columns, exactly the key's columns.
    const indexes = await rows(connection, `SELECT s.INDEX_NAME AS name, GROUP_CONCAT(s.COLUMN_NAME ORDER BY s.SEQ_IN_INDEX SEPARATOR '\\n') AS columns_list,
        MAX(c.IS_NULLABLE = 'YES') AS nullable
      FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c
        ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
      WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0 GROUP BY s.INDEX_NAME`, [table.schema, table.name]);
    const keySet = [...table.key].sort().join('\n');
    const matching = indexes.some((index) => text(index.nullable) === '0' && text(index.columns_list).split('\n').sort().join('\n') === keySet);
    if (!indexes.some((index) => text(index.name) === 'PRIMARY')) {
      problems.push(`${label} has no primary key: its changes cannot be matched to target rows reliably; give it a primary key`);
    } else if (!matching) {
      problems.push(`${label}: the key the target matches rows by (${table.key.join(', ')}) is not its primary key or a unique index of NOT NULL columns`);
    }
  }
  return problems;
}

/** The server's current binlog position: where the next event goes (SHOW MASTER STATUS, SHOW BINARY LOG STATUS on MySQL 8.4+). */
export async function currentBinlogPosition(connection: mysql.Connection): Promise<BinlogPosition> {
  let status: Row[];
  try {
    status = await rows(connection, 'SHOW MASTER STATUS');
  } catch (error) {
    // ER_PARSE_ERROR: MySQL 8.4 removed the old spelling.
    if ((error as { errno?: number }).errno !== 1064) throw error;
    status = await rows(connection, 'SHOW BINARY LOG STATUS');
  }
  const row = status[0];
  if (!row) throw new BinlogCaptureRefused('the source server reports no binlog position (binary log off, or the account lacks REPLICATION CLIENT)');
  return { file: text(row.File), offset: Number(text(row.Position)) };
}

/** The binlog files the server still has, oldest first (SHOW BINARY LOGS). */
export async function binaryLogFiles(connection: mysql.Connection): Promise<BinaryLogFile[]> {
  return (await rows(connection, 'SHOW BINARY LOGS')).map((row) => ({ name: text(row.Log_name), size: Number(text(row.File_size)) }));
}

export interface BinlogSnapshot {
  /** Where the stream starts: the snapshot holds every transaction committed before it, none after. */
  position: BinlogPosition;
  /** 'mariadb-status': read without a lock; 'read-lock': under a brief FLUSH TABLES WITH READ LOCK (MySQL). */
  method: 'mariadb-status' | 'read-lock';
  /**
   * The session inside the snapshot transaction (read only): the copy reads through it. A MySQL
   * snapshot cannot be shared with other sessions (PostgreSQL's exported snapshot can), so a copy
   * split over several sessions needs each its own snapshot and position: the stream would then
   * start at the earliest, replaying changes some tables already hold, which converges with whole
   * row images but was not built here.
   */
  connection: mysql.Connection;
  /** Ends the snapshot transaction and the session. */
  release(): Promise<void>;
}

/**
 * Checks the prerequisites (BinlogCaptureRefused names every one unmet), then opens a consistent
 * snapshot and reads the binlog position it corresponds to.
 * - MariaDB: `SHOW STATUS LIKE 'binlog_snapshot_%'` inside the snapshot transaction gives the
 *   position as of its start, with no lock (tested).
 * - MySQL has no such status: FLUSH TABLES WITH READ LOCK (RELOAD privilege), the snapshot, the
 *   position, UNLOCK TABLES; writes wait for the lock meanwhile (milliseconds, unless a long
 *   statement holds tables open: FTWRL waits for it). Refused without RELOAD. Untested here: the
 *   test servers are MariaDB. (performance_schema.log_status is not used: reading it is not atomic
 *   with the snapshot's start.)
 */
export async function openBinlogSnapshot(source: CaptureSource, tables: readonly CapturedTableSpec[]): Promise<BinlogSnapshot> {
  if (tables.length === 0) throw new BinlogCaptureRefused('no tables to capture');
  const connection = await connectMysql(source.url, { readOnly: true, side: 'source', applicationName: 'datamigration-capture', ...(source.tls ? { tls: source.tls } : {}) });
  try {
    const problems = await binlogCaptureProblems(connection, tables);
    if (problems.length > 0) throw new BinlogCaptureRefused(`change capture cannot start: ${problems.join('; ')}`);
    const version = text((await rows(connection, 'SELECT VERSION() AS v'))[0]?.v);
    await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    let position: BinlogPosition;
    let method: BinlogSnapshot['method'];
    if (/mariadb/i.test(version)) {
      await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const status = new Map((await rows(connection, "SHOW STATUS LIKE 'binlog_snapshot_%'")).map((row) => [text(row.Variable_name).toLowerCase(), text(row.Value)]));
      const file = status.get('binlog_snapshot_file');
      const offset = status.get('binlog_snapshot_position');
      if (!file || !offset) throw new BinlogCaptureRefused('the source server reports no binlog_snapshot_file/position (binary log off?)');
      position = { file, offset: Number(offset) };
      method = 'mariadb-status';
    } else {
      try {
        await connection.query('FLUSH TABLES WITH READ LOCK');
      } catch (error) {
        throw new BinlogCaptureRefused(`a consistent start on MySQL needs a brief FLUSH TABLES WITH READ LOCK, which the source account may not take (RELOAD privilege): ${(error as Error).message}`);
      }
      try {
        await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
        position = await currentBinlogPosition(connection);
      } finally {
        await connection.query('UNLOCK TABLES');
      }
      method = 'read-lock';
    }
    let released = false;
    return {
      position, method, connection,
      async release() {
        if (released) return;
        released = true;
        await connection.query('COMMIT').catch(() => undefined);
        await connection.end().catch(() => undefined);
      },
    };
  } catch (error) {
    connection.destroy();
    throw error;
  }
}
