// Follows a PostgreSQL capture's slot (db/postgres/change-stream.ts) and applies each source
// transaction to the target (cdc-batcher.ts, cdc-apply.ts). Several source transactions that
// arrive together share one target transaction; it holds the LSN of the last source commit it applied in the copy
// checkpoint table, and only once it committed is that LSN acknowledged to the source. So:
// - a killed applier resumes from the slot without loss (the slot keeps everything unacknowledged);
// - what was applied but not yet acknowledged when it was killed is not applied again: the stream
//   resumes at the checkpoint (the server starts at the later of it and the slot's confirmed
//   position), and a transaction sent anyway that ends at or before it is skipped. Each source
//   transaction is applied exactly once, in commit order.
import type pg from 'pg';
import { captureOwner, type CheckpointId } from '../copy/checkpoint.ts';
import type { CaptureSource } from '../db/change-capture.ts';
import { captureNames, currentLsn } from '../db/postgres/change-capture.ts';
import { openChangeStream, type ChangeStream, type ChangeStreamOptions } from '../db/postgres/change-stream.ts';
import { formatLsn, parseLsn, type Lsn, type PgoutputMessage } from '../db/postgres/pgoutput.ts';
import type { SqlSession } from '../db/session.ts';
import { ChangeRefused, type CaptureTable } from './cdc-apply.ts';
import { readRecordedPosition, TransactionBatcher, type BatchLimits } from './cdc-batcher.ts';

export interface FollowOptions extends BatchLimits {
  source: CaptureSource;
  /** A writable target session for this follower alone (it opens and commits transactions on it); the caller closes it. */
  target: SqlSession;
  /** The migration's uid: names the slot, the publication and the checkpoint. */
  uid: string;
  tables: readonly CaptureTable[];
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
  /** Cuts the target at a snapshot of the source (TransactionBatcher.cutAt). */
  cutAt(snapshot: (signal: AbortSignal) => Promise<Lsn>, onCut: () => Promise<void>, timeoutMs: number): Promise<Lsn>;
  /** Ends the stream; an open target transaction is rolled back (the slot still holds its changes). */
  stop(): Promise<void>;
  /** Rejects when following fails (connection lost, a change that cannot be applied, a TRUNCATE). */
  readonly ended: Promise<void>;
}

export const captureCheckpointId = (uid: string): CheckpointId => ({ migration: captureOwner(uid), table: `slot:${captureNames(uid).slot}`, shard: 0 });

export async function followCapture(options: FollowOptions): Promise<Follower> {
  const { target } = options;
  const checkpointId = captureCheckpointId(options.uid);
  /** Source commits that end at or before this are on the target already. */
  const skipBefore = await readRecordedPosition(target, checkpointId, parseLsn) ?? 0n;
  const opened: { stream?: ChangeStream } = {};
  const batcher = new TransactionBatcher<Lsn>({
    ...options, checkpointId, formatPosition: formatLsn, isAfter: (a, b) => a > b,
    // Only once the target committed it may the slot let it go.
    onApplied: (lsn) => opened.stream?.acknowledge(lsn),
  }, skipBefore);
  await batcher.resumeKeyLog();

  let transactions = 0;
  let skippedTransactions = 0;
  let skipping = false;

  const handle = async (message: PgoutputMessage): Promise<void> => {
    if (batcher.failure) return;
    switch (message.tag) {
      case 'begin':
        batcher.sourceBegins();
        // A commit record that starts before the end of the last one applied is that one or older.
        skipping = message.finalLsn < skipBefore;
        return;
      case 'insert': case 'update': case 'delete': {
        if (skipping) return;
        const change = message.tag === 'insert' ? { kind: 'insert' as const, relation: message.relation, row: message.row }
          : message.tag === 'update' ? { kind: 'update' as const, relation: message.relation, row: message.row, ...(message.old ? { old: message.old } : {}) }
            : { kind: 'delete' as const, relation: message.relation, old: message.old };
        await batcher.apply(change);
        return;
      }
      case 'truncate':
        if (skipping) return;
        throw new ChangeRefused(`TRUNCATE of ${message.relations.map((r) => `${r.schema}.${r.name}`).join(', ')} on the source during the migration: `
          + 'change capture does not replay it (it would empty the target table too); start the migration over');
      case 'commit':
        if (skipping) {
          batcher.sourceSkipped();
          skippedTransactions++;
          return;
        }
        transactions++;
        await batcher.sourceCommitted(message.endLsn, message.commitTime);
        return;
      default:
        return;
    }
  };

  const stream = await openWhenFree({
    source: options.source,
    names: captureNames(options.uid),
    startLsn: skipBefore,
    onMessage: (message) => batcher.serial(() => handle(message)),
    // Everything before sentLsn was received and handled: applied once nothing is pending on the target.
    onIdle: (sentLsn) => { batcher.idle(sentLsn); },
  });
  opened.stream = stream;
  batcher.attach(stream);
  const { applier } = batcher;

  return {
    progress: () => ({
      appliedLsn: batcher.appliedPosition, transactions, skippedTransactions, changes: applier.changesApplied, keyMoves: applier.keyMoves,
      partialUpdates: applier.partialUpdates, lastCommitTime: batcher.lastCommitTime, lastApplyDelayMs: batcher.lastApplyDelayMs,
    }),
    // A keepalive tells where the server is once nothing is in flight.
    waitForLsn: (lsn, timeoutMs) => batcher.waitFor(lsn, timeoutMs, () => { stream.requestKeepalive(); }),
    async lag(client) {
      const current = await currentLsn(client);
      const applied = batcher.appliedPosition;
      return { bytes: current > applied ? current - applied : 0n, ...batcher.commitLag() };
    },
    cutAt: (snapshot, onCut, timeoutMs) => batcher.cutAt(snapshot, onCut, timeoutMs, () => { stream.requestKeepalive(); }),
    stop: () => batcher.stop(),
    ended: batcher.ended,
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
