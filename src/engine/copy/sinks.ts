// Writing batches into the target. Each batch is one transaction holding the rows and the
// checkpoint that names its last key: PostgreSQL COPY FROM STDIN, MySQL LOAD DATA LOCAL INFILE
// from a stream. A batch whose row count or warnings say a row was not stored as sent is rolled
// back and fails the copy: nothing is silently dropped, truncated or duplicated.
import { once } from 'node:events';
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Connection as MysqlPromiseConnection, ResultSetHeader } from 'mysql2/promise';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { mysqlSession } from '../db/mysql/connection.ts';
import { postgresSession } from '../db/postgres/connection.ts';
import type { SqlSession } from '../db/session.ts';
import { writeCheckpoint, type Checkpoint, type CheckpointId } from './checkpoint.ts';
import { loadDataStatement } from './load-data.ts';

export type ConflictPolicy = 'fail' | 'upsert';

export interface TargetColumn {
  name: string;
  /** MySQL targets: the column holds bytes (sent as hex, loaded through UNHEX). */
  binary: boolean;
  /** MySQL targets: an expression over the loaded value, for columns LOAD DATA cannot fill directly. */
  loadExpression?: (variable: string) => string;
}

export interface BatchSink {
  begin(): Promise<void>;
  /** Appends encoded rows (target format, newline-terminated); resolves when the stream accepts more. */
  write(chunk: string | Buffer): Promise<void>;
  /** Ends the batch: verifies `rows` arrived, records the checkpoint and commits. */
  commit(rows: number, id: CheckpointId, checkpoint: Checkpoint): Promise<void>;
  /** Records a checkpoint in a transaction of its own (no rows): the final "done" mark. */
  mark(id: CheckpointId, checkpoint: Checkpoint): Promise<void>;
  rollback(): Promise<void>;
}

/** A checkpoint in a transaction of its own (the final "done" mark), through any session. */
export async function markCheckpoint(session: SqlSession, id: CheckpointId, checkpoint: Checkpoint): Promise<void> {
  await session.query(session.dialect.beginStatement);
  await writeCheckpoint(session, id, checkpoint);
  await session.query('COMMIT');
}

/** Writes to a stream, waiting for 'drain' when it is full, failing fast if the stream fails. */
async function writeWithBackpressure(stream: Writable, chunk: string | Buffer): Promise<void> {
  // A destroyed stream takes nothing and would never drain (a failed LOAD destroys its input).
  if (stream.destroyed) throw stream.errored ?? new Error('the batch\'s stream is closed');
  if (stream.write(chunk)) return;
  await once(stream, 'drain'); // rejects on 'error'
}

export function postgresSink(client: pg.Client, table: string, columns: readonly TargetColumn[], key: readonly string[], policy: ConflictPolicy): BatchSink {
  const session: SqlSession = postgresSession(client);
  const d = session.dialect;
  const target = d.quoteQualified(table);
  const columnList = columns.map((c) => d.quoteIdent(c.name)).join(', ');
  const stage = d.quoteIdent('dataops_stage');
  let stream: (Writable & { rowCount?: number }) | undefined;
  let stageReady = false;
  return {
    async begin() {
      await client.query('BEGIN');
      if (policy === 'upsert' && !stageReady) {
        await client.query(`CREATE TEMP TABLE IF NOT EXISTS ${stage} (LIKE ${target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`);
        stageReady = true;
      }
      stream = client.query(copyFrom(`COPY ${policy === 'upsert' ? stage : target} (${columnList}) FROM STDIN`));
      // Failures reach the caller through write() and commit(); this keeps them from being unhandled.
      stream.on('error', () => undefined);
    },
    async write(chunk) {
      if (!stream) throw new Error('batch not started');
      await writeWithBackpressure(stream, chunk);
    },
    async commit(rows, id, checkpoint) {
      if (!stream) throw new Error('batch not started');
      const copy = stream;
      stream = undefined;
      copy.end();
      await finished(copy);
      if (copy.rowCount !== rows) throw new Error(`COPY stored ${copy.rowCount ?? '?'} rows of a batch of ${rows}`);
      if (policy === 'upsert') {
        const updates = columns.filter((c) => !key.includes(c.name)).map((c) => `${d.quoteIdent(c.name)} = EXCLUDED.${d.quoteIdent(c.name)}`);
        const action = updates.length > 0 ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING';
        await client.query(`INSERT INTO ${target} (${columnList}) SELECT ${columnList} FROM ${stage} ON CONFLICT (${key.map((k) => d.quoteIdent(k)).join(', ')}) ${action}`);
      }
      await writeCheckpoint(session, id, checkpoint);
      await client.query('COMMIT');
    },
    mark: (id, checkpoint) => markCheckpoint(session, id, checkpoint),
    async rollback() {
      stream?.destroy();
      stream = undefined;
      await client.query('ROLLBACK').catch(() => undefined);
    },
  };
}

let stageCounter = 0;

/** What may wait in the MySQL connection's socket before the copy stops handing it more. */
const SOCKET_BUFFER_BYTES = 1 << 20;

/**
 * mysql2 forwards a LOCAL INFILE stream to the socket as fast as the stream gives it, whatever
 * the socket's backlog (it only follows the socket's read side): against a slower server a whole
 * batch would pile up in memory. Waits until the socket has sent most of what it holds.
 */
async function socketDrained(connection: MysqlPromiseConnection, input: PassThrough): Promise<void> {
  const socket = (connection as unknown as { connection?: { stream?: Writable } }).connection?.stream;
  if (!socket || socket.writableLength <= SOCKET_BUFFER_BYTES || socket.destroyed || input.destroyed) return;
  // Also stops waiting when the LOAD fails (its input is destroyed): the write then throws.
  await new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      input.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
    input.on('close', done);
  });
}

export function mysqlSink(connection: MysqlPromiseConnection, table: string, columns: readonly TargetColumn[], policy: ConflictPolicy): BatchSink {
  const session = mysqlSession(connection);
  const d = session.dialect;
  // Upsert loads into a session-private staging table, then merges with ON DUPLICATE KEY UPDATE.
  // (LOAD DATA ... REPLACE would delete and re-insert the row, which fires ON DELETE CASCADE
  // foreign keys of child tables: rows the copy never meant to touch.)
  const stage = d.quoteIdent(`dataops_stage_${String(stageCounter++)}`);
  const columnList = columns.map((c) => d.quoteIdent(c.name)).join(', ');
  const statement = loadDataStatement(
    policy === 'upsert' ? stage : d.quoteQualified(table),
    columns.map((c) => ({ quoted: d.quoteIdent(c.name), binary: c.binary, ...(c.loadExpression ? { expression: c.loadExpression } : {}) })),
  );
  let stageReady = false;
  let input: PassThrough | undefined;
  let load: Promise<unknown> | undefined;
  return {
    async begin() {
      if (policy === 'upsert' && !stageReady) {
        await connection.query(`CREATE TEMPORARY TABLE ${stage} LIKE ${d.quoteQualified(table)}`);
        stageReady = true;
      }
      await connection.query('START TRANSACTION');
      const stream = new PassThrough({ highWaterMark: 1 << 20 });
      stream.on('error', () => undefined); // surfaced through write() and commit()
      input = stream;
      load = connection.query({ sql: statement, infileStreamFactory: () => stream });
      // A failed LOAD leaves the writer waiting on 'drain': surface the failure on the stream.
      load.catch((error: unknown) => stream.destroy(error instanceof Error ? error : new Error(String(error))));
    },
    async write(chunk) {
      if (!input) throw new Error('batch not started');
      await socketDrained(connection, input);
      await writeWithBackpressure(input, chunk);
    },
    async commit(rows, id, checkpoint) {
      if (!input || !load) throw new Error('batch not started');
      input.end();
      const [header] = (await load) as [ResultSetHeader];
      input = undefined;
      load = undefined;
      // LOAD DATA LOCAL turns errors into warnings (truncation, bad values, duplicate keys are
      // skipped): any warning, or a row count short of the batch, fails the batch instead.
      if (header.warningStatus > 0 || (policy === 'fail' && header.affectedRows !== rows)) {
        const [warnings] = await connection.query('SHOW WARNINGS LIMIT 5');
        const detail = (warnings as { Message: string }[]).map((w) => w.Message).join('; ');
        throw new Error(`LOAD DATA stored ${header.affectedRows} rows of a batch of ${rows} with ${header.warningStatus} warnings${detail ? `: ${detail}` : ''}`);
      }
      if (policy === 'upsert') {
        const updates = columns.map((c) => `${d.quoteIdent(c.name)} = VALUES(${d.quoteIdent(c.name)})`).join(', ');
        await connection.query(`INSERT INTO ${d.quoteQualified(table)} (${columnList}) SELECT ${columnList} FROM ${stage} ON DUPLICATE KEY UPDATE ${updates}`);
        await connection.query(`DELETE FROM ${stage}`);
      }
      await writeCheckpoint(session, id, checkpoint);
      await connection.query('COMMIT');
    },
    mark: (id, checkpoint) => markCheckpoint(session, id, checkpoint),
    async rollback() {
      // Ended, not destroyed: mysql2 does not notice a destroyed input, and LOAD DATA would wait
      // for the rest of it until the server's net_read_timeout (a failed row in the copy then
      // failed only a minute later). The rows already sent are undone by the ROLLBACK.
      if (input && !input.destroyed) input.end();
      else input?.destroy();
      input = undefined;
      await load?.catch(() => undefined);
      load = undefined;
      await connection.query('ROLLBACK').catch(() => undefined);
    },
  };
}
