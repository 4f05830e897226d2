// Follows a MySQL/MariaDB source's binlog (db/mysql/binlog-stream.ts) and applies each source
// transaction to the target (cdc-apply.ts), as cdc-follow.ts does for PostgreSQL. Several source
// transactions that arrive together share one target transaction; it records, in the copy
// checkpoint table, the binlog position where the next source transaction starts. The source keeps
// no position for us (no slot): that record is the only one, and the stream resumes exactly there,
// so each source transaction is applied once, in commit order, however the applier was stopped
// (what the target had not committed is read again). The binlog must still be on the source when
// it resumes: see db/mysql/binlog-capture.ts on retention.
import type mysql from 'mysql2/promise';
import { ensureCheckpointTable, readCheckpoint, writeCheckpoint, type CheckpointId } from '../copy/checkpoint.ts';
import { binaryLogFiles, currentBinlogPosition, type CaptureSource } from '../db/mysql/binlog-capture.ts';
import {
  binlogBytesBetween, compareBinlogPositions, formatBinlogPosition, parseBinlogPosition, type BinlogPosition,
} from '../db/mysql/binlog-position.ts';
import { binlogServerId, openBinlogStream, type BinlogMessage } from '../db/mysql/binlog-stream.ts';
import type { SqlSession } from '../db/session.ts';
import { ChangeApplier, ChangeRefused, type CaptureTable } from './cdc-apply.ts';

export interface BinlogFollowOptions {
  source: CaptureSource;
  /** A writable target session for this follower alone; the caller closes it. */
  target: SqlSession;
  /** The migration's uid: names the checkpoint and the replica id. */
  uid: string;
  tables: readonly CaptureTable[];
  /** The snapshot's position (binlog-capture.ts): where to start when the target holds no recorded position yet. */
  start: BinlogPosition;
  maxBatchChanges?: number;
  maxBatchMs?: number;
  quietMs?: number;
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
  /** Ends the stream; an open target transaction is rolled back (its changes are read again on resume). */
  stop(): Promise<void>;
  readonly ended: Promise<void>;
}

export const binlogCheckpointId = (uid: string): CheckpointId => ({ migration: `${uid}#cdc`, table: 'binlog', shard: 0 });

/** Statements that would change a captured table behind the stream's back (they are logged as text, not rows). */
const DDL = /^\s*(TRUNCATE|ALTER|DROP|RENAME|CREATE\s+OR\s+REPLACE)\b/i;

export async function followBinlog(options: BinlogFollowOptions): Promise<BinlogFollower> {
  const { target } = options;
  const maxBatchChanges = options.maxBatchChanges ?? 2000;
  const maxBatchMs = options.maxBatchMs ?? 250;
  const quietMs = options.quietMs ?? 10;
  const checkpointId = binlogCheckpointId(options.uid);
  await ensureCheckpointTable(target);
  const stored = (await readCheckpoint(target, checkpointId))?.lastKey?.[0];
  const resumedFrom = typeof stored === 'string' ? parseBinlogPosition(stored) : options.start;
  const applier = new ChangeApplier(target, options.tables);
  const captured = options.tables.map((t) => ({ schema: t.sourceSchema.toLowerCase(), name: t.sourceTable.toLowerCase() }));

  let appliedPosition = resumedFrom;
  let transactions = 0;
  let lastCommitTime: Date | undefined;
  let lastApplyDelayMs: number | undefined;
  let sourceOpen = false;
  let targetOpen = false;
  let batchChanges = 0;
  let batchStarted = 0;
  let pendingPosition = resumedFrom;
  let pendingCommitTime: Date | undefined;
  let quietTimer: NodeJS.Timeout | undefined;
  let failure: Error | undefined;
  const waiters = new Set<() => void>();
  const notify = (): void => { for (const wake of waiters) wake(); };

  // Messages and timers both touch the target session: one at a time, in order.
  let chain: Promise<void> = Promise.resolve();
  const serial = (step: () => Promise<void>): Promise<void> => {
    const next = chain.then(step);
    chain = next.catch(() => undefined);
    return next;
  };

  const advance = (position: BinlogPosition): void => {
    if (compareBinlogPositions(position, appliedPosition) > 0) appliedPosition = position;
    notify();
  };

  const flush = async (): Promise<void> => {
    if (!targetOpen || sourceOpen || failure) return;
    await writeCheckpoint(target, checkpointId, { lastKey: [formatBinlogPosition(pendingPosition)], rowsCopied: applier.changesApplied, done: false, boundaries: [] });
    await target.query('COMMIT');
    targetOpen = false;
    lastCommitTime = pendingCommitTime;
    lastApplyDelayMs = pendingCommitTime ? Date.now() - pendingCommitTime.getTime() : undefined;
    advance(pendingPosition);
  };

  /** A source commit (or a statement outside transactions) ending at `position`. */
  const committed = async (position: BinlogPosition, commitTime: Date | undefined): Promise<void> => {
    sourceOpen = false;
    if (!targetOpen) {
      // Nothing of ours pending: nothing to record (a resume reads these few empty events again).
      advance(position);
      return;
    }
    pendingPosition = position;
    if (commitTime) pendingCommitTime = commitTime;
    if (batchChanges >= maxBatchChanges || Date.now() - batchStarted >= maxBatchMs) {
      await flush();
      return;
    }
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => { serial(flush).catch(fail); }, quietMs);
  };

  const handle = async (message: BinlogMessage): Promise<void> => {
    if (failure) return;
    switch (message.tag) {
      case 'begin':
        sourceOpen = true;
        return;
      case 'change':
        if (!targetOpen) {
          await target.query(target.dialect.beginStatement);
          targetOpen = true;
          batchChanges = 0;
          batchStarted = Date.now();
        }
        await applier.apply(message.change);
        batchChanges++;
        return;
      case 'commit':
        transactions++;
        await committed(message.position, message.commitTime);
        return;
      case 'statement': {
        // The binlog is the whole server's: the same statement on a table of that name in another database is not ours.
        const words = message.query.toLowerCase();
        const current = message.schema.toLowerCase();
        if (DDL.test(message.query) && captured.some((t) => words.includes(t.name) && (current === t.schema || words.includes(t.schema)))) {
          throw new ChangeRefused(`a statement on the source during the migration that may change a captured table (${message.query.slice(0, 80)}): `
            + 'change capture does not replay DDL or TRUNCATE; start the migration over');
        }
        await committed(message.position, undefined);
        return;
      }
    }
  };

  let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const ended = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
  ended.catch(() => undefined);
  let stopped = false;
  const rollback = async (): Promise<void> => {
    clearTimeout(quietTimer);
    if (targetOpen) {
      targetOpen = false;
      await target.query('ROLLBACK').catch(() => undefined);
    }
  };
  const opened: { stop?: () => Promise<void> } = {};
  function fail(error: unknown): void {
    if (failure || stopped) return;
    failure = error instanceof Error ? error : new Error(String(error));
    notify();
    void opened.stop?.().catch(() => undefined);
    void serial(rollback).finally(() => { if (failure) settle?.reject(failure); });
  }

  const schemas: Record<string, string[]> = {};
  for (const table of options.tables) (schemas[table.sourceSchema] ??= []).push(table.sourceTable);
  const stream = await openBinlogStream({
    source: options.source, start: resumedFrom, tables: schemas, serverId: binlogServerId(options.uid),
    onMessage: (message) => serial(() => handle(message)),
    onIdle: (position) => {
      serial(() => {
        if (!failure && !sourceOpen && !targetOpen) advance(position);
        return Promise.resolve();
      }).catch(fail);
    },
  });
  opened.stop = () => stream.stop();
  stream.ended.catch(fail);

  return {
    progress: () => ({
      appliedPosition, resumedFrom, transactions, changes: applier.changesApplied, keyMoves: applier.keyMoves, lastCommitTime, lastApplyDelayMs,
    }),
    get sourceConnectionId() {
      return stream.connectionId;
    },
    async waitForPosition(position, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (compareBinlogPositions(appliedPosition, position) < 0) {
        if (failure) throw failure;
        if (stopped) throw new Error('the follower was stopped');
        if (Date.now() > deadline) throw new Error(`not caught up to ${formatBinlogPosition(position)} within ${timeoutMs} ms (applied up to ${formatBinlogPosition(appliedPosition)})`);
        await new Promise<void>((resolve) => {
          const wake = (): void => { clearTimeout(timer); waiters.delete(wake); resolve(); };
          const timer = setTimeout(wake, 100);
          waiters.add(wake);
        });
      }
      if (failure) throw failure;
    },
    async lag(client) {
      const current = await currentBinlogPosition(client);
      const logs = current.file === appliedPosition.file ? [] : await binaryLogFiles(client);
      return {
        bytes: binlogBytesBetween(appliedPosition, current, logs),
        eventsQueued: stream.queued,
        secondsSinceLastAppliedCommit: lastCommitTime ? (Date.now() - lastCommitTime.getTime()) / 1000 : undefined,
        lastApplyDelaySeconds: lastApplyDelayMs === undefined ? undefined : lastApplyDelayMs / 1000,
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stream.stop();
      await serial(rollback);
      notify();
      if (failure) settle?.reject(failure);
      else settle?.resolve();
    },
    ended,
  };
}
