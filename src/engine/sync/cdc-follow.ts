// Follows a PostgreSQL capture's slot (db/postgres/change-stream.ts) and applies each source
// transaction to the target (cdc-apply.ts). Several source transactions that arrive together share
// one target transaction; it holds the LSN of the last source commit it applied in the copy
// checkpoint table, and only once it committed is that LSN acknowledged to the source. So:
// - a killed applier resumes from the slot without loss (the slot keeps everything unacknowledged);
// - what was applied but not yet acknowledged when it was killed is not applied again: the stream
//   resumes at the checkpoint (the server starts at the later of it and the slot's confirmed
//   position), and a transaction sent anyway that ends at or before it is skipped. Each source
//   transaction is applied exactly once, in commit order.
import type pg from 'pg';
import { ensureCheckpointTable, readCheckpoint, writeCheckpoint, type CheckpointId } from '../copy/checkpoint.ts';
import { captureNames, currentLsn, type CaptureSource } from '../db/postgres/change-capture.ts';
import { openChangeStream, type ChangeStream, type ChangeStreamOptions } from '../db/postgres/change-stream.ts';
import { formatLsn, parseLsn, type Lsn, type PgoutputMessage } from '../db/postgres/pgoutput.ts';
import type { SqlSession } from '../db/session.ts';
import { ChangeApplier, ChangeRefused, type CaptureTable } from './cdc-apply.ts';

export interface FollowOptions {
  source: CaptureSource;
  /** A writable target session for this follower alone (it opens and commits transactions on it); the caller closes it. */
  target: SqlSession;
  /** The migration's uid: names the slot, the publication and the checkpoint. */
  uid: string;
  tables: readonly CaptureTable[];
  /** A target transaction commits once it holds this many changes (at a source commit)… */
  maxBatchChanges?: number;
  /** …or is this old, or the stream has been quiet this long. */
  maxBatchMs?: number;
  quietMs?: number;
}

export interface FollowProgress {
  /** Everything the source committed before this is on the target (and acknowledged). */
  appliedLsn: Lsn;
  transactions: number;
  /** Source transactions received again after a restart and skipped: the target had them already. */
  skippedTransactions: number;
  changes: number;
  keyMoves: number;
  partialUpdates: number;
  /** The source commit time of the last transaction applied. */
  lastCommitTime: Date | undefined;
  /** From that commit on the source to its commit on the target. */
  lastApplyDelayMs: number | undefined;
}

export interface CaptureLag {
  /** The source's current WAL position minus what is applied. */
  bytes: bigint;
  /** Seconds since the source commit of the last applied transaction (undefined before one). */
  secondsSinceLastAppliedCommit: number | undefined;
  lastApplyDelaySeconds: number | undefined;
}

export interface Follower {
  progress(): FollowProgress;
  /** Resolves once everything the source committed before `lsn` is applied; rejects on timeout or failure. */
  waitForLsn(lsn: Lsn, timeoutMs: number): Promise<void>;
  /** Lag against the source's current WAL position (`client`: any session on the source). */
  lag(client: pg.Client): Promise<CaptureLag>;
  /** Ends the stream; an open target transaction is rolled back (the slot still holds its changes). */
  stop(): Promise<void>;
  /** Rejects when following fails (connection lost, a change that cannot be applied, a TRUNCATE). */
  readonly ended: Promise<void>;
}

export const captureCheckpointId = (uid: string): CheckpointId => ({ migration: `${uid}#cdc`, table: `slot:${captureNames(uid).slot}`, shard: 0 });

export async function followCapture(options: FollowOptions): Promise<Follower> {
  const { target } = options;
  const maxBatchChanges = options.maxBatchChanges ?? 2000;
  const maxBatchMs = options.maxBatchMs ?? 250;
  const quietMs = options.quietMs ?? 10;
  const checkpointId = captureCheckpointId(options.uid);
  await ensureCheckpointTable(target);
  const stored = await readCheckpoint(target, checkpointId);
  const storedText = stored?.lastKey?.[0];
  /** Source commits that end at or before this are on the target already. */
  const skipBefore = typeof storedText === 'string' ? parseLsn(storedText) : 0n;
  const applier = new ChangeApplier(target, options.tables);

  let appliedLsn = skipBefore;
  let transactions = 0;
  let skippedTransactions = 0;
  let lastCommitTime: Date | undefined;
  let lastApplyDelayMs: number | undefined;
  // The source transaction being received, and the target transaction it goes into.
  let sourceOpen = false;
  let skipping = false;
  let targetOpen = false;
  let batchChanges = 0;
  let batchStarted = 0;
  let pendingLsn = 0n;
  let pendingCommitTime: Date | undefined;
  let quietTimer: NodeJS.Timeout | undefined;
  let failure: Error | undefined;
  // Set once the stream is open; messages only arrive after that.
  const opened: { stream?: ChangeStream } = {};
  const progressWaiters = new Set<() => void>();
  const notify = (): void => { for (const wake of progressWaiters) wake(); };

  // Messages, timers and keepalives all touch the target session: one at a time, in order.
  let chain: Promise<void> = Promise.resolve();
  const serial = (step: () => Promise<void>): Promise<void> => {
    const next = chain.then(step);
    chain = next.catch(() => undefined);
    return next;
  };

  const flush = async (): Promise<void> => {
    // After a failure nothing more is committed or acknowledged: what is open is rolled back.
    if (!targetOpen || sourceOpen || failure) return;
    await writeCheckpoint(target, checkpointId, { lastKey: [formatLsn(pendingLsn)], rowsCopied: applier.changesApplied, done: false, boundaries: [] });
    await target.query('COMMIT');
    targetOpen = false;
    appliedLsn = pendingLsn;
    lastCommitTime = pendingCommitTime;
    lastApplyDelayMs = pendingCommitTime ? Date.now() - pendingCommitTime.getTime() : undefined;
    opened.stream?.acknowledge(appliedLsn);
    notify();
  };

  const handle = async (message: PgoutputMessage): Promise<void> => {
    if (failure) return;
    switch (message.tag) {
      case 'begin':
        sourceOpen = true;
        // A commit record that starts before the end of the last one applied is that one or older.
        skipping = message.finalLsn < skipBefore;
        return;
      case 'insert': case 'update': case 'delete': {
        if (skipping) return;
        if (!targetOpen) {
          await target.query(target.dialect.beginStatement);
          targetOpen = true;
          batchChanges = 0;
          batchStarted = Date.now();
        }
        const change = message.tag === 'insert' ? { kind: 'insert' as const, relation: message.relation, row: message.row }
          : message.tag === 'update' ? { kind: 'update' as const, relation: message.relation, row: message.row, ...(message.old ? { old: message.old } : {}) }
            : { kind: 'delete' as const, relation: message.relation, old: message.old };
        await applier.apply(change);
        batchChanges++;
        return;
      }
      case 'truncate':
        if (skipping) return;
        throw new ChangeRefused(`TRUNCATE of ${message.relations.map((r) => `${r.schema}.${r.name}`).join(', ')} on the source during the migration: `
          + 'change capture does not replay it (it would empty the target table too); start the migration over');
      case 'commit': {
        sourceOpen = false;
        if (skipping) {
          skippedTransactions++;
          return;
        }
        transactions++;
        if (!targetOpen) {
          // Nothing of ours in it: nothing to apply, and nothing before its end is pending.
          appliedLsn = message.endLsn > appliedLsn ? message.endLsn : appliedLsn;
          opened.stream?.acknowledge(appliedLsn);
          notify();
          return;
        }
        pendingLsn = message.endLsn;
        pendingCommitTime = message.commitTime;
        if (batchChanges >= maxBatchChanges || Date.now() - batchStarted >= maxBatchMs) {
          await flush();
          return;
        }
        // More may be right behind it: commit when the stream pauses for quietMs.
        clearTimeout(quietTimer);
        quietTimer = setTimeout(() => { serial(flush).catch(fail); }, quietMs);
        return;
      }
      default:
        return;
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
  function fail(error: unknown): void {
    if (failure || stopped) return;
    failure = error instanceof Error ? error : new Error(String(error));
    notify();
    void opened.stream?.stop().catch(() => undefined);
    void serial(rollback).finally(() => { if (failure) settle?.reject(failure); });
  }

  const stream = await openWhenFree({
    source: options.source,
    names: captureNames(options.uid),
    startLsn: skipBefore,
    onMessage: (message) => serial(() => handle(message)),
    onIdle: (sentLsn) => {
      serial(() => {
        // Everything before sentLsn was received and handled, and nothing is pending on the target.
        if (!failure && !sourceOpen && !targetOpen && sentLsn > appliedLsn) {
          appliedLsn = sentLsn;
          opened.stream?.acknowledge(appliedLsn);
          notify();
        }
        return Promise.resolve();
      }).catch(fail);
    },
  });
  opened.stream = stream;
  stream.ended.catch(fail);

  return {
    progress: () => ({
      appliedLsn, transactions, skippedTransactions, changes: applier.changesApplied, keyMoves: applier.keyMoves, partialUpdates: applier.partialUpdates,
      lastCommitTime, lastApplyDelayMs,
    }),
    async waitForLsn(lsn, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (appliedLsn < lsn) {
        if (failure) throw failure;
        if (stopped) throw new Error('the follower was stopped');
        if (Date.now() > deadline) throw new Error(`not caught up to ${formatLsn(lsn)} within ${timeoutMs} ms (applied up to ${formatLsn(appliedLsn)})`);
        // A keepalive tells where the server is once nothing is in flight.
        stream.requestKeepalive();
        await new Promise<void>((resolve) => {
          const wake = (): void => { clearTimeout(timer); progressWaiters.delete(wake); resolve(); };
          const timer = setTimeout(wake, 100);
          progressWaiters.add(wake);
        });
      }
      if (failure) throw failure;
    },
    async lag(client) {
      const current = await currentLsn(client);
      return {
        bytes: current > appliedLsn ? current - appliedLsn : 0n,
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

/**
 * Opens the stream, waiting while the slot is still held by a walsender of an earlier applier that
 * was killed (its connection not yet noticed as gone by the server): 55006 object_in_use.
 */
async function openWhenFree(options: ChangeStreamOptions, waitMs = 30_000): Promise<ChangeStream> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await openChangeStream(options);
    } catch (error) {
      if ((error as { code?: string }).code !== '55006' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
