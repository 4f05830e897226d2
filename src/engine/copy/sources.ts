// Reading a source table for the copy: one streaming query per table or shard, inside one
// read-only transaction (one snapshot). PostgreSQL gives COPY text bytes; MySQL gives rows.
// Both hand out rows in blocks, so the per-row cost is a loop step, not an await.
import type { Readable } from 'node:stream';
import type { Connection as MysqlConnection } from 'mysql2';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { postgresAdapter } from '../db/postgres/adapter.ts';
import { assertMysqlSelect, assertPostgresCopyOut } from '../sql/statement-guard.ts';
import { parseCopyTextLine } from './pg-text.ts';

export type SourceValue = string | Buffer | null;
export type SourceRow = SourceValue[];

/**
 * Starts the read-only snapshot a whole table or shard is read in, and makes sure string literals
 * read as the statement guard parsed them (standard_conforming_strings on: every session asks for
 * it at startup) before any COPY goes over the simple protocol. With `snapshotName` (change
 * capture: the slot's exported snapshot) the transaction imports it, as its first statement.
 */
export async function beginPostgresSnapshot(client: pg.Client, snapshotName?: string): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  if (snapshotName !== undefined) await client.query(`SET TRANSACTION SNAPSHOT ${postgresAdapter.quoteLiteral(snapshotName)}`);
  const result = await client.query<{ standard_conforming_strings?: string }>('SHOW standard_conforming_strings');
  if (result.rows[0]?.standard_conforming_strings !== 'on') {
    await client.query('ROLLBACK');
    throw new Error('the PostgreSQL source session has standard_conforming_strings off, under which the copy\'s string literals would not read as checked; refusing to copy');
  }
}

/**
 * `COPY (select) TO STDOUT` in text format: a byte stream of rows, one per line. pg-copy-streams
 * sends it as a simple query, where a second statement would run: the statement guard parses it
 * first and refuses anything but COPY of one read-only SELECT to STDOUT (throws UnsafeStatement).
 */
export function postgresCopyOut(client: pg.Client, select: string): Readable {
  const statement = `COPY (${select}) TO STDOUT`;
  assertPostgresCopyOut(statement, 'the copy\'s COPY … TO STDOUT');
  return client.query(copyTo(statement));
}

/**
 * Splits a COPY text byte stream into lines; a line may span chunks. Yields the complete lines
 * of each chunk. A long line's pieces are kept and joined once (not re-copied on every chunk).
 */
export async function* copyTextLines(stream: AsyncIterable<Buffer>): AsyncGenerator<string[]> {
  let carry: Buffer[] = []; // pieces of an unfinished line
  for await (const chunk of stream) {
    const end = chunk.lastIndexOf(10);
    if (end < 0) {
      carry.push(chunk);
      continue;
    }
    const data = carry.length > 0 ? Buffer.concat([...carry, chunk.subarray(0, end)]) : chunk.subarray(0, end);
    carry = end + 1 < chunk.length ? [chunk.subarray(end + 1)] : [];
    yield data.toString('utf8').split('\n');
  }
  if (carry.length > 0) yield [Buffer.concat(carry).toString('utf8')];
}

/** Rows of a PostgreSQL COPY text stream, in blocks. */
export async function* postgresRowBlocks(stream: AsyncIterable<Buffer>): AsyncGenerator<SourceRow[]> {
  for await (const lines of copyTextLines(stream)) yield lines.map(parseCopyTextLine);
}

export async function beginMysqlSnapshot(connection: MysqlConnection): Promise<void> {
  const run = (sql: string): Promise<void> => new Promise((resolve, reject) => {
    connection.query(sql, (error) => { if (error) reject(error); else resolve(); });
  });
  // The server stops writing to a client that reads slower than this; a batch commit can take a while.
  await run('SET SESSION net_write_timeout = 3600');
  await run('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
}

const BLOCK_ROWS = 500;
/** A block also ends at this many bytes of values: rows of megabytes come a few at a time. */
const BLOCK_BYTES = 1 << 20;
const MAX_QUEUED_BLOCKS = 4;
/** Read-ahead in bytes: the connection is paused while this much waits for the consumer. */
const MAX_QUEUED_BYTES = 4 << 20;

/** The bytes a row's values take, near enough (a string's length, a Buffer's size). */
function rowBytes(row: SourceRow): number {
  let bytes = 0;
  for (const value of row) if (value !== null) bytes += value.length;
  return bytes;
}

/**
 * Rows of a streaming MySQL query, in blocks. The connection is paused while the consumer is
 * MAX_QUEUED_BLOCKS or MAX_QUEUED_BYTES behind, so memory stays bounded whatever the table's
 * size and its rows' width.
 */
export async function* mysqlRowBlocks(connection: MysqlConnection, select: string): AsyncGenerator<SourceRow[]> {
  // One SELECT, nothing after it, no INTO OUTFILE/DUMPFILE, no locking read (throws UnsafeStatement).
  assertMysqlSelect(select, 'the copy\'s SELECT');
  const queue: { rows: SourceRow[]; bytes: number }[] = [];
  let block: SourceRow[] = [];
  let blockBytes = 0;
  // Set by the query's event handlers while this generator waits (hence an object, not locals
  // that the type checker would consider constant between awaits).
  const state: { done: boolean; failure?: Error; paused: boolean; queuedBytes: number } = { done: false, paused: false, queuedBytes: 0 };
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const query = connection.query({ sql: select, rowsAsArray: true });
  query.on('result', (result) => {
    const row = result as unknown as SourceRow;
    block.push(row);
    blockBytes += rowBytes(row);
    if (block.length >= BLOCK_ROWS || blockBytes >= BLOCK_BYTES) {
      queue.push({ rows: block, bytes: blockBytes });
      state.queuedBytes += blockBytes;
      block = [];
      blockBytes = 0;
      if ((queue.length >= MAX_QUEUED_BLOCKS || state.queuedBytes >= MAX_QUEUED_BYTES) && !state.paused) {
        state.paused = true;
        connection.pause();
      }
      notify();
    }
  });
  query.on('error', (error: Error) => {
    state.failure = error;
    notify();
  });
  query.on('end', () => {
    if (block.length > 0) queue.push({ rows: block, bytes: blockBytes });
    state.done = true;
    notify();
  });
  try {
    for (;;) {
      const next = queue.shift();
      if (next) {
        state.queuedBytes -= next.bytes;
        if (state.paused && queue.length < MAX_QUEUED_BLOCKS / 2 && state.queuedBytes < MAX_QUEUED_BYTES / 2) {
          state.paused = false;
          connection.resume();
        }
        yield next.rows;
        continue;
      }
      if (state.failure) throw state.failure;
      if (state.done) return;
      await new Promise<void>((resolve) => { wake = resolve; });
    }
  } finally {
    // Left early (an error or an abort downstream): a paused query never ends, and ending the
    // connection would wait for it forever. Drop the connection; the copy is failing anyway.
    if (!state.done) connection.destroy();
  }
}
