// What both change-capture followers (cdc-follow.ts for PostgreSQL, cdc-follow-mysql.ts for the
// binlog) do with the source transactions their streams deliver: apply the changes (cdc-apply.ts)
// into target transactions that each hold several source transactions, and commit each one
// together with the source position where the next source transaction starts, in the copy
// checkpoint table. Only a committed position counts as applied: a follower resumes from it, so
// each source transaction reaches the target once, in commit order. Also the lag bookkeeping and
// how following ends (stopped, or failed with the first error). Positions are opaque here: the
// follower says how to order and record them.
import { ensureCheckpointTable, readCheckpoint, writeCheckpoint, type CheckpointId } from '../copy/checkpoint.ts';
import type { SqlSession } from '../db/session.ts';
import { ChangeApplier, type CaptureTable, type CapturedChange } from './cdc-apply.ts';

export interface BatchLimits {
  /** A target transaction commits once it holds this many changes (at a source commit)… */
  maxBatchChanges?: number;
  /** …or is this old, or the stream has been quiet this long. */
  maxBatchMs?: number;
  quietMs?: number;
}

export interface BatcherOptions<Position> extends BatchLimits {
  /** A writable target session for this follower alone; the caller closes it. */
  target: SqlSession;
  tables: readonly CaptureTable[];
  checkpointId: CheckpointId;
  /** How a position is recorded in the checkpoint (and named in errors). */
  formatPosition: (position: Position) => string;
  /** Whether `a` is later than `b`. */
  isAfter: (a: Position, b: Position) => boolean;
  /** Called when the applied position moves on (PostgreSQL acknowledges it to the slot). */
  onApplied?: (position: Position) => void;
}

/** The source stream as the batcher ends it. */
export interface FollowedStream {
  stop(): Promise<void>;
  readonly ended: Promise<void>;
}

export interface CommitLag {
  /** Seconds since the source commit of the last applied transaction (undefined before one). */
  secondsSinceLastAppliedCommit: number | undefined;
  lastApplyDelaySeconds: number | undefined;
}

/** Reads the position recorded by an earlier run (undefined when none), after making sure the checkpoint table exists. */
export async function readRecordedPosition<Position>(target: SqlSession, checkpointId: CheckpointId, parse: (text: string) => Position): Promise<Position | undefined> {
  await ensureCheckpointTable(target);
  const stored = (await readCheckpoint(target, checkpointId))?.lastKey?.[0];
  return typeof stored === 'string' ? parse(stored) : undefined;
}

export class TransactionBatcher<Position> {
  readonly applier: ChangeApplier;
  /** Everything the source committed before this is on the target. */
  appliedPosition: Position;
  /** The source commit time of the last transaction applied, and how long after it the target committed it. */
  lastCommitTime: Date | undefined;
  lastApplyDelayMs: number | undefined;
  failure: Error | undefined;
  stopped = false;
  /** Rejects with the failure once following failed; resolves once stopped without one. */
  readonly ended: Promise<void>;

  private readonly options: BatcherOptions<Position>;
  private readonly maxBatchChanges: number;
  private readonly maxBatchMs: number;
  private readonly quietMs: number;
  // The source transaction being received, and the target transaction it goes into.
  private sourceOpen = false;
  private targetOpen = false;
  private batchChanges = 0;
  private batchStarted = 0;
  private pendingPosition: Position;
  private pendingCommitTime: Date | undefined;
  private quietTimer: NodeJS.Timeout | undefined;
  private stream: FollowedStream | undefined;
  private settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private readonly progressWaiters = new Set<() => void>();
  // Messages, timers and keepalives all touch the target session: one at a time, in order.
  private chain: Promise<void> = Promise.resolve();

  constructor(options: BatcherOptions<Position>, startPosition: Position) {
    this.options = options;
    this.maxBatchChanges = options.maxBatchChanges ?? 2000;
    this.maxBatchMs = options.maxBatchMs ?? 250;
    this.quietMs = options.quietMs ?? 10;
    this.applier = new ChangeApplier(options.target, options.tables);
    this.appliedPosition = startPosition;
    this.pendingPosition = startPosition;
    this.ended = new Promise<void>((resolve, reject) => { this.settle = { resolve, reject }; });
    this.ended.catch(() => undefined);
  }

  /** Runs `step` after every step queued before it (a failed step does not block the next). */
  serial(step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(step);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** The stream once open: stopped on failure, and its failure is the follower's. */
  attach(stream: FollowedStream): void {
    this.stream = stream;
    stream.ended.catch((error: unknown) => { this.fail(error); });
  }

  sourceBegins(): void {
    this.sourceOpen = true;
  }

  /** A source transaction the target has already: nothing to apply or record. */
  sourceSkipped(): void {
    this.sourceOpen = false;
  }

  async apply(change: CapturedChange): Promise<void> {
    if (!this.targetOpen) {
      await this.options.target.query(this.options.target.dialect.beginStatement);
      this.targetOpen = true;
      this.batchChanges = 0;
      this.batchStarted = Date.now();
    }
    await this.applier.apply(change);
    this.batchChanges++;
  }

  /** A source commit ending at `position` (`commitTime` undefined: the source does not say, the last one stands). */
  async sourceCommitted(position: Position, commitTime: Date | undefined): Promise<void> {
    this.sourceOpen = false;
    if (!this.targetOpen) {
      // Nothing of ours pending: nothing to record (a resume may read these few empty events again).
      this.advance(position);
      return;
    }
    this.pendingPosition = position;
    if (commitTime) this.pendingCommitTime = commitTime;
    if (this.batchChanges >= this.maxBatchChanges || Date.now() - this.batchStarted >= this.maxBatchMs) {
      await this.flush();
      return;
    }
    // More may be right behind it: commit when the stream pauses for quietMs.
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => { this.serial(() => this.flush()).catch((error: unknown) => { this.fail(error); }); }, this.quietMs);
  }

  /** The stream says it sent everything before `position` and nothing is in flight. */
  idle(position: Position): void {
    this.serial(() => {
      if (!this.failure && !this.sourceOpen && !this.targetOpen) this.advance(position);
      return Promise.resolve();
    }).catch((error: unknown) => { this.fail(error); });
  }

  commitLag(): CommitLag {
    return {
      secondsSinceLastAppliedCommit: this.lastCommitTime ? (Date.now() - this.lastCommitTime.getTime()) / 1000 : undefined,
      lastApplyDelaySeconds: this.lastApplyDelayMs === undefined ? undefined : this.lastApplyDelayMs / 1000,
    };
  }

  /**
   * Resolves once everything the source committed before `position` is applied; rejects on timeout,
   * failure or stop. `beforeWait` runs before each pause (PostgreSQL asks for a keepalive there).
   */
  async waitFor(position: Position, timeoutMs: number, beforeWait?: () => void): Promise<void> {
    const { formatPosition, isAfter } = this.options;
    const deadline = Date.now() + timeoutMs;
    while (isAfter(position, this.appliedPosition)) {
      if (this.failure) throw this.failure;
      if (this.stopped) throw new Error('the follower was stopped');
      if (Date.now() > deadline) throw new Error(`not caught up to ${formatPosition(position)} within ${timeoutMs} ms (applied up to ${formatPosition(this.appliedPosition)})`);
      beforeWait?.();
      await new Promise<void>((resolve) => {
        const wake = (): void => { clearTimeout(timer); this.progressWaiters.delete(wake); resolve(); };
        const timer = setTimeout(wake, 100);
        this.progressWaiters.add(wake);
      });
    }
    if (this.failure) throw this.failure;
  }

  /** Ends the stream; an open target transaction is rolled back (the source sends its changes again on resume). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stream?.stop();
    await this.serial(() => this.rollback());
    this.notify();
    if (this.failure) this.settle?.reject(this.failure);
    else this.settle?.resolve();
  }

  /** The first failure ends following: the stream stops, what is open is rolled back. */
  fail(error: unknown): void {
    if (this.failure || this.stopped) return;
    this.failure = error instanceof Error ? error : new Error(String(error));
    this.notify();
    void this.stream?.stop().catch(() => undefined);
    void this.serial(() => this.rollback()).finally(() => { if (this.failure) this.settle?.reject(this.failure); });
  }

  private notify(): void {
    for (const wake of this.progressWaiters) wake();
  }

  private advance(position: Position): void {
    if (this.options.isAfter(position, this.appliedPosition)) {
      this.appliedPosition = position;
      this.options.onApplied?.(position);
    }
    this.notify();
  }

  private async flush(): Promise<void> {
    // After a failure nothing more is committed or recorded: what is open is rolled back.
    if (!this.targetOpen || this.sourceOpen || this.failure) return;
    const { target, checkpointId, formatPosition } = this.options;
    await writeCheckpoint(target, checkpointId, { lastKey: [formatPosition(this.pendingPosition)], rowsCopied: this.applier.changesApplied, done: false, boundaries: [] });
    await target.query('COMMIT');
    this.targetOpen = false;
    this.lastCommitTime = this.pendingCommitTime;
    this.lastApplyDelayMs = this.pendingCommitTime ? Date.now() - this.pendingCommitTime.getTime() : undefined;
    this.advance(this.pendingPosition);
  }

  private async rollback(): Promise<void> {
    clearTimeout(this.quietTimer);
    if (this.targetOpen) {
      this.targetOpen = false;
      await this.options.target.query('ROLLBACK').catch(() => undefined);
    }
  }
}
