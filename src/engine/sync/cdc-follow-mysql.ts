// Follows a MySQL/MariaDB source's binlog (db/mysql/binlog-stream.ts) and applies each source
// transaction to the target (cdc-batcher.ts, cdc-apply.ts), as cdc-follow.ts does for PostgreSQL.
// Several source transactions that arrive together share one target transaction; it records, in the copy
// checkpoint table, the binlog position where the next source transaction starts. The source keeps
// no position for us (no slot): that record is the only one, and the stream resumes exactly there,
// so each source transaction is applied once, in commit order, however the applier was stopped
// (what the target had not committed is read again). The binlog must still be on the source when
// it resumes: see db/mysql/binlog-capture.ts on retention.
import type mysql from 'mysql2/promise';
import { captureOwner, type CheckpointId } from '../copy/checkpoint.ts';
import { binaryLogFiles, currentBinlogPosition, type CaptureSource } from '../db/mysql/binlog-capture.ts';
import {
  binlogBytesBetween, compareBinlogPositions, formatBinlogPosition, parseBinlogPosition, type BinlogPosition,
} from '../db/mysql/binlog-position.ts';
import { binlogServerId, openBinlogStream, type BinlogMessage } from '../db/mysql/binlog-stream.ts';
import type { SqlSession } from '../db/session.ts';
import { ChangeRefused, type CaptureTable } from './cdc-apply.ts';
import { readRecordedPosition, TransactionBatcher, type BatchLimits } from './cdc-batcher.ts';

export interface BinlogFollowOptions extends BatchLimits {
  source: CaptureSource;
  /** A writable target session for this follower alone; the caller closes it. */
  target: SqlSession;
  /** The migration's uid: names the checkpoint and the replica id. */
  uid: string;
  tables: readonly CaptureTable[];
  /** The snapshot's position (binlog-capture.ts): where to start when the target holds no recorded position yet. */
  start: BinlogPosition;
}

export interface BinlogFollowProgress {
  /** Everything the source committed before this is on the target. */
  appliedPosition: BinlogPosition;
  /** Where this run started: the recorded position, or the snapshot's. */
  resumedFrom: BinlogPosition;
  transactions: number;
  changes: number;
  keyMoves: number;
  /** The source commit time of the last transaction applied (the binlog has it to the second). */
  lastCommitTime: Date | undefined;
  lastApplyDelayMs: number | undefined;
}

export interface BinlogLag {
  /** Binlog bytes from what is applied to the source's current position. */
  bytes: number;
  /** Binlog messages (begin, row change, commit) read from the source and not yet applied. */
  eventsQueued: number;
  /** Seconds since the source commit of the last applied transaction (undefined before one). */
  secondsSinceLastAppliedCommit: number | undefined;
  lastApplyDelaySeconds: number | undefined;
}

export interface BinlogFollower {
  progress(): BinlogFollowProgress;
  /** The source server's id of the binlog connection (KILL it to see the follower fail and resume). */
  readonly sourceConnectionId: number | undefined;
  /** Resolves once everything the source committed before `position` is applied; rejects on timeout or failure. */
  waitForPosition(position: BinlogPosition, timeoutMs: number): Promise<void>;
  /** Lag against the source's current position (`client`: a source session with REPLICATION CLIENT). */
  lag(client: mysql.Connection): Promise<BinlogLag>;
  /** Cuts the target at a snapshot of the source (TransactionBatcher.cutAt). */
  cutAt(snapshot: (signal: AbortSignal) => Promise<BinlogPosition>, onCut: () => Promise<void>, timeoutMs: number): Promise<BinlogPosition>;
  /** Ends the stream; an open target transaction is rolled back (its changes are read again on resume). */
  stop(): Promise<void>;
  readonly ended: Promise<void>;
}

export const binlogCheckpointId = (uid: string): CheckpointId => ({ migration: captureOwner(uid), table: 'binlog', shard: 0 });

/** Statements that would change a captured table behind the stream's back (they are logged as text, not rows). */
const DDL = /^\s*(TRUNCATE|ALTER|DROP|RENAME|CREATE\s+OR\s+REPLACE)\b/i;

export async function followBinlog(options: BinlogFollowOptions): Promise<BinlogFollower> {
  const checkpointId = binlogCheckpointId(options.uid);
  // The source keeps no position for us: the target's record, else the snapshot's.
  const resumedFrom = await readRecordedPosition(options.target, checkpointId, parseBinlogPosition) ?? options.start;
  const batcher = new TransactionBatcher<BinlogPosition>({
    ...options, checkpointId, formatPosition: formatBinlogPosition, isAfter: (a, b) => compareBinlogPositions(a, b) > 0,
  }, resumedFrom);
  await batcher.resumeKeyLog();
  const captured = options.tables.map((t) => ({ schema: t.sourceSchema.toLowerCase(), name: t.sourceTable.toLowerCase() }));
  let transactions = 0;

  const handle = async (message: BinlogMessage): Promise<void> => {
    if (batcher.failure) return;
    switch (message.tag) {
      case 'begin':
        batcher.sourceBegins();
        return;
      case 'change':
        await batcher.apply(message.change);
        return;
      case 'commit':
        transactions++;
        await batcher.sourceCommitted(message.position, message.commitTime);
        return;
      case 'statement': {
        // The binlog is the whole server's: the same statement on a table of that name in another database is not ours.
        const words = message.query.toLowerCase();
        const current = message.schema.toLowerCase();
        if (DDL.test(message.query) && captured.some((t) => words.includes(t.name) && (current === t.schema || words.includes(t.schema)))) {
          throw new ChangeRefused(`a statement on the source during the migration that may change a captured table (${message.query.slice(0, 80)}): `
            + 'change capture does not replay DDL or TRUNCATE; start the migration over');
        }
        // A statement outside transactions: it ends where the next one starts, with no commit time of its own.
        await batcher.sourceCommitted(message.position, undefined);
        return;
      }
    }
  };

  const schemas: Record<string, string[]> = {};
  for (const table of options.tables) (schemas[table.sourceSchema] ??= []).push(table.sourceTable);
  const stream = await openBinlogStream({
    source: options.source, start: resumedFrom, tables: schemas, serverId: binlogServerId(options.uid),
    onMessage: (message) => batcher.serial(() => handle(message)),
    onIdle: (position) => { batcher.idle(position); },
  });
  batcher.attach(stream);
  const { applier } = batcher;

  return {
    progress: () => ({
      appliedPosition: batcher.appliedPosition, resumedFrom, transactions, changes: applier.changesApplied, keyMoves: applier.keyMoves,
      lastCommitTime: batcher.lastCommitTime, lastApplyDelayMs: batcher.lastApplyDelayMs,
    }),
    get sourceConnectionId() {
      return stream.connectionId;
    },
    waitForPosition: (position, timeoutMs) => batcher.waitFor(position, timeoutMs),
    async lag(client) {
      const current = await currentBinlogPosition(client);
      const applied = batcher.appliedPosition;
      const logs = current.file === applied.file ? [] : await binaryLogFiles(client);
      return { bytes: binlogBytesBetween(applied, current, logs), eventsQueued: stream.queued, ...batcher.commitLag() };
    },
    // Heartbeats say where the source is while it is quiet.
    cutAt: (snapshot, onCut, timeoutMs) => batcher.cutAt(snapshot, onCut, timeoutMs),
    stop: () => batcher.stop(),
    ended: batcher.ended,
  };
}
