// Copies one table, or one key range of it, from source to target in checkpointed batches.
// Resumes after the last committed key; a shard already marked done is skipped.
import type { Connection as MysqlConnection } from 'mysql2';
import type pg from 'pg';
import { adapterFor } from '../db/adapter.ts';
import { connectMysql, connectMysqlCore, mysqlSession } from '../db/mysql/connection.ts';
import { connectPostgres, postgresSession } from '../db/postgres/connection.ts';
import type { SqlSession } from '../db/session.ts';
import type { TlsOptions } from '../db/session.ts';
import type { Side } from '../db/connection-options.ts';
import { readCheckpoint, type Checkpoint, type CheckpointId, type KeyValue } from './checkpoint.ts';
import { formatLoadDataLine } from './load-data.ts';
import { formatCopyTextLine, parseCopyTextLine } from './pg-text.ts';
import { isPassthrough, type TableCopyPlan } from './plan-types.ts';
import { mysqlInsertSink } from './mysql-insert-sink.ts';
import { mysqlSink, postgresSink, type BatchSink } from './sinks.ts';
import { buildSourceSelect } from './source-query.ts';
import {
  beginMysqlSnapshot, beginPostgresSnapshot, mysqlRowBlocks, postgresCopyOut, postgresRowBlocks, type SourceRow,
} from './sources.ts';

export interface Endpoint {
  url: string;
  tls?: TlsOptions;
  /** Named in connection errors and timeouts. */
  side?: Side;
}

export interface ShardProgress {
  table: string;
  shard: number;
  /** Rows of this shard in the target, counting earlier runs. */
  rowsCopied: number;
  /** Rows this run has written so far. */
  rowsThisRun: number;
  done: boolean;
}

export interface CopyShardOptions {
  source: Endpoint;
  target: Endpoint;
  plan: TableCopyPlan;
  /** Names this migration's checkpoints. */
  migration: string;
  shard: number;
  /** Shard boundaries on the first key column (length = shards - 1); [] for one shard. */
  boundaries: string[];
  batchSize: number;
  /** A batch also commits once it holds this many bytes of encoded rows (default DEFAULT_BATCH_BYTES). */
  batchBytes?: number;
  onProgress?: (progress: ShardProgress) => void;
  signal?: AbortSignal;
  /** How batches go into a MySQL target: LOAD DATA LOCAL INFILE (default) or multi-row INSERT. */
  mysqlBulk?: MysqlBulk;
  /** Change capture: read the capture's snapshot instead of one of this shard's own. */
  snapshot?: SourceSnapshot;
}

export type MysqlBulk = 'load-data' | 'insert';

/**
 * A batch commits at batchSize rows or at this many bytes, whichever comes first: rows of
 * megabytes make transactions of tens of megabytes, not of gigabytes. The copy's memory does not
 * depend on it (rows stream through bounded buffers); it bounds the target's transaction and the
 * work a crash repeats. A constant, not a setting: batchSize stays the one knob people tune.
 */
export const DEFAULT_BATCH_BYTES = 32 << 20;

/**
 * The snapshot a change capture starts at (engine/sync/capture-copy.ts), which every table of the
 * copy must be read in. PostgreSQL: an exported snapshot each source session imports. MySQL and
 * MariaDB cannot share a snapshot between sessions: the one connection inside it (its
 * transaction open), which the shards then read on one after another; the copy does not close it.
 */
export type SourceSnapshot =
  /** Exported by name: any session of the source imports it (PostgreSQL). */
  | { kind: 'exported'; name: string }
  /** Held by one connection, which every shard reads on in turn (MySQL, MariaDB). */
  | { kind: 'held'; connection: MysqlConnection };

export interface ShardResult extends ShardProgress {
  resumedFrom: KeyValue[] | null;
}

/** Lower (inclusive) and upper (exclusive) bound of a shard; the outer shards are open. */
export function shardRange(boundaries: readonly string[], shard: number): { lower?: string; upper?: string } {
  const lower = shard > 0 ? boundaries[shard - 1] : undefined;
  const upper = shard < boundaries.length ? boundaries[shard] : undefined;
  return { ...(lower !== undefined ? { lower } : {}), ...(upper !== undefined ? { upper } : {}) };
}

interface Connections {
  sourcePg?: pg.Client;
  sourceMysql?: MysqlConnection;
  sink: BatchSink;
  close(): Promise<void>;
}

async function connect(options: CopyShardOptions): Promise<Connections & { targetCheckpoint: () => Promise<Checkpoint | undefined> }> {
  const { plan } = options;
  const closers: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
  };
  try {
    const connectOptions = (endpoint: Endpoint, readOnly: boolean) => ({
      readOnly, applicationName: `datamigration copy ${plan.targetTable}#${options.shard}`, ...(endpoint.tls ? { tls: endpoint.tls } : {}),
      ...(endpoint.side ? { side: endpoint.side } : {}),
    });
    let sourcePg: pg.Client | undefined;
    let sourceMysql: MysqlConnection | undefined;
    // The bulk format names the driver path: COPY through pg, rows streamed or LOAD DATA through mysql2.
    if (options.snapshot?.kind === 'held') {
      sourceMysql = options.snapshot.connection; // the capture's: it closes it
    } else if (adapterFor(plan.sourceEngine).bulkFormat === 'copy-text') {
      const client = await connectPostgres(options.source.url, connectOptions(options.source, true));
      closers.push(() => client.end());
      sourcePg = client;
    } else {
      const connection = await connectMysqlCore(options.source.url, connectOptions(options.source, true));
      closers.push(() => new Promise<void>((resolve) => { connection.end(() => { resolve(); }); }));
      sourceMysql = connection;
    }
    let sink: BatchSink;
    let checkpointSession: SqlSession;
    if (adapterFor(plan.targetEngine).bulkFormat === 'copy-text') {
      const client = await connectPostgres(options.target.url, connectOptions(options.target, false));
      closers.push(() => client.end());
      sink = postgresSink(client, plan.targetTable, plan.targetColumns, plan.targetColumns.slice(0, plan.key.length).map((c) => c.name), plan.conflictPolicy);
      checkpointSession = postgresSession(client);
    } else {
      const connection = await connectMysql(options.target.url, connectOptions(options.target, false));
      closers.push(() => connection.end());
      // Multi-row INSERT instead of LOAD DATA, when asked (measured in bench/copy.ts).
      sink = options.mysqlBulk === 'insert' && plan.conflictPolicy === 'fail'
        ? mysqlInsertSink(connection, plan.targetTable, plan.targetColumns)
        : mysqlSink(connection, plan.targetTable, plan.targetColumns, plan.conflictPolicy);
      checkpointSession = mysqlSession(connection);
    }
    const id = checkpointId(options);
    return {
      ...(sourcePg ? { sourcePg } : {}), ...(sourceMysql ? { sourceMysql } : {}), sink, close,
      targetCheckpoint: () => readCheckpoint(checkpointSession, id),
    };
  } catch (error) {
    await close();
    throw error;
  }
}

function checkpointId(options: CopyShardOptions): CheckpointId {
  return { migration: options.migration, table: options.plan.targetTable, shard: options.shard };
}

/** The first `count` fields of a COPY text line: the key of that row. */
function keyOfCopyLine(line: Buffer, count: number): KeyValue[] {
  return parseCopyTextLine(line.toString('utf8')).slice(0, count).map((value) => value ?? '');
}

export async function copyShard(options: CopyShardOptions): Promise<ShardResult> {
  const { plan, batchSize } = options;
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  const connections = await connect(options);
  try {
    const id = checkpointId(options);
    const previous = await connections.targetCheckpoint();
    if (previous && JSON.stringify(previous.boundaries) !== JSON.stringify(options.boundaries)) {
      throw new Error(`table ${plan.targetTable} was started with shard boundaries ${JSON.stringify(previous.boundaries)}; `
        + `resuming with ${JSON.stringify(options.boundaries)} could copy rows twice: resume with the same parallelism`);
    }
    const resumedFrom = previous?.lastKey ?? null;
    const base = previous?.rowsCopied ?? 0;
    const progress: ShardProgress = { table: plan.targetTable, shard: options.shard, rowsCopied: base, rowsThisRun: 0, done: previous?.done ?? false };
    if (progress.done) return { ...progress, resumedFrom };

    const select = buildSourceSelect({
      dialect: adapterFor(plan.sourceEngine),
      table: plan.sourceTable, columns: plan.readColumns ?? plan.selectColumns, key: plan.key,
      ...(plan.where ? { where: plan.where } : {}), ...(plan.dedupe ? { dedupe: plan.dedupe } : {}),
      ...(plan.changedSince ? { conditions: [plan.changedSince] } : {}),
      range: shardRange(options.boundaries, options.shard),
      ...(resumedFrom ? { after: resumedFrom } : {}),
    });

    let lastKey: KeyValue[] | null = resumedFrom;
    let rowsInBatch = 0;
    let bytesInBatch = 0;
    let open = false;
    const { sink } = connections;
    const beginIfNeeded = async (): Promise<void> => {
      if (!open) {
        await sink.begin();
        open = true;
      }
    };
    const commit = async (key: KeyValue[]): Promise<void> => {
      lastKey = key;
      progress.rowsThisRun += rowsInBatch;
      progress.rowsCopied += rowsInBatch;
      await sink.commit(rowsInBatch, id, { lastKey, rowsCopied: progress.rowsCopied, done: false, boundaries: options.boundaries });
      rowsInBatch = 0;
      bytesInBatch = 0;
      open = false;
      options.onProgress?.({ ...progress });
      options.signal?.throwIfAborted(); // stop between batches, never inside one
    };

    try {
      if (isPassthrough(plan)) {
        const client = connections.sourcePg;
        if (!client) throw new Error('no PostgreSQL source connection');
        await beginPostgresSnapshot(client, snapshotNameOf(options.snapshot));
        // Bytes go from COPY TO to COPY FROM untouched; only newlines are counted, and the key is
        // parsed from the one line that ends each batch.
        let line: Buffer[] = []; // pieces of the current, unfinished line
        let lastLine: Buffer | undefined;
        for await (const chunk of postgresCopyOut(client, select) as AsyncIterable<Buffer>) {
          options.signal?.throwIfAborted();
          let written = 0;
          let lineStart = 0;
          let lastNewline = -1;
          let lastLineStart = 0;
          for (let newline = chunk.indexOf(10); newline >= 0; newline = chunk.indexOf(10, newline + 1)) {
            rowsInBatch++;
            // bytesInBatch: this batch's bytes of earlier chunks (0 after a commit inside this one).
            if (rowsInBatch === batchSize || bytesInBatch + newline + 1 - written >= batchBytes) {
              await beginIfNeeded();
              await sink.write(chunk.subarray(written, newline + 1));
              written = newline + 1;
              await commit(keyOfCopyLine(Buffer.concat([...(lineStart === 0 ? line : []), chunk.subarray(lineStart, newline)]), plan.key.length));
            }
            lastNewline = newline;
            lastLineStart = lineStart;
            lineStart = newline + 1;
          }
          if (lastNewline >= 0) {
            // The last complete line: its key is the checkpoint if the stream ends after it.
            lastLine = Buffer.concat([...(lastLineStart === 0 ? line : []), chunk.subarray(lastLineStart, lastNewline)]);
            line = [];
          }
          if (lineStart < chunk.length) line.push(chunk.subarray(lineStart));
          if (written < chunk.length) {
            await beginIfNeeded();
            await sink.write(chunk.subarray(written));
            bytesInBatch += chunk.length - written;
          }
        }
        if (rowsInBatch > 0 && lastLine) await commit(keyOfCopyLine(lastLine, plan.key.length));
      } else {
        const rows = await sourceRows(connections, plan, select, options.snapshot);
        const encode = rowEncoder(plan);
        let pending = '';
        let lastRow: SourceRow | undefined;
        for await (const block of rows) {
          options.signal?.throwIfAborted();
          for (const row of block) {
            if (rowsInBatch === 0) await beginIfNeeded();
            pending += encodeNamed(encode, row, plan);
            rowsInBatch++;
            lastRow = row;
            const full = rowsInBatch === batchSize || bytesInBatch + pending.length >= batchBytes;
            // Written in pieces of about 64 KiB (or one wide row): the sink's stream holds no more.
            if (full || pending.length >= 1 << 16) {
              await sink.write(pending);
              bytesInBatch += pending.length;
              pending = '';
              if (full) await commit(keyOfRow(row, plan.key.length));
            }
          }
        }
        if (rowsInBatch > 0 && lastRow) {
          if (pending) await sink.write(pending);
          await commit(keyOfRow(lastRow, plan.key.length));
        }
      }
      progress.done = true;
      await sink.mark(id, { lastKey, rowsCopied: progress.rowsCopied, done: true, boundaries: options.boundaries });
      options.onProgress?.({ ...progress });
      return { ...progress, resumedFrom };
    } catch (error) {
      await sink.rollback();
      throw error;
    }
  } finally {
    await connections.close();
  }
}

function keyOfRow(row: SourceRow, count: number): KeyValue[] {
  return row.slice(0, count).map((value) => value ?? '');
}

const snapshotNameOf = (snapshot: SourceSnapshot | undefined): string | undefined => (snapshot?.kind === 'exported' ? snapshot.name : undefined);

async function sourceRows(connections: Connections, plan: TableCopyPlan, select: string, snapshot: SourceSnapshot | undefined): Promise<AsyncIterable<SourceRow[]>> {
  if (connections.sourcePg) {
    await beginPostgresSnapshot(connections.sourcePg, snapshotNameOf(snapshot));
    return postgresRowBlocks(postgresCopyOut(connections.sourcePg, select) as AsyncIterable<Buffer>);
  }
  const core = connections.sourceMysql;
  if (!core) throw new Error(`no source connection for ${plan.sourceTable}`);
  // The capture's connection is inside its snapshot already.
  if (snapshot?.kind !== 'held') await beginMysqlSnapshot(core);
  return mysqlRowBlocks(core, select);
}

/** A row the target cannot hold fails the copy at once, naming the table and the row's key (the converter names the column and value). */
function encodeNamed(encode: (row: SourceRow) => string, row: SourceRow, plan: TableCopyPlan): string {
  try {
    return encode(row);
  } catch (error) {
    const key = keyOfRow(row, plan.key.length).map((value) => (typeof value === 'string' ? value.slice(0, 64) : `0x${value.toString('hex').slice(0, 64)}`));
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`table ${plan.sourceTable}, row with key (${plan.key.join(', ')}) = (${key.join(', ')}): ${reason}`, { cause: error });
  }
}

/** Encodes one source row as one line of the target's bulk format, converting values on the way. */
export function rowEncoder(plan: TableCopyPlan): (row: SourceRow) => string {
  const converters = plan.converters;
  const width = converters.length;
  const values: (string | Buffer | null)[] = new Array<string | Buffer | null>(width).fill(null);
  const convert = (row: SourceRow): void => {
    for (let i = 0; i < width; i++) {
      const value = row[i] ?? null;
      const converter = converters[i];
      values[i] = value === null || converter === undefined ? value : converter(value);
    }
  };
  if (adapterFor(plan.targetEngine).bulkFormat === 'load-data') {
    const binary = plan.targetColumns.map((c) => c.binary);
    return (row) => {
      convert(row);
      // Binary columns are loaded through UNHEX: text bound for one travels as its UTF-8 bytes.
      for (let i = 0; i < width; i++) {
        const value = values[i];
        if (binary[i] && typeof value === 'string') values[i] = Buffer.from(value, 'utf8');
      }
      return formatLoadDataLine(values);
    };
  }
  return (row) => {
    convert(row);
    // PostgreSQL reads bytea as \x-hex text; a Buffer here is a value no converter claimed.
    return formatCopyTextLine(values.map((value) => (value === null || typeof value === 'string' ? value : `\\x${value.toString('hex')}`)));
  };
}
