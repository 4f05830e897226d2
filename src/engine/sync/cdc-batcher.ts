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
import { ChangeApplier, type CaptureTable, type CapturedChange, type TouchedKey } from './cdc-apply.ts';
import { changedKeyId, forgetChangedKeys, readCutRecord, recordChangedKeys, writeCutRecord } from './changed-keys.ts';

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
  /** The migration's uid: the cut record and the changed keys are its capture's (changed-keys.ts). */
  uid: string;
}

/** The follower did not reach a cut's position in time (it is behind), or the snapshot waited too long: try again later. */
export class CutNotReached extends Error {}

/**
 * How long source transactions may be held while the cut's snapshot is taken: PostgreSQL's slot is
 * consistent once the transactions running when it began have ended and the server has logged its
 * running transactions again (every 15 s under writes; the driver does not start one while a
 * transaction has been open for 5 s); the lag shows the hold.
 */
const SNAPSHOT_WAIT_MS = 30_000;

/** A cut being taken (cutAt): the source transactions that arrive meanwhile are held until its position is known. */
interface PendingCut<Position> {
  position: Position | undefined;
  /** Resolves with the position once the source's snapshot is taken (undefined: given up). */
  readonly known: Promise<Position | undefined>;
  announce: (position: Position | undefined) => void;
  /** Aborts the snapshot being taken. */
  readonly snapshotting: AbortController;
  onCut: () => Promise<void>;
  taken: boolean;
  settle: { resolve: () => void; reject: (error: Error) => void };
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
  private cut: PendingCut<Position> | undefined;
  /** A source transaction's changes held while a cut's position is not known yet. */
  private held: CapturedChange[] | undefined;
  /** Changes of the open source transaction applied (not held). */
  private sourceChanges = 0;
  /** The keys the open target transaction changed (only once a cut is recorded: changed-keys.ts). */
  private keyLog: Map<string, TouchedKey> | undefined;
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

  /** Records changed keys from now on when an earlier follower took a cut (call once, before the stream opens). */
  async resumeKeyLog(): Promise<void> {
    if (await readCutRecord(this.options.target, this.options.uid)) this.keyLog = new Map();
  }

  sourceBegins(): void {
    this.sourceOpen = true;
    this.sourceChanges = 0;
    if (this.cut && !this.cut.taken) this.held = [];
  }

  /** A source transaction the target has already: nothing to apply or record. */
  sourceSkipped(): void {
    this.sourceOpen = false;
    this.held = undefined;
  }

  async apply(change: CapturedChange): Promise<void> {
    if (this.held) {
      this.held.push(change);
      return;
    }
    await this.applyNow(change);
  }

  private async applyNow(change: CapturedChange): Promise<void> {
    if (!this.targetOpen) {
      await this.options.target.query(this.options.target.dialect.beginStatement);
      this.targetOpen = true;
      this.batchChanges = 0;
      this.batchStarted = Date.now();
    }
    this.sourceChanges++;
    const touched = await this.applier.apply(change, this.keyLog !== undefined);
    for (const key of touched) this.keyLog?.set(changedKeyId(key), key);
    this.batchChanges++;
  }

  /** A source commit ending at `position` (`commitTime` undefined: the source does not say, the last one stands). */
  async sourceCommitted(position: Position, commitTime: Date | undefined): Promise<void> {
    this.sourceOpen = false;
    const held = this.held;
    this.held = undefined;
    const cut = this.cut;
    if (cut && !cut.taken) {
      // No target transaction stays open while the snapshot is taken: on one server, a new slot waits for it.
      if (held && cut.position === undefined) await this.flush();
      const at = held ? await cut.known : cut.position;
      if (at !== undefined && this.options.isAfter(position, at)) {
        // After the cut. One applied before the hold began committed before the snapshot was asked for: it cannot be.
        if (held) await this.takeCut(cut);
        else if (this.sourceChanges > 0) this.giveUpCut(cut, new CutNotReached(`a source transaction ending at ${this.options.formatPosition(position)}, applied before the cut was asked for, ends after it`));
      }
    }
    for (const change of held ?? []) await this.applyNow(change);
    this.sourceChanges = 0;
    await this.committed(position, commitTime);
    // Everything up to the cut's position is applied, nothing after it: the cut is here.
    if (cut && !cut.taken && cut.position !== undefined && !this.options.isAfter(cut.position, position)) await this.takeCut(cut);
  }

  private async committed(position: Position, commitTime: Date | undefined): Promise<void> {
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
    this.serial(async () => {
      if (this.failure || this.sourceOpen) return;
      const cut = this.cut;
      // Nothing after the cut has arrived, everything before it has: the target is at the cut (once committed).
      if (cut && !cut.taken && cut.position !== undefined && !this.options.isAfter(cut.position, position)) await this.takeCut(cut);
      if (!this.targetOpen) this.advance(position);
    }).catch((error: unknown) => { this.fail(error); });
  }

  /**
   * Cuts the target at a snapshot of the source: holds the source transactions that arrive from
   * now on, takes the snapshot (`snapshot` returns its position: it holds every transaction that
   * ends at or before it, none after), and once everything before that position is committed on
   * the target and nothing after it, records the cut (the keys changed before it forgotten, those
   * after it recorded from now on) and runs `onCut` (which opens the target's own snapshot).
   * Following goes on meanwhile. Rejects when the snapshot or `onCut` fails, or not within
   * `timeoutMs` (`keepalive`: asks the stream where the source is, when it is quiet).
   */
  async cutAt(snapshot: (signal: AbortSignal) => Promise<Position>, onCut: () => Promise<void>, timeoutMs: number, keepalive?: () => void): Promise<Position> {
    if (this.cut) throw new Error('a cut is being taken already');
    let announce: (position: Position | undefined) => void = () => undefined;
    const known = new Promise<Position | undefined>((resolve) => { announce = resolve; });
    let settle: PendingCut<Position>['settle'] = { resolve: () => undefined, reject: () => undefined };
    const taken = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
    taken.catch(() => undefined);
    const giveUp = new AbortController();
    const cut: PendingCut<Position> = { position: undefined, known, announce, snapshotting: giveUp, onCut, taken: false, settle };
    this.cut = cut;
    let position: Position;
    // Transactions are held until the snapshot is taken: a snapshot that waits (PostgreSQL's slot waits
    // for the server's running transactions to end) is given up after a while, the follower goes on.
    const late = new CutNotReached(`the source's snapshot was not taken within ${String(SNAPSHOT_WAIT_MS)} ms (a long transaction on the source server?)`);
    const waited = setTimeout(() => { giveUp.abort(late); }, SNAPSHOT_WAIT_MS);
    const taking = snapshot(giveUp.signal);
    taking.catch(() => undefined);
    try {
      position = await Promise.race([taking, new Promise<never>((_, reject) => {
        giveUp.signal.addEventListener('abort', () => { reject(late); }, { once: true });
      })]);
    } catch (error) {
      announce(undefined);
      this.giveUpCut(cut, error);
      throw error;
    } finally {
      clearTimeout(waited);
    }
    cut.position = position;
    announce(position);
    const deadline = Date.now() + timeoutMs;
    const timer = setInterval(() => {
      if (this.failure || this.stopped) this.giveUpCut(cut, this.failure ?? new Error('the follower was stopped'));
      else if (Date.now() > deadline) this.giveUpCut(cut, new CutNotReached(`the cut at ${this.options.formatPosition(position)} was not reached within ${String(timeoutMs)} ms`));
      else keepalive?.();
    }, 100);
    try {
      await taken;
    } finally {
      clearInterval(timer);
    }
    return position;
  }

  /** Held transactions go on at once (the snapshot being taken is aborted). */
  private giveUpCut(cut: PendingCut<Position>, error: unknown): void {
    if (cut.taken) return;
    cut.taken = true;
    if (this.cut === cut) this.cut = undefined;
    const reason = error instanceof Error ? error : new Error(String(error));
    cut.announce(undefined);
    cut.snapshotting.abort(reason);
    cut.settle.reject(reason);
  }

  /** In the follower's order, with no source transaction open: commits what is applied, records the cut, runs its onCut. */
  private async takeCut(cut: PendingCut<Position>): Promise<void> {
    if (cut.taken || cut.position === undefined) return;
    await this.flush();
    if (this.targetOpen) return; // a failure left it open: the cut is given up with the follower
    const { target, uid, formatPosition } = this.options;
    try {
      await target.query(target.dialect.beginStatement);
      await forgetChangedKeys(target, uid);
      await writeCutRecord(target, uid, { position: formatPosition(cut.position), state: 'validating', at: new Date().toISOString() });
      await target.query('COMMIT');
      await cut.onCut();
    } catch (error) {
      await target.query('ROLLBACK').catch(() => undefined);
      this.giveUpCut(cut, error);
      return;
    }
    this.keyLog = new Map();
    cut.taken = true;
    this.cut = undefined;
    cut.settle.resolve();
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
    // A held transaction waiting for a snapshot must not keep the stop waiting.
    if (this.cut) this.giveUpCut(this.cut, new Error('the follower was stopped'));
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
    if (this.cut) this.giveUpCut(this.cut, this.failure);
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
    const { target, checkpointId, formatPosition, uid } = this.options;
    await writeCheckpoint(target, checkpointId, { lastKey: [formatPosition(this.pendingPosition)], rowsCopied: this.applier.changesApplied, done: false, boundaries: [] });
    if (this.keyLog && this.keyLog.size > 0) {
      await recordChangedKeys(target, uid, this.keyLog.values());
      this.keyLog.clear();
    }
    await target.query('COMMIT');
    this.targetOpen = false;
    this.lastCommitTime = this.pendingCommitTime;
    this.lastApplyDelayMs = this.pendingCommitTime ? Date.now() - this.pendingCommitTime.getTime() : undefined;
    this.advance(this.pendingPosition);
  }

  private async rollback(): Promise<void> {
    clearTimeout(this.quietTimer);
    this.keyLog?.clear();
    if (this.targetOpen) {
      this.targetOpen = false;
      await this.options.target.query('ROLLBACK').catch(() => undefined);
    }
  }
}
